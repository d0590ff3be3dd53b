"""DataLoader batch samplers: P classes × K samples, and N-way K-shot episodes; seeded once, so the next epoch
continues the same random stream. Derived in notebooks/03_triplet_loss.ipynb and 06_omniglot_one_shot.ipynb."""
import numpy as np
import torch
from torch.utils.data import Sampler

from .pairs import ByClass, as_labels


class PKSampler(Sampler[list[int]]):
    """``p`` classes × ``k`` samples per batch, class after class (with replacement only for a class smaller than
    ``k``); ``n_batches`` defaults to ``len(labels) // (p * k)``. Derived in notebooks/03_triplet_loss.ipynb."""

    def __init__(self, labels, p: int, k: int, n_batches: int | None = None, seed: int = 0):
        by = ByClass(labels)  # checks the labels
        self.classes, self.counts = by.classes, by.counts
        self.members = [by.members(c) for c in range(len(by.classes))]
        if p < 1 or k < 1:
            raise ValueError(f"p and k must be >= 1, got p={p}, k={k}.")
        if p > len(self.classes):
            raise ValueError(f"p={p} classes per batch, but labels hold only {len(self.classes)} classes; lower p.")
        self.p, self.k = int(p), int(k)
        self.n_batches = int(n_batches) if n_batches is not None else max(1, by.n // (self.p * self.k))
        if self.n_batches < 1:
            raise ValueError(f"n_batches must be >= 1, got {n_batches}.")
        self.rng = np.random.default_rng(int(seed))

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self):
        for _ in range(self.n_batches):
            chosen = self.rng.choice(len(self.classes), self.p, replace=False)  # (p,)
            yield np.concatenate([self.rng.choice(self.members[c], self.k, replace=bool(self.counts[c] < self.k))
                                  for c in chosen]).tolist()  # (p * k,)


class EpisodeSampler(Sampler[list[int]]):
    """Episodes of ``n_way`` classes × (``k_shot`` support + ``n_query`` query) indices, class after class; with
    ``groups`` (alphabets) every episode stays in one group. Used by sl.steps.omniglot_recipe and bench/omniglot.py."""

    def __init__(self, labels, n_way: int, k_shot: int, n_query: int, n_episodes: int, groups=None, seed: int = 0):
        self.labels = as_labels(labels)
        if n_way < 1 or k_shot < 1 or n_query < 0 or n_episodes < 1:
            raise ValueError("need n_way >= 1, k_shot >= 1, n_query >= 0, n_episodes >= 1; "
                             f"got {n_way}, {k_shot}, {n_query}, {n_episodes}.")
        self.n_way, self.k_shot, self.n_query, self.n_episodes = int(n_way), int(k_shot), int(n_query), int(n_episodes)
        by = ByClass(self.labels)
        self.members = [by.members(c) for c in range(len(by.classes))]
        usable = np.flatnonzero(by.counts >= self.k_shot + self.n_query)  # (C',) class positions
        self.pools = [usable]
        if groups is not None:
            groups = as_labels(groups)
            if groups.shape != self.labels.shape:
                raise ValueError(f"groups must have the labels' shape {tuple(self.labels.shape)}, "
                                 f"got {tuple(groups.shape)}.")
            groups = groups.numpy()
            class_group = np.array([groups[m[0]] for m in self.members])  # (C,)
            for c, m in enumerate(self.members):
                if (groups[m] != class_group[c]).any():
                    raise ValueError(f"class {int(by.classes[c])} spans several groups; each class must lie in one.")
            self.pools = [usable[class_group[usable] == gid] for gid in np.unique(class_group[usable])]
        self.pools = [p for p in self.pools if len(p) >= self.n_way]
        if not self.pools:
            raise ValueError(f"{'any single group' if groups is not None else 'the labels'} must hold {self.n_way} "
                             f"classes with >= {self.k_shot + self.n_query} samples each (k_shot + n_query); none "
                             "does. Lower n_way, k_shot or n_query.")
        self.rng = np.random.default_rng(int(seed))

    def __len__(self) -> int:
        return self.n_episodes

    def __iter__(self):
        for _ in range(self.n_episodes):
            pool = self.pools[self.rng.integers(len(self.pools))]
            chosen = self.rng.choice(pool, self.n_way, replace=False)  # (n_way,)
            rows = [self.rng.choice(self.members[c], self.k_shot + self.n_query, replace=False) for c in chosen]
            yield np.concatenate(rows).tolist()  # (n_way * (k_shot + n_query),)

    def split(self, x: torch.Tensor):
        """One episode's batch ``(N*(K+Q), ...)`` → support ``(N, K, ...)``, query ``(N, Q, ...)``."""
        need = self.k_shot + self.n_query
        if x.shape[0] != self.n_way * need:
            raise ValueError(f"expected a batch of {self.n_way * need} (n_way * (k_shot + n_query)), got {x.shape[0]}.")
        x = x.reshape(self.n_way, need, *x.shape[1:])
        return x[:, : self.k_shot], x[:, self.k_shot :]

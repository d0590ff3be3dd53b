"""Batch samplers: P classes × K samples (for online mining) and N-way K-shot episodes.

Both are ``batch_sampler`` s for ``torch.utils.data.DataLoader``: each iteration
yields one list of dataset indices. A sampler is seeded once; iterating it again
(the next epoch) continues the same random stream, so two samplers built with
the same seed give the same sequence of batches.

Derived in notebooks/03_triplet_loss.ipynb (P×K) and notebooks/06_omniglot_one_shot.ipynb (episodes).
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Sampler

from .pairs import ByClass, as_labels


def _members(labels: torch.Tensor):
    """Class ids (C,), for each class the NumPy array of its sample indices, and the class sizes (C,)."""
    by = ByClass(labels)
    return by.classes, [by.members(c) for c in range(len(by.classes))], by.counts


class PKSampler(Sampler[list[int]]):
    """Batches of ``p`` distinct classes × ``k`` samples each (``p * k`` indices, class after class).

    Within a class the ``k`` samples are drawn without replacement; only a class
    with fewer than ``k`` samples is drawn *with* replacement (so its batch rows
    repeat images). ``n_batches`` defaults to ``len(labels) // (p * k)``.
    The batch for P×K mining: every anchor has ``k - 1`` positives and
    ``(p - 1) * k`` negatives in the batch.

    Derived in notebooks/03_triplet_loss.ipynb.
    """

    def __init__(self, labels, p: int, k: int, n_batches: int | None = None, seed: int = 0):
        self.labels = as_labels(labels)
        self.classes, self.members, self.counts = _members(self.labels)
        if p < 1 or k < 1:
            raise ValueError(f"p and k must be >= 1, got p={p}, k={k}.")
        if p > len(self.classes):
            raise ValueError(
                f"p={p} classes per batch, but labels hold only {len(self.classes)} classes; lower p."
            )
        self.p, self.k = int(p), int(k)
        self.n_batches = int(n_batches) if n_batches is not None else max(1, len(self.labels) // (self.p * self.k))
        if self.n_batches < 1:
            raise ValueError(f"n_batches must be >= 1, got {n_batches}.")
        self.rng = np.random.default_rng(int(seed))

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self):
        rng = self.rng
        for _ in range(self.n_batches):
            chosen = rng.choice(len(self.classes), self.p, replace=False)  # (p,)
            batch = [
                rng.choice(self.members[c], self.k, replace=bool(self.counts[c] < self.k))  # (k,)
                for c in chosen
            ]
            yield np.concatenate(batch).tolist()  # (p * k,)


class EpisodeSampler(Sampler[list[int]]):
    """N-way K-shot episodes: ``n_way`` classes × (``k_shot`` support + ``n_query`` query) indices.

    Each yielded list has ``n_way * (k_shot + n_query)`` indices laid out class
    after class, support first: reshaped to ``(n_way, k_shot + n_query)`` row
    ``c`` is episode class ``c``; :meth:`split` does this for a batch. Only
    classes with at least ``k_shot + n_query`` samples are used (drawn without
    replacement). With ``groups`` (e.g. Omniglot's alphabet ids) every episode
    draws its classes from one group, chosen uniformly among the groups that
    have ``n_way`` usable classes (Lake's within-alphabet setting).

    Derived in notebooks/06_omniglot_one_shot.ipynb.
    """

    def __init__(self, labels, n_way: int, k_shot: int, n_query: int, n_episodes: int, groups=None, seed: int = 0):
        self.labels = as_labels(labels)
        if n_way < 1 or k_shot < 1 or n_query < 0 or n_episodes < 1:
            raise ValueError(
                f"need n_way >= 1, k_shot >= 1, n_query >= 0, n_episodes >= 1; got {n_way}, {k_shot}, {n_query}, {n_episodes}."
            )
        self.n_way, self.k_shot, self.n_query, self.n_episodes = int(n_way), int(k_shot), int(n_query), int(n_episodes)
        need = self.k_shot + self.n_query
        self.classes, self.members, self.counts = _members(self.labels)
        usable = np.flatnonzero(self.counts >= need)  # (C',) class positions
        if groups is None:
            self.pools = [usable]
        else:
            groups = as_labels(groups)
            if groups.shape != self.labels.shape:
                raise ValueError(f"groups must have the labels' shape {tuple(self.labels.shape)}, got {tuple(groups.shape)}.")
            groups = groups.numpy()
            class_group = np.array([groups[m[0]] for m in self.members])  # (C,)
            for c, m in enumerate(self.members):
                if (groups[m] != class_group[c]).any():
                    raise ValueError(f"class {int(self.classes[c])} spans several groups; each class must lie in one group.")
            ug = class_group[usable]
            self.pools = [usable[ug == gid] for gid in np.unique(ug)]
        self.pools = [p for p in self.pools if len(p) >= self.n_way]
        if not self.pools:
            where = "any single group" if groups is not None else "the labels"
            raise ValueError(
                f"{where} must hold {self.n_way} classes with >= {need} samples each (k_shot + n_query); "
                f"none does. Lower n_way, k_shot or n_query."
            )
        self.rng = np.random.default_rng(int(seed))

    def __len__(self) -> int:
        return self.n_episodes

    def __iter__(self):
        rng, need = self.rng, self.k_shot + self.n_query
        for _ in range(self.n_episodes):
            pool = self.pools[rng.integers(len(self.pools))]
            chosen = rng.choice(pool, self.n_way, replace=False)  # (n_way,)
            rows = [rng.choice(self.members[c], need, replace=False) for c in chosen]  # n_way × (need,)
            yield np.concatenate(rows).tolist()  # (n_way * need,)

    def split(self, x: torch.Tensor):
        """A batch from one episode ``(n_way * (k_shot + n_query), ...)`` → ``support (n_way, k_shot, ...)``, ``query (n_way, n_query, ...)``.

        Row ``c`` of both belongs to episode class ``c``.
        """
        need = self.k_shot + self.n_query
        if x.shape[0] != self.n_way * need:
            raise ValueError(f"expected a batch of {self.n_way * need} (n_way * (k_shot + n_query)), got {x.shape[0]}.")
        x = x.reshape(self.n_way, need, *x.shape[1:])
        return x[:, : self.k_shot], x[:, self.k_shot :]

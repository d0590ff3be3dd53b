"""Balanced same/different pairs, drawn with vectorised NumPy ops; ``dissimilar`` = 1 for a different-class pair.
With the samples sorted by class, class ``c`` is ``order[starts[c] : starts[c] + counts[c]]``: a *same* partner is
an offset in that slice that skips the anchor's slot, a *different* one an offset outside it.
Derived in notebooks/01_twin_network.ipynb."""
import numpy as np
import torch
from torch.utils.data import Dataset

from .images import to_float


def as_labels(labels) -> torch.Tensor:
    """Labels as a ``(N,)`` int64 tensor (from a tensor, array or list)."""
    t = labels if isinstance(labels, torch.Tensor) else torch.as_tensor(np.asarray(labels))
    if t.dim() != 1 or t.dtype.is_floating_point or t.dtype == torch.bool:
        raise ValueError(f"labels must be a 1-D integer tensor (N,), got shape {tuple(t.shape)} dtype {t.dtype}.")
    return t.to(torch.int64).cpu()


class ByClass:
    """Sample indices grouped by class (NumPy): ``classes`` (C,), ``cls`` (N,) each sample's class position,
    ``order`` (N,) indices sorted by class, ``starts`` / ``counts`` (C,) each class's slice, ``rank`` (N,)."""

    def __init__(self, labels):
        lab = as_labels(labels).numpy()
        self.n = len(lab)
        self.classes, cls, self.counts = np.unique(lab, return_inverse=True, return_counts=True)
        self.cls = cls.reshape(-1)
        self.order = np.argsort(self.cls, kind="stable")  # (N,)
        self.starts = np.cumsum(self.counts) - self.counts  # (C,)
        self.rank = np.empty(self.n, dtype=np.int64)  # (N,)
        self.rank[self.order] = np.arange(self.n) - self.starts[self.cls[self.order]]

    def members(self, c: int) -> np.ndarray:
        """Sample indices of the class at position ``c``."""
        return self.order[self.starts[c] : self.starts[c] + self.counts[c]]

    def anchors(self, n: int, rng: np.random.Generator, need_same: bool) -> np.ndarray:
        """``n`` anchors uniform over the samples that have a classmate (``need_same``) or another class."""
        ok = self.counts[self.cls] >= 2 if need_same else self.counts[self.cls] < self.n
        cand = np.flatnonzero(ok)  # (M,)
        if len(cand) == 0:
            raise ValueError(f"no sample has {'a classmate' if need_same else 'another class'}: got "
                             f"{len(self.classes)} classes with sizes {self.counts.tolist()[:10]}; same pairs need "
                             "a class with >= 2 samples and different pairs need >= 2 classes.")
        return cand[rng.integers(0, len(cand), n)]  # (n,)

    def partners(self, i: np.ndarray, rng: np.random.Generator, same: bool) -> np.ndarray:
        c = self.cls[i]
        high = self.counts[c] - 1 if same else self.n - self.counts[c]  # (n,) how many candidates
        r = np.minimum((rng.random(high.shape) * high).astype(np.int64), high - 1)  # uniform in [0, high)
        if same:
            return self.order[self.starts[c] + r + (r >= self.rank[i])]  # skip the anchor itself
        return self.order[r + self.counts[c] * (r >= self.starts[c])]  # step over the anchor's class


def make_pairs(labels, n_pairs: int, seed: int = 0):
    """``n_pairs`` seeded pairs ``(i, j, dissimilar)``, ``i != j``, ``round(n_pairs / 2)`` of them same-class;
    anchors uniform over the samples, partners within / outside their class. Derived in 01_twin_network.ipynb."""
    by = ByClass(labels)
    if int(n_pairs) != n_pairs or n_pairs < 0:
        raise ValueError(f"n_pairs must be a non-negative integer, got {n_pairs!r}.")
    n_same = round(int(n_pairs) * 0.5)
    n_diff = int(n_pairs) - n_same
    rng = np.random.default_rng(int(seed))
    i_same = by.anchors(n_same, rng, True) if n_same else np.empty(0, dtype=np.int64)
    j_same = by.partners(i_same, rng, same=True)
    i_diff = by.anchors(n_diff, rng, False) if n_diff else np.empty(0, dtype=np.int64)
    j_diff = by.partners(i_diff, rng, same=False)
    perm = rng.permutation(int(n_pairs))
    i = np.concatenate([i_same, i_diff])[perm]  # (n_pairs,)
    j = np.concatenate([j_same, j_diff])[perm]  # (n_pairs,)
    dissimilar = np.concatenate([np.zeros(n_same, np.float32), np.ones(n_diff, np.float32)])[perm]
    return torch.from_numpy(i), torch.from_numpy(j), torch.from_numpy(dissimilar)


class PairDataset(Dataset):
    """Pairs from :func:`make_pairs` as ``(x1, x2, dissimilar)``, float images. Derived in 01_twin_network.ipynb."""

    def __init__(self, images, labels, n_pairs: int, seed: int = 0):
        self.images, self.labels = torch.as_tensor(images), as_labels(labels)
        if len(self.images) != len(self.labels):
            raise ValueError(f"images and labels disagree: {len(self.images)} images, {len(self.labels)} labels.")
        self.i, self.j, self.dissimilar = make_pairs(self.labels, n_pairs, seed=seed)

    def __len__(self) -> int:
        return len(self.i)

    def __getitem__(self, k):
        return to_float(self.images[self.i[k]])[0], to_float(self.images[self.j[k]])[0], self.dissimilar[k]

    def __getitems__(self, ks):  # batched fetch used by DataLoader: one gather per batch
        ks = torch.as_tensor(ks, dtype=torch.int64)
        x1, x2 = to_float(self.images[self.i[ks]]), to_float(self.images[self.j[ks]])  # (B, 1, H, W) each
        return list(zip(x1, x2, self.dissimilar[ks]))

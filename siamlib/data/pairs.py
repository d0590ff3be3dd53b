"""Balanced same/different pairs, drawn with vectorised array ops.

Label convention (Hadsell, Chopra & LeCun, 2006): ``dissimilar`` is ``Y``,
**0 for a similar (same-class) pair, 1 for a different-class pair**.

How a pair is drawn without a Python loop per pair: sort the sample indices by
class (``order``), so class ``c`` occupies the slice ``starts[c] : starts[c] +
counts[c]``. A *same* pair takes an anchor ``i`` and an offset ``r`` uniform in
``0 .. counts[c] - 2``, skipping the anchor's own slot (``r + (r >= rank[i])``),
so ``j != i`` always. A *different* pair draws ``r`` uniform over the
``N - counts[c]`` samples outside the class and steps over the class's slice.
(The index arithmetic runs in NumPy, which is much faster than torch for 1-D
gathers on a busy CPU; the results are torch tensors.)

Derived in notebooks/01_twin_network.ipynb.
"""
from __future__ import annotations

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
    """Sample indices grouped by class (NumPy arrays).

    ``classes`` (C,) the class ids; ``cls`` (N,) each sample's class position;
    ``order`` (N,) sample indices sorted by class; ``starts``/``counts`` (C,) each
    class's slice of ``order``; ``rank`` (N,) each sample's position in its slice.
    """

    def __init__(self, labels: torch.Tensor):
        lab = as_labels(labels).numpy()
        self.n = len(lab)
        self.classes, self.cls, self.counts = np.unique(lab, return_inverse=True, return_counts=True)
        self.cls = self.cls.reshape(-1)
        self.order = np.argsort(self.cls, kind="stable")  # (N,)
        self.starts = np.cumsum(self.counts) - self.counts  # (C,)
        self.rank = np.empty(self.n, dtype=np.int64)  # (N,)
        self.rank[self.order] = np.arange(self.n) - self.starts[self.cls[self.order]]

    def members(self, c: int) -> np.ndarray:
        """Sample indices of the class at position ``c``."""
        return self.order[self.starts[c] : self.starts[c] + self.counts[c]]

    @staticmethod
    def _uniform_below(high: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One integer uniform in ``[0, high)`` per entry of ``high`` (all ``high >= 1``)."""
        return np.minimum((rng.random(high.shape) * high).astype(np.int64), high - 1)

    def anchors(self, n: int, rng: np.random.Generator, need_same: bool, need_diff: bool) -> np.ndarray:
        ok = np.ones(self.n, dtype=bool)
        if need_same:
            ok &= self.counts[self.cls] >= 2
        if need_diff:
            ok &= self.counts[self.cls] < self.n
        cand = np.flatnonzero(ok)  # (M,)
        if len(cand) == 0:
            what = " and ".join(w for w, f in (("a classmate", need_same), ("another class", need_diff)) if f)
            raise ValueError(
                f"no sample has {what}: got {len(self.classes)} classes with sizes {self.counts.tolist()[:10]}; "
                "same pairs need a class with >= 2 samples and different pairs need >= 2 classes."
            )
        return cand[rng.integers(0, len(cand), n)]  # (n,)

    def same(self, i: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c = self.cls[i]
        r = self._uniform_below(self.counts[c] - 1, rng)
        r = r + (r >= self.rank[i])  # skip the anchor itself
        return self.order[self.starts[c] + r]

    def different(self, i: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c = self.cls[i]
        r = self._uniform_below(self.n - self.counts[c], rng)
        r = r + self.counts[c] * (r >= self.starts[c])  # step over the anchor's class
        return self.order[r]


def make_pairs(labels, n_pairs: int, seed: int = 0, same_fraction: float = 0.5):
    """Draw ``n_pairs`` index pairs ``(i, j, dissimilar)``, ``round(n_pairs * same_fraction)`` of them same-class.

    Returns ``i``, ``j``: ``(n_pairs,)`` int64 with ``i != j``; ``dissimilar``:
    ``(n_pairs,)`` float32, 0 for same-class pairs and 1 otherwise (Hadsell's Y).
    Anchors are uniform over the samples (so larger classes give more anchors),
    partners uniform within / outside the anchor's class; the order is shuffled.
    The same ``seed`` gives the same pairs. No Python loop per pair.

    Derived in notebooks/01_twin_network.ipynb.
    """
    by = ByClass(labels)
    if int(n_pairs) != n_pairs or n_pairs < 0:
        raise ValueError(f"n_pairs must be a non-negative integer, got {n_pairs!r}.")
    if not 0.0 <= same_fraction <= 1.0:
        raise ValueError(f"same_fraction must be in [0, 1], got {same_fraction}.")
    n_pairs = int(n_pairs)
    n_same = int(round(n_pairs * same_fraction))
    n_diff = n_pairs - n_same
    rng = np.random.default_rng(int(seed))
    i_same = by.anchors(n_same, rng, True, False) if n_same else np.empty(0, dtype=np.int64)
    j_same = by.same(i_same, rng)
    i_diff = by.anchors(n_diff, rng, False, True) if n_diff else np.empty(0, dtype=np.int64)
    j_diff = by.different(i_diff, rng)
    perm = rng.permutation(n_pairs)
    i = np.concatenate([i_same, i_diff])[perm]  # (n_pairs,)
    j = np.concatenate([j_same, j_diff])[perm]  # (n_pairs,)
    dissimilar = np.concatenate([np.zeros(n_same, np.float32), np.ones(n_diff, np.float32)])[perm]
    return torch.from_numpy(i), torch.from_numpy(j), torch.from_numpy(dissimilar)


class PairDataset(Dataset):
    """Pairs from :func:`make_pairs`; item ``k`` is ``(x1, x2, dissimilar)``.

    ``x1``, ``x2``: ``(1, H, W)`` float32 in [0, 1]; ``dissimilar``: float32 scalar,
    0 = same class (Hadsell's Y). A DataLoader batch is ``(B, 1, H, W), (B, 1, H, W), (B,)``.
    The index arrays are ``.i``, ``.j``, ``.dissimilar``.

    Derived in notebooks/01_twin_network.ipynb.
    """

    def __init__(self, images, labels, n_pairs: int, seed: int = 0, same_fraction: float = 0.5):
        self.images, self.labels = torch.as_tensor(images), as_labels(labels)
        if len(self.images) != len(self.labels):
            raise ValueError(f"images and labels disagree: {len(self.images)} images, {len(self.labels)} labels.")
        self.i, self.j, self.dissimilar = make_pairs(self.labels, n_pairs, seed=seed, same_fraction=same_fraction)

    def __len__(self) -> int:
        return len(self.i)

    def __getitem__(self, k):
        return self._x(self.i[k : k + 1])[0], self._x(self.j[k : k + 1])[0], self.dissimilar[k]

    def _x(self, idx: torch.Tensor) -> torch.Tensor:
        return to_float(self.images[idx])  # (B, 1, H, W)

    def __getitems__(self, ks):  # batched fetch used by DataLoader: one gather per batch
        ks = torch.as_tensor(ks, dtype=torch.int64)
        return list(zip(self._x(self.i[ks]), self._x(self.j[ks]), self.dissimilar[ks]))

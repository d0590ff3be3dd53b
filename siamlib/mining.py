"""Online mining: a distance matrix and labels in, index tuples ``(a, p, n)`` out.

The vocabulary of pytorch-metric-learning: a *distance* makes the B×B matrix
once (``sl.distances.pairwise_distances``), a *miner* returns the triplets
``(a, p, n)`` it picks, the *loss* indexes the matrix with them
(``sl.losses.mined_triplet_loss``). Every miner here is a boolean mask read
with ``nonzero()``:

* a *valid* triplet: ``labels[a] == labels[p]``, ``a != p``, ``labels[a] != labels[n]``;
* *active* (non-zero hinge): ``d_an < d_ap + margin``;
* *semi-hard*: ``d_ap < d_an < d_ap + margin`` (FaceNet's band). As in PML's
  ``TripletMarginMiner(type_of_triplets="semihard")``, every such triplet is
  returned and a pair without one contributes nothing.

Memory: the masks are built for a chunk of positive pairs at a time,
``(chunk, B)``, never ``(B, B, B)``. Derived in notebooks/03_triplet_loss.ipynb.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["batch_hard", "semi_hard", "batch_all", "count_valid_triplets"]

_CHUNK_ELEMENTS = 1 << 22  # a (chunk, B) mask holds at most 4M entries


def _check(labels: torch.Tensor, dist: torch.Tensor) -> None:
    if labels.dim() != 1 or labels.dtype.is_floating_point:
        raise ValueError(f"labels must be a 1-D tensor of integer class ids; got shape {tuple(labels.shape)}, "
                         f"dtype {labels.dtype}. Use labels.long().")
    b = labels.shape[0]
    if b == 0:
        raise ValueError("got an empty batch (B = 0); mining needs at least one embedding.")
    if dist.shape != (b, b):
        raise ValueError(f"dist must be the ({b}, {b}) distance matrix of the batch; got {tuple(dist.shape)}. "
                         "Compute it with sl.distances.pairwise_distances(emb).")


def _label_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, B)`` masks: ``pos[a, p]`` same class and ``a != p``; ``neg[a, n]`` different class."""
    same = labels[:, None] == labels[None, :]  # (B, B)
    return same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device), ~same


def count_valid_triplets(labels: torch.Tensor) -> int:
    """Valid triplets in a batch without listing them: ``sum_a P_a N_a``.

    For a P×K batch that is ``P K (K-1) (P-1) K``. Derived in notebooks/03_triplet_loss.ipynb.
    """
    _, counts = torch.unique(labels, return_counts=True)  # (C,) class sizes
    return int((counts * (counts - 1) * (len(labels) - counts)).sum())


@torch.no_grad()
def batch_hard(labels: torch.Tensor, dist: torch.Tensor):
    """Per anchor, its farthest positive and its closest negative (Hermans et al. 2017).

    Anchors without a positive or a negative are skipped (PML's ``BatchHardMiner``).
    Returns ``(a, p, n)``, each ``(T,)`` with ``T <= B``. Derived in notebooks/03_triplet_loss.ipynb.
    """
    _check(labels, dist)
    pos, neg = _label_masks(labels)
    hardest_p = dist.masked_fill(~pos, float("-inf")).argmax(dim=1)  # (B,)
    hardest_n = dist.masked_fill(~neg, float("inf")).argmin(dim=1)  # (B,)
    a = (pos.any(dim=1) & neg.any(dim=1)).nonzero(as_tuple=True)[0]  # anchors with both
    return a, hardest_p[a], hardest_n[a]


@torch.no_grad()
def _triplets_where(labels: torch.Tensor, dist: torch.Tensor, keep):
    """Every valid ``(a, p, n)`` with ``keep(d_ap, d_an)`` true, chunked over positive pairs."""
    _check(labels, dist)
    pos, neg = _label_masks(labels)
    a, p = pos.nonzero(as_tuple=True)  # (P,) every positive pair
    chunk = max(1, _CHUNK_ELEMENTS // len(labels))
    found = []
    for s in range(0, len(a), chunk):
        a_c, p_c = a[s:s + chunk], p[s:s + chunk]  # (c,)
        d_ap = dist[a_c, p_c][:, None]  # (c, 1)
        d_an = dist[a_c]  # (c, B): the anchor's distance to every point
        row, n = (neg[a_c] & keep(d_ap, d_an)).nonzero(as_tuple=True)  # (t,) each
        found.append((a_c[row], p_c[row], n))
    if not found:
        empty = torch.empty(0, dtype=torch.long, device=labels.device)
        return empty, empty.clone(), empty.clone()
    return tuple(torch.cat(parts) for parts in zip(*found))


def _check_margin(margin: float) -> float:
    if not float(margin) > 0:
        raise ValueError(f"margin must be > 0 (the gap wanted between d_an and d_ap); got {margin}.")
    return float(margin)


def semi_hard(labels: torch.Tensor, dist: torch.Tensor, margin: float = 0.2):
    """Every triplet with ``d_ap < d_an < d_ap + margin``. Derived in notebooks/03_triplet_loss.ipynb."""
    m = _check_margin(margin)
    return _triplets_where(labels, dist, lambda d_ap, d_an: (d_an > d_ap) & (d_an < d_ap + m))


def batch_all(labels: torch.Tensor, dist: torch.Tensor, margin: float | None = None):
    """Every valid triplet (``margin=None``), or only the active ones, ``d_an < d_ap + margin``.

    Derived in notebooks/03_triplet_loss.ipynb.
    """
    if margin is None:
        return _triplets_where(labels, dist, lambda d_ap, d_an: torch.ones_like(d_an, dtype=torch.bool))
    m = _check_margin(margin)
    return _triplets_where(labels, dist, lambda d_ap, d_an: d_an < d_ap + m)


@dataclass(frozen=True)
class MiningStats:
    """What one mining step found: ``n_valid`` triplets in the batch, ``n_triplets`` selected,
    ``n_active`` of those with a non-zero loss; ``fraction_active = n_active / n_triplets``.

    Derived in notebooks/03_triplet_loss.ipynb.
    """

    mining: str
    n_valid: int
    n_triplets: int
    n_active: int

    @property
    def fraction_active(self) -> float:
        return self.n_active / self.n_triplets if self.n_triplets else 0.0

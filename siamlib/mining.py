"""Online mining as in pytorch-metric-learning: a distance matrix and labels in, index tuples ``(a, p, n)`` out,
each miner a boolean mask read with ``nonzero()``. *Valid*: ``labels[a] == labels[p] != labels[n]``, ``a != p``;
*active*: ``d_an < d_ap + margin``; *semi-hard*: ``d_ap < d_an < d_ap + margin``. Masks are ``(chunk, B)`` for a
chunk of positive pairs, never ``(B, B, B)``. Derived in notebooks/03_triplet_loss.ipynb."""
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


def _check_margin(margin: float) -> float:
    if not float(margin) > 0:
        raise ValueError(f"margin must be > 0 (the gap wanted between d_an and d_ap); got {margin}.")
    return float(margin)


def _label_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, B)`` masks: ``pos[a, p]`` same class and ``a != p``; ``neg[a, n]`` different class."""
    same = labels[:, None] == labels[None, :]  # (B, B)
    return same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device), ~same


def count_valid_triplets(labels: torch.Tensor) -> int:
    """Valid triplets without listing them, ``sum_a P_a N_a``. Derived in notebooks/03_triplet_loss.ipynb."""
    _, counts = torch.unique(labels, return_counts=True)  # (C,) class sizes
    return int((counts * (counts - 1) * (len(labels) - counts)).sum())


@torch.no_grad()
def batch_hard(labels: torch.Tensor, dist: torch.Tensor):
    """Each anchor's farthest positive and closest negative → ``(a, p, n)``. Derived in 03_triplet_loss.ipynb."""
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
    empty = torch.empty(0, dtype=torch.long, device=labels.device)
    found = [(empty, empty, empty)]
    for s in range(0, len(a), chunk):
        a_c, p_c = a[s:s + chunk], p[s:s + chunk]  # (c,)
        d_ap, d_an = dist[a_c, p_c][:, None], dist[a_c]  # (c, 1), (c, B)
        row, n = (neg[a_c] & keep(d_ap, d_an)).nonzero(as_tuple=True)  # (t,) each
        found.append((a_c[row], p_c[row], n))
    return tuple(torch.cat(parts) for parts in zip(*found))


def semi_hard(labels: torch.Tensor, dist: torch.Tensor, margin: float = 0.2):
    """Every triplet with ``d_ap < d_an < d_ap + margin``. Derived in notebooks/03_triplet_loss.ipynb."""
    m = _check_margin(margin)
    return _triplets_where(labels, dist, lambda d_ap, d_an: (d_an > d_ap) & (d_an < d_ap + m))


def batch_all(labels: torch.Tensor, dist: torch.Tensor, margin: float | None = None):
    """Every valid triplet (``margin=None``), or the active ones. Derived in notebooks/03_triplet_loss.ipynb."""
    if margin is None:
        return _triplets_where(labels, dist, lambda d_ap, d_an: torch.ones_like(d_an, dtype=torch.bool))
    m = _check_margin(margin)
    return _triplets_where(labels, dist, lambda d_ap, d_an: d_an < d_ap + m)


@dataclass(frozen=True)
class MiningStats:
    """One mining step: ``n_valid`` triplets in the batch, ``n_triplets`` selected, ``n_active`` non-zero."""

    n_valid: int
    n_triplets: int
    n_active: int

    @property
    def fraction_active(self) -> float:
        return self.n_active / self.n_triplets if self.n_triplets else 0.0

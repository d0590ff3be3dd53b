"""Triplet loss (FaceNet, Schroff et al. 2015) and its soft-margin variant (Hermans et al. 2017).

    L(a, p, n) = max(0, d(a, p) - d(a, n) + margin)        (hinge)
    L(a, p, n) = softplus(d(a, p) - d(a, n) + margin)      (soft; margin=0 is Hermans et al.)

Derived in notebooks/03_triplet_loss.ipynb.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import mining as _mining
from ._checks import check_margin, check_pair_batch, check_reduction, reduce

__all__ = ["triplet_loss", "mined_triplet_loss", "MINING_STRATEGIES"]

MINING_STRATEGIES = ("batch_hard", "semi_hard", "batch_all")


def _hinge_or_soft(violation: torch.Tensor, soft: bool) -> torch.Tensor:
    return F.softplus(violation) if soft else torch.relu(violation)


def triplet_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    margin: float = 0.2,
    squared: bool = False,
    soft: bool = False,
    reduction: str = "mean",
) -> torch.Tensor:
    """Triplet loss on explicit triplets, rows ``i`` of the three ``(B, D)`` tensors.

    Args:
        margin: the gap wanted between ``d(a, n)`` and ``d(a, p)``; ``> 0`` for the
            hinge, ``>= 0`` with ``soft=True`` (``margin=0.0`` is Hermans et al.'s soft margin).
        squared: use squared Euclidean distances (FaceNet's choice) instead of plain ones.
        soft: replace ``max(0, x)`` by ``softplus(x) = log(1 + e^x)``.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Derived in notebooks/03_triplet_loss.ipynb.
    """
    name = "triplet_loss"
    check_pair_batch(name, anchor, positive, names=("anchor", "positive"))
    check_pair_batch(name, anchor, negative, names=("anchor", "negative"))
    margin = check_margin(name, margin, allow_zero=soft)
    check_reduction(name, reduction)
    d_ap = _mining.pair_distance(anchor, positive, squared=squared)  # (B,)
    d_an = _mining.pair_distance(anchor, negative, squared=squared)  # (B,)
    return reduce(_hinge_or_soft(d_ap - d_an + margin, soft), reduction)


def _zero(emb: torch.Tensor) -> torch.Tensor:
    """A 0 that is still connected to the graph (``backward()`` works, gradients are 0)."""
    return (emb * 0.0).sum()


def mined_triplet_loss(
    emb: torch.Tensor,
    labels: torch.Tensor,
    mining: str = "batch_hard",
    margin: float = 0.2,
    squared: bool = False,
    soft: bool = False,
    reduction: str = "mean_active",
) -> tuple[torch.Tensor, _mining.MiningStats]:
    """Online triplet loss: mine triplets inside the batch, then average their losses.

    Args:
        emb: ``(B, D)`` embeddings; labels: ``(B,)`` integer classes.
        mining: ``"batch_hard"`` (per anchor, farthest positive and closest
            negative), ``"semi_hard"`` (every triplet with ``d_ap < d_an < d_ap + margin``),
            or ``"batch_all"`` (every valid triplet).
        reduction: ``"mean_active"`` (default: mean over triplets with a non-zero
            loss, like pytorch-metric-learning's ``AvgNonZeroReducer`` and
            Hermans et al.'s batch-all), ``"mean"`` (over all selected triplets) or ``"sum"``.
        soft: softplus instead of hinge (``batch_hard`` only).

    Returns ``(loss, stats)``; ``stats`` is a :class:`sl.mining.MiningStats`.
    A batch without any valid triplet (or without an active one, for
    ``"mean_active"``) gives a loss of exactly 0 that still supports ``backward()``.

    ``batch_all`` and ``semi_hard`` never list their (up to B³) triplets: the
    loss is linear in the distances inside the band, so it is summed with
    per-pair counts (:func:`sl.mining.triplet_weights`).
    Derived in notebooks/03_triplet_loss.ipynb.
    """
    name = "mined_triplet_loss"
    if not isinstance(emb, torch.Tensor) or emb.dim() != 2 or not emb.dtype.is_floating_point:
        raise ValueError(f"{name}: emb must be a float tensor of shape (B, D); got {getattr(emb, 'shape', type(emb))}.")
    if emb.shape[0] == 0:
        raise ValueError(f"{name}: got an empty batch (B = 0); pass at least one embedding.")
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.shape[0] != emb.shape[0]:
        raise ValueError(
            f"{name}: labels must be a 1-D tensor with one class per row of emb, shape ({emb.shape[0]},); "
            f"got {getattr(labels, 'shape', type(labels))}."
        )
    if mining not in MINING_STRATEGIES:
        raise ValueError(f"{name}: mining must be one of {MINING_STRATEGIES}; got {mining!r}.")
    if soft and mining != "batch_hard":
        raise ValueError(f"{name}: soft=True is only supported with mining='batch_hard' (as in Hermans et al. 2017); got {mining!r}.")
    margin = check_margin(name, margin, allow_zero=soft)
    check_reduction(name, reduction, allowed=("mean_active", "mean", "sum"))
    labels = labels.to(emb.device)
    n_valid = _mining.count_valid_triplets(labels)

    if mining == "batch_hard":
        key = _mining.ranking_key(emb.detach())  # (B, B), ordered like d within each row
        a, p, n = _mining.batch_hard(labels, key)  # (T,) each, T <= B
        if a.numel() == 0:
            return _zero(emb), _mining.MiningStats(mining, n_valid, 0, 0)
        # Only 2 distances per anchor carry gradient: recompute them exactly from the rows.
        d_ap = _mining.pair_distance(emb[a], emb[p], squared=squared)  # (T,)
        d_an = _mining.pair_distance(emb[a], emb[n], squared=squared)  # (T,)
        losses = _hinge_or_soft(d_ap - d_an + margin, soft)  # (T,)
        n_triplets, n_active = int(a.numel()), int((losses > 0).sum())
        total = losses.sum()
    else:
        with torch.no_grad():
            dist = _mining.pairwise_distances(emb.detach(), squared=squared)  # (B, B)
        weights, n_active = _mining.triplet_weights(labels, dist, margin, mining)  # (B, B)
        n_triplets = n_valid if mining == "batch_all" else n_active
        # sum over the band's triplets of (d_ap + margin - d_an), as one weighted sum of pair distances
        total = _mining.weighted_distance_sum(emb, weights, dist, squared=squared) + margin * n_active

    denom = {"mean_active": n_active, "mean": n_triplets, "sum": 1}[reduction]
    stats = _mining.MiningStats(mining, n_valid, n_triplets, n_active)
    if denom == 0:
        return _zero(emb), stats
    return total / denom, stats

"""Triplet loss (FaceNet, Schroff et al. 2015) ``max(0, d(a, p) - d(a, n) + margin)``, soft margin (softplus,
Hermans et al. 2017), and online mining: pick the triplets (``sl.mining``), apply the hinge, average.
Derived in notebooks/03_triplet_loss.ipynb."""
import torch
import torch.nn.functional as F

from .. import mining as _mining
from ..distances import pair_distance, pairwise_distances
from ._checks import check_pair_batch, check_positive, check_reduction, reduce

__all__ = ["triplet_loss", "mined_triplet_loss"]

MINERS = {"batch_hard": _mining.batch_hard, "semi_hard": _mining.semi_hard, "batch_all": _mining.batch_all}


def _hinge(violation: torch.Tensor, soft: bool) -> torch.Tensor:
    return F.softplus(violation) if soft else torch.relu(violation)


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float = 0.2,
                 squared: bool = False, soft: bool = False, reduction: str = "mean") -> torch.Tensor:
    """Triplet loss on row ``i`` of three ``(B, D)`` tensors. Derived in notebooks/03_triplet_loss.ipynb."""
    check_pair_batch("triplet_loss", anchor, positive, names=("anchor", "positive"))
    check_pair_batch("triplet_loss", anchor, negative, names=("anchor", "negative"))
    margin = check_positive("triplet_loss", "margin", margin, allow_zero=soft)
    check_reduction("triplet_loss", reduction)
    d_ap = pair_distance(anchor, positive, squared=squared)  # (B,)
    d_an = pair_distance(anchor, negative, squared=squared)  # (B,)
    return reduce(_hinge(d_ap - d_an + margin, soft), reduction)


def mined_triplet_loss(emb: torch.Tensor, labels: torch.Tensor, mining: str = "batch_hard", margin: float = 0.2,
                       squared: bool = False, soft: bool = False, reduction: str = "mean_active"):
    """Mine triplets (``mining``: "batch_hard", "semi_hard", "batch_all"), apply the hinge, average over the non-zero
    terms ("mean_active", as PML), all ("mean") or "sum" → ``(loss, MiningStats)``. Derived in 03_triplet_loss.ipynb."""
    name = "mined_triplet_loss"
    if not isinstance(emb, torch.Tensor) or emb.dim() != 2 or not emb.dtype.is_floating_point:
        raise ValueError(f"{name}: emb must be a float tensor (B, D); got {getattr(emb, 'shape', emb)}.")
    if not isinstance(labels, torch.Tensor) or labels.shape != (len(emb),):
        raise ValueError(f"{name}: labels must be a tensor of shape ({len(emb)},), one class per row of emb; "
                         f"got {getattr(labels, 'shape', labels)}.")
    if mining not in MINERS:
        raise ValueError(f"{name}: mining must be one of {tuple(MINERS)}; got {mining!r}.")
    if soft and mining != "batch_hard":
        raise ValueError(f"{name}: soft=True is only supported with mining='batch_hard' (Hermans et al. 2017); "
                         f"got {mining!r}.")
    if not torch.isfinite(emb).all():
        raise FloatingPointError(f"{name}: emb holds NaN or inf (the model diverged); lower the learning rate.")
    margin = check_positive(name, "margin", margin, allow_zero=soft)
    check_reduction(name, reduction, allowed=("mean_active", "mean", "sum"))
    labels = labels.to(emb.device)
    dist = pairwise_distances(emb, squared=squared)  # (B, B)
    args = (margin,) if mining == "semi_hard" else ()  # batch_all: every valid triplet is selected
    a, p, n = MINERS[mining](labels, dist.detach(), *args)  # (T,) each
    losses = _hinge(dist[a, p] - dist[a, n] + margin, soft)  # (T,)
    n_active = int((losses > 0).sum())
    stats = _mining.MiningStats(_mining.count_valid_triplets(labels), len(a), n_active)
    denom = {"mean_active": n_active, "mean": len(a), "sum": 1}[reduction]
    return (losses.sum() / denom if denom else (emb * 0.0).sum()), stats

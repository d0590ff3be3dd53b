"""Euclidean distances: the one place in siamlib where they are computed. Derived in
notebooks/02_contrastive_loss.ipynb (the safe square root) and notebooks/03_triplet_loss.ipynb (the matrix)."""
import torch

__all__ = ["safe_sqrt", "pair_distance", "pairwise_distances"]


def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(x)`` with gradient 0 (not NaN) where ``x == 0``; NaN stays NaN. Derived in 02_contrastive_loss.ipynb."""
    zero = x == 0
    return torch.where(zero, torch.zeros_like(x), torch.sqrt(torch.where(zero, torch.ones_like(x), x)))


def pair_distance(x1: torch.Tensor, x2: torch.Tensor, squared: bool = False) -> torch.Tensor:
    """Distance of matching rows, ``(B, D), (B, D) -> (B,)``; exact (no eps). Used in notebooks/04_train_mnist.ipynb."""
    if x1.shape != x2.shape or x1.dim() != 2:
        raise ValueError(f"pair_distance expects two (B, D) tensors of the same shape; got {tuple(x1.shape)} and "
                         f"{tuple(x2.shape)}. Pass one row per pair in each tensor.")
    d2 = (x1 - x2).pow(2).sum(dim=1)  # (B,)
    return d2 if squared else safe_sqrt(d2)


def pairwise_distances(emb: torch.Tensor, other: torch.Tensor | None = None, squared: bool = False) -> torch.Tensor:
    """All distances between rows: ``(B, D) -> (B, B)`` (diagonal exactly 0), or ``(B, D), (M, D) -> (B, M)``.
    ``|x|² + |y|² − 2 x·y``, rounding negatives clamped to 0. Derived in notebooks/03_triplet_loss.ipynb."""
    ref = emb if other is None else other
    if emb.dim() != 2 or ref.dim() != 2 or ref.shape[1] != emb.shape[1]:
        raise ValueError("pairwise_distances expects (B, D) and (M, D) tensors of the same feature size; "
                         f"got {tuple(emb.shape)} and {tuple(ref.shape)}.")
    if emb.shape[0] == 0 or ref.shape[0] == 0:
        raise ValueError("pairwise_distances got an empty batch; pass at least one embedding.")
    sq_e, sq_r = emb.pow(2).sum(dim=1), ref.pow(2).sum(dim=1)  # (B,), (M,)
    d2 = (sq_e[:, None] + sq_r[None, :] - 2.0 * emb @ ref.T).clamp_min(0.0)  # (B, M); NaN stays NaN
    if other is None:
        d2 = d2.masked_fill(torch.eye(emb.shape[0], dtype=torch.bool, device=emb.device), 0.0)
    return d2 if squared else safe_sqrt(d2)

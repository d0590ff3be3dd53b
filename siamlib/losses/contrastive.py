"""Contrastive loss (Hadsell, Chopra & LeCun 2006).

    L = (1 - Y) * 1/2 * D^2  +  Y * 1/2 * max(0, m - D)^2

with ``Y = 0`` for a *similar* pair and ``Y = 1`` for a *dissimilar* one, as in
the paper. The argument is called ``dissimilar`` so the convention cannot be
missed (keras-io's example had it inverted for years).

Derived in notebooks/02_contrastive_loss.ipynb.
"""
from __future__ import annotations

import torch

from ..distances import pair_distance
from ._checks import check_binary, check_margin, check_pair_batch, check_reduction, reduce

__all__ = ["contrastive_loss", "contrastive_loss_from_distance"]


def contrastive_loss_from_distance(
    dist: torch.Tensor, dissimilar: torch.Tensor, margin: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """The contrastive loss on precomputed distances ``D`` of shape ``(B,)``.

    ``dissimilar``: ``(B,)`` of 0/1 (or bool), **1 = dissimilar pair** (Y in the
    paper). ``reduction``: ``"mean"`` | ``"sum"`` | ``"none"`` (per pair, ``(B,)``).
    Derived in notebooks/02_contrastive_loss.ipynb.
    """
    name = "contrastive_loss_from_distance"
    if not isinstance(dist, torch.Tensor) or dist.dim() != 1:
        raise ValueError(f"{name}: dist must be a 1-D tensor (B,) of pair distances; got {getattr(dist, 'shape', type(dist))}.")
    if dist.shape[0] == 0:
        raise ValueError(f"{name}: got an empty batch (B = 0); pass at least one pair.")
    margin = check_margin(name, margin)
    check_reduction(name, reduction)
    y = check_binary(name, dissimilar, dist.shape[0])  # (B,)
    return _contrastive(dist, y, margin, reduction)


def _contrastive(dist: torch.Tensor, y: torch.Tensor, margin: float, reduction: str) -> torch.Tensor:
    """The loss itself, on checked arguments: ``dist`` (B,), ``y`` (B,) float 0/1."""
    y = y.to(dist.device, dist.dtype)
    similar_term = 0.5 * dist.pow(2)  # pull together
    dissimilar_term = 0.5 * torch.relu(margin - dist).pow(2)  # push apart, up to the margin
    losses = (1.0 - y) * similar_term + y * dissimilar_term  # (B,)
    return reduce(losses, reduction)


def contrastive_loss(
    emb1: torch.Tensor, emb2: torch.Tensor, dissimilar: torch.Tensor, margin: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """Contrastive loss of Hadsell et al. (2006) on pairs of embeddings.

    Args:
        emb1, emb2: ``(B, D)`` embeddings, row ``i`` of each forms pair ``i``.
        dissimilar: ``(B,)`` 0/1 or bool, **1 = dissimilar pair, 0 = similar** (the paper's Y).
        margin: ``m > 0``; dissimilar pairs farther apart than ``m`` cost nothing.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (``(B,)``).

    The Euclidean distance is taken with a gradient-safe square root, so two
    identical embeddings give finite (zero) gradients instead of NaN.
    Derived in notebooks/02_contrastive_loss.ipynb.
    """
    name = "contrastive_loss"
    check_pair_batch(name, emb1, emb2)
    y = check_binary(name, dissimilar, emb1.shape[0])  # (B,)
    margin = check_margin(name, margin)
    check_reduction(name, reduction)
    dist = pair_distance(emb1, emb2)  # (B,)
    return _contrastive(dist, y, margin, reduction)

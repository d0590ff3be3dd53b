"""Koch, Zemel & Salakhutdinov (2015): a verification head trained as a classifier.

The head (``sl.models.SiameseNet(encoder, head="koch")``) maps a pair to a logit
``s = w . |h1 - h2| + b``; ``p(same) = sigmoid(s)`` is trained with binary
cross-entropy. Derived in notebooks/02_contrastive_loss.ipynb (as the
classifier-style alternative) and used in notebooks/06 (Omniglot).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._checks import check_binary, check_reduction

__all__ = ["koch_bce"]


def koch_bce(logits: torch.Tensor, dissimilar: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Binary cross-entropy of the "same" probability ``sigmoid(logits)``.

    Args:
        logits: ``(B,)`` (or ``(B, 1)``) raw scores, large = same class.
        dissimilar: ``(B,)`` 0/1 or bool, **1 = dissimilar pair** (the same
            convention as :func:`contrastive_loss`); the target is ``same = 1 - dissimilar``.

    Uses ``binary_cross_entropy_with_logits`` (log-sum-exp inside), so it stays
    finite for any logit, unlike ``BCE(sigmoid(s))``.
    Derived in notebooks/02_contrastive_loss.ipynb.
    """
    name = "koch_bce"
    if not isinstance(logits, torch.Tensor) or not logits.dtype.is_floating_point:
        raise ValueError(f"{name}: logits must be a float tensor of shape (B,); got {getattr(logits, 'dtype', type(logits))}.")
    if logits.dim() == 2 and logits.shape[1] == 1:
        logits = logits[:, 0]
    if logits.dim() != 1:
        raise ValueError(f"{name}: logits must have shape (B,) or (B, 1), one score per pair; got {tuple(logits.shape)}.")
    if logits.shape[0] == 0:
        raise ValueError(f"{name}: got an empty batch (B = 0); pass at least one pair.")
    check_reduction(name, reduction)
    y = check_binary(name, dissimilar, logits.shape[0]).to(logits.device, logits.dtype)  # (B,)
    same = 1.0 - y
    return F.binary_cross_entropy_with_logits(logits, same, reduction=reduction)

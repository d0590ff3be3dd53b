"""Contrastive loss (Hadsell, Chopra & LeCun 2006): ``L = (1 - Y) · ½ D²  +  Y · ½ max(0, m - D)²``, with
``Y`` = ``dissimilar`` (1 for a dissimilar pair). Derived in notebooks/02_contrastive_loss.ipynb."""
import torch

from ..distances import pair_distance
from ._checks import check_binary, check_pair_batch, check_positive, check_reduction, reduce

__all__ = ["contrastive_loss"]


def contrastive_loss(emb1: torch.Tensor, emb2: torch.Tensor, dissimilar: torch.Tensor, margin: float = 1.0,
                     reduction: str = "mean") -> torch.Tensor:
    """Contrastive loss on ``(B, D)`` pairs, gradient-safe at D = 0. Derived in notebooks/02_contrastive_loss.ipynb."""
    name = "contrastive_loss"
    check_pair_batch(name, emb1, emb2)
    dist = pair_distance(emb1, emb2)  # (B,)
    y = check_binary(name, dissimilar, len(dist)).to(dist.device, dist.dtype)  # (B,)
    margin = check_positive(name, "margin", margin)
    similar_term = 0.5 * dist.pow(2)  # pull together
    dissimilar_term = 0.5 * torch.relu(margin - dist).pow(2)  # push apart, up to the margin
    return reduce((1.0 - y) * similar_term + y * dissimilar_term, check_reduction(name, reduction))

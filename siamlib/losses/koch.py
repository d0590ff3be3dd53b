"""Koch, Zemel & Salakhutdinov (2015): a verification head ``s = w . |h1 - h2| + b`` trained as a classifier.
Derived in notebooks/02_contrastive_loss.ipynb (the classifier-style alternative); used in notebooks/06."""
import torch
import torch.nn.functional as F

from ._checks import check_binary

__all__ = ["koch_bce"]


def koch_bce(logits: torch.Tensor, dissimilar: torch.Tensor) -> torch.Tensor:
    """BCE of ``p(same) = sigmoid(logits)`` (finite for any logit). Derived in notebooks/02_contrastive_loss.ipynb."""
    if not isinstance(logits, torch.Tensor) or not logits.dtype.is_floating_point:
        raise ValueError("koch_bce: logits must be a float tensor of shape (B,); "
                         f"got {getattr(logits, 'dtype', type(logits))}.")
    logits = logits[:, 0] if logits.dim() == 2 and logits.shape[1] == 1 else logits
    if logits.dim() != 1:
        raise ValueError(f"koch_bce: logits must have shape (B,) or (B, 1), one score per pair; "
                         f"got {tuple(logits.shape)}.")
    if logits.shape[0] == 0:
        raise ValueError("koch_bce: got an empty batch (B = 0); pass at least one pair.")
    same = 1.0 - check_binary("koch_bce", dissimilar, logits.shape[0]).to(logits.device, logits.dtype)  # (B,)
    return F.binary_cross_entropy_with_logits(logits, same)  # mean over the pairs

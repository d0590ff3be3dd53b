"""Encoders and the Siamese wrapper: ONE encoder applied to two inputs (shared weights), and a head.
Derived in notebooks/01_twin_network.ipynb."""
import torch
import torch.nn.functional as F
from torch import nn

from .distances import pair_distance

__all__ = ["MnistEncoder", "OmniglotEncoder", "SiameseNet"]


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """3×3 convolution, batch norm, ReLU, 2×2 max-pooling: halves the image."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True), nn.MaxPool2d(2))


class _Encoder(nn.Module):
    """Conv blocks, global average pooling, a linear projection to ``emb_dim``, optional unit length."""

    def __init__(self, widths: list[int], emb_dim: int, normalize: bool):
        super().__init__()
        if emb_dim < 1:
            raise ValueError(f"emb_dim must be a positive integer; got {emb_dim}.")
        self.trunk = nn.Sequential(*(conv_block(a, b) for a, b in zip([1, *widths], widths)))
        self.proj = nn.Linear(widths[-1], emb_dim)
        self.emb_dim, self.normalize = emb_dim, normalize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 1 or not x.is_floating_point():
            raise ValueError(f"{type(self).__name__} expects float32 images (B, 1, H, W) in [0, 1]; got "
                             f"{tuple(x.shape)} {x.dtype}. Convert uint8 images with sl.data.to_float(images).")
        emb = self.proj(self.trunk(x).mean(dim=(2, 3)))  # (B, C) after pooling -> (B, D)
        return F.normalize(emb, dim=1) if self.normalize else emb


class MnistEncoder(_Encoder):
    """Three conv blocks (28 → 14 → 7 → 3 pixels) → ``emb_dim``. Derived in notebooks/01_twin_network.ipynb."""

    def __init__(self, emb_dim: int = 64, normalize: bool = True, width: int = 32):
        super().__init__([width, 2 * width, 4 * width], emb_dim, normalize)


class OmniglotEncoder(_Encoder):
    """Four conv blocks (Snell et al. 2017) → ``emb_dim``. Derived in notebooks/06_omniglot_one_shot.ipynb."""

    def __init__(self, emb_dim: int = 128, normalize: bool = True, width: int = 64):
        super().__init__([width] * 4, emb_dim, normalize)


class SiameseNet(nn.Module):
    """One shared encoder (``embed``) and a head (``compare``): ``"distance"`` ``‖f(x1) − f(x2)‖``, or ``"koch"``, the
    logit ``w·|f(x1) − f(x2)| + b``. Derived in notebooks/01_twin_network.ipynb and 06_omniglot_one_shot.ipynb."""

    def __init__(self, encoder: nn.Module, head: str = "distance"):
        super().__init__()
        if head not in ("distance", "koch"):
            raise ValueError(f"head must be 'distance' or 'koch'; got {head!r}.")
        self.encoder, self.head = encoder, head
        if head == "koch":
            if not hasattr(encoder, "emb_dim"):
                raise ValueError("head='koch' needs an encoder with .emb_dim (its embedding size), e.g. MnistEncoder.")
            self.koch = nn.Linear(encoder.emb_dim, 1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The shared encoder: ``(B, 1, H, W) -> (B, D)``."""
        return self.encoder(x)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        if x1.shape != x2.shape:
            raise ValueError(f"the two inputs must have the same shape; got {tuple(x1.shape)} and {tuple(x2.shape)}.")
        emb = self.encoder(torch.cat([x1, x2]))  # (2B, D): one pass, shared weights
        return self.compare(*emb.chunk(2))

    def compare(self, emb1: torch.Tensor, emb2: torch.Tensor) -> torch.Tensor:
        """The head alone on two ``(B, D)`` embeddings: a distance, or Koch's logit of "same"."""
        if self.head == "distance":
            return pair_distance(emb1, emb2)  # (B,)
        return self.koch((emb1 - emb2).abs()).squeeze(1)  # (B,)

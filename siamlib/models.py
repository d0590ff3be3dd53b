"""Encoders and the Siamese wrapper.

A Siamese ("twin") network is ONE encoder applied to two inputs; the weights
are shared because it is literally the same module called twice. The head
turns the two embeddings into a score: a Euclidean distance (contrastive and
triplet losses, lessons 02-04) or Koch et al.'s (2015) weighted L1 distance
followed by a sigmoid (lesson 06).

Derived in notebooks/01_twin_network.ipynb; trained in
notebooks/04_train_mnist.ipynb and notebooks/06_omniglot_one_shot.ipynb.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .distances import pair_distance

__all__ = ["MnistEncoder", "OmniglotEncoder", "SiameseNet"]


def conv_block(in_channels: int, out_channels: int, pool: bool = True) -> nn.Sequential:
    """3×3 convolution, batch norm, ReLU and (optionally) 2×2 max-pooling.

    The building block of both encoders (Snell et al. 2017 use four of these
    for Omniglot). Derived in notebooks/04_train_mnist.ipynb.
    """
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


def _check_input(x: torch.Tensor, name: str) -> None:
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(
            f"{name} expects float images of shape (B, 1, H, W); got {tuple(x.shape)}. "
            "Convert uint8 (N, H, W) images with sl.data.to_float(images)."
        )
    if not x.is_floating_point():
        raise ValueError(
            f"{name} expects float32 images in [0, 1]; got dtype {x.dtype}. "
            "Use sl.data.to_float(images)."
        )


class _Encoder(nn.Module):
    """Shared code: a conv trunk, global pooling, a linear projection, optional L2 norm."""

    def __init__(self, trunk: nn.Sequential, trunk_channels: int, emb_dim: int, normalize: bool):
        super().__init__()
        if emb_dim < 1:
            raise ValueError(f"emb_dim must be a positive integer; got {emb_dim}.")
        self.trunk = trunk
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.proj = nn.Linear(trunk_channels, emb_dim)
        self.emb_dim = emb_dim
        self.normalize = normalize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, type(self).__name__)
        h = self.trunk(x)  # (B, C, h, w)
        h = self.pool(h).flatten(1)  # (B, C)
        emb = self.proj(h)  # (B, D)
        if self.normalize:
            emb = F.normalize(emb, dim=1)  # (B, D), unit length
        return emb


class MnistEncoder(_Encoder):
    """A small conv encoder for 28×28 digits: three conv blocks → ``emb_dim``.

    28 → 14 → 7 → 3 (pooled), then global average pooling and a linear layer.
    With ``normalize=True`` the embedding lies on the unit sphere, so
    distances are in [0, 2]. About 100k parameters.

    Derived in notebooks/04_train_mnist.ipynb.
    """

    def __init__(self, emb_dim: int = 64, normalize: bool = True, width: int = 32):
        trunk = nn.Sequential(
            conv_block(1, width),  # (B, w, 14, 14)
            conv_block(width, 2 * width),  # (B, 2w, 7, 7)
            conv_block(2 * width, 4 * width),  # (B, 4w, 3, 3)
        )
        super().__init__(trunk, 4 * width, emb_dim, normalize)


class OmniglotEncoder(_Encoder):
    """Four conv blocks of ``width`` channels (Snell et al. 2017) → ``emb_dim``.

    Meant for Omniglot characters downscaled to 28×28 (28 → 14 → 7 → 3 → 1);
    any size works thanks to the global pooling. Far cheaper than Koch et
    al.'s 105×105 network, which matters on a CPU.

    Derived in notebooks/06_omniglot_one_shot.ipynb.
    """

    def __init__(self, emb_dim: int = 128, normalize: bool = True, width: int = 64):
        trunk = nn.Sequential(
            conv_block(1, width),
            conv_block(width, width),
            conv_block(width, width),
            conv_block(width, width),
        )
        super().__init__(trunk, width, emb_dim, normalize)


class SiameseNet(nn.Module):
    """One shared encoder applied to two inputs, and a head that compares them.

    ``head="distance"``: ``forward(x1, x2)`` returns the Euclidean distance
    ``‖f(x1) − f(x2)‖`` of shape ``(B,)`` (small = similar).
    ``head="koch"``: ``forward(x1, x2)`` returns the logit of "same class",
    ``w·|f(x1) − f(x2)| + b`` of shape ``(B,)``; ``sigmoid`` of it is Koch et
    al.'s (2015) similarity probability.

    ``embed(x)`` is the encoder alone, for retrieval and episodes.
    Derived in notebooks/01_twin_network.ipynb (distance head) and
    notebooks/06_omniglot_one_shot.ipynb (Koch head).
    """

    HEADS = ("distance", "koch")

    def __init__(self, encoder: nn.Module, head: str = "distance", emb_dim: int | None = None):
        super().__init__()
        if head not in self.HEADS:
            raise ValueError(f"head must be one of {self.HEADS}; got {head!r}.")
        self.encoder = encoder
        self.head = head
        if head == "koch":
            dim = emb_dim if emb_dim is not None else getattr(encoder, "emb_dim", None)
            if dim is None:
                raise ValueError(
                    "head='koch' needs the embedding size: pass emb_dim=..., or use an "
                    "encoder with an .emb_dim attribute (sl.models.MnistEncoder / OmniglotEncoder)."
                )
            self.koch = nn.Linear(dim, 1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The shared encoder: (B, 1, H, W) → (B, D)."""
        return self.encoder(x)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        if x1.shape != x2.shape:
            raise ValueError(
                f"the two inputs must have the same shape; got {tuple(x1.shape)} and {tuple(x2.shape)}."
            )
        emb = self.encoder(torch.cat([x1, x2]))  # (2B, D): one pass, shared weights
        return self.compare(*emb.chunk(2))

    def compare(self, emb1: torch.Tensor, emb2: torch.Tensor) -> torch.Tensor:
        """The head alone, on two ``(B, D)`` embeddings: a distance, or Koch's logit of "same"."""
        if self.head == "distance":
            return pair_distance(emb1, emb2)  # (B,), exact, finite gradient at 0
        return self.koch((emb1 - emb2).abs()).squeeze(1)  # (B,) logit of "same"

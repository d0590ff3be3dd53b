"""Augmentation: a small random affine distortion of each image (Koch et al. 2015 trained on such distortions).
Derived in notebooks/06_omniglot_one_shot.ipynb."""
import math

import torch
import torch.nn.functional as F

__all__ = ["random_affine"]


def random_affine(x: torch.Tensor, generator: torch.Generator | None = None, degrees: float = 10.0,
                  scale: float = 0.1, shear: float = 0.1, translate: float = 0.1) -> torch.Tensor:
    """Random rotation, scale, shear and shift of ``(B, C, H, W)`` images. Derived in 06_omniglot_one_shot.ipynb."""
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"random_affine expects float images (B, C, H, W); got {tuple(x.shape)} {x.dtype}. "
                         "Use sl.data.to_float(images) first.")
    b = len(x)

    def uniform(*shape):  # in [-1, 1], drawn on the CPU so a seeded generator gives the same draw anywhere
        return (torch.rand(*shape, generator=generator, dtype=torch.float64) * 2 - 1).to(x.device, x.dtype)
    angle = uniform(b) * math.radians(degrees)  # (B,)
    sx, sy = 1 + scale * uniform(2, b)  # (B,) each
    sh = shear * uniform(b)  # (B,)
    theta = torch.zeros(b, 2, 3, device=x.device, dtype=x.dtype)  # (B, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = sx * torch.cos(angle), -torch.sin(angle) + sh
    theta[:, 1, 0], theta[:, 1, 1] = torch.sin(angle), sy * torch.cos(angle)
    theta[:, :, 2] = 2 * translate * uniform(b, 2)  # grid coordinates span [-1, 1]: 2 = the image size
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")

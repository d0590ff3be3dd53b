"""The one container every loader returns (images, labels, class names, groups), and :func:`to_float`."""
from dataclasses import dataclass

import torch


@dataclass
class ImageSet:
    """Images ``(N, H, W)`` uint8 (ink = 255), ``labels`` ``(N,)`` int64 into ``class_names``, ``groups`` ``(N,)``
    int64 (alphabets) or None, ``source``; ``s.subset(idx)`` keeps the rows ``idx``."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    groups: torch.Tensor | None = None
    source: str = ""
    group_names: list[str] | None = None

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 3:
            raise ValueError(f"ImageSet.images must be (N, H, W) uint8; got {tuple(self.images.shape)} "
                             f"{self.images.dtype}. Convert with (x * 255).round().to(torch.uint8).")
        for name, t in (("labels", self.labels), ("groups", self.groups)):
            if t is not None and (t.dtype != torch.int64 or t.shape != (len(self.images),)):
                raise ValueError(f"ImageSet.{name} must be int64 of shape ({len(self.images)},); got "
                                 f"{tuple(t.shape)} {t.dtype}.")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx) -> "ImageSet":
        """The rows ``idx`` (indices or a boolean mask); class ids and names are kept."""
        idx = torch.as_tensor(idx)
        return ImageSet(self.images[idx], self.labels[idx], self.class_names,
                        None if self.groups is None else self.groups[idx], self.source, self.group_names)

    def __repr__(self) -> str:
        n, h, w = self.images.shape
        return f"ImageSet(N={n}, size={h}x{w}, classes={len(self.class_names)}, source={self.source!r})"


def to_float(images) -> torch.Tensor:
    """``(N, H, W)`` or ``(N, 1, H, W)`` images → ``(N, 1, H, W)`` float32 in [0, 1]. Used in 04_train_mnist.ipynb."""
    x = torch.as_tensor(images)
    x = x.reshape(1, 1, *x.shape) if x.dim() == 2 else x.unsqueeze(1) if x.dim() == 3 else x
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"to_float expects (N, H, W) or (N, 1, H, W) grayscale images; got {tuple(x.shape)}.")
    if x.dtype == torch.uint8:
        return x.to(torch.float32) / 255.0
    if x.dtype.is_floating_point:
        return x.to(torch.float32)
    raise ValueError(f"to_float expects uint8 (0..255) or float (0..1) images; got dtype {x.dtype}.")

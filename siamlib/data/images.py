"""The one container every loader returns: images, labels, class names, groups.

Derived in notebooks/01_twin_network.ipynb (MNIST) and used by every lesson.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


def _as_long(x, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        raise ValueError(f"{name} must hold integers, got dtype {t.dtype}; pass class ids such as torch.int64.")
    return t.to(torch.int64)


@dataclass
class ImageSet:
    """A labelled set of grayscale images, ink = 255.

    Attributes:
        images: ``(N, H, W)`` ``torch.uint8``, strokes bright (Omniglot is inverted on load).
        labels: ``(N,)`` ``torch.int64`` class ids in ``range(len(class_names))``.
        class_names: one name per class id (``"7"`` for MNIST, ``"Latin/character03"`` for Omniglot).
        groups: ``(N,)`` ``torch.int64`` or ``None``: the alphabet id of each image for Omniglot.
        source: where the data came from, in words (file and subset).

    ``len(s)`` is N; ``s.subset(idx)`` keeps the rows ``idx`` (indices or a boolean mask).
    Models take ``sl.data.to_float(s.images)``.
    Derived in notebooks/01_twin_network.ipynb.
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    groups: torch.Tensor | None = None
    source: str = ""
    group_names: list[str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.images = torch.as_tensor(self.images)
        if self.images.dtype != torch.uint8 or self.images.dim() != 3:
            raise ValueError(
                f"ImageSet.images must be a (N, H, W) uint8 tensor, got {tuple(self.images.shape)} "
                f"{self.images.dtype}; convert with (x * 255).round().to(torch.uint8)."
            )
        self.labels = _as_long(self.labels, "ImageSet.labels")
        if self.labels.shape != (len(self.images),):
            raise ValueError(
                f"ImageSet.labels must have shape ({len(self.images)},) to match the images, "
                f"got {tuple(self.labels.shape)}."
            )
        if self.groups is not None:
            self.groups = _as_long(self.groups, "ImageSet.groups")
            if self.groups.shape != self.labels.shape:
                raise ValueError(
                    f"ImageSet.groups must have shape {tuple(self.labels.shape)} like labels, "
                    f"got {tuple(self.groups.shape)}."
                )
        self.class_names = list(self.class_names)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_classes(self) -> int:
        """Number of class ids (``len(class_names)``), present in this set or not."""
        return len(self.class_names)

    def subset(self, idx) -> "ImageSet":
        """The rows ``idx`` (indices or boolean mask); class ids and names are kept as they are."""
        idx = torch.as_tensor(idx)
        if idx.dtype != torch.bool:
            idx = idx.to(torch.int64)
        return ImageSet(
            images=self.images[idx],
            labels=self.labels[idx],
            class_names=self.class_names,
            groups=None if self.groups is None else self.groups[idx],
            source=self.source,
            group_names=self.group_names,
        )

    def __repr__(self) -> str:
        n, h, w = self.images.shape
        g = "" if self.groups is None else f", groups={int(self.groups.unique().numel())}"
        return f"ImageSet(N={n}, size={h}x{w}, classes={self.n_classes}{g}, source={self.source!r})"


def to_float(images) -> torch.Tensor:
    """``(N, H, W)`` or ``(N, 1, H, W)`` images → ``(N, 1, H, W)`` ``float32`` in ``[0, 1]``.

    ``uint8`` is divided by 255; a float input is taken to be in ``[0, 1]`` already.
    Derived in notebooks/01_twin_network.ipynb.
    """
    x = torch.as_tensor(images)
    if x.dim() == 2:  # a single image (H, W)
        x = x.unsqueeze(0)
    if x.dim() == 3:
        x = x.unsqueeze(1)  # (N, 1, H, W)
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(
            f"to_float expects (N, H, W) or (N, 1, H, W) grayscale images, got shape {tuple(x.shape)}."
        )
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(255.0)
    if x.dtype.is_floating_point:
        return x.to(torch.float32)
    raise ValueError(f"to_float expects uint8 (0..255) or float (0..1) images, got dtype {x.dtype}.")

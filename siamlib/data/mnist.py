"""MNIST read in place from ``root/MNIST/raw/`` (torchvision's ``.gz`` files or their extracted copies); missing
files are downloaded and checked against torchvision's md5s. With only the test split (the shared mirror), "train"
and "test" are disjoint seeded subsets of it (8,000 / 2,000) and a :class:`MnistSubsetWarning` says so.
Derived in notebooks/01_twin_network.ipynb."""
import gzip
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from .. import config
from .download import DataNotFoundError, check_md5, download_missing
from .images import ImageSet

#: torchvision's published md5 of each file (``torchvision.datasets.MNIST.resources``; a test keeps them equal).
MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
N_CLASSES, FALLBACK_N_TRAIN, FALLBACK_SEED = 10, 8000, 0


class MnistSubsetWarning(UserWarning):
    """No train split: "train" and "test" are disjoint parts of the test split. Used in 04_train_mnist.ipynb."""


def _find(raw: Path, name: str) -> Path | None:
    """The ``.gz`` file, or torchvision's extracted copy beside it."""
    return next((p for p in (raw / name, raw / name[:-3]) if p.is_file()), None)


def _present(raw: Path, split: str) -> bool:
    return all(_find(raw, n) is not None for n in FILES[split])


def read_idx(path: Path) -> np.ndarray:
    """Parse an idx file (``.gz`` or raw) into a uint8 array, checking its header and length."""
    data = gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()
    if len(data) < 4 or data[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path.name} is not an unsigned-byte idx file (magic number {data[:4]!r}); "
                         f"delete {path} and download it again.")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(data[3])]
    offset = 4 + 4 * data[3]
    if len(data) - offset != int(np.prod(dims)):
        raise ValueError(f"{path.name} is truncated: its header says {dims}, it holds {len(data) - offset} bytes; "
                         f"delete {path} and download it again.")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


def _read_split(raw: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    paths = [_find(raw, n) for n in FILES[split]]
    for name, p in zip(FILES[split], paths):
        if p.suffix == ".gz":
            check_md5(p, MD5[name])
    images, labels = (read_idx(p) for p in paths)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"MNIST {split} files in {raw} disagree: images {images.shape}, labels {labels.shape}.")
    if labels.max(initial=0) >= N_CLASSES:
        raise ValueError(f"{paths[1].name} holds label {labels.max()}, but MNIST has {N_CLASSES} classes (0-9): "
                         "the file is not MNIST's. Replace it with the published file.")
    return images, labels


def fallback_split(n: int = 10000, n_train: int = FALLBACK_N_TRAIN, seed: int = FALLBACK_SEED):
    """Disjoint ``(train_idx, test_idx)`` covering ``range(n)``: a seeded permutation cut at ``n_train``."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))  # (n,)
    return perm[:n_train].sort().values, perm[n_train:].sort().values


def load_mnist(split: str = "train", root: str | os.PathLike | None = None, download: bool = True) -> ImageSet:
    """MNIST "train" or "test" as an ImageSet of ``(N, 28, 28)`` uint8 images. Derived in 01_twin_network.ipynb."""
    if split not in FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    raw = (Path(root) if root is not None else config.data_root()) / "MNIST" / "raw"
    missing = {name: md5 for name, md5 in MD5.items() if _find(raw, name) is None}
    reasons, cause = download_missing(missing, raw, config.mirrors("mnist"), download)
    if _present(raw, "train") and (split == "train" or _present(raw, "test")):
        images, labels = _read_split(raw, split)
        source = f"MNIST {split} split ({len(labels):,} images)"
    elif _present(raw, "test"):
        images, labels = _read_split(raw, "test")
        idx = fallback_split(len(labels))[0 if split == "train" else 1].numpy()
        images, labels = images[idx], labels[idx]
        warnings.warn(f"MNIST's training split is not in the data root: 'train' and 'test' are disjoint subsets "
                      f"of the 10,000 test images ({FALLBACK_N_TRAIN:,} / {10000 - FALLBACK_N_TRAIN:,}).",
                      MnistSubsetWarning, stacklevel=2)
        source = f"MNIST test split, disjoint subset used as '{split}' ({len(labels):,} images)"
    else:
        raise DataNotFoundError(f"MNIST not found in {raw}.", [f"Looked for {', '.join(FILES['test'])}.", *reasons],
                                cause)
    return ImageSet(images=torch.from_numpy(images.copy()), labels=torch.from_numpy(labels.astype(np.int64)),
                    class_names=[str(d) for d in range(N_CLASSES)], source=source)

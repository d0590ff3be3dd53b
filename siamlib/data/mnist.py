"""MNIST from torchvision's files, read in place from ``root/MNIST/raw/``.

* Online: the four ``.gz`` files are downloaded from torchvision's mirrors
  (``torchvision.datasets.MNIST.mirrors``) and checked against torchvision's
  md5s (``torchvision.datasets.MNIST.resources``, copied in :data:`MD5`; a test
  keeps the two equal), then parsed here straight from the ``.gz``.
* Offline with only the 10,000-image test split (the shared mirror): ``"train"``
  and ``"test"`` are two *disjoint* subsets of it (8,000 / 2,000, seeded), and
  a :class:`MnistSubsetWarning` says so once per process.
* Nothing there and no download: :class:`DataNotFoundError` names the folder,
  the files and the ways out. Never a silent swap to other data.

To use another mirror (an institutional copy, or a test server) set
``siamlib.data.mnist.MIRRORS = ["http://host/path/"]`` (``None``, the
default, means torchvision's list).

Derived in notebooks/01_twin_network.ipynb.
"""
from __future__ import annotations

import gzip
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from .. import config
from .download import (
    ChecksumError,
    DataNotFoundError,
    DownloadError,
    check_md5,
    fetch,
    is_writable_dir,
    source_key,
)
from .images import ImageSet

#: Download mirrors (URL prefixes ending in "/"); ``None`` = ``torchvision.datasets.MNIST.mirrors``.
MIRRORS: list[str] | None = None

#: torchvision's published md5 for each file (``torchvision.datasets.MNIST.resources``).
MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
CLASS_NAMES = [str(d) for d in range(10)]

#: The offline fallback: how many of the 10,000 test images become "train", and the seed.
FALLBACK_N_TRAIN = 8000
FALLBACK_SEED = 0


class MnistSubsetWarning(UserWarning):
    """MNIST's training split is missing, so train/test are disjoint subsets of the test split.

    Used in notebooks/04_train_mnist.ipynb and 05_explore_embeddings.ipynb.
    """


_FALLBACK_WARNED = False
_MEMO: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def mirrors() -> list[str]:
    """The URL prefixes tried in order: :data:`MIRRORS`, else torchvision's ``MNIST.mirrors``."""
    if MIRRORS is not None:
        return list(MIRRORS)
    from torchvision.datasets import MNIST  # imported only when a download is needed

    return list(MNIST.mirrors)


def raw_dir(root: str | os.PathLike | None = None) -> Path:
    """``root/MNIST/raw`` (torchvision's layout); ``root`` defaults to ``sl.config.data_root()``."""
    return (Path(root) if root is not None else config.data_root()) / "MNIST" / "raw"


def _find(raw: Path, name: str) -> Path | None:
    """The ``.gz`` file, or torchvision's extracted copy next to it."""
    for p in (raw / name, raw / name[: -len(".gz")]):
        if p.is_file():
            return p
    return None


def _present(raw: Path, split: str) -> bool:
    return all(_find(raw, n) is not None for n in FILES[split])


def read_idx(path: Path) -> np.ndarray:
    """Parse an idx file (``.gz`` or raw) into a uint8 array, checking its header."""
    data = gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte idx file (bad magic number {data[:4]!r}).")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(dims)):
        raise ValueError(f"{path} is truncated: header says {dims}, found {len(data) - offset} bytes of data.")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


def _read_split(raw: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    paths = [_find(raw, n) for n in FILES[split]]
    key = source_key(*paths)  # changes when a file's path, size or mtime does
    if key not in _MEMO:
        for name, p in zip(FILES[split], paths):
            if p.suffix == ".gz":
                check_md5(p, MD5[name])
        images, labels = (read_idx(p) for p in paths)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"MNIST {split} files in {raw} disagree: images {images.shape}, labels {labels.shape}.")
        _MEMO[key] = (images, labels)
    return _MEMO[key]


def _download(raw: Path, split: str) -> None:
    for name in FILES[split]:
        if _find(raw, name) is None:
            fetch([m + name for m in mirrors()], raw / name, MD5[name])


def fallback_split(n: int = 10000, n_train: int = FALLBACK_N_TRAIN, seed: int = FALLBACK_SEED):
    """Disjoint ``(train_idx, test_idx)`` covering ``range(n)``: a seeded permutation cut at ``n_train``.

    Used when only MNIST's test split is on disk.
    """
    if not 0 < n_train < n:
        raise ValueError(f"n_train must be between 1 and n - 1 = {n - 1}, got {n_train}.")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))  # (n,)
    return perm[:n_train].sort().values, perm[n_train:].sort().values


def _not_found(raw: Path, reasons: list[str]) -> DataNotFoundError:
    files = ", ".join(FILES["train"] + FILES["test"])
    why = "".join(f"\n  - {r}" for r in reasons)
    return DataNotFoundError(
        f"MNIST not found. Looked in {raw} for {files} (at least the two t10k files)."
        f"{why}\nWays out: set SIAMLIB_DATA to a folder that holds MNIST/raw/ (for example the "
        f"offline mirror ../shared/data); or go online and call again with download=True; or "
        f"download the files by hand from {mirrors_text()} into {raw}."
    )


def mirrors_text() -> str:
    try:
        return " or ".join(mirrors())
    except Exception:  # torchvision missing: still give a useful message
        return "https://ossci-datasets.s3.amazonaws.com/mnist/"


def load_mnist(split: str = "train", root: str | os.PathLike | None = None, download: bool = True) -> ImageSet:
    """MNIST ``split`` ("train" or "test") as an :class:`ImageSet` of ``(N, 28, 28)`` uint8 images.

    Files are read in place from ``root/MNIST/raw`` (``root`` defaults to
    ``sl.config.data_root()``, i.e. ``SIAMLIB_DATA``). Missing files are
    downloaded from torchvision's mirrors when ``download`` is true and the
    root is writable. If the training split is still missing but the test
    split is there, "train" and "test" are disjoint subsets of the test split
    (8,000 / 2,000) and a :class:`MnistSubsetWarning` says so (once per process).
    Raises :class:`DataNotFoundError` if no MNIST file can be found or fetched.

    Derived in notebooks/01_twin_network.ipynb.
    """
    global _FALLBACK_WARNED
    if split not in FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    raw = raw_dir(root)
    reasons: list[str] = []
    last_error: Exception | None = None
    if download and not (_present(raw, "train") and _present(raw, "test")):
        if not is_writable_dir(raw):
            reasons.append(f"no download tried: {raw} is not writable (a read-only data root)")
        else:
            for s in ("train", "test"):
                try:
                    _download(raw, s)
                except ChecksumError as e:
                    reasons.append(f"download of the {s} split failed the checksum: {e}")
                    last_error = e
                except DownloadError as e:
                    reasons.append(f"download of the {s} split failed: {e}")
                    last_error = e
    elif not download:
        reasons.append("no download tried (download=False)")

    if _present(raw, "train") and (_present(raw, "test") or split == "train"):
        images, labels = _read_split(raw, split)
        return ImageSet(
            images=torch.from_numpy(images.copy()),
            labels=torch.from_numpy(labels.astype(np.int64)),
            class_names=CLASS_NAMES,
            source=f"MNIST {split} split ({len(labels):,} images) from {raw}",
        )

    if _present(raw, "test"):
        images, labels = _read_split(raw, "test")
        train_idx, test_idx = fallback_split(len(labels))
        idx = (train_idx if split == "train" else test_idx).numpy()
        if not _FALLBACK_WARNED:
            _FALLBACK_WARNED = True
            why = "; ".join(reasons) or "training files absent"
            warnings.warn(
                f"MNIST's training split (train-*.gz) is not in {raw} ({why}). Using DISJOINT subsets of "
                f"the 10,000-image TEST split instead: 'train' = {len(train_idx):,} images, "
                f"'test' = the other {len(test_idx):,} (seed {FALLBACK_SEED}). Numbers will not match "
                "published MNIST results. Go online (download=True, writable SIAMLIB_DATA) for the full 60,000.",
                MnistSubsetWarning,
                stacklevel=2,
            )
        return ImageSet(
            images=torch.from_numpy(images[idx].copy()),
            labels=torch.from_numpy(labels[idx].astype(np.int64)),
            class_names=CLASS_NAMES,
            source=(
                f"MNIST test split from {raw}, disjoint subset used as '{split}' "
                f"({len(idx):,} of {len(labels):,} images; training split not present)"
            ),
        )
    raise _not_found(raw, reasons) from last_error

"""Omniglot (Lake et al., 2015) and Lake's 20 one-shot runs, read from the zips in place.

Subsets (``images_<subset>.zip``):

* ``"background"`` (30 alphabets, 964 characters) and ``"evaluation"``
  (20 alphabets, 659 characters): torchvision's zips and md5s
  (``torchvision.datasets.Omniglot.zips_md5``).
* ``"background_small1"`` / ``"background_small2"`` (5 alphabets each, the
  "minimal training" sets) from the Omniglot repository.
* ``all_runs.zip``: the 20 runs of 20-way within-alphabet one-shot
  classification, see :func:`load_lake_runs`.

Zips are looked for in ``root/omniglot/`` and ``root/omniglot-py/``
(torchvision's folder) and downloaded, when missing and allowed, into
``root/omniglot/`` from ``sl.config.mirrors("omniglot")`` (the Omniglot
repository's ``python/`` folder, torchvision's source).
Images are inverted on load (strokes = 255) and decoded once into a cache in
``sl.config.cache_dir()``, keyed by the zip's path, size and mtime.

Derived in notebooks/06_omniglot_one_shot.ipynb.
"""
from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from .. import config
from .download import ChecksumError, DataNotFoundError, DownloadError, cached_arrays, check_md5, fetch, is_writable_dir, source_key
from .images import ImageSet

#: Published md5 of each zip. background/evaluation: torchvision's ``Omniglot.zips_md5`` (a test
#: keeps them equal). background_small1 and all_runs: the shared mirror's README (the
#: files in the Omniglot repository). background_small2: no published md5 is known to us, so
#: nothing is verified for it (``None``).
MD5: dict[str, str | None] = {
    "images_background": "68d2efa1b9178cc56df9314c21c6e718",
    "images_evaluation": "6b91aef0f799c5bb55b94e3f2daec811",
    "images_background_small1": "e704a628b5459e08445c13499850abc4",
    "images_background_small2": None,
    "all_runs": "e8996daecdf12afeeb4a53a179f06b19",
}
SUBSETS = ("background", "evaluation", "background_small1", "background_small2")
FOLDERS = ("omniglot", "omniglot-py")
_CACHE_VERSION = "1"


def find_zip(name: str, root: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Path of ``<name>.zip`` under ``root/omniglot`` or ``root/omniglot-py``, downloaded if missing and allowed."""
    root = Path(root) if root is not None else config.data_root()
    filename = f"{name}.zip"
    found = next((root / f / filename for f in FOLDERS if (root / f / filename).is_file()), None)
    if found is not None:
        return found
    dest, reasons, cause = root / FOLDERS[0] / filename, [], None
    if not download:
        reasons.append("No download was tried (download=False).")
    elif not is_writable_dir(dest.parent):
        reasons.append(f"No download was tried: {dest.parent} is read-only.")
    else:
        try:
            return fetch([m + filename for m in config.mirrors("omniglot")], dest, MD5.get(name))
        except DownloadError as err:
            reasons.append(f"Download failed: {err}")
            cause = err
    raise DataNotFoundError(f"Omniglot file {filename} not found in {root / FOLDERS[0]}.", reasons, cause)


def _resize_to(size) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int):
        size = (size, size)
    h, w = (int(s) for s in size)
    if h <= 0 or w <= 0:
        raise ValueError(f"size must be a positive int or (height, width), got {size!r}.")
    return h, w


def _decode_png(data: bytes, hw: tuple[int, int] | None) -> np.ndarray:
    """PNG bytes → ``(H, W)`` uint8 with strokes = 255, optionally resized (antialiased)."""
    from PIL import Image

    img = Image.open(io.BytesIO(data)).convert("L")
    img = Image.fromarray(255 - np.asarray(img, dtype=np.uint8))  # invert: ink bright
    if hw is not None and img.size != (hw[1], hw[0]):
        # PIL's bilinear filter widens with the scale factor, so downscaling is antialiased
        img = img.resize((hw[1], hw[0]), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def _open_zip(path: Path, name: str) -> zipfile.ZipFile:
    check_md5(path, MD5.get(name))
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ChecksumError(f"{path} is not a readable zip; delete it and download it again.") from None


def _decode_subset(path: Path, name: str, hw) -> dict:
    from tqdm.auto import tqdm

    with _open_zip(path, name) as z:
        entries = []
        for n in z.namelist():
            parts = PurePosixPath(n).parts
            if n.endswith(".png") and len(parts) >= 3:
                entries.append((parts[-3], parts[-2], parts[-1], n))  # alphabet, character, file
        if not entries:
            raise ValueError(f"{path} holds no Alphabet/character/*.png images; is it an Omniglot zip?")
        entries.sort()
        alphabets = sorted({a for a, _, _, _ in entries})
        characters = sorted({(a, c) for a, c, _, _ in entries})
        alpha_id = {a: i for i, a in enumerate(alphabets)}
        char_id = {ac: i for i, ac in enumerate(characters)}
        images = np.stack(
            [_decode_png(z.read(n), hw) for _, _, _, n in tqdm(entries, desc=f"decoding {path.name}", leave=False)]
        )  # (N, H, W)
    return {
        "images": images,
        "labels": np.array([char_id[(a, c)] for a, c, _, _ in entries], dtype=np.int64),
        "groups": np.array([alpha_id[a] for a, _, _, _ in entries], dtype=np.int64),
        "class_names": np.array([f"{a}/{c}" for a, c in characters]),
        "group_names": np.array(alphabets),
    }


def _cached(stem: str, path: Path, hw, decode) -> dict:
    """The decoded arrays of ``path`` at size ``hw``, from the cache or ``decode()``."""
    tag = "orig" if hw is None else f"{hw[0]}x{hw[1]}"
    return cached_arrays("omniglot", f"{stem}-{tag}", source_key(path, extra=_CACHE_VERSION + tag), decode)


def load_omniglot(
    subset: str = "background", root: str | os.PathLike | None = None, download: bool = True, size=None
) -> ImageSet:
    """An Omniglot subset as an :class:`ImageSet`: strokes = 255, 105×105 unless ``size`` is given.

    ``labels`` are character ids, ``class_names[i]`` is ``"Alphabet/characterNN"``,
    ``groups`` is the alphabet id of each image (``group_names`` holds the alphabet
    names). ``size`` (int or ``(h, w)``) resizes with PIL's antialiased bilinear filter.
    ``subset`` is one of "background", "evaluation", "background_small1", "background_small2".

    Derived in notebooks/06_omniglot_one_shot.ipynb.
    """
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}.")
    hw = _resize_to(size)
    name = f"images_{subset}"
    path = find_zip(name, root, download)
    arrays = _cached(subset, path, hw, lambda: _decode_subset(path, name, hw))
    return ImageSet(
        images=torch.from_numpy(arrays["images"]),
        labels=torch.from_numpy(arrays["labels"]),
        class_names=[str(s) for s in arrays["class_names"]],
        groups=torch.from_numpy(arrays["groups"]),
        source=f"Omniglot {subset} ({path.name})",
        group_names=[str(s) for s in arrays["group_names"]],
    )


# ----------------------------------------------------------------- Lake's 20 runs
@dataclass
class OneShotRun:
    """One of Lake et al.'s 20-way one-shot runs (within one evaluation alphabet).

    Attributes:
        name: "run01" … "run20".
        train_images: ``(20, H, W)`` uint8, one example of each of 20 characters (class01 … class20).
        test_images: ``(20, H, W)`` uint8 (item01 … item20), each drawn by another person.
        answers: ``(20,)`` int64, for each test image the index into ``train_images`` of its character.

    Derived in notebooks/06_omniglot_one_shot.ipynb.
    """

    name: str
    train_images: torch.Tensor
    test_images: torch.Tensor
    answers: torch.Tensor


def _decode_runs(path: Path, hw) -> dict:
    with _open_zip(path, "all_runs") as z:
        names = z.namelist()
        runs = sorted({PurePosixPath(n).parts[0] for n in names if n.endswith("class_labels.txt")})
        if not runs:
            raise ValueError(f"{path} holds no runNN/class_labels.txt; is it Lake's all_runs.zip?")
        train, test, answers = [], [], []
        for run in runs:
            tr = sorted(n for n in names if n.startswith(f"{run}/training/") and n.endswith(".png"))
            te = sorted(n for n in names if n.startswith(f"{run}/test/") and n.endswith(".png"))
            lines = z.read(f"{run}/class_labels.txt").decode().split()
            # class_labels.txt: one line per test image, "runNN/test/itemXX.png runNN/training/classYY.png"
            pairs = dict(zip(lines[0::2], lines[1::2]))
            if len(pairs) != len(te) or set(pairs) != set(te):
                raise ValueError(f"{path}: {run}/class_labels.txt does not list each of the {len(te)} test images once.")
            answers.append([tr.index(pairs[t]) for t in te])
            train.append(np.stack([_decode_png(z.read(n), hw) for n in tr]))  # (20, H, W)
            test.append(np.stack([_decode_png(z.read(n), hw) for n in te]))  # (20, H, W)
    return {
        "names": np.array(runs),
        "train": np.stack(train),  # (R, 20, H, W)
        "test": np.stack(test),  # (R, 20, H, W)
        "answers": np.array(answers, dtype=np.int64),  # (R, 20)
    }


def load_lake_runs(root: str | os.PathLike | None = None, download: bool = True, size=None) -> list[OneShotRun]:
    """Lake et al.'s 20 one-shot runs from ``all_runs.zip``: a list of 20 :class:`OneShotRun`.

    Each run has 20 training images (one per character), 20 test images and the
    answer key from ``class_labels.txt``. Images are inverted (strokes = 255) and
    optionally resized like :func:`load_omniglot`.

    Derived in notebooks/06_omniglot_one_shot.ipynb.
    """
    hw = _resize_to(size)
    path = find_zip("all_runs", root, download)
    arrays = _cached("all_runs", path, hw, lambda: _decode_runs(path, hw))
    return [
        OneShotRun(
            name=str(arrays["names"][r]),
            train_images=torch.from_numpy(arrays["train"][r].copy()),
            test_images=torch.from_numpy(arrays["test"][r].copy()),
            answers=torch.from_numpy(arrays["answers"][r].copy()),
        )
        for r in range(len(arrays["names"]))
    ]

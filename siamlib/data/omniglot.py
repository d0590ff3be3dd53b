"""Omniglot (Lake et al., 2015) and Lake's 20 one-shot runs, read in place from ``root/omniglot/*.zip``:
``images_<subset>.zip`` for "background" (30 alphabets), "evaluation" (20), "background_small1" and "_small2"
(5 each), and ``all_runs.zip``. Missing zips are downloaded when allowed; images are inverted (strokes = 255) and
decoded once into a cache. Derived in notebooks/06_omniglot_one_shot.ipynb."""
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from .. import config
from .download import ChecksumError, DataNotFoundError, cached_arrays, check_md5, download_missing
from .images import ImageSet

#: Published md5s: torchvision's ``Omniglot.zips_md5`` (a test keeps them equal); small1 and all_runs from the
#: shared mirror's README; none is known for small2, so nothing is verified for it.
MD5: dict[str, str | None] = {
    "images_background": "68d2efa1b9178cc56df9314c21c6e718",
    "images_evaluation": "6b91aef0f799c5bb55b94e3f2daec811",
    "images_background_small1": "e704a628b5459e08445c13499850abc4",
    "images_background_small2": None,
    "all_runs": "e8996daecdf12afeeb4a53a179f06b19",
    "strokes_background_small1": "830eb54f8a9297820a4471fcc4f9d9bc",  # the pen strokes, sl.strokes (lesson 09)
}
SUBSETS = ("background", "evaluation", "background_small1", "background_small2")


def find_zip(name: str, root: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Path of ``root/omniglot/<name>.zip``, downloaded if missing and allowed."""
    folder = (Path(root) if root is not None else config.data_root()) / "omniglot"
    dest = folder / f"{name}.zip"
    if not dest.is_file():
        reasons, cause = download_missing({dest.name: MD5.get(name)}, folder, config.mirrors("omniglot"), download)
        if reasons:
            raise DataNotFoundError(f"Omniglot file {dest.name} not found in {folder}.", reasons, cause)
    return dest


def _resize_to(size: int | None) -> tuple[int, int] | None:
    if size is not None and (not isinstance(size, int) or size <= 0):
        raise ValueError(f"size must be a positive int (pixels per side) or None for 105, got {size!r}.")
    return None if size is None else (size, size)


def _decode_png(data: bytes, hw: tuple[int, int] | None) -> np.ndarray:
    """PNG bytes → ``(H, W)`` uint8 with strokes = 255, optionally resized (PIL's bilinear filter antialiases)."""
    img = Image.fromarray(255 - np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=np.uint8))
    if hw is not None and img.size != (hw[1], hw[0]):
        img = img.resize((hw[1], hw[0]), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def _open_zip(path: Path, name: str) -> zipfile.ZipFile:
    check_md5(path, MD5.get(name))
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ChecksumError(f"{path} is not a readable zip; delete it and download it again.") from None


def _decode_subset(path: Path, name: str, hw) -> dict:
    with _open_zip(path, name) as z:
        entries = sorted((*PurePosixPath(n).parts[-3:], n) for n in z.namelist()
                         if n.endswith(".png") and len(PurePosixPath(n).parts) >= 3)  # (alphabet, character, file, n)
        if not entries:
            raise ValueError(f"{path} holds no Alphabet/character/*.png images; is it an Omniglot zip?")
        images = np.stack([_decode_png(z.read(e[3]), hw)
                           for e in tqdm(entries, desc=f"decoding {path.name}", leave=False)])  # (N, H, W)
    alphabets, characters = sorted({e[0] for e in entries}), sorted({e[:2] for e in entries})
    alpha_id, char_id = {a: i for i, a in enumerate(alphabets)}, {ac: i for i, ac in enumerate(characters)}
    return {"images": images, "labels": np.array([char_id[e[:2]] for e in entries], dtype=np.int64),
            "groups": np.array([alpha_id[e[0]] for e in entries], dtype=np.int64),
            "class_names": np.array([f"{a}/{c}" for a, c in characters]), "group_names": np.array(alphabets)}


def _cached(stem: str, path: Path, hw, decode) -> dict:
    tag = "orig" if hw is None else f"{hw[0]}x{hw[1]}"
    return cached_arrays("omniglot", f"{stem}-{tag}", path, "1" + tag, decode)  # "1": the cache format's version


def load_omniglot(subset: str = "background", root: str | os.PathLike | None = None, download: bool = True,
                  size=None) -> ImageSet:
    """An Omniglot subset (105×105 unless ``size``); labels are characters, groups alphabets.
    Derived in notebooks/06_omniglot_one_shot.ipynb."""
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}.")
    hw, name = _resize_to(size), f"images_{subset}"
    path = find_zip(name, root, download)
    arrays = _cached(subset, path, hw, lambda: _decode_subset(path, name, hw))
    return ImageSet(images=torch.from_numpy(arrays["images"]), labels=torch.from_numpy(arrays["labels"]),
                    class_names=[str(s) for s in arrays["class_names"]], groups=torch.from_numpy(arrays["groups"]),
                    source=f"Omniglot {subset} ({path.name})", group_names=[str(s) for s in arrays["group_names"]])


@dataclass
class OneShotRun:
    """``train_images`` ``(20, H, W)`` one per character, ``test_images`` ``(20, H, W)``, ``answers`` ``(20,)`` each
    test image's index in train_images. Derived in notebooks/06_omniglot_one_shot.ipynb."""

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
            # class_labels.txt: one line per test image, "runNN/test/itemXX.png runNN/training/classYY.png"
            lines = z.read(f"{run}/class_labels.txt").decode().split()
            pairs = dict(zip(lines[0::2], lines[1::2]))
            if len(pairs) != len(te) or set(pairs) != set(te):
                raise ValueError(f"{path}: {run}/class_labels.txt does not list each of the {len(te)} test "
                                 "images once.")
            answers.append([tr.index(pairs[t]) for t in te])
            train.append(np.stack([_decode_png(z.read(n), hw) for n in tr]))  # (20, H, W)
            test.append(np.stack([_decode_png(z.read(n), hw) for n in te]))  # (20, H, W)
    return {"names": np.array(runs), "train": np.stack(train), "test": np.stack(test),  # (R, 20, H, W) each
            "answers": np.array(answers, dtype=np.int64)}  # (R, 20)


def load_lake_runs(root: str | os.PathLike | None = None, download: bool = True, size=None) -> list[OneShotRun]:
    """Lake et al.'s 20 one-shot runs, prepared like :func:`load_omniglot`. Derived in 06_omniglot_one_shot.ipynb."""
    hw = _resize_to(size)
    path = find_zip("all_runs", root, download)
    a = _cached("all_runs", path, hw, lambda: _decode_runs(path, hw))
    return [OneShotRun(str(a["names"][r]), *(torch.from_numpy(a[k][r].copy()) for k in ("train", "test", "answers")))
            for r in range(len(a["names"]))]

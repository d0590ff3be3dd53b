"""load_omniglot and load_lake_runs: a synthetic zip (layout, caching) and the mirror's real files."""
from __future__ import annotations

import io
import os
import re
import shutil
import stat
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import siamlib as sl
from siamlib.data import omniglot

CLOSED = "http://127.0.0.1:9"  # nothing listens on the discard port: no test reaches the internet


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch):
    monkeypatch.setenv("SIAMLIB_MIRROR", CLOSED)


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).convert("1").save(buf, format="PNG")  # Omniglot's PNGs are 1-bit
    return buf.getvalue()


def _reference_decode(data: bytes) -> np.ndarray:
    return 255 - np.asarray(Image.open(io.BytesIO(data)).convert("L"))


def _write_synthetic(path: Path, seed: int) -> dict:
    """images_background_small2.zip with 2 alphabets; strokes black on white like the real files."""
    rng = np.random.default_rng(seed)
    layout = {"Zeta": ["character01", "character02"], "Alpha": ["character01", "character02", "character03"]}
    truth = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        for alphabet, chars in layout.items():
            for c in chars:
                for drawer in (1, 2, 3):
                    img = np.where(rng.random((105, 105)) < 0.1, 0, 255).astype(np.uint8)
                    name = f"images_background_small2/{alphabet}/{c}/0001_{drawer:02d}.png"
                    z.writestr(name, _png(img))
                    truth[name] = 255 - img
    return truth


def test_synthetic_zip_layout_labels_groups(tmp_path):
    truth = _write_synthetic(tmp_path / "omniglot" / "images_background_small2.zip", seed=0)
    s = sl.data.load_omniglot("background_small2", root=tmp_path, download=False)
    assert s.images.shape == (15, 105, 105) and s.images.dtype == torch.uint8
    assert s.class_names == [
        "Alpha/character01", "Alpha/character02", "Alpha/character03", "Zeta/character01", "Zeta/character02",
    ]
    assert s.group_names == ["Alpha", "Zeta"]
    assert s.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert s.groups.tolist() == [0] * 9 + [1] * 6
    first = "images_background_small2/Alpha/character01/0001_01.png"
    assert np.array_equal(s.images[0].numpy(), truth[first])  # inverted: strokes = 255


def test_cache_is_used_and_invalidated_when_the_zip_changes(tmp_path):
    zpath = tmp_path / "omniglot" / "images_background_small2.zip"
    _write_synthetic(zpath, seed=0)
    a = sl.data.load_omniglot("background_small2", root=tmp_path, download=False)
    caches = list((sl.config.cache_dir() / "omniglot").glob("background_small2-orig-*.npz"))
    assert caches, "no decoded cache written"
    assert not list((sl.config.cache_dir() / "omniglot").glob(".*"))  # no temp file left
    b = sl.data.load_omniglot("background_small2", root=tmp_path, download=False)
    assert torch.equal(a.images, b.images)
    truth = _write_synthetic(zpath, seed=1)  # new content at the same path
    os.utime(zpath, ns=(zpath.stat().st_atime_ns, zpath.stat().st_mtime_ns + 10**9))
    c = sl.data.load_omniglot("background_small2", root=tmp_path, download=False)
    assert not torch.equal(a.images, c.images)
    first = "images_background_small2/Alpha/character01/0001_01.png"
    assert np.array_equal(c.images[0].numpy(), truth[first])
    assert list(tmp_path.rglob("*.npz")) == []  # caches never go into the data root


def test_missing_zip_error_names_folders_and_ways_out(tmp_path):
    with pytest.raises(sl.data.DataNotFoundError) as info:
        sl.data.load_omniglot("evaluation", root=tmp_path, download=False)
    msg = str(info.value)
    assert "images_evaluation.zip" in msg and str(tmp_path / "omniglot") in msg
    assert "SIAMLIB_DATA" in msg.splitlines()[0] and "download=False" in msg
    with pytest.raises(ValueError, match="subset must be one of"):
        sl.data.load_omniglot("background_small3", root=tmp_path)
    with pytest.raises(ValueError, match="size must be"):
        sl.data.load_omniglot("background_small2", root=tmp_path, size=0)


def test_md5s_and_source_agree_with_torchvision():
    from torchvision.datasets import Omniglot

    for name, md5 in Omniglot.zips_md5.items():
        assert omniglot.MD5[name] == md5
    assert Omniglot.download_url_prefix.rstrip("/") + "/" == sl.config.OMNIGLOT_URL


@pytest.mark.mirror
def test_mirror_small1_is_2720_images_136_characters_5_alphabets(mirror_root):
    s = sl.data.load_omniglot("background_small1")
    assert s.images.shape == (2720, 105, 105) and s.images.dtype == torch.uint8
    assert s.labels.dtype == torch.int64 and s.groups.dtype == torch.int64
    assert len(s.class_names) == 136 and len(s.group_names) == 5
    assert torch.bincount(s.labels).tolist() == [20] * 136
    assert s.groups.unique().numel() == 5
    for c in range(136):  # each character lies in the alphabet its name says
        alphabets = s.groups[s.labels == c].unique()
        assert alphabets.numel() == 1 and s.class_names[c].split("/")[0] == s.group_names[int(alphabets)]
    # the zip itself: 20 distinct drawers per character, and the decoding matches PIL
    with zipfile.ZipFile(mirror_root / "omniglot" / "images_background_small1.zip") as z:
        names = sorted(n for n in z.namelist() if n.endswith(".png"))
        drawers = Counter()
        for n in names:
            _, alphabet, char, fname = n.split("/")
            drawers[(alphabet, char, re.match(r"\d+_(\d+)\.png", fname).group(1))] += 1
        per_char = Counter((a, c) for a, c, _ in drawers)
        assert len(per_char) == 136 and set(per_char.values()) == {20} and set(drawers.values()) == {1}
        for k in (0, 1000, 2719):
            assert np.array_equal(s.images[k].numpy(), _reference_decode(z.read(names[k])))
    # strokes are bright: a thin minority of pixels at 255
    frac_ink = float((s.images == 255).float().mean())
    assert 0.02 < frac_ink < 0.3 and set(s.images[0].unique().tolist()) <= {0, 255}


@pytest.mark.mirror
def test_mirror_small1_resized(mirror_root):
    s = sl.data.load_omniglot("background_small1", size=28)
    assert s.images.shape == (2720, 28, 28)
    with zipfile.ZipFile(mirror_root / "omniglot" / "images_background_small1.zip") as z:
        name = sorted(n for n in z.namelist() if n.endswith(".png"))[5]
        ref = Image.fromarray(_reference_decode(z.read(name))).resize((28, 28), Image.Resampling.BILINEAR)
    assert np.array_equal(s.images[5].numpy(), np.asarray(ref))
    assert len(s.images[5].unique()) > 2  # antialiased: grey levels, not just 0/255


@pytest.mark.mirror
def test_mirror_lake_runs(mirror_root):
    runs = sl.data.load_lake_runs()
    assert len(runs) == 20 and [r.name for r in runs] == [f"run{k:02d}" for k in range(1, 21)]
    with zipfile.ZipFile(mirror_root / "omniglot" / "all_runs.zip") as z:
        for r in runs:
            assert r.train_images.shape == (20, 105, 105) and r.test_images.shape == (20, 105, 105)
            assert r.train_images.dtype == torch.uint8 and r.answers.dtype == torch.int64
            assert bool(((r.answers >= 0) & (r.answers < 20)).all())
            # each test image's character is present exactly once among the 20 training images
            assert sorted(r.answers.tolist()) == list(range(20))
            # against the answer key read independently
            for line in z.read(f"{r.name}/class_labels.txt").decode().strip().splitlines():
                test_file, train_file = line.split()
                t = int(re.search(r"item(\d+)", test_file).group(1)) - 1
                c = int(re.search(r"class(\d+)", train_file).group(1)) - 1
                assert int(r.answers[t]) == c
                assert np.array_equal(r.test_images[t].numpy(), _reference_decode(z.read(test_file)))
                assert np.array_equal(r.train_images[c].numpy(), _reference_decode(z.read(train_file)))
    small = sl.data.load_lake_runs(size=35)
    assert small[0].train_images.shape == (20, 35, 35)


@pytest.mark.mirror
def test_read_only_root_works(mirror_root, tmp_path):
    root = tmp_path / "ro"
    for f in ("omniglot/images_background_small1.zip", "omniglot/all_runs.zip"):
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(mirror_root / f, root / f)
    paths = [root, root / "omniglot", *(root / "omniglot").iterdir()]
    for p in paths:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    before = sorted(str(p) for p in root.rglob("*"))
    try:
        assert len(sl.data.load_omniglot("background_small1", root=root)) == 2720
        assert len(sl.data.load_lake_runs(root=root)) == 20
        with pytest.raises(sl.data.DataNotFoundError, match="read-only"):
            sl.data.load_omniglot("background", root=root)  # missing, and no download into a read-only root
        assert sorted(str(p) for p in root.rglob("*")) == before
    finally:
        for p in paths:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


@pytest.mark.mirror
def test_corrupt_local_zip_is_refused_with_advice(mirror_root, tmp_path):
    dst = tmp_path / "omniglot" / "images_background_small1.zip"
    dst.parent.mkdir()
    data = bytearray((mirror_root / "omniglot" / "images_background_small1.zip").read_bytes())
    data[len(data) // 2] ^= 0xFF
    dst.write_bytes(bytes(data))
    with pytest.raises(sl.data.ChecksumError, match="Delete .* and download it again"):
        sl.data.load_omniglot("background_small1", root=tmp_path, download=False)

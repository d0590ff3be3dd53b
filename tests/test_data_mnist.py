"""load_mnist: the full-split path (synthetic idx files), the test-split-only fallback
(the mirror), the missing-data error, and a read-only root."""
from __future__ import annotations

import gzip
import shutil
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import siamlib as sl
from siamlib.data import mnist

CLOSED = "http://127.0.0.1:9/"  # nothing listens on the discard port: no test reaches the internet


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch):
    monkeypatch.setenv("SIAMLIB_MIRROR", CLOSED)


def _reference_idx(path: Path) -> np.ndarray:
    """Independent idx reader: fixed header sizes from the format's description."""
    raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    if raw[3] == 3:
        n, h, w = (int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(3))
        return np.frombuffer(raw[16:], np.uint8).reshape(n, h, w)
    return np.frombuffer(raw[8:], np.uint8)


def _write_idx(path: Path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    path.write_bytes(header + arr.astype(np.uint8).tobytes())


def _synthetic_root(tmp_path: Path, n_train=30, n_test=12) -> tuple[Path, dict]:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    data = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        img_name, lab_name = (f[: -len(".gz")] for f in mnist.FILES[split])  # torchvision's extracted copies
        _write_idx(raw / img_name, images)
        _write_idx(raw / lab_name, labels)
        data[split] = (images, labels)
    return tmp_path, data


def test_full_splits_load_without_warning(tmp_path):
    root, data = _synthetic_root(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        for split in ("train", "test"):
            s = sl.data.load_mnist(split, root=root, download=False)
            assert s.images.dtype == torch.uint8 and s.labels.dtype == torch.int64
            assert np.array_equal(s.images.numpy(), data[split][0])
            assert np.array_equal(s.labels.numpy(), data[split][1].astype(np.int64))
            assert s.class_names == [str(d) for d in range(10)]


def test_truncated_idx_file_is_a_clear_error(tmp_path):
    root, _ = _synthetic_root(tmp_path)
    p = root / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-5])
    with pytest.raises(ValueError, match="truncated"):
        sl.data.load_mnist("test", root=root, download=False)


def test_fallback_split_is_disjoint_and_covers():
    train_idx, test_idx = mnist.fallback_split(10000)
    assert len(train_idx) == 8000 and len(test_idx) == 2000
    assert set(train_idx.tolist()).isdisjoint(test_idx.tolist())
    assert sorted(train_idx.tolist() + test_idx.tolist()) == list(range(10000))
    again = mnist.fallback_split(10000)
    assert torch.equal(again[0], train_idx)  # deterministic


@pytest.mark.mirror
def test_mirror_train_and_test_are_disjoint_subsets_of_t10k(mirror_root, tmp_path):
    raw = tmp_path / "MNIST" / "raw"  # exactly the mirror's MNIST files, whatever else SIAMLIB_DATA holds
    raw.mkdir(parents=True)
    for f in mnist.FILES["test"]:
        shutil.copy(mirror_root / "MNIST" / "raw" / f, raw / f)
    ref_images = _reference_idx(raw / "t10k-images-idx3-ubyte.gz")
    ref_labels = _reference_idx(raw / "t10k-labels-idx1-ubyte.gz")
    assert ref_images.shape == (10000, 28, 28) and ref_labels[0] == 7  # the first t10k digit is a 7
    with pytest.warns(sl.data.MnistSubsetWarning, match="disjoint subsets of the 10,000 test images") as caught:
        train = sl.data.load_mnist("train", root=tmp_path)
        test = sl.data.load_mnist("test", root=tmp_path)
    assert all("\n" not in str(w.message) and len(str(w.message)) < 200 for w in caught)  # one short line
    assert train.images.shape == (8000, 28, 28) and test.images.shape == (2000, 28, 28)
    assert train.images.dtype == torch.uint8 and train.labels.dtype == torch.int64
    assert set(train.labels.tolist()) == set(range(10)) == set(test.labels.tolist())
    tr_idx, te_idx = mnist.fallback_split(10000)
    assert np.array_equal(train.images.numpy(), ref_images[tr_idx.numpy()])
    assert np.array_equal(test.labels.numpy(), ref_labels[te_idx.numpy()].astype(np.int64))
    # disjoint by content too: no test image appears in train
    train_rows = {r.tobytes() for r in train.images.numpy()}
    assert not any(r.tobytes() in train_rows for r in test.images.numpy())
    assert "disjoint subset" in train.source


def test_nothing_present_names_folder_files_and_ways_out(tmp_path):
    with pytest.raises(sl.data.DataNotFoundError) as info:
        sl.data.load_mnist("train", root=tmp_path, download=False)
    msg = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in msg
    assert "t10k-images-idx3-ubyte.gz" in msg and "download=False" in msg
    first = msg.splitlines()[0]
    assert first.startswith("MNIST not found") and "SIAMLIB_DATA" in first  # the first line names the fix
    assert len(msg.splitlines()) <= 10 and info.value.__cause__ is None and info.value.__suppress_context__ is False
    assert isinstance(info.value, FileNotFoundError)
    assert list(tmp_path.rglob("*")) == []  # nothing was created


@pytest.mark.mirror
def test_default_root_is_the_mirror(mirror_root):
    """With SIAMLIB_DATA pointing at the mirror, no root argument is needed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sl.data.MnistSubsetWarning)
        s = sl.data.load_mnist("test")
        t = sl.data.load_mnist("test", root=mirror_root)
    assert torch.equal(s.images, t.images) and s.images.shape[1:] == (28, 28)


def test_train_split_alone_is_enough_for_train(tmp_path):
    root, data = _synthetic_root(tmp_path)
    for f in mnist.FILES["test"]:
        (root / "MNIST" / "raw" / f[: -len(".gz")]).unlink()
    assert np.array_equal(sl.data.load_mnist("train", root=root, download=False).images.numpy(), data["train"][0])
    with pytest.raises(sl.data.DataNotFoundError):
        sl.data.load_mnist("test", root=root, download=False)


def test_bad_split_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="'train' or 'test'"):
        sl.data.load_mnist("validation", root=tmp_path)


def _read_only_copy(src_root: Path, dst_root: Path, files) -> Path:
    for f in files:
        (dst_root / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src_root / f, dst_root / f)
    for p in sorted(dst_root.rglob("*"), reverse=True) + [dst_root]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return dst_root


@pytest.mark.mirror
def test_read_only_root_works(mirror_root, tmp_path):
    files = ["MNIST/raw/t10k-images-idx3-ubyte.gz", "MNIST/raw/t10k-labels-idx1-ubyte.gz"]
    root = _read_only_copy(mirror_root, tmp_path / "ro", files)
    before = sorted(str(p) for p in root.rglob("*"))
    try:
        with pytest.warns(sl.data.MnistSubsetWarning):
            s = sl.data.load_mnist("test", root=root)  # download=True, but the root is read-only
        assert s.images.shape == (2000, 28, 28)
        assert sorted(str(p) for p in root.rglob("*")) == before  # nothing written into the root
    finally:
        for p in [root] + list(root.rglob("*")):
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


def test_torchvision_tables_agree(monkeypatch):
    """The md5s copied here are torchvision's; by default the mirrors are torchvision's list."""
    from torchvision.datasets import MNIST

    assert dict(MNIST.resources) == mnist.MD5
    monkeypatch.delenv("SIAMLIB_MIRROR")
    assert sl.config.mirrors("mnist") == list(MNIST.mirrors) and len(MNIST.mirrors) >= 1
    monkeypatch.setenv("SIAMLIB_MIRROR", "http://example.invalid/")
    assert sl.config.mirrors("mnist") == ["http://example.invalid/MNIST/raw/"]


@pytest.mark.mirror
def test_corrupt_local_gz_is_refused_with_advice(mirror_root, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(mirror_root / "MNIST" / "raw" / f, raw / f)
    data = bytearray((raw / "t10k-labels-idx1-ubyte.gz").read_bytes())
    data[-20] ^= 0xFF
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(bytes(data))
    with pytest.raises(sl.data.ChecksumError, match="published md5 ec29112dd5afa0611ce80d1b7f02629c"):
        sl.data.load_mnist("test", root=tmp_path, download=False)

"""sl.strokes: Omniglot's pen trajectories beside the images (lesson 09).

On the real zip (``@pytest.mark.mirror``): every drawing has its trajectory, in the images' order, and a rendered
trajectory lies on its own image's ink far more than on another drawing's. On small synthetic zips: the format,
junk entries, corrupt files, the cache and the download path (a local HTTP server, test_download's fixture). And
the lesson's self-checks reject wrong answers.
"""
from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import siamlib as sl
from siamlib import strokes as st
from test_download import serve  # noqa: F401 - the local HTTP server fixture, reused

REAL_ZIP = "omniglot/strokes_background_small1.zip"


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


# --------------------------------------------------------------------- the real zip
@pytest.mark.mirror
def test_real_zip_matches_the_images_drawing_for_drawing(mirror_root, tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMLIB_CACHE", str(tmp_path))
    path = mirror_root / REAL_ZIP
    assert hashlib.md5(path.read_bytes()).hexdigest() == st.MD5["strokes_background_small1"]
    s = sl.strokes.load_strokes("background_small1", root=mirror_root)
    images = sl.data.load_omniglot("background_small1", root=mirror_root)
    with zipfile.ZipFile(mirror_root / "omniglot/images_background_small1.zip") as z:
        pngs = sorted("/".join(PurePosixPath(n).parts[-3:])[:-4] for n in z.namelist() if n.endswith(".png"))
    assert len(s) == len(images) == len(pngs) == 2720
    assert s.files == pngs  # same drawings, same order
    assert torch.equal(s.labels, images.labels) and torch.equal(s.groups, images.groups)
    assert s.class_names == images.class_names and s.group_names == images.group_names
    assert not any("MACOSX" in f or "DS_Store" in f for f in s.files)
    assert all(len(d) >= 1 and all(len(k) >= 1 and k.shape[1] == 3 for k in d) for d in s.drawings)


@pytest.mark.mirror
def test_rendered_trajectories_lie_on_their_own_images(mirror_root, tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMLIB_CACHE", str(tmp_path))
    s = sl.strokes.load_strokes("background_small1", root=mirror_root)
    images = sl.data.load_omniglot("background_small1", root=mirror_root)
    idx = range(0, 2720, 17)  # 160 drawings of every alphabet
    ink = [images.images[i].numpy() > 127 for i in idx]
    own = np.mean([_iou(sl.strokes.render(s.drawings[i]) > 127, m) for i, m in zip(idx, ink)])
    resampled = np.mean([_iou(sl.strokes.render(sl.strokes.resample(s.drawings[i], 64)) > 127, m)
                         for i, m in zip(idx, ink)])
    shifted = [(i + 1360) % 2720 for i in idx]  # another drawing, mostly of another alphabet
    other = np.mean([_iou(sl.strokes.render(s.drawings[j]) > 127, m) for j, m in zip(shifted, ink)])
    flipped = np.mean([_iou(sl.strokes.render([k * [1, -1, 1] for k in s.drawings[i]]) > 127, m)
                       for i, m in zip(idx, ink)])  # the file's raw y (minus the row) would miss the canvas
    assert own > 0.6 and resampled > 0.45, (own, resampled)
    assert own > 4 * other and other < 0.15, (own, other)
    assert flipped < 0.05, flipped


# --------------------------------------------------------------------- synthetic zips
GOOD = "START\n10,-20,0\n30,-20,40\nBREAK\n50,-60,100\n50,-80,130\n50,-90,150\nBREAK\n"


def _write_zip(path: Path, files: dict[str, str | bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return path


def _tiny(junk: bool = True, **override) -> dict[str, str]:
    files = {f"strokes_background_small1/{a}/character0{c}/0{c}0{d}_0{d}.txt": GOOD
             for a in ("Alpha", "Beta") for c in (1, 2) for d in (1, 2)}
    if junk:
        files |= {"strokes_background_small1/.DS_Store": "\0\1junk",
                  "__MACOSX/strokes_background_small1/Alpha/character01/._0101_01.txt": "\0\5 not a trajectory",
                  "strokes_background_small1/Alpha/.DS_Store": "\0junk"}
    files.update(override)
    return files


@pytest.fixture
def tiny_root(tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(st.MD5, "strokes_background_small1", None)  # the synthetic zip has no published md5
    return tmp_path / "root"


def test_synthetic_zip_is_parsed_and_junk_is_skipped(tiny_root):
    _write_zip(tiny_root / REAL_ZIP, _tiny(junk=True))
    s = sl.strokes.load_strokes(root=tiny_root, download=False)
    assert len(s) == 8 and s.group_names == ["Alpha", "Beta"] and len(s.class_names) == 4
    assert s.labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3] and s.groups.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert s.files[0] == "Alpha/character01/0101_01"
    first = s.drawings[0]
    assert len(first) == 2 and first[0].shape == (2, 3) and first[1].shape == (3, 3)
    np.testing.assert_allclose(first[0], [[10, 20, 0], [30, 20, 40]])  # y flipped: the file stores minus the row
    np.testing.assert_allclose(first[1][:, 1], [60, 80, 90])


def test_cache_is_used_on_the_second_load(tiny_root, monkeypatch):
    _write_zip(tiny_root / REAL_ZIP, _tiny())
    first = sl.strokes.load_strokes(root=tiny_root, download=False)

    def boom(*args):
        raise AssertionError("the zip was parsed again although the cache holds it")

    monkeypatch.setattr(st, "_decode", boom)
    again = sl.strokes.load_strokes(root=tiny_root, download=False)
    assert again.files == first.files and all(
        np.array_equal(a, b) for d, e in zip(first.drawings, again.drawings) for a, b in zip(d, e))


@pytest.mark.parametrize("text,match", [
    ("START\n10,-20,0\n30,abc,40\nBREAK\n", "line 3 is '30,abc,40', not three numbers"),
    ("START\n10,-20,0\n30,-20\nBREAK\n", "line 3 is '30,-20', not three numbers"),
    ("START\n10,-20,0\n30,-20,nan\nBREAK\n", "line 3"),
    ("10,-20,0\nBREAK\n", "line 1 is '10,-20,0' where START is expected"),
    ("START\n10,-20,0\n30,-20,40\n", "no closing BREAK"),
    ("START\nBREAK\n", "line 2: BREAK ends a stroke with no points"),
    ("", "the file is empty"),
    ("START\n", "no strokes"),
])
def test_corrupt_file_names_the_file_and_the_way_out(tiny_root, text, match):
    bad = "strokes_background_small1/Beta/character02/0202_02.txt"
    _write_zip(tiny_root / REAL_ZIP, _tiny(**{bad: text}))
    with pytest.raises(st.StrokeFileError, match=match) as info:
        sl.strokes.load_strokes(root=tiny_root, download=False)
    assert f"strokes_background_small1.zip:{bad}" in str(info.value)
    assert "download it again" in str(info.value)


def test_missing_zip_and_bad_zip_say_what_to_do(tiny_root):
    with pytest.raises(sl.data.DataNotFoundError, match="strokes_background_small1.zip not found"):
        sl.strokes.load_strokes(root=tiny_root, download=False)
    (tiny_root / "omniglot").mkdir(parents=True)
    (tiny_root / REAL_ZIP).write_bytes(b"not a zip")
    with pytest.raises(sl.data.ChecksumError, match="not a readable zip; delete it"):
        sl.strokes.load_strokes(root=tiny_root, download=False)
    _write_zip(tiny_root / REAL_ZIP, {"readme.txt": "hello"})
    with pytest.raises(ValueError, match="holds no Alphabet/character/"):
        sl.strokes.load_strokes(root=tiny_root, download=False)
    with pytest.raises(ValueError, match="subset must be one of"):
        sl.strokes.load_strokes("small1", root=tiny_root)


def test_download_from_a_local_mirror(tmp_path, serve, monkeypatch):  # noqa: F811 - serve is the fixture
    monkeypatch.setenv("SIAMLIB_CACHE", str(tmp_path / "cache"))
    served = tmp_path / "served"
    zip_path = _write_zip(served / REAL_ZIP, _tiny())
    md5 = hashlib.md5(zip_path.read_bytes()).hexdigest()
    monkeypatch.setitem(st.MD5, "strokes_background_small1", md5)
    monkeypatch.setenv("SIAMLIB_MIRROR", serve(served))
    root = tmp_path / "root"
    s = sl.strokes.load_strokes(root=root)
    assert len(s) == 8 and sorted(p for p in root.rglob("*") if p.is_file()) == [root / REAL_ZIP]
    # a server sending other bytes is refused by the md5 and leaves nothing
    monkeypatch.setitem(st.MD5, "strokes_background_small1", "0" * 32)
    other = tmp_path / "root2"
    with pytest.raises(sl.data.DataNotFoundError, match="md5") as info:
        sl.strokes.load_strokes(root=other)
    assert isinstance(info.value.cause, sl.data.ChecksumError)
    assert not (other / REAL_ZIP).exists()


@pytest.mark.mirror
def test_download_of_the_real_zip_from_a_local_mirror(mirror_root, tmp_path, serve, monkeypatch):  # noqa: F811
    monkeypatch.setenv("SIAMLIB_CACHE", str(tmp_path / "cache"))
    served = tmp_path / "served"
    (served / "omniglot").mkdir(parents=True)
    shutil.copy(mirror_root / REAL_ZIP, served / REAL_ZIP)
    monkeypatch.setenv("SIAMLIB_MIRROR", serve(served))
    s = sl.strokes.load_strokes(root=tmp_path / "root")  # checked against the published md5
    assert len(s) == 2720


# --------------------------------------------------------------------- resample and render
def test_resample_spaces_points_along_the_ink_and_flags_pen_ups():
    drawing = [np.array([[0, 0, 0], [10, 0, 5]], np.float32), np.array([[50, 50, 9], [50, 70, 12]], np.float32)]
    out = sl.strokes.resample(drawing, 7)  # ink length 30: one point every 5 px
    assert out.shape == (7, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, :2], [[0, 0], [5, 0], [10, 0], [50, 55], [50, 60], [50, 65], [50, 70]])
    np.testing.assert_array_equal(out[:, 2], [0, 0, 1, 0, 0, 0, 1])  # pen up after each stroke's last point
    dot = sl.strokes.resample([np.array([[3.0, 4.0, 0.0]])], 4)  # a single dot
    np.testing.assert_allclose(dot, [[3, 4, 0], [3, 4, 0], [3, 4, 0], [3, 4, 1]])
    with pytest.raises(ValueError, match="n_points must be >= 2"):
        sl.strokes.resample(drawing, 1)


def test_render_draws_where_the_points_are():
    line = [np.array([[20.0, 50.0, 0.0], [80.0, 50.0, 1.0]])]
    img = sl.strokes.render(line)
    assert img.shape == (105, 105) and img.dtype == np.uint8
    assert img[50, 20:81].min() == 255 and img[10].max() == 0 and img[:, 10].max() == 0  # row 50, columns 20-80
    two = np.array([[10, 10, 0], [30, 10, 1], [70, 90, 0], [90, 90, 1]], np.float32)  # (T, 3) with pen-ups
    img = sl.strokes.render(two)
    assert img[10, 20] == 255 and img[90, 80] == 255 and img[50, 50] == 0  # no line across the pen-up jump
    assert sl.strokes.render(two, size=28).shape == (28, 28)
    with pytest.raises(ValueError, match=r"\(T, 3\)"):
        sl.strokes.render(np.zeros((5, 2)))


# --------------------------------------------------------------------- self-checks reject wrong answers
def _resample_ok(points, m):
    p = np.asarray(points, dtype=float)
    s = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
    u = np.linspace(0, s[-1], m)
    return torch.from_numpy(np.stack([np.interp(u, s, p[:, 0]), np.interp(u, s, p[:, 1])], 1))


def _resample_by_index(points, m):
    p = np.asarray(points, dtype=float)
    u = np.linspace(0, len(p) - 1, m)
    return torch.from_numpy(np.stack([np.interp(u, np.arange(len(p)), p[:, c]) for c in (0, 1)], 1))


def _resample_no_end(points, m):
    p = np.asarray(points, dtype=float)
    s = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
    u = np.arange(m) * s[-1] / m
    return torch.from_numpy(np.stack([np.interp(u, s, p[:, 0]), np.interp(u, s, p[:, 1])], 1))


def _stub(*args):
    raise NotImplementedError("replace this raise (under # YOUR CODE HERE) with your code")


@pytest.mark.parametrize("fn,expect", [
    (_resample_ok, "✅"), (lambda p, m: _resample_ok(p, m).numpy(), "✅"),
    (_resample_by_index, "INDEX"), (_resample_no_end, "first and last"),
    (lambda p, m: _resample_ok(p, m).flip(1), "swapped"), (lambda p, m: _resample_ok(p, m).T, "shape"),
    (lambda p, m: _resample_ok(p, m) * torch.tensor([[1.0]] + [[1.01]] * (m - 2) + [[1.0]]), "max error"),
    (_stub, "NotImplementedError")])
def test_check_resample_stroke(fn, expect, capsys):
    assert sl.strokes.check_resample_stroke(fn) is (expect == "✅")
    assert expect in capsys.readouterr().out


def _clip_ok(z_a, z_b, t):
    z_a, z_b = F.normalize(z_a, dim=1), F.normalize(z_b, dim=1)
    logits, y = z_a @ z_b.T / t, torch.arange(len(z_a))
    return (F.cross_entropy(logits, y) + F.cross_entropy(logits.T, y)) / 2


def _clip_via_info_nce(z_a, z_b, t):
    return 0.5 * (sl.losses.info_nce(z_a, z_b, temperature=t) + sl.losses.info_nce(z_b, z_a, temperature=t))


@pytest.mark.parametrize("fn,expect", [
    (_clip_ok, "✅"), (_clip_via_info_nce, "✅"),
    (lambda a, b, t: sl.losses.info_nce(a, b, temperature=t), "only one direction (a -> b)"),
    (lambda a, b, t: sl.losses.info_nce(b, a, temperature=t), "only one direction (b -> a)"),
    (lambda a, b, t: 2 * _clip_ok(a, b, t), "twice"),
    (lambda a, b, t: st._clip(a, b, t, norm=False), "not normalised"),
    (lambda a, b, t: st._clip(a, b, t, scale=False), "temperature is missing"),
    (lambda a, b, t: _clip_ok(a, b, 1 / t), "wrong way"),
    (lambda a, b, t: float(_clip_ok(a, b, t)), "not a float"),
    (lambda a, b, t: torch.stack([_clip_ok(a, b, t)] * 2), "one number"),
    (lambda a, b, t: _clip_ok(a, b, t) + 0.01, "expected"), (_stub, "NotImplementedError")])
def test_check_clip_loss(fn, expect, capsys):
    assert sl.strokes.check_clip_loss(fn) is (expect == "✅")
    assert expect in capsys.readouterr().out


def _recall_ok(sim, k):
    return (sim.topk(k, dim=1).indices == torch.arange(len(sim))[:, None]).any(1).float().mean()


@pytest.mark.parametrize("fn,expect", [
    (_recall_ok, "✅"),
    (lambda s, k: _recall_ok(-s, k), "LEAST similar"), (lambda s, k: _recall_ok(s.T, k), "columns"),
    (lambda s, k: _recall_ok(s, max(k - 1, 1)), "top 4"), (lambda s, k: 100 * _recall_ok(s, k), "percentage"),
    (lambda s, k: 0.5, "expected"), (_stub, "NotImplementedError")])
def test_check_recall_at_k(fn, expect, capsys):
    assert sl.strokes.check_recall_at_k(fn) is (expect == "✅")
    assert expect in capsys.readouterr().out


# --------------------------------------------------------------------- cross-modal recall
def test_recall_both_ways_counts_rows_and_columns_separately():
    sim = torch.tensor([[0.9, 0.1, 0.0],    # row 0: own item first
                        [0.95, 0.5, 0.0],   # row 1: own item second; column 0 has 0.95 above its own 0.9
                        [0.0, 0.6, 0.7]])   # row 2: own item first; column 1: 0.6 above its own 0.5
    out = sl.strokes.recall_both_ways(sim, ks=(1, 2))
    torch.testing.assert_close(out, torch.tensor([2 / 3, 1.0, 1 / 3, 1.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="square"):
        sl.strokes.recall_both_ways(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="nan"):
        sl.strokes.recall_both_ways(torch.full((2, 2), float("nan")))

"""sl.wasserstein (lesson 10): exact ground truth, its cache, clear errors, the DWE losses, and the
notebook's exercise self-checks (each must reject wrong answers)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import ot
import pytest
import torch

import siamlib as sl
from siamlib import wasserstein as W

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "10_wasserstein_embeddings.ipynb"


def blobs(n=6, seed=0, side=12):
    """Small random sparse 'ink' images (n, side, side) uint8, every one with some ink."""
    rng = np.random.default_rng(seed)
    x = (rng.random((n, side, side)) > 0.8) * rng.integers(1, 256, (n, side, side))
    x[:, side // 2, side // 2] = 200
    return x.astype(np.uint8)


def emd2_full_grid(img_a, img_b):
    """Independent reference: ot.emd2 on the full grid (zeros kept), cost from scratch."""
    h, w = img_a.shape
    r, c = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    pos = np.stack([r.ravel(), c.ravel()], 1).astype(float)
    M = ((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1)
    a = img_a.ravel().astype(float) / img_a.sum()
    b = img_b.ravel().astype(float) / img_b.sum()
    return ot.emd2(a, b, M, numItermax=10**6)


# --------------------------------------------------------------------- ground truth and cache
def test_exact_w2_matches_fresh_emd2_and_its_own_cache(tmp_path):
    x = blobs(6)
    pairs = np.array([[0, 1], [2, 3], [4, 5], [1, 4]])
    first = W.exact_w2(x, pairs, cache_dir=tmp_path, progress=False)
    again = W.exact_w2(x, pairs, cache_dir=tmp_path, progress=False)  # read back from the cache
    fresh = [emd2_full_grid(x[i], x[j]) for i, j in pairs]
    np.testing.assert_allclose(first, fresh, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(again, first)
    assert len(list(tmp_path.glob("w2-*.npy"))) == 1


def test_two_workers_give_the_same_values(tmp_path):
    x = blobs(5, seed=3)
    pairs = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [4, 0]])
    one = W.exact_w2(x, pairs, cache=False, progress=False)
    two = W.exact_w2(x, pairs, workers=2, cache=False, progress=False, chunk=2)
    np.testing.assert_allclose(one, two, rtol=0, atol=1e-12)


@pytest.mark.mirror
def test_cached_mnist_ground_truth_matches_fresh_emd2_on_fresh_pairs(mirror_root, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sl.data.MnistSubsetWarning)
        test = sl.data.load_mnist("test")
    images = test.images[:40].numpy()
    rng = np.random.default_rng(12345)
    pairs = rng.choice(40, size=(5, 2), replace=False)
    W.exact_w2(images, pairs, cache_dir=tmp_path, progress=False)  # write
    cached = W.exact_w2(images, pairs, cache_dir=tmp_path, progress=False)  # read
    fresh = [emd2_full_grid(images[i], images[j]) for i, j in pairs]
    np.testing.assert_allclose(cached, fresh, rtol=1e-7)


def _count_computations(monkeypatch):
    calls = []
    real = W._w2_chunk
    monkeypatch.setattr(W, "_w2_chunk", lambda c: (calls.append(len(c)), real(c))[1])
    return calls


def test_cache_is_keyed_by_the_exact_inputs(tmp_path, monkeypatch):
    calls = _count_computations(monkeypatch)
    x = blobs(4)
    pairs = np.array([[0, 1], [2, 3]])
    W.exact_w2(x, pairs, cache_dir=tmp_path, progress=False)
    assert len(calls) == 1
    W.exact_w2(x.copy(), pairs.copy(), cache_dir=tmp_path, progress=False)  # same inputs: hit
    assert len(calls) == 1, "identical inputs must be read from the cache"
    y = x.copy()
    y[3, 0, 0] = 1 if y[3, 0, 0] != 1 else 2  # one pixel
    W.exact_w2(y, pairs, cache_dir=tmp_path, progress=False)
    assert len(calls) == 2, "changing one pixel must miss the cache"
    W.exact_w2(x, np.array([[0, 1], [2, 1]]), cache_dir=tmp_path, progress=False)  # one index
    assert len(calls) == 3, "changing one pair index must miss the cache"
    assert len(list(tmp_path.glob("w2-*.npy"))) == 3


def test_cache_write_is_atomic(tmp_path, monkeypatch):
    x, pairs = blobs(3), np.array([[0, 1], [1, 2]])

    def broken_save(f, arr):
        f.write(b"\x93NUMPY half a file")
        raise OSError("disk full")

    monkeypatch.setattr(W.np, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        W.exact_w2(x, pairs, cache_dir=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == [], "a failed write must leave neither a cache file nor a temporary file"
    monkeypatch.undo()
    w = W.exact_w2(x, pairs, cache_dir=tmp_path, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == [next(tmp_path.glob("w2-*.npy")).name]
    np.testing.assert_array_equal(np.load(next(tmp_path.glob("w2-*.npy"))), w)


def test_corrupt_cache_file_is_reported(tmp_path):
    x, pairs = blobs(3), np.array([[0, 1]])
    W.exact_w2(x, pairs, cache_dir=tmp_path, progress=False)
    next(tmp_path.glob("w2-*.npy")).write_bytes(b"not a numpy file")
    with pytest.raises(ValueError, match="corrupt.*delete it"):
        W.exact_w2(x, pairs, cache_dir=tmp_path, progress=False)


def test_a_solver_warning_is_an_error_not_a_number(monkeypatch):
    monkeypatch.setattr(ot, "emd2", lambda *a, **k: (1.0, {"warning": "numItermax reached before optimality"}))
    with pytest.raises(RuntimeError, match=r"pair \(0, 1\).*numItermax"):
        W.exact_w2(blobs(2), np.array([[0, 1]]), cache=False, progress=False)


# --------------------------------------------------------------------- clear errors
@pytest.mark.parametrize(
    "images, match",
    [
        (np.zeros((0, 28, 28)), "empty batch"),
        (np.full((2, 4, 4), np.nan), "NaN"),
        (np.stack([np.ones((4, 4)), np.zeros((4, 4))]), "image 1 is all zeros.*not a distribution"),
        (-np.ones((1, 4, 4)), "negative"),
        (np.ones((2, 3, 4, 4)), r"\(N, H, W\)"),
    ],
)
def test_bad_images_raise_clear_errors(images, match):
    with pytest.raises(ValueError, match=match):
        W.to_distribution(images)
    if images.ndim == 3 and len(images):
        with pytest.raises(ValueError, match=match):
            W.exact_w2(images, np.array([[0, 0]]), cache=False, progress=False)


def test_to_distribution_sums_to_one():
    p = W.to_distribution(blobs(3))
    assert p.shape == (3, 144) and p.dtype == torch.float64
    torch.testing.assert_close(p.sum(1), torch.ones(3, dtype=torch.float64))


@pytest.mark.parametrize("pairs, match", [(np.array([[0, 9]]), "indices must lie"), (np.zeros((0, 2), int), "non-empty"),
                                          (np.array([0, 1]), r"\(P, 2\)"), (np.array([[0.0, 1.0]]), "integer")])
def test_bad_pairs_raise_clear_errors(pairs, match):
    with pytest.raises(ValueError, match=match):
        W.exact_w2(blobs(3), pairs, cache=False, progress=False)


def test_unwritable_cache_folder_is_named(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="cache folder .*a_file.*SIAMLIB_CACHE"):
        W.exact_w2(blobs(2), np.array([[0, 1]]), cache_dir=blocker / "sub", progress=False)


# --------------------------------------------------------------------- model and losses
def test_losses_match_their_definitions():
    g = torch.Generator().manual_seed(0)
    zi, zj, w = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g), torch.rand(5, generator=g) * 10
    torch.testing.assert_close(W.embedding_loss(zi, zj, w), (((zi - zj) ** 2).sum(1) - w).pow(2).mean())
    p = W.to_distribution(blobs(4, side=28)).float()
    logits = torch.randn(4, 784, generator=g)
    q = torch.softmax(logits, 1)
    ref = torch.where(p > 0, p * (p.clamp_min(1e-30).log() - q.log()), torch.zeros_like(p)).sum(1).mean()
    torch.testing.assert_close(W.reconstruction_kl(logits, p), ref)
    assert W.reconstruction_kl(torch.log(p.clamp_min(1e-30)), p).abs() < 1e-5  # KL(p || p) = 0


def test_dwe_shapes_and_input_check():
    model = W.DWE(emb_dim=7, hidden=16)
    p = W.to_distribution(blobs(3, side=28)).float()
    z = model.embed(p)
    assert z.shape == (3, 7)
    assert model.decode(z).shape == (3, 784)
    torch.testing.assert_close(model.decode(z).sum(1), torch.ones(3))
    with pytest.raises(ValueError, match="to_distribution"):
        model.embed(torch.rand(3, 1, 28, 28))
    conv = W.DWE(emb_dim=5, hidden=8, arch="conv", width=2)
    assert conv.embed(p).shape == (3, 5)
    with pytest.raises(ValueError, match="'mlp' or 'conv'"):
        W.DWE(arch="resnet")


# --------------------------------------------------------------------- the exercises' self-checks and their mutants
def _sq(p, q):
    return (p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2


def _stub(*args):
    raise NotImplementedError("not done")


def _right_two_pixels(p1, p2, q1, q2):
    return 0.5 * min(_sq(p1, q1) + _sq(p2, q2), _sq(p1, q2) + _sq(p2, q1))


TWO_PIXEL_MUTANTS = {
    "fixed matching": (lambda p1, p2, q1, q2: 0.5 * (_sq(p1, q1) + _sq(p2, q2)), "may cross"),
    "no 1/2": (lambda p1, p2, q1, q2: 2 * _right_two_pixels(p1, p2, q1, q2), "HALF the ink"),
    "costlier matching": (lambda p1, p2, q1, q2: 0.5 * max(_sq(p1, q1) + _sq(p2, q2), _sq(p1, q2) + _sq(p2, q1)),
                          "COSTLIER"),
    "average of the matchings": (lambda p1, p2, q1, q2: 0.25 * (_sq(p1, q1) + _sq(p2, q2) + _sq(p1, q2) + _sq(p2, q1)),
                                 "averaged the two matchings"),
    "unsquared distance (W_1)": (lambda p1, p2, q1, q2: 0.5 * min(np.sqrt(_sq(p1, q1)) + np.sqrt(_sq(p2, q2)),
                                                                  np.sqrt(_sq(p1, q2)) + np.sqrt(_sq(p2, q1))), "SQUARE"),
    "centre of ink": (lambda p1, p2, q1, q2: _sq(((p1[0] + p2[0]) / 2, (p1[1] + p2[1]) / 2),
                                                 ((q1[0] + q2[0]) / 2, (q1[1] + q2[1]) / 2)), "lower bound"),
    "always zero": (lambda p1, p2, q1, q2: 0.0, "your formula gives 0"),
    "rows only": (lambda p1, p2, q1, q2: 0.5 * min((p1[0] - q1[0]) ** 2 + (p2[0] - q2[0]) ** 2,
                                                   (p1[0] - q2[0]) ** 2 + (p2[0] - q1[0]) ** 2), "your formula gives"),
    "returns a tuple": (lambda p1, p2, q1, q2: (1.0, 2.0), "raised TypeError"),
    "stub": (_stub, "still the exercise stub"),
}

POS = W.grid_positions()


def _right_gap(a, b):
    return ((a @ POS - b @ POS) ** 2).sum(dim=1)


GAP_MUTANTS = {
    "not squared": (lambda a, b: (a @ POS - b @ POS).norm(dim=1), "SQUARE"),
    "square of the sum": (lambda a, b: (a @ POS - b @ POS).sum(dim=1) ** 2, "square each, then add"),
    "flat index as position": (lambda a, b: (a @ torch.arange(784.0).double() - b @ torch.arange(784.0).double()) ** 2,
                               "flat pixel index"),
    "ink ignored": (lambda a, b: ((((a > 0).double() @ POS) / (a > 0).sum(1, keepdim=True)
                                  - ((b > 0).double() @ POS) / (b > 0).sum(1, keepdim=True)) ** 2).sum(1),
                    "weight each position"),
    "mean over the batch": (lambda a, b: _right_gap(a, b).mean(), "one value per pair"),
    "per coordinate": (lambda a, b: (a @ POS - b @ POS) ** 2, "one value per pair"),
    "unnormalised positions (0..1)": (lambda a, b: ((a @ POS - b @ POS) ** 2).sum(dim=1) / 27 ** 2,
                                      "squared Euclidean distance of the two centres"),
    "stub": (_stub, "still the exercise stub"),
}


def _sinkhorn(a, b, C, eps, n_iter=2000, sign=-1.0, out="cost", K=None):
    K = torch.exp(sign * C / eps) if K is None else K
    v = torch.ones_like(b)
    for _ in range(n_iter):
        u = a / (K @ v)
        v = b / (K.T @ u)
    T = u[:, None] * K * v[None, :]
    return {"cost": (T * C).sum(), "mass": T.sum(), "objective": (T * C).sum() + eps * (T * torch.log(T)).sum()}[out]


SINKHORN_MUTANTS = {
    "K = exp(+C/eps)": (lambda a, b, C, eps: _sinkhorn(a, b, C, eps, sign=1.0), "MINUS"),
    "K = exp(-C * eps)": (lambda a, b, C, eps: _sinkhorn(a, b, C, eps, K=torch.exp(-C * eps)), "divide the cost by eps"),
    "total mass": (lambda a, b, C, eps: _sinkhorn(a, b, C, eps, out="mass"), "total mass"),
    "regularised objective": (lambda a, b, C, eps: _sinkhorn(a, b, C, eps, out="objective"), "eps * H(T)"),
    "one iteration": (lambda a, b, C, eps: _sinkhorn(a, b, C, eps, n_iter=1), "stopped after 1 iteration"),
    "three iterations": (lambda a, b, C, eps: _sinkhorn(a, b, C, eps, n_iter=3), "stopped after 3 iteration"),
    "exact W": (lambda a, b, C, eps: ot.emd2(a.numpy(), b.numpy(), C.numpy()), "exact W (ot.emd2)"),
    "K instead of K.T": (lambda a, b, C, eps: (lambda K: b / (K @ (a / K.sum(1))))(torch.exp(-C / eps)).sum(),
                         "v = b / (K.T @ u)"),
    "cost of K itself": (lambda a, b, C, eps: (torch.exp(-C / eps) * C).sum(), "T = diag(u) K diag(v)"),
    "stub": (_stub, "still the exercise stub"),
}

TABLES = {
    "check_w2_two_pixels": ([_right_two_pixels, lambda *px: np.float32(_right_two_pixels(*px))], TWO_PIXEL_MUTANTS),
    "check_ink_centre_gap": ([_right_gap, lambda a, b: _right_gap(a, b).numpy(),
                              lambda a, b: ((a @ POS.flip(1) - b @ POS.flip(1)) ** 2).sum(1)], GAP_MUTANTS),
    "check_sinkhorn": ([_sinkhorn, lambda a, b, C, eps: _sinkhorn(a, b, C, eps, n_iter=500),
                        lambda a, b, C, eps: ot.sinkhorn2(a.numpy(), b.numpy(), C.numpy(), eps, stopThr=1e-12,
                                                          numItermax=10**5)], SINKHORN_MUTANTS),
}


@pytest.mark.parametrize("check", sorted(TABLES))
def test_self_check_accepts_right_answers(check, capsys):
    for fn in TABLES[check][0]:
        assert getattr(W, check)(fn) is True
        out = capsys.readouterr().out
        assert out.startswith("✅"), out


@pytest.mark.parametrize("check,mutant", [(c, m) for c in sorted(TABLES) for m in TABLES[c][1]])
def test_self_check_rejects_each_mutant_naming_the_mistake(check, mutant, capsys):
    fn, words = TABLES[check][1][mutant]
    assert getattr(W, check)(fn) is False
    out = capsys.readouterr().out
    assert out.startswith("❌") and words in out and "✅" not in out, out


def test_every_self_check_has_a_mutant_table():
    assert sorted(TABLES) == sorted(n for n in W.__all__ if n.startswith("check_"))


def test_notebook_answers_pass_their_self_checks(capsys):
    """The solutions stored in lesson 10's answer cells pass the checks that follow them."""
    nb = json.loads(NOTEBOOK.read_text())
    cells = nb["cells"]
    graded = [i for i, c in enumerate(cells) if c.get("metadata", {}).get("nbgrader", {}).get("solution")]
    assert len(graded) == 3
    for i in graded:
        ns = {"np": np, "torch": torch, "ot": ot, "sl": sl}
        exec("".join(cells[i]["source"]), ns)  # noqa: S102 - our own notebook
        exec("".join(cells[i + 1]["source"]), ns)  # noqa: S102 - the locked self-check; raises if it fails
        assert "✅" in capsys.readouterr().out


def test_exported_names_are_used_by_the_notebook_and_the_bench():
    nb = NOTEBOOK.read_text()
    bench = (ROOT / "bench" / "wasserstein.py").read_text()
    for name in W.__all__:
        assert f"sl.wasserstein.{name}" in nb, f"notebook does not call sl.wasserstein.{name}"
        if not name.startswith("check_"):  # the exercises' self-checks belong to the lesson only
            assert f"sl.wasserstein.{name}" in bench, f"bench does not call sl.wasserstein.{name}"

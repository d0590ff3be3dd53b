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


# --------------------------------------------------------------------- the notebook's self-checks
def self_check(name):
    """Define the notebook's self-check function ``name`` (from the code cell that defines it) and return it."""
    nb = json.loads(NOTEBOOK.read_text())
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "code" and f"def {name}(" in src:
            head = src.split("\n# --- your answer is checked below", 1)[0]
            ns = {"np": np, "torch": torch, "ot": ot, "sl": sl}
            exec(compile(head, f"{NOTEBOOK.name}:{name}", "exec"), ns)  # noqa: S102 - our own notebook
            return ns[name]
    raise AssertionError(f"no cell in {NOTEBOOK.name} defines {name}")


def test_exercise1_one_pixel_w_check():
    check = self_check("check_w2_one_pixel")
    check(lambda p, q: float((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2))  # right answer passes
    wrong = [
        lambda p, q: float(np.hypot(p[0] - q[0], p[1] - q[1])),                 # W_1 (Euclidean), not W_2^2
        lambda p, q: float(abs(p[0] - q[0]) + abs(p[1] - q[1])),                # Manhattan
        lambda p, q: float((p[0] - q[0]) ** 2),                                 # rows only
        lambda p, q: 0.0,                                                       # "same mass, so zero"
        lambda p, q: float(((p[0] - q[0]) + (p[1] - q[1])) ** 2),               # square of the sum
    ]
    for fn in wrong:
        with pytest.raises(AssertionError):
            check(fn)


def test_exercise2_shift_check():
    check = self_check("check_w2_shift")
    check(lambda dr, dc: float(dr * dr + dc * dc))
    wrong = [
        lambda dr, dc: float(np.hypot(dr, dc)),
        lambda dr, dc: float(abs(dr) + abs(dc)),
        lambda dr, dc: float(dr * dr),
        lambda dr, dc: float((dr + dc) ** 2),
    ]
    for fn in wrong:
        with pytest.raises(AssertionError):
            check(fn)


def test_exercise3_kl_check():
    check = self_check("check_kl")

    def right(logits, p):
        log_q = torch.log_softmax(logits, 1)
        return torch.where(p > 0, p * (torch.log(p.clamp_min(1e-30)) - log_q), torch.zeros_like(p)).sum(1).mean()

    check(right)
    wrong = [
        lambda logits, p: -(p * torch.log_softmax(logits, 1)).sum(1).mean(),               # cross-entropy: no entropy term
        lambda logits, p: (torch.softmax(logits, 1) * (torch.log_softmax(logits, 1)
                           - torch.log(p.clamp_min(1e-30)))).sum(1).mean(),                # reversed KL(q || p)
        lambda logits, p: right(logits, p) * p.shape[0],                                   # summed over the batch
        lambda logits, p: right(logits, p) / p.shape[1],                                   # mean over pixels
        lambda logits, p: torch.where(p > 0, p * (torch.log(p.clamp_min(1e-30)) - torch.softmax(logits, 1)),
                                      torch.zeros_like(p)).sum(1).mean(),                  # q instead of log q
    ]
    for fn in wrong:
        with pytest.raises(AssertionError):
            check(fn)


def test_exported_names_are_used_by_the_notebook_and_the_bench():
    nb = NOTEBOOK.read_text()
    bench = (ROOT / "bench" / "wasserstein.py").read_text()
    for name in W.__all__:
        assert f"sl.wasserstein.{name}" in nb, f"notebook does not call sl.wasserstein.{name}"
        assert f"sl.wasserstein.{name}" in bench, f"bench does not call sl.wasserstein.{name}"

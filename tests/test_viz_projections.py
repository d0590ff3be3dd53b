"""Projections: seeded, cached per (snapshot, method), UMAP falls back to PCA with a note."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness

import siamlib as sl
from siamlib.viz import projections


def _emb(n=60, d=8, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def test_pca_matches_sklearn_and_is_seeded():
    x = _emb()
    p = sl.viz.project(x, "pca")
    np.testing.assert_allclose(p.points, PCA(2, random_state=0).fit_transform(x), rtol=1e-4, atol=1e-5)
    assert p.method == "pca" and p.note == ""


def test_tsne_is_deterministic_given_the_seed():
    x = _emb(40)
    a, b = sl.viz.project(x, "tsne", seed=3), sl.viz.project(x, "tsne", seed=3)
    assert a.points.shape == (40, 2)
    np.testing.assert_array_equal(a.points, b.points)


def test_umap_missing_falls_back_to_pca_with_a_note(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # import umap -> ImportError
    x = _emb()
    with pytest.warns(RuntimeWarning, match="UMAP unavailable"):
        p = sl.viz.project(x, "umap")
    assert p.method == "pca" and p.requested == "umap" and "PCA instead" in p.note
    np.testing.assert_allclose(p.points, sl.viz.project(x, "pca").points)


def test_umap_failing_falls_back(monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("numba broke")

    monkeypatch.setattr(projections, "_umap", boom)
    with pytest.warns(RuntimeWarning):
        p = sl.viz.project(_emb(), "umap")
    assert "numba broke" in p.note


def test_unknown_method_and_bad_shapes_fail_clearly():
    with pytest.raises(ValueError, match="use one of"):
        sl.viz.project(_emb(), "mds")
    with pytest.raises(ValueError, match="expected \\(N, D\\)"):
        sl.viz.project(np.zeros(5), "pca")
    with pytest.raises(ValueError, match="expected \\(S, N, D\\)"):
        sl.viz.ProjectionCache(np.zeros((2, 3, 4, 5)))


def test_cache_computes_each_snapshot_and_method_once():
    embs = np.stack([_emb(seed=s) for s in range(3)])  # (S, N, D)
    cache = sl.viz.ProjectionCache(embs)
    first = cache.get(1, "pca")
    assert cache.get(1, "pca") is first and cache.n_computed == 1
    cache.precompute(("pca",), progress=False)
    assert cache.n_computed == 3
    cache.get(0, "pca")
    assert cache.n_computed == 3
    np.testing.assert_allclose(cache.get(2, "pca").points, sl.viz.project(embs[2]).points)


def test_knn_matches_brute_force_argsort():
    x = _emb(100, 5, seed=7)
    idx, dist = sl.viz.knn(x, 13, k=6)
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))[13]
    ref = [j for j in np.argsort(d, kind="stable") if j != 13][:6]
    np.testing.assert_array_equal(idx, ref)
    np.testing.assert_allclose(dist, d[ref], rtol=1e-5)


def test_neighbour_overlap_identity_and_against_a_loop():
    x = _emb(50, 2, seed=2)
    assert sl.viz.neighbour_overlap(x, x, k=5) == pytest.approx(1.0)
    y = _emb(50, 6, seed=3)
    p = sl.viz.project(y, "pca").points
    k = 5
    dy = np.linalg.norm(y[:, None] - y[None], axis=-1)
    dp = np.linalg.norm(p[:, None] - p[None], axis=-1)
    ref = np.mean([len(set(np.argsort(dy[i])[1:k + 1]) & set(np.argsort(dp[i])[1:k + 1])) / k
                   for i in range(50)])
    assert sl.viz.neighbour_overlap(y, p, k=k) == pytest.approx(ref)
    # sanity link to sklearn's trustworthiness: a perfect map is fully trustworthy
    assert trustworthiness(x, x, n_neighbors=5) == pytest.approx(1.0)

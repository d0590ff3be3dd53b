"""Projections: seeded, cached per (snapshot, method); a UMAP failure is an error that says why."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import umap
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness

import siamlib as sl
from siamlib.viz.projections import ProjectionCache


def _emb(n=60, d=8, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def test_pca_matches_sklearn_and_is_seeded():
    x = _emb()
    p = sl.viz.project(x, "pca")
    np.testing.assert_allclose(p.points, PCA(2, random_state=0).fit_transform(x), rtol=1e-4, atol=1e-5)
    assert p.method == "pca"


def test_tsne_is_deterministic_given_the_seed():
    x = _emb(40)
    a, b = sl.viz.project(x, "tsne", seed=3), sl.viz.project(x, "tsne", seed=3)
    assert a.points.shape == (40, 2)
    np.testing.assert_array_equal(a.points, b.points)


def test_umap_missing_is_an_error_not_pca(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # import umap -> ImportError
    with pytest.raises(RuntimeError, match="UMAP failed on 60 points \\(ModuleNotFoundError.*pip install umap-learn"):
        sl.viz.project(_emb(), "umap")


def test_umap_failing_is_an_error_with_its_cause(monkeypatch):
    class Broken:
        def __init__(self, *a, **k):
            raise RuntimeError("numba broke")

    monkeypatch.setattr(umap, "UMAP", Broken)
    with pytest.raises(RuntimeError, match="numba broke") as info:
        sl.viz.project(_emb(), "umap")
    assert isinstance(info.value.__cause__, RuntimeError)


def test_unknown_method_and_bad_shapes_fail_clearly():
    with pytest.raises(ValueError, match="use one of"):
        sl.viz.project(_emb(), "mds")
    with pytest.raises(ValueError, match="expected \\(N, D\\)"):
        sl.viz.project(np.zeros(5), "pca")
    with pytest.raises(ValueError, match="NaN or inf"):
        sl.viz.project(np.full((5, 3), np.nan), "pca")
    with pytest.raises(ValueError, match="expected \\(S, N, D\\)"):
        ProjectionCache(np.zeros((2, 3, 4, 5)))


def test_cache_computes_each_snapshot_and_method_once(monkeypatch):
    import siamlib.viz.projections as projections
    calls, project = [], projections.project
    monkeypatch.setattr(projections, "project", lambda *a: calls.append(a) or project(*a))
    embs = np.stack([_emb(seed=s) for s in range(3)])  # (S, N, D)
    cache = ProjectionCache(embs)
    first = cache.get(1, "pca")
    assert cache.get(1, "pca") is first and len(calls) == 1
    for s in range(3):
        cache.get(s, "pca")
    assert len(calls) == 3
    cache.get(0, "pca")
    assert len(calls) == 3
    np.testing.assert_allclose(cache.get(2, "pca").points, sl.viz.project(embs[2]).points)


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

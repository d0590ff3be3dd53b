"""2-D projections of embeddings (PCA, t-SNE, UMAP), seeded, cached per training snapshot, and how
many neighbourhoods they keep. Derived in notebooks/05_explore_embeddings.ipynb."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ..distances import pairwise_distances
from .static import _check, _np

__all__ = ["project", "neighbour_overlap"]

METHODS = ("pca", "tsne", "umap")


@dataclass
class Projection:  # what project returns
    points: np.ndarray  # (N, 2)
    method: str  # "pca", "tsne" or "umap"


def _as_emb(emb, name: str = "emb") -> np.ndarray:
    emb = _np(emb, name).astype(np.float32)
    _check(emb.ndim == 2 and emb.shape[-1] >= 2, f"{name} has shape {emb.shape}; expected (N, D), D >= 2.")
    _check(len(emb) >= 3, f"{name} has {len(emb)} rows; a projection needs at least 3 points.")
    _check(np.isfinite(emb).all(), f"{name} holds NaN or inf; check the training run that produced it (diverged?).")
    return emb


def project(emb, method: str = "pca", seed: int = 0) -> Projection:
    """Project (N, D) embeddings to (N, 2) with "pca", "tsne" (500 iterations: half scikit-learn's default,
    enough for a few thousand points) or "umap"; seeded. Derived in notebooks/05_explore_embeddings.ipynb."""
    method = str(method).lower().replace("-", "")
    _check(method in METHODS, f"method={method!r} is not known; use one of {METHODS}.")
    x = _as_emb(emb)  # (N, D)
    if method == "pca":
        from sklearn.decomposition import PCA
        return Projection(PCA(n_components=2, random_state=seed).fit_transform(x).astype(np.float32), "pca")
    if method == "tsne":
        from sklearn.manifold import TSNE
        tsne = TSNE(n_components=2, perplexity=min(30.0, (len(x) - 1) / 3), init="pca", random_state=seed,
                    max_iter=500, learning_rate="auto")
        return Projection(tsne.fit_transform(x).astype(np.float32), "tsne")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numba / n_jobs chatter
            import umap
            reducer = umap.UMAP(n_components=2, n_neighbors=min(15, len(x) - 1), random_state=seed,
                                init="spectral" if len(x) > 20 else "random")
            return Projection(np.asarray(reducer.fit_transform(x), dtype=np.float32), "umap")
    except Exception as err:  # noqa: BLE001 - umap-learn is a requirement: its failure is an error
        raise RuntimeError(f"UMAP failed on {len(x)} points ({type(err).__name__}: {err}); check that "
                           "umap-learn imports (pip install umap-learn), or use method='pca'.") from err


class ProjectionCache:
    """``get(snapshot, method)``: the projection of one snapshot of ``embeddings`` (S, N, D), computed
    on first use, then cached. The Explorer's ``.cache``."""

    def __init__(self, embeddings):
        emb = _np(embeddings, "embeddings").astype(np.float32)
        self.embeddings = emb[None] if emb.ndim == 2 else emb  # (S, N, D)
        _check(self.embeddings.ndim == 3, f"embeddings has shape {emb.shape}; expected (S, N, D), one (N, D) each.")
        self._cache = {}

    def get(self, snapshot: int, method: str = "pca") -> Projection:
        n = len(self.embeddings)
        _check(0 <= snapshot < n, f"snapshot={snapshot} out of range for {n} snapshots.")
        key = (int(snapshot), str(method).lower())
        if key not in self._cache:
            self._cache[key] = project(self.embeddings[snapshot], key[1])
        return self._cache[key]


def neighbour_overlap(emb, points2d, k: int = 10) -> float:
    """Mean fraction of each point's k nearest neighbours in ``emb`` (N, D) also among its k nearest in ``points2d``
    (N, 2); 1 = the projection keeps every neighbourhood. Derived in notebooks/05_explore_embeddings.ipynb."""
    x, p = _as_emb(emb), _as_emb(points2d, "points2d")
    _check(p.shape == (len(x), 2), f"points2d has shape {p.shape}; expected ({len(x)}, 2), one row per embedding.")
    _check(1 <= k < len(x), f"k={k}; expected 1 <= k < N={len(x)}.")
    knn = []
    for z in (x, p):
        d = pairwise_distances(torch.from_numpy(z)).fill_diagonal_(float("inf"))  # (N, N), self excluded
        knn.append([set(row) for row in d.argsort(dim=1, stable=True)[:, :k].tolist()])  # N sets of k indices
    return float(np.mean([len(a & b) for a, b in zip(*knn)]) / k)

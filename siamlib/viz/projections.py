"""2-D projections of embeddings (PCA, t-SNE, UMAP), seeded, cached per snapshot.

A widget must never recompute a projection on a slider move: :class:`ProjectionCache`
computes each (snapshot, method) once. UMAP that is missing or fails falls back
to PCA and records a visible note. Derived in notebooks/05_explore_embeddings.ipynb.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

__all__ = ["METHODS", "Projection", "project", "ProjectionCache", "knn", "neighbour_overlap"]

METHODS = ("pca", "tsne", "umap")


@dataclass
class Projection:
    """A 2-D projection: ``points`` (N, 2), the method used, and a note if it differs from the one asked.

    Used in notebooks/05_explore_embeddings.ipynb (returned by project).
    """

    points: np.ndarray
    method: str
    requested: str
    note: str = ""


def _as_emb(emb) -> np.ndarray:
    if hasattr(emb, "detach"):
        emb = emb.detach().cpu().numpy()
    emb = np.asarray(emb, dtype=np.float32)
    if emb.ndim != 2:
        raise ValueError(f"emb has shape {emb.shape}; expected (N, D): one embedding per row.")
    if len(emb) < 3:
        raise ValueError(f"emb has {len(emb)} rows; a projection needs at least 3 points.")
    if not np.isfinite(emb).all():
        raise ValueError("emb holds NaN or inf; check the training run that produced it (diverged loss?).")
    return emb


def _pca(emb: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    if emb.shape[1] == 1:
        return np.column_stack([emb[:, 0], np.zeros(len(emb), np.float32)])
    return PCA(n_components=2, random_state=seed).fit_transform(emb).astype(np.float32)


def _tsne(emb: np.ndarray, seed: int, perplexity: float, max_iter: int) -> np.ndarray:
    from sklearn.manifold import TSNE

    perplexity = float(min(perplexity, max(2.0, (len(emb) - 1) / 3.0)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, max_iter=max_iter,
                learning_rate="auto").fit_transform(emb).astype(np.float32)


def _umap(emb: np.ndarray, seed: int, n_neighbors: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba / n_jobs chatter
        import umap

        reducer = umap.UMAP(n_components=2, n_neighbors=min(n_neighbors, len(emb) - 1), random_state=seed,
                            init="spectral" if len(emb) > 20 else "random")
        return np.asarray(reducer.fit_transform(emb), dtype=np.float32)


def project(emb, method: str = "pca", seed: int = 0, *, perplexity: float = 30.0,
            n_neighbors: int = 15, tsne_iter: int = 500) -> Projection:
    """Project (N, D) embeddings to (N, 2) with ``method`` in ``("pca", "tsne", "umap")``.

    Seeded, so the same call gives the same points. t-SNE runs ``tsne_iter`` iterations
    (500: half scikit-learn's default, enough for a few thousand points, twice as fast). If UMAP cannot be imported or
    fails, PCA is used and ``Projection.note`` says so (the explorer shows it).
    Derived in notebooks/05_explore_embeddings.ipynb.
    """
    method = str(method).lower().replace("-", "")
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not known; use one of {METHODS}.")
    x = _as_emb(emb)  # (N, D)
    if method == "pca":
        return Projection(_pca(x, seed), "pca", "pca")
    if method == "tsne":
        return Projection(_tsne(x, seed, perplexity, tsne_iter), "tsne", "tsne")
    try:
        return Projection(_umap(x, seed, n_neighbors), "umap", "umap")
    except Exception as err:  # ImportError, numba failures, tiny inputs: fall back, say so
        note = f"UMAP unavailable ({type(err).__name__}: {err}); showing PCA instead."
        warnings.warn(note, RuntimeWarning, stacklevel=2)
        return Projection(_pca(x, seed), "pca", "umap", note)


@dataclass
class ProjectionCache:
    """Projections of each training snapshot, computed once per (snapshot, method).

    ``embeddings``: (S, N, D), one (N, D) embedding per snapshot (e.g. per epoch).
    ``get(s, method)`` computes on first use and caches; ``precompute`` fills the
    cache upfront with a progress bar. ``n_computed`` counts real computations (tests).

    Used by Explorer (notebooks/05_explore_embeddings.ipynb).
    """

    embeddings: np.ndarray
    seed: int = 0
    _cache: dict = field(default_factory=dict, repr=False)
    n_computed: int = 0

    def __post_init__(self):
        emb = self.embeddings
        if hasattr(emb, "detach"):
            emb = emb.detach().cpu().numpy()
        emb = np.asarray(emb, dtype=np.float32)
        if emb.ndim == 2:
            emb = emb[None]
        if emb.ndim != 3:
            raise ValueError(f"embeddings has shape {emb.shape}; expected (S, N, D): snapshots × points × dims.")
        self.embeddings = emb

    def get(self, snapshot: int, method: str = "pca") -> Projection:
        """The projection of snapshot ``snapshot`` with ``method`` (cached)."""
        if not 0 <= snapshot < len(self.embeddings):
            raise ValueError(f"snapshot={snapshot} out of range; there are {len(self.embeddings)} snapshots.")
        key = (int(snapshot), str(method).lower())
        if key not in self._cache:
            self._cache[key] = project(self.embeddings[snapshot], key[1], seed=self.seed)
            self.n_computed += 1
        return self._cache[key]

    def precompute(self, methods=("pca",), progress: bool = True) -> "ProjectionCache":
        """Compute every snapshot for each method now (so later slider moves are instant)."""
        from tqdm.auto import tqdm

        keys = [(s, m) for m in methods for s in range(len(self.embeddings))]
        for s, m in tqdm(keys, desc="projections", disable=not progress):
            self.get(s, m)
        return self


def knn(emb, index: int, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest neighbours of row ``index`` in ``emb`` (Euclidean), itself excluded.

    Returns ``(indices (k,), distances (k,))`` nearest first. Derived in
    notebooks/05_explore_embeddings.ipynb.
    """
    x = np.asarray(emb.detach().cpu().numpy() if hasattr(emb, "detach") else emb, dtype=np.float32)
    if not 0 <= index < len(x):
        raise ValueError(f"index={index} out of range for {len(x)} points.")
    if not 1 <= k < len(x):
        raise ValueError(f"k={k}; expected 1 <= k < N={len(x)}.")
    d = np.sqrt(np.maximum(((x - x[index]) ** 2).sum(1), 0.0))  # (N,)
    d[index] = np.inf
    idx = np.argpartition(d, k)[:k]
    idx = idx[np.argsort(d[idx], kind="stable")]
    return idx, d[idx]


def neighbour_overlap(emb, points2d, k: int = 10) -> float:
    """Mean fraction of each point's k nearest neighbours in the embedding that are also
    among its k nearest neighbours in the 2-D projection (1 = the projection keeps neighbourhoods).

    Derived in notebooks/05_explore_embeddings.ipynb.
    """
    from sklearn.neighbors import NearestNeighbors

    x = _as_emb(emb)
    p = np.asarray(points2d, dtype=np.float32)
    if p.shape != (len(x), 2):
        raise ValueError(f"points2d has shape {p.shape}; expected ({len(x)}, 2), one row per embedding.")
    if not 1 <= k < len(x):
        raise ValueError(f"k={k}; expected 1 <= k < N={len(x)}.")
    nn_high = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x, return_distance=False)[:, 1:]
    nn_low = NearestNeighbors(n_neighbors=k + 1).fit(p).kneighbors(p, return_distance=False)[:, 1:]
    shared = [len(np.intersect1d(a, b, assume_unique=True)) for a, b in zip(nn_high, nn_low)]
    return float(np.mean(shared) / k)

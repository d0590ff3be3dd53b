"""Verification, retrieval and one-shot metrics (lessons 04, 06); all reject NaN/inf. Across sl.metrics and sl.viz the
positive class is ``dissimilar = 1`` and the score is the distance. Derived in notebooks/04_train_mnist.ipynb."""
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from .data import EpisodeSampler
from .distances import pairwise_distances

__all__ = ["roc_auc", "best_threshold", "precision_at_1", "retrieval_metrics",
           "episode_accuracy", "lake_errors", "lake_table"]


def _finite(x, name: str) -> torch.Tensor:
    t = torch.as_tensor(x).detach().cpu()
    if t.numel() == 0:
        raise ValueError(f"{name} is empty; pass at least one value.")
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} holds NaN or inf values (a diverged model, or a bad input); "
                         "a metric on them would be meaningless. Check the model's outputs first.")
    return t


def _pairs(dist, dissimilar) -> tuple[np.ndarray, np.ndarray]:
    """Checked 1-D distances and 0/1 labels (1 = dissimilar), as NumPy arrays."""
    d, y = _finite(dist, "dist").double(), _finite(dissimilar, "dissimilar")
    if d.dim() != 1 or y.shape != d.shape:
        raise ValueError(f"dist and dissimilar must be 1-D with one value per pair; got {tuple(d.shape)} "
                         f"and {tuple(y.shape)}.")
    if not bool(((y == 0) | (y == 1)).all()):
        raise ValueError("dissimilar must be 0 (similar pair) or 1 (dissimilar pair), Hadsell et al.'s Y.")
    return d.numpy(), y.long().numpy()


def roc_auc(dist, dissimilar) -> float:
    """P(a dissimilar pair lies farther apart than a similar one), by sklearn. Derived in 04_train_mnist.ipynb."""
    from sklearn.metrics import roc_auc_score
    d, y = _pairs(dist, dissimilar)
    if y.min() == y.max():
        raise ValueError("roc_auc needs both similar (0) and dissimilar (1) pairs.")
    return float(roc_auc_score(y, d))


def best_threshold(dist, dissimilar) -> float:
    """The best-accuracy threshold on THESE pairs (choose on validation!). Derived in notebooks/04_train_mnist.ipynb."""
    d, y = _pairs(dist, dissimilar)
    order = np.argsort(d, kind="stable")
    ds, ys = d[order], y[order]
    # cut before the k-th sorted distance: the first k are called similar
    acc = np.r_[0, np.cumsum(1 - ys)] + (ys.sum() - np.r_[0, np.cumsum(ys)])  # (N+1,) correct calls
    k = int(np.argmax(acc))
    if k == 0:
        return float(ds[0] - 1e-6)
    return float(ds[-1] + 1e-6) if k == len(ds) else float((ds[k - 1] + ds[k]) / 2)


def _retrieval_setup(emb, labels):
    emb, labels = _finite(emb, "emb").float(), torch.as_tensor(labels).cpu()
    if emb.dim() != 2 or labels.shape != (len(emb),):
        raise ValueError(f"expected emb (N, D) and labels (N,); got {tuple(emb.shape)} and {tuple(labels.shape)}.")
    _, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    r = counts[inverse] - 1  # (N,) relevant items of each query
    if not bool((r > 0).any()):
        raise ValueError("every class has a single example: retrieval needs at least two per class.")
    return emb, labels, r


def _neighbour_labels(emb: torch.Tensor, labels: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """``(N, k)``: labels of each point's k nearest OTHER points, nearest first."""
    out = []
    for i in range(0, len(emb), chunk):
        d = pairwise_distances(emb[i:i + chunk], emb)  # (c, N)
        rows = torch.arange(i, min(i + chunk, len(emb)))
        d[rows - i, rows] = math.inf  # a query never retrieves itself
        out.append(labels[d.topk(k, dim=1, largest=False).indices])
    return torch.cat(out)


def retrieval_metrics(emb, labels) -> dict[str, float]:
    """Leave-one-out ``precision_at_1``, ``r_precision``, ``map_at_r``; R = the OTHER points of the query's class
    (R = 0 skipped, as PML). MAP@R = (1/R) Σ_{i≤R} P(i) rel(i). Derived in notebooks/04_train_mnist.ipynb."""
    emb, labels, r = _retrieval_setup(emb, labels)
    rel = (_neighbour_labels(emb, labels, int(r.max())) == labels[:, None]).double()  # (N, R_max)
    positions = torch.arange(1, rel.shape[1] + 1, dtype=torch.double)  # (R_max,)
    rel_r = rel * (positions[None, :] <= r[:, None])  # only the first R count
    keep, rd = r > 0, r.clamp_min(1).double()
    map_r = (torch.cumsum(rel_r, 1) / positions * rel_r).sum(1) / rd
    return {"precision_at_1": float(rel[keep, 0].mean()), "r_precision": float((rel_r.sum(1) / rd)[keep].mean()),
            "map_at_r": float(map_r[keep].mean())}


def precision_at_1(emb, labels) -> float:
    """Share of points whose nearest other point has their label. Derived in notebooks/04_train_mnist.ipynb."""
    emb, labels, r = _retrieval_setup(emb, labels)
    hit = _neighbour_labels(emb, labels, 1)[:, 0] == labels
    return float(hit[r > 0].double().mean())


def episode_accuracy(emb, labels, n_way: int = 20, k_shot: int = 1, n_query: int = 1, n_episodes: int = 1000,
                     groups=None, seed: int = 0) -> tuple[float, float]:
    """Nearest-prototype accuracy over ``EpisodeSampler`` episodes, ``(mean, 95 % half-width)`` (episodes taken as
    independent). Derived in notebooks/06_omniglot_one_shot.ipynb."""
    emb = _finite(emb, "emb").float()
    sampler = EpisodeSampler(labels, n_way, k_shot, n_query, n_episodes, groups=groups, seed=seed)
    truth = torch.arange(n_way).repeat_interleave(n_query)  # (N*Q,)
    accs = []
    for idx in sampler:
        support, query = sampler.split(emb[idx])  # (N, K, D), (N, Q, D)
        pred = pairwise_distances(query.reshape(n_way * n_query, -1), support.mean(1)).argmin(1)
        accs.append((pred == truth).double().mean().item())
    accs = np.asarray(accs)
    half = 1.96 * accs.std(ddof=1) / math.sqrt(len(accs)) if len(accs) > 1 else math.nan
    return float(accs.mean()), float(half)


def lake_errors(embed_fn: Callable, runs: Sequence, dist_fn: Callable | None = None) -> list[float]:
    """Error % per Lake run of nearest-neighbour classification (``dist_fn``); Lake et al.'s one-shot error is their
    mean. Derived in notebooks/06_omniglot_one_shot.ipynb."""
    if len(runs) == 0:
        raise ValueError("runs is empty: load them with sl.data.load_lake_runs().")
    dist_fn = dist_fn or pairwise_distances
    errors = []
    for run in runs:
        d = _finite(dist_fn(embed_fn(run.test_images), embed_fn(run.train_images)), f"distances of {run.name}")
        errors.append(100.0 * float((d.argmin(1) != torch.as_tensor(run.answers)).double().mean()))
    return errors


#: Published one-shot error % on Lake's 20 runs (Lake, Salakhutdinov & Tenenbaum 2015, Science).
_LAKE_PUBLISHED: dict[str, float] = {
    "People": 4.5, "Bayesian Program Learning (BPL)": 3.3, "Koch et al. Siamese convnet": 8.0,
    "Deep convnet": 13.5, "Hierarchical Deep": 34.8, "Modified Hausdorff distance": 38.8,
    "BPL, minimal training (background small 1)": 4.3, "Deep convnet, minimal training (background small 1)": 24.0,
}


def lake_table(ours: dict[str, float]) -> str:
    """Our errors (``{name: error %}``) beside the published ones, as text. Used in 06_omniglot_one_shot.ipynb."""
    rows = [(n, e, "published") for n, e in _LAKE_PUBLISHED.items()] + [(n, e, "this kit") for n, e in ours.items()]
    rows.sort(key=lambda r: r[1])
    width = max(len(r[0]) for r in rows)
    lines = [f"{'method':<{width}}  error %  source", "-" * (width + 19)]
    return "\n".join(lines + [f"{n:<{width}}  {e:7.1f}  {s}" for n, e, s in rows])

"""How the field judges a metric embedding.

* Verification: is this pair the same class? Pair-distance histograms,
  ROC AUC, accuracy at a threshold chosen on a validation split.
* Retrieval: precision@1, R-precision and MAP@R (Musgrave, Belongie & Lim,
  "A Metric Learning Reality Check", ECCV 2020).
* One-shot / few-shot: N-way K-shot episode accuracy with a 95% interval,
  and Lake et al.'s (2015) 20 official within-alphabet runs.

Derived in notebooks/04_train_mnist.ipynb (verification, retrieval) and
notebooks/06_omniglot_one_shot.ipynb (episodes, Lake's runs).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from .mining import pair_distance

__all__ = [
    "pair_distances",
    "distance_histograms",
    "roc_auc",
    "roc_curve",
    "best_threshold",
    "verification_accuracy",
    "precision_at_1",
    "r_precision",
    "map_at_r",
    "retrieval_metrics",
    "episode_accuracy",
    "lake_errors",
    "lake_error",
    "LAKE_PUBLISHED",
    "lake_table",
]


# --------------------------------------------------------------------- helpers
def _as_1d(x, name: str) -> torch.Tensor:
    t = torch.as_tensor(x).detach().cpu()
    if t.dim() != 1:
        raise ValueError(f"{name} must be 1-D (one value per pair); got shape {tuple(t.shape)}.")
    return t


def _check_labels(dissimilar: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    if len(dissimilar) != len(dist):
        raise ValueError(f"dist has {len(dist)} pairs but dissimilar has {len(dissimilar)}; pass one label per pair.")
    y = dissimilar.long()
    if not bool(((y == 0) | (y == 1)).all()):
        raise ValueError("dissimilar must be 0 (similar pair) or 1 (dissimilar pair), the Hadsell et al. convention.")
    return y


def pair_distances(emb1: torch.Tensor, emb2: torch.Tensor) -> torch.Tensor:
    """Euclidean distance of each pair: (B, D), (B, D) → (B,).

    Used in notebooks/04_train_mnist.ipynb.
    """
    if emb1.shape != emb2.shape:
        raise ValueError(f"emb1 and emb2 must have the same shape; got {tuple(emb1.shape)} and {tuple(emb2.shape)}.")
    return pair_distance(emb1, emb2)


# --------------------------------------------------------------------- verification
def distance_histograms(dist, dissimilar, bins: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Histogram data of pair distances, split by label: ``(edges, similar_counts, dissimilar_counts)``.

    Both histograms share the same ``bins + 1`` edges, so they can be drawn
    on one axis; a good embedding separates the two humps.

    Derived in notebooks/04_train_mnist.ipynb.
    """
    d = _as_1d(dist, "dist").double().numpy()
    y = _check_labels(_as_1d(dissimilar, "dissimilar"), torch.as_tensor(d)).numpy()
    edges = np.histogram_bin_edges(d, bins=bins)
    return edges, np.histogram(d[y == 0], edges)[0], np.histogram(d[y == 1], edges)[0]


def roc_auc(dist, dissimilar) -> float:
    """Area under the ROC curve for "large distance ⇒ dissimilar".

    Equals the probability that a random dissimilar pair is farther apart
    than a random similar pair (ties count one half): the Mann–Whitney U
    statistic divided by ``n_similar · n_dissimilar``.

    Derived in notebooks/04_train_mnist.ipynb.
    """
    d = _as_1d(dist, "dist").double()
    y = _check_labels(_as_1d(dissimilar, "dissimilar"), d)
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("roc_auc needs both similar (0) and dissimilar (1) pairs.")
    ranks = torch.as_tensor(_average_ranks(d.numpy()))  # 1-based ranks, ties averaged
    u = ranks[y == 1].sum().item() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x``, tied values sharing the mean of their ranks (vectorised)."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    new = np.r_[True, sorted_x[1:] != sorted_x[:-1]]  # (N,) first of each run of ties
    starts = np.flatnonzero(new)  # (G,)
    ends = np.r_[starts[1:], len(x)] - 1  # (G,) last index of each run
    ranks = np.empty(len(x), dtype=float)
    ranks[order] = ((starts + ends) / 2 + 1)[np.cumsum(new) - 1]
    return ranks


def roc_curve(dist, dissimilar) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)``: predicting "dissimilar" when ``dist > threshold``.

    "Positive" here means dissimilar; fpr is the fraction of similar pairs
    wrongly called dissimilar.

    No lesson calls it; it is the curve behind roc_auc of notebooks/04_train_mnist.ipynb.
    """
    d = _as_1d(dist, "dist").double().numpy()
    y = _check_labels(_as_1d(dissimilar, "dissimilar"), torch.as_tensor(d)).numpy()
    thresholds = np.concatenate([[np.inf], np.unique(d)[::-1], [-np.inf]])
    tpr = np.array([(d[y == 1] > t).mean() for t in thresholds])
    fpr = np.array([(d[y == 0] > t).mean() for t in thresholds])
    return fpr, tpr, thresholds


def verification_accuracy(dist, dissimilar, threshold: float) -> float:
    """Accuracy of the rule "dissimilar iff dist > threshold".

    Derived in notebooks/04_train_mnist.ipynb.
    """
    d = _as_1d(dist, "dist")
    y = _check_labels(_as_1d(dissimilar, "dissimilar"), d)
    return float(((d > threshold).long() == y).float().mean())


def best_threshold(dist, dissimilar) -> float:
    """The threshold with the best verification accuracy on THESE pairs.

    Choose it on a validation split and report the accuracy on test: a
    threshold tuned on the test pairs flatters the model. Candidates are the
    midpoints between consecutive sorted distances.

    Derived in notebooks/04_train_mnist.ipynb.
    """
    d = _as_1d(dist, "dist").double()
    y = _check_labels(_as_1d(dissimilar, "dissimilar"), d)
    order = torch.argsort(d)
    ds, ys = d[order], y[order]
    # threshold below the k-th sorted distance: the first k are called similar
    correct_similar = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(1 - ys, 0)])  # (N+1,)
    dissimilar_above = int(ys.sum()) - torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(ys, 0)])
    acc = correct_similar + dissimilar_above  # (N+1,)
    k = int(torch.argmax(acc))
    if k == 0:
        return float(ds[0] - 1e-6)
    if k == len(ds):
        return float(ds[-1] + 1e-6)
    return float((ds[k - 1] + ds[k]) / 2)


# --------------------------------------------------------------------- retrieval
def _ranked_neighbours(emb: torch.Tensor, labels: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """Labels of each point's k nearest OTHER points (leave-one-out), nearest first: (N, k)."""
    emb = emb.detach().float().cpu()
    out = []
    for i in range(0, len(emb), chunk):
        d = torch.cdist(emb[i:i + chunk], emb)  # (c, N)
        rows = torch.arange(i, min(i + chunk, len(emb)))
        d[rows - i, rows] = math.inf  # a query never retrieves itself
        idx = torch.topk(d, k, dim=1, largest=False).indices  # (c, k), ascending distance
        out.append(labels[idx])
    return torch.cat(out)


def _check_emb(emb: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    emb = torch.as_tensor(emb)
    labels = torch.as_tensor(labels).cpu()
    if emb.dim() != 2 or labels.dim() != 1 or len(emb) != len(labels):
        raise ValueError(
            f"expected emb (N, D) and labels (N,); got {tuple(emb.shape)} and {tuple(labels.shape)}."
        )
    if len(emb) < 2:
        raise ValueError("retrieval needs at least two embeddings.")
    return emb, labels


def retrieval_metrics(emb: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Leave-one-out retrieval within one set: ``precision_at_1``, ``r_precision``, ``map_at_r``.

    Every point queries all the others. For a query of class c, R is the
    number of OTHER points of class c; queries with R = 0 are skipped (as in
    pytorch-metric-learning). With rel(i) = 1 if the i-th neighbour is of
    class c and P(i) the precision of the first i neighbours:

    * precision@1 = rel(1)
    * R-precision = (1/R) Σ_{i≤R} rel(i)
    * MAP@R = (1/R) Σ_{i≤R} P(i)·rel(i)       (Musgrave et al. 2020)

    each averaged over queries. Derived in notebooks/04_train_mnist.ipynb.
    """
    emb, labels = _check_emb(emb, labels)
    _, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    r = counts[inverse] - 1  # (N,) relevant items per query
    keep = r > 0
    if not bool(keep.any()):
        raise ValueError("every class has a single example: retrieval needs at least two per class.")
    max_r = int(r.max())
    nn_labels = _ranked_neighbours(emb, labels, max_r)  # (N, max_r)
    rel = (nn_labels == labels[:, None]).double()  # (N, max_r)
    positions = torch.arange(1, max_r + 1, dtype=torch.double)  # (max_r,)
    within_r = positions[None, :] <= r[:, None]  # (N, max_r)
    rel_r = rel * within_r
    precision_at_i = torch.cumsum(rel_r, 1) / positions  # (N, max_r)
    rd = r.clamp_min(1).double()
    p1 = rel[:, 0]
    r_prec = rel_r.sum(1) / rd
    map_r = (precision_at_i * rel_r).sum(1) / rd
    return {
        "precision_at_1": float(p1[keep].mean()),
        "r_precision": float(r_prec[keep].mean()),
        "map_at_r": float(map_r[keep].mean()),
    }


def precision_at_1(emb: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of points whose nearest other point has the same label (leave-one-out).

    Points that are alone in their class (R = 0) are skipped, as in
    :func:`retrieval_metrics`.

    Derived in notebooks/04_train_mnist.ipynb; used in 03_triplet_loss.ipynb and 05_explore_embeddings.ipynb.
    """
    emb, labels = _check_emb(emb, labels)
    _, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    keep = counts[inverse] > 1
    if not bool(keep.any()):
        raise ValueError("every class has a single example: retrieval needs at least two per class.")
    hit = _ranked_neighbours(emb, labels, 1)[:, 0] == labels
    return float(hit[keep].double().mean())


def r_precision(emb: torch.Tensor, labels: torch.Tensor) -> float:
    """R-precision (see :func:`retrieval_metrics`).

    Derived in notebooks/04_train_mnist.ipynb.
    """
    return retrieval_metrics(emb, labels)["r_precision"]


def map_at_r(emb: torch.Tensor, labels: torch.Tensor) -> float:
    """MAP@R of Musgrave et al. 2020 (see :func:`retrieval_metrics`).

    Derived in notebooks/04_train_mnist.ipynb.
    """
    return retrieval_metrics(emb, labels)["map_at_r"]


# --------------------------------------------------------------------- episodes
def episode_accuracy(emb: torch.Tensor, labels: torch.Tensor, n_way: int = 20, k_shot: int = 1,
                     n_query: int = 1, n_episodes: int = 1000, groups: torch.Tensor | None = None,
                     seed: int = 0) -> tuple[float, float]:
    """N-way K-shot accuracy of nearest-prototype classification: ``(mean, 95% half-width)``.

    Each episode draws ``n_way`` classes (all from one group — one alphabet —
    when ``groups`` is given: "within alphabet"), ``k_shot`` support and
    ``n_query`` query examples per class, disjoint. A query is assigned to
    the class whose prototype (mean support embedding) is nearest. The
    interval is 1.96 · std / √episodes over per-episode accuracies.

    Derived in notebooks/06_omniglot_one_shot.ipynb.
    """
    emb, labels = _check_emb(emb, labels)
    emb = emb.detach().float().cpu()
    if n_way < 2 or k_shot < 1 or n_query < 1 or n_episodes < 1:
        raise ValueError(f"need n_way >= 2, k_shot, n_query, n_episodes >= 1; got {n_way}, {k_shot}, {n_query}, {n_episodes}.")
    rng = np.random.default_rng(seed)
    labels_np = labels.numpy()
    need = k_shot + n_query
    by_class = {int(c): np.flatnonzero(labels_np == c) for c in np.unique(labels_np)}
    eligible = [c for c, idx in by_class.items() if len(idx) >= need]
    if groups is None:
        pools = [eligible]
    else:
        g = torch.as_tensor(groups).cpu().numpy()
        pools = []
        for gid in np.unique(g):
            pools.append([c for c in eligible if g[by_class[c][0]] == gid])
    pools = [p for p in pools if len(p) >= n_way]
    if not pools:
        raise ValueError(
            f"no {'group' if groups is not None else 'set'} has {n_way} classes with >= {need} "
            f"examples each; lower n_way or k_shot + n_query."
        )
    accs = np.empty(n_episodes)
    for e in range(n_episodes):
        pool = pools[rng.integers(len(pools))]
        classes = rng.choice(pool, size=n_way, replace=False)
        support, query = [], []
        for c in classes:
            idx = rng.choice(by_class[int(c)], size=need, replace=False)
            support.append(idx[:k_shot])
            query.append(idx[k_shot:])
        prototypes = emb[np.stack(support)].mean(1)  # (n_way, D)
        q = emb[np.concatenate(query)]  # (n_way * n_query, D)
        truth = np.repeat(np.arange(n_way), n_query)
        pred = torch.cdist(q, prototypes).argmin(1).numpy()
        accs[e] = (pred == truth).mean()
    half = 1.96 * accs.std(ddof=1) / math.sqrt(n_episodes) if n_episodes > 1 else math.nan
    return float(accs.mean()), float(half)


# --------------------------------------------------------------------- Lake's 20 runs
def lake_errors(embed_fn: Callable[[torch.Tensor], torch.Tensor], runs: Sequence,
                dist_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> list[float]:
    """Error % of each of Lake et al.'s one-shot runs.

    For each run, every one of the 20 test images is compared with the run's
    20 training images (one per character); the nearest (smallest
    ``dist_fn``, default Euclidean distance of embeddings) is the prediction.
    ``embed_fn`` maps uint8 images (N, H, W) to embeddings (N, D).

    Derived in notebooks/06_omniglot_one_shot.ipynb.
    """
    if len(runs) == 0:
        raise ValueError("runs is empty: load them with sl.data.load_lake_runs().")
    dist_fn = dist_fn or torch.cdist
    errors = []
    for run in runs:
        train_emb = embed_fn(run.train_images)  # (20, D)
        test_emb = embed_fn(run.test_images)  # (20, D)
        pred = dist_fn(test_emb, train_emb).argmin(1).cpu()  # (20,)
        errors.append(100.0 * float((pred != torch.as_tensor(run.answers).cpu()).double().mean()))
    return errors


def lake_error(embed_fn: Callable[[torch.Tensor], torch.Tensor], runs: Sequence,
               dist_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> float:
    """Lake et al.'s (2015) one-shot error: the per-run error % averaged over the runs.

    Derived in notebooks/06_omniglot_one_shot.ipynb.
    """
    return float(np.mean(lake_errors(embed_fn, runs, dist_fn)))


LAKE_PUBLISHED: dict[str, float] = {
    "People": 4.5,
    "Bayesian Program Learning (BPL)": 3.3,
    "Koch et al. Siamese convnet": 8.0,
    "Deep convnet": 13.5,
    "Hierarchical Deep": 34.8,
    "Modified Hausdorff distance": 38.8,
    "BPL, minimal training (background small 1)": 4.3,
    "Deep convnet, minimal training (background small 1)": 24.0,
}
"""Published one-shot error % on Lake's 20 runs (Lake, Salakhutdinov & Tenenbaum 2015, Science;
Koch, Zemel & Salakhutdinov 2015)."""


def lake_table(ours: dict[str, float]) -> str:
    """A text table of our errors (``{name: error %}``) beside the published ones, best first.

    Used in notebooks/06_omniglot_one_shot.ipynb.
    """
    rows = [(name, err, "published") for name, err in LAKE_PUBLISHED.items()]
    rows += [(name, err, "this kit") for name, err in ours.items()]
    rows.sort(key=lambda r: r[1])
    width = max(len(r[0]) for r in rows)
    lines = [f"{'method':<{width}}  error %  source", "-" * (width + 19)]
    lines += [f"{name:<{width}}  {err:7.1f}  {src}" for name, err, src in rows]
    return "\n".join(lines)

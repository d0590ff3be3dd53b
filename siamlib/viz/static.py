"""Static plots: every function takes ``ax=None`` and returns the Axes it drew on.

Arrays in (numpy arrays or torch tensors), never models. Bad argument
combinations fail early with a ``ValueError`` that says what to do.

Used from notebooks/04_train_mnist.ipynb (pair histograms, ROC, curves),
notebooks/05_explore_embeddings.ipynb (scatter, thumbnails, grids) and
notebooks/06_omniglot_one_shot.ipynb (image grids).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "scatter",
    "image_scatter",
    "image_grid",
    "pair_grid",
    "triplet_grid",
    "distance_hist",
    "roc_curve",
    "training_curves",
    "label_colors",
]


# ----------------------------------------------------------------------------- helpers
def _np(x, name: str) -> np.ndarray:
    """A numpy view of ``x`` (numpy array, torch tensor, or sequence)."""
    if x is None:
        raise ValueError(f"{name} is None; pass an array or a torch tensor.")
    if hasattr(x, "detach"):  # torch tensor, on any device
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _new_ax(ax, figsize=(5, 4)):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax


def _check_len(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> None:
    if len(a) != len(b):
        raise ValueError(
            f"{name_a} has {len(a)} rows but {name_b} has {len(b)}; "
            f"they must describe the same items (one {name_b} entry per {name_a} row)."
        )


def label_colors(labels, cmap: str | None = None) -> tuple[np.ndarray, list, object]:
    """Map labels to colour indices: returns ``(codes (N,), classes, colormap)``.

    tab10 up to 10 classes, tab20 up to 20, a continuous map beyond (Omniglot).

    Used by scatter, image_scatter and Explorer (notebooks/05_explore_embeddings.ipynb).
    """
    import matplotlib

    labels = _np(labels, "labels").reshape(-1)
    classes, codes = np.unique(labels, return_inverse=True)
    if cmap is None:
        cmap = "tab10" if len(classes) <= 10 else "tab20" if len(classes) <= 20 else "turbo"
    return codes, list(classes), matplotlib.colormaps[cmap]


def _code_rgba(cm, codes, n_classes: int):
    """RGBA of class codes (an int or an (N,) array) under ``cm`` from :func:`label_colors`.

    A listed map (tab10, tab20) takes the code as its index; a continuous map
    (more than 20 classes) spreads the codes over [0, 1].
    """
    return cm(codes / max(n_classes - 1, 1) if cm.N > 20 else codes)


def _as_images(images, name: str = "images") -> np.ndarray:
    """(N, H, W) float array in [0, 1] from uint8 (N,H,W) / (N,1,H,W) or float in [0, 1]."""
    arr = _np(images, name)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(
            f"{name} has shape {arr.shape}; expected (N, H, W) or (N, 1, H, W) "
            "(for example an ImageSet's .images)."
        )
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    return arr.astype(np.float32)


def _montage(tiles: np.ndarray, n_rows: int, n_cols: int, pad: int = 2) -> np.ndarray:
    """Tile (n_rows*n_cols, H, W) images into one (n_rows*(H+pad), n_cols*(W+pad)) array."""
    n, h, w = tiles.shape
    out = np.full((n_rows * (h + pad) - pad, n_cols * (w + pad) - pad), np.nan, np.float32)
    for k in range(n):
        r, c = divmod(k, n_cols)
        out[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = tiles[k]
    return out


def _show_montage(ax, mont: np.ndarray, cmap: str = "gray"):
    import matplotlib

    cm = matplotlib.colormaps[cmap].with_extremes(bad="white")
    ax.imshow(np.ma.masked_invalid(mont), cmap=cm, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


# ----------------------------------------------------------------------------- scatter
def scatter(points2d, labels=None, ax=None, *, s: float | None = None, alpha: float = 0.8,
            cmap: str | None = None, legend: bool | None = None, title: str | None = None,
            class_names: Sequence[str] | None = None):
    """Scatter a 2-D projection, one colour per label.

    points2d: (N, 2); labels: (N,) or None. A legend is drawn for at most 20
    classes (``legend=None``), e.g. the 10 MNIST digits.
    Derived in notebooks/05_explore_embeddings.ipynb.
    """
    pts = _np(points2d, "points2d")
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(
            f"points2d has shape {pts.shape}; expected (N, 2). Project the embedding first, "
            "e.g. sl.viz.project(emb, 'pca')."
        )
    ax = _new_ax(ax)
    if s is None:
        s = float(np.clip(2000.0 / max(len(pts), 1), 2.0, 30.0))
    if labels is None:
        ax.scatter(pts[:, 0], pts[:, 1], s=s, alpha=alpha, color="tab:blue", linewidths=0)
    else:
        lab = _np(labels, "labels").reshape(-1)
        _check_len("points2d", pts, "labels", lab)
        codes, classes, cm = label_colors(lab, cmap)
        if class_names is not None and len(class_names) < int(max(classes)) + 1:
            raise ValueError(
                f"class_names has {len(class_names)} entries but labels go up to {max(classes)}; "
                "pass one name per class index (e.g. ImageSet.class_names)."
            )
        ax.scatter(pts[:, 0], pts[:, 1], c=_code_rgba(cm, codes, len(classes)), s=s, alpha=alpha, linewidths=0)
        if legend is None:
            legend = len(classes) <= 20
        if legend:
            from matplotlib.lines import Line2D

            handles = [
                Line2D([], [], marker="o", ls="", color=_code_rgba(cm, i, len(classes)),
                       label=str(class_names[c]) if class_names is not None else str(c))
                for i, c in enumerate(classes)
            ]
            ax.legend(handles=handles, title="label", fontsize="small", loc="center left",
                      bbox_to_anchor=(1.0, 0.5), frameon=False)
    ax.set_xlabel("component 1")
    ax.set_ylabel("component 2")
    if title:
        ax.set_title(title)
    return ax


def image_scatter(points2d, images, ax=None, *, zoom: float | None = None, max_images: int = 300,
                  labels=None, seed: int = 0, title: str | None = None):
    """Draw image thumbnails at their 2-D positions (a random subset of ``max_images``).

    points2d: (N, 2); images: (N, H, W) uint8 or float in [0, 1]. With ``labels`` the
    thumbnail is tinted by class colour. Derived in notebooks/05_explore_embeddings.ipynb.
    """
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    pts = _np(points2d, "points2d")
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points2d has shape {pts.shape}; expected (N, 2).")
    imgs = _as_images(images)
    _check_len("points2d", pts, "images", imgs)
    if max_images < 1:
        raise ValueError(f"max_images={max_images}; expected at least 1.")
    ax = _new_ax(ax, figsize=(7, 6))
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(pts))[:max_images]
    if zoom is None:
        zoom = 0.6 * 28.0 / imgs.shape[-1]
    if labels is not None:
        lab = _np(labels, "labels").reshape(-1)
        _check_len("points2d", pts, "labels", lab)
        codes, classes, cm = label_colors(lab)
    for i in idx:
        tile = imgs[i]
        if labels is not None:
            c = _code_rgba(cm, codes[i], len(classes))
            rgba = np.ones(tile.shape + (4,), np.float32)
            rgba[..., :3] = np.asarray(c[:3], np.float32)
            rgba[..., 3] = tile  # ink shows in the class colour, background transparent
            tile_img = OffsetImage(rgba, zoom=zoom)
        else:
            tile_img = OffsetImage(1.0 - tile, cmap="gray", zoom=zoom, norm=None)
        ax.add_artist(AnnotationBbox(tile_img, pts[i], frameon=False, pad=0.0))
    ax.update_datalim(pts[idx])
    ax.autoscale_view()
    ax.set_xlabel("component 1")
    ax.set_ylabel("component 2")
    if title:
        ax.set_title(title)
    return ax


# ----------------------------------------------------------------------------- grids
def image_grid(images, ax=None, *, ncols: int | None = None, titles: Sequence[str] | None = None,
               title: str | None = None, max_images: int = 100):
    """Show images in one montage on one Axes, optional small caption under each.

    images: (N, H, W) uint8 or float in [0, 1] (also (N, 1, H, W) model input).
    Derived in notebooks/01_twin_network.ipynb.
    """
    imgs = _as_images(images)[:max_images]
    n = len(imgs)
    if n == 0:
        raise ValueError("images is empty; pass at least one image.")
    if titles is not None and len(titles) < n:
        raise ValueError(f"titles has {len(titles)} entries for {n} images; pass one per image.")
    ncols = ncols or min(n, 10)
    if ncols < 1:
        raise ValueError(f"ncols={ncols}; expected a positive number of columns.")
    nrows = math.ceil(n / ncols)
    h, w = imgs.shape[1:]
    ax = _new_ax(ax, figsize=(1.1 * ncols, 1.1 * nrows + (0.3 * nrows if titles else 0)))
    pad = max(2, h // 10) + (h // 3 if titles else 0)
    _show_montage(ax, _montage(imgs, nrows, ncols, pad=pad))
    if titles is not None:
        for k in range(n):
            r, c = divmod(k, ncols)
            ax.text(c * (w + pad) + w / 2, r * (h + pad) + h + 1, str(titles[k]), ha="center",
                    va="top", fontsize=7)
    if title:
        ax.set_title(title)
    return ax


def _dist_caption(i: int, dist, extra: str = "") -> str:
    return (f"{extra}d={float(dist[i]):.2f}" if dist is not None else extra).strip()


def pair_grid(images1, images2, ax=None, *, dissimilar=None, distances=None, max_pairs: int = 10,
              title: str | None = None):
    """Pairs as columns (first image on top, second below), captioned same/diff and distance.

    images1, images2: (N, H, W); dissimilar: (N,) with 1 for a different-class pair
    (Hadsell et al.'s Y), distances: (N,). Derived in notebooks/02_contrastive_loss.ipynb.
    """
    a, b = _as_images(images1, "images1"), _as_images(images2, "images2")
    _check_len("images1", a, "images2", b)
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"images1 are {a.shape[1:]} but images2 are {b.shape[1:]}; pairs need one size.")
    n = min(len(a), max_pairs)
    y = None if dissimilar is None else _np(dissimilar, "dissimilar").reshape(-1)
    d = None if distances is None else _np(distances, "distances").reshape(-1)
    if y is not None:
        _check_len("images1", a, "dissimilar", y)
    if d is not None:
        _check_len("images1", a, "distances", d)
    tiles = np.concatenate([a[:n], b[:n]])  # row 0: first images, row 1: second images
    h, w = a.shape[1:]
    ax = _new_ax(ax, figsize=(1.1 * n, 2.8))
    pad = max(2, h // 10)
    _show_montage(ax, _montage(tiles, 2, n, pad=pad))
    for k in range(n):
        tag = "" if y is None else ("diff " if y[k] else "same ")
        cap = _dist_caption(k, d, tag)
        if cap:
            color = "black" if y is None else ("tab:red" if y[k] else "tab:green")
            ax.text(k * (w + pad) + w / 2, -2, cap, ha="center", va="bottom", fontsize=7, color=color)
    if title:
        ax.set_title(title, pad=14)
    return ax


def triplet_grid(anchor, positive, negative, ax=None, *, d_ap=None, d_an=None, max_triplets: int = 10,
                 title: str | None = None):
    """Triplets as columns: anchor (top), positive (middle), negative (bottom).

    anchor, positive, negative: (N, H, W). Optional distances d_ap, d_an (N,) are
    printed above each column. Derived in notebooks/03_triplet_loss.ipynb.
    """
    A, P, N = (_as_images(x, nm) for x, nm in ((anchor, "anchor"), (positive, "positive"), (negative, "negative")))
    _check_len("anchor", A, "positive", P)
    _check_len("anchor", A, "negative", N)
    if not (A.shape[1:] == P.shape[1:] == N.shape[1:]):
        raise ValueError("anchor, positive and negative images must share one (H, W) size.")
    dap = None if d_ap is None else _np(d_ap, "d_ap").reshape(-1)
    dan = None if d_an is None else _np(d_an, "d_an").reshape(-1)
    if (dap is None) != (dan is None):
        raise ValueError("pass both d_ap and d_an (the two distances of each triplet), or neither.")
    if dap is not None:
        _check_len("anchor", A, "d_ap", dap)
        _check_len("anchor", A, "d_an", dan)
    n = min(len(A), max_triplets)
    h, w = A.shape[1:]
    ax = _new_ax(ax, figsize=(1.1 * n + 0.8, 3.8))
    pad = max(2, h // 10)
    _show_montage(ax, _montage(np.concatenate([A[:n], P[:n], N[:n]]), 3, n, pad=pad))
    ax.set_yticks([h / 2 + r * (h + pad) for r in range(3)], ["anchor", "positive", "negative"])
    ax.tick_params(left=False)
    if dap is not None:
        for k in range(n):
            ax.text(k * (w + pad) + w / 2, -2, f"{dap[k]:.2f} | {dan[k]:.2f}", ha="center",
                    va="bottom", fontsize=7)
    if title:
        ax.set_title(title + ("\n(d(a,p) | d(a,n))" if dap is not None else ""), pad=14)
    return ax


# ----------------------------------------------------------------------------- verification
def _labelled_pairs(dist, dissimilar, what: str):
    """Flat float64 distances (N,) and 0/1 labels (N,), checked: same length, binary, both kinds present."""
    d = _np(dist, "dist").reshape(-1).astype(np.float64)
    y = _np(dissimilar, "dissimilar").reshape(-1)
    _check_len("dist", d, "dissimilar", y)
    if not np.isin(y, (0, 1)).all():
        raise ValueError("dissimilar must hold 0 (similar pair) or 1 (dissimilar pair) only.")
    if y.all() or not y.any():
        raise ValueError(f"{what} needs both similar and dissimilar pairs; dissimilar holds only one kind.")
    return d, y


def distance_hist(dist, dissimilar, ax=None, *, bins: int = 50, threshold: float | None = None,
                  density: bool = True, title: str | None = None):
    """Histograms of pair distances, similar pairs (Y=0) and dissimilar pairs (Y=1) overlaid.

    dist: (N,) distances; dissimilar: (N,) 0/1 (Hadsell et al.'s Y).
    Derived in notebooks/04_train_mnist.ipynb.
    """
    d, y = _labelled_pairs(dist, dissimilar, "a histogram of both kinds")
    ax = _new_ax(ax)
    edges = np.histogram_bin_edges(d, bins=bins)
    ax.hist(d[y == 0], bins=edges, alpha=0.6, density=density, color="tab:green", label="similar (Y=0)")
    ax.hist(d[y == 1], bins=edges, alpha=0.6, density=density, color="tab:red", label="dissimilar (Y=1)")
    if threshold is not None:
        ax.axvline(threshold, color="black", ls="--", lw=1, label=f"threshold {threshold:.2f}")
    ax.set_xlabel("distance")
    ax.set_ylabel("density" if density else "pairs")
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax


def roc_curve(dist, dissimilar, ax=None, *, label: str | None = None, title: str | None = None):
    """ROC of "same" decisions ``dist <= t`` over all thresholds t, with its AUC in the legend.

    True positive = a similar pair (Y=0) called same. dist: (N,), dissimilar: (N,) 0/1.
    Derived in notebooks/04_train_mnist.ipynb.
    """
    from sklearn import metrics as skm

    d, y = _labelled_pairs(dist, dissimilar, "an ROC")
    fpr, tpr, _ = skm.roc_curve(1 - y, -d)  # score: smaller distance = more likely same
    auc = skm.auc(fpr, tpr)
    ax = _new_ax(ax, figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, label=f"{label + ' ' if label else ''}AUC {auc:.3f}")
    ax.plot([0, 1], [0, 1], ls=":", color="gray", lw=1, label="chance")
    ax.set_xlabel("false positive rate (dissimilar called same)")
    ax.set_ylabel("true positive rate (similar called same)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(loc="lower right", fontsize="small")
    if title:
        ax.set_title(title)
    return ax


# ----------------------------------------------------------------------------- training
def _history_dict(history) -> dict[str, list]:
    if isinstance(history, Mapping):
        return dict(history)
    for attr in ("as_dict", "to_dict"):
        if callable(getattr(history, attr, None)):
            return dict(getattr(history, attr)())
    if dataclasses.is_dataclass(history):
        return dataclasses.asdict(history)
    if hasattr(history, "__dict__"):
        return {k: v for k, v in vars(history).items() if not k.startswith("_")}
    raise ValueError(
        f"history is a {type(history).__name__}; expected a dict of lists (e.g. "
        "{'train_loss': [...], 'val_loss': [...]}) or sl.train.History."
    )


def training_curves(history, keys: Sequence[str] | None = None, ax=None, *, x_key: str | None = None,
                    title: str | None = None, logy: bool = False):
    """Plot per-epoch curves (loss, metrics) from a History or a dict of lists.

    Every numeric list in ``history`` is plotted unless ``keys`` picks some; ``x_key``
    names the x values (default: 1, 2, ... epochs). Derived in notebooks/04_train_mnist.ipynb.
    """
    hist = _history_dict(history)
    series = {k: v for k, v in hist.items() if k != x_key and isinstance(v, (list, tuple, np.ndarray))
              and len(v) > 0 and np.issubdtype(np.asarray(v).dtype, np.number)}
    if keys is not None:
        missing = [k for k in keys if k not in series]
        if missing:
            raise ValueError(f"history has no numeric series {missing}; it has {sorted(series)}.")
        series = {k: series[k] for k in keys}
    if not series:
        raise ValueError(f"history holds no numeric per-epoch lists to plot (keys: {sorted(hist)}).")
    ax = _new_ax(ax)
    for k, v in series.items():
        v = np.asarray(v, dtype=float)
        if x_key is not None:
            x = np.asarray(hist[x_key], dtype=float)
            if len(x) != len(v):
                raise ValueError(f"{x_key} has {len(x)} values but {k} has {len(v)}.")
        else:
            x = np.arange(1, len(v) + 1)
        ax.plot(x, v, marker="o" if len(v) <= 30 else None, ms=3, label=k)
    ax.set_xlabel(x_key or "epoch")
    ax.set_ylabel("value")
    if logy:
        ax.set_yscale("log")
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax

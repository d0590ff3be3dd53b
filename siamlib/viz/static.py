"""Static plots: arrays in (numpy or torch), never models; ``ax=None`` → the Axes drawn on. As in ``sl.metrics``,
``dissimilar = 1`` (Hadsell et al.'s Y) marks a pair of different classes."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["scatter", "image_scatter", "pair_grid", "distance_hist", "training_curves"]


def _check(ok: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless ``ok``: a bad argument gets an early error that says what to do."""
    if not ok:
        raise ValueError(message)


def _np(x, name: str) -> np.ndarray:
    """``x`` (numpy array, torch tensor on any device, or sequence) as a numpy array."""
    _check(x is not None, f"{name} is None; pass an array or a torch tensor.")
    return np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)


def _new_ax(ax, figsize=(5, 4)):
    import matplotlib.pyplot as plt
    return ax if ax is not None else plt.subplots(figsize=figsize)[1]


def _check_len(name_a: str, a, name_b: str, b) -> None:
    _check(len(a) == len(b), f"{name_a} has {len(a)} rows but {name_b} has {len(b)}; pass one per {name_a} row.")


def _points(points2d, labels=None):
    """``points2d`` as an (N, 2) array, and :func:`label_colors` of ``labels`` (N,) or None."""
    pts = _np(points2d, "points2d")
    _check(pts.ndim == 2 and pts.shape[-1] == 2, f"points2d has shape {pts.shape}; expected (N, 2). Project the "
           "embedding first, e.g. sl.viz.project(emb, 'pca').points.")
    if labels is None:
        return pts, None
    lab = _np(labels, "labels").reshape(-1)
    _check_len("points2d", pts, "labels", lab)
    return pts, label_colors(lab)


def label_colors(labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(codes (N,), classes (C,), rgba (C, 4))``: tab10 up to 10 classes, tab20 up to 20, then turbo."""
    import matplotlib
    classes, codes = np.unique(_np(labels, "labels").reshape(-1), return_inverse=True)
    n = len(classes)
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20" if n <= 20 else "turbo"]
    return codes, classes, cmap(np.arange(n) if n <= 20 else np.linspace(0, 1, n))  # turbo: spread over the map


def _as_images(images, name: str = "images") -> np.ndarray:
    """(N, H, W) float32 in [0, 1] from uint8 or float (N, H, W), (N, 1, H, W) or one (H, W)."""
    arr = _np(images, name)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    arr = arr[None] if arr.ndim == 2 else arr
    _check(arr.ndim == 3, f"{name} has shape {arr.shape}; expected (N, H, W) or (N, 1, H, W), e.g. ImageSet.images.")
    return arr.astype(np.float32) / (255.0 if arr.dtype == np.uint8 else 1.0)


def scatter(points2d, labels=None, ax=None, *, s: float | None = None, alpha: float = 0.8, class_names=None,
            legend: bool | None = None, title: str | None = None):
    """Scatter a 2-D projection (N, 2), one colour per label (N,); by default a legend for at most 20 classes.
    Used in notebooks/05_explore_embeddings.ipynb and 08_ordered_and_intransitive_pairs.ipynb."""
    (pts, colors), ax = _points(points2d, labels), _new_ax(ax)
    size = s or float(np.clip(2000.0 / max(len(pts), 1), 2.0, 30.0))
    codes, classes, rgba = colors or (None, [], None)
    ax.scatter(pts[:, 0], pts[:, 1], c="tab:blue" if colors is None else rgba[codes], s=size, alpha=alpha,
               linewidths=0)
    if colors is not None and (legend or (legend is None and len(classes) <= 20)):
        from matplotlib.lines import Line2D
        names = classes if class_names is None else [class_names[int(c)] for c in classes]
        handles = [Line2D([], [], marker="o", ls="", color=col, label=str(n)) for n, col in zip(names, rgba)]
        ax.legend(handles=handles, title="label", fontsize="small", loc="center left",
                  bbox_to_anchor=(1.0, 0.5), frameon=False)
    ax.set(xlabel="component 1", ylabel="component 2", title=title or "")
    return ax


def image_scatter(points2d, images, ax=None, *, labels, max_images: int = 300, title: str | None = None):
    """Thumbnails of ``max_images`` random images (N, H, W) at their 2-D positions (N, 2), the ink in the colour of
    the class in ``labels`` (N,). Used in notebooks/05_explore_embeddings.ipynb."""
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage
    (pts, (codes, _, rgba)), imgs = _points(points2d, _np(labels, "labels")), _as_images(images)
    _check_len("points2d", pts, "images", imgs)
    _check(max_images >= 1, f"max_images={max_images}; expected at least 1.")
    ax = _new_ax(ax, figsize=(7, 6))
    idx = np.random.default_rng(0).permutation(len(pts))[:max_images]
    zoom = 0.6 * 28.0 / imgs.shape[-1]
    for i in idx:
        colour = np.broadcast_to(rgba[codes[i], :3], imgs[i].shape + (3,))  # (H, W, 3): the class colour
        tile = OffsetImage(np.dstack([colour, imgs[i]]), zoom=zoom)  # RGBA, opaque where the ink is
        ax.add_artist(AnnotationBbox(tile, pts[i], frameon=False, pad=0.0))
    ax.update_datalim(pts[idx])
    ax.autoscale_view()
    ax.set(xlabel="component 1", ylabel="component 2", title=title or "")
    return ax


def pair_grid(images1, images2, ax=None, *, dissimilar, distances=None, max_pairs: int = 10, title: str | None = None):
    """Pairs of images (N, H, W) as columns, ``images1`` on top, captioned "same"/"diff" from ``dissimilar`` (N,)
    and ``d=`` from ``distances`` (N,). Used in notebooks/01_twin_network.ipynb and 05_explore_embeddings.ipynb."""
    a, b = _as_images(images1, "images1"), _as_images(images2, "images2")
    _check_len("images1", a, "images2", b)
    _check(a.shape[1:] == b.shape[1:], f"images1 are {a.shape[1:]} but images2 are {b.shape[1:]}; pairs need one size.")
    y = _np(dissimilar, "dissimilar").reshape(-1)
    d = None if distances is None else _np(distances, "distances").reshape(-1)
    for name, v in (("dissimilar", y), ("distances", d)):
        if v is not None:
            _check_len("images1", a, name, v)
    n, (h, w) = min(len(a), max_pairs), a.shape[1:]
    pad = max(2, h // 10)
    tiles = np.pad(np.stack([a[:n], b[:n]]), ((0, 0), (0, 0), (0, pad), (0, pad)), constant_values=np.nan)
    montage = tiles.transpose(0, 2, 1, 3).reshape(2 * (h + pad), n * (w + pad))  # 2 rows of n tiles
    ax = _new_ax(ax, figsize=(1.1 * n, 2.8))
    ax.imshow(montage[:-pad, :-pad], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")  # NaN: blank
    ax.set(xticks=[], yticks=[])
    for k in range(n):
        caption = ("diff " if y[k] else "same ") + ("" if d is None else f"d={float(d[k]):.2f}")
        ax.text(k * (w + pad) + w / 2, -2, caption.strip(), ha="center", va="bottom", fontsize=7,
                color="tab:red" if y[k] else "tab:green")
    ax.set_title(title or "", pad=14)
    return ax


def distance_hist(dist, dissimilar, ax=None, *, bins: int = 50, title: str | None = None):
    """Density histograms of pair distances (N,), similar (Y=0) and dissimilar (Y=1) pairs overlaid.
    Used in notebooks/01_twin_network.ipynb."""
    d = _np(dist, "dist").reshape(-1).astype(np.float64)
    y = _np(dissimilar, "dissimilar").reshape(-1)
    _check_len("dist", d, "dissimilar", y)
    _check(np.isfinite(d).all(), "dist holds NaN or inf; check the model that produced the embeddings (diverged?).")
    _check(np.isin(y, (0, 1)).all(), "dissimilar must hold 0 (similar pair) or 1 (dissimilar pair) only.")
    _check(y.any() and not y.all(), "the histogram needs similar and dissimilar pairs; dissimilar holds only one kind.")
    ax = _new_ax(ax)
    edges = np.histogram_bin_edges(d, bins=bins)
    ax.hist(d[y == 0], bins=edges, alpha=0.6, density=True, color="tab:green", label="similar (Y=0)")
    ax.hist(d[y == 1], bins=edges, alpha=0.6, density=True, color="tab:red", label="dissimilar (Y=1)")
    ax.set(xlabel="distance", ylabel="density", title=title or "")
    ax.legend(fontsize="small")
    return ax


def training_curves(history, ax=None, *, title: str | None = None):
    """One line per numeric column of an ``sl.train.History`` or a dict ``name -> list``, against 1, 2, ...
    Used in notebooks/05_explore_embeddings.ipynb."""
    _check(isinstance(history, Mapping) or hasattr(history, "records"),  # a dict, or an sl.train.History
           f"history is a {type(history).__name__}; pass an sl.train.History or a dict of lists.")
    columns = {k: np.asarray(history[k]) for k in history.keys()}
    series = {k: v for k, v in columns.items() if k not in ("step", "epoch", "time_s")
              and v.ndim == 1 and len(v) > 0 and np.issubdtype(v.dtype, np.number)}
    _check(bool(series), f"history has no numeric series to plot; it has {sorted(columns)}.")
    ax = _new_ax(ax)
    for k, v in series.items():
        ax.plot(np.arange(1, len(v) + 1), v, marker="o" if len(v) <= 30 else None, ms=3, label=k)
    ax.set(xlabel="step", ylabel="value", title=title or "")
    ax.legend(fontsize="small")
    return ax

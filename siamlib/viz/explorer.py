"""The embedding explorer: scrub training snapshots, pick a point, see its neighbours. Each update moves the
artists in place and sends a PNG (Agg, no pyplot) to an ``ipywidgets.Image``. Derived in
notebooks/05_explore_embeddings.ipynb."""
from __future__ import annotations

import base64
import io

import numpy as np
import torch
from tqdm.auto import tqdm

from ..distances import pair_distance
from .projections import METHODS, ProjectionCache
from .static import _as_images, _check, _np, label_colors

__all__ = ["Explorer"]


class Explorer:
    """Interactive view of ``embeddings`` (S, N, D), one per snapshot, with ``labels`` (N,) and ``images`` (N, H, W):
    ``k`` neighbours searched in the embedding (never in 2-D), ``margin`` the margin slider's start (default: 10% of
    random pairs inside it); a static PNG without a widget front end. Derived in 05_explore_embeddings.ipynb."""

    max_highlight = 200  # ring at most this many active negatives (the nearest ones)

    def __init__(self, embeddings, labels, images, *, snapshot_names=None, class_names=None, k: int = 5,
                 method: str = "pca", margin: float | None = None, snapshot: int | None = None,
                 precompute: bool = False, progress: bool = True):
        self.cache = ProjectionCache(embeddings)  # checks the shape (S, N, D)
        self.emb = self.cache.embeddings  # (S, N, D) float32
        S, N, _ = self.emb.shape
        self.labels, self.images = _np(labels, "labels").reshape(-1), _as_images(images)  # (N,), (N, H, W)
        self.snapshot_names = [f"epoch {s}" for s in range(S)] if snapshot_names is None else list(snapshot_names)
        self.snapshot = S - 1 if snapshot is None else int(snapshot)
        for name, x in (("labels", self.labels), ("images", self.images)):
            _check(len(x) == N, f"{name} has {len(x)} entries but the embeddings have {N} points; pass one per point.")
        _check(str(method).lower() in METHODS, f"method={method!r}: methods must come from {METHODS}.")
        _check(1 <= k < N, f"k={k}; expected 1 <= k < N={N} neighbours.")
        _check(len(self.snapshot_names) == S, f"snapshot_names has {len(self.snapshot_names)} names for {S} snapshots.")
        self.class_names, self.k, self.method, self.index = class_names, k, str(method).lower(), 0
        self.active_mode, self.color_by_label, self._widget = "pairs", True, None
        i, j = np.random.default_rng(0).integers(0, N, (2, 2000))  # 2,000 random pairs set the distance scale
        d = pair_distance(*(torch.from_numpy(self.emb[:, idx]).flatten(0, 1) for idx in (i, j))).view(S, -1).numpy()
        self._dmax = float(max(np.quantile(d, 0.99), 1e-3))  # the margin slider's range
        self.margin = float(margin) if margin is not None else round(float(np.quantile(d[-1], 0.1)), 2)
        self._codes, self._classes, self._class_rgba = label_colors(self.labels)
        self._class_rgba[:, 3] = 0.75
        if precompute:  # project every snapshot now, so that no slider move waits for one
            for snap in tqdm(range(S), desc="projections", disable=not progress):
                self.cache.get(snap, self.method)
        self._build_figures()
        self._update_scatter()
        self._update_selection()

    def _build_figures(self) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        self.fig = Figure(figsize=(6.4, 5.0), dpi=72)  # the scatter
        self.nfig = Figure(figsize=(1.15 * (self.k + 1), 1.75), dpi=72)  # the selected image, its k neighbours
        for fig in (self.fig, self.nfig):
            FigureCanvasAgg(fig)  # draw with Agg, no pyplot
        self.ax = self.fig.add_axes((0.1, 0.1, 0.68, 0.8), xlabel="component 1", ylabel="component 2")
        s = float(np.clip(3000.0 / len(self.labels), 3.0, 30.0))
        # one collection per class, of one colour: Agg stamps a cached marker instead of drawing 10,000 paths
        self._class_idx = [np.flatnonzero(self._codes == c) for c in range(len(self._classes))]
        self._point_colls = [self.ax.scatter(np.zeros(len(i)), np.zeros(len(i)), s=s, lw=0) for i in self._class_idx]
        self._active_art = self.ax.scatter([], [], s=3 * s + 20, fc="none", ec="tab:red", label="active negatives")
        self._nbr_art = self.ax.scatter([], [], s=3 * s + 40, fc="none", ec="black", label=f"{self.k}-NN in embedding")
        self._sel_art = self.ax.scatter([0], [0], s=220, marker="*", c="gold", ec="black", lw=1.0, zorder=5,
                                        label="selected")
        handles = [self._sel_art, self._nbr_art, self._active_art]
        if len(self._classes) <= 20:
            handles += [Line2D([], [], marker="o", ls="", color=rgba, label=self._name(c))
                        for c, rgba in zip(self._classes, self._class_rgba)]
        self.fig.legend(handles=handles, loc="center left", bbox_to_anchor=(0.79, 0.5), fontsize=7, frameon=False)
        self._strip_axes = list(self.nfig.subplots(1, self.k + 1, subplot_kw=dict(xticks=[], yticks=[])))
        blank = np.zeros_like(self.images[0])
        self._strip_imgs = [a.imshow(blank, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                            for a in self._strip_axes]
        self.nfig.subplots_adjust(left=0.02, right=0.98, top=0.72, bottom=0.02, wspace=0.1)

    def _name(self, label) -> str:
        return str(self.class_names[label] if self.class_names is not None else label)

    @property
    def projection(self):
        """The (cached) projection shown now."""
        return self.cache.get(self.snapshot, self.method)

    def _update_scatter(self) -> None:
        pts = self.projection.points  # (N, 2)
        for coll, idx, rgba in zip(self._point_colls, self._class_idx, self._class_rgba):
            coll.set_offsets(pts[idx])
            coll.set_facecolor(rgba if self.color_by_label else (0.6, 0.6, 0.6, 0.5))
        self.ax.ignore_existing_data_limits = True  # fit the axes to this projection (plus 5% margins)
        self.ax.update_datalim(pts)
        self.ax.autoscale_view()
        self.ax.set_title(f"{self.method.upper()} of {self.snapshot_names[self.snapshot]} ({len(pts)} points)")

    def _distances(self) -> np.ndarray:
        """(N,) distances from the selected point to every point, in the embedding."""
        x = torch.from_numpy(self.emb[self.snapshot])  # (N, D)
        return pair_distance(x, x[self.index].expand_as(x)).numpy()

    def neighbours(self) -> tuple[np.ndarray, np.ndarray]:
        """The selected point's k nearest neighbours in the embedding: (indices (k,), distances (k,))."""
        d = self._distances()
        d[self.index] = np.inf  # never the point itself
        idx = np.argsort(d, kind="stable")[:self.k]
        return idx, d[idx]

    def active_negatives(self) -> np.ndarray:
        """Negatives n of the selected anchor a still active at margin m, nearest first. pairs (contrastive):
        d(a, n) < m; triplets: d(a, p) - d(a, n) + m > 0 for some positive p."""
        d, same = self._distances(), self.labels == self.labels[self.index]
        reach = self.margin
        if self.active_mode == "triplets":
            pos = same & (np.arange(len(d)) != self.index)
            reach = d[pos].max() + self.margin if pos.any() else -np.inf
        idx = np.flatnonzero(~same & (d < reach))
        return idx[np.argsort(d[idx], kind="stable")]

    def _update_selection(self) -> None:
        pts, i, (nbr, dist), active = self.projection.points, self.index, self.neighbours(), self.active_negatives()
        self._sel_art.set_offsets(pts[i:i + 1])
        self._nbr_art.set_offsets(pts[nbr])
        self._active_art.set_offsets(pts[active[:self.max_highlight]])
        rule = "d(a,n) < m" if self.active_mode == "pairs" else "d(a,p) - d(a,n) + m > 0"
        ringed = f"; ringed: the {self.max_highlight} nearest" if len(active) > self.max_highlight else ""
        neighbours = ", ".join(f"#{j} (label {self._name(self.labels[j])}, d={dj:.3f})" for j, dj in zip(nbr, dist))
        n_neg = int((self.labels != self.labels[i]).sum())
        self.info_html = (f"<div style='font-size:12px'><b>neighbours of #{i}</b> (embedding space, Euclidean): "
                          f"{neighbours}<br><b>margin</b>: {len(active)} of {n_neg} negatives active at margin "
                          f"{self.margin:.2f} ({rule}){ringed}</div>")
        self._strip_imgs[0].set_data(self.images[i])
        self._strip_axes[0].set_title(f"#{i}\nlabel {self._name(self.labels[i])}", fontsize=8)
        for a, im, j, dj in zip(self._strip_axes[1:], self._strip_imgs[1:], nbr, dist):
            im.set_data(self.images[j])
            a.set_title(f"#{j} d={dj:.2f}\nlabel {self._name(self.labels[j])}", fontsize=7,
                        color="tab:green" if self.labels[j] == self.labels[i] else "tab:red")
        self.nfig.suptitle(f"selected point and its {self.k} nearest neighbours in the embedding "
                           f"({self.snapshot_names[self.snapshot]})", fontsize=8)

    def _apply(self, attr: str, value, control: str, points: bool = False, strip: bool = True) -> None:
        """Set ``attr`` and redraw; once the widgets exist, move ``control`` instead (its observer calls back here)."""
        if self._widget is not None and getattr(self, control).value != value:
            getattr(self, control).value = value
            return
        setattr(self, attr, value)
        if points:
            self._update_scatter()
        self._update_selection()
        if self._widget is not None:  # send the new pictures to the front end
            self._scatter_img.value = self._png(self.fig)
            if strip:
                self._strip_img.value = self._png(self.nfig)
            self._info.value = self.info_html

    def set_snapshot(self, snapshot: int) -> None:
        """Show training snapshot ``snapshot`` (the epoch slider)."""
        _check(0 <= snapshot < len(self.emb), f"snapshot={snapshot} out of range for {len(self.emb)} snapshots.")
        self._apply("snapshot", int(snapshot), "_snap_slider", points=True)

    def set_method(self, method: str) -> None:
        """Switch the projection (pca, tsne, umap): computed once per snapshot, then cached."""
        _check(str(method).lower() in METHODS, f"method={method!r}; the explorer offers {METHODS}.")
        self._apply("method", str(method).lower(), "_method_dd", points=True)

    def select(self, index: int) -> None:
        """Select point ``index``: show its image and its k nearest neighbours in the embedding."""
        _check(0 <= index < len(self.labels), f"index={index} out of range for {len(self.labels)} points.")
        self._apply("index", int(index), "_index_box")

    def set_margin(self, margin: float) -> None:
        """Ring the negatives still active at ``margin``."""
        _check(margin >= 0, f"margin={margin}; a margin is a distance, use a value >= 0.")
        self._apply("margin", float(margin), "_margin_slider", strip=False)

    def set_active(self, mode: str) -> None:
        """Which loss the rings are for: 'pairs' (contrastive) or 'triplets'."""
        _check(mode in ("pairs", "triplets"), f"mode={mode!r}; use 'pairs' or 'triplets'.")
        self._apply("active_mode", mode, "_active_tb", strip=False)

    def set_color_by_label(self, on: bool) -> None:
        """Colour the points by label (True) or all grey (False)."""
        self._apply("color_by_label", bool(on), "_color_cb", points=True, strip=False)

    def on_click(self, event: dict) -> None:
        """Select the point drawn within 12 pixels of an ipyevents click (``arrayX``, ``arrayY``: from the top left)."""
        xy = (event["arrayX"], self.fig.bbox.height - event["arrayY"])  # pixels from the bottom left
        px = np.hypot(*(self.ax.transData.transform(self.projection.points) - xy).T)  # (N,) pixels away
        if px.min() <= 12.0:
            self.select(int(np.argmin(px)))

    @staticmethod
    def _png(fig) -> bytes:
        fig.canvas.print_png(buf := io.BytesIO(), pil_kwargs={"compress_level": 1})  # fast, larger PNGs
        return buf.getvalue()

    @property
    def widget(self):
        """The ipywidgets box (built on first use)."""
        if self._widget is None:
            self._build_widget()
        return self._widget

    def _build_widget(self) -> None:
        import ipywidgets as W
        from ipyevents import Event
        S, N, _ = self.emb.shape
        self._method_dd = W.Dropdown(options=METHODS, value=self.method, description="projection")
        self._snap_slider = W.IntSlider(value=self.snapshot, min=0, max=S - 1, description="epoch",
                                        continuous_update=False)  # redraw on release, not on every pixel
        self._snap_slider.add_class("siamlib-epoch-slider")
        self._index_box = W.BoundedIntText(value=self.index, min=0, max=N - 1, description="point #")
        self._margin_slider = W.FloatSlider(value=self.margin, min=0.0, max=round(1.2 * self._dmax, 2),
                                            step=round(self._dmax / 100, 3) or 0.001, description="margin",
                                            continuous_update=False)
        self._active_tb = W.ToggleButtons(options=["pairs", "triplets"], value=self.active_mode, description="active",
                                          style={"button_width": "70px"})
        self._color_cb = W.Checkbox(value=self.color_by_label, description="colour by label", indent=False)
        for control, setter in [(self._method_dd, self.set_method), (self._snap_slider, self.set_snapshot),
                                (self._index_box, self.select), (self._margin_slider, self.set_margin),
                                (self._active_tb, self.set_active), (self._color_cb, self.set_color_by_label)]:
            control.observe(lambda change, setter=setter: setter(change["new"]), names="value")
        self._scatter_img = W.Image(format="png", value=self._png(self.fig))
        self._scatter_img.add_class("siamlib-explorer-figure")
        self._strip_img = W.Image(format="png", value=self._png(self.nfig))
        self._info = W.HTML(self.info_html, layout=W.Layout(width="95%"))
        self._click = Event(source=self._scatter_img, watched_events=["click"])  # ipyevents: clicks on the PNG
        self._click.on_dom_event(self.on_click)
        self._widget = W.VBox([W.HBox([self._method_dd, self._snap_slider, self._color_cb]),
                               W.HBox([self._index_box, W.HTML("<i>&nbsp;click a point or type its number</i>")]),
                               W.HBox([self._margin_slider, self._active_tb]),
                               self._scatter_img, self._strip_img, self._info])
        self._widget.add_class("siamlib-explorer")

    def _repr_mimebundle_(self, include=None, exclude=None):
        """The widget for live front ends, plus a static PNG (scatter above strip) for the rest."""
        from PIL import Image
        a, b = (Image.open(io.BytesIO(p)).convert("RGB") for p in (self._png(self.fig), self._png(self.nfig)))
        both = Image.new("RGB", (max(a.width, b.width), a.height + b.height), "white")
        both.paste(a)
        both.paste(b, (0, a.height))
        both.save(buf := io.BytesIO(), format="PNG")
        bundle = {"image/png": base64.b64encode(buf.getvalue()).decode("ascii"),
                  "text/plain": f"<siamlib.viz.Explorer: {self.emb.shape[1]} points, {self.emb.shape[0]} snapshots; "
                                "static view shown without a widget front end>"}
        try:
            bundle.update({k: v for k, v in self.widget._repr_mimebundle_().items() if k != "text/plain"})
        except Exception:  # noqa: BLE001 - no ipywidgets or no kernel comm: the static PNG is all there is
            pass
        return bundle

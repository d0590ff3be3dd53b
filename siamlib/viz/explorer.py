"""The embedding explorer: scrub training snapshots, pick a point, see its neighbours.

Arrays in: ``embeddings`` (S, N, D) (one embedding per snapshot, e.g. per epoch),
``labels`` (N,), ``images`` (N, H, W). Works for MNIST and Omniglot alike.

How it draws: matplotlib on the Agg canvas (no pyplot, no backend needed); each
update moves the existing artists in place (``set_offsets``, ``set_facecolors``)
and encodes one PNG into an ``ipywidgets.Image``. Projections come from a
:class:`~siamlib.viz.projections.ProjectionCache`, so a slider move never
recomputes one. Neighbours are searched in the embedding space, never in 2-D.

Without a widget front end (nbval, a static render on GitHub or nbviewer) the
cell shows a static PNG of the same view instead: ``_repr_mimebundle_`` carries
both the widget view and an ``image/png``. Clicking a point needs the optional
``ipyevents`` package; the "point" box always works.

Derived in notebooks/05_explore_embeddings.ipynb.
"""
from __future__ import annotations

import base64
import io
import time

import numpy as np

from .projections import METHODS, ProjectionCache, knn
from .static import _as_images, _code_rgba, _np, label_colors

__all__ = ["Explorer"]

_GREY = (0.6, 0.6, 0.6, 0.5)


class Explorer:
    """Interactive view of embeddings over training.

    Parameters
    ----------
    embeddings : (S, N, D) or (N, D) array/tensor, one embedding per snapshot.
    labels : (N,) int class labels.  images : (N, H, W) uint8 (or float in [0, 1]).
    snapshot_names : names for the slider readout (default "epoch 0" ...).
    k : number of nearest neighbours shown.  method : first projection shown.
    precompute : False (compute each projection when first shown), True (all snapshots
        of ``method`` now, with a progress bar) or a tuple of methods.
    margin : start value of the margin slider (default: median negative distance).
    active : "pairs" (contrastive: negatives with d(a, n) < m) or "triplets"
        (negatives n with d(a, p) - d(a, n) + m > 0 for some positive p).
    max_highlight : at most this many active negatives are ringed (the nearest ones).

    Callbacks (what the widgets call; tests and the bench call them directly):
    :meth:`set_snapshot`, :meth:`set_method`, :meth:`select`, :meth:`set_margin`,
    :meth:`set_color_by_label`, :meth:`set_active`, :meth:`on_click`.

    Derived in notebooks/05_explore_embeddings.ipynb.
    """

    def __init__(self, embeddings, labels, images, *, snapshot_names=None, class_names=None, k: int = 5,
                 method: str = "pca", methods=METHODS, margin: float | None = None, active: str = "pairs",
                 snapshot: int | None = None, index: int = 0, seed: int = 0, size=(6.4, 5.0), dpi: int = 72,
                 precompute=False, progress: bool = True, max_highlight: int = 200):
        self.cache = ProjectionCache(embeddings, seed=seed)  # validates (S, N, D)
        self.emb = self.cache.embeddings  # (S, N, D) float32
        S, N, _ = self.emb.shape
        self.labels = _np(labels, "labels").reshape(-1)
        if len(self.labels) != N:
            raise ValueError(f"labels has {len(self.labels)} entries but the embeddings have {N} points; "
                             "pass one label per embedded image.")
        self.images = _as_images(images)  # (N, H, W) in [0, 1]
        if len(self.images) != N:
            raise ValueError(f"images has {len(self.images)} entries but the embeddings have {N} points; "
                             "pass the images that were embedded, in the same order.")
        self.methods = tuple(str(m).lower() for m in methods)
        bad = [m for m in self.methods if m not in METHODS]
        if bad or str(method).lower() not in self.methods:
            raise ValueError(f"methods={methods!r}, method={method!r}: methods must come from {METHODS} "
                             "and include method.")
        if not 1 <= k < N:
            raise ValueError(f"k={k}; expected 1 <= k < N={N} neighbours.")
        if active not in ("pairs", "triplets"):
            raise ValueError(f"active={active!r}; use 'pairs' (contrastive) or 'triplets'.")
        self.snapshot_names = list(snapshot_names) if snapshot_names is not None else [f"epoch {s}" for s in range(S)]
        if len(self.snapshot_names) != S:
            raise ValueError(f"snapshot_names has {len(self.snapshot_names)} names for {S} snapshots.")
        self.class_names = class_names
        self.k = k
        self.method = str(method).lower()
        self.snapshot = S - 1 if snapshot is None else int(snapshot)
        if not 0 <= self.snapshot < S:
            raise ValueError(f"snapshot={snapshot} out of range for {S} snapshots.")
        if not 0 <= index < N:
            raise ValueError(f"index={index} out of range for {N} points.")
        self.index = int(index)
        self.active_mode = active
        self.max_highlight = int(max_highlight)
        self.color_by_label = True
        self._dmax = self._distance_scale()
        self.margin = float(margin) if margin is not None else round(self._d10, 2)
        self._codes, self._classes, cmap = label_colors(self.labels)
        self._label_rgba = _code_rgba(cmap, self._codes, len(self._classes))  # (N, 4)
        self._label_rgba[:, 3] = 0.75
        self._widget = None
        self.last_render_ms: float | None = None
        if precompute:  # True: every snapshot of `method` now; a tuple: those methods
            methods = (self.method,) if precompute is True else tuple(precompute)
            self.cache.precompute(methods, progress=progress)
        self._build_figures(size, dpi)
        self._update_scatter()
        self._update_selection()

    # ------------------------------------------------------------------ figures
    def _distance_scale(self) -> float:
        """A distance scale for the margin slider: the 99th percentile over sampled pairs."""
        rng = np.random.default_rng(0)
        S, N, _ = self.emb.shape
        i, j = rng.integers(0, N, 2000), rng.integers(0, N, 2000)
        d = np.linalg.norm(self.emb[:, i] - self.emb[:, j], axis=-1)  # (S, 2000)
        self._d10 = float(np.quantile(d[-1], 0.1))  # default margin: 10% of random pairs inside it
        return float(max(np.quantile(d, 0.99), 1e-3))

    def _build_figures(self, size, dpi) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D

        N = self.emb.shape[1]
        self.fig = Figure(figsize=size, dpi=dpi)
        FigureCanvasAgg(self.fig)
        self.ax = self.fig.add_axes((0.1, 0.1, 0.68, 0.8))
        s = float(np.clip(3000.0 / N, 3.0, 30.0))
        empty = np.empty((0, 2))
        # one collection per class, each of one colour: Agg then stamps a cached marker
        # (draw_markers) instead of drawing 10,000 separate paths -- the redraw's main cost.
        self._class_idx = [np.flatnonzero(self._codes == c) for c in range(len(self._classes))]
        self._class_rgba = [self._label_rgba[idx[0]] for idx in self._class_idx]
        self._point_colls = [self.ax.scatter(np.zeros(len(idx)), np.zeros(len(idx)), s=s, color=rgba,
                                             linewidths=0) for idx, rgba in zip(self._class_idx, self._class_rgba)]
        self._active_art = self.ax.scatter(empty[:, 0], empty[:, 1], s=3 * s + 20, facecolors="none",
                                           edgecolors="tab:red", linewidths=1.0, label="active negatives")
        self._nbr_art = self.ax.scatter(empty[:, 0], empty[:, 1], s=3 * s + 40, facecolors="none",
                                        edgecolors="black", linewidths=1.5, label=f"{self.k}-NN in embedding")
        self._sel_art = self.ax.scatter([0], [0], s=220, marker="*", c="gold", edgecolors="black",
                                        linewidths=1.0, zorder=5, label="selected")
        self.ax.set_xlabel("component 1")
        self.ax.set_ylabel("component 2")
        self._title = self.ax.set_title("")
        self._note = self.fig.text(0.01, 0.01, "", color="tab:red", fontsize=8)
        handles = [self._sel_art, self._nbr_art, self._active_art]
        if len(self._classes) <= 20:
            names = self.class_names
            handles += [Line2D([], [], marker="o", ls="", color=self._label_rgba[np.argmax(self._codes == c)],
                               label=str(names[cls]) if names is not None else str(cls))
                        for c, cls in enumerate(self._classes)]
        self.fig.legend(handles=handles, loc="center left", bbox_to_anchor=(0.79, 0.5), fontsize=7,
                        frameon=False)

        # neighbour strip: the selected image then its k nearest neighbours
        k = self.k
        self.nfig = Figure(figsize=(1.15 * (k + 1), 1.75), dpi=dpi)
        FigureCanvasAgg(self.nfig)
        axs = self.nfig.subplots(1, k + 1)
        self._strip_axes = list(np.atleast_1d(axs))
        self._strip_imgs = []
        blank = np.zeros_like(self.images[0])
        for a in self._strip_axes:
            self._strip_imgs.append(a.imshow(blank, cmap="gray", vmin=0, vmax=1, interpolation="nearest"))
            a.set_xticks([])
            a.set_yticks([])
        self.nfig.subplots_adjust(left=0.02, right=0.98, top=0.72, bottom=0.02, wspace=0.1)

    # ------------------------------------------------------------------ state → artists
    @property
    def projection(self):
        """The cached projection shown now (a :class:`Projection`)."""
        return self.cache.get(self.snapshot, self.method)

    def _update_scatter(self) -> None:
        proj = self.projection
        pts = proj.points  # (N, 2)
        for coll, idx in zip(self._point_colls, self._class_idx):
            coll.set_offsets(pts[idx])
        lo, hi = pts.min(0), pts.max(0)
        pad = 0.05 * np.maximum(hi - lo, 1e-6)
        self.ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
        self.ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
        self._title.set_text(f"{proj.method.upper()} of {self.snapshot_names[self.snapshot]} "
                             f"({pts.shape[0]} points)")
        self._note.set_text(proj.note)

    def point_offsets(self) -> np.ndarray:
        """(N, 2) positions of the drawn points, in the input order (read back from the artists)."""
        out = np.empty((len(self.labels), 2))
        for coll, idx in zip(self._point_colls, self._class_idx):
            out[idx] = coll.get_offsets()
        return out

    def point_colors(self) -> np.ndarray:
        """(N, 4) RGBA face colour of each drawn point, in the input order."""
        out = np.empty((len(self.labels), 4))
        for coll, idx in zip(self._point_colls, self._class_idx):
            out[idx] = coll.get_facecolors()[0]
        return out

    def neighbours(self) -> tuple[np.ndarray, np.ndarray]:
        """The selected point's k nearest neighbours in the embedding space: (indices, distances)."""
        return knn(self.emb[self.snapshot], self.index, self.k)

    def active_negatives(self) -> np.ndarray:
        """Indices of negatives of the selected anchor still active at the current margin, nearest first.

        pairs: contrastive hinge max(0, m - d(a, n)) > 0, i.e. d(a, n) < m.
        triplets: some positive p has d(a, p) - d(a, n) + m > 0, i.e. d(a, n) < max_p d(a, p) + m.
        """
        emb = self.emb[self.snapshot]  # (N, D)
        d = np.linalg.norm(emb - emb[self.index], axis=1)  # (N,)
        neg = self.labels != self.labels[self.index]
        if self.active_mode == "pairs":
            idx = np.flatnonzero(neg & (d < self.margin))
            return idx[np.argsort(d[idx], kind="stable")]
        pos = (self.labels == self.labels[self.index]) & (np.arange(len(d)) != self.index)
        if not pos.any():
            return np.empty(0, dtype=int)
        idx = np.flatnonzero(neg & (d < d[pos].max() + self.margin))
        return idx[np.argsort(d[idx], kind="stable")]

    def _update_selection(self) -> None:
        pts = self.projection.points
        i = self.index
        nbr, dist = self.neighbours()
        active = self.active_negatives()
        self._sel_art.set_offsets(pts[i:i + 1])
        self._nbr_art.set_offsets(pts[nbr])
        shown = active[:self.max_highlight]  # the hardest (nearest) ones; the count covers all
        self._active_art.set_offsets(pts[shown] if len(shown) else np.empty((0, 2)))
        n_neg = int((self.labels != self.labels[i]).sum())
        what = "d(a,n) < m" if self.active_mode == "pairs" else "d(a,p) - d(a,n) + m > 0"
        self.active_text = (f"{len(active)} of {n_neg} negatives active at margin {self.margin:.2f} ({what})"
                            + (f"; ringed: the {self.max_highlight} nearest" if len(active) > self.max_highlight else ""))
        # strip: selected image, then neighbours with distance; green = same label
        names = self.class_names
        lab = (lambda j: str(names[self.labels[j]]) if names is not None else str(self.labels[j]))
        self._strip_imgs[0].set_data(self.images[i])
        self._strip_axes[0].set_title(f"#{i}\nlabel {lab(i)}", fontsize=8, color="black")
        for a, im, j, dj in zip(self._strip_axes[1:], self._strip_imgs[1:], nbr, dist):
            im.set_data(self.images[j])
            same = self.labels[j] == self.labels[i]
            a.set_title(f"#{j} d={dj:.2f}\nlabel {lab(j)}", fontsize=7,
                        color="tab:green" if same else "tab:red")
        self.nfig.suptitle(f"selected point and its {self.k} nearest neighbours in the embedding "
                           f"({self.snapshot_names[self.snapshot]})", fontsize=8)
        self.neighbour_text = ", ".join(f"#{j} (label {lab(j)}, d={dj:.3f})" for j, dj in zip(nbr, dist))

    # ------------------------------------------------------------------ callbacks
    def _via_widget(self, control: str, value) -> bool:
        """With the widget built and its ``control`` not yet at ``value``: move the control and
        return True; its observer then calls the setter back, so widget and state stay in step."""
        if self._widget is None or getattr(self, control).value == value:
            return False
        getattr(self, control).value = value
        return True

    def set_snapshot(self, snapshot: int) -> None:
        """Show training snapshot ``snapshot`` (the epoch slider)."""
        if not 0 <= snapshot < len(self.emb):
            raise ValueError(f"snapshot={snapshot} out of range; there are {len(self.emb)} snapshots.")
        if self._via_widget("_snap_slider", snapshot):  # keep the slider in step; it calls back here
            return
        self.snapshot = int(snapshot)
        self._update_scatter()
        self._update_selection()
        self._refresh()

    def set_method(self, method: str) -> None:
        """Switch the projection (pca, tsne, umap); computed once per snapshot, then cached."""
        method = str(method).lower()
        if method not in self.methods:
            raise ValueError(f"method={method!r}; this explorer offers {self.methods}.")
        if self._via_widget("_method_dd", method):
            return
        self.method = method
        self._update_scatter()
        self._update_selection()
        self._refresh()

    def select(self, index: int) -> None:
        """Select point ``index``: show its image and its k nearest neighbours in the embedding."""
        if not 0 <= index < len(self.labels):
            raise ValueError(f"index={index} out of range for {len(self.labels)} points.")
        if self._via_widget("_index_box", index):
            return
        self.index = int(index)
        self._update_selection()
        self._refresh()

    def set_margin(self, margin: float) -> None:
        """Highlight the negatives still active at ``margin``."""
        if margin < 0:
            raise ValueError(f"margin={margin}; a margin is a distance, use a value >= 0.")
        if self._widget is not None and abs(self._margin_slider.value - margin) > 1e-12:
            self._margin_slider.value = margin
            return
        self.margin = float(margin)
        self._update_selection()
        self._refresh(strip=False)

    def set_active(self, mode: str) -> None:
        """'pairs' (contrastive) or 'triplets': which loss the margin highlight is for."""
        if mode not in ("pairs", "triplets"):
            raise ValueError(f"mode={mode!r}; use 'pairs' or 'triplets'.")
        if self._via_widget("_active_tb", mode):
            return
        self.active_mode = mode
        self._update_selection()
        self._refresh(strip=False)

    def set_color_by_label(self, on: bool) -> None:
        """Colour points by label (True) or all grey (False)."""
        if self._via_widget("_color_cb", bool(on)):
            return
        self.color_by_label = bool(on)
        for coll, rgba in zip(self._point_colls, self._class_rgba):
            coll.set_facecolor(rgba if on else _GREY)
        self._refresh(strip=False)

    def nearest_point(self, x: float, y: float, max_px: float = 12.0) -> int | None:
        """The point drawn nearest to data coordinates (x, y), within ``max_px`` pixels, else None."""
        pts = self.projection.points
        disp = self.ax.transData.transform(pts)  # (N, 2) pixels
        here = self.ax.transData.transform([[x, y]])[0]
        d = np.hypot(*(disp - here).T)
        j = int(np.argmin(d))
        return j if d[j] <= max_px else None

    def on_click(self, event) -> None:
        """Select the point nearest a click. ``event`` has ``xdata``/``ydata`` (matplotlib) or,
        from ipyevents on the image, ``arrayX``/``arrayY`` (pixels from the top-left)."""
        if isinstance(event, dict):
            if "arrayX" not in event:
                return
            h = self.fig.bbox.height
            xd, yd = self.ax.transData.inverted().transform([[event["arrayX"], h - event["arrayY"]]])[0]
        else:
            if getattr(event, "inaxes", self.ax) is not self.ax or event.xdata is None:
                return
            xd, yd = event.xdata, event.ydata
        j = self.nearest_point(xd, yd)
        if j is not None:
            self.select(j)

    # ------------------------------------------------------------------ rendering
    @staticmethod
    def _png(fig) -> bytes:
        buf = io.BytesIO()
        fig.canvas.print_png(buf, pil_kwargs={"compress_level": 1})
        return buf.getvalue()

    def render(self) -> tuple[bytes, bytes]:
        """Draw both figures now and return their PNG bytes (scatter, neighbour strip)."""
        return self._png(self.fig), self._png(self.nfig)

    def _refresh(self, strip: bool = True) -> None:
        if self._widget is None:
            return
        t0 = time.perf_counter()
        self._scatter_img.value = self._png(self.fig)
        if strip:
            self._strip_img.value = self._png(self.nfig)
        self._info.value = self._info_html()
        self.last_render_ms = 1000 * (time.perf_counter() - t0)

    def _info_html(self) -> str:
        note = f"<br><b style='color:#c00'>{self.projection.note}</b>" if self.projection.note else ""
        return (f"<div style='font-size:12px'><b>neighbours of #{self.index}</b> (embedding space, "
                f"Euclidean): {self.neighbour_text}<br><b>margin</b>: {self.active_text}{note}</div>")

    # ------------------------------------------------------------------ widgets
    @property
    def widget(self):
        """The ipywidgets box (built on first use)."""
        if self._widget is None:
            self._build_widget()
        return self._widget

    def _build_widget(self) -> None:
        import ipywidgets as W

        S, N, _ = self.emb.shape
        style = {"description_width": "70px"}
        self._method_dd = W.Dropdown(options=self.methods, value=self.method, description="projection",
                                     style=style, layout=W.Layout(width="220px"))
        self._snap_slider = W.IntSlider(value=self.snapshot, min=0, max=S - 1, step=1, description="epoch",
                                        continuous_update=False, style=style, layout=W.Layout(width="360px"))
        self._snap_slider.add_class("siamlib-epoch-slider")
        self._index_box = W.BoundedIntText(value=self.index, min=0, max=N - 1, description="point #",
                                           style=style, layout=W.Layout(width="180px"))
        self._margin_slider = W.FloatSlider(value=self.margin, min=0.0, max=round(1.2 * self._dmax, 2),
                                            step=round(self._dmax / 100, 3) or 0.001, description="margin",
                                            continuous_update=False, style=style,
                                            layout=W.Layout(width="360px"), readout_format=".2f")
        self._active_tb = W.ToggleButtons(options=["pairs", "triplets"], value=self.active_mode,
                                          description="active", style={"button_width": "70px",
                                                                       "description_width": "70px"})
        self._color_cb = W.Checkbox(value=self.color_by_label, description="colour by label", indent=False)
        self._scatter_img = W.Image(format="png", value=self._png(self.fig))
        self._scatter_img.add_class("siamlib-explorer-figure")
        self._strip_img = W.Image(format="png", value=self._png(self.nfig))
        self._info = W.HTML(self._info_html(), layout=W.Layout(width="95%"))

        self._method_dd.observe(lambda c: self.set_method(c["new"]), names="value")
        self._snap_slider.observe(lambda c: self.set_snapshot(c["new"]), names="value")
        self._index_box.observe(lambda c: self.select(c["new"]), names="value")
        self._margin_slider.observe(lambda c: self.set_margin(c["new"]), names="value")
        self._active_tb.observe(lambda c: self.set_active(c["new"]), names="value")
        self._color_cb.observe(lambda c: self.set_color_by_label(c["new"]), names="value")
        hint = "type a point number"
        try:  # clicking on the scatter needs the optional ipyevents package (and its front-end part)
            from ipyevents import Event

            self._click = Event(source=self._scatter_img, watched_events=["click"])
            self._click.on_dom_event(self.on_click)
            hint = "click a point or type its number"
        except ImportError:
            self._click = None
        controls = W.VBox([
            W.HBox([self._method_dd, self._snap_slider, self._color_cb]),
            W.HBox([self._index_box, W.HTML(f"<i>&nbsp;{hint}</i>")]),
            W.HBox([self._margin_slider, self._active_tb]),
        ])
        self._widget = W.VBox([controls, W.HBox([self._scatter_img]), self._strip_img, self._info])
        self._widget.add_class("siamlib-explorer")

    def static_png(self) -> bytes:
        """One PNG of the current view: the scatter above the neighbour strip (the no-widget fallback)."""
        from PIL import Image

        a, b = (Image.open(io.BytesIO(p)).convert("RGB") for p in self.render())
        out = Image.new("RGB", (max(a.width, b.width), a.height + b.height), "white")
        out.paste(a, (0, 0))
        out.paste(b, (0, a.height))
        buf = io.BytesIO()
        out.save(buf, format="PNG")
        return buf.getvalue()

    def _repr_mimebundle_(self, include=None, exclude=None):
        """Widget view for live front ends, plus a static PNG that renderers without widgets show."""
        bundle = {"image/png": base64.b64encode(self.static_png()).decode("ascii"),
                  "text/plain": f"<siamlib.viz.Explorer: {self.emb.shape[1]} points, "
                                f"{self.emb.shape[0]} snapshots; static view shown without a widget front end>"}
        try:
            bundle.update({k: v for k, v in self.widget._repr_mimebundle_().items() if k != "text/plain"})
        except Exception:  # no ipywidgets / no kernel comm: the static PNG is all there is
            pass
        return bundle

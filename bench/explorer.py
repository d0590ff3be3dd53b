"""Explorer redraw time: how long one epoch-slider move takes with 10,000 points.

Calls the slider's callback (``Explorer.set_snapshot``) exactly as the widget does,
with the widget built, so the time includes moving the artists in place, drawing
the figures with Agg and encoding the PNGs that the browser receives. Projections
are precomputed (the explorer caches them), so this is the redraw alone.

    python bench/explorer.py [--points 10000] [--moves 10] [--snapshots 6]

Prints a table; the last line is one JSON object (redraw_ms_median, points, ...).
Goal (issue 5): median <= 300 ms on the development machine (2 CPU cores).
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import time

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import siamlib as sl


def synthetic_snapshots(n_points: int, n_snapshots: int, dim: int = 64, n_classes: int = 10, seed: int = 0):
    """Clusters that tighten over the snapshots, like an embedding during training."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n_points)  # (N,)
    centres = rng.normal(size=(n_classes, dim))  # (C, D)
    noise = rng.normal(size=(n_points, dim))  # (N, D)
    emb = np.stack([noise + (s / max(n_snapshots - 1, 1)) * 4 * centres[labels]
                    for s in range(n_snapshots)]).astype(np.float32)  # (S, N, D)
    images = rng.integers(0, 256, (n_points, 28, 28), dtype=np.uint8)  # (N, 28, 28)
    return emb, labels, images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--moves", type=int, default=10)
    ap.add_argument("--snapshots", type=int, default=6)
    args = ap.parse_args()

    emb, labels, images = synthetic_snapshots(args.points, args.snapshots)
    t0 = time.perf_counter()
    ex = sl.viz.Explorer(emb, labels, images, method="pca", snapshot=0, precompute=True, progress=False)
    ex.widget  # build the ipywidgets: each move re-encodes the PNGs the front end shows
    setup_s = time.perf_counter() - t0

    times = []
    for m in range(args.moves):
        target = (m + 1) % args.snapshots  # one step along the slider each time, wrapping
        before = ex._scatter_img.value
        t = time.perf_counter()
        ex._snap_slider.value = target  # the widget's observer calls ex.set_snapshot(target)
        times.append(1000 * (time.perf_counter() - t))
        assert ex._scatter_img.value != before, "the slider move did not change the picture"

    # the scatter alone, in place vs the naive way: re-plot a new figure each move and encode it (what
    # ipywidgets.Output + clear_output + an inline-backend plt.show does per move)
    naive, ours_scatter = [], []
    for m in range(min(args.moves, 5)):
        ex.snapshot = (m + 1) % args.snapshots
        t = time.perf_counter()
        ex._update_scatter()  # the same scatter, updated in place, then encoded
        ex._png(ex.fig)
        ours_scatter.append(1000 * (time.perf_counter() - t))
        pts = ex.cache.get((m + 1) % args.snapshots, "pca").points
        t = time.perf_counter()
        fig = Figure(figsize=(6.4, 5.0), dpi=72)
        FigureCanvasAgg(fig)
        sl.viz.scatter(pts, labels, ax=fig.add_subplot())
        fig.savefig(io.BytesIO(), format="png")
        naive.append(1000 * (time.perf_counter() - t))

    print(f"{'move':>4} {'snapshot':>8} {'redraw ms':>10}")
    for m, ms in enumerate(times):
        print(f"{m:>4} {(m + 1) % args.snapshots:>8} {ms:>10.1f}")
    med = statistics.median(times)
    print(f"points {args.points}, snapshots {args.snapshots}, setup (PCA of all snapshots) {setup_s:.1f} s")
    print(f"median redraw {med:.1f} ms over {len(times)} moves (goal <= 300 ms)")
    print(f"scatter only: in-place update + PNG {statistics.median(ours_scatter):.1f} ms vs naive re-plot "
          f"(new figure + PNG each move) {statistics.median(naive):.1f} ms (medians of {len(naive)})")
    print(json.dumps({
        "bench": "explorer", "points": args.points, "moves": len(times), "snapshots": args.snapshots,
        "redraw_ms_median": round(med, 1), "redraw_ms_min": round(min(times), 1),
        "redraw_ms_max": round(max(times), 1), "png_bytes": len(ex._scatter_img.value),
        "goal_ms": 300, "setup_s": round(setup_s, 2),
        "scatter_inplace_ms_median": round(statistics.median(ours_scatter), 1),
        "scatter_naive_replot_ms_median": round(statistics.median(naive), 1),
    }))


if __name__ == "__main__":
    main()

"""Visualisation: static plots (``ax=None`` → Axes), 2-D projections, the explorer widget.

``sl.viz.scatter(points2d, labels)``, ``sl.viz.project(emb, "umap")``,
``sl.viz.Explorer(embeddings, labels, images)``. Derived in
notebooks/05_explore_embeddings.ipynb (static plots are used from lesson 01 on).
"""
from __future__ import annotations

from .static import (
    distance_hist,
    image_grid,
    image_scatter,
    label_colors,
    pair_grid,
    roc_curve,
    scatter,
    training_curves,
    triplet_grid,
)

__all__ = [
    "scatter", "image_scatter", "image_grid", "pair_grid", "triplet_grid",
    "distance_hist", "roc_curve", "training_curves", "label_colors",
]

from .explorer import Explorer  # noqa: E402
from .projections import METHODS, Projection, ProjectionCache, knn, neighbour_overlap, project  # noqa: E402

__all__ += ["Explorer", "METHODS", "Projection", "ProjectionCache", "project", "knn", "neighbour_overlap"]

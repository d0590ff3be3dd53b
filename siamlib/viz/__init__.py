"""Visualisation: static plots (``ax=None`` → Axes), 2-D projections, the explorer widget. Derived in
notebooks/05_explore_embeddings.ipynb (static plots are used from lesson 01 on)."""
from .explorer import Explorer
from .projections import neighbour_overlap, project
from .static import distance_hist, image_scatter, pair_grid, scatter, training_curves

__all__ = ["scatter", "image_scatter", "pair_grid", "distance_hist", "training_curves", "Explorer", "project",
           "neighbour_overlap"]

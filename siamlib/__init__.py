"""siamlib: the thin helper package behind the siamkit notebooks; use it as ``import siamlib as sl``, one
submodule per concept (``sl.losses.contrastive_loss``), so a reader always sees what comes from the library."""
from . import (check, config, data, distances, losses, metrics, mining, models, ordered, selfsup, steps, strokes, train,
               viz, wasserstein)

__all__ = ["config", "distances", "data", "models", "losses", "mining", "train", "steps", "metrics", "viz", "check",
           "ordered", "selfsup", "strokes", "wasserstein"]

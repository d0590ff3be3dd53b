"""Losses for Siamese networks and metric learning: the reference versions of what the lessons derive.

* :func:`contrastive_loss` (Hadsell et al. 2006) — notebooks/02_contrastive_loss.ipynb
* :func:`triplet_loss`, :func:`mined_triplet_loss` (FaceNet; Hermans et al. 2017) — notebooks/03_triplet_loss.ipynb
* :func:`nt_xent`, :func:`info_nce` (SimCLR, InfoNCE) — notebooks/03_triplet_loss.ipynb
* :func:`koch_bce` (Koch et al. 2015) — notebooks/02_contrastive_loss.ipynb
* :func:`prototypical_loss` (Snell et al. 2017) — notebooks/06_omniglot_one_shot.ipynb

Label convention for pairs everywhere: ``dissimilar`` = 1 for a dissimilar
pair, 0 for a similar one (the paper's Y).
"""
from .contrastive import contrastive_loss, contrastive_loss_from_distance
from .infonce import info_nce, nt_xent
from .koch import koch_bce
from .prototypical import prototypical_loss
from .triplet import mined_triplet_loss, triplet_loss

__all__ = ["contrastive_loss", "contrastive_loss_from_distance", "triplet_loss", "mined_triplet_loss",
           "nt_xent", "info_nce", "koch_bce", "prototypical_loss"]

"""Losses for Siamese networks and metric learning: the reference versions of what the lessons derive.
Pairs everywhere: ``dissimilar`` = 1 for a dissimilar pair, 0 for a similar one (Hadsell et al.'s Y)."""
from .contrastive import contrastive_loss
from .infonce import info_nce, nt_xent
from .koch import koch_bce
from .prototypical import prototypical_loss
from .triplet import mined_triplet_loss, triplet_loss

__all__ = ["contrastive_loss", "triplet_loss", "mined_triplet_loss",
           "nt_xent", "info_nce", "koch_bce", "prototypical_loss"]

"""Datasets read in place from ``sl.config.data_root()`` as :class:`ImageSet` (uint8, ink = 255), and the pair
and batch machinery; ``dissimilar`` = 1 for different classes (Hadsell's Y). Nothing is downloaded at import."""
from .augment import random_affine
from .download import ChecksumError, DataNotFoundError, DownloadError, fetch
from .images import ImageSet, to_float
from .mnist import MnistSubsetWarning, load_mnist
from .omniglot import OneShotRun, load_lake_runs, load_omniglot
from .pairs import PairDataset
from .samplers import EpisodeSampler, PKSampler

__all__ = ["to_float", "load_mnist", "load_omniglot", "load_lake_runs", "PairDataset", "PKSampler", "random_affine",
           "MnistSubsetWarning"]

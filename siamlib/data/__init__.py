"""Datasets on the real files, and the pair and batch machinery around them.

* :func:`load_mnist`, :func:`load_omniglot`, :func:`load_lake_runs` read from
  ``sl.config.data_root()`` (``SIAMLIB_DATA``) in place and return
  :class:`ImageSet` / :class:`OneShotRun` (uint8 images, ink = 255).
* :func:`to_float` turns images into model input ``(N, 1, H, W)`` float32 in [0, 1].
* :func:`make_pairs`, :class:`PairDataset`: seeded, vectorised; ``dissimilar`` = 1
  for different-class pairs (Hadsell's Y).
* :class:`PKSampler`, :class:`EpisodeSampler`: batch samplers for a DataLoader.
* :func:`random_affine`: augmentation.

Download sources are ``sl.config.mirrors``. Nothing is downloaded at import time.
"""
from __future__ import annotations

from .augment import random_affine
from .download import ChecksumError, DataNotFoundError, DownloadError, fetch
from .images import ImageSet, to_float
from .mnist import MnistSubsetWarning, load_mnist
from .omniglot import OneShotRun, load_lake_runs, load_omniglot
from .pairs import PairDataset, make_pairs
from .samplers import EpisodeSampler, PKSampler

__all__ = ["to_float", "load_mnist", "load_omniglot", "load_lake_runs", "make_pairs",
           "PairDataset", "PKSampler", "EpisodeSampler", "random_affine", "DataNotFoundError", "MnistSubsetWarning"]

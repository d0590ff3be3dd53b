"""Shared fixtures.

Data tests read the real mirror through ``SIAMLIB_DATA``. Under CI (``CI=true``)
a missing mirror is a failure, never a skip: a green run must mean the data
layer was exercised.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from siamlib import config

MIRROR_FILES = (
    "MNIST/raw/t10k-images-idx3-ubyte.gz",
    "MNIST/raw/t10k-labels-idx1-ubyte.gz",
    "omniglot/images_background_small1.zip",
    "omniglot/all_runs.zip",
)


@pytest.fixture(scope="session")
def mirror_root() -> Path:
    """The offline data mirror (``SIAMLIB_DATA``), checked to hold the files the tests read."""
    env = os.environ.get("SIAMLIB_DATA", "")
    root = Path(env).resolve() if env else None
    missing = [f for f in MIRROR_FILES if root is None or not (root / f).is_file()]
    if missing:
        msg = (
            f"data mirror not usable: SIAMLIB_DATA={env!r}, missing {missing}. "
            "Point SIAMLIB_DATA at a copy of the mirror (for example ../shared/data)."
        )
        if config.in_ci():
            pytest.fail(msg)
        pytest.skip(msg)
    return root


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session writes decoded caches and checkpoints to a temporary folder."""
    if "SIAMLIB_CACHE" not in os.environ:
        monkeypatch.setenv("SIAMLIB_CACHE", str(tmp_path_factory.getbasetemp() / "siamlib-cache"))

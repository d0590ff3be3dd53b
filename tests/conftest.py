"""Shared fixtures, and the suite's one data check.

Tests that read the data mirror carry ``@pytest.mark.mirror`` (tests/test_markers.py
checks that none is missing); notebooks, run by nbval, all load data, so they are
marked ``mirror`` here. When a selected test needs the mirror and the data root
(``sl.config.data_root()``: ``SIAMLIB_DATA`` if set) lacks its files, the session
stops after collection with one short message that names what is missing and the
way out, instead of dozens of failures. It stops, it never skips, with or without
``CI=true``: a green run must mean the data layer was exercised. ``-m "not mirror"``
runs everything else without data.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from siamlib import config

# the mirror's files the tests and notebooks read, by the dataset a message names
MIRROR_FILES = {
    "MNIST/raw/t10k-images-idx3-ubyte.gz": "MNIST",
    "MNIST/raw/t10k-labels-idx1-ubyte.gz": "MNIST",
    "omniglot/images_background_small1.zip": "Omniglot",
    "omniglot/all_runs.zip": "Lake's one-shot runs",
    "omniglot/strokes_background_small1.zip": "Omniglot strokes",
}


def missing_mirror_files(root: Path) -> list[str]:
    """The files of ``MIRROR_FILES`` that ``root`` lacks."""
    return [f for f in MIRROR_FILES if not (root / f).is_file()]


def no_data_message(root: Path, missing: list[str], needing: list[str]) -> str:
    """What is missing and the way out, first line first; at most 10 lines."""
    datasets = list(dict.fromkeys(MIRROR_FILES[f] for f in missing))
    names = ", ".join(datasets[:-1]) + " and " + datasets[-1] if len(datasets) > 1 else datasets[0]
    env = os.environ.get("SIAMLIB_DATA", "").strip()
    where = f"SIAMLIB_DATA={env}" if env else "SIAMLIB_DATA is not set"
    shown = ", ".join(needing[:3]) + (f" and {len(needing) - 3} more" if len(needing) > 3 else "")
    return "\n".join([
        f"No data: {names} not found under {root} ({where}). Set SIAMLIB_DATA to a data mirror "
        "(see the README, 'No internet?') or deselect these tests with -m \"not mirror\".",
        f"  missing: {', '.join(missing)}",
        f"  needed by {len(needing)} selected file(s): {shown}",
    ])


def _is_notebook(item: pytest.Item) -> bool:
    return Path(str(item.fspath)).suffix == ".ipynb"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Notebook cells (nbval items) load data: mark them ``mirror`` before ``-m`` selects."""
    for item in items:
        if _is_notebook(item):
            item.add_marker(pytest.mark.mirror)


def pytest_collection_finish(session):
    """Stop before running anything when a selected test needs the mirror and the data root lacks it."""
    if session.config.option.collectonly:
        return
    needing = [item.nodeid for item in session.items if item.get_closest_marker("mirror") is not None]
    if not needing:
        return
    root = config.data_root()
    missing = missing_mirror_files(root)
    if missing:
        needing = list(dict.fromkeys(n.split("::")[0] for n in needing))  # one entry per file
        raise pytest.UsageError(no_data_message(root, missing, needing))


@pytest.fixture(scope="session")
def mirror_root() -> Path:
    """The data mirror (``sl.config.data_root()``), checked to hold the files the tests read.

    A test that asks for it must carry ``@pytest.mark.mirror`` (tests/test_markers.py);
    then a missing mirror has already stopped the session with one message. Reaching
    the failure below means the marker is missing.
    """
    root = config.data_root()
    missing = missing_mirror_files(root)
    if missing:
        pytest.fail(no_data_message(root, missing, ["this test (mark it @pytest.mark.mirror)"]), pytrace=False)
    return root


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session writes decoded caches and checkpoints to a temporary folder."""
    if "SIAMLIB_CACHE" not in os.environ:
        monkeypatch.setenv("SIAMLIB_CACHE", str(tmp_path_factory.getbasetemp() / "siamlib-cache"))

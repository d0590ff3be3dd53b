"""The one place where siamkit reads its switches.

* ``SIAMLIB_QUICK=1`` turns on *quick mode*: smaller data and fewer epochs so
  every notebook runs on two CPU cores in a minute or two (CI sets it).
  Quick mode changes sizes, never the steps: notebooks call :func:`pick`.
* ``SIAMLIB_DATA`` is the data root (it may be read-only).
* ``SIAMLIB_CACHE`` is where decoded data and checkpoints go (writable).
* ``SIAMLIB_MIRROR`` is an HTTP server laid out like the data root
  (``MNIST/raw/``, ``omniglot/``) to download from instead of the public sources.

Introduced in notebooks/01_twin_network.ipynb.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

__all__ = ["is_quick", "pick", "set_data_root"]

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def is_quick() -> bool:
    """True when quick mode is on (``SIAMLIB_QUICK`` is 1/true/yes/on). Used in notebooks/01_twin_network.ipynb."""
    value = os.environ.get("SIAMLIB_QUICK", "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"SIAMLIB_QUICK={value!r} is not understood; use 1 (quick mode) or 0 (full mode)."
    )


def pick(full: T, quick: T) -> T:  # noqa: A002 - the names read well at the call site
    """``quick`` in quick mode, else ``full``: ``n = sl.config.pick(full=8000, quick=800)``.

    Used in every lesson, from notebooks/01_twin_network.ipynb on.
    """
    return quick if is_quick() else full


def _checkout_root() -> Path | None:
    """The source checkout that holds this package, if it is run from one (``pip install -e .``)."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() and (root / "siamlib").is_dir() else None


def data_root() -> Path:
    """Where datasets are looked for, and downloaded to when online.

    ``SIAMLIB_DATA`` if set (a relative path is taken from the current
    directory), else ``data/`` in the source checkout (the README's install is
    editable, so this is the same folder from any notebook's working
    directory), else ``~/siamlib-data``.
    """
    env = os.environ.get("SIAMLIB_DATA", "").strip()
    if env:
        return Path(env).expanduser().resolve()
    checkout = _checkout_root()
    return checkout / "data" if checkout is not None else Path.home() / "siamlib-data"


def set_data_root(path: str | os.PathLike) -> Path:
    """Point siamlib at a data folder from inside a notebook (the same as setting ``SIAMLIB_DATA``).

    Call it in the first cell, before any loader. Used in notebooks/01_twin_network.ipynb.
    """
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise ValueError(f"set_data_root: {root} is not a folder; pass the folder that holds MNIST/ and omniglot/.")
    os.environ["SIAMLIB_DATA"] = str(root)
    return root


#: The public download sources (the same as torchvision's; a test keeps them equal).
MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
OMNIGLOT_URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"


def mirrors(dataset: str) -> list[str]:
    """URL prefixes (ending in "/") to download ``dataset`` ("mnist" or "omniglot") from, in order."""
    own = os.environ.get("SIAMLIB_MIRROR", "").strip().rstrip("/")
    if dataset == "mnist":
        return [f"{own}/MNIST/raw/"] if own else list(MNIST_URLS)
    if dataset == "omniglot":
        return [f"{own}/omniglot/"] if own else [OMNIGLOT_URL]
    raise ValueError(f"mirrors: dataset must be 'mnist' or 'omniglot'; got {dataset!r}.")


def cache_dir() -> Path:
    """A writable folder for decoded arrays and checkpoints (created on demand).

    ``SIAMLIB_CACHE`` if set, else ``~/.cache/siamlib``.
    """
    env = os.environ.get("SIAMLIB_CACHE", "").strip()
    path = Path(env).expanduser().resolve() if env else Path.home() / ".cache" / "siamlib"
    path.mkdir(parents=True, exist_ok=True)
    return path


def in_ci() -> bool:
    """True under CI (``CI=true``): there a missing dataset is a failure, never a skip."""
    return os.environ.get("CI", "").strip().lower() in _TRUE

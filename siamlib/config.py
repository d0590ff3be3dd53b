"""The one place where siamkit reads its switches (introduced in notebooks/01_twin_network.ipynb):
``SIAMLIB_QUICK=1`` quick mode (smaller sizes, chosen with :func:`pick`), ``SIAMLIB_DATA`` the data root (may be
read-only), ``SIAMLIB_CACHE`` decoded data and checkpoints, ``SIAMLIB_MIRROR`` a server laid out like the data root."""
import os
from pathlib import Path

__all__ = ["is_quick", "pick", "set_data_root"]

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"", "0", "false", "no", "off"}

#: The public download sources (the same as torchvision's; a test keeps them equal).
MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
OMNIGLOT_URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"


def is_quick() -> bool:
    """True when ``SIAMLIB_QUICK`` is 1/true/yes/on. Used in notebooks/01_twin_network.ipynb."""
    value = os.environ.get("SIAMLIB_QUICK", "").strip().lower()
    if value not in _TRUE | _FALSE:
        raise ValueError(f"SIAMLIB_QUICK={value!r} is not understood; use 1 (quick mode) or 0 (full mode).")
    return value in _TRUE


def pick(full, quick):
    """``quick`` in quick mode, else ``full``. Used in every lesson, from notebooks/01_twin_network.ipynb on."""
    return quick if is_quick() else full


def data_root() -> Path:
    """``SIAMLIB_DATA`` if set, else ``data/`` in the source checkout, else ``~/siamlib-data``."""
    env = os.environ.get("SIAMLIB_DATA", "").strip()
    if env:
        return Path(env).expanduser().resolve()
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file() and (checkout / "siamlib").is_dir():
        return checkout / "data"
    return Path.home() / "siamlib-data"


def set_data_root(path: str | os.PathLike) -> Path:
    """Set ``SIAMLIB_DATA`` from a notebook's first cell. Used in notebooks/01_twin_network.ipynb."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise ValueError(f"set_data_root: {root} is not a folder; pass the folder that holds MNIST/ and omniglot/.")
    os.environ["SIAMLIB_DATA"] = str(root)
    return root


def mirrors(dataset: str) -> list[str]:
    """URL prefixes (ending in "/") to download ``dataset`` ("mnist" or "omniglot") from, in order."""
    own = os.environ.get("SIAMLIB_MIRROR", "").strip().rstrip("/")
    if dataset == "mnist":
        return [f"{own}/MNIST/raw/"] if own else list(MNIST_URLS)
    return [f"{own}/omniglot/"] if own else [OMNIGLOT_URL]


def cache_dir() -> Path:
    """A writable folder (created on demand): ``SIAMLIB_CACHE`` if set, else ``~/.cache/siamlib``."""
    env = os.environ.get("SIAMLIB_CACHE", "").strip()
    path = Path(env).expanduser().resolve() if env else Path.home() / ".cache" / "siamlib"
    path.mkdir(parents=True, exist_ok=True)
    return path

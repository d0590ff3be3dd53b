"""siamlib: the thin helper package behind the siamkit notebooks.

Use it with a prefix, so a reader always sees what comes from the library::

    import siamlib as sl
    sl.losses.contrastive_loss(...)

Submodules (one concept each) are imported on first use, so ``import siamlib``
stays fast and a notebook pays only for what it touches.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_SUBMODULES = ("config", "distances", "data", "models", "losses", "mining", "train", "metrics", "viz", "check", "wasserstein")

__all__ = list(_SUBMODULES)


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'siamlib' has no attribute {name!r}; submodules are {', '.join(_SUBMODULES)}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES))


if TYPE_CHECKING:  # pragma: no cover
    from . import check, config, data, distances, losses, metrics, mining, models, train, viz, wasserstein  # noqa: F401

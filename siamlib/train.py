"""Device, seeding, the training loop (lesson 04's seven lines plus a history, a time budget, checkpoints and a
clean stop on Ctrl-C), checkpoints and embedding. Derived in notebooks/04_train_mnist.ipynb."""
import math
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import config
from .data import to_float

__all__ = ["get_device", "seed_everything", "fit", "load_or_train", "embed"]


def get_device() -> torch.device:
    """``SIAMLIB_DEVICE`` if set, else cuda, mps or cpu. Derived in notebooks/04_train_mnist.ipynb."""
    wanted = os.environ.get("SIAMLIB_DEVICE", "").strip().lower()
    available = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available(), "cpu": True}
    if not wanted:
        return torch.device(next(d for d, ok in available.items() if ok))
    if not available.get(wanted.split(":")[0], False):
        raise ValueError(f"SIAMLIB_DEVICE={wanted!r} is not an available device here (cpu, cuda or mps); set it to "
                         "cpu, or unset it to choose automatically.")
    return torch.device(wanted)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a seeded CPU generator. Derived in notebooks/04_train_mnist.ipynb."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int; got {seed!r}.")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # every device
    return torch.Generator().manual_seed(seed)


def _to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor of a (nested) tuple or list to ``device`` (``fit`` calls it on each batch)."""
    if torch.is_tensor(batch):
        return batch.to(device)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


@dataclass
class History:
    """One record per step; ``history["loss"]`` is a column, ``history.smoothed("loss", 20)`` its running mean."""

    records: list[dict[str, float]] = field(default_factory=list)
    epochs_done: int = 0
    interrupted: bool = False
    stop_reason: str = ""
    train_s: float = 0.0

    def __len__(self) -> int:
        return len(self.records)

    def keys(self) -> list[str]:
        return list(dict.fromkeys(k for r in self.records for k in r))

    def __getitem__(self, key: str) -> list[float]:
        if key not in self.keys():
            raise KeyError(f"history has no column {key!r}; it has {self.keys()}.")
        return [r.get(key, math.nan) for r in self.records]

    def smoothed(self, key: str, window: int = 20) -> np.ndarray:
        """Running mean of one column over ``window`` steps."""
        values = np.asarray(self[key], dtype=float)
        window = max(1, min(window, len(values)))
        return np.convolve(values, np.ones(window) / window, mode="valid")


def _check_writable(path: Path) -> None:
    """Fail before training, not after the first epoch, if ``path`` cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".write-test-"):
            pass
    except OSError as err:
        raise ValueError(f"cannot write the checkpoint {path} ({err.strerror}); choose a writable folder, "
                         "e.g. set SIAMLIB_CACHE or pass checkpoint=None.") from None


def _save(path: Path, model: nn.Module, history: History, optimizer, finished: bool) -> None:
    """Atomic: a temp file, then ``os.replace``; a crash never leaves a torn checkpoint."""
    state = {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
             "optimizer": optimizer.state_dict() if optimizer is not None else None,
             "history": {"records": history.records, "epochs_done": history.epochs_done,
                         "train_s": history.train_s}, "finished": finished}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _read(path: Path) -> dict:
    """The checkpoint's contents, or a ValueError that names the file and the way out."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # tensors and containers, never code
        if not {"model", "history", "finished"} <= set(state):
            raise KeyError("model/history/finished")
        return state
    except Exception as err:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise ValueError(f"checkpoint {path} is unreadable (truncated, or not written by sl.train.fit: "
                         f"{type(err).__name__}). Delete it and train again.") from None


def _load(state: dict, path: Path, model: nn.Module, optimizer=None) -> History:
    try:
        model.load_state_dict(state["model"])
    except RuntimeError:
        raise ValueError(f"checkpoint {path} was made for another model (layers or sizes differ); delete it, "
                         "or build the model it was saved from.") from None
    if optimizer is not None and state["optimizer"] is not None:
        optimizer.load_state_dict(state["optimizer"])
    h = state["history"]
    return History([dict(r) for r in h["records"]], int(h["epochs_done"]), train_s=float(h["train_s"]))


def fit(model: nn.Module, loss_fn: Callable, batches: Iterable | Callable[[int], Iterable], *, epochs: int = 1,
        optimizer: torch.optim.Optimizer | None = None, lr: float = 1e-3, device: torch.device | str | None = None,
        checkpoint: str | Path | None = None, max_seconds: float | None = None, callback: Callable | None = None,
        progress: bool = True, desc: str = "train") -> History:
    """Train: per batch ``loss, stats = loss_fn(model, batch)``, backward, step. ``batches``: an iterable or
    ``epoch -> iterable``; ``checkpoint``: saved each epoch and resumed if unfinished; ``callback(step, record)``
    returning True stops; a non-finite loss raises ``FloatingPointError``. Derived in notebooks/04_train_mnist.ipynb."""
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1; got {epochs}.")
    device = get_device() if device is None else torch.device(device)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    history, path = History(), None if checkpoint is None else Path(checkpoint)
    if path is not None:
        _check_writable(path)
        if path.is_file():
            history = _load(_read(path), path, model, optimizer)
    model.to(device)
    start = time.perf_counter() - history.train_s
    try:
        for epoch in range(history.epochs_done, epochs):
            model.train()
            source, n_before = batches(epoch) if callable(batches) else batches, len(history)
            for batch in tqdm(source, desc=f"{desc} {epoch + 1}/{epochs}", leave=False) if progress else source:
                loss, stats = loss_fn(model, _to_device(batch, device))
                if not torch.isfinite(loss) or not math.isfinite(float(stats.get("emb_norm", 0.0))):
                    raise FloatingPointError(
                        f"step {len(history)}: the loss is {loss.item()} and the mean embedding norm "
                        f"{stats.get('emb_norm')}; the model diverged. Lower the learning rate, or check "
                        "the inputs (images in [0, 1], no NaN).")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                record = {"step": len(history), "epoch": epoch, "time_s": time.perf_counter() - start,
                          "loss": loss.item(), **{k: float(v) for k, v in stats.items()}}
                history.records.append(record)
                paused = time.perf_counter()
                if callback is not None and callback(len(history), record) is True:
                    history.interrupted, history.stop_reason = True, "the callback asked to stop"
                start += time.perf_counter() - paused  # the callback's time (an evaluation) is not training
                if not history.interrupted and max_seconds is not None and time.perf_counter() - start >= max_seconds:
                    history.interrupted, history.stop_reason = True, f"time budget of {max_seconds:g} s reached"
                if history.interrupted:
                    break
            if len(history) == n_before:
                raise ValueError(f"epoch {epoch + 1} had no batches: `batches` is empty (a DataLoader over "
                                 "an empty dataset, or a sampler with n_batches=0?).")
            if history.interrupted:
                break
            history.epochs_done, history.train_s = epoch + 1, time.perf_counter() - start
            if path is not None:
                _save(path, model, history, optimizer, finished=epoch + 1 == epochs)
    except KeyboardInterrupt:
        history.interrupted, history.stop_reason = True, "interrupted (KeyboardInterrupt)"
        print(f"Training interrupted after {len(history)} steps; the model and the history so far are kept.")
    history.train_s = time.perf_counter() - start
    if path is not None and history.interrupted:
        _save(path, model, history, optimizer, finished=False)
    model.eval()
    return history


def load_or_train(name: str | Path, train_fn: Callable[[], History], model: nn.Module) -> History:
    """Load ``model`` from a *finished* checkpoint, else ``train_fn()`` and save; ``name``: a ``.pt`` path, or a short
    name kept as ``<cache>/checkpoints/<name>-quick.pt`` / ``-full.pt``. Derived in notebooks/04_train_mnist.ipynb."""
    mode = "quick" if config.is_quick() else "full"  # quick and full runs never share a checkpoint
    path = Path(name) if str(name).endswith(".pt") else config.cache_dir() / "checkpoints" / f"{name}-{mode}.pt"
    if path.is_file():
        state = _read(path)
        if state["finished"]:
            history = _load(state, path, model)
            model.to(get_device()).eval()
            print(f"Loaded the trained model from the cache ({path.name}); delete that file to train again.")
            return history
    _check_writable(path)
    history = train_fn()
    if not isinstance(history, History):
        raise ValueError(f"train_fn must return the History of sl.train.fit; got {type(history).__name__}.")
    if history.interrupted:
        print(f"Training stopped early ({history.stop_reason}); not saved as finished.")
    _save(path, model, history, None, finished=not history.interrupted)
    return history


@torch.no_grad()
def embed(model: nn.Module, images: torch.Tensor, batch_size: int = 512,
          device: torch.device | str | None = None) -> torch.Tensor:
    """Embeddings ``(N, D)`` (CPU, eval mode, batched) of uint8 or float images. Used in 04_train_mnist.ipynb."""
    device = get_device() if device is None else torch.device(device)
    fn = model.embed if hasattr(model, "embed") else model
    was_training = model.training
    model.to(device).eval()
    try:
        out = [fn(to_float(images[i:i + batch_size]).to(device)).cpu() for i in range(0, len(images), batch_size)]
    finally:
        model.train(was_training)
    if not out:
        raise ValueError("embed got no images (N = 0).")
    return torch.cat(out)

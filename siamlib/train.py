"""Device choice, seeding, the fit loop, its history, and checkpoints.

* :func:`get_device` is the ONE place that picks the device
  (``SIAMLIB_DEVICE`` overrides; else cuda, then mps, then cpu).
* :func:`fit` runs any training whose step is ``loss_fn(model, batch) ->
  (loss, stats)``: pair batches (contrastive), P×K batches (mined triplets),
  episodes. It records a :class:`History` with the collapse diagnostics,
  writes checkpoints atomically, resumes from them, and stops cleanly on
  Ctrl-C (KeyboardInterrupt), keeping the model and the history so far.
* :func:`load_or_train` lets a class skip training when a checkpoint exists.

Derived in notebooks/04_train_mnist.ipynb.
"""
from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import config
from .mining import pair_distance

__all__ = [
    "get_device",
    "seed_everything",
    "to_device",
    "History",
    "fit",
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_path",
    "load_or_train",
    "embed",
    "pair_diagnostics",
    "triplet_diagnostics",
    "contrastive_step",
    "triplet_step",
    "koch_step",
    "prototypical_step",
    "random_affine",
]

_DEVICES = ("cpu", "cuda", "mps")


# --------------------------------------------------------------------- device, seeds
def get_device(prefer: str | None = None) -> torch.device:
    """The device to train on, chosen in one place.

    Order: the ``SIAMLIB_DEVICE`` environment variable, else ``prefer``, else
    the first available of cuda, mps, cpu. Asking for a device that is not
    available raises a ValueError (it never silently falls back).

    Derived in notebooks/04_train_mnist.ipynb.
    """
    wanted = os.environ.get("SIAMLIB_DEVICE", "").strip().lower() or (prefer or "").strip().lower()
    if wanted:
        kind = wanted.split(":")[0]
        if kind not in _DEVICES:
            raise ValueError(
                f"device {wanted!r} (from SIAMLIB_DEVICE or prefer=) is not one of {_DEVICES}; "
                "set e.g. SIAMLIB_DEVICE=cpu, or unset it to choose automatically."
            )
        if kind == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but torch.cuda.is_available() is False; use cpu.")
        if kind == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ValueError("device 'mps' was asked for but torch.backends.mps.is_available() is False; use cpu.")
        return torch.device(wanted)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); returns a seeded CPU ``torch.Generator``.

    On CPU the same seed then gives the same loss curve. Derived in
    notebooks/04_train_mnist.ipynb.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int; got {seed!r}.")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor inside a (nested) tuple/list/dict to ``device``.

    Used in notebooks/01_twin_network.ipynb and by fit.
    """
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        moved = [to_device(v, device) for v in batch]
        return type(batch)(*moved) if hasattr(batch, "_fields") else type(batch)(moved)
    return batch


# --------------------------------------------------------------------- history
@dataclass
class History:
    """What happened during training: one record per optimisation step.

    ``records`` is a list of dicts with ``step``, ``epoch``, ``time_s``,
    ``loss`` and whatever the step returned as stats (the collapse
    diagnostics: ``pos_dist``, ``neg_dist``, ``frac_active``, ``emb_norm``).
    ``history["loss"]`` gives one column as a list; ``interrupted`` says
    whether training stopped early (Ctrl-C or the time budget).

    Derived in notebooks/04_train_mnist.ipynb.
    """

    records: list[dict[str, float]] = field(default_factory=list)
    epochs_done: int = 0
    interrupted: bool = False
    stop_reason: str = ""
    train_s: float = 0.0

    def append(self, record: Mapping[str, float]) -> None:
        self.records.append({k: float(v) for k, v in record.items()})

    def __len__(self) -> int:
        return len(self.records)

    def keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.records:
            seen.update(dict.fromkeys(r))
        return list(seen)

    def __getitem__(self, key: str) -> list[float]:
        if key not in self.keys():
            raise KeyError(f"history has no column {key!r}; it has {self.keys()}.")
        return [r.get(key, math.nan) for r in self.records]

    def smoothed(self, key: str, window: int = 20) -> np.ndarray:
        """A running mean of one column (for plots of noisy per-step values)."""
        values = np.asarray(self[key], dtype=float)
        if len(values) == 0:
            return values
        window = max(1, min(window, len(values)))
        kernel = np.ones(window) / window
        return np.convolve(values, kernel, mode="valid")

    def state_dict(self) -> dict[str, Any]:
        return {
            "records": [dict(r) for r in self.records],
            "epochs_done": self.epochs_done,
            "interrupted": self.interrupted,
            "stop_reason": self.stop_reason,
            "train_s": self.train_s,
        }

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> History:
        return cls(
            records=[dict(r) for r in state["records"]],
            epochs_done=int(state["epochs_done"]),
            interrupted=bool(state["interrupted"]),
            stop_reason=str(state.get("stop_reason", "")),
            train_s=float(state.get("train_s", 0.0)),
        )


# --------------------------------------------------------------------- checkpoints
def checkpoint_path(name: str) -> Path:
    """``<cache>/checkpoints/<name>-quick.pt`` or ``-full.pt``: the two modes never mix.

    Used in notebooks/04_train_mnist.ipynb and 06_omniglot_one_shot.ipynb.
    """
    mode = "quick" if config.is_quick() else "full"
    folder = config.cache_dir() / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}-{mode}.pt"


def save_checkpoint(path: str | Path, model: nn.Module, history: History,
                    optimizer: torch.optim.Optimizer | None = None, finished: bool = False) -> Path:
    """Write model (+ optimizer) state and the history atomically (temp file + ``os.replace``).

    A crash mid-write leaves the previous checkpoint intact, never a torn file.

    Used by fit and load_or_train (the checkpoints of lessons 04 and 06).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "history": history.state_dict(),
        "finished": bool(finished),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_checkpoint(path: str | Path, model: nn.Module,
                    optimizer: torch.optim.Optimizer | None = None) -> tuple[History, bool]:
    """Load a checkpoint written by :func:`save_checkpoint` into ``model`` (and ``optimizer``).

    Uses ``torch.load(weights_only=True)``: a checkpoint can hold tensors and
    plain containers, never code. Returns ``(history, finished)``.

    Used by fit and load_or_train (the checkpoints of lessons 04 and 06).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no checkpoint at {path}; train first (sl.train.fit(..., checkpoint=path)).")
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise ValueError(
            f"checkpoint {path} does not fit this model ({err}). It was made for another "
            "architecture or size: delete it, or build the same model as when it was saved."
        ) from err
    if optimizer is not None and state.get("optimizer") is not None:
        optimizer.load_state_dict(state["optimizer"])
    return History.from_state_dict(state["history"]), bool(state.get("finished", False))


# --------------------------------------------------------------------- the fit loop
def fit(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, Any], tuple[torch.Tensor, Mapping[str, float]]],
    batches: Iterable | Callable[[int], Iterable],
    *,
    epochs: int = 1,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 1e-3,
    scheduler: Any = None,
    device: torch.device | str | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = True,
    max_seconds: float | None = None,
    callback: Callable[[int, Mapping[str, float]], None] | None = None,
    progress: bool = True,
    desc: str = "train",
) -> History:
    """Train ``model`` for ``epochs`` passes over ``batches``; return the :class:`History`.

    ``loss_fn(model, batch) -> (loss, stats)`` does one step's forward pass;
    ``batch`` arrives already on the device. ``stats`` (a dict of floats) is
    recorded next to the loss: return the collapse diagnostics there (see
    :func:`pair_diagnostics`, :func:`triplet_diagnostics`).

    ``batches`` is an iterable (a DataLoader) or a function ``epoch ->
    iterable``, which makes a resumed run draw exactly the batches of the
    epochs it has not done yet.

    ``checkpoint``: a path written (atomically) after every epoch and when
    training stops; with ``resume=True`` an existing one is loaded first and
    training continues from its last finished epoch.
    ``max_seconds`` bounds the training time (checked after each step).
    ``callback(step, record)`` runs after every step (its own time, e.g. an
    evaluation, is not counted as training time); returning ``True`` stops.
    Ctrl-C (KeyboardInterrupt) stops cleanly: the model keeps its weights,
    the history so far is returned with ``interrupted=True``.

    Derived in notebooks/04_train_mnist.ipynb.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1; got {epochs}.")
    device = get_device() if device is None else torch.device(device)
    model.to(device)
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    history = History()
    if checkpoint is not None and resume and Path(checkpoint).is_file():
        history, _ = load_checkpoint(checkpoint, model, optimizer)
        history.interrupted, history.stop_reason = False, ""
        model.to(device)
        if scheduler is not None:
            for _ in range(history.epochs_done):
                scheduler.step()

    step = len(history.records)
    start = time.perf_counter() - history.train_s
    stop = False
    try:
        for epoch in range(history.epochs_done, epochs):
            model.train()
            source = batches(epoch) if callable(batches) else batches
            total = len(source) if hasattr(source, "__len__") else None
            bar = _progress(source, total, f"{desc} {epoch + 1}/{epochs}", progress)
            for batch in bar:
                batch = to_device(batch, device)
                loss, stats = loss_fn(model, batch)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"loss became {loss.item()} at step {step}: lower the learning rate "
                        "or check the inputs (images in [0, 1], labels as int64)."
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                record = {"step": step, "epoch": epoch, "time_s": time.perf_counter() - start,
                          "loss": loss.item(), **{k: _scalar(v) for k, v in dict(stats).items()}}
                history.append(record)
                step += 1
                if progress and hasattr(bar, "set_postfix"):
                    bar.set_postfix(loss=f"{record['loss']:.4f}", refresh=False)
                if callback is not None:
                    paused = time.perf_counter()
                    wants_stop = callback(step, record)
                    start += time.perf_counter() - paused  # the callback's time is not training time
                    if wants_stop is True:
                        stop = True
                        history.stop_reason = "the callback asked to stop"
                        break
                if max_seconds is not None and time.perf_counter() - start >= max_seconds:
                    stop = True
                    history.stop_reason = f"time budget of {max_seconds:.0f} s reached"
                    break
            if hasattr(bar, "close"):
                bar.close()
            if stop:
                history.interrupted = True
                break
            history.epochs_done = epoch + 1
            if scheduler is not None:
                scheduler.step()
            history.train_s = time.perf_counter() - start
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, history, optimizer, finished=epoch + 1 == epochs)
    except KeyboardInterrupt:
        history.interrupted = True
        history.stop_reason = "interrupted (KeyboardInterrupt)"
        print(f"Training interrupted after {len(history)} steps; the model and history so far are kept.")
    history.train_s = time.perf_counter() - start
    model.eval()
    if checkpoint is not None and history.interrupted:
        save_checkpoint(checkpoint, model, history, optimizer, finished=False)
    return history


def _scalar(value: Any) -> float:
    return float(value.detach()) if torch.is_tensor(value) else float(value)


def _progress(source: Iterable, total: int | None, desc: str, enabled: bool):
    if not enabled:
        return source
    from tqdm.auto import tqdm

    return tqdm(source, total=total, desc=desc, leave=False)


def load_or_train(path: str | Path, train_fn: Callable[[], History], model: nn.Module) -> History:
    """Load ``model`` from ``path`` if a finished checkpoint is there, else train and save it.

    ``train_fn()`` trains ``model`` in place and returns its :class:`History`
    (typically ``lambda: sl.train.fit(model, ...)``). An interrupted run is
    not saved as finished, so the next call trains again. Name the path with
    :func:`checkpoint_path` so quick-mode and full-mode checkpoints never mix.

    Derived in notebooks/04_train_mnist.ipynb.
    """
    path = Path(path)
    if path.is_file():
        history, finished = load_checkpoint(path, model)
        if finished:
            model.to(get_device()).eval()
            print(f"Loaded trained model from {path} (delete the file to train again).")
            return history
    history = train_fn()
    if not isinstance(history, History):
        raise ValueError(f"train_fn must return a sl.train.History (from sl.train.fit); got {type(history).__name__}.")
    if history.interrupted:
        print(f"Training stopped early ({history.stop_reason}); not saved as finished at {path}.")
        save_checkpoint(path, model, history, finished=False)
    else:
        save_checkpoint(path, model, history, finished=True)
    return history


# --------------------------------------------------------------------- inference
def _embedder(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model.embed`` when the model has one (a SiameseNet), else the model itself (an encoder)."""
    return model.embed if hasattr(model, "embed") else model


@torch.no_grad()
def embed(model: nn.Module, images: torch.Tensor, batch_size: int = 512,
          device: torch.device | str | None = None) -> torch.Tensor:
    """Embeddings of ``images`` ((N, H, W) uint8 or (N, 1, H, W) float) as a CPU tensor (N, D).

    Uses ``model.embed`` when the model has one (a SiameseNet), else the
    model itself; runs in eval mode without gradients, in batches.

    Used in notebooks/03_triplet_loss.ipynb, 04_train_mnist.ipynb, 05_explore_embeddings.ipynb and 06_omniglot_one_shot.ipynb.
    """
    if images.dtype == torch.uint8:
        if images.dim() != 3:
            raise ValueError(f"uint8 images must have shape (N, H, W); got {tuple(images.shape)}.")
        images = images.unsqueeze(1)
        scale = 1.0 / 255.0
    else:
        scale = 1.0
    device = get_device() if device is None else torch.device(device)
    fn = _embedder(model)
    was_training = model.training
    model.to(device).eval()
    out = []
    try:
        for i in range(0, len(images), batch_size):
            x = images[i:i + batch_size].to(device).float() * scale  # (b, 1, H, W)
            out.append(fn(x).cpu())
    finally:  # an error mid-way still leaves the model in the mode it came in
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


# --------------------------------------------------------------------- diagnostics and steps
@torch.no_grad()
def pair_diagnostics(emb1: torch.Tensor, emb2: torch.Tensor, dissimilar: torch.Tensor,
                     margin: float) -> dict[str, float]:
    """Collapse diagnostics of a pair batch (contrastive loss, label Y=1 for dissimilar).

    ``pos_dist``/``neg_dist``: mean distance of similar/dissimilar pairs;
    ``frac_active``: fraction of pairs with a nonzero loss (every similar pair
    with d > 0, dissimilar pairs with d < margin); ``emb_norm``: mean norm.

    Derived in notebooks/04_train_mnist.ipynb.
    """
    d = pair_distance(emb1, emb2)  # (B,)
    y = dissimilar.bool()
    active = torch.where(y, d < margin, d > 1e-6)
    return {
        "pos_dist": d[~y].mean().item() if (~y).any() else math.nan,
        "neg_dist": d[y].mean().item() if y.any() else math.nan,
        "frac_active": active.float().mean().item(),
        "emb_norm": torch.cat([emb1, emb2]).norm(dim=1).mean().item(),
    }


@torch.no_grad()
def triplet_diagnostics(emb: torch.Tensor, labels: torch.Tensor, frac_active: float) -> dict[str, float]:
    """Collapse diagnostics of a labelled batch (P×K, mined triplets).

    ``pos_dist``/``neg_dist``: mean distance over ALL same-class / different-class
    pairs of the batch (not only the mined ones, so strategies compare);
    ``frac_active``: the miner's share of selected triplets with a non-zero
    loss (``sl.mining.MiningStats.fraction_active``); ``emb_norm``: mean norm.

    Derived in notebooks/04_train_mnist.ipynb.
    """
    dist = torch.cdist(emb, emb)  # (B, B)
    same = labels[:, None] == labels[None, :]  # (B, B)
    off_diag = ~torch.eye(len(labels), dtype=torch.bool, device=emb.device)
    pos, neg = same & off_diag, ~same
    return {
        "pos_dist": dist[pos].mean().item() if pos.any() else math.nan,
        "neg_dist": dist[neg].mean().item() if neg.any() else math.nan,
        "frac_active": float(frac_active),
        "emb_norm": emb.norm(dim=1).mean().item(),
    }


def contrastive_step(margin: float = 1.0) -> Callable:
    """A ``loss_fn`` for :func:`fit` on pair batches ``(x1, x2, dissimilar)`` (contrastive loss).

    Derived in notebooks/04_train_mnist.ipynb (written there by hand as ``contrastive_fn``).
    """
    from . import losses

    def step(model: nn.Module, batch):
        x1, x2, dissimilar = batch
        emb = _embedder(model)(torch.cat([x1, x2]))  # (2B, D)
        emb1, emb2 = emb.chunk(2)  # (B, D) each
        loss = losses.contrastive_loss(emb1, emb2, dissimilar, margin=margin)
        return loss, pair_diagnostics(emb1, emb2, dissimilar, margin)

    return step


def triplet_step(mining: str = "batch_hard", margin: float = 0.2, **loss_kwargs) -> Callable:
    """A ``loss_fn`` for :func:`fit` on P×K batches ``(images, labels)`` (mined triplet loss).

    ``loss_kwargs`` go to ``sl.losses.mined_triplet_loss`` (e.g. ``reduction="mean"``).

    Used in notebooks/03_triplet_loss.ipynb and 05_explore_embeddings.ipynb.
    """
    from . import losses

    def step(model: nn.Module, batch):
        x, labels = batch
        emb = _embedder(model)(x)  # (B, D)
        loss, stats = losses.mined_triplet_loss(emb, labels, mining=mining, margin=margin, **loss_kwargs)
        return loss, triplet_diagnostics(emb.detach(), labels, stats.fraction_active)

    return step


def koch_step() -> Callable:
    """A ``loss_fn`` for :func:`fit` on pair batches ``(x1, x2, dissimilar)`` with the Koch head.

    The model must be ``sl.models.SiameseNet(..., head="koch")``; the loss is
    ``sl.losses.koch_bce``. Derived in notebooks/06_omniglot_one_shot.ipynb.
    """
    from . import losses

    def step(model: nn.Module, batch):
        x1, x2, dissimilar = batch
        emb = model.embed(torch.cat([x1, x2]))  # (2B, D)
        emb1, emb2 = emb.chunk(2)  # (B, D) each
        logits = model.koch((emb1 - emb2).abs()).squeeze(1)  # (B,) logit of "same"
        loss = losses.koch_bce(logits, dissimilar)
        stats = pair_diagnostics(emb1.detach(), emb2.detach(), dissimilar, margin=math.inf)
        wrong = (logits.detach() > 0).long() == dissimilar.long()  # "same" predicted for a dissimilar pair, or not
        stats["frac_active"] = wrong.float().mean().item()  # share of misclassified pairs
        return loss, stats

    return step


def prototypical_step(n_way: int, k_shot: int, n_query: int) -> Callable:
    """A ``loss_fn`` for :func:`fit` on episodes (Snell et al. 2017, prototypical networks).

    The batch holds ``n_way * (k_shot + n_query)`` images, class after class,
    each class's ``k_shot`` support images first (or a tuple whose first
    element is that tensor). Each query is classified by a softmax over
    minus the squared distances to the class prototypes (mean support
    embeddings). ``frac_active``: the share of misclassified queries.

    Derived in notebooks/06_omniglot_one_shot.ipynb.
    """
    import torch.nn.functional as F

    per_class = k_shot + n_query

    def step(model: nn.Module, batch):
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        if len(x) != n_way * per_class:
            raise ValueError(
                f"an episode needs n_way * (k_shot + n_query) = {n_way * per_class} images; got {len(x)}. "
                "Check the sampler's n_way, k_shot and n_query."
            )
        emb = _embedder(model)(x)
        emb = emb.view(n_way, per_class, -1)  # (N, K+Q, D)
        prototypes = emb[:, :k_shot].mean(1)  # (N, D)
        queries = emb[:, k_shot:].reshape(n_way * n_query, -1)  # (N*Q, D)
        sq_dist = torch.cdist(queries, prototypes).pow(2)  # (N*Q, N)
        target = torch.arange(n_way, device=x.device).repeat_interleave(n_query)  # (N*Q,)
        loss = F.cross_entropy(-sq_dist, target)
        with torch.no_grad():
            d = sq_dist.sqrt()
            own = d.gather(1, target[:, None]).squeeze(1)  # (N*Q,)
            other = (d.sum(1) - own) / max(n_way - 1, 1)
            stats = {
                "pos_dist": own.mean().item(),
                "neg_dist": other.mean().item(),
                "frac_active": (d.argmin(1) != target).float().mean().item(),
                "emb_norm": emb.norm(dim=2).mean().item(),
            }
        return loss, stats

    return step


def random_affine(x: torch.Tensor, generator: torch.Generator | None = None, degrees: float = 10.0,
                  scale: float = 0.1, shear: float = 0.1, translate: float = 0.1) -> torch.Tensor:
    """A small random affine distortion of each image: (B, 1, H, W) → (B, 1, H, W).

    Rotation up to ±``degrees``, per-axis scale in 1 ± ``scale``, shear up to
    ±``shear``, shift up to ±``translate`` of the image size. Augmentation of
    this kind matters most when there are few examples per class (Omniglot:
    20 drawers per character). Runs on the tensor's device.

    Used in notebooks/06_omniglot_one_shot.ipynb.
    """
    if x.dim() != 4:
        raise ValueError(f"random_affine expects (B, C, H, W); got {tuple(x.shape)}.")
    import torch.nn.functional as F

    b = len(x)

    def uniform(*shape):
        return (torch.rand(*shape, generator=generator) * 2 - 1).to(x.device)  # in [-1, 1]

    angle = uniform(b) * math.radians(degrees)  # (B,)
    sx, sy = (1 + scale * uniform(2, b))  # (B,) each
    sh = shear * uniform(b)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(b, 2, 3, device=x.device)  # (B, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = sx * cos, -sin + sh
    theta[:, 1, 0], theta[:, 1, 1] = sin, sy * cos
    theta[:, :, 2] = 2 * translate * uniform(b, 2)  # grid coordinates span [-1, 1]: 2 = the image size
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")

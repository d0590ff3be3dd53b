"""Training steps for ``sl.train.fit``, ``step(model, batch) -> (loss, stats)``; each stat has ONE meaning:
``pos_dist`` / ``neg_dist`` the mean distance of same / different-class pairs (collapse: both go to 0);
``emb_norm`` the mean embedding norm; ``frac_active`` (hinge losses) the share of non-zero terms; ``error``
(classifier-style losses) the share of misclassified pairs or queries. Derived in notebooks/04_train_mnist.ipynb."""
import math
from collections.abc import Callable

import torch

from . import losses
from .distances import pair_distance, pairwise_distances
from .losses.prototypical import prototype_sq_distances

__all__ = ["pair_diagnostics", "triplet_diagnostics", "triplet_step", "koch_step", "omniglot_recipe"]


def _embedder(model: torch.nn.Module) -> Callable:
    return model.embed if hasattr(model, "embed") else model


def _mean(x: torch.Tensor) -> float:
    return x.mean().item() if x.numel() else math.nan


@torch.no_grad()
def pair_diagnostics(emb1: torch.Tensor, emb2: torch.Tensor, dissimilar: torch.Tensor, margin: float) -> dict:
    """Stats of a pair batch under the contrastive loss. Derived in notebooks/04_train_mnist.ipynb."""
    d, y = pair_distance(emb1, emb2), dissimilar.bool()  # (B,), (B,)
    active = torch.where(y, d < margin, d > 0)  # a similar pair costs until d = 0
    return {"pos_dist": _mean(d[~y]), "neg_dist": _mean(d[y]), "frac_active": active.float().mean().item(),
            "emb_norm": torch.cat([emb1, emb2]).norm(dim=1).mean().item()}


@torch.no_grad()
def triplet_diagnostics(emb: torch.Tensor, labels: torch.Tensor, frac_active: float) -> dict:
    """Stats of a labelled batch over ALL its pairs. Derived in notebooks/04_train_mnist.ipynb."""
    dist = pairwise_distances(emb)  # (B, B)
    diff = labels[:, None] != labels[None, :]  # (B, B)
    same = ~diff & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return {"pos_dist": _mean(dist[same]), "neg_dist": _mean(dist[diff]), "frac_active": float(frac_active),
            "emb_norm": emb.norm(dim=1).mean().item()}


def triplet_step(mining: str = "batch_hard", margin: float = 0.2, **loss_kwargs) -> Callable:
    """A step on P×K batches ``(images, labels)`` with ``mined_triplet_loss``. Used in 03_triplet_loss.ipynb."""
    def step(model, batch):
        x, labels = batch
        emb = _embedder(model)(x)  # (B, D)
        loss, stats = losses.mined_triplet_loss(emb, labels, mining=mining, margin=margin, **loss_kwargs)
        return loss, triplet_diagnostics(emb.detach(), labels, stats.fraction_active)
    return step


def koch_step() -> Callable:
    """A step on pairs ``(x1, x2, dissimilar)`` for a Koch ``SiameseNet``. Derived in 06_omniglot_one_shot.ipynb."""
    def step(model, batch):
        x1, x2, dissimilar = batch
        emb1, emb2 = model.embed(torch.cat([x1, x2])).chunk(2)  # (B, D) each, one pass
        logits = model.compare(emb1, emb2)  # (B,) logit of "same"
        stats = pair_diagnostics(emb1, emb2, dissimilar, margin=math.inf)
        del stats["frac_active"]  # BCE is never exactly 0: report the error instead
        stats["error"] = ((logits.detach() > 0).long() == dissimilar.long()).float().mean().item()
        return losses.koch_bce(logits, dissimilar), stats
    return step


def prototypical_step(n_way: int, k_shot: int, n_query: int) -> Callable:
    """A step on episodes (images class by class) for ``prototypical_loss``; the core of :func:`omniglot_recipe`."""
    def step(model, batch):
        emb = _embedder(model)(batch[0] if isinstance(batch, (list, tuple)) else batch)  # (N*(K+Q), D)
        loss = losses.prototypical_loss(emb, n_way, k_shot, n_query)
        with torch.no_grad():
            d = prototype_sq_distances(emb, n_way, k_shot, n_query).sqrt()  # (N*Q, N)
            target = torch.arange(n_way, device=d.device).repeat_interleave(n_query)  # (N*Q,)
            own = torch.nn.functional.one_hot(target, n_way).bool()  # (N*Q, N): the query's own class
            stats = {"pos_dist": _mean(d[own]), "neg_dist": _mean(d[~own]),
                     "error": (d.argmin(1) != target).float().mean().item(), "emb_norm": emb.norm(dim=1).mean().item()}
        return loss, stats
    return step


def omniglot_recipe(net: torch.nn.Module, data, *, steps: int | None = None, max_seconds: float | None = None,
                    n_way: int = 60, n_query: int = 1, lr: float = 2e-3, rotations: bool = True,
                    distort: bool = True, within: bool = False, koch_share: float = 0.3, seed: int = 0, device=None):
    """Lesson 06's one-shot recipe, also run by bench/omniglot.py: train ``net``, a ``SiameseNet``, on ``data``
    (an ``ImageSet`` with alphabets as groups) for ``steps`` steps or ``max_seconds`` seconds of training.

    * Episodes (Snell et al. 2017): ``n_way`` classes, 1 support + ``n_query`` queries each, from one alphabet
      only when ``within`` (worse on held-out background characters); every character rotated by 90°/180°/270°
      is a new class of its alphabet (``rotations``); every image gets a small random affine distortion
      (``distort``, Koch et al. 2015).
    * ``head="distance"``: the prototypical loss throughout. ``head="koch"``: Koch's head ``w·|h1 − h2| + b`` with
      its pair BCE; the encoder is first trained on episodes, and for the last ``koch_share`` of the budget the
      pairs (each query with its own support, and with the next class's support: a negative)
      train the head at ``10 lr`` and the encoder at ``lr / 10`` (a modern stand-in for Koch's layer-wise rates).
    * Adam, cosine learning-rate decay over the budget (steps, else seconds). Returns the ``History``.
    Derived in notebooks/06_omniglot_one_shot.ipynb."""
    from .data import EpisodeSampler, random_affine, to_float
    from .train import fit, seed_everything
    if (steps is None) == (max_seconds is None):
        raise ValueError(f"omniglot_recipe: give exactly one of steps= or max_seconds=; got steps={steps}, "
                         f"max_seconds={max_seconds}.")
    koch_phase = koch_share if getattr(net, "head", None) == "koch" else 0.0  # share of the budget for the head
    gen = seed_everything(seed)
    quarters = range(4) if rotations else range(1)
    n_chars = int(data.labels.max()) + 1
    images = torch.cat([torch.rot90(data.images, r, (1, 2)) for r in quarters])  # (4N, H, W): rotation r of
    labels = torch.cat([data.labels + r * n_chars for r in quarters])  # character c is class c + r * n_chars
    sampler = EpisodeSampler(labels, n_way, 1, n_query, n_episodes=steps or 10**9, seed=seed,
                             groups=data.groups.repeat(len(quarters)) if within else None)

    def batches(epoch):
        for idx in sampler:  # class after class, support first
            x = to_float(images[idx])  # (N*(1+Q), 1, H, W)
            yield random_affine(x, gen, degrees=10, scale=0.1, shear=0.15, translate=0.08) if distort else x

    head = [{"params": net.koch.parameters()}] if koch_phase else []
    optimizer = torch.optim.Adam([{"params": net.encoder.parameters()}, *head], lr=lr)
    proto, koch, state = prototypical_step(n_way, 1, n_query), koch_step(), {"progress": 0.0}

    def step(m, x):
        if state["progress"] < 1 - koch_phase:
            return proto(m, x)
        e = x.view(n_way, 1 + n_query, *x.shape[1:])  # (N, 1+Q, 1, H, W)
        support, query = e[:, :1].expand_as(e[:, 1:]).flatten(0, 1), e[:, 1:].flatten(0, 1)  # (N*Q, 1, H, W)
        other = support.roll(n_query, 0)  # the next class's support: a negative
        y = torch.cat([torch.zeros(len(query)), torch.ones(len(query))]).to(x.device)  # 1 = dissimilar
        return koch(m, (torch.cat([support, other]), torch.cat([query, query]), y))

    def at_step(n, record):
        p = state["progress"] = min(1.0, n / steps if steps else record["time_s"] / max_seconds)
        in_head = koch_phase > 0 and p >= 1 - koch_phase  # a fresh cosine decay over each phase
        scale = 0.5 * (1 + math.cos(math.pi * ((p - 1 + koch_phase) / koch_phase if in_head else p / (1 - koch_phase))))
        for g, mult in zip(optimizer.param_groups, (0.1 if in_head else 1.0, 10.0)):
            g["lr"] = lr * scale * mult

    return fit(net, step, batches, optimizer=optimizer, device=device, callback=at_step, max_seconds=max_seconds,
               progress=False)

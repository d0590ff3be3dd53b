"""Training steps for ``sl.train.fit``: ``step(model, batch) -> (loss, stats)``.

Every step reports the same diagnostics, each with ONE meaning:

* ``pos_dist`` / ``neg_dist``: mean Euclidean distance of the batch's
  same-class / different-class pairs (collapse shows as both going to 0);
* ``emb_norm``: mean embedding norm (``fit`` stops on a non-finite one);
* ``frac_active`` (hinge losses only): the share of the loss's terms that are
  non-zero — triplets with ``d_an < d_ap + margin``, or pairs inside the margin;
* ``error`` (classifier-style losses only): the share of misclassified pairs
  (Koch) or queries (prototypical).

Derived in notebooks/04_train_mnist.ipynb (written there by hand first).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

from . import losses
from .distances import pair_distance, pairwise_distances
from .losses.prototypical import prototype_sq_distances

__all__ = ["pair_diagnostics", "triplet_diagnostics", "triplet_step", "koch_step", "prototypical_step"]


def _embedder(model: torch.nn.Module) -> Callable:
    return model.embed if hasattr(model, "embed") else model


def _mean(x: torch.Tensor) -> float:
    return x.mean().item() if x.numel() else math.nan


@torch.no_grad()
def pair_diagnostics(emb1: torch.Tensor, emb2: torch.Tensor, dissimilar: torch.Tensor, margin: float) -> dict:
    """Diagnostics of a pair batch under the contrastive loss (``dissimilar`` = 1 for different classes).

    Derived in notebooks/04_train_mnist.ipynb.
    """
    d = pair_distance(emb1, emb2)  # (B,)
    y = dissimilar.bool()
    active = torch.where(y, d < margin, d > 0)  # a similar pair costs until d = 0
    return {"pos_dist": _mean(d[~y]), "neg_dist": _mean(d[y]), "frac_active": active.float().mean().item(),
            "emb_norm": torch.cat([emb1, emb2]).norm(dim=1).mean().item()}


@torch.no_grad()
def triplet_diagnostics(emb: torch.Tensor, labels: torch.Tensor, frac_active: float) -> dict:
    """Diagnostics of a labelled batch: distances over ALL its pairs, ``frac_active`` from the miner.

    Derived in notebooks/04_train_mnist.ipynb.
    """
    dist = pairwise_distances(emb)  # (B, B)
    same = labels[:, None] == labels[None, :]  # (B, B)
    same.fill_diagonal_(False)
    diff = labels[:, None] != labels[None, :]
    return {"pos_dist": _mean(dist[same]), "neg_dist": _mean(dist[diff]), "frac_active": float(frac_active),
            "emb_norm": emb.norm(dim=1).mean().item()}


def triplet_step(mining: str = "batch_hard", margin: float = 0.2, **loss_kwargs) -> Callable:
    """A step on P×K batches ``(images, labels)`` with ``sl.losses.mined_triplet_loss``.

    Used in notebooks/03_triplet_loss.ipynb and 05_explore_embeddings.ipynb.
    """
    def step(model, batch):
        x, labels = batch
        emb = _embedder(model)(x)  # (B, D)
        loss, stats = losses.mined_triplet_loss(emb, labels, mining=mining, margin=margin, **loss_kwargs)
        return loss, triplet_diagnostics(emb.detach(), labels, stats.fraction_active)

    return step


def koch_step() -> Callable:
    """A step on pair batches ``(x1, x2, dissimilar)`` for ``SiameseNet(head="koch")`` and ``koch_bce``.

    Derived in notebooks/06_omniglot_one_shot.ipynb.
    """
    def step(model, batch):
        x1, x2, dissimilar = batch
        emb1, emb2 = model.embed(torch.cat([x1, x2])).chunk(2)  # (B, D) each, one pass
        logits = model.compare(emb1, emb2)  # (B,) logit of "same"
        loss = losses.koch_bce(logits, dissimilar)
        stats = pair_diagnostics(emb1, emb2, dissimilar, margin=math.inf)
        del stats["frac_active"]  # BCE is never exactly 0: report the error instead
        stats["error"] = ((logits.detach() > 0).long() == dissimilar.long()).float().mean().item()
        return loss, stats

    return step


def prototypical_step(n_way: int, k_shot: int, n_query: int) -> Callable:
    """A step on episodes for ``sl.losses.prototypical_loss`` (batch: images class after class).

    Derived in notebooks/06_omniglot_one_shot.ipynb.
    """
    def step(model, batch):
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        emb = _embedder(model)(x)  # (N*(K+Q), D)
        loss = losses.prototypical_loss(emb, n_way, k_shot, n_query)
        with torch.no_grad():
            d = prototype_sq_distances(emb, n_way, k_shot, n_query).sqrt()  # (N*Q, N)
            target = torch.arange(n_way, device=d.device).repeat_interleave(n_query)  # (N*Q,)
            own = torch.nn.functional.one_hot(target, n_way).bool()  # (N*Q, N): the query's own class
            stats = {"pos_dist": _mean(d[own]), "neg_dist": _mean(d[~own]),
                     "error": (d.argmin(1) != target).float().mean().item(),
                     "emb_norm": emb.norm(dim=1).mean().item()}
        return loss, stats

    return step

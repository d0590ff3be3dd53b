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

__all__ = ["pair_diagnostics", "triplet_diagnostics", "triplet_step", "koch_step", "prototypical_step"]


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
    """A step on episodes (images class by class) for ``prototypical_loss``. Derived in 06_omniglot_one_shot.ipynb."""
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

"""Temperature softmax losses: NT-Xent (SimCLR, Chen et al. 2020) and InfoNCE (van den Oord et al. 2018; MoCo).

Each anchor must pick its positive out of many candidates; the logits are
cosine similarities divided by a temperature τ. Computed with log-sum-exp
(``F.cross_entropy``), so tiny and large τ stay finite in float32.

Derived in notebooks/03_triplet_loss.ipynb (as the many-negatives limit of the
triplet idea); trained with in notebooks/07.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._checks import check_pair_batch, check_reduction, check_temperature

__all__ = ["nt_xent", "info_nce"]


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5, reduction: str = "mean") -> torch.Tensor:
    """NT-Xent, SimCLR's 2N-view form.

    ``z1[i]`` and ``z2[i]`` are two views of example ``i``. The 2N views are
    stacked; for view ``k`` the positive is its twin and the other ``2N - 2``
    views are negatives:

        l_k = -log( exp(s(k, k+) / τ) / sum_{j != k} exp(s(k, j) / τ) ),   s = cosine similarity,

    averaged over the 2N views (``reduction="none"`` gives the ``(2N,)`` terms).
    Derived in notebooks/03_triplet_loss.ipynb.
    """
    name = "nt_xent"
    check_pair_batch(name, z1, z2, names=("z1", "z2"))
    temperature = check_temperature(name, temperature)
    check_reduction(name, reduction)
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2], dim=0), dim=1)  # (2N, D), unit rows
    logits = z @ z.T / temperature  # (2N, 2N)
    self_mask = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))  # a view is not its own candidate
    idx = torch.arange(n, device=z.device)
    target = torch.cat([idx + n, idx])  # (2N,) index of the twin
    return F.cross_entropy(logits, target, reduction=reduction)


def info_nce(
    query: torch.Tensor,
    positive_key: torch.Tensor,
    negative_keys: torch.Tensor | None = None,
    temperature: float = 0.1,
    reduction: str = "mean",
) -> torch.Tensor:
    """InfoNCE: each query must find its positive key among negatives.

    ``query``, ``positive_key``: ``(N, D)``. ``negative_keys``: ``(M, D)`` shared
    negatives (a MoCo-style queue), or ``None`` to use the other rows of
    ``positive_key`` as negatives (in-batch). Cosine similarities over τ,
    cross-entropy with the positive as the target class.
    Derived in notebooks/03_triplet_loss.ipynb.
    """
    name = "info_nce"
    check_pair_batch(name, query, positive_key, names=("query", "positive_key"))
    temperature = check_temperature(name, temperature)
    check_reduction(name, reduction)
    q = F.normalize(query, dim=1)  # (N, D)
    k = F.normalize(positive_key, dim=1)  # (N, D)
    if negative_keys is None:
        logits = q @ k.T / temperature  # (N, N): diagonal = positives
        target = torch.arange(q.shape[0], device=q.device)
    else:
        if negative_keys.dim() != 2 or negative_keys.shape[1] != q.shape[1] or negative_keys.shape[0] == 0:
            raise ValueError(
                f"{name}: negative_keys must have shape (M, {q.shape[1]}) with M >= 1; got {tuple(negative_keys.shape)}."
            )
        neg = F.normalize(negative_keys, dim=1)  # (M, D)
        pos_logit = (q * k).sum(dim=1, keepdim=True)  # (N, 1)
        logits = torch.cat([pos_logit, q @ neg.T], dim=1) / temperature  # (N, 1 + M)
        target = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, target, reduction=reduction)

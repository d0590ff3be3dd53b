"""NT-Xent (SimCLR, Chen et al. 2020) and InfoNCE (van den Oord et al. 2018): cosine similarities over a
temperature τ, cross-entropy with the positive as the target (log-sum-exp, so any τ stays finite).
Derived in notebooks/03_triplet_loss.ipynb as the many-negatives limit of the triplet idea."""
import torch
import torch.nn.functional as F

from ._checks import check_pair_batch, check_positive

__all__ = ["nt_xent", "info_nce"]


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent over the 2N views: each view's positive is its twin. Derived in notebooks/03_triplet_loss.ipynb."""
    check_pair_batch("nt_xent", z1, z2, names=("z1", "z2"))
    temperature = check_positive("nt_xent", "temperature", temperature)
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2], dim=0), dim=1)  # (2N, D), unit rows
    logits = z @ z.T / temperature  # (2N, 2N)
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))  # not itself
    idx = torch.arange(n, device=z.device)
    return F.cross_entropy(logits, torch.cat([idx + n, idx]))  # target: the twin, mean over the 2N views


def info_nce(query: torch.Tensor, positive_key: torch.Tensor, negative_keys: torch.Tensor | None = None,
             temperature: float = 0.1) -> torch.Tensor:
    """InfoNCE: each query ``(N, D)`` must find its positive key among ``negative_keys`` ``(M, D)`` (a MoCo queue)
    or, with ``None``, among the other positive keys. Derived in notebooks/03_triplet_loss.ipynb."""
    check_pair_batch("info_nce", query, positive_key, names=("query", "positive_key"))
    temperature = check_positive("info_nce", "temperature", temperature)
    q, k = F.normalize(query, dim=1), F.normalize(positive_key, dim=1)  # (N, D) each
    if negative_keys is None:
        logits = q @ k.T / temperature  # (N, N): diagonal = positives
        target = torch.arange(q.shape[0], device=q.device)
    else:
        if negative_keys.dim() != 2 or negative_keys.shape[1] != q.shape[1] or negative_keys.shape[0] == 0:
            raise ValueError(f"info_nce: negative_keys must have shape (M, {q.shape[1]}) with M >= 1; "
                             f"got {tuple(negative_keys.shape)}.")
        pos_logit = (q * k).sum(dim=1, keepdim=True)  # (N, 1)
        logits = torch.cat([pos_logit, q @ F.normalize(negative_keys, dim=1).T], dim=1) / temperature  # (N, 1 + M)
        target = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, target)  # mean over the queries

"""Prototypical networks (Snell et al. 2017): ``p(y = c | q) = softmax_c(-‖f(q) - μ_c‖²)``, ``μ_c`` the mean of
class c's support embeddings. Derived in notebooks/06_omniglot_one_shot.ipynb."""
import torch
import torch.nn.functional as F

from ..distances import pairwise_distances

__all__ = ["prototypical_loss"]


def prototype_sq_distances(emb: torch.Tensor, n_way: int, k_shot: int, n_query: int) -> torch.Tensor:
    """``(N*Q, N)`` squared query-to-prototype distances; ``emb`` holds an episode class after class, support first."""
    per_class = k_shot + n_query
    if emb.dim() != 2 or len(emb) != n_way * per_class:
        raise ValueError(f"an episode needs n_way * (k_shot + n_query) = {n_way * per_class} embeddings (rows); "
                         f"got shape {tuple(emb.shape)}. Check the sampler's n_way, k_shot and n_query.")
    emb = emb.view(n_way, per_class, -1)  # (N, K+Q, D)
    prototypes = emb[:, :k_shot].mean(dim=1)  # (N, D)
    queries = emb[:, k_shot:].reshape(n_way * n_query, -1)  # (N*Q, D)
    return pairwise_distances(queries, prototypes, squared=True)  # (N*Q, N)


def prototypical_loss(emb: torch.Tensor, n_way: int, k_shot: int, n_query: int) -> torch.Tensor:
    """Cross-entropy over minus the squared prototype distances. Derived in notebooks/06_omniglot_one_shot.ipynb."""
    sq_dist = prototype_sq_distances(emb, n_way, k_shot, n_query)  # (N*Q, N)
    target = torch.arange(n_way, device=emb.device).repeat_interleave(n_query)  # (N*Q,) class of each query
    return F.cross_entropy(-sq_dist, target)

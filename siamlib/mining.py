"""Online mining: one distance matrix + labels → index tuples ``(a, p, n)``.

The vocabulary follows pytorch-metric-learning: a *distance* makes the B×B
matrix once, a *miner* returns index tuples, a *loss* indexes the matrix.
Everything here is vectorised over the batch (no Python loop over anchors)
and works on any device (it follows the tensors it is given).

Names used throughout (FaceNet, Schroff et al. 2015; Hermans et al. 2017):

* a *valid triplet* ``(a, p, n)``: ``a != p``, ``labels[a] == labels[p]``,
  ``labels[a] != labels[n]``;
* it is *active* (has a non-zero hinge loss) when ``d_an < d_ap + margin``;
* *hard*: ``d_an <= d_ap``; *semi-hard*: ``d_ap < d_an < d_ap + margin``;
  *easy*: ``d_an >= d_ap + margin``.

Semi-hard convention. FaceNet picks, per anchor-positive pair, negatives
inside the band ``d_ap < d_an < d_ap + margin``; when a pair has none,
implementations differ (TensorFlow-Addons falls back to another negative).
``semi_hard`` here follows pytorch-metric-learning's ``TripletMarginMiner(
type_of_triplets="semihard")``: it returns *every* semi-hard triplet and a pair
with no semi-hard negative contributes nothing.

Derived in notebooks/03_triplet_loss.ipynb (pairs in notebooks/02_contrastive_loss.ipynb).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "safe_sqrt",
    "ranking_key",
    "pair_distance",
    "pairwise_distances",
    "label_masks",
    "positive_pairs",
    "negative_pairs",
    "batch_hard",
    "semi_hard",
    "batch_all",
    "count_valid_triplets",
    "MiningStats",
    "triplet_weights",
    "weighted_distance_sum",
]


# ----------------------------------------------------------------------------- distances
def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(x)`` whose gradient is 0 (not NaN) where ``x == 0``.

    ``d sqrt(x)/dx = 1 / (2 sqrt(x))`` is infinite at 0, and the chain rule
    then multiplies it by ``d(x)/d(emb) = 2 (x1 - x2) = 0``: ``inf * 0 = NaN``.
    The double ``where`` keeps the value exact and feeds ``sqrt`` a harmless 1
    where ``x`` is 0, so no NaN enters the backward pass.
    Derived in notebooks/02_contrastive_loss.ipynb.
    """
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), torch.zeros_like(x))


def pair_distance(x1: torch.Tensor, x2: torch.Tensor, squared: bool = False) -> torch.Tensor:
    """Euclidean distance between matching rows: ``(B, D), (B, D) -> (B,)``.

    Exact (no ``eps`` added, unlike ``F.pairwise_distance``) and with finite
    gradients when two rows are identical (see :func:`safe_sqrt`).
    Derived in notebooks/02_contrastive_loss.ipynb.
    """
    if x1.shape != x2.shape or x1.dim() != 2:
        raise ValueError(
            f"pair_distance expects two (B, D) tensors of the same shape; got {tuple(x1.shape)} "
            f"and {tuple(x2.shape)}. Pass one row per pair in each tensor."
        )
    d2 = (x1 - x2).pow(2).sum(dim=1)  # (B,)
    return d2 if squared else safe_sqrt(d2)


def pairwise_distances(emb: torch.Tensor, other: torch.Tensor | None = None, squared: bool = False) -> torch.Tensor:
    """All Euclidean distances between rows: ``(B, D) -> (B, B)`` (or ``(B, M)`` with ``other``).

    Uses ``|x|^2 + |y|^2 - 2 x.y`` (one matrix product), clamps rounding
    negatives to 0, sets the self-distances exactly to 0 and takes a
    gradient-safe square root.
    Derived in notebooks/03_triplet_loss.ipynb.
    """
    if emb.dim() != 2:
        raise ValueError(f"pairwise_distances expects emb of shape (B, D); got {tuple(emb.shape)}.")
    if emb.shape[0] == 0:
        raise ValueError("pairwise_distances got an empty batch (B = 0); pass at least one embedding.")
    ref = emb if other is None else other
    if ref.dim() != 2 or ref.shape[1] != emb.shape[1]:
        raise ValueError(
            f"pairwise_distances: other must be (M, {emb.shape[1]}) like emb's feature size; got {tuple(ref.shape)}."
        )
    sq_e = emb.pow(2).sum(dim=1)  # (B,)
    sq_r = ref.pow(2).sum(dim=1)  # (M,)
    d2 = (sq_e[:, None] + sq_r[None, :] - 2.0 * emb @ ref.T).clamp_min(0.0)  # (B, M)
    if other is None:
        eye = torch.eye(emb.shape[0], dtype=torch.bool, device=emb.device)
        d2 = d2.masked_fill(eye, 0.0)
    return d2 if squared else safe_sqrt(d2)


# ----------------------------------------------------------------------------- checks and masks
def _check_labels_dist(labels: torch.Tensor, dist: torch.Tensor) -> None:
    if labels.dim() != 1:
        raise ValueError(f"labels must be a 1-D tensor (B,); got shape {tuple(labels.shape)}.")
    if labels.shape[0] == 0:
        raise ValueError("got an empty batch (B = 0 labels); mining needs at least one embedding.")
    b = labels.shape[0]
    if dist.shape != (b, b):
        raise ValueError(
            f"dist must be the ({b}, {b}) distance matrix of the batch (B = len(labels) = {b}); "
            f"got shape {tuple(dist.shape)}. Compute it with sl.mining.pairwise_distances(emb)."
        )
    if labels.dtype.is_floating_point:
        raise ValueError(f"labels must be integer class ids; got dtype {labels.dtype}. Use labels.long().")


def _check_margin(margin: float) -> float:
    margin = float(margin)
    if not margin > 0:
        raise ValueError(f"margin must be > 0 (the gap wanted between d_an and d_ap); got {margin}.")
    return margin


def label_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(pos, neg)`` boolean ``(B, B)`` masks: same class (excluding ``a == p``) and different class.

    Derived in notebooks/03_triplet_loss.ipynb.
    """
    same = labels[:, None] == labels[None, :]  # (B, B)
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def positive_pairs(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All ordered positive pairs ``(a, p)``: same label, ``a != p``. Derived in notebooks/02_contrastive_loss.ipynb."""
    pos, _ = label_masks(labels)
    a, p = pos.nonzero(as_tuple=True)
    return a, p


def negative_pairs(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All ordered negative pairs ``(a, n)``: different labels. Derived in notebooks/02_contrastive_loss.ipynb."""
    _, neg = label_masks(labels)
    a, n = neg.nonzero(as_tuple=True)
    return a, n


def count_valid_triplets(labels: torch.Tensor) -> int:
    """Number of valid triplets in a batch, without listing them: ``sum_a P_a * N_a``.

    ``P_a`` (``N_a``) is the number of positives (negatives) of anchor ``a``.
    For a P×K batch this is ``P K (K-1) (P-1) K``.
    Derived in notebooks/03_triplet_loss.ipynb.
    """
    if labels.dim() != 1:
        raise ValueError(f"labels must be 1-D (B,); got shape {tuple(labels.shape)}.")
    _, counts = torch.unique(labels, return_counts=True)  # (C,) class sizes
    return int((counts * (counts - 1) * (labels.shape[0] - counts)).sum())


# ----------------------------------------------------------------------------- miners
def _empty_triplets(device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    e = torch.empty(0, dtype=torch.long, device=device)
    return e, e.clone(), e.clone()


@torch.no_grad()
def batch_hard(labels: torch.Tensor, dist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One triplet per anchor: its farthest positive and its closest negative (Hermans et al. 2017).

    Anchors without a positive or without a negative are skipped. Same choice
    as pytorch-metric-learning's ``BatchHardMiner``. ``(B, B) -> (a, p, n)``,
    each ``(T,)`` with ``T <= B``. Only the order within each row matters, so
    ``dist`` may also be squared distances (or :func:`ranking_key`).
    Derived in notebooks/03_triplet_loss.ipynb.
    """
    _check_labels_dist(labels, dist)
    dist = dist.detach()
    same = labels[:, None] == labels[None, :]  # (B, B)
    key_p = torch.where(same, dist, float("-inf"))  # (B, B): only positives compete
    key_p.diagonal().fill_(float("-inf"))  # ... and never the anchor itself
    hardest_p = key_p.argmax(dim=1)  # (B,)
    hardest_n = torch.where(same, float("inf"), dist).argmin(dim=1)  # (B,)
    size = _class_sizes(labels)  # (B,): size of each row's class
    keep = (size > 1) & (size < labels.shape[0])  # has a positive and a negative
    a = keep.nonzero(as_tuple=True)[0]
    return a, hardest_p[a], hardest_n[a]


def _class_sizes(labels: torch.Tensor) -> torch.Tensor:
    """``(B,)``: how many rows of the batch share each row's label (O(B log B), no B×B)."""
    _, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    return counts[inverse]


@torch.no_grad()
def ranking_key(emb: torch.Tensor) -> torch.Tensor:
    """``(B, B)`` matrix ordered like the distances within every row: ``|e_j|² − 2 e_i·e_j``.

    It is ``d(i, j)² − |e_i|²``; the dropped term is constant along a row, so
    per-anchor arg-max / arg-min (batch-hard) need no square root and no
    extra pass. One fused matrix product.
    Derived in notebooks/03_triplet_loss.ipynb.
    """
    sq = emb.pow(2).sum(dim=1)  # (B,)
    return torch.addmm(sq[None, :], emb, emb.T, alpha=-2.0)  # (B, B)


@torch.no_grad()
def _negative_windows(labels: torch.Tensor, dist: torch.Tensor, margin: float | None, kind: str):
    """For every positive pair ``(a, p)``: the window ``[lo, hi)`` of the anchor's negatives,
    sorted by distance, that form the wanted triplets. No B×B×B tensor is built.

    Returns ``a, p, lo, hi, neg_order`` where ``neg_order[a]`` lists anchor a's
    negatives first, nearest first.
    """
    pos, neg = label_masks(labels)
    inf = torch.finfo(dist.dtype).max
    neg_sorted, neg_order = dist.masked_fill(~neg, inf).sort(dim=1)  # (B, B), negatives first
    a, p = pos.nonzero(as_tuple=True)  # (P,)
    if kind == "all":
        n_neg = neg.sum(dim=1)  # (B,)
        lo = torch.zeros_like(a)
        hi = n_neg[a] if margin is None else torch.searchsorted(neg_sorted, dist + margin, right=False)[a, p]
    elif kind == "semi_hard":
        lo = torch.searchsorted(neg_sorted, dist.contiguous(), right=True)[a, p]  # d_an <= d_ap excluded
        hi = torch.searchsorted(neg_sorted, dist + margin, right=False)[a, p]  # d_an < d_ap + margin
        hi = torch.maximum(hi, lo)
    else:  # pragma: no cover - internal
        raise AssertionError(kind)
    return a, p, lo, hi, neg_order


def _expand_windows(a, p, lo, hi, neg_order):
    """List the triplets of the windows: ``(a, p, n)``, sized by the number of triplets (not B³)."""
    length = hi - lo  # (P,)
    total = int(length.sum())
    if total == 0:
        return _empty_triplets(a.device)
    a_t = torch.repeat_interleave(a, length)  # (T,)
    p_t = torch.repeat_interleave(p, length)
    start = torch.cumsum(length, 0) - length  # (P,)
    offset = torch.arange(total, device=a.device) - torch.repeat_interleave(start, length)
    col = torch.repeat_interleave(lo, length) + offset
    return a_t, p_t, neg_order[a_t, col]


def semi_hard(labels: torch.Tensor, dist: torch.Tensor, margin: float = 0.2):
    """All semi-hard triplets: ``d_ap < d_an < d_ap + margin`` (FaceNet's band).

    Every such triplet is returned (pytorch-metric-learning's
    ``TripletMarginMiner(type_of_triplets="semihard")`` convention); pairs with
    no semi-hard negative contribute nothing. Per anchor, negatives are sorted
    once and each positive's band is found by binary search. ``-> (a, p, n)``.
    Derived in notebooks/03_triplet_loss.ipynb.
    """
    _check_labels_dist(labels, dist)
    margin = _check_margin(margin)
    return _expand_windows(*_negative_windows(labels, dist.detach(), margin, "semi_hard"))


def batch_all(labels: torch.Tensor, dist: torch.Tensor, margin: float | None = None):
    """All valid triplets (``margin=None``), or only the active ones, ``d_an < d_ap + margin``.

    ``-> (a, p, n)``. The number of triplets grows like B³: prefer
    :func:`sl.losses.mined_triplet_loss`, which sums the loss over them
    without listing them. Derived in notebooks/03_triplet_loss.ipynb.
    """
    _check_labels_dist(labels, dist)
    if margin is not None:
        margin = _check_margin(margin)
    return _expand_windows(*_negative_windows(labels, dist.detach(), margin, "all"))


# ----------------------------------------------------------------------------- stats
@dataclass(frozen=True)
class MiningStats:
    """What a mining step found (Python numbers, for logging).

    * ``n_valid``: valid triplets in the batch (``sum_a P_a N_a``);
    * ``n_triplets``: triplets the strategy selected (the loss is over these);
    * ``n_active``: selected triplets with a non-zero loss (``d_an < d_ap + margin``);
    * ``fraction_active``: ``n_active / n_triplets`` (0.0 when nothing was selected).

    For ``batch_all`` the selection is every valid triplet, so
    ``fraction_active`` is the share of the batch's triplets that still violate
    the margin (Hermans et al.'s diagnostic).
    Derived in notebooks/03_triplet_loss.ipynb.
    """

    mining: str
    n_valid: int
    n_triplets: int
    n_active: int

    @property
    def fraction_active(self) -> float:
        return self.n_active / self.n_triplets if self.n_triplets else 0.0


@torch.no_grad()
def triplet_weights(labels: torch.Tensor, dist: torch.Tensor, margin: float, kind: str):
    """How often each pair enters a strategy's active triplets, without listing the triplets.

    For ``kind="batch_all"`` the triplets are the active ones, ``d_an < d_ap + margin``;
    for ``kind="semi_hard"`` those with ``d_ap < d_an < d_ap + margin``. Their
    hinge losses are linear in the distances, so

        sum over those triplets of (d_ap - d_an + margin)
          = sum_(a,n) W[a,n] d_an  +  margin * n_selected,     W = w_pos - w_neg,

    where ``w_pos[a, p]`` counts the negatives in pair (a, p)'s band and
    ``w_neg[a, n]`` the positives whose band holds n.

    How, in O(B² log K) with K = the largest class size (never B³): sort each
    anchor's K positive distances; for every other point n find, by binary
    search, ``r1`` = #positives with ``d_ap < d_an`` and ``r2`` = #positives with
    ``d_ap + margin <= d_an``. Then n sits in the band of exactly the sorted
    positives ``r2 <= k < r1`` (``r2 <= k < P_a`` for batch-all): that count is
    ``w_neg``, and a difference array (+1 at r2, -1 at r1, cumulative sum)
    gives ``w_pos``. Returns ``(W, n_selected)``; ``W`` is ``(B, B)`` in ``dist.dtype``.
    Derived in notebooks/03_triplet_loss.ipynb.
    """
    _check_labels_dist(labels, dist)
    margin = _check_margin(margin)
    if kind not in ("batch_all", "semi_hard"):
        raise ValueError(f"triplet_weights: kind must be 'batch_all' or 'semi_hard'; got {kind!r}.")
    dist = dist.detach()
    b = labels.shape[0]
    n_pos = _class_sizes(labels) - 1  # (B,)
    k = int(n_pos.max())
    if k == 0 or int(n_pos.min()) == b - 1:  # no positive pair, or a single class (no negative)
        return torch.zeros_like(dist), 0
    same = labels[:, None] == labels[None, :]  # (B, B)
    # each anchor's positive distances, ascending, padded with +inf: (B, K)
    key = torch.where(same, dist, float("inf"))
    key.diagonal().fill_(float("inf"))
    pos_sorted, pos_idx = key.topk(k, dim=1, largest=False, sorted=True)
    upper = pos_sorted + margin  # (B, K): each band's upper end, the same floats used for every n
    r2 = torch.searchsorted(upper, dist, right=True, out_int32=True)  # (B, B): #{p : d_ap + m <= d_an}
    if kind == "semi_hard":
        r1 = torch.searchsorted(pos_sorted, dist, right=False, out_int32=True)  # (B, B): #{p : d_ap < d_an}
    else:
        r1 = n_pos.to(torch.int32)[:, None].expand(b, b)  # every real positive with d_ap + m > d_an
    # n lies in the band of the sorted positives r2 <= k < r1: w_neg[a, n] of them
    w_neg = torch.where(same, 0, (r1 - r2).clamp_min(0))  # (B, B) int32, 0 off negative pairs
    # w_pos[a, k] = #{negatives n : r2(n) <= k < r1(n)} = #{r2 <= k} - #{r1 <= k}: cumulative histograms
    rows = torch.arange(b, device=dist.device)[:, None] * (k + 1)  # (B, 1)
    negw = (~same).to(dist.dtype).view(-1)  # (B*B,)
    hist2 = torch.bincount((rows + r2).view(-1), weights=negw, minlength=b * (k + 1)).view(b, k + 1)
    if kind == "semi_hard":
        hist1 = torch.bincount((rows + r1).view(-1), weights=negw, minlength=b * (k + 1)).view(b, k + 1)
        w_pos_sorted = (hist2 - hist1).cumsum(dim=1)[:, :k]  # (B, K)
    else:
        w_pos_sorted = hist2.cumsum(dim=1)[:, :k]
    w_pos_sorted = w_pos_sorted.masked_fill(pos_sorted.isinf(), 0).round().to(dist.dtype)  # padding is no pair
    weights = (-w_neg.to(dist.dtype)).scatter_add_(1, pos_idx, w_pos_sorted)  # (B, B): w_pos - w_neg
    return weights, int(w_pos_sorted.sum())


class _WeightedDistanceSum(torch.autograd.Function):
    """``sum_ij W_ij d(e_i, e_j)`` with an analytic backward (one B×B·D product).

    ``d/de_i = sum_j S_ij (e_i - e_j)``, ``S = G + G^T`` with ``G = W / d``
    (``2 W`` for squared distances; 0 where d = 0, the sub-gradient).
    """

    @staticmethod
    def forward(ctx, emb, weights, dist, squared):  # (B, D), (B, B), (B, B)
        ctx.save_for_backward(emb, weights, dist)
        ctx.squared = squared
        return (weights * dist).sum()

    @staticmethod
    def backward(ctx, grad_out):
        emb, weights, dist = ctx.saved_tensors
        if ctx.squared:
            g = 2.0 * weights
        else:
            g = torch.where(dist > 0, weights / dist.clamp_min(torch.finfo(dist.dtype).tiny), torch.zeros_like(dist))
        s = g + g.T  # (B, B)
        grad = s.sum(dim=1, keepdim=True) * emb - s @ emb  # (B, D)
        return grad_out * grad, None, None, None


def weighted_distance_sum(emb: torch.Tensor, weights: torch.Tensor, dist: torch.Tensor, squared: bool = False) -> torch.Tensor:
    """``(weights * dist).sum()`` where ``dist = pairwise_distances(emb, squared=squared)`` was
    computed without gradient; the gradient with respect to ``emb`` is exact and cheap.
    Derived in notebooks/03_triplet_loss.ipynb.
    """
    return _WeightedDistanceSum.apply(emb, weights.detach(), dist.detach(), squared)

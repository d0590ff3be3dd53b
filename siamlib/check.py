"""Exercise self-checks used by the notebooks.

Each ``check_*``-style function runs a learner's implementation on small cases
with known answers and prints either a success line or *what* is wrong (not
just "wrong"): a swapped label convention, a missing ½, a missing clamp...
It returns ``True``/``False`` so a notebook can also ``assert`` on it.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

__all__ = ["contrastive_loss", "triplet_loss", "batch_hard", "count_triplets"]


def _report(ok: bool, message: str) -> bool:
    print(("✅ " if ok else "❌ ") + message)
    return ok


def _close(x, y, tol: float = 1e-4) -> bool:
    try:
        x = torch.as_tensor(x, dtype=torch.float64).detach()
        y = torch.as_tensor(y, dtype=torch.float64).detach()
        return x.shape == y.shape and bool(torch.allclose(x, y, rtol=tol, atol=tol))
    except Exception:  # noqa: BLE001 - any oddity in the learner's output is "not close"
        return False


def _call(fn: Callable, *args, **kwargs):
    """Run the learner's function; on an exception return it (the check reports it)."""
    try:
        return fn(*args, **kwargs), None
    except Exception as exc:  # noqa: BLE001
        return None, exc


def _int_list(out) -> list[int] | None:
    """The learner's indices as a flat list of ints, or None when ``out`` is not index-like."""
    try:
        return [int(i) for i in torch.as_tensor(out).reshape(-1)]
    except Exception:  # noqa: BLE001
        return None


def _raised(exc: Exception, call: str) -> bool:
    """Report that the learner's function raised, and how the check called it."""
    return _report(False, f"your function raised {type(exc).__name__}: {exc}. It is called as {call}.")


def _scalar(out) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor) and out.dim() == 0:
        return out
    return None


# ----------------------------------------------------------------------------- lesson 02
def _contrastive_cases():
    """2-D pairs at known distances: similar and dissimilar pairs inside and outside the margin."""
    # distances: 0.5, 1.0, 0.3, 1.2, 2.5, 0.8 ; labels: Y = 0 similar, 1 dissimilar
    d = torch.tensor([0.5, 1.0, 0.3, 1.2, 2.5, 0.8], dtype=torch.float64)
    angle = torch.tensor([0.0, 0.7, 1.9, 2.6, 4.0, 5.2], dtype=torch.float64)
    emb1 = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1) * 0.7  # (6, 2)
    emb2 = emb1 + d[:, None] * torch.stack([torch.cos(angle + 1.0), torch.sin(angle + 1.0)], dim=1)
    dissimilar = torch.tensor([0, 0, 1, 1, 1, 0], dtype=torch.float64)
    return emb1.float(), emb2.float(), dissimilar.float(), d.float()


def contrastive_loss(fn: Callable, margin: float = 1.5) -> bool:
    """Check a learner's ``fn(emb1, emb2, dissimilar, margin) -> mean loss`` (Hadsell et al. 2006).

    Convention: ``dissimilar = 1`` for a dissimilar pair (the paper's Y), the
    result is the mean over pairs. Prints what is wrong, returns True when correct.
    Derived in notebooks/02_contrastive_loss.ipynb.
    """
    emb1, emb2, y, d = _contrastive_cases()
    m = margin
    out, exc = _call(fn, emb1, emb2, y, m)
    if exc is not None:
        return _raised(exc, "fn(emb1, emb2, dissimilar, margin) with (6, 2) float tensors")
    value = _scalar(out)
    if value is None:
        return _report(False, f"return one number (a 0-dim tensor): the mean over the pairs; got {getattr(out, 'shape', type(out))}. Did you forget .mean()?")

    def formula(y_, half=0.5, clamp=True, sq_hinge=True, sq_dist=True, marg=m):
        hinge = (marg - d).clamp_min(0) if clamp else (marg - d)
        hinge = hinge.pow(2) if sq_hinge else hinge
        pull = d.pow(2) if sq_dist else d
        return ((1 - y_) * half * pull + y_ * half * hinge).mean()

    ref = formula(y)
    if not _close(value, ref):
        variants = [
            (formula(1 - y), "the label convention is inverted: in Hadsell et al. Y = 0 means SIMILAR (pull together) and Y = 1 means DISSIMILAR (push apart until the margin). Swap the two terms (this was keras-io's bug)."),
            (formula(y, half=1.0), "your loss is twice the expected value: the paper has a factor ½ on both terms."),
            (formula(y, half=0.25), "your loss is half the expected value: use ½ once per term, not twice."),
            (formula(y, clamp=False), "dissimilar pairs farther apart than the margin should cost nothing: clamp the hinge, max(0, m − D), before squaring."),
            (formula(y, sq_hinge=False), "square the hinge: the dissimilar term is ½·max(0, m − D)², not ½·max(0, m − D)."),
            (formula(y, sq_dist=False), "square the distance of similar pairs: the similar term is ½·D², not ½·D."),
            (formula(y, marg=1.0), "your function ignores the margin argument (it seems to use m = 1): use the margin it is given."),
            (ref * len(d), "you summed over pairs: return the mean (divide by the number of pairs)."),
        ]
        for cand, msg in variants:
            if _close(value, cand):
                return _report(False, msg)
        return _report(False, f"the loss is {float(value):.5f}, expected {float(ref):.5f}. Check D (Euclidean distance, sqrt of the summed squared differences) and both terms: (1 − Y)·½·D² + Y·½·max(0, m − D)².")
    # zero-distance gradient: two identical embeddings, one similar and one dissimilar pair
    e1 = torch.tensor([[0.3, -0.4], [1.0, 2.0]], requires_grad=True)
    e2 = e1.detach().clone().requires_grad_(True)
    out0, exc = _call(fn, e1, e2, torch.tensor([0.0, 1.0]), m)
    if exc is None and isinstance(out0, torch.Tensor) and out0.requires_grad:
        out0.backward()
        grads = torch.cat([e1.grad.flatten(), e2.grad.flatten()]) if e1.grad is not None and e2.grad is not None else None
        if grads is None or not bool(torch.isfinite(grads).all()):
            return _report(False, "values are right, but the gradient is NaN when two embeddings are identical: d sqrt(x)/dx is infinite at 0. Use a safe distance, e.g. sl.mining.safe_sqrt(squared_distance) or sqrt(clamp(d², min=1e-12)).")
    return _report(True, f"correct: (1 − Y)·½·D² + Y·½·max(0, m − D)², mean over pairs = {float(value):.5f}, finite gradients at D = 0.")


# ----------------------------------------------------------------------------- lesson 03
def _triplet_cases():
    angle = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    unit = lambda t: torch.stack([torch.cos(t), torch.sin(t)], dim=1)  # noqa: E731
    anchor = unit(angle)
    positive = anchor + 0.4 * unit(angle + 2.0)
    negative = anchor + torch.tensor([0.2, 0.5, 0.9, 1.6, 0.35], dtype=torch.float64)[:, None] * unit(angle - 1.0)
    return anchor.float(), positive.float(), negative.float()


def triplet_loss(fn: Callable, margin: float = 0.3) -> bool:
    """Check a learner's ``fn(anchor, positive, negative, margin) -> mean loss`` (FaceNet, plain Euclidean distances).

    Derived in notebooks/03_triplet_loss.ipynb.
    """
    anchor, positive, negative = _triplet_cases()
    out, exc = _call(fn, anchor, positive, negative, margin)
    if exc is not None:
        return _raised(exc, "fn(anchor, positive, negative, margin) with (5, 2) tensors")
    value = _scalar(out)
    if value is None:
        return _report(False, f"return one number (a 0-dim tensor), the mean over triplets; got {getattr(out, 'shape', type(out))}.")
    d_ap = (anchor - positive).pow(2).sum(1).sqrt()
    d_an = (anchor - negative).pow(2).sum(1).sqrt()
    ref = (d_ap - d_an + margin).clamp_min(0).mean()
    if not _close(value, ref):
        variants = [
            ((d_an - d_ap + margin).clamp_min(0).mean(), "positive and negative are swapped: the loss should grow when the NEGATIVE is close, max(0, d(a,p) − d(a,n) + α)."),
            ((d_ap - d_an + margin).mean(), "without max(0, ·) triplets that already satisfy the margin would keep pushing (and the loss can go negative): clamp at 0."),
            ((d_ap - d_an - margin).clamp_min(0).mean(), "the margin has the wrong sign: it is d(a,p) − d(a,n) + α (the negative must be farther by at least α)."),
            ((d_ap**2 - d_an**2 + margin).clamp_min(0).mean(), "you used squared distances; this check expects plain Euclidean distances d = ‖x − y‖ (sl.losses.triplet_loss(..., squared=True) is FaceNet's squared variant)."),
            ((d_ap - d_an + margin).clamp_min(0).sum(), "you summed over triplets: return the mean."),
        ]
        for cand, msg in variants:
            if _close(value, cand):
                return _report(False, msg)
        return _report(False, f"the loss is {float(value):.5f}, expected {float(ref):.5f} = mean of max(0, d(a,p) − d(a,n) + α).")
    return _report(True, f"correct: mean of max(0, d(a,p) − d(a,n) + α) = {float(value):.5f}.")


def batch_hard(fn: Callable) -> bool:
    """Check a learner's batch-hard miner ``fn(labels, dist) -> (a, p, n)``.

    Expected: for every anchor that has a positive and a negative, its
    farthest positive and its closest negative (Hermans et al. 2017).
    Derived in notebooks/03_triplet_loss.ipynb.
    """
    from . import mining

    g = torch.Generator().manual_seed(3)
    emb = torch.randn(10, 2, generator=g)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3])  # class 3 has a single member: no positive
    dist = mining.pairwise_distances(emb)
    out, exc = _call(fn, labels, dist)
    if exc is not None:
        return _raised(exc, "fn(labels, dist) with labels (10,) and dist (10, 10)")
    try:
        a, p, n = (torch.as_tensor(t).long().flatten() for t in out)
    except Exception:  # noqa: BLE001
        return _report(False, f"return three index tensors (a, p, n); got {type(out).__name__}.")
    if not (len(a) == len(p) == len(n)):
        return _report(False, f"a, p, n must have the same length (one triplet each); got {len(a)}, {len(p)}, {len(n)}.")
    ra, rp, rn = mining.batch_hard(labels, dist)
    if 9 in a.tolist():
        return _report(False, "anchor 9 is the only member of its class, so it has no positive: skip anchors without a positive (argmax over an empty row picks garbage).")
    if bool((a == p).any()):
        return _report(False, "some positives are the anchor itself (a == p): exclude the diagonal from the positive mask.")
    if bool((labels[a] != labels[p]).any()):
        return _report(False, "some 'positives' have another label than their anchor: the positive mask is labels[a] == labels[p].")
    if bool((labels[a] == labels[n]).any()):
        return _report(False, "some 'negatives' share the anchor's label: the negative mask is labels[a] != labels[n].")
    if sorted(a.tolist()) != sorted(ra.tolist()):
        return _report(False, f"expected one triplet for each of the anchors {ra.tolist()}; got anchors {sorted(a.tolist())}.")
    order = torch.argsort(a)
    a, p, n = a[order], p[order], n[order]
    if not _close(dist[a, p], dist[ra, rp]):
        if _close(dist[a, p], dist.masked_fill(~mining.label_masks(labels)[0], float("inf")).min(1).values[ra]):
            return _report(False, "you picked the CLOSEST positive (the easiest): batch-hard takes the FARTHEST positive, argmax of d(a, p).")
        return _report(False, "the positives are not the farthest ones of each anchor: use argmax of d over the positive mask (set the rest to −inf).")
    if not _close(dist[a, n], dist[ra, rn]):
        if _close(dist[a, n], dist.masked_fill(~mining.label_masks(labels)[1], float("-inf")).max(1).values[ra]):
            return _report(False, "you picked the FARTHEST negative (the easiest): batch-hard takes the CLOSEST negative, argmin of d(a, n).")
        return _report(False, "the negatives are not the closest ones of each anchor: use argmin of d over the negative mask (set the rest to +inf).")
    return _report(True, f"correct: {len(a)} triplets, farthest positive and closest negative for every anchor that has both.")


def count_triplets(fn: Callable) -> bool:
    """Check a learner's ``fn(labels) -> int``: the number of valid triplets (a, p, n) in a batch.

    Ordered: ``(a, p, n)`` and ``(p, a, n)`` are different triplets; ``a != p``.
    Derived in notebooks/03_triplet_loss.ipynb.
    """
    from . import mining

    cases = [torch.tensor([0, 0, 1, 1, 2, 2]), torch.tensor([0, 0, 0, 1, 2, 2, 2, 2]), torch.arange(10) % 3]
    for labels in cases:
        out, exc = _call(fn, labels)
        if exc is not None:
            return _raised(exc, "fn(labels) with a (B,) int64 tensor")
        want = mining.count_valid_triplets(labels)
        try:
            got = int(out)
        except Exception:  # noqa: BLE001
            return _report(False, f"return an integer; got {type(out).__name__}.")
        if got != want:
            same = mining._class_sizes(labels)  # (B,) size of each row's class
            with_self = int((same * (len(labels) - same)).sum())
            if got == with_self:
                return _report(False, f"for labels {labels.tolist()} you count {got}: you let the positive be the anchor itself; a != p, so P_a = (size of a's class) − 1.")
            if 2 * got == want:
                return _report(False, f"for labels {labels.tolist()} you count {got}, half of {want}: count ordered (a, p) pairs, (a, p, n) and (p, a, n) are different triplets.")
            return _report(False, f"for labels {labels.tolist()} you count {got}, expected {want} = Σ_a (positives of a) × (negatives of a).")
    return _report(True, "correct on all test batches: Σ_a P_a × N_a.")


# ----------------------------------------------------------------------------- lesson 05
def _lesson05_points():
    """Eight 2-D points in two classes, with neighbours that are easy to work out by hand."""
    emb = torch.tensor([[0.0, 0.0], [0.3, 0.0], [0.0, 0.5], [2.0, 0.0],
                        [0.9, 0.0], [2.0, 0.4], [3.0, 3.0], [0.0, -1.2]])  # (8, 2)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 1, 0])  # (8,)
    return emb, labels


def nearest_neighbours(fn: Callable) -> bool:
    """Check ``fn(emb, index, k) -> (k,) indices``: the k nearest rows of ``emb`` to row ``index``,
    nearest first, the point itself excluded (Euclidean distance in the embedding).

    Derived in notebooks/05_explore_embeddings.ipynb.
    """
    emb, _ = _lesson05_points()
    cases = [(0, 3, [1, 2, 4]), (3, 2, [5, 4]), (6, 1, [5])]
    for index, k, want in cases:
        out, exc = _call(fn, emb, index, k)
        if exc is not None:
            return _raised(exc, "fn(emb, index, k) with emb a (8, 2) float tensor")
        got = _int_list(out)
        if got is None:
            return _report(False, f"return k indices (a tensor or list of ints); got {type(out).__name__}.")
        if got == want:
            continue
        if got and got[0] == index:
            return _report(False, f"for point {index} you return {got}: it starts with the point itself (distance 0). Exclude it, e.g. set its distance to inf.")
        d = (emb - emb[index]).norm(dim=1)
        if got == torch.argsort(d, descending=True)[:k].tolist():
            return _report(False, f"for point {index} you return the {k} FARTHEST points {got}; sort ascending.")
        if len(got) != k:
            return _report(False, f"for point {index}, k={k} you return {len(got)} indices {got}; return exactly k.")
        return _report(False, f"for point {index}, k={k} you return {got}, expected {want} (nearest first).")
    return _report(True, "correct: nearest first, the point itself left out.")


def hardest_negative(fn: Callable) -> bool:
    """Check ``fn(emb, labels) -> (N,) indices``: for each point, the nearest point of ANOTHER class.

    Derived in notebooks/05_explore_embeddings.ipynb.
    """
    emb, labels = _lesson05_points()
    want = [4, 4, 4, 1, 1, 1, 2, 4]
    out, exc = _call(fn, emb, labels)
    if exc is not None:
        return _raised(exc, "fn(emb, labels) with (8, 2) and (8,) tensors")
    got = _int_list(out)
    if got is None:
        return _report(False, f"return one index per point; got {type(out).__name__}.")
    if got == want:
        return _report(True, "correct: the nearest point with a different label, for every point.")
    if len(got) != len(want):
        return _report(False, f"return one index per point ({len(want)}), got {len(got)}.")
    if got == list(range(len(want))):
        return _report(False, "every point is its own answer: mask the point itself and its own class.")
    d = torch.cdist(emb, emb)
    d.fill_diagonal_(float("inf"))
    if got == d.argmin(1).tolist():
        return _report(False, f"you return the nearest point of ANY class {got}; mask out the same-class points (labels[i] == labels[j]).")
    dn = torch.cdist(emb, emb).masked_fill(labels[:, None] == labels[None, :], float("-inf"))
    if got == dn.argmax(1).tolist():
        return _report(False, f"you return the FARTHEST negative {got}; the hardest negative is the nearest one.")
    return _report(False, f"you return {got}, expected {want}.")


def neighbour_overlap(fn: Callable) -> bool:
    """Check ``fn(emb, points2d, k) -> float``: the mean, over points, of the fraction of the k
    nearest neighbours in ``emb`` that are also among the k nearest in ``points2d`` (self excluded).

    Derived in notebooks/05_explore_embeddings.ipynb.
    """
    emb, _ = _lesson05_points()
    lifted = torch.cat([emb, torch.zeros(8, 1)], dim=1)  # same geometry in 3-D: overlap 1
    line = emb @ torch.tensor([1.0, 0.37])  # (8,) onto one direction: neighbours change, no ties
    squashed = torch.stack([line, torch.zeros(8)], dim=1)  # (8, 2)

    def ref(a, b, k):
        da, db = torch.cdist(a, a), torch.cdist(b, b)
        da.fill_diagonal_(float("inf"))
        db.fill_diagonal_(float("inf"))
        na, nb = da.argsort(dim=1, stable=True)[:, :k], db.argsort(dim=1, stable=True)[:, :k]
        return sum(len(set(x.tolist()) & set(y.tolist())) for x, y in zip(na, nb)) / (k * len(a))

    for a, b, k in [(lifted, emb, 2), (emb, squashed, 2), (emb, squashed, 3)]:
        out, exc = _call(fn, a, b, k)
        if exc is not None:
            return _raised(exc, "fn(emb, points2d, k)")
        try:
            got = float(out)
        except Exception:  # noqa: BLE001
            return _report(False, f"return one number between 0 and 1; got {type(out).__name__}.")
        want = ref(a, b, k)
        if abs(got - want) < 1e-6:
            continue
        if abs(got - want * k) < 1e-6:
            return _report(False, f"you return {got:.3f} = {want:.3f} × k: divide the shared count by k (and average over points).")
        return _report(False, f"with k={k} you return {got:.3f}, expected {want:.3f}. Did you leave each point in its own neighbour list?")
    return _report(True, "correct: 1.0 when the 2-D map keeps every neighbourhood, lower when it tears them.")


__all__ += ["nearest_neighbours", "hardest_negative", "neighbour_overlap"]

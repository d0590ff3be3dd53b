"""Self-checks for the lessons' exercises: each runs a learner's function on small cases with known
answers and prints ✅, or ❌ with *what* is wrong (a swapped label, a missing ½...), not just "wrong".
Each returns True or False, so a notebook can ``assert`` it."""
from __future__ import annotations

from typing import Callable

import torch

from .distances import pair_distance, pairwise_distances

__all__ = ["contrastive_loss", "triplet_loss", "batch_hard", "count_triplets", "nearest_neighbours",
           "hardest_negative", "neighbour_overlap"]


def _report(ok: bool, message: str) -> bool:
    print(("✅ " if ok else "❌ ") + message)
    return ok


def _close(x, y, tol: float = 1e-4) -> bool:
    try:
        x, y = (torch.as_tensor(t).detach().double() for t in (x, y))
        return x.shape == y.shape and bool(torch.allclose(x, y, rtol=tol, atol=tol))
    except Exception:  # noqa: BLE001 - any oddity in the learner's output is "not close"
        return False


def _run(fn: Callable, args: tuple, call: str):
    """``(output, None)``, or ``(None, message)`` when the learner's function raised."""
    try:
        return fn(*args), None
    except NotImplementedError as exc:
        return None, (f"your function raised NotImplementedError: {exc}: it is still the exercise stub. Write your "
                      "code in its place under # YOUR CODE HERE, run that cell, then run this check again.")
    except Exception as exc:  # noqa: BLE001
        return None, f"your function raised {type(exc).__name__}: {exc}. It is called as {call}."


def _mistake(out, want, mistakes, otherwise: str) -> str | None:
    """None when ``out`` matches ``want``; else the message of the first (value, message) mistake it matches."""
    if _close(out, want):
        return None
    return next((msg for value, msg in mistakes if _close(out, value)), otherwise)


def _not_a_loss(out, what: str) -> str | None:
    """What is wrong with a loss that should be a 0-dim torch tensor, or None."""
    if isinstance(out, torch.Tensor):
        return None if out.dim() == 0 else (f"return one number (a 0-dim tensor), the mean over the {what}; "
                                            f"got shape {tuple(out.shape)}. Did you forget .mean()?")
    return (f"return a torch tensor, not a {type(out).__name__}: a number from .item(), float() or numpy is cut off "
            "from autograd, so loss.backward() cannot train.")


def _not_indices(out) -> str | None:
    """A message when ``out`` (or a tensor of the tuple ``out``) holds floats or booleans, not indices; else None."""
    for t in out if isinstance(out, tuple) else (out,):
        if isinstance(t, torch.Tensor) and (t.is_floating_point() or t.dtype == torch.bool):
            return f"you return {t.dtype} values: return INDICES (ints from argmin, argsort), not distances or masks."


def _grads_differ(out, inputs, ref) -> bool:
    """True when ``out``'s gradients w.r.t. ``inputs`` differ from ``ref``'s (a detached or .item()-ed distance)."""
    want = torch.autograd.grad(ref, inputs, retain_graph=True)
    got = torch.autograd.grad(out, inputs, allow_unused=True, retain_graph=True) if out.requires_grad else [None]
    return not all(g is not None and _close(g, w) for g, w in zip(got, want))


def _hadsell(d, y, m, half=0.5, clamp=True, sq_hinge=True, sq_dist=True):
    """Mean of (1 − Y)·½·D² + Y·½·max(0, m − D)²; the flags build the usual mistakes."""
    hinge = (m - d).clamp_min(0) if clamp else m - d
    return ((1 - y) * half * (d**2 if sq_dist else d) + y * half * (hinge**2 if sq_hinge else hinge)).mean()


def contrastive_loss(fn: Callable, margin: float = 1.5) -> bool:
    """Check ``fn(emb1, emb2, dissimilar, margin) -> mean loss`` (Hadsell et al. 2006; ``dissimilar`` = 1 is the
    paper's Y): values at two margins, gradients, finite at D = 0. Derived in notebooks/02_contrastive_loss.ipynb."""
    angle = torch.tensor([0.0, 0.7, 1.9, 2.6, 4.0, 5.2])
    d = torch.tensor([0.5, 1.0, 0.3, 1.2, 2.5, 0.8])  # the pair distances, by construction
    emb1 = 0.7 * torch.stack([angle.cos(), angle.sin()], dim=1)  # (6, 2)
    emb2 = emb1 + d[:, None] * torch.stack([(angle + 1).cos(), (angle + 1).sin()], dim=1)  # (6, 2)
    y = torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0, 0.0])  # Y = 1: dissimilar
    call = "fn(emb1, emb2, dissimilar, margin) with (6, 2) float tensors, a pair per row (D: norm on dim=1)"
    other = 1.0 if margin != 1.0 else 1.5  # a second margin catches a hard-coded one
    for m in (margin, other):
        e1, e2 = emb1.clone().requires_grad_(True), emb2.clone().requires_grad_(True)
        out, error = _run(fn, (e1, e2, y, m), call)
        ref = _hadsell(d, y, m)
        error = error or _not_a_loss(out, "pairs") or _mistake(out, ref, [
            (-ref, "your loss is negative, the wrong sign: it is a sum of squares, which training makes small."),
            (_hadsell(d, 1 - y, m), "the label convention is inverted: in Hadsell et al. Y = 0 means SIMILAR (pull "
             "together) and Y = 1 DISSIMILAR (push apart up to the margin). Swap the two terms."),
            (_hadsell(d, y, m, half=1.0), "your loss is twice the expected value: put a factor ½ on both terms."),
            (_hadsell(d, y, m, half=0.25), "your loss is half the expected value: use ½ once per term, not twice."),
            (_hadsell(d, y, m, clamp=False), "dissimilar pairs beyond the margin must cost nothing: clamp the hinge, "
             "max(0, m − D), before squaring."),
            (_hadsell(d, y, m, sq_hinge=False, sq_dist=False), "square both terms: ½·D² and ½·max(0, m − D)²."),
            (_hadsell(d, y, m, sq_hinge=False), "square the hinge: the dissimilar term is ½·max(0, m − D)²."),
            (_hadsell(d, y, m, sq_dist=False), "square the distance: the similar term is ½·D², not ½·D."),
            (ref * len(d), "you summed over pairs: return the mean (divide by the number of pairs)."),
            (_hadsell(d, y, m, half=1.0) * len(d), "two mistakes: you summed over pairs and left out the ½."),
            (_hadsell(d, 1 - y, m) * len(d), "two mistakes: the labels are inverted (Y = 0 is SIMILAR) and you summed."),
            *[(_hadsell(d, y, hard), f"your function ignores the margin argument: called with margin={m} it uses "
               f"m = {hard}.") for hard in sorted({margin, other, 0.5, 1.0, 1.5, 2.0} - {m})],
        ], f"with margin={m} the loss is {float(out.detach()):.5f}, expected {float(ref):.5f}: check D (Euclidean) and "
           "(1 − Y)·½·D² + Y·½·max(0, m − D)².")
        if error is not None:
            return _report(False, error)
        if _grads_differ(out, (e1, e2), _hadsell(pair_distance(e1, e2), y, m)):
            return _report(False, "the values are right but the gradients are not: the distance is detached from "
                           "emb1 and emb2 (.detach(), .item(), numpy or torch.no_grad()). Use torch operations only.")
    e1 = torch.tensor([[0.3, -0.4], [1.0, 2.0]], requires_grad=True)  # two pairs at distance 0
    e2 = e1.detach().clone().requires_grad_(True)
    out, error = _run(fn, (e1, e2, torch.tensor([0.0, 1.0]), margin), call)
    grads = None if error else _run(lambda: torch.autograd.grad(out, (e1, e2), allow_unused=True), (), "")[0]
    if grads is None or any(g is None or not bool(torch.isfinite(g).all()) for g in grads):
        return _report(False, error or "values are right, but the gradient is NaN when two embeddings are identical: "
                       "d sqrt(x)/dx is infinite at 0. Use a safe distance: sl.distances.safe_sqrt(squared distance).")
    return _report(True, f"correct: (1 − Y)·½·D² + Y·½·max(0, m − D)², mean over pairs = "
                   f"{float(_hadsell(d, y, margin)):.5f}, finite gradients at D = 0.")


def triplet_loss(fn: Callable, margin: float = 0.3) -> bool:
    """Check ``fn(anchor, positive, negative, margin) -> mean loss`` (FaceNet, plain Euclidean distances) at two
    margins, and its gradients. Derived in notebooks/03_triplet_loss.ipynb."""
    angle = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0])
    unit = lambda t: torch.stack([t.cos(), t.sin()], dim=1)  # noqa: E731 - (5,) angles -> (5, 2) unit vectors
    anchor = unit(angle)
    positive = anchor + 0.4 * unit(angle + 2)
    negative = anchor + torch.tensor([0.2, 0.5, 0.9, 1.6, 0.35])[:, None] * unit(angle - 1)
    d_ap, d_an = pair_distance(anchor, positive), pair_distance(anchor, negative)  # (5,) each
    hinge = lambda ap, an, m: (ap - an + m).clamp_min(0).mean()  # noqa: E731 - FaceNet's loss from two distances
    margins = (margin, 0.1 if margin != 0.1 else 0.3)  # a second margin catches a hard-coded one
    each = lambda f: torch.stack([torch.as_tensor(f(m)).float() for m in margins])  # noqa: E731 - (2,) losses
    outs = []
    for m in margins:
        a, p, n = (t.clone().requires_grad_(True) for t in (anchor, positive, negative))
        out, error = _run(fn, (a, p, n, m), "fn(anchor, positive, negative, margin), (5, 2) each, one row per triplet")
        if error or _not_a_loss(out, "triplets"):
            return _report(False, error or _not_a_loss(out, "triplets"))
        outs.append(out)
    got, ref = torch.stack([o.detach().float() for o in outs]), each(lambda m: hinge(d_ap, d_an, m))
    error = _mistake(got, ref, [
        (each(lambda m: hinge(d_an, d_ap, m)), "positive and negative are swapped: the loss should grow when "
         "the NEGATIVE is close, max(0, d(a,p) − d(a,n) + α)."),
        (each(lambda m: (d_ap - d_an + m).mean()), "without max(0, ·) triplets that already satisfy the margin keep "
         "pushing (and the loss can go negative): clamp at 0."),
        (each(lambda m: hinge(d_ap, d_an, -m)), "the margin has the wrong sign: it is d(a,p) − d(a,n) + α."),
        (each(lambda m: hinge(d_ap**2, d_an**2, m)), "you used squared distances; this check expects plain "
         "Euclidean distances d = ‖x − y‖ (FaceNet's squared variant is triplet_loss(..., squared=True))."),
        (ref * len(d_ap), "you summed over triplets: return the mean."),
        (each(lambda m: hinge((anchor - positive).norm(dim=0), (anchor - negative).norm(dim=0), m)), "you took "
         "the norm over the wrong axis: one row per triplet, so d(a,p) = ‖a − p‖ over dim=1."),
        *[(each(lambda m: hinge(d_ap, d_an, hard)), f"your function ignores the margin argument: it always uses "
           f"α = {hard}.") for hard in (0.0, 0.1, 0.2, 0.3, 0.5, 1.0)],
    ], f"the loss is {float(got[0]):.5f} at margin {margins[0]} and {float(got[1]):.5f} at {margins[1]}; expected "
       f"{float(ref[0]):.5f} and {float(ref[1]):.5f}, the mean of max(0, d(a,p) − d(a,n) + α).")
    if error is None and _grads_differ(outs[-1], (a, p, n), hinge(pair_distance(a, p), pair_distance(a, n), m)):
        error = ("the values are right but the gradients are not: the distances are detached from the embeddings "
                 "(.detach(), .item(), numpy or torch.no_grad()). Use torch operations only.")
    return _report(error is None, error or f"correct: mean of max(0, d(a,p) − d(a,n) + α) = {float(got[0]):.5f}.")


def batch_hard(fn: Callable) -> bool:
    """Check a batch-hard miner ``fn(labels, dist) -> (a, p, n)``: for every anchor with a positive and a negative,
    its farthest positive and closest negative (Hermans et al. 2017). Derived in notebooks/03_triplet_loss.ipynb."""
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3])  # class 3 has a single member: no positive
    dist = pairwise_distances(torch.randn(10, 2, generator=torch.Generator().manual_seed(3)))  # (10, 10)
    same = labels[:, None] == labels[None, :]
    pos, neg = same & ~torch.eye(10, dtype=torch.bool), ~same  # (10, 10) each
    out, error = _run(fn, (labels, dist), "fn(labels, dist) with labels (10,) and dist (10, 10)")
    if error or _not_indices(out):
        return _report(False, error or _not_indices(out))
    try:
        a, p, n = (torch.as_tensor(t).long().flatten() for t in out)
        if not len(a) == len(p) == len(n) or not all(bool(((t >= 0) & (t < 10)).all()) for t in (a, p, n)):
            raise ValueError
    except Exception:  # noqa: BLE001
        return _report(False, error or "return three index tensors (a, p, n) of one length, with indices 0..9.")
    far_p, close_p = dist.masked_fill(~pos, -float("inf")).amax(1), dist.masked_fill(~pos, float("inf")).amin(1)
    close_n, far_n = dist.masked_fill(~neg, float("inf")).amin(1), dist.masked_fill(~neg, -float("inf")).amax(1)
    want_a = (pos.any(1) & neg.any(1)).nonzero().flatten().tolist()  # anchors with a positive and a negative
    for bad, msg in [
        (9 in a.tolist(), "anchor 9 is alone in its class, so it has no positive: skip anchors without one."),
        ((a == p).any(), "some positives are the anchor itself (a == p): exclude the diagonal from the mask."),
        ((labels[a] != labels[p]).any(), "some 'positives' have another label: the mask is labels[a] == labels[p]."),
        ((labels[a] == labels[n]).any(), "some 'negatives' share the anchor's label: use labels[a] != labels[n]."),
        (sorted(a.tolist()) != want_a, f"expected one triplet per anchor {want_a}; got anchors {sorted(a.tolist())}."),
    ]:
        if bad:
            return _report(False, msg)
    error = _mistake(dist[a, p], far_p[a], [(close_p[a], "you picked the CLOSEST positive (the easiest): batch-hard "
                                                         "takes the FARTHEST, argmax of d(a, p).")],
                     "the positives are not the farthest of each anchor: argmax of d(a, p) over the positive mask.")
    error = error or _mistake(dist[a, n], close_n[a], [(far_n[a], "you picked the FARTHEST negative (the easiest): "
                                                        "batch-hard takes the CLOSEST, argmin of d(a, n).")],
                              "the negatives are not the closest of each anchor: argmin of d(a, n) over the mask.")
    return _report(error is None, error or f"correct: {len(a)} triplets, farthest positive and closest negative "
                   "for every anchor that has both.")


def count_triplets(fn: Callable) -> bool:
    """Check ``fn(labels) -> int``: the number of valid triplets (a, p, n) in a batch, with a != p, ordered:
    (a, p, n) and (p, a, n) are two triplets. Derived in notebooks/03_triplet_loss.ipynb."""
    for labels in (torch.tensor([0, 0, 1, 1, 2, 2]), torch.tensor([0, 0, 0, 1, 2, 2, 2, 2]), torch.arange(10) % 3):
        out, error = _run(fn, (labels,), "fn(labels) with a (B,) int64 tensor")
        size = (labels[:, None] == labels[None, :]).sum(1)  # (B,) size of each anchor's class
        want = int(((size - 1) * (len(labels) - size)).sum())  # Σ_a P_a × N_a
        error = error or _mistake(out, want, [
            (int((size * (len(labels) - size)).sum()), f"for labels {labels.tolist()} you let the positive be the "
             "anchor itself; a != p, so P_a = (size of a's class) − 1."),
            (want // 2, f"for labels {labels.tolist()} you count half of {want}: count ordered (a, p) pairs, "
             "(a, p, n) and (p, a, n) are different triplets."),
            (int(((size - 1) * (len(labels) - size - 1)).sum()), f"for labels {labels.tolist()} you took the anchor "
             "out of the negatives too: it has the anchor's label, so N_a = B − (size of a's class) already."),
            (len(labels) * (len(labels) - 1) * (len(labels) - 2) // 6, f"for labels {labels.tolist()} you count every "
             "set of 3 points: a triplet needs labels[a] == labels[p] != labels[n], and its order matters."),
        ], f"for labels {labels.tolist()} you return {out!r}, expected {want} = Σ_a (positives of a) × (negatives "
           "of a).")
        if error is not None:
            return _report(False, error)
    return _report(True, "correct on all test batches: Σ_a P_a × N_a.")


# lesson 05: eight 2-D points (8, 2) in two classes (8,), with neighbours easy to work out by hand
_EMB = torch.tensor([[0.0, 0.0], [0.3, 0.0], [0.0, 0.5], [2.0, 0.0], [0.9, 0.0], [2.0, 0.4], [3.0, 3.0], [0.0, -1.2]])
_LABELS = torch.tensor([0, 0, 0, 1, 1, 1, 1, 0])


def nearest_neighbours(fn: Callable) -> bool:
    """Check ``fn(emb, index, k) -> (k,) indices``: the k rows of ``emb`` nearest to row ``index``, nearest
    first, the point itself excluded. Derived in notebooks/05_explore_embeddings.ipynb."""
    emb = _EMB.clone()
    for index, k, want in [(0, 3, [1, 2, 4]), (3, 2, [5, 4]), (6, 1, [5])]:
        out, error = _run(fn, (emb, index, k), "fn(emb, index, k) with emb an (8, 2) float tensor, one row per point")
        d = pair_distance(emb, emb[index].expand_as(emb))  # (8,)
        error = error or _not_indices(out) or _mistake(out, want, [
            ([index] + want[:-1], f"for point {index} your list starts with the point itself (distance 0): exclude "
             "it, e.g. set its distance to inf."),
            (d.argsort(descending=True)[:k].tolist(), f"for point {index} you return the {k} FARTHEST, not nearest."),
            (sorted(want), f"for point {index} your indices are in index order: sort them by distance, nearest first."),
            ([w + 1 for w in want], f"for point {index} every index is one too large: rows are counted from 0."),
        ], f"for point {index}, k={k} you return {out!r}, expected {want}: {k} indices, nearest first.")
        if error is not None:
            return _report(False, error)
    return _report(True, "correct: nearest first, the point itself left out.")


def hardest_negative(fn: Callable) -> bool:
    """Check ``fn(emb, labels) -> (N,) indices``: for each point, the nearest point of ANOTHER class.
    Derived in notebooks/05_explore_embeddings.ipynb."""
    emb, labels = _EMB.clone(), _LABELS.clone()
    dist, same = pairwise_distances(emb), labels[:, None] == labels[None, :]  # (8, 8) each
    out, error = _run(fn, (emb, labels), "fn(emb, labels) with (8, 2) and (8,) tensors")
    error = error or _not_indices(out) or _mistake(out, [4, 4, 4, 1, 1, 1, 2, 4], [
        (list(range(8)), "every point is its own answer: mask the point itself and its own class."),
        (dist.fill_diagonal_(float("inf")).argmin(1).tolist(), "you return the nearest point of ANY class: mask out "
         "the same-class points (labels[i] == labels[j])."),
        (dist.masked_fill(~same, float("inf")).argmin(1).tolist(), "you return the nearest point of the SAME class; "
         "a negative has ANOTHER label: mask the points with labels[i] == labels[j]."),
        ([5, 5, 5, 2, 2, 2, 3, 5], "every index is one too large: rows are counted from 0."),
        (dist.masked_fill(same, -float("inf")).argmax(1).tolist(), "you return the FARTHEST negative; the hardest "
         "negative is the nearest one."),
    ], f"you return {out!r}, expected [4, 4, 4, 1, 1, 1, 2, 4]: one index per point.")
    return _report(error is None, error or "correct: the nearest point with a different label, for every point.")


def neighbour_overlap(fn: Callable) -> bool:
    """Check ``fn(emb, points2d, k) -> float``: the mean over points of the fraction of the k nearest neighbours
    in ``emb`` also among the k nearest in ``points2d``. Derived in notebooks/05_explore_embeddings.ipynb."""
    emb = _EMB.clone()
    lifted = torch.cat([emb, torch.zeros(8, 1)], dim=1)  # the same geometry in 3-D: overlap 1
    squashed = torch.stack([emb @ torch.tensor([1.0, 0.37]), torch.zeros(8)], dim=1)  # onto one line, no ties
    for a, b, k in [(lifted, emb, 2), (emb, squashed, 2), (emb, squashed, 3)]:
        out, error = _run(fn, (a, b, k), "fn(emb, points2d, k)")
        def shared(diagonal):  # (8,) neighbours shared by the two lists of each point
            na, nb = (pairwise_distances(x).fill_diagonal_(diagonal).argsort(dim=1, stable=True)[:, :k] for x in (a, b))
            return torch.tensor([len(set(x.tolist()) & set(y.tolist())) for x, y in zip(na, nb)], dtype=torch.float64)
        n, want = len(a), shared(float("inf")).mean() / k
        error = error or _mistake(out, want, [
            (want * k, f"you return k × {want:.3f}: divide the shared count by k (and average over points)."),
            (shared(float("inf")) / k, "you return one fraction per point: average them into one number."),
            (want * n, f"you return {n} × {want:.3f}: you summed over the {n} points; take the mean."),
            (want * k * n, "you return the count of shared neighbours: divide it by k and by the number of points."),
            ((shared(float("inf")) / (2 * k - shared(float("inf")))).mean(), "you divided by the union of the two "
             "lists (Jaccard); divide the shared count by k."),
            (shared(0.0).mean() / k, "each point is in its own neighbour lists: leave it out (distance inf)."),
        ], f"with k={k} you return {out!r}, expected {want:.3f}, the mean over points of (shared neighbours) / k.")
        if error is not None:
            return _report(False, error)
    return _report(True, "correct: 1.0 when the 2-D map keeps every neighbourhood, lower when it tears them.")

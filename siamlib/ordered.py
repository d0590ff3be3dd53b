"""Ordered pairs: "does the first item beat the second?", and a head that can say so.

* :func:`check_relation` validates a *tournament* relation matrix ``R`` (C, C):
  ``R[a, b] = 1`` if class ``a`` beats class ``b``, else 0; zero diagonal
  (same-class pairs are ties and are never drawn) and exactly one winner for
  every pair of different classes (``R + R.T`` is 1 off the diagonal).
* :func:`ordered_pairs` draws seeded, vectorised index pairs ``(i, j)`` of
  images of *different* classes with the label ``first_wins = R[y_i, y_j]``.
* :class:`AntisymmetricHead` scores two embeddings by ``u_a^T A u_b`` with
  ``A = W - W^T`` (Balduzzi et al. 2018's disc game), so
  ``sigmoid(logit(a, b)) + sigmoid(logit(b, a)) == 1`` by construction.
* :func:`check_bt_as_disc_game`, :func:`check_bt_ceiling` and :func:`check_head_relation`
  are the self-checks behind the lesson's exercises: they print what is wrong and return False.

Derived in notebooks/08_ordered_and_intransitive_pairs.ipynb.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch
from torch import nn

from .check import _report, _run  # the same report and "your function raised" message as every self-check

__all__ = ["check_relation", "ordered_pairs", "AntisymmetricHead", "check_bt_as_disc_game", "check_bt_ceiling",
           "check_head_relation"]


# --------------------------------------------------------------------- relations
def check_relation(relation, n_classes: int | None = None) -> torch.Tensor:
    """Validate a tournament relation and return it as a ``(C, C)`` int64 tensor.

    Convention: ``relation[a, b] == 1`` iff class ``a`` beats class ``b``. The
    diagonal is 0 (a class does not play itself) and for ``a != b`` exactly
    one of ``relation[a, b]``, ``relation[b, a]`` is 1. ``n_classes``, if
    given, must equal C. Raises ValueError naming the problem otherwise.

    Derived in notebooks/08_ordered_and_intransitive_pairs.ipynb.
    """
    R = torch.as_tensor(relation)
    if R.dim() != 2 or R.shape[0] != R.shape[1]:
        raise ValueError(
            f"relation must be a square (C, C) matrix with relation[a, b] = 1 if class a beats class b; "
            f"got shape {tuple(R.shape)}. Build it as a C x C array of 0/1."
        )
    C = R.shape[0]
    if C < 2:
        raise ValueError(f"relation has {C} class(es); an ordered pair needs at least 2 classes.")
    if n_classes is not None and C != n_classes:
        raise ValueError(
            f"relation is {C} x {C} but there are {n_classes} classes (labels 0..{n_classes - 1}); "
            f"give one row and one column per class, or relabel the classes to 0..{C - 1}."
        )
    if R.is_floating_point() and not bool(torch.isfinite(R).all()):
        raise ValueError("relation contains NaN or inf; use 0/1 entries (relation[a, b] = 1 if a beats b).")
    if not bool(((R == 0) | (R == 1)).all()):
        raise ValueError(
            f"relation must hold only 0 and 1 (relation[a, b] = 1 if class a beats class b); "
            f"got values {sorted(set(torch.unique(R).tolist()))}."
        )
    R = R.to(torch.int64)
    if bool(R.diagonal().any()):
        bad = torch.nonzero(R.diagonal()).flatten().tolist()
        raise ValueError(
            f"relation has 1 on the diagonal for classes {bad}: a class cannot beat itself "
            "(same-class pairs are ties and are never drawn). Set the diagonal to 0."
        )
    off = ~torch.eye(C, dtype=torch.bool)
    total = R + R.T  # (C, C): 1 off the diagonal for a tournament
    if not bool((total[off] == 1).all()):
        a, b = [int(v) for v in torch.nonzero((total != 1) & off)[0]]
        kind = "both win" if int(total[a, b]) == 2 else "neither wins (a tie)"
        raise ValueError(
            f"relation is not a tournament: for classes {a} and {b}, {kind} "
            f"(relation[{a},{b}] = {int(R[a, b])}, relation[{b},{a}] = {int(R[b, a])}). "
            "relation + relation.T must be 1 off the diagonal: exactly one class of each pair wins. "
            "Ties between different classes are not supported; drop those classes or break the tie."
        )
    return R


def ordered_pairs(labels, relation, n_pairs: int, seed: int = 0):
    """Draw ``n_pairs`` ordered image pairs of different classes with "first wins" labels.

    The ordered class pair ``(a, b)``, ``a != b``, is uniform over the
    ``C (C - 1)`` possibilities (so every match-up is equally frequent and
    both orders of it too); then one image of class ``a`` and one of class
    ``b`` are drawn uniformly. Vectorised and seeded.

    labels: (N,) int class ids in 0..C-1; relation: (C, C), see :func:`check_relation`.
    Returns ``i, j, first_wins``: three (n_pairs,) int64 tensors, ``first_wins = relation[labels[i], labels[j]]``.

    Derived in notebooks/08_ordered_and_intransitive_pairs.ipynb.
    """
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.numel() == 0:
        raise ValueError(f"labels must be a non-empty 1-D tensor of class ids; got shape {tuple(labels.shape)}.")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer class ids; got dtype {labels.dtype}.")
    labels = labels.to(torch.int64)
    R = check_relation(relation)
    C = R.shape[0]
    if int(labels.min()) < 0 or int(labels.max()) >= C:
        raise ValueError(
            f"labels run from {int(labels.min())} to {int(labels.max())} but relation is {C} x {C} "
            f"(classes 0..{C - 1}); relabel the images to 0..{C - 1} or give a relation with one row per class."
        )
    counts = torch.bincount(labels, minlength=C)  # (C,)
    if bool((counts == 0).any()):
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(f"classes {missing} of the relation have no image in labels; pass images of every class.")
    if not isinstance(n_pairs, int) or n_pairs < 1:
        raise ValueError(f"n_pairs must be a positive int; got {n_pairs!r}.")

    g = torch.Generator().manual_seed(seed)
    order = torch.argsort(labels, stable=True)  # (N,) image ids grouped by class
    start = torch.cumsum(counts, 0) - counts  # (C,) first position of each class in `order`
    a = torch.randint(0, C, (n_pairs,), generator=g)  # (P,) first class
    b = (a + torch.randint(1, C, (n_pairs,), generator=g)) % C  # (P,) a different class, uniform
    pick_a = (torch.rand(n_pairs, generator=g) * counts[a]).long()  # (P,) rank within class a
    pick_b = (torch.rand(n_pairs, generator=g) * counts[b]).long()  # (P,)
    i = order[start[a] + torch.minimum(pick_a, counts[a] - 1)]  # (P,)
    j = order[start[b] + torch.minimum(pick_b, counts[b] - 1)]  # (P,)
    return i, j, R[a, b]


# --------------------------------------------------------------------- the head
class AntisymmetricHead(nn.Module):
    """``logit(a, b) = u_a^T A u_b`` with ``A = W - W^T``: the disc-game head.

    ``A^T = -A`` makes ``logit(b, a) = -logit(a, b)``, so with
    ``f = sigmoid(logit)`` we get ``f(a, b) + f(b, a) = 1`` for any weights.
    The logit is computed as ``u_a^T W u_b - u_b^T W u_a`` (the same number),
    whose two terms swap when a and b swap: the sign flip is exact in floating
    point, not only up to rounding. ``f(a, a) = 1/2``.

    Derived in notebooks/08_ordered_and_intransitive_pairs.ipynb.
    """

    def __init__(self, dim: int, init_scale: float = 1.0, seed: int | None = None):
        super().__init__()
        if not isinstance(dim, int) or dim < 2:
            raise ValueError(f"dim must be an int >= 2 (a 1-D skew-symmetric matrix is 0); got {dim!r}.")
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        self.W = nn.Parameter(init_scale * torch.randn(dim, dim, generator=g))  # (D, D), unconstrained
        self.dim = dim

    @property
    def A(self) -> torch.Tensor:
        """The skew-symmetric matrix ``W - W^T`` (D, D)."""
        return self.W - self.W.T

    def forward(self, u_a: torch.Tensor, u_b: torch.Tensor) -> torch.Tensor:
        if u_a.dim() != 2 or u_a.shape != u_b.shape or u_a.shape[1] != self.dim:
            raise ValueError(
                f"AntisymmetricHead(dim={self.dim}) expects two (B, {self.dim}) embeddings; "
                f"got {tuple(u_a.shape)} and {tuple(u_b.shape)}."
            )
        ab = ((u_a @ self.W) * u_b).sum(dim=1)  # (B,)  u_a^T W u_b
        ba = ((u_b @ self.W) * u_a).sum(dim=1)  # (B,)  u_b^T W u_a
        return ab - ba  # (B,) = u_a^T (W - W^T) u_b


# --------------------------------------------------------------------- exercise self-checks
def check_bt_as_disc_game(fn: Callable) -> bool:
    """Self-check for the exercise "Bradley-Terry is a disc game".

    ``fn(s)`` gets one score per item, ``s`` (N,), and must return ``(u, A)``:
    one 2-D vector per item ``u`` (N, 2) and a skew-symmetric ``A`` (2, 2) with
    ``u_a^T A u_b = s_a - s_b`` for every pair, so the antisymmetric head
    reproduces Bradley-Terry's logit exactly. Prints what is wrong and returns
    False, or prints a tick and returns True.

    Derived in notebooks/08_ordered_and_intransitive_pairs.ipynb.
    """
    s = torch.tensor([0.0, 1.5, -2.0, 0.25, 3.0, -0.75], dtype=torch.float64)  # (6,) scores
    out, error = _run(fn, (s.clone(),), "fn(s) with s a (6,) float64 tensor of scores")
    if error:
        return _report(False, error)
    try:
        u, A = (torch.as_tensor(t).detach().to(torch.float64) for t in out)
    except Exception:  # noqa: BLE001 - whatever came back, it is not (u, A)
        return _report(False, "return two tensors (u, A): u (6, 2), one 2-D vector per item, and A (2, 2).")
    if tuple(u.shape) != (6, 2) or tuple(A.shape) != (2, 2):
        return _report(False, f"expected u of shape (6, 2), one row per item, and A of shape (2, 2); "
                              f"got {tuple(u.shape)} and {tuple(A.shape)}.")
    if not torch.allclose(A.T, -A):
        return _report(False, f"A = {A.tolist()} is not skew-symmetric: A^T must be -A (so its diagonal is 0), "
                              "otherwise the head is not antisymmetric.")
    logits, want = u @ A @ u.T, s[:, None] - s[None, :]  # (6, 6) each
    if torch.allclose(logits, want):
        return _report(True, "u_a^T A u_b = s_a - s_b for every pair: Bradley-Terry is a disc game whose vectors "
                             "all lie on one line.")
    if torch.allclose(logits, -want):
        hint = "the sign is flipped, your logits are s_b - s_a: a with the higher score must win (flip A's sign)"
    elif torch.allclose(logits, torch.zeros_like(logits)):
        hint = ("every logit is 0: in 2-D u_a^T A u_b = alpha (x_a y_b - y_a x_b), which vanishes when the two "
                "coordinates of u are proportional. Put the score in one coordinate and a constant 1 in the other")
    elif torch.allclose(logits, (scale := float((logits * want).sum() / (want * want).sum())) * want):
        hint = f"your logits are {scale:.3g} x (s_a - s_b): scale A (or u) so the factor is 1"
    else:
        hint = (f"u_a^T A u_b should equal s_a - s_b; for items 1 and 2 it is {float(logits[1, 2]):.4g}, expected "
                f"{float(want[1, 2]):.4g}")
    return _report(False, hint + ".")


def _reference_bt_ceiling(R: torch.Tensor) -> float:
    C = R.shape[0]
    n_unordered = C * (C - 1) // 2
    best = 0
    for order in itertools.permutations(range(C)):  # order[0] gets the highest score
        rank = {c: k for k, c in enumerate(order)}
        agree = sum(int(R[a, b]) for a in range(C) for b in range(C) if a != b and rank[a] < rank[b])
        best = max(best, agree)
    return best / n_unordered


def check_bt_ceiling(fn: Callable) -> bool:
    """Self-check for the exercise "compute the Bradley-Terry ceiling".

    ``fn(relation)`` gets a (C, C) tournament (``relation[a, b] = 1`` if a
    beats b) and must return the best accuracy that ANY score ``s`` (one
    number per class, predict "a wins" iff ``s_a > s_b``) reaches when every
    match-up of two different classes is equally frequent. Tried on a
    transitive tournament, rock-paper-scissors, and larger tournaments.

    Derived in notebooks/08_ordered_and_intransitive_pairs.ipynb.
    """
    rps = torch.tensor([[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    larger = (torch.arange(4)[:, None] > torch.arange(4)[None, :]).long()  # 3 > 2 > 1 > 0
    g = torch.Generator().manual_seed(11)
    cases = [("rock-paper-scissors", rps), ("the transitive tournament 3 > 2 > 1 > 0", larger)]
    for C in (5, 6):
        upper = torch.triu(torch.randint(0, 2, (C, C), generator=g), diagonal=1)
        cases.append((f"a random tournament of {C}", upper + (1 - upper).triu(1).T))
    wants, gots = [], []
    for name, R in cases:
        check_relation(R)
        got, error = _run(lambda relation: float(fn(relation)), (R.clone(),), f"fn(relation) on {name}")
        if error:
            return _report(False, error)
        gots.append(got)
        wants.append(_reference_bt_ceiling(R))
    wrong = [k for k, (w, v) in enumerate(zip(wants, gots)) if not math.isclose(v, w, abs_tol=1e-9)]
    if not wrong:
        return _report(True, f"your ceiling is right on all {len(cases)} tournaments "
                             f"(rock-paper-scissors: {wants[0]:.4f}).")

    def every(rule):  # does one simple mistake explain every answer?
        return all(math.isclose(v, rule(R.shape[0], w), abs_tol=1e-9) for (_, R), w, v in zip(cases, wants, gots))

    if every(lambda C, w: 0.5):
        hint = "0.5 is what equal scores (or the likelihood optimum on a cycle) give; the ceiling is the best strict order"
    elif every(lambda C, w: w * (C * (C - 1) // 2) / (C * C)):
        hint = "you divided by C^2: same-class pairs are never drawn; divide by the C(C-1)/2 match-ups"
    elif every(lambda C, w: w / 2):
        hint = "you divided by the C(C-1) ordered pairs but counted each match-up once; divide by C(C-1)/2"
    elif any(v > w + 1e-9 for w, v in zip(wants, gots)):
        hint = "too high: no score can agree with a cycle on all of its match-ups"
    else:
        hint = ("too low: did you score only one order (e.g. s = class id) or take the worst order? "
                "Try every order (itertools.permutations) and keep the best")
    k = wrong[0]
    return _report(False, f"on {cases[k][0]} expected {wants[k]:.4f}, got {gots[k]:.4f}: {hint}.")


def check_head_relation(fn: Callable) -> bool:
    """Self-check for the exercise "read the relation off a head".

    ``fn(centres, A)`` gets C class centres ``(C, D)`` and a skew-symmetric ``A``
    ``(D, D)`` and must return the ``(C, C)`` 0/1 relation the head predicts:
    ``R[a, b] = 1`` iff ``u_a^T A u_b > 0`` (a beats b), with a zero diagonal.
    The test values are multiples of 1/4, so the products are exact and no
    logit off the diagonal is 0. Prints what is wrong and returns False, or
    prints a tick and returns True.

    Derived in notebooks/08_ordered_and_intransitive_pairs.ipynb.
    """
    g = torch.Generator().manual_seed(80)
    cases = [("three centres 120 degrees apart", torch.tensor([[0.0, 1.0], [-0.875, -0.5], [0.875, -0.5]]),
              torch.tensor([[0.0, 1.5], [-1.5, 0.0]]))]
    for C, D in ((5, 3), (6, 4)):
        W = torch.randint(-6, 7, (D, D), generator=g) / 4
        cases.append((f"{C} centres in {D}-D", torch.randint(-6, 7, (C, D), generator=g) / 4, W - W.T))
    for name, centres, A in cases:
        C = len(centres)
        out, error = _run(fn, (centres.clone(), A.clone()), f"fn(centres, A) with centres {tuple(centres.shape)} "
                                                            f"and A {tuple(A.shape)}")
        if error:
            return _report(False, error)
        got = torch.as_tensor(out).detach()
        if tuple(got.shape) != (C, C):
            return _report(False, f"on {name} expected a ({C}, {C}) relation, one row and one column per class; "
                                  f"got shape {tuple(got.shape)}. The logits of all pairs are centres @ A @ centres.T.")
        if not bool(((got == 0) | (got == 1)).all()):
            return _report(False, f"on {name} your entries are not all 0 or 1: return the relation, "
                                  "(logits > 0).long(), not the logits or probabilities themselves.")
        got = got.long()
        want = (centres @ A @ centres.T > 0).long().fill_diagonal_(0)  # (C, C), exact: multiples of 1/4
        if torch.equal(got, want):
            continue
        if bool(got.diagonal().any()):
            hint = ("the diagonal must be 0: a class does not play itself. u_a^T A u_a is 0, so a 1 there comes from "
                    ">= 0 or from sigmoid(...) > 0 (always true); with real numbers rounding can also leave a tiny "
                    "logit, so set the diagonal to 0")
        elif torch.equal(got, want.T):
            hint = "your relation is transposed: R[a, b] = 1 when a BEATS b, i.e. u_a^T A u_b > 0 with u_a on the left"
        elif not bool(got.any()):
            hint = "no class beats any other: threshold the logit u_a^T A u_b at 0 (the probability at 1/2)"
        else:
            hint = f"expected\n{want.tolist()}, got\n{got.tolist()}: R[a, b] = 1 iff centres[a] @ A @ centres[b] > 0"
        return _report(False, f"on {name}: {hint}.")
    return _report(True, f"your relation is right on all {len(cases)} heads (three centres 120 degrees apart: "
                         f"rock-paper-scissors).")

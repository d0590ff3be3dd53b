"""sl.ordered: ordered pairs under a relation, the antisymmetric head, and the exercise self-checks of lesson 08."""
from __future__ import annotations

import itertools
import json
import math
import warnings
from pathlib import Path

import pytest
import torch

import siamlib as sl

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "08_ordered_and_intransitive_pairs.ipynb"

RPS = torch.tensor([[0, 0, 1], [1, 0, 0], [0, 1, 0]])  # rock 0 > scissors 2 > paper 1 > rock 0


def _random_tournament(C: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    upper = torch.triu(torch.randint(0, 2, (C, C), generator=g), diagonal=1)
    return upper + (1 - upper).triu(1).T


# --------------------------------------------------------------------- the relation is applied correctly
@pytest.mark.parametrize("relation", [RPS, _random_tournament(5, 0), (torch.arange(4)[:, None] > torch.arange(4)).long()])
def test_ordered_pairs_follow_the_relation(relation):
    C = relation.shape[0]
    labels = torch.arange(60) % C
    labels = labels[torch.randperm(60, generator=torch.Generator().manual_seed(1))]
    i, j, first_wins = sl.ordered.ordered_pairs(labels, relation, n_pairs=500, seed=3)
    assert i.shape == j.shape == first_wins.shape == (500,)
    seen = set()
    for a_img, b_img, w in zip(i.tolist(), j.tolist(), first_wins.tolist()):
        a, b = int(labels[a_img]), int(labels[b_img])
        assert a != b, "a same-class pair was drawn"
        assert w == int(relation[a, b]), f"label {w} for classes ({a}, {b}), relation says {int(relation[a, b])}"
        seen.add((a, b))
    assert seen == {(a, b) for a in range(C) for b in range(C) if a != b}, "some ordered match-up never drawn"


def test_ordered_pairs_are_seeded_and_balanced():
    labels = torch.tensor([0] * 10 + [1] * 50 + [2] * 200)  # very unequal classes
    first = sl.ordered.ordered_pairs(labels, RPS, 6000, seed=5)
    again = sl.ordered.ordered_pairs(labels, RPS, 6000, seed=5)
    other = sl.ordered.ordered_pairs(labels, RPS, 6000, seed=6)
    assert all(torch.equal(x, y) for x, y in zip(first, again))
    assert not torch.equal(first[0], other[0])
    i, j, w = first
    counts = torch.bincount(labels[i] * 3 + labels[j], minlength=9).float()  # (9,) ordered class pairs
    assert counts[[0, 4, 8]].sum() == 0
    off = counts[counts > 0]
    assert len(off) == 6 and off.min() > 850 and off.max() < 1150, counts  # uniform over match-ups, ~1000 each
    assert abs(w.float().mean().item() - 0.5) < 0.03
    # every image of the small class is reachable
    assert set(i[labels[i] == 0].tolist()) == set(range(10))


# --------------------------------------------------------------------- antisymmetry is exact
def test_antisymmetric_head_is_exact_for_random_inputs():
    for seed, dim in [(0, 2), (1, 5), (2, 16)]:
        g = torch.Generator().manual_seed(seed)
        head = sl.ordered.AntisymmetricHead(dim, seed=seed)
        u_a, u_b = torch.randn(300, dim, generator=g) * 3, torch.randn(300, dim, generator=g) * 3
        l_ab, l_ba = head(u_a, u_b), head(u_b, u_a)
        assert l_ab.shape == (300,)
        assert torch.equal(l_ba, -l_ab), "the sign flip must be exact, not only close"
        total = torch.sigmoid(l_ab) + torch.sigmoid(l_ba)
        torch.testing.assert_close(total, torch.ones_like(total), rtol=0, atol=2e-7)
        assert torch.equal(head(u_a, u_a), torch.zeros(300)), "f(a, a) must be exactly 1/2"
        torch.testing.assert_close(head.A.T, -head.A, rtol=0, atol=0)
        ref = ((u_a.double() @ head.A.double()) * u_b.double()).sum(dim=1)  # u_a^T A u_b
        torch.testing.assert_close(l_ab.double(), ref, rtol=1e-5, atol=1e-4)


def test_antisymmetric_head_trains_and_stays_exact():
    head = sl.ordered.AntisymmetricHead(3, seed=0)
    g = torch.Generator().manual_seed(0)
    u_a, u_b = torch.randn(64, 3, generator=g), torch.randn(64, 3, generator=g)
    target = (u_a[:, 0] > u_b[:, 1]).float()
    losses = []
    for _ in range(20):  # plain gradient descent on W
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(u_a, u_b), target)
        head.W.grad = None
        loss.backward()
        with torch.no_grad():
            head.W -= 0.5 * head.W.grad
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses
    assert torch.equal(head(u_b, u_a), -head(u_a, u_b))


def test_antisymmetric_head_rejects_bad_input():
    with pytest.raises(ValueError, match="dim must be an int >= 2"):
        sl.ordered.AntisymmetricHead(1)
    head = sl.ordered.AntisymmetricHead(4)
    with pytest.raises(ValueError, match=r"expects two \(B, 4\) embeddings"):
        head(torch.zeros(3, 4), torch.zeros(3, 5))


# --------------------------------------------------------------------- bad relations give clear errors
BAD_RELATIONS = {
    "not square": (torch.zeros(3, 2, dtype=torch.long), None, r"square \(C, C\).*shape \(3, 2\)"),
    "1-D": (torch.zeros(3, dtype=torch.long), None, "square"),
    "a tie": (torch.tensor([[0, 0, 1], [0, 0, 0], [0, 1, 0]]), None, r"not a tournament.*classes 0 and 1.*neither wins"),
    "both win": (torch.tensor([[0, 1, 1], [1, 0, 0], [0, 1, 0]]), None, r"not a tournament.*both win"),
    "diagonal": (torch.tensor([[1, 0, 1], [1, 0, 0], [0, 1, 0]]), None, r"diagonal for classes \[0\].*Set the diagonal to 0"),
    "values not 0/1": (torch.tensor([[0, 0, 2], [1, 0, 0], [0, 1, 0]]), None, "only 0 and 1"),
    "NaN": (torch.tensor([[0.0, 0.0, float("nan")], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), None, "NaN"),
    "wrong size": (RPS, 4, r"3 x 3 but there are 4 classes.*one row and one column per class"),
    "one class": (torch.zeros(1, 1, dtype=torch.long), None, "at least 2 classes"),
}


@pytest.mark.parametrize("case", sorted(BAD_RELATIONS))
def test_bad_relations_are_refused_with_the_way_out(case):
    relation, n_classes, words = BAD_RELATIONS[case]
    with pytest.raises(ValueError, match=words):
        sl.ordered.check_relation(relation, n_classes=n_classes)
    if n_classes is None:  # ordered_pairs validates the relation too
        with pytest.raises(ValueError, match="relation"):
            sl.ordered.ordered_pairs(torch.tensor([0, 1, 2]), relation, 4)


def test_check_relation_accepts_tournaments():
    for R in [RPS, _random_tournament(6, 2), RPS.float(), RPS.numpy()]:
        out = sl.ordered.check_relation(R, n_classes=len(R))
        assert out.dtype == torch.int64 and torch.equal(out, torch.as_tensor(RPS if len(R) == 3 else R).long())


def test_labels_that_do_not_fit_the_relation():
    with pytest.raises(ValueError, match=r"labels run from 0 to 3 but relation is 3 x 3.*relabel"):
        sl.ordered.ordered_pairs(torch.tensor([0, 1, 2, 3]), RPS, 5)
    with pytest.raises(ValueError, match=r"classes \[2\] of the relation have no image"):
        sl.ordered.ordered_pairs(torch.tensor([0, 1, 1, 0]), RPS, 5)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        sl.ordered.ordered_pairs(torch.tensor([], dtype=torch.long), RPS, 5)
    with pytest.raises(ValueError, match="integer class ids"):
        sl.ordered.ordered_pairs(torch.tensor([0.0, 1.0, 2.0]), RPS, 5)
    with pytest.raises(ValueError, match="n_pairs must be a positive int"):
        sl.ordered.ordered_pairs(torch.tensor([0, 1, 2]), RPS, 0)


# --------------------------------------------------------------------- exercise 1: Bradley-Terry as a disc game
ROT = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)


def _on_line(s, y=1.0):
    return torch.stack([s, torch.full_like(s, y)], dim=1)


def _stub(*args):
    raise NotImplementedError("not done")


DISC_MUTANTS = {
    "sign flipped (A = [[0, -1], [1, 0]])": (lambda s: (_on_line(s), -ROT), "sign is flipped"),
    "coordinates swapped": (lambda s: (_on_line(s).flip(1), ROT), "sign is flipped"),
    "constant 0 in u": (lambda s: (_on_line(s, 0.0), ROT), "every logit is 0"),
    "score in both coordinates": (lambda s: (torch.stack([s, s], 1), ROT), "every logit is 0"),
    "A not skew-symmetric": (lambda s: (_on_line(s), torch.tensor([[0.0, 1.0], [0.0, 0.0]])), "not skew-symmetric"),
    "A = W with a diagonal": (lambda s: (_on_line(s), ROT + torch.eye(2)), "not skew-symmetric"),
    "factor 2": (lambda s: (_on_line(s), 2 * ROT), "2 x (s_a - s_b)"),
    "constant 0.5": (lambda s: (_on_line(s, 0.5), ROT), "0.5 x (s_a - s_b)"),
    "u of shape (N,)": (lambda s: (s, ROT), "expected u of shape (6, 2)"),
    "returns only u": (lambda s: _on_line(s), "return two tensors"),
    "squared scores": (lambda s: (_on_line(s ** 2), ROT), "should equal s_a - s_b"),
    "stub": (_stub, "still the exercise stub"),
}


@pytest.mark.parametrize("right", [lambda s: (_on_line(s), ROT), lambda s: (_on_line(s, -1.0), -ROT),
                                   lambda s: (_on_line(s).numpy(), ROT.float())], ids=["y=1", "y=-1", "numpy"])
def test_disc_check_accepts_right_answers(right, capsys):
    assert sl.ordered.check_bt_as_disc_game(right) is True
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("mutant", sorted(DISC_MUTANTS))
def test_disc_check_rejects_mutants_naming_the_mistake(mutant, capsys):
    fn, words = DISC_MUTANTS[mutant]
    assert sl.ordered.check_bt_as_disc_game(fn) is False
    out = capsys.readouterr().out
    assert "❌" in out and words in out, out


# --------------------------------------------------------------------- exercise 2: the Bradley-Terry ceiling
def _agreements(R):
    C = R.shape[0]
    for order in itertools.permutations(range(C)):
        rank = {c: k for k, c in enumerate(order)}
        yield sum(int(R[a, b]) for a in range(C) for b in range(C) if a != b and rank[a] < rank[b])


def _right_ceiling(R):
    C = R.shape[0]
    return max(_agreements(R)) / (C * (C - 1) // 2)


BT_MUTANTS = {
    "always one half": (lambda R: 0.5, "0.5 is what equal scores"),
    "divides by C^2": (lambda R: max(_agreements(R)) / R.shape[0] ** 2, "divided by C^2"),
    "divides by ordered pairs": (lambda R: max(_agreements(R)) / (R.shape[0] * (R.shape[0] - 1)), "ordered pairs"),
    "one fixed order (s = class id)": (
        lambda R: sum(int(R[a, b]) for a in range(len(R)) for b in range(len(R)) if a < b) / (len(R) * (len(R) - 1) // 2),
        "only one order"),
    "worst order": (lambda R: min(_agreements(R)) / (R.shape[0] * (R.shape[0] - 1) // 2), "too low"),
    "counts both orders as agreement": (lambda R: 1.0, "too high"),
    "raises": (lambda R: R.nope, "raised AttributeError"),
    "percent": (lambda R: 100 * _right_ceiling(R), "too high"),
    "a count, not a fraction": (lambda R: max(_agreements(R)), "too high"),
    "stub": (_stub, "still the exercise stub"),
}


def test_bt_check_accepts_the_right_ceiling(capsys):
    assert sl.ordered.check_bt_ceiling(_right_ceiling) is True
    out = capsys.readouterr().out
    assert "✅" in out and "0.6667" in out


@pytest.mark.parametrize("mutant", sorted(BT_MUTANTS))
def test_bt_check_rejects_mutants_naming_the_mistake(mutant, capsys):
    fn, words = BT_MUTANTS[mutant]
    assert sl.ordered.check_bt_ceiling(fn) is False
    out = capsys.readouterr().out
    assert "❌" in out and words in out, out


# --------------------------------------------------------------------- exercise 3: the relation a head predicts
def _right_relation(centres, A):
    return (centres @ A @ centres.T > 0).long().fill_diagonal_(0)


RELATION_MUTANTS = {
    "transposed (b beats a)": (lambda U, A: _right_relation(U, A).T, "transposed"),
    "u_b on the left": (lambda U, A: (U @ A.T @ U.T > 0).long(), "transposed"),
    ">= 0 keeps the diagonal": (lambda U, A: (U @ A @ U.T >= 0).long(), "the diagonal must be 0"),
    "sigmoid > 0": (lambda U, A: (torch.sigmoid(U @ A @ U.T) > 0).long(), "always true"),
    "returns the logits": (lambda U, A: U @ A @ U.T, "not the logits or probabilities"),
    "returns probabilities": (lambda U, A: torch.sigmoid(U @ A @ U.T), "not the logits or probabilities"),
    "symmetrised A": (lambda U, A: (U @ (A + A.T) @ U.T > 0).long(), "no class beats any other"),
    "one row only": (lambda U, A: _right_relation(U, A)[:1], "one row and one column per class"),
    "per-dimension products": (lambda U, A: (U @ A * U > 0).long(), "one row and one column per class"),
    "wrong order of products": (lambda U, A: (U.T @ A @ U > 0).long(), "raised RuntimeError"),
    "stub": (_stub, "still the exercise stub"),
}


@pytest.mark.parametrize("right", [_right_relation, lambda U, A: (U @ A @ U.T > 0),
                                   lambda U, A: _right_relation(U, A).numpy()], ids=["long", "bool", "numpy"])
def test_relation_check_accepts_right_answers(right, capsys):
    assert sl.ordered.check_head_relation(right) is True
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("mutant", sorted(RELATION_MUTANTS))
def test_relation_check_rejects_mutants_naming_the_mistake(mutant, capsys):
    fn, words = RELATION_MUTANTS[mutant]
    assert sl.ordered.check_head_relation(fn) is False
    out = capsys.readouterr().out
    assert "❌" in out and words in out, out


def test_rps_ceiling_is_two_thirds():
    assert math.isclose(_right_ceiling(RPS), 2 / 3)
    assert math.isclose(_right_ceiling((torch.arange(5)[:, None] > torch.arange(5)).long()), 1.0)


# --------------------------------------------------------------------- the lesson really uses the module
def _notebook_code() -> str:
    nb = json.loads(NOTEBOOK.read_text())
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


def test_every_exported_name_is_used_by_lesson_08():
    code = _notebook_code()
    for name in sl.ordered.__all__:
        assert f"sl.ordered.{name}" in code, f"sl.ordered.{name} is exported but lesson 08 never calls it"
        doc = getattr(sl.ordered, name).__doc__ or ""
        assert "notebooks/08_ordered_and_intransitive_pairs.ipynb" in doc, f"{name}: docstring must name the lesson"


def test_notebook_exercise_answers_pass_their_self_checks(capsys):
    """The solutions stored in the notebook's exercise cells pass; the checks are not trivially true."""
    nb = json.loads(NOTEBOOK.read_text())
    sources = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    for marker, check in [("def bt_as_disc_game", "check_bt_as_disc_game"), ("def bt_ceiling", "check_bt_ceiling"),
                          ("def head_relation", "check_head_relation")]:
        src = next(s for s in sources if marker in s)
        namespace = {"torch": torch, "itertools": itertools, "sl": sl, "print": print}
        exec(src.split("assert sl.ordered.")[0], namespace)  # the learner's definition only
        fn = namespace[marker.split()[1]]
        assert getattr(sl.ordered, check)(fn) is True


@pytest.mark.mirror
def test_ordered_pairs_on_real_mnist_digits(mirror_root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sl.data.MnistSubsetWarning)
        data = sl.data.load_mnist("test")
    rps = data.subset(data.labels <= 2)
    i, j, w = sl.ordered.ordered_pairs(rps.labels, RPS, 2000, seed=0)
    a, b = rps.labels[i], rps.labels[j]
    assert bool((a != b).all())
    assert torch.equal(w, RPS[a, b])
    assert i.max() < len(rps) and j.max() < len(rps)

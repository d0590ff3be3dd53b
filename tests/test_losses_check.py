"""sl.check's exercise checks: they accept the reference, and name each classic mistake."""
from __future__ import annotations

import pytest
import torch

import siamlib as sl


def _d(a, b):
    return (a - b).pow(2).sum(1).sqrt()


def _safe_d(a, b):
    return sl.distances.safe_sqrt((a - b).pow(2).sum(1))


def _hadsell(a, b, y, m, d=_safe_d, half=0.5):
    """The learner's loss written out; the mutants below change one piece of it."""
    return ((1 - y) * half * d(a, b) ** 2 + y * half * torch.clamp(m - d(a, b), min=0) ** 2).mean()


# wrong implementations ("mutants") a learner writes; each must be rejected with a message naming the mistake
CONTRASTIVE_MUTANTS = {
    "detached distance": (lambda a, b, y, m: _hadsell(a, b, y, m, d=lambda a, b: _safe_d(a, b).detach()), "detached"),
    "detached in one term": (lambda a, b, y, m: ((1 - y) * 0.5 * _safe_d(a, b) ** 2
                                                 + y * 0.5 * torch.relu(m - _safe_d(a, b).detach()) ** 2).mean(),
                             "gradients are not"),
    "hard-coded margin 1.5": (lambda a, b, y, m: _hadsell(a, b, y, 1.5), "ignores the margin argument"),
    "hard-coded margin 1.0": (lambda a, b, y, m: _hadsell(a, b, y, 1.0), "ignores the margin argument"),
    "missing 1/2": (lambda a, b, y, m: _hadsell(a, b, y, m, half=1.0), "factor ½"),
    "1/4 instead of 1/2": (lambda a, b, y, m: _hadsell(a, b, y, m, half=0.25), "½ once per term"),
    "sum instead of mean": (lambda a, b, y, m: sl.losses.contrastive_loss(a, b, y, m, reduction="sum"),
                            "you summed over pairs: return the mean"),
    "swapped labels": (lambda a, b, y, m: _hadsell(a, b, 1 - y, m), "label convention is inverted"),
    "no clamp": (lambda a, b, y, m: ((1 - y) * 0.5 * _safe_d(a, b) ** 2 + y * 0.5 * (m - _safe_d(a, b)) ** 2).mean(),
                 "clamp the hinge"),
    "returns float": (lambda a, b, y, m: _hadsell(a, b, y, m).item(), "return a torch tensor, not a float"),
    "returns numpy": (lambda a, b, y, m: _hadsell(a, b, y, m).detach().numpy(), "return a torch tensor, not a ndarray"),
    "unsquared terms": (lambda a, b, y, m: ((1 - y) * 0.5 * _safe_d(a, b)
                                            + y * 0.5 * torch.relu(m - _safe_d(a, b))).mean(), "square both terms"),
    "hinge not squared": (lambda a, b, y, m: ((1 - y) * 0.5 * _safe_d(a, b) ** 2
                                              + y * 0.5 * torch.relu(m - _safe_d(a, b))).mean(), "square the hinge"),
    "distance not squared": (lambda a, b, y, m: ((1 - y) * 0.5 * _safe_d(a, b)
                                                 + y * 0.5 * torch.relu(m - _safe_d(a, b)) ** 2).mean(),
                             "square the distance"),
    "nan grad at 0": (lambda a, b, y, m: _hadsell(a, b, y, m, d=_d), "gradient is NaN"),
    "per pair": (lambda a, b, y, m: sl.losses.contrastive_loss(a, b, y, m, reduction="none"), "Did you forget .mean()"),
    "raises": (lambda a, b, y, m: 1 / 0, "ZeroDivisionError"),
    "sum and no 1/2": (lambda a, b, y, m: 2 * sl.losses.contrastive_loss(a, b, y, m, reduction="sum"),
                       "two mistakes: you summed over pairs and left out the ½"),
    "sum and swapped labels": (lambda a, b, y, m: sl.losses.contrastive_loss(a, b, 1 - y, m, reduction="sum"),
                               "two mistakes: the labels are inverted"),
    "stub": (lambda a, b, y, m: (_ for _ in ()).throw(NotImplementedError()), "still the exercise stub"),
}


@pytest.mark.parametrize("fn", [sl.losses.contrastive_loss, _hadsell], ids=["library", "written out"])
def test_contrastive_check_accepts_a_correct_loss(fn, capsys):
    assert sl.check.contrastive_loss(fn) is True
    assert sl.check.contrastive_loss(fn, margin=0.8) is True
    out = capsys.readouterr().out
    assert out.count("✅") == 2 and "❌" not in out, out


@pytest.mark.parametrize("name", list(CONTRASTIVE_MUTANTS))
def test_contrastive_check_rejects_each_mutant_naming_the_mistake(name, capsys):
    fn, words = CONTRASTIVE_MUTANTS[name]
    assert sl.check.contrastive_loss(fn) is False
    out = capsys.readouterr().out
    assert out.startswith("❌") and words in out and "✅" not in out, out


@pytest.mark.parametrize("margin", [0.8, 1.0, 1.5, 2.0])
@pytest.mark.parametrize("hard", [0.5, 1.0, 1.5, 2.0])
def test_a_hard_coded_margin_is_named_whatever_margin_the_check_uses(margin, hard, capsys):
    # margin == hard passes the first call; the check's second margin must catch it
    assert sl.check.contrastive_loss(lambda a, b, y, m: _hadsell(a, b, y, hard), margin=margin) is False
    assert f"uses m = {hard}" in capsys.readouterr().out


def test_a_float_is_not_mistaken_for_a_missing_mean(capsys):
    sl.check.contrastive_loss(CONTRASTIVE_MUTANTS["returns float"][0])
    assert ".mean()" not in capsys.readouterr().out


TRIPLET_BUGS = {
    "swapped": (lambda a, p, n, m: sl.losses.triplet_loss(a, n, p, m), "swapped"),
    "no clamp": (lambda a, p, n, m: (_d(a, p) - _d(a, n) + m).mean(), "clamp at 0"),
    "margin sign": (lambda a, p, n, m: torch.relu(_d(a, p) - _d(a, n) - m).mean(), "wrong sign"),
    "squared": (lambda a, p, n, m: sl.losses.triplet_loss(a, p, n, m, squared=True), "squared distances"),
    "sum": (lambda a, p, n, m: sl.losses.triplet_loss(a, p, n, m, reduction="sum"), "summed"),
}


def test_triplet_check(capsys):
    assert sl.check.triplet_loss(sl.losses.triplet_loss) is True
    for fn, words in TRIPLET_BUGS.values():
        assert sl.check.triplet_loss(fn) is False
        out = capsys.readouterr().out
        assert words in out, out


def test_batch_hard_check(capsys):
    assert sl.check.batch_hard(sl.mining.batch_hard) is True

    def masks(labels):
        same = labels[:, None] == labels[None, :]
        return same & ~torch.eye(len(labels), dtype=torch.bool), ~same

    def easiest_positive(labels, dist):
        a, p, n = sl.mining.batch_hard(labels, dist)
        pos, _ = masks(labels)
        return a, dist.masked_fill(~pos, float("inf")).argmin(1)[a], n

    def with_self(labels, dist):
        a, p, n = sl.mining.batch_hard(labels, dist)
        return a, a, n

    def keeps_singleton(labels, dist):
        pos, neg = masks(labels)
        p = dist.masked_fill(~pos, -1).argmax(1)
        p = torch.where(pos.any(1), p, (torch.arange(len(labels)) + 1) % len(labels))  # any other point
        return torch.arange(len(labels)), p, dist.masked_fill(~neg, 1e9).argmin(1)

    for fn, words in ((easiest_positive, "CLOSEST positive"), (with_self, "anchor itself"),
                      (keeps_singleton, "no positive")):
        capsys.readouterr()
        assert sl.check.batch_hard(fn) is False
        out = capsys.readouterr().out
        assert words in out, out


def test_count_triplets_check(capsys):
    assert sl.check.count_triplets(sl.mining.count_valid_triplets) is True

    def with_self(labels):
        same = (labels[:, None] == labels[None, :]).sum(1)
        return int((same * (len(labels) - same)).sum())

    def unordered(labels):
        return sl.mining.count_valid_triplets(labels) // 2

    for fn, words in ((with_self, "anchor itself"), (unordered, "ordered")):
        capsys.readouterr()
        assert sl.check.count_triplets(fn) is False
        assert words in capsys.readouterr().out

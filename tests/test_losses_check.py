"""sl.check's exercise checks: they accept the reference, and name each classic mistake."""
from __future__ import annotations

import pytest
import torch

import siamlib as sl


def _d(a, b):
    return (a - b).pow(2).sum(1).sqrt()


def _safe_d(a, b):
    return sl.mining.safe_sqrt((a - b).pow(2).sum(1))


CONTRASTIVE_BUGS = {
    "inverted": (lambda a, b, y, m: sl.losses.contrastive_loss(a, b, 1 - y, m), "inverted"),
    "no half": (lambda a, b, y, m: 2 * sl.losses.contrastive_loss(a, b, y, m), "factor ½"),
    "no clamp": (lambda a, b, y, m: ((1 - y) * 0.5 * _safe_d(a, b) ** 2 + y * 0.5 * (m - _safe_d(a, b)) ** 2).mean(), "clamp the hinge"),
    "hinge not squared": (lambda a, b, y, m: ((1 - y) * 0.5 * _safe_d(a, b) ** 2 + y * 0.5 * torch.relu(m - _safe_d(a, b))).mean(), "square the hinge"),
    "sum": (lambda a, b, y, m: sl.losses.contrastive_loss(a, b, y, m, reduction="sum"), "mean"),
    "margin ignored": (lambda a, b, y, m: sl.losses.contrastive_loss(a, b, y, 1.0), "ignores the margin"),
    "nan grad": (lambda a, b, y, m: ((1 - y) * 0.5 * _d(a, b) ** 2 + y * 0.5 * torch.relu(m - _d(a, b)) ** 2).mean(), "gradient is NaN"),
    "per pair": (lambda a, b, y, m: sl.losses.contrastive_loss(a, b, y, m, reduction="none"), "one number"),
    "raises": (lambda a, b, y, m: 1 / 0, "ZeroDivisionError"),
}


def test_contrastive_check_accepts_reference(capsys):
    assert sl.check.contrastive_loss(sl.losses.contrastive_loss) is True
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("bug", sorted(CONTRASTIVE_BUGS))
def test_contrastive_check_names_the_bug(bug, capsys):
    fn, words = CONTRASTIVE_BUGS[bug]
    assert sl.check.contrastive_loss(fn) is False
    out = capsys.readouterr().out
    assert "❌" in out and words in out, out


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

    def easiest_positive(labels, dist):
        a, p, n = sl.mining.batch_hard(labels, dist)
        pos, _ = sl.mining.label_masks(labels)
        return a, dist.masked_fill(~pos, float("inf")).argmin(1)[a], n

    def with_self(labels, dist):
        a, p, n = sl.mining.batch_hard(labels, dist)
        return a, a, n

    def keeps_singleton(labels, dist):
        pos, neg = sl.mining.label_masks(labels)
        p = dist.masked_fill(~pos, -1).argmax(1)
        p = torch.where(pos.any(1), p, (torch.arange(len(labels)) + 1) % len(labels))  # any other point
        return torch.arange(len(labels)), p, dist.masked_fill(~neg, 1e9).argmin(1)

    for fn, words in ((easiest_positive, "CLOSEST positive"), (with_self, "anchor itself"), (keeps_singleton, "no positive")):
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

"""sl.check's exercise checks (lessons 02, 03, 05): each accepts right answers and rejects every wrong implementation
("mutant") in the tables below with a message that names the mistake. Every check has a table (the last test)."""
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
    "wrong sign": (lambda a, b, y, m: -_hadsell(a, b, y, m), "the wrong sign"),
    "norm over the wrong axis": (lambda a, b, y, m: _hadsell(a.T, b.T, y, m), "D: norm on dim=1"),
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



def _stub(*args):
    raise NotImplementedError("exercise not done yet")


def _triplet(a, p, n, m, d=_safe_d):
    return torch.clamp(d(a, p) - d(a, n) + m, min=0).mean()


TRIPLET_MUTANTS = {
    "swapped positive and negative": (lambda a, p, n, m: sl.losses.triplet_loss(a, n, p, m), "swapped"),
    "no clamp": (lambda a, p, n, m: (_d(a, p) - _d(a, n) + m).mean(), "clamp at 0"),
    "margin sign": (lambda a, p, n, m: torch.relu(_d(a, p) - _d(a, n) - m).mean(), "wrong sign"),
    "squared distances": (lambda a, p, n, m: sl.losses.triplet_loss(a, p, n, m, squared=True), "squared distances"),
    "sum instead of mean": (lambda a, p, n, m: sl.losses.triplet_loss(a, p, n, m, reduction="sum"), "summed"),
    "per triplet": (lambda a, p, n, m: sl.losses.triplet_loss(a, p, n, m, reduction="none"), "forget .mean()"),
    "hard-coded margin 0.3": (lambda a, p, n, m: _triplet(a, p, n, 0.3), "ignores the margin argument"),
    "hard-coded margin 0.2": (lambda a, p, n, m: _triplet(a, p, n, 0.2), "always uses α = 0.2"),
    "margin left out": (lambda a, p, n, m: _triplet(a, p, n, 0.0), "always uses α = 0.0"),
    "detached distance": (lambda a, p, n, m: _triplet(a, p, n, m, d=lambda x, y: _safe_d(x, y).detach()), "detached"),
    "returns float": (lambda a, p, n, m: _triplet(a, p, n, m).item(), "return a torch tensor, not a float"),
    "norm over the wrong axis": (lambda a, p, n, m: torch.relu((a - p).norm(dim=0) - (a - n).norm(dim=0) + m).mean(),
                                 "wrong axis"),
    "raises": (lambda a, p, n, m: a @ p, "raised RuntimeError"),
    "stub": (_stub, "still the exercise stub"),
}


def _masks(labels):
    same = labels[:, None] == labels[None, :]
    return same & ~torch.eye(len(labels), dtype=torch.bool), ~same


def _easiest_positive(labels, dist):
    a, p, n = sl.mining.batch_hard(labels, dist)
    return a, dist.masked_fill(~_masks(labels)[0], float("inf")).argmin(1)[a], n


def _easiest_negative(labels, dist):
    a, p, n = sl.mining.batch_hard(labels, dist)
    return a, p, dist.masked_fill(~_masks(labels)[1], -1.0).argmax(1)[a]


def _keeps_singleton(labels, dist):
    pos, neg = _masks(labels)
    p = dist.masked_fill(~pos, -1).argmax(1)
    p = torch.where(pos.any(1), p, (torch.arange(len(labels)) + 1) % len(labels))  # any other point
    return torch.arange(len(labels)), p, dist.masked_fill(~neg, 1e9).argmin(1)


def _with_diagonal(labels, dist):  # the positive mask keeps the anchor itself (labels equal, a == p allowed)
    same = labels[:, None] == labels[None, :]
    a, _, n = sl.mining.batch_hard(labels, dist)
    return a, dist.masked_fill(~same, float("inf")).argmin(1)[a], n


BATCH_HARD_MUTANTS = {
    "easiest positive": (_easiest_positive, "CLOSEST positive"),
    "easiest negative": (_easiest_negative, "FARTHEST negative"),
    "anchor as its own positive": (lambda labels, dist: (*sl.mining.batch_hard(labels, dist)[:1],) * 2
                                   + sl.mining.batch_hard(labels, dist)[2:], "anchor itself"),
    "diagonal kept in the positive mask": (_with_diagonal, "anchor itself"),
    "anchor without a positive kept": (_keeps_singleton, "no positive"),
    "positive of another class": (lambda labels, dist: (lambda a, p, n: (a, n, n))(*sl.mining.batch_hard(labels, dist)),
                                  "'positives' have another label"),
    "negative of the same class": (lambda labels, dist: (lambda a, p, n: (a, p, p))(*sl.mining.batch_hard(labels, dist)),
                                   "'negatives' share the anchor's label"),
    "returns distances": (lambda labels, dist: (lambda a, p, n: (a, dist[a, p], dist[a, n]))(
        *sl.mining.batch_hard(labels, dist)), "not distances"),
    "returns masks": (lambda labels, dist: (*_masks(labels), _masks(labels)[1]), "not distances or masks"),
    "one anchor only": (lambda labels, dist: tuple(t[:1] for t in sl.mining.batch_hard(labels, dist)),
                        "one triplet per anchor"),
    "returns None": (lambda labels, dist: None, "three index tensors"),
    "stub": (_stub, "still the exercise stub"),
}


def _sizes(labels):
    return (labels[:, None] == labels[None, :]).sum(1)


COUNT_MUTANTS = {
    "anchor as its own positive": (lambda labels: int((_sizes(labels) * (len(labels) - _sizes(labels))).sum()),
                                   "positive be the anchor itself"),
    "unordered pairs": (lambda labels: sl.mining.count_valid_triplets(labels) // 2, "count ordered (a, p) pairs"),
    "anchor removed from the negatives": (
        lambda labels: int(((_sizes(labels) - 1) * (len(labels) - _sizes(labels) - 1)).sum()), "out of the negatives"),
    "every set of 3": (lambda labels: len(labels) * (len(labels) - 1) * (len(labels) - 2) // 6, "every set of 3"),
    "positives only": (lambda labels: int((_sizes(labels) - 1).sum()), "(positives of a) × (negatives of a)"),
    "raises": (lambda labels: labels.nope, "raised AttributeError"),
    "stub": (_stub, "still the exercise stub"),
}


def _knn(emb, index, k, descending=False):
    d = (emb - emb[index]).norm(dim=1)
    d[index] = -float("inf") if descending else float("inf")
    return d.argsort(descending=descending)[:k]


NEIGHBOUR_MUTANTS = {
    "point itself included": (lambda e, i, k: (e - e[i]).norm(dim=1).argsort()[:k], "the point itself"),
    "farthest": (lambda e, i, k: _knn(e, i, k, descending=True), "FARTHEST"),
    "k + 1 neighbours": (lambda e, i, k: _knn(e, i, k + 1), "3 indices, nearest first"),
    "k - 1 neighbours": (lambda e, i, k: _knn(e, i, k - 1), "3 indices, nearest first"),
    "index order": (lambda e, i, k: _knn(e, i, k).sort().values, "sort them by distance"),
    "counted from 1": (lambda e, i, k: _knn(e, i, k) + 1, "one too large"),
    "returns distances": (lambda e, i, k: (e - e[i]).norm(dim=1).sort().values[1:k + 1], "not distances"),
    "norm over the wrong axis": (lambda e, i, k: (e - e[i]).norm(dim=0).argsort()[:k], "3 indices"),
    "raises": (lambda e, i, k: e[k, i, 0], "raised IndexError"),
    "stub": (_stub, "still the exercise stub"),
}


def _hardest(emb, labels, fill=float("inf"), pick="argmin", mask_same=True):
    d = torch.cdist(emb, emb)
    same = labels[:, None] == labels[None, :]
    return getattr(d.masked_fill(same if mask_same else ~same | torch.eye(len(labels), dtype=torch.bool), fill), pick)(1)


HARDEST_MUTANTS = {
    "itself": (lambda e, l: torch.arange(len(l)), "its own answer"),
    "any class": (lambda e, l: torch.cdist(e, e).fill_diagonal_(float("inf")).argmin(1), "ANY class"),
    "same class": (lambda e, l: _hardest(e, l, mask_same=False), "SAME class"),
    "farthest negative": (lambda e, l: _hardest(e, l, fill=-1.0, pick="argmax"), "FARTHEST negative"),
    "counted from 1": (lambda e, l: _hardest(e, l) + 1, "one too large"),
    "returns distances": (lambda e, l: torch.cdist(e, e).masked_fill(l[:, None] == l[None, :], 9.0).min(1).values,
                          "not distances"),
    "first point only": (lambda e, l: _hardest(e, l)[:1], "one index per point"),
    "raises": (lambda e, l: torch.cdist(e, l), "raised RuntimeError"),
    "stub": (_stub, "still the exercise stub"),
}


def _overlap(a, b, k, diagonal=float("inf"), how="mean"):
    na, nb = (torch.cdist(x, x).fill_diagonal_(diagonal).argsort(dim=1, stable=True)[:, :k] for x in (a, b))
    shared = torch.tensor([len(set(x.tolist()) & set(y.tolist())) for x, y in zip(na, nb)], dtype=torch.float64)
    return {"mean": lambda: float((shared / k).mean()), "per point": lambda: shared / k,
            "sum": lambda: float((shared / k).sum()), "count": lambda: float(shared.sum()),
            "no division": lambda: float(shared.mean()), "jaccard": lambda: float((shared / (2 * k - shared)).mean())}[how]()


OVERLAP_MUTANTS = {
    "point in its own list": (lambda a, b, k: _overlap(a, b, k, diagonal=0.0), "its own neighbour lists"),
    "not divided by k": (lambda a, b, k: _overlap(a, b, k, how="no division"), "divide the shared count by k"),
    "one value per point": (lambda a, b, k: _overlap(a, b, k, how="per point"), "one fraction per point"),
    "sum over points": (lambda a, b, k: _overlap(a, b, k, how="sum"), "summed over the 8 points"),
    "count": (lambda a, b, k: _overlap(a, b, k, how="count"), "count of shared neighbours"),
    "jaccard": (lambda a, b, k: _overlap(a, b, k, how="jaccard"), "Jaccard"),
    "k + 1 neighbours": (lambda a, b, k: _overlap(a, b, k + 1), "(shared neighbours) / k"),
    "raises": (lambda a, b, k: a @ b, "raised RuntimeError"),
    "stub": (_stub, "still the exercise stub"),
}

# check -> (right implementations, mutants); every function of sl.check must be here
TABLES = {
    "triplet_loss": ([sl.losses.triplet_loss, _triplet], TRIPLET_MUTANTS),
    "batch_hard": ([sl.mining.batch_hard], BATCH_HARD_MUTANTS),
    "count_triplets": ([sl.mining.count_valid_triplets, lambda labels: torch.tensor(
        sl.mining.count_valid_triplets(labels))], COUNT_MUTANTS),
    "nearest_neighbours": ([_knn, lambda e, i, k: _knn(e, i, k).tolist()], NEIGHBOUR_MUTANTS),
    "hardest_negative": ([_hardest], HARDEST_MUTANTS),
    "neighbour_overlap": ([_overlap, lambda a, b, k: sl.viz.neighbour_overlap(a.numpy(), b.numpy(), k)],
                          OVERLAP_MUTANTS),
}


@pytest.mark.parametrize("check", sorted(TABLES))
def test_check_accepts_right_answers(check, capsys):
    for fn in TABLES[check][0]:
        assert getattr(sl.check, check)(fn) is True
        out = capsys.readouterr().out
        assert out.startswith("✅") and "❌" not in out, out


@pytest.mark.parametrize("check,mutant", [(c, m) for c in sorted(TABLES) for m in TABLES[c][1]])
def test_check_rejects_each_mutant_naming_the_mistake(check, mutant, capsys):
    fn, words = TABLES[check][1][mutant]
    assert getattr(sl.check, check)(fn) is False
    out = capsys.readouterr().out
    assert out.startswith("❌") and words in out and "✅" not in out, out


@pytest.mark.parametrize("margin", [0.1, 0.2, 0.3, 0.5])
@pytest.mark.parametrize("hard", [0.1, 0.2, 0.3, 0.5, 1.0])
def test_a_hard_coded_triplet_margin_is_named_whatever_margin_the_check_uses(margin, hard, capsys):
    assert sl.check.triplet_loss(sl.losses.triplet_loss, margin=margin) is True
    assert sl.check.triplet_loss(lambda a, p, n, m: _triplet(a, p, n, hard), margin=margin) is False
    assert f"always uses α = {hard}" in capsys.readouterr().out


def test_every_check_has_a_mutant_table():
    assert sorted([*TABLES, "contrastive_loss"]) == sorted(sl.check.__all__)
    assert all(len(mutants) >= 6 for _, mutants in TABLES.values())

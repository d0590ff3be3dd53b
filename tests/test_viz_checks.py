"""Lesson 05's exercise self-checks accept right answers and name the usual mistakes."""
from __future__ import annotations

import torch

import siamlib as sl


def _knn(emb, index, k):
    d = (emb - emb[index]).norm(dim=1)
    d[index] = float("inf")
    return d.argsort()[:k]


def test_nearest_neighbours_check(capsys):
    assert sl.check.nearest_neighbours(_knn)
    assert not sl.check.nearest_neighbours(lambda e, i, k: (e - e[i]).norm(dim=1).argsort()[:k])
    assert "the point itself" in capsys.readouterr().out
    assert not sl.check.nearest_neighbours(lambda e, i, k: (e - e[i]).norm(dim=1).argsort(descending=True)[:k])
    assert "FARTHEST" in capsys.readouterr().out


def test_hardest_negative_check(capsys):
    def right(emb, labels):
        return torch.cdist(emb, emb).masked_fill(labels[:, None] == labels[None, :], float("inf")).argmin(1)

    assert sl.check.hardest_negative(right)
    assert not sl.check.hardest_negative(lambda e, l: torch.cdist(e, e).fill_diagonal_(float("inf")).argmin(1))
    assert "ANY class" in capsys.readouterr().out


def test_neighbour_overlap_check_agrees_with_the_library(capsys):
    assert sl.check.neighbour_overlap(lambda a, b, k: sl.viz.neighbour_overlap(a.numpy(), b.numpy(), k))

    def with_self(a, b, k):  # forgets to drop each point from its own neighbour list
        na, nb = torch.cdist(a, a).argsort(1)[:, :k], torch.cdist(b, b).argsort(1)[:, :k]
        return sum(len(set(x.tolist()) & set(y.tolist())) for x, y in zip(na, nb)) / (k * len(a))

    assert not sl.check.neighbour_overlap(with_self)
    assert "expected" in capsys.readouterr().out

"""make_pairs / make_triplets / PairDataset / TripletDataset on synthetic labels."""
from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch.utils.data import DataLoader

import siamlib as sl
from siamlib.data.pairs import make_pairs


def _labels():
    # non-contiguous ids, unequal class sizes, one singleton class (id 42)
    return torch.tensor([5] * 7 + [9] * 3 + [100] * 12 + [42] + [7] * 2)


@pytest.mark.parametrize("n", [1001, 1003, 1, 0])
def test_pairs_balanced_and_labelled_correctly(n):
    labels = _labels()
    i, j, dissimilar = make_pairs(labels, n, seed=3)
    assert i.shape == j.shape == dissimilar.shape == (n,)
    assert i.dtype == j.dtype == torch.int64 and dissimilar.dtype == torch.float32
    assert int((dissimilar == 0).sum()) == round(n / 2)  # exact balance
    # Hadsell's convention: Y = 1 for different classes, 0 for the same class
    torch.testing.assert_close(dissimilar, (labels[i] != labels[j]).float())
    assert bool((i != j).all()), "a pair of an image with itself"


def test_pairs_reproducible_and_seeded():
    labels = _labels()
    a = make_pairs(labels, 500, seed=11)
    b = make_pairs(labels, 500, seed=11)
    c = make_pairs(labels, 500, seed=12)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert not torch.equal(a[0], c[0])
    # same and different pairs are interleaved, not blocked
    assert 0 < int(a[2][:250].sum()) < 250


def test_pairs_partner_distribution_matches_exact_enumeration():
    """Empirical frequency of every (i, j) against the probabilities enumerated by a plain loop."""
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    n = 120_000
    i, j, d = make_pairs(labels, n, seed=0)
    counts = Counter(zip(i.tolist(), j.tolist()))
    lab = labels.tolist()
    size = Counter(lab)
    same_anchors = [a for a in range(6) if size[lab[a]] >= 2]
    expected = {}
    for a in range(6):
        for b in range(6):
            if a == b:
                continue
            if lab[a] == lab[b]:  # half of the pairs are "same"
                expected[(a, b)] = 0.5 / len(same_anchors) / (size[lab[a]] - 1)
            else:
                expected[(a, b)] = 0.5 / 6 / (6 - size[lab[a]])
    assert set(counts) == set(expected)
    for key, p in expected.items():
        assert abs(counts[key] / n - p) < 0.006, (key, counts[key] / n, p)


def test_pairs_errors_say_what_to_do():
    with pytest.raises(ValueError, match="classmate"):
        make_pairs(torch.arange(5), 10)  # all singletons: no same pair possible
    with pytest.raises(ValueError, match="another class"):
        make_pairs(torch.zeros(5, dtype=torch.int64), 10)  # one class: no different pair
    with pytest.raises(ValueError, match="integer"):
        make_pairs(torch.tensor([0.0, 1.0]), 10)
    # possible cases still work at the edges: one pair is a different-class pair
    i, j, d = make_pairs(torch.arange(5), 1)
    assert bool((d == 1).all())


def test_pair_dataset_items_and_batches():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (25, 6, 5), dtype=torch.uint8, generator=g)
    labels = _labels()
    ds = sl.data.PairDataset(images, labels, n_pairs=40, seed=2)
    assert len(ds) == 40
    x1, x2, y = ds[3]
    assert x1.shape == (1, 6, 5) and x1.dtype == torch.float32
    torch.testing.assert_close(x1, images[ds.i[3]].float().unsqueeze(0) / 255)
    torch.testing.assert_close(x2, images[ds.j[3]].float().unsqueeze(0) / 255)
    assert float(y) == float(labels[ds.i[3]] != labels[ds.j[3]])
    b1, b2, by = next(iter(DataLoader(ds, batch_size=8, shuffle=False)))
    assert b1.shape == (8, 1, 6, 5) and by.shape == (8,)
    for k in range(8):  # the batched fetch agrees with item-by-item access
        torch.testing.assert_close(b1[k], ds[k][0])
        torch.testing.assert_close(b2[k], ds[k][1])
    torch.testing.assert_close(by, ds.dissimilar[:8])
    with pytest.raises(ValueError, match="disagree"):
        sl.data.PairDataset(images[:3], labels, 4)


def test_pairs_invariants_on_random_label_sets():
    """Property test: any label set with >= 2 classes and a class of >= 2 samples."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=60, deadline=None)
    @given(
        st.lists(st.integers(0, 6), min_size=2, max_size=40),
        st.integers(0, 200),
        st.integers(0, 2**31),
    )
    def check(labels, n, seed):
        labels = torch.tensor(labels)
        sizes = torch.bincount(labels)
        n_same = round(n / 2)
        if n_same and sizes.max() < 2:
            with pytest.raises(ValueError):
                make_pairs(labels, n, seed=seed)
            return
        if n - n_same and labels.unique().numel() < 2:
            with pytest.raises(ValueError):
                make_pairs(labels, n, seed=seed)
            return
        i, j, d = make_pairs(labels, n, seed=seed)
        assert len(i) == n and int((d == 0).sum()) == n_same
        assert bool((i != j).all()) and bool(((i >= 0) & (i < len(labels)) & (j >= 0) & (j < len(labels))).all())
        assert torch.equal(d, (labels[i] != labels[j]).float())

    check()

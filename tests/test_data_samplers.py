"""PKSampler and EpisodeSampler on synthetic labels."""
from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import siamlib as sl


def _labels():
    g = torch.Generator().manual_seed(0)
    sizes = [30, 12, 7, 3, 25, 9, 2, 40]  # class 6 has 2 samples (< k), class 3 has 3
    labels = torch.cat([torch.full((s,), c) for c, s in enumerate(sizes)])
    return labels[torch.randperm(len(labels), generator=g)]


def test_pk_batches_have_p_classes_times_k():
    labels = _labels()
    p, k = 4, 5
    sampler = sl.data.PKSampler(labels, p=p, k=k, n_batches=300, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 300
    seen = Counter()
    for batch in batches:
        assert len(batch) == p * k
        per_class = Counter(labels[batch].tolist())
        assert len(per_class) == p and set(per_class.values()) == {k}
        for c in per_class:
            idx = [b for b in batch if int(labels[b]) == c]
            n_c = int((labels == c).sum())
            # without replacement unless the class is smaller than k
            assert len(set(idx)) == (k if n_c >= k else len(set(idx)))
            assert len(set(idx)) <= n_c
        seen.update(per_class)
    assert set(seen) == set(range(8))  # every class gets drawn


def test_pk_reproducible_and_epochs_differ():
    labels = _labels()
    a = list(sl.data.PKSampler(labels, 3, 2, n_batches=5, seed=7))
    s = sl.data.PKSampler(labels, 3, 2, n_batches=5, seed=7)
    assert list(s) == a
    assert list(s) != a  # the next epoch continues the stream
    assert len(sl.data.PKSampler(labels, 2, 4)) == len(labels) // 8


def test_pk_in_a_dataloader_and_errors():
    labels = _labels()
    ds = TensorDataset(torch.arange(len(labels)), labels)
    loader = DataLoader(ds, batch_sampler=sl.data.PKSampler(labels, 2, 3, n_batches=4))
    for idx, lab in loader:
        assert idx.shape == (6,) and torch.equal(lab, labels[idx])
    with pytest.raises(ValueError, match="lower p"):
        sl.data.PKSampler(labels, p=9, k=2)
    with pytest.raises(ValueError, match=">= 1"):
        sl.data.PKSampler(labels, p=2, k=0)


def test_episodes_shape_and_classes():
    labels = _labels()
    n_way, k_shot, n_query = 3, 2, 3
    sampler = sl.data.EpisodeSampler(labels, n_way, k_shot, n_query, n_episodes=200, seed=1)
    seen = set()
    for ep in sampler:
        assert len(ep) == n_way * (k_shot + n_query) and len(set(ep)) == len(ep)
        rows = labels[ep].view(n_way, k_shot + n_query)
        assert bool((rows == rows[:, :1]).all()), "a row mixes classes"
        assert len(set(rows[:, 0].tolist())) == n_way
        seen.update(rows[:, 0].tolist())
    assert seen == {0, 1, 2, 4, 5, 7}  # classes 3 and 6 have < 5 samples: never used
    support, query = sampler.split(torch.tensor(ep))
    assert support.shape == (n_way, k_shot) and query.shape == (n_way, n_query)
    assert torch.equal(labels[support][:, 0], labels[query][:, 0])


def test_episodes_within_one_group():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(12).repeat_interleave(6)  # 12 classes × 6
    alphabet = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2])  # group of each class
    groups = alphabet[labels]
    perm = torch.randperm(len(labels), generator=g)
    labels, groups = labels[perm], groups[perm]
    sampler = sl.data.EpisodeSampler(labels, 4, 1, 2, n_episodes=100, groups=groups, seed=0)
    used = Counter()
    for ep in sampler:
        assert groups[ep].unique().numel() == 1
        used[int(groups[ep[0]])] += 1
    assert set(used) == {0, 2}  # group 1 has only 3 classes < n_way
    a = list(sl.data.EpisodeSampler(labels, 4, 1, 2, 5, groups=groups, seed=3))
    assert a == list(sl.data.EpisodeSampler(labels, 4, 1, 2, 5, groups=groups, seed=3))
    with pytest.raises(ValueError, match="single group"):
        sl.data.EpisodeSampler(labels, 6, 1, 1, 5, groups=groups)
    with pytest.raises(ValueError, match="spans several groups"):
        sl.data.EpisodeSampler(labels, 2, 1, 1, 5, groups=torch.randint(2, labels.shape, generator=g))

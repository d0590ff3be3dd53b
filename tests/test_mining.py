"""siamlib.mining and mined_triplet_loss against brute-force loops over all triplets and
pytorch-metric-learning's miners and TripletMarginLoss (a test-only dependency)."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

import siamlib as sl

pml_miners = pytest.importorskip("pytorch_metric_learning.miners")
from pytorch_metric_learning import distances as pml_distances  # noqa: E402
from pytorch_metric_learning import losses as pml_losses  # noqa: E402
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu  # noqa: E402


def batch(b=24, c=4, d=6, seed=0, normalize=True):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(b, d, generator=g)
    emb = F.normalize(emb, dim=1) if normalize else emb
    labels = torch.randint(0, c, (b,), generator=g)
    return emb, labels


def all_triplets_loop(labels):
    b = len(labels)
    return [(a, p, n) for a, p, n in itertools.product(range(b), repeat=3)
            if a != p and labels[a] == labels[p] and labels[a] != labels[n]]


def as_set(a, p, n):
    return set(zip(a.tolist(), p.tolist(), n.tolist()))


# ----------------------------------------------------------------------------- distances
def test_pairwise_distances_vs_cdist_and_loop():
    emb, _ = batch(b=15, d=5, normalize=False)
    d = sl.distances.pairwise_distances(emb)
    torch.testing.assert_close(d, torch.cdist(emb, emb), rtol=1e-4, atol=1e-4)
    loop = torch.tensor([[math.dist(x.tolist(), y.tolist()) for y in emb] for x in emb])
    torch.testing.assert_close(d, loop, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(sl.distances.pairwise_distances(emb, squared=True), loop**2, rtol=1e-4, atol=1e-4)
    assert torch.equal(d.diagonal(), torch.zeros(15))
    other = torch.randn(7, 5)
    torch.testing.assert_close(sl.distances.pairwise_distances(emb, other), torch.cdist(emb, other), rtol=1e-4, atol=1e-4)


def test_pairwise_distances_finite_gradient_with_duplicates():
    emb = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    sl.distances.pairwise_distances(emb).sum().backward()
    assert torch.isfinite(emb.grad).all()


# ----------------------------------------------------------------------------- pairs, counts
def test_count_vs_loop():
    labels = torch.tensor([0, 1, 0, 2, 1, 0, 3])
    assert sl.mining.count_valid_triplets(labels) == len(all_triplets_loop(labels))


def test_count_valid_triplets_pk_formula_mnist_batch():
    # P classes × K per class: P K (K − 1) (P − 1) K
    labels = torch.arange(10).repeat_interleave(8)
    assert sl.mining.count_valid_triplets(labels) == 10 * 8 * 7 * 9 * 8


# ----------------------------------------------------------------------------- miners vs loops
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batch_hard_vs_loop(seed):
    emb, labels = batch(seed=seed)
    labels[0] = 99  # a singleton: no positive, must be skipped
    d = sl.distances.pairwise_distances(emb)
    a, p, n = sl.mining.batch_hard(labels, d)
    want_anchors = [i for i in range(len(labels)) if (labels == labels[i]).sum() > 1 and (labels != labels[i]).any()]
    assert a.tolist() == want_anchors
    for ai, pi, ni in zip(a.tolist(), p.tolist(), n.tolist()):
        pos = [j for j in range(len(labels)) if j != ai and labels[j] == labels[ai]]
        neg = [j for j in range(len(labels)) if labels[j] != labels[ai]]
        assert math.isclose(float(d[ai, pi]), max(float(d[ai, j]) for j in pos))
        assert math.isclose(float(d[ai, ni]), min(float(d[ai, j]) for j in neg))
        assert pi != ai


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("margin", [0.1, 0.5])
def test_semi_hard_and_batch_all_vs_loop(seed, margin):
    emb, labels = batch(b=18, c=3, seed=seed)
    d = sl.distances.pairwise_distances(emb)
    trip = all_triplets_loop(labels)
    want_semi = {(a, p, n) for a, p, n in trip if d[a, p] < d[a, n] < d[a, p] + margin}
    want_active = {(a, p, n) for a, p, n in trip if d[a, n] < d[a, p] + margin}
    assert as_set(*sl.mining.semi_hard(labels, d, margin)) == want_semi
    assert as_set(*sl.mining.batch_all(labels, d, margin)) == want_active
    assert as_set(*sl.mining.batch_all(labels, d)) == set(trip)
    assert len(sl.mining.batch_all(labels, d)[0]) == len(trip)  # no duplicates


def pml_parts(margin, power=1, smooth=False):
    dist = pml_distances.LpDistance(normalize_embeddings=False, p=2, power=power)
    loss = pml_losses.TripletMarginLoss(margin=margin, distance=dist, smooth_loss=smooth)
    return dist, loss


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("squared", [False, True])
def test_miners_vs_pml(seed, squared):
    emb, labels = batch(b=64, c=6, d=8, seed=seed)
    dist, _ = pml_parts(0.2, power=2 if squared else 1)
    d = sl.distances.pairwise_distances(emb, squared=squared)
    a, p, n = pml_miners.BatchHardMiner(distance=dist)(emb, labels)
    ours = sl.mining.batch_hard(labels, d)
    torch.testing.assert_close(d[ours[0], ours[1]], d[a, p])  # same hardest distances (ties may pick another index)
    torch.testing.assert_close(d[ours[0], ours[2]], d[a, n])
    semi = pml_miners.TripletMarginMiner(margin=0.2, type_of_triplets="semihard", distance=dist)(emb, labels)
    assert as_set(*sl.mining.semi_hard(labels, d, 0.2)) == as_set(*semi)
    assert as_set(*sl.mining.batch_all(labels, d)) == as_set(*lmu.get_all_triplets_indices(labels))


@pytest.mark.parametrize("mining", ["batch_hard", "semi_hard", "batch_all"])
@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_mined_triplet_loss_vs_pml(mining, squared, seed):
    emb, labels = batch(b=48, c=5, d=8, seed=seed)
    margin = 0.2
    dist, loss_fn = pml_parts(margin, power=2 if squared else 1)
    x = emb.clone().requires_grad_(True)
    if mining == "batch_hard":
        ref = loss_fn(x, labels, pml_miners.BatchHardMiner(distance=dist)(x, labels))
    elif mining == "semi_hard":
        ref = loss_fn(x, labels, pml_miners.TripletMarginMiner(margin=margin, type_of_triplets="semihard", distance=dist)(x, labels))
    else:
        ref = loss_fn(x, labels)  # no miner: PML uses every valid triplet
    ref.backward()
    y = emb.clone().requires_grad_(True)
    loss, stats = sl.losses.mined_triplet_loss(y, labels, mining=mining, margin=margin, squared=squared)
    loss.backward()
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(y.grad, x.grad, rtol=1e-4, atol=1e-6)
    assert stats.n_valid == sl.mining.count_valid_triplets(labels)


def test_soft_batch_hard_vs_pml_smooth_loss():
    emb, labels = batch(b=40, c=4, d=8, seed=5)
    dist, loss_fn = pml_parts(0.0, smooth=True)
    x = emb.clone().requires_grad_(True)
    ref = loss_fn(x, labels, pml_miners.BatchHardMiner(distance=dist)(x, labels))
    ours, stats = sl.losses.mined_triplet_loss(emb, labels, mining="batch_hard", margin=0.0, soft=True)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    assert stats.n_active == stats.n_triplets


@pytest.mark.parametrize("mining", ["batch_hard", "semi_hard", "batch_all"])
def test_mined_loss_vs_loop_over_listed_triplets(mining):
    """'mean' reduction = the plain mean of triplet_loss over the listed triplets (a different code path)."""
    emb, labels = batch(b=20, c=3, seed=6)
    d = sl.distances.pairwise_distances(emb)
    a, p, n = {"batch_hard": lambda: sl.mining.batch_hard(labels, d),
               "semi_hard": lambda: sl.mining.semi_hard(labels, d, 0.3),
               "batch_all": lambda: sl.mining.batch_all(labels, d)}[mining]()
    want = sl.losses.triplet_loss(emb[a], emb[p], emb[n], margin=0.3, reduction="none")
    loss, stats = sl.losses.mined_triplet_loss(emb, labels, mining=mining, margin=0.3, reduction="mean")
    torch.testing.assert_close(loss, want.mean(), rtol=1e-5, atol=1e-6)
    assert stats.n_triplets == len(a) and stats.n_active == int((want > 0).sum())
    assert stats.fraction_active == pytest.approx(float((want > 0).float().mean()))
    s, _ = sl.losses.mined_triplet_loss(emb, labels, mining=mining, margin=0.3, reduction="sum")
    torch.testing.assert_close(s, want.sum(), rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- empty batches
@pytest.mark.parametrize("mining", ["batch_hard", "semi_hard", "batch_all"])
@pytest.mark.parametrize("labels", [torch.arange(6), torch.zeros(6, dtype=torch.long), torch.tensor([3])])
def test_no_valid_triplet_gives_zero_loss_and_count(mining, labels):
    emb = torch.randn(len(labels), 4, requires_grad=True)
    loss, stats = sl.losses.mined_triplet_loss(emb, labels, mining=mining)
    loss.backward()
    assert loss.item() == 0.0 and stats.n_triplets == 0 and stats.n_valid == 0 and stats.fraction_active == 0.0
    assert emb.grad is not None and torch.equal(emb.grad, torch.zeros_like(emb))
    d = sl.distances.pairwise_distances(emb.detach())
    for miner in (sl.mining.batch_hard(labels, d), sl.mining.semi_hard(labels, d, 0.2), sl.mining.batch_all(labels, d)):
        assert all(t.numel() == 0 and t.dtype == torch.long for t in miner)


def test_well_separated_batch_has_no_active_triplet():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    emb = torch.tensor([[0.0, 0], [0.01, 0], [5, 0], [5.01, 0], [0, 5], [0, 5.01]], requires_grad=True)
    for mining in ("batch_hard", "semi_hard", "batch_all"):
        loss, stats = sl.losses.mined_triplet_loss(emb, labels, mining=mining, margin=1.0)
        loss.backward()
        assert loss.item() == 0.0 and stats.n_active == 0 and torch.isfinite(emb.grad).all()


def test_identical_embeddings_finite_gradients():
    emb = torch.ones(8, 3, requires_grad=True)  # every distance is 0
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    for mining in ("batch_hard", "semi_hard", "batch_all"):
        emb.grad = None
        loss, stats = sl.losses.mined_triplet_loss(emb, labels, mining=mining, margin=0.2)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(emb.grad).all()
    assert stats.n_active == stats.n_valid  # at d = 0 every triplet violates the margin


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: sl.mining.batch_hard(torch.arange(4), torch.zeros(3, 3)), r"dist must be the \(4, 4\)"),
        (lambda: sl.mining.batch_hard(torch.zeros(0, dtype=torch.long), torch.zeros(0, 0)), "empty batch"),
        (lambda: sl.mining.batch_hard(torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, 2)), "1-D"),
        (lambda: sl.mining.batch_hard(torch.tensor([0.0, 1.0]), torch.zeros(2, 2)), "integer class ids"),
        (lambda: sl.mining.semi_hard(torch.arange(4), torch.zeros(4, 4), margin=0), "margin must be > 0"),
        (lambda: sl.mining.batch_all(torch.arange(4), torch.zeros(4, 4), margin=-1), "margin must be > 0"),
        (lambda: sl.distances.pairwise_distances(torch.zeros(0, 3)), "empty batch"),
        (lambda: sl.distances.pairwise_distances(torch.zeros(3)), r"\(B, D\)"),
        (lambda: sl.distances.pairwise_distances(torch.zeros(3, 2), torch.zeros(3, 4)), "feature size"),
        (lambda: sl.losses.mined_triplet_loss(torch.randn(4, 2), torch.arange(3)), r"shape \(4,\)"),
        (lambda: sl.losses.mined_triplet_loss(torch.randn(0, 2), torch.arange(0)), "empty batch"),
        (lambda: sl.losses.mined_triplet_loss(torch.randn(4, 2), torch.arange(4), mining="hard"), "mining must be one of"),
        (lambda: sl.losses.mined_triplet_loss(torch.randn(4, 2), torch.arange(4), margin=0), "margin must be > 0"),
        (lambda: sl.losses.mined_triplet_loss(torch.randn(4, 2), torch.arange(4), mining="semi_hard", soft=True), "only supported with mining='batch_hard'"),
        (lambda: sl.losses.mined_triplet_loss(torch.randn(4, 2), torch.arange(4), reduction="none"), "reduction must be one of"),
    ],
)
def test_mining_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()

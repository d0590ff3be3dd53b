"""Property tests (hypothesis): every loss is non-negative, zero on perfectly separated
inputs, and does not depend on the order of the batch."""
from __future__ import annotations

import pytest
import torch

import siamlib as sl

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


@st.composite
def pair_batches(draw):
    b = draw(st.integers(1, 12))
    d = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 10_000))
    g = torch.Generator().manual_seed(seed)
    scale = draw(st.sampled_from([1e-3, 1.0, 10.0]))
    x1 = scale * torch.randn(b, d, generator=g)
    x2 = scale * torch.randn(b, d, generator=g)
    if draw(st.booleans()):
        x2[: b // 2] = x1[: b // 2]  # some zero distances
    y = torch.randint(0, 2, (b,), generator=g)
    perm = torch.randperm(b, generator=g)
    margin = draw(st.floats(0.05, 5.0))
    return x1, x2, y, perm, margin


@st.composite
def labelled_batches(draw):
    n_classes = draw(st.integers(1, 5))
    per_class = draw(st.integers(1, 5))
    d = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 10_000))
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    emb = torch.randn(len(labels), d, generator=g)
    perm = torch.randperm(len(labels), generator=g)
    return emb, labels, perm, draw(st.floats(0.05, 2.0))


@SETTINGS
@given(pair_batches())
def test_contrastive_nonnegative_and_order_invariant(batch):
    x1, x2, y, perm, m = batch
    loss = sl.losses.contrastive_loss(x1, x2, y, margin=m)
    assert loss >= 0 and torch.isfinite(loss)
    torch.testing.assert_close(sl.losses.contrastive_loss(x1[perm], x2[perm], y[perm], margin=m), loss)


@SETTINGS
@given(pair_batches())
def test_contrastive_zero_when_perfectly_separated(batch):
    x1, _, y, _, m = batch
    far = x1 + m * 2.0 * torch.nn.functional.normalize(torch.ones_like(x1), dim=1)  # distance 2m
    x2 = torch.where(y[:, None].bool(), far, x1)  # similar pairs coincide, dissimilar ones are 2m apart
    assert sl.losses.contrastive_loss(x1, x2, y, margin=m).item() == 0.0


@SETTINGS
@given(pair_batches(), st.booleans(), st.booleans())
def test_triplet_nonnegative_order_invariant_and_zero_when_separated(batch, squared, soft):
    a, p, _, perm, m = batch
    n = a + 1.0
    loss = sl.losses.triplet_loss(a, p, n, margin=m, squared=squared, soft=soft)
    assert loss >= 0 and torch.isfinite(loss)
    torch.testing.assert_close(sl.losses.triplet_loss(a[perm], p[perm], n[perm], margin=m, squared=squared, soft=soft), loss)
    far = a + 10.0 * (m + 1.0)  # d_an >> d_ap + m when the positive is the anchor itself
    assert sl.losses.triplet_loss(a, a, far, margin=m, squared=squared).item() == 0.0


@SETTINGS
@given(labelled_batches(), st.sampled_from(["batch_hard", "semi_hard", "batch_all"]), st.booleans())
def test_mined_loss_nonnegative_and_order_invariant(batch, mining, squared):
    emb, labels, perm, m = batch
    loss, stats = sl.losses.mined_triplet_loss(emb, labels, mining=mining, margin=m, squared=squared)
    loss_p, stats_p = sl.losses.mined_triplet_loss(emb[perm], labels[perm], mining=mining, margin=m, squared=squared)
    assert loss >= 0 and torch.isfinite(loss)
    torch.testing.assert_close(loss_p, loss, rtol=1e-4, atol=1e-5)
    assert (stats_p.n_valid, stats_p.n_triplets, stats_p.n_active) == (stats.n_valid, stats.n_triplets, stats.n_active)
    assert 0 <= stats.n_active <= stats.n_triplets <= max(stats.n_valid, len(labels))


@SETTINGS
@given(labelled_batches(), st.sampled_from(["batch_hard", "semi_hard", "batch_all"]))
def test_mined_loss_zero_for_separated_classes(batch, mining):
    _, labels, perm, m = batch
    emb = torch.zeros(len(labels), 2)
    emb[:, 0] = labels.float() * 10.0 * (m + 1)  # classes are points 10(m+1) apart on a line
    loss, stats = sl.losses.mined_triplet_loss(emb[perm], labels[perm], mining=mining, margin=m)
    assert loss.item() == 0.0 and stats.n_active == 0


@SETTINGS
@given(pair_batches(), st.floats(1e-3, 1e2))
def test_nt_xent_bounds_and_order_invariant(batch, tau):
    z1, z2, _, perm, _ = batch
    if len(z1) < 2:
        return
    loss = sl.losses.nt_xent(z1, z2, temperature=tau)
    # at least log(1) = 0; a uniform guess over the 2N − 1 candidates would give log(2N − 1)
    assert loss >= -1e-5 and torch.isfinite(loss)
    torch.testing.assert_close(sl.losses.nt_xent(z1[perm], z2[perm], temperature=tau), loss, rtol=1e-4, atol=1e-4)


@SETTINGS
@given(pair_batches())
def test_koch_bce_nonnegative_and_order_invariant(batch):
    x1, _, y, perm, _ = batch
    logits = x1[:, 0] * 20
    loss = sl.losses.koch_bce(logits, y)
    assert loss >= 0 and torch.isfinite(loss)
    torch.testing.assert_close(sl.losses.koch_bce(logits[perm], y[perm]), loss)

"""sl.selfsup (lesson 07): two views, MoCo's momentum update and key queue, and the exercise self-checks, each
self-check run against the right answer and against wrong ones (it must reject every one)."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import siamlib as sl


# --------------------------------------------------------------------- two views
def test_two_views_are_random_different_and_seeded():
    x = torch.rand(6, 1, 28, 28)
    v1, v2 = sl.selfsup.two_views(x, torch.Generator().manual_seed(0))
    assert v1.shape == v2.shape == x.shape and v1.dtype == x.dtype
    assert not torch.allclose(v1, v2), "the two views must differ"
    w1, w2 = sl.selfsup.two_views(x, torch.Generator().manual_seed(0))
    assert torch.equal(v1, w1) and torch.equal(v2, w2), "a seeded generator must give the same views"
    assert float(v1.min()) >= 0.0 and float(v1.max()) <= 1.0 + 1e-6


def test_two_views_erase_a_patch():
    x = torch.ones(200, 1, 28, 28)
    v, _ = sl.selfsup.two_views(x, torch.Generator().manual_seed(1), degrees=0, scale=0, shear=0, translate=0,
                                erase_p=1.0, erase_size=(0.25, 0.25))
    blank = (v == 0).flatten(1).sum(1)  # (200,) erased pixels per image
    assert bool((blank >= 36).all()) and bool((blank <= 64).all()), blank[:10]  # a 7x7 patch, give or take a row
    kept, _ = sl.selfsup.two_views(x, torch.Generator().manual_seed(1), degrees=0, scale=0, shear=0, translate=0,
                                   erase_p=0.0)
    torch.testing.assert_close(kept, x)


@pytest.mark.parametrize("bad", [torch.rand(4, 28, 28), torch.randint(0, 255, (4, 1, 28, 28), dtype=torch.uint8)])
def test_two_views_reject_bad_images(bad):
    with pytest.raises(ValueError, match="to_float"):
        sl.selfsup.two_views(bad)


def test_two_views_reject_bad_erasing():
    with pytest.raises(ValueError, match="erase_p"):
        sl.selfsup.two_views(torch.rand(2, 1, 28, 28), erase_p=1.5)


# --------------------------------------------------------------------- momentum update
def _pair():
    torch.manual_seed(0)
    q = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    k = copy.deepcopy(q)
    with torch.no_grad():
        for p in q.parameters():
            p.add_(1.0)
        q[1].running_mean.fill_(5.0)
    return k, q


def test_momentum_update_is_the_ema_in_place():
    k, q = _pair()
    before = [p.detach().clone() for p in k.parameters()]
    ids = [id(p) for p in k.parameters()]
    sl.selfsup.momentum_update(k, q, 0.9)
    for b, p_k, p_q in zip(before, k.parameters(), q.parameters()):
        torch.testing.assert_close(p_k.detach(), 0.9 * b + 0.1 * p_q.detach())
    assert ids == [id(p) for p in k.parameters()], "must update in place"
    assert torch.equal(k[1].running_mean, q[1].running_mean), "buffers (batch-norm statistics) are copied"


def test_momentum_zero_copies_and_one_freezes():
    k, q = _pair()
    sl.selfsup.momentum_update(k, q, 0.0)
    assert all(torch.equal(a, b) for a, b in zip(k.parameters(), q.parameters()))
    k, q = _pair()
    before = [p.detach().clone() for p in k.parameters()]
    sl.selfsup.momentum_update(k, q, 1.0)
    assert all(torch.equal(a, b) for a, b in zip(k.parameters(), before))


def test_momentum_update_rejects_bad_input():
    k, q = _pair()
    with pytest.raises(ValueError, match="momentum"):
        sl.selfsup.momentum_update(k, q, 1.5)
    with pytest.raises(ValueError, match="deepcopy"):
        sl.selfsup.momentum_update(nn.Linear(4, 3), nn.Linear(4, 2, bias=False), 0.5)


# --------------------------------------------------------------------- queue
def test_key_queue_is_fifo():
    queue = sl.selfsup.KeyQueue(5, 2)
    assert len(queue) == 0 and queue.keys.shape == (0, 2)
    for start in range(0, 12, 3):  # pushes of 3 keys: 0-2, 3-5, 6-8, 9-11
        queue.push(torch.arange(start, start + 3, dtype=torch.float32)[:, None].repeat(1, 2))
    assert len(queue) == 5
    assert sorted(queue.keys[:, 0].tolist()) == [7.0, 8.0, 9.0, 10.0, 11.0], "the 5 newest keys must remain"
    assert queue.newest(5)[:, 0].tolist() == [7.0, 8.0, 9.0, 10.0, 11.0], "newest(n) is oldest first"
    assert queue.newest(2)[:, 0].tolist() == [10.0, 11.0]


def test_key_queue_detaches_and_rejects_bad_pushes():
    queue = sl.selfsup.KeyQueue(4, 3)
    keys = torch.randn(2, 3, requires_grad=True)
    queue.push(keys * 2)
    assert not queue.keys.requires_grad
    with pytest.raises(ValueError, match="at least as large"):
        queue.push(torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"\(B, 3\)"):
        queue.push(torch.randn(2, 4))
    with pytest.raises(ValueError, match="newest"):
        queue.newest(3)
    with pytest.raises(ValueError, match="positive int"):
        sl.selfsup.KeyQueue(0, 3)


def test_queue_feeds_info_nce():
    """The queue's keys are what sl.losses.info_nce takes as negative_keys (MoCo's loss)."""
    g = torch.Generator().manual_seed(0)
    queue = sl.selfsup.KeyQueue(32, 8)
    queue.push(torch.randn(16, 8, generator=g))
    q, k = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    qn, kn, nn_ = F.normalize(q, dim=1), F.normalize(k, dim=1), F.normalize(queue.keys, dim=1)
    logits = torch.cat([(qn * kn).sum(1, keepdim=True), qn @ nn_.T], 1) / 0.1
    torch.testing.assert_close(sl.losses.info_nce(q, k, queue.keys, temperature=0.1),
                               F.cross_entropy(logits, torch.zeros(4, dtype=torch.long)))


# --------------------------------------------------------------------- the self-checks reject wrong answers
def _right_grad(s_pos, s_neg, tau):
    return torch.softmax(torch.cat([s_pos.reshape(1), s_neg]) / tau, 0)[1:] / tau


WRONG_GRADS = {
    "no 1/tau": lambda s_pos, s_neg, tau: torch.softmax(torch.cat([s_pos.reshape(1), s_neg]) / tau, 0)[1:],
    "sign": lambda s_pos, s_neg, tau: -_right_grad(s_pos, s_neg, tau),
    "negatives only": lambda s_pos, s_neg, tau: torch.softmax(s_neg / tau, 0) / tau,
    "no temperature in softmax": lambda s_pos, s_neg, tau: torch.softmax(torch.cat([s_pos.reshape(1), s_neg]), 0)[1:] / tau,
    "times tau": lambda s_pos, s_neg, tau: torch.softmax(torch.cat([s_pos.reshape(1), s_neg]) * tau, 0)[1:] / tau,
    "positive included": lambda s_pos, s_neg, tau: torch.softmax(torch.cat([s_pos.reshape(1), s_neg]) / tau, 0) / tau,
    "a float": lambda s_pos, s_neg, tau: 0.5,
    "stub": lambda s_pos, s_neg, tau: (_ for _ in ()).throw(NotImplementedError("replace this raise")),
}


def test_check_negative_grad_accepts_the_right_answer(capsys):
    assert sl.selfsup.check_negative_grad(_right_grad) is True
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("name", WRONG_GRADS)
def test_check_negative_grad_rejects(name, capsys):
    assert sl.selfsup.check_negative_grad(WRONG_GRADS[name]) is False
    assert "❌" in capsys.readouterr().out


def _right_momentum(k, q, m):
    with torch.no_grad():
        for a, b in zip(k.parameters(), q.parameters()):
            a.mul_(m).add_(b, alpha=1 - m)


def _swapped(k, q, m):
    _right_momentum(k, q, 1 - m)


def _copy(k, q, m):
    k.load_state_dict(q.state_dict())


def _not_in_place(k, q, m):
    for a, b in zip(k.parameters(), q.parameters()):
        a = m * a + (1 - m) * b  # noqa: F841 - the classic slip: a new tensor bound to a local name


def _updates_query(k, q, m):
    _right_momentum(q, k, m)


def _stub(k, q, m):
    raise NotImplementedError("replace this raise")


@pytest.mark.parametrize("wrong", [_swapped, _copy, _not_in_place, _updates_query, _stub])
def test_check_momentum_update_rejects(wrong, capsys):
    assert sl.selfsup.check_momentum_update(wrong) is False
    assert "❌" in capsys.readouterr().out


def test_check_momentum_update_accepts(capsys):
    assert sl.selfsup.check_momentum_update(_right_momentum) is True


def test_check_momentum_update_rejects_the_reference_and_a_hard_coded_m(capsys):
    assert sl.selfsup.check_momentum_update(sl.selfsup.momentum_update) is False
    assert "write the update yourself" in capsys.readouterr().out
    assert sl.selfsup.check_momentum_update(lambda k, q, m: _right_momentum(k, q, 0.9)) is False
    assert "hard-coded" in capsys.readouterr().out
    before = sl.selfsup.momentum_update
    sl.selfsup.check_momentum_update(_right_momentum)
    assert sl.selfsup.momentum_update is before  # the reference is restored after the check


def _right_uniformity(z, t):
    i, j = torch.triu_indices(len(z), len(z), offset=1)
    return torch.exp(-t * torch.cdist(z, z).pow(2)[i, j]).mean().log()


WRONG_UNIFORMITY = {
    "diagonal included": lambda z, t: torch.exp(-t * torch.cdist(z, z).pow(2)).mean().log(),
    "no log": lambda z, t: _right_uniformity(z, t).exp(),
    "not squared": lambda z, t: torch.exp(-t * torch.pdist(z)).mean().log(),
    "sign": lambda z, t: torch.exp(t * torch.pdist(z).pow(2)).mean().log(),
    "mean of logs": lambda z, t: (-t * torch.pdist(z).pow(2)).mean(),
    "per-row": lambda z, t: torch.exp(-t * torch.cdist(z, z).pow(2)).mean(1).log(),
    "t ignored": lambda z, t: torch.exp(-torch.pdist(z).pow(2)).mean().log(),
    "stub": lambda z, t: (_ for _ in ()).throw(NotImplementedError("replace this raise")),
}


def test_check_uniformity_accepts(capsys):
    assert sl.selfsup.check_uniformity(_right_uniformity) is True
    assert sl.selfsup.check_uniformity(lambda z, t: torch.pdist(z).pow(2).mul(-t).exp().mean().log()) is True


@pytest.mark.parametrize("name", WRONG_UNIFORMITY)
def test_check_uniformity_rejects(name, capsys):
    assert sl.selfsup.check_uniformity(WRONG_UNIFORMITY[name]) is False
    assert "❌" in capsys.readouterr().out

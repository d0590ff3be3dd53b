"""Lesson 01's central claim, checked outside the notebook.

With the weights θ tied (the same module used in both branches of a twin
network), autograd's gradient is the SUM of the gradients that two untied
copies θ⁽¹⁾, θ⁽²⁾ (same initial values, one per branch) receive:

    dL/dθ = ∂L/∂θ⁽¹⁾ + ∂L/∂θ⁽²⁾   at θ⁽¹⁾ = θ⁽²⁾ = θ.

Trusted references: a gradient written out by hand with plain loops (linear
twin), and autograd on two independent deep copies. Derived in
notebooks/01_twin_network.ipynb.
"""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import siamlib as sl


def _contrastive(emb1: torch.Tensor, emb2: torch.Tensor, dissimilar: torch.Tensor, margin: float = 1.0):
    """Hadsell et al. (2006), written out here so this test depends on nothing but torch."""
    dist = (emb1 - emb2).pow(2).sum(1).clamp_min(1e-12).sqrt()  # (B,)
    per_pair = (1 - dissimilar) * 0.5 * dist**2 + dissimilar * 0.5 * (margin - dist).clamp_min(0) ** 2
    return per_pair.mean()


def _mlp(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(36, 10), nn.Tanh(), nn.Linear(10, 4)).double()


def _mnist_encoder(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    # Train mode on purpose: BatchNorm uses each call's own batch statistics.
    return sl.models.MnistEncoder(emb_dim=8, width=4).double().train()


def _pair_batch(shape, seed: int = 0, batch: int = 6):
    g = torch.Generator().manual_seed(seed)
    x1 = torch.rand(batch, *shape, generator=g, dtype=torch.float64)  # (B, 1, H, W)
    x2 = torch.rand(batch, *shape, generator=g, dtype=torch.float64)
    dissimilar = torch.tensor([0.0, 1.0] * (batch // 2), dtype=torch.float64)  # (B,)
    return x1, x2, dissimilar


def _tied_and_untied_grads(make_encoder, shape, seed=0):
    """Gradients of the tied twin, and of each branch of an untied pair with the same start."""
    tied = make_encoder(seed)
    branch1, branch2 = copy.deepcopy(tied), copy.deepcopy(tied)
    x1, x2, dissimilar = _pair_batch(shape, seed)

    _contrastive(tied(x1), tied(x2), dissimilar).backward()
    _contrastive(branch1(x1), branch2(x2), dissimilar).backward()

    names = [n for n, _ in tied.named_parameters()]
    g_tied = {n: p.grad.clone() for n, p in tied.named_parameters()}
    g1 = {n: p.grad.clone() for n, p in branch1.named_parameters()}
    g2 = {n: p.grad.clone() for n, p in branch2.named_parameters()}
    return names, g_tied, g1, g2


@pytest.mark.parametrize("make_encoder,shape", [(_mlp, (1, 6, 6)), (_mnist_encoder, (1, 28, 28))],
                         ids=["mlp", "sl.models.MnistEncoder"])
def test_tied_gradient_is_sum_of_branch_gradients(make_encoder, shape):
    names, g_tied, g1, g2 = _tied_and_untied_grads(make_encoder, shape)
    assert names, "the encoder has no parameters"
    for n in names:
        torch.testing.assert_close(g_tied[n], g1[n] + g2[n], rtol=1e-10, atol=1e-12, msg=lambda m: f"{n}: {m}")


@pytest.mark.parametrize("make_encoder,shape", [(_mlp, (1, 6, 6)), (_mnist_encoder, (1, 28, 28))],
                         ids=["mlp", "sl.models.MnistEncoder"])
def test_one_branch_alone_is_not_the_tied_gradient(make_encoder, shape):
    """Guards the test above against being vacuous: both terms of the sum matter."""
    names, g_tied, g1, g2 = _tied_and_untied_grads(make_encoder, shape)
    total = sum((g_tied[n] - g1[n]).abs().sum() for n in names)
    total2 = sum((g_tied[n] - g2[n]).abs().sum() for n in names)
    scale = sum(g_tied[n].abs().sum() for n in names)
    assert total > 1e-3 * scale and total2 > 1e-3 * scale


def test_linear_twin_gradient_matches_hand_formula():
    """f(x) = W x, L = Σ_b ‖W x1_b − W x2_b‖²: by hand, with r_b = W(x1_b − x2_b),

    ∂L/∂W⁽¹⁾ = Σ_b 2 r_b x1_bᵀ,  ∂L/∂W⁽²⁾ = −Σ_b 2 r_b x2_bᵀ,  dL/dW = Σ_b 2 r_b (x1_b − x2_b)ᵀ.
    """
    g = torch.Generator().manual_seed(3)
    W = torch.randn(3, 5, generator=g, dtype=torch.float64)
    x1 = torch.randn(4, 5, generator=g, dtype=torch.float64)  # (B, 5)
    x2 = torch.randn(4, 5, generator=g, dtype=torch.float64)

    # Hand-written, with loops (the trusted reference).
    hand1 = torch.zeros(3, 5, dtype=torch.float64)
    hand2 = torch.zeros(3, 5, dtype=torch.float64)
    for b in range(4):
        r = W @ (x1[b] - x2[b])  # (3,)
        for i in range(3):
            for j in range(5):
                hand1[i, j] += 2 * r[i] * x1[b, j]
                hand2[i, j] -= 2 * r[i] * x2[b, j]

    W_tied = W.clone().requires_grad_()
    ((x1 @ W_tied.T - x2 @ W_tied.T) ** 2).sum().backward()

    W1, W2 = W.clone().requires_grad_(), W.clone().requires_grad_()
    ((x1 @ W1.T - x2 @ W2.T) ** 2).sum().backward()

    torch.testing.assert_close(W1.grad, hand1)
    torch.testing.assert_close(W2.grad, hand2)
    torch.testing.assert_close(W_tied.grad, hand1 + hand2)


def test_siamese_net_distance_head_gradient_is_sum_of_branches():
    """sl.models.SiameseNet runs both inputs through ONE encoder in one pass; in eval mode
    (BatchNorm on running statistics) that is the same function as two separate calls, so
    its gradient must be the sum of the two untied branches' gradients."""
    encoder = _mnist_encoder(1)
    with torch.no_grad():  # give BatchNorm non-trivial running statistics
        encoder(torch.rand(32, 1, 28, 28, dtype=torch.float64))
    encoder.eval()
    net = sl.models.SiameseNet(copy.deepcopy(encoder), head="distance")
    branch1, branch2 = copy.deepcopy(encoder), copy.deepcopy(encoder)
    x1, x2, dissimilar = _pair_batch((1, 28, 28), seed=5)

    def loss_from_dist(dist):
        return ((1 - dissimilar) * dist**2 + dissimilar * (1.0 - dist).clamp_min(0) ** 2).mean()

    loss_from_dist(net(x1, x2)).backward()
    dist_untied = (branch1(x1) - branch2(x2)).pow(2).sum(1).clamp_min(1e-12).sqrt()  # (B,)
    loss_from_dist(dist_untied).backward()

    for (n, p), p1, p2 in zip(net.encoder.named_parameters(), branch1.parameters(), branch2.parameters()):
        torch.testing.assert_close(p.grad, p1.grad + p2.grad, rtol=1e-10, atol=1e-12, msg=lambda m: f"{n}: {m}")


def test_summed_gradient_keeps_copies_tied_and_independent_updates_drift():
    """Training: giving both copies the summed gradient reproduces the tied model step for
    step; giving each copy only its own gradient makes them drift apart."""
    tied = _mlp(7)
    synced1, synced2 = copy.deepcopy(tied), copy.deepcopy(tied)
    free1, free2 = copy.deepcopy(tied), copy.deepcopy(tied)
    lr = 0.1
    for step in range(5):
        x1, x2, dissimilar = _pair_batch((1, 6, 6), seed=100 + step)
        for f1, f2 in [(tied, tied), (synced1, synced2), (free1, free2)]:
            for p in [*f1.parameters(), *f2.parameters()]:
                p.grad = None
            _contrastive(f1(x1), f2(x2), dissimilar).backward()
        with torch.no_grad():
            for p in tied.parameters():
                p -= lr * p.grad
            for p1, p2 in zip(synced1.parameters(), synced2.parameters()):
                g = p1.grad + p2.grad
                p1 -= lr * g
                p2 -= lr * g
            for p1, p2 in zip(free1.parameters(), free2.parameters()):
                p1 -= lr * p1.grad
                p2 -= lr * p2.grad

    for p, p1, p2 in zip(tied.parameters(), synced1.parameters(), synced2.parameters()):
        torch.testing.assert_close(p1, p)
        torch.testing.assert_close(p2, p)
    drift = torch.sqrt(sum(((p1 - p2) ** 2).sum() for p1, p2 in zip(free1.parameters(), free2.parameters())))
    assert drift > 1e-3, f"independently updated copies should drift apart; ‖θ¹−θ²‖ = {drift:.2e}"

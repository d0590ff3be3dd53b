"""siamlib.losses against the papers' formulas (hand-computed 2-D cases), naive loops,
torch built-ins and pytorch-metric-learning (a test-only dependency)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import siamlib as sl

pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
from pytorch_metric_learning import distances as pml_distances  # noqa: E402
from pytorch_metric_learning import reducers as pml_reducers  # noqa: E402


def on_circle(*degrees: float) -> torch.Tensor:
    """Unit 2-D points at the given angles: d(θ1, θ2) = 2 sin(|θ1 − θ2| / 2)."""
    t = torch.tensor([math.radians(d) for d in degrees], dtype=torch.float64)
    return torch.stack([torch.cos(t), torch.sin(t)], dim=1)


def chord(deg: float) -> float:
    return 2 * math.sin(math.radians(deg) / 2)


# ----------------------------------------------------------------------------- contrastive
def contrastive_loop(x1, x2, y, m):
    """Hadsell et al. 2006, eq. (4), one pair at a time."""
    out = []
    for i in range(len(y)):
        d = math.sqrt(sum((float(a) - float(b)) ** 2 for a, b in zip(x1[i], x2[i])))
        out.append((1 - float(y[i])) * 0.5 * d**2 + float(y[i]) * 0.5 * max(0.0, m - d) ** 2)
    return torch.tensor(out, dtype=torch.float64)


def test_contrastive_hand_computed_2d():
    # anchors at 0°, partners at 60° (d = 1), 90° (d = √2), 30°, 180° (d = 2)
    x1 = on_circle(0, 0, 0, 0)
    x2 = on_circle(60, 90, 30, 180)
    y = torch.tensor([0, 1, 1, 1])  # similar, dissimilar, dissimilar, dissimilar
    m = 1.5
    expected = torch.tensor(
        [0.5 * 1.0**2, 0.5 * (m - math.sqrt(2)) ** 2, 0.5 * (m - chord(30)) ** 2, 0.0], dtype=torch.float64
    )
    got = sl.losses.contrastive_loss(x1, x2, y, margin=m, reduction="none")
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(sl.losses.contrastive_loss(x1, x2, y, margin=m), expected.mean())
    torch.testing.assert_close(sl.losses.contrastive_loss(x1, x2, y, margin=m, reduction="sum"), expected.sum())


def test_contrastive_vs_loop_random():
    g = torch.Generator().manual_seed(0)
    x1, x2 = torch.randn(40, 5, generator=g), torch.randn(40, 5, generator=g)
    y = torch.randint(0, 2, (40,), generator=g)
    got = sl.losses.contrastive_loss(x1, x2, y, margin=3.0, reduction="none")
    torch.testing.assert_close(got, contrastive_loop(x1, x2, y, 3.0).float())


def test_contrastive_bool_labels_and_torch_distance():
    g = torch.Generator().manual_seed(1)
    x1, x2 = torch.randn(10, 3, generator=g), torch.randn(10, 3, generator=g)
    y = torch.rand(10, generator=g) > 0.5
    ref = sl.losses.contrastive_loss(x1, x2, y.long(), margin=2.0)
    torch.testing.assert_close(sl.losses.contrastive_loss(x1, x2, y, margin=2.0), ref)
    dist = F.pairwise_distance(x1, x2, eps=0.0)  # torch's own distance, as a 1-D embedding against the origin
    torch.testing.assert_close(sl.losses.contrastive_loss(dist[:, None], torch.zeros(10, 1), y, margin=2.0), ref)


def test_pair_distance_vs_torch_pairwise_distance():
    g = torch.Generator().manual_seed(2)
    x1, x2 = torch.randn(30, 7, generator=g), torch.randn(30, 7, generator=g)
    torch.testing.assert_close(sl.distances.pair_distance(x1, x2), F.pairwise_distance(x1, x2, eps=0.0))
    torch.testing.assert_close(sl.distances.pair_distance(x1, x2, squared=True), F.pairwise_distance(x1, x2, eps=0.0) ** 2)


def test_contrastive_vs_pml_per_pair():
    """PML's ContrastiveLoss(pos_margin=0, neg_margin=m) is the *unsquared, un-halved* form:
    pos: relu(d), neg: relu(m − d). Hadsell's per-pair loss is ½·(that)²."""
    g = torch.Generator().manual_seed(3)
    emb = torch.randn(24, 4, generator=g)
    labels = torch.randint(0, 4, (24,), generator=g)
    m = 2.5
    pml = pml_losses.ContrastiveLoss(
        pos_margin=0.0, neg_margin=m,
        distance=pml_distances.LpDistance(normalize_embeddings=False), reducer=pml_reducers.DoNothingReducer(),
    )
    out = pml(emb, labels)
    for key, dissimilar in (("pos_loss", 0), ("neg_loss", 1)):
        i, j = out[key]["indices"]
        y = torch.full((len(i),), dissimilar)
        ours = sl.losses.contrastive_loss(emb[i], emb[j], y, margin=m, reduction="none")
        torch.testing.assert_close(ours, 0.5 * out[key]["losses"] ** 2, rtol=1e-5, atol=1e-5)


def test_contrastive_finite_gradient_at_zero_distance():
    x1 = torch.tensor([[0.3, -0.2], [1.0, 1.0], [0.0, 0.0]], requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)  # identical: D = 0 for every pair
    loss = sl.losses.contrastive_loss(x1, x2, torch.tensor([0, 1, 1]), margin=1.0)
    loss.backward()
    assert torch.isfinite(x1.grad).all() and torch.isfinite(x2.grad).all()
    torch.testing.assert_close(loss, torch.tensor(2 * 0.5 / 3))  # two dissimilar pairs at D = 0 cost ½ m² each
    # the naive formula really does produce NaN here: the test above would catch a plain sqrt
    x = x1.detach().clone().requires_grad_(True)
    ((x - x2.detach()).pow(2).sum(1).sqrt()).sum().backward()
    assert torch.isnan(x.grad).any()


def test_contrastive_gradient_matches_autograd_of_formula():
    g = torch.Generator().manual_seed(4)
    x1 = torch.randn(8, 3, generator=g, dtype=torch.float64, requires_grad=True)
    x2 = torch.randn(8, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 0, 1, 1, 0, 1, 1])
    assert torch.autograd.gradcheck(lambda a, b: sl.losses.contrastive_loss(a, b, y, margin=2.0), (x1, x2))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(x1=torch.randn(4, 2), x2=torch.randn(5, 2), y=torch.zeros(4)), "same shape"),
        (dict(x1=torch.randn(4, 2), x2=torch.randn(4, 2), y=torch.zeros(3)), r"shape \(4,\)"),
        (dict(x1=torch.randn(4, 2), x2=torch.randn(4, 2), y=torch.tensor([0, 1, 2, 1])), "only 0 .similar pair. and 1"),
        (dict(x1=torch.randn(4, 2), x2=torch.randn(4, 2), y=torch.tensor([-1, 1, 1, -1])), "Y = 0 means similar"),
        (dict(x1=torch.randn(4, 2), x2=torch.randn(4, 2), y=torch.zeros(4), margin=0.0), "margin must be > 0"),
        (dict(x1=torch.randn(4, 2), x2=torch.randn(4, 2), y=torch.zeros(4), margin=-1.0), "margin must be > 0"),
        (dict(x1=torch.randn(0, 2), x2=torch.randn(0, 2), y=torch.zeros(0)), "empty batch"),
        (dict(x1=torch.randn(4), x2=torch.randn(4), y=torch.zeros(4)), r"shape \(B, D\)"),
        (dict(x1=torch.randn(4, 2), x2=torch.randn(4, 2), y=torch.zeros(4), reduction="avg"), "reduction must be one of"),
    ],
)
def test_contrastive_bad_input(kwargs, match):
    x1, x2, y = kwargs.pop("x1"), kwargs.pop("x2"), kwargs.pop("y")
    with pytest.raises(ValueError, match=match):
        sl.losses.contrastive_loss(x1, x2, y, **kwargs)


# ----------------------------------------------------------------------------- triplet
def triplet_loop(a, p, n, margin, squared=False, soft=False):
    out = []
    for i in range(len(a)):
        dap = sum((float(u) - float(v)) ** 2 for u, v in zip(a[i], p[i]))
        dan = sum((float(u) - float(v)) ** 2 for u, v in zip(a[i], n[i]))
        if not squared:
            dap, dan = math.sqrt(dap), math.sqrt(dan)
        x = dap - dan + margin
        out.append(math.log1p(math.exp(x)) if soft else max(0.0, x))
    return torch.tensor(out, dtype=torch.float64)


def test_triplet_hand_computed_2d():
    a, p, n = on_circle(0, 0, 0), on_circle(60, 60, 20), on_circle(90, 180, 90)
    # rows: (d_ap, d_an) = (1, √2), (1, 2), (chord 20°, √2)
    got = sl.losses.triplet_loss(a, p, n, margin=0.5, reduction="none")
    want = torch.tensor([max(0, 1 - math.sqrt(2) + 0.5), max(0, 1 - 2 + 0.5), max(0, chord(20) - math.sqrt(2) + 0.5)],
                        dtype=torch.float64)
    torch.testing.assert_close(got, want)
    sq = sl.losses.triplet_loss(a, p, n, margin=0.5, squared=True, reduction="none")  # FaceNet: squared distances
    torch.testing.assert_close(sq, torch.tensor([0.0, 0.0, max(0, chord(20) ** 2 - 2 + 0.5)], dtype=torch.float64))
    soft = sl.losses.triplet_loss(a, p, n, margin=0.0, soft=True, reduction="none")  # Hermans et al. soft margin
    torch.testing.assert_close(soft, torch.tensor([math.log1p(math.exp(1 - math.sqrt(2))), math.log1p(math.exp(-1)),
                                                   math.log1p(math.exp(chord(20) - math.sqrt(2)))], dtype=torch.float64))


@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("soft", [False, True])
def test_triplet_vs_loop(squared, soft):
    g = torch.Generator().manual_seed(5)
    a, p, n = (torch.randn(25, 6, generator=g) for _ in range(3))
    got = sl.losses.triplet_loss(a, p, n, margin=0.7, squared=squared, soft=soft, reduction="none")
    torch.testing.assert_close(got, triplet_loop(a, p, n, 0.7, squared, soft).float())


def test_triplet_vs_torch_triplet_margin_loss():
    g = torch.Generator().manual_seed(6)
    a, p, n = (torch.randn(50, 8, generator=g) for _ in range(3))
    ref = torch.nn.TripletMarginLoss(margin=1.0, p=2, eps=0.0)(a, p, n)
    torch.testing.assert_close(sl.losses.triplet_loss(a, p, n, margin=1.0), ref)
    ref_none = F.triplet_margin_loss(a, p, n, margin=0.3, eps=0.0, reduction="none")
    torch.testing.assert_close(sl.losses.triplet_loss(a, p, n, margin=0.3, reduction="none"), ref_none)


def test_triplet_finite_gradient_at_zero_distance():
    a = torch.tensor([[0.5, 0.5], [1.0, 0.0]], requires_grad=True)
    loss = sl.losses.triplet_loss(a, a, a, margin=0.2)  # every distance is 0
    loss.backward()
    assert torch.isfinite(a.grad).all()
    torch.testing.assert_close(loss, torch.tensor(0.2))


@pytest.mark.parametrize(
    "shapes, kwargs, match",
    [
        (((4, 2), (4, 2), (3, 2)), {}, "same shape"),
        (((4, 2), (4, 3), (4, 2)), {}, "same shape"),
        (((4, 2), (4, 2), (4, 2)), {"margin": 0.0}, "margin must be > 0"),
        (((4, 2), (4, 2), (4, 2)), {"margin": -0.1, "soft": True}, "margin must be >= 0"),
        (((0, 2), (0, 2), (0, 2)), {}, "empty batch"),
    ],
)
def test_triplet_bad_input(shapes, kwargs, match):
    a, p, n = (torch.randn(*s) for s in shapes)
    with pytest.raises(ValueError, match=match):
        sl.losses.triplet_loss(a, p, n, **kwargs)


# ----------------------------------------------------------------------------- NT-Xent / InfoNCE
def nt_xent_loop(z1, z2, tau):
    z = torch.cat([z1, z2]).double()
    z = z / z.norm(dim=1, keepdim=True)
    n2 = len(z)
    total = 0.0
    for k in range(n2):
        twin = (k + n2 // 2) % n2
        sims = [float(z[k] @ z[j]) / tau for j in range(n2)]
        denom = sum(math.exp(s) for j, s in enumerate(sims) if j != k)
        total += -math.log(math.exp(sims[twin]) / denom)
    return total / n2


def test_nt_xent_hand_computed_2d():
    # views at 0°/30° (example 0) and 90°/120° (example 1): cosines are cos of angle gaps
    z1, z2 = on_circle(0, 90), on_circle(30, 120)
    tau = 0.5
    c = lambda deg: math.cos(math.radians(deg)) / tau  # noqa: E731
    # view 0° : twin 30°, others 90°, 120° ; view 90°: twin 120°, others 0°, 30°; symmetric for the rest
    l0 = -c(30) + math.log(math.exp(c(30)) + math.exp(c(90)) + math.exp(c(120)))
    l1 = -c(30) + math.log(math.exp(c(30)) + math.exp(c(90)) + math.exp(c(60)))
    l2 = -c(30) + math.log(math.exp(c(30)) + math.exp(c(60)) + math.exp(c(90)))  # view 30°: 0°, 90°, 120°
    l3 = -c(30) + math.log(math.exp(c(30)) + math.exp(c(120)) + math.exp(c(90)))  # view 120°: 90°, 0°, 30°
    want = (l0 + l1 + l2 + l3) / 4
    torch.testing.assert_close(sl.losses.nt_xent(z1, z2, temperature=tau), torch.tensor(want, dtype=torch.float64))


@pytest.mark.parametrize("tau", [0.05, 0.5, 2.0])
def test_nt_xent_vs_loop_and_pml(tau):
    g = torch.Generator().manual_seed(7)
    z1, z2 = torch.randn(12, 5, generator=g), torch.randn(12, 5, generator=g)
    got = sl.losses.nt_xent(z1, z2, temperature=tau)
    torch.testing.assert_close(got.double(), torch.tensor(nt_xent_loop(z1, z2, tau), dtype=torch.float64), rtol=1e-5, atol=1e-5)
    labels = torch.arange(12).repeat(2)  # view i and view i + N share a label: SimCLR's setting in PML
    ref = pml_losses.NTXentLoss(temperature=tau)(torch.cat([z1, z2]), labels)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def nt_xent_float64(z1, z2, tau):
    """The same sum as nt_xent_loop, in float64 with log-sum-exp (the loop's exp overflows at tiny τ)."""
    z = F.normalize(torch.cat([z1, z2]).double(), dim=1)
    n2 = len(z)
    sims = z @ z.T / tau
    sims.fill_diagonal_(float("-inf"))
    twin = (torch.arange(n2) + n2 // 2) % n2
    return (torch.logsumexp(sims, dim=1) - sims[torch.arange(n2), twin]).mean()


@pytest.mark.parametrize("tau", [1e-4, 1e-2, 1e3])
def test_nt_xent_finite_at_extreme_temperature_float32(tau):
    g = torch.Generator().manual_seed(8)
    z1 = torch.randn(16, 8, generator=g, requires_grad=True)
    z2 = (z1.detach() + 0.3 * torch.randn(16, 8, generator=g)).requires_grad_(True)
    loss = sl.losses.nt_xent(z1, z2, temperature=tau)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z1.grad).all() and torch.isfinite(z2.grad).all()
    want = nt_xent_float64(z1.detach(), z2.detach(), tau)
    torch.testing.assert_close(loss.double(), want, rtol=1e-3, atol=1e-3 * max(1.0, 1 / tau) * 1e-3)
    if tau >= 1e-2:
        torch.testing.assert_close(want, torch.tensor(nt_xent_loop(z1.detach(), z2.detach(), tau), dtype=torch.float64))


def test_nt_xent_identical_views_finite_gradient():
    z = torch.randn(6, 4, requires_grad=True)
    loss = sl.losses.nt_xent(z, z, temperature=0.1)
    loss.backward()
    assert torch.isfinite(z.grad).all()


def test_info_nce_in_batch_and_queue_vs_loop():
    g = torch.Generator().manual_seed(9)
    q, k, neg = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g), torch.randn(10, 4, generator=g)
    tau = 0.2
    qn, kn, nn_ = (F.normalize(t.double(), dim=1) for t in (q, k, neg))
    in_batch = sum(-float(qn[i] @ kn[i]) / tau + math.log(sum(math.exp(float(qn[i] @ kn[j]) / tau) for j in range(6)))
                   for i in range(6)) / 6
    queue = sum(-float(qn[i] @ kn[i]) / tau + math.log(math.exp(float(qn[i] @ kn[i]) / tau)
                + sum(math.exp(float(qn[i] @ nn_[j]) / tau) for j in range(10))) for i in range(6)) / 6
    torch.testing.assert_close(sl.losses.info_nce(q, k, temperature=tau).double(), torch.tensor(in_batch, dtype=torch.float64), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sl.losses.info_nce(q, k, neg, temperature=tau).double(), torch.tensor(queue, dtype=torch.float64), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fn", ["nt_xent", "info_nce"])
@pytest.mark.parametrize("tau, match", [(0.0, "temperature must be > 0"), (-0.5, "temperature must be > 0")])
def test_temperature_losses_bad_temperature(fn, tau, match):
    with pytest.raises(ValueError, match=match):
        getattr(sl.losses, fn)(torch.randn(4, 3), torch.randn(4, 3), temperature=tau)


@pytest.mark.parametrize("fn", ["nt_xent", "info_nce"])
def test_temperature_losses_bad_shapes(fn):
    with pytest.raises(ValueError, match="same shape"):
        getattr(sl.losses, fn)(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="empty batch"):
        getattr(sl.losses, fn)(torch.randn(0, 3), torch.randn(0, 3))


def test_info_nce_bad_negatives():
    with pytest.raises(ValueError, match="negative_keys must have shape"):
        sl.losses.info_nce(torch.randn(4, 3), torch.randn(4, 3), torch.randn(5, 2))


# ----------------------------------------------------------------------------- Koch BCE
def test_koch_bce_vs_formula_and_torch():
    logits = torch.tensor([3.0, -2.0, 0.0, 50.0, -50.0])
    dissimilar = torch.tensor([0, 1, 1, 1, 0])
    same = 1.0 - dissimilar.double()
    pr = torch.sigmoid(logits.double())
    # BCE written out: −[y log p + (1 − y) log(1 − p)] with y = same; ±50 stays finite via log-sigmoid
    log_p, log_1mp = F.logsigmoid(logits.double()), F.logsigmoid(-logits.double())
    want = -(same * log_p + (1 - same) * log_1mp)
    got = torch.stack([sl.losses.koch_bce(logits[k:k + 1], dissimilar[k:k + 1]) for k in range(len(logits))])
    torch.testing.assert_close(got.double(), want, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(got[:3], F.binary_cross_entropy(pr[:3].float(), same[:3].float(), reduction="none"))
    assert torch.isfinite(got).all()
    torch.testing.assert_close(sl.losses.koch_bce(logits[:, None], dissimilar), want.mean().float())


def test_koch_bce_bad_input():
    with pytest.raises(ValueError, match="only 0 .similar pair. and 1"):
        sl.losses.koch_bce(torch.zeros(3), torch.tensor([0, 2, 1]))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        sl.losses.koch_bce(torch.zeros(3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="empty batch"):
        sl.losses.koch_bce(torch.zeros(0), torch.zeros(0))
    with pytest.raises(ValueError, match=r"shape \(B,\) or \(B, 1\)"):
        sl.losses.koch_bce(torch.zeros(3, 2), torch.zeros(3))

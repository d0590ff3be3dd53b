"""sl.models: shapes, normalisation, weight sharing, the two heads."""
from __future__ import annotations

import pytest
import torch

import siamlib as sl


@pytest.mark.parametrize("enc,size", [(sl.models.MnistEncoder, 28), (sl.models.OmniglotEncoder, 28),
                                      (sl.models.OmniglotEncoder, 35)])
def test_encoder_shapes_and_unit_norm(enc, size):
    torch.manual_seed(0)
    model = enc(emb_dim=16).eval()
    emb = model(torch.rand(5, 1, size, size))
    assert emb.shape == (5, 16)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(5))


def test_unnormalised_encoder_is_not_unit_norm():
    torch.manual_seed(0)
    emb = sl.models.MnistEncoder(emb_dim=8, normalize=False).eval()(torch.rand(4, 1, 28, 28))
    assert not torch.allclose(emb.norm(dim=1), torch.ones(4))


def test_distance_head_equals_encoder_distance():
    torch.manual_seed(0)
    net = sl.models.SiameseNet(sl.models.MnistEncoder(emb_dim=8)).eval()
    x1, x2 = torch.rand(6, 1, 28, 28), torch.rand(6, 1, 28, 28)
    expected = torch.stack([torch.dist(net.embed(x1[i:i + 1])[0], net.embed(x2[i:i + 1])[0]) for i in range(6)])
    torch.testing.assert_close(net(x1, x2), expected, rtol=1e-5, atol=1e-5)


def test_koch_head_is_weighted_l1_logit():
    torch.manual_seed(0)
    net = sl.models.SiameseNet(sl.models.OmniglotEncoder(emb_dim=8), head="koch").eval()
    x1, x2 = torch.rand(3, 1, 28, 28), torch.rand(3, 1, 28, 28)
    e1, e2 = net.embed(x1), net.embed(x2)
    expected = (e1 - e2).abs() @ net.koch.weight[0] + net.koch.bias[0]
    torch.testing.assert_close(net(x1, x2), expected)


def test_weights_are_shared_gradient_is_sum_of_branches():
    torch.manual_seed(0)
    enc = sl.models.MnistEncoder(emb_dim=4, normalize=False)
    net = sl.models.SiameseNet(enc).eval()  # eval: batch norm uses running stats in both ways
    x1, x2 = torch.rand(2, 1, 28, 28), torch.rand(2, 1, 28, 28)
    net(x1, x2).sum().backward()
    shared = enc.proj.weight.grad.clone()
    # reference: two untied copies of the encoder, gradients added
    import copy
    a, b = copy.deepcopy(enc), copy.deepcopy(enc)
    for m in (a, b):
        m.zero_grad()
    ((a(x1) - b(x2)).pow(2).sum(1).clamp_min(1e-12).sqrt()).sum().backward()
    torch.testing.assert_close(shared, a.proj.weight.grad + b.proj.weight.grad, rtol=1e-4, atol=1e-6)


def test_bad_inputs_raise_value_error():
    enc = sl.models.MnistEncoder()
    with pytest.raises(ValueError, match="to_float"):
        enc(torch.zeros(2, 28, 28))
    with pytest.raises(ValueError, match="float32"):
        enc(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match="head"):
        sl.models.SiameseNet(enc, head="cosine")
    with pytest.raises(ValueError, match="same shape"):
        sl.models.SiameseNet(enc)(torch.rand(2, 1, 28, 28), torch.rand(3, 1, 28, 28))

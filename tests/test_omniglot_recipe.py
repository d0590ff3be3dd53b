"""sl.steps.omniglot_recipe: the one recipe of lesson 06 and bench/omniglot.py, on a tiny synthetic alphabet set."""
import pytest
import torch

import siamlib as sl
from siamlib.data.images import ImageSet


def _tiny_set(n_alphabets=2, chars=6, drawers=3, size=16):
    g = torch.Generator().manual_seed(0)
    n = n_alphabets * chars
    protos = torch.randint(0, 256, (n, size, size), dtype=torch.uint8, generator=g)
    images = protos.repeat_interleave(drawers, 0)  # (n * drawers, H, W)
    labels = torch.arange(n).repeat_interleave(drawers)
    return ImageSet(images, labels, [f"c{i}" for i in range(n)], groups=labels // chars)


def _net(head="distance"):
    sl.train.seed_everything(0)
    return sl.models.SiameseNet(sl.models.OmniglotEncoder(emb_dim=8, normalize=False, width=4), head=head)


def test_recipe_runs_exactly_the_steps_and_finishes():
    net = _net()
    history = sl.steps.omniglot_recipe(net, _tiny_set(), steps=5, n_way=4, device="cpu")
    assert len(history) == 5 and not history.interrupted  # load_or_train saves it as finished
    assert set(history.keys()) >= {"loss", "error", "pos_dist", "neg_dist"}


def test_recipe_with_koch_head_trains_the_head_only_in_its_last_share():
    trained = {}
    for share in (1e-6, 0.3):  # 1e-6: the pair phase never starts within 10 steps
        net = _net("koch")
        before = net.koch.weight.detach().clone()
        sl.steps.omniglot_recipe(net, _tiny_set(), steps=10, n_way=4, koch_share=share, device="cpu")
        trained[share] = not torch.equal(before, net.koch.weight.detach())
    assert trained == {1e-6: False, 0.3: True}


def test_recipe_refuses_an_ambiguous_budget():
    with pytest.raises(ValueError, match="exactly one of steps= or max_seconds="):
        sl.steps.omniglot_recipe(_net(), _tiny_set(), device="cpu")
    with pytest.raises(ValueError, match="exactly one"):
        sl.steps.omniglot_recipe(_net(), _tiny_set(), steps=3, max_seconds=3, device="cpu")

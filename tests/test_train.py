"""sl.train: device choice, determinism, checkpoint/resume, interrupt, load_or_train, diagnostics."""
from __future__ import annotations

import math

import pytest
import torch

import siamlib as sl


def tiny_model(seed: int = 0) -> torch.nn.Module:
    sl.train.seed_everything(seed)
    return sl.models.SiameseNet(sl.models.MnistEncoder(emb_dim=8, width=4))


def batches(epoch: int):
    """Seeded per epoch, so a resumed run sees exactly the batches it missed."""
    g = torch.Generator().manual_seed(100 + epoch)
    return [(torch.rand(12, 1, 28, 28, generator=g), torch.arange(12) % 3) for _ in range(4)]


def loss_fn(model, batch):
    x, labels = batch
    emb = model.embed(x)  # (B, D)
    loss, stats = sl.losses.mined_triplet_loss(emb, labels, mining="batch_hard", margin=0.5,
                                               reduction="mean")
    return loss, {"frac_active": stats.fraction_active}


def run(epochs=2, **kw):
    model = tiny_model()
    history = sl.train.fit(model, loss_fn, batches, epochs=epochs, device="cpu", progress=False, **kw)
    return model, history


# ----------------------------------------------------------------- device
def test_device_override(monkeypatch):
    monkeypatch.setenv("SIAMLIB_DEVICE", "cpu")
    assert sl.train.get_device() == torch.device("cpu")
    monkeypatch.setenv("SIAMLIB_DEVICE", "tpu")
    with pytest.raises(ValueError, match="SIAMLIB_DEVICE"):
        sl.train.get_device()


def test_device_default_order(monkeypatch):
    monkeypatch.delenv("SIAMLIB_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert sl.train.get_device() == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert sl.train.get_device() == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert sl.train.get_device() == torch.device("cuda")  # cuda before mps


def test_unavailable_device_is_an_error(monkeypatch):
    monkeypatch.setenv("SIAMLIB_DEVICE", "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="'cuda' is not an available device"):
        sl.train.get_device()


# ----------------------------------------------------------------- determinism
def test_same_seed_same_loss_curve():
    _, h1 = run()
    _, h2 = run()
    assert len(h1) == 8
    assert h1["loss"] == h2["loss"]
    assert len(set(h1["loss"])) > 1  # it is a curve, not a constant


def test_different_seed_different_curve():
    _, h1 = run()
    model = tiny_model(seed=1)
    h2 = sl.train.fit(model, loss_fn, batches, epochs=2, device="cpu", progress=False)
    assert h1["loss"] != h2["loss"]


# ----------------------------------------------------------------- checkpoints
def test_resume_continues_exactly(tmp_path):
    path = tmp_path / "ck.pt"
    full_model, full = run(epochs=3)
    model = tiny_model()
    h1 = sl.train.fit(model, loss_fn, batches, epochs=1, device="cpu", progress=False, checkpoint=path)
    assert h1.epochs_done == 1 and path.is_file()
    fresh = tiny_model(seed=7)  # a new process would start from different weights: the checkpoint wins
    h3 = sl.train.fit(fresh, loss_fn, batches, epochs=3, device="cpu", progress=False, checkpoint=path)
    assert h3.epochs_done == 3 and len(h3) == len(full)
    torch.testing.assert_close(torch.tensor(h3["loss"]), torch.tensor(full["loss"]))
    for (k, a), b in zip(full_model.state_dict().items(), fresh.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    model, history = run(epochs=1)
    sl.train._save(path, model, history, None, False)
    before = path.read_bytes()

    def broken_save(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        sl.train._save(path, model, history, None, False)
    assert path.read_bytes() == before  # the old checkpoint survives
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]  # no temp file left behind


def test_checkpoint_loads_with_weights_only(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    model, history = run(epochs=1)
    sl.train._save(path, model, history, None, False)
    calls = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k.get("weights_only")) or real(*a, **k))
    state = sl.train._read(path)
    loaded, finished = sl.train._load(state, path, tiny_model(seed=3)), state["finished"]
    assert calls == [True] and not finished
    assert loaded["loss"] == history["loss"]


def test_checkpoint_for_another_model_is_a_clear_error(tmp_path):
    path = tmp_path / "ck.pt"
    model, history = run(epochs=1)
    sl.train._save(path, model, history, None, False)
    with pytest.raises(ValueError, match="made for another model"):
        sl.train._load(sl.train._read(path), path, sl.models.SiameseNet(sl.models.MnistEncoder(emb_dim=16, width=4)))


def test_a_checkpoint_name_separates_quick_and_full(monkeypatch, tmp_path):
    monkeypatch.setenv("SIAMLIB_CACHE", str(tmp_path))
    model = sl.models.SiameseNet(sl.models.MnistEncoder(emb_dim=4, width=4))
    for quick in ("1", "0"):
        monkeypatch.setenv("SIAMLIB_QUICK", quick)
        sl.train.load_or_train("mnist", lambda: sl.train.History(records=[{"step": 1, "loss": 1.0}]), model)
    names = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.pt"))
    assert names == ["mnist-full.pt", "mnist-quick.pt"]


# ----------------------------------------------------------------- interrupt, time budget
def test_keyboard_interrupt_keeps_model_and_history(tmp_path):
    path = tmp_path / "ck.pt"
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def stop_at_5(step, record):
        if step == 5:
            raise KeyboardInterrupt

    h = sl.train.fit(model, loss_fn, batches, epochs=3, device="cpu", progress=False,
                     callback=stop_at_5, checkpoint=path)
    assert h.interrupted and "KeyboardInterrupt" in h.stop_reason
    assert len(h) == 5 and h["step"] == [0, 1, 2, 3, 4]
    assert not torch.equal(before["encoder.proj.weight"], model.state_dict()["encoder.proj.weight"])
    # the checkpoint holds the interrupted state, marked unfinished
    state = sl.train._read(path)
    loaded, finished = sl.train._load(state, path, tiny_model(seed=9)), state["finished"]
    assert not finished and len(loaded) == 5


def test_interrupt_inside_loss_fn():
    model = tiny_model()
    calls = {"n": 0}

    def flaky(model, batch):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return loss_fn(model, batch)

    h = sl.train.fit(model, flaky, batches, epochs=1, device="cpu", progress=False)
    assert h.interrupted and len(h) == 2


def test_max_seconds_stops_early():
    model = tiny_model()
    h = sl.train.fit(model, loss_fn, batches, epochs=50, device="cpu", progress=False, max_seconds=0.0)
    assert len(h) == 1 and h.interrupted and "time budget" in h.stop_reason


def test_non_finite_loss_raises():
    model = tiny_model()
    with pytest.raises(FloatingPointError, match="learning rate"):
        sl.train.fit(model, lambda m, b: (m.embed(b[0]).sum() * math.nan, {}), batches,
                     device="cpu", progress=False)


# ----------------------------------------------------------------- load_or_train
def test_load_or_train_skips_training_the_second_time(tmp_path):
    path = tmp_path / "m.pt"
    calls = []

    def train(model):
        calls.append(1)
        return sl.train.fit(model, loss_fn, batches, epochs=1, device="cpu", progress=False)

    m1 = tiny_model()
    h1 = sl.train.load_or_train(path, lambda: train(m1), m1)
    m2 = tiny_model(seed=5)
    h2 = sl.train.load_or_train(path, lambda: train(m2), m2)
    assert calls == [1]
    assert h1["loss"] == h2["loss"]
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_load_or_train_retrains_after_an_interrupted_run(tmp_path):
    path = tmp_path / "m.pt"
    m = tiny_model()

    def stop(step, record):
        if step == 2:
            raise KeyboardInterrupt

    sl.train.load_or_train(path, lambda: sl.train.fit(m, loss_fn, batches, device="cpu", progress=False,
                                                      callback=stop), m)
    calls = []
    sl.train.load_or_train(path, lambda: calls.append(1) or sl.train.fit(m, loss_fn, batches, device="cpu",
                                                                          progress=False), m)
    assert calls == [1]


# ----------------------------------------------------------------- diagnostics and steps
def test_pair_diagnostics_against_loops():
    g = torch.Generator().manual_seed(0)
    e1, e2 = torch.randn(10, 3, generator=g), torch.randn(10, 3, generator=g)
    y = torch.tensor([0, 1] * 5)
    d = [float(torch.dist(e1[i], e2[i])) for i in range(10)]
    got = sl.steps.pair_diagnostics(e1, e2, y, margin=2.0)
    assert got["pos_dist"] == pytest.approx(sum(d[i] for i in range(0, 10, 2)) / 5, rel=1e-5)
    assert got["neg_dist"] == pytest.approx(sum(d[i] for i in range(1, 10, 2)) / 5, rel=1e-5)
    active = sum(1 for i in range(10) if (y[i] == 1 and d[i] < 2.0) or (y[i] == 0 and d[i] > 0))
    assert got["frac_active"] == pytest.approx(active / 10)


def test_triplet_diagnostics_against_loops():
    g = torch.Generator().manual_seed(1)
    emb, labels = torch.randn(9, 4, generator=g), torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    pos = [float(torch.dist(emb[i], emb[j])) for i in range(9) for j in range(9) if i != j and labels[i] == labels[j]]
    neg = [float(torch.dist(emb[i], emb[j])) for i in range(9) for j in range(9) if labels[i] != labels[j]]
    got = sl.steps.triplet_diagnostics(emb, labels, 0.25)
    assert got["pos_dist"] == pytest.approx(sum(pos) / len(pos), rel=1e-5)
    assert got["neg_dist"] == pytest.approx(sum(neg) / len(neg), rel=1e-5)
    assert got["frac_active"] == 0.25


def test_embed_matches_model_on_uint8_images():
    model = tiny_model().eval()
    images = torch.randint(0, 256, (7, 28, 28), dtype=torch.uint8)
    got = sl.train.embed(model, images, batch_size=3, device="cpu")
    torch.testing.assert_close(got, model.embed(images.unsqueeze(1).float() / 255))


def test_callback_can_stop_and_its_time_is_not_training_time():
    import time as _time

    model = tiny_model()

    def slow_then_stop(step, record):
        _time.sleep(0.3)  # an "evaluation": must not count as training time
        return step == 3

    wall = _time.perf_counter()
    h = sl.train.fit(model, loss_fn, batches, epochs=5, device="cpu", progress=False, callback=slow_then_stop)
    wall = _time.perf_counter() - wall
    assert len(h) == 3 and h.interrupted and "callback" in h.stop_reason
    assert wall - h.train_s >= 0.85  # the three sleeps (0.9 s) are not in train_s


def test_prototypical_step_against_loop():
    g = torch.Generator().manual_seed(0)
    n_way, k_shot, n_query, d = 3, 2, 2, 4
    emb = torch.randn(n_way * (k_shot + n_query), d, generator=g)

    class Identity(torch.nn.Module):
        def embed(self, x):
            return x

    loss, stats = sl.steps.prototypical_step(n_way, k_shot, n_query)(Identity(), emb)
    rows = emb.view(n_way, k_shot + n_query, d)
    prototypes = [rows[c, :k_shot].mean(0) for c in range(n_way)]
    total, wrong = 0.0, 0
    for c in range(n_way):
        for q in rows[c, k_shot:]:
            logits = torch.stack([-torch.sum((q - p) ** 2) for p in prototypes])
            total += -torch.log_softmax(logits, 0)[c].item()
            wrong += int(logits.argmax()) != c
    assert loss.item() == pytest.approx(total / (n_way * n_query), rel=1e-5)
    assert stats["error"] == pytest.approx(wrong / (n_way * n_query))
    with pytest.raises(ValueError, match="n_way"):
        sl.steps.prototypical_step(4, k_shot, n_query)(Identity(), emb)


def test_koch_step_matches_library_loss():
    sl.train.seed_everything(0)
    model = sl.models.SiameseNet(sl.models.OmniglotEncoder(emb_dim=8, width=4), head="koch").eval()
    g = torch.Generator().manual_seed(0)
    x1, x2 = torch.rand(6, 1, 28, 28, generator=g), torch.rand(6, 1, 28, 28, generator=g)
    y = torch.tensor([0, 1, 1, 0, 1, 0])
    loss, stats = sl.steps.koch_step()(model, (x1, x2, y))
    torch.testing.assert_close(loss, sl.losses.koch_bce(model(x1, x2), y))
    expected_wrong = ((model(x1, x2) > 0).long() == y).float().mean().item()
    assert stats["error"] == pytest.approx(expected_wrong) and "frac_active" not in stats


def test_random_affine_identity_and_shift():
    x = torch.zeros(2, 1, 9, 9)
    x[:, :, 4, 4] = 1.0
    same = sl.data.random_affine(x, torch.Generator().manual_seed(0), degrees=0, scale=0, shear=0, translate=0)
    torch.testing.assert_close(same, x)
    moved = sl.data.random_affine(x, torch.Generator().manual_seed(0), degrees=0, scale=0, shear=0, translate=0.3)
    assert moved.shape == x.shape and not torch.allclose(moved, x)

"""Regression tests for issue 8's "silent failures": each case once gave a plausible number or a raw
error; now it gives a clear error that names the thing and the way out, or works correctly."""
from __future__ import annotations

import gzip
import itertools
import os
import random
import stat
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import siamlib as sl


def tiny_model(seed: int = 0) -> torch.nn.Module:
    sl.train.seed_everything(seed)
    return sl.models.SiameseNet(sl.models.MnistEncoder(emb_dim=8, width=4))


def pk_batches(epoch: int = 0, n: int = 3):
    g = torch.Generator().manual_seed(100 + epoch)
    return [(torch.rand(12, 1, 28, 28, generator=g), torch.arange(12) % 3) for _ in range(n)]


def pair_batches(epoch: int = 0):
    g = torch.Generator().manual_seed(epoch)
    return [(torch.rand(8, 1, 28, 28, generator=g), torch.rand(8, 1, 28, 28, generator=g),
             torch.tensor([0, 1] * 4)) for _ in range(2)]


def contrastive_step(model, batch):
    x1, x2, y = batch
    e1, e2 = model.embed(torch.cat([x1, x2])).chunk(2)
    return sl.losses.contrastive_loss(e1, e2, y), sl.steps.pair_diagnostics(e1.detach(), e2.detach(), y, 1.0)


# ----------------------------------------------------------------- NaN never becomes a number
def test_safe_sqrt_lets_nan_through_and_keeps_zero_gradient_finite():
    x = torch.tensor([0.0, 4.0, float("nan")], requires_grad=True)
    y = sl.distances.safe_sqrt(x)
    assert y[0].item() == 0.0 and y[1].item() == 2.0 and torch.isnan(y[2])
    y[:2].sum().backward()
    assert torch.isfinite(x.grad[:2]).all()


@pytest.mark.parametrize("step", ["triplet", "contrastive"])
def test_a_model_with_nan_weights_stops_training(step):
    model = tiny_model()
    with torch.no_grad():
        model.encoder.proj.weight.fill_(float("nan"))
    loss_fn = sl.steps.triplet_step("batch_hard", 0.2) if step == "triplet" else contrastive_step
    batches = pk_batches() if step == "triplet" else pair_batches()
    with pytest.raises(FloatingPointError, match="diverged"):
        sl.train.fit(model, loss_fn, batches, device="cpu", progress=False)


def test_metrics_reject_nan_embeddings_and_distances():
    labels = torch.arange(20) % 4
    with pytest.raises(ValueError, match="NaN"):
        sl.metrics.precision_at_1(torch.full((20, 3), float("nan")), labels)  # was 1.0
    with pytest.raises(ValueError, match="NaN"):
        sl.metrics.retrieval_metrics(torch.full((20, 3), float("nan")), labels)
    with pytest.raises(ValueError, match="NaN"):
        sl.metrics.roc_auc(torch.tensor([0.1, float("nan"), 0.9, 0.5]), torch.tensor([0, 0, 1, 1]))  # was 1.0 / 0.75


# ----------------------------------------------------------------- half precision
def _loop_counts(labels, dist, margin):
    """Valid and active triplets, by a Python loop over the SAME distance matrix the miner sees."""
    valid = active = 0
    b = len(labels)
    for a, p, n in itertools.product(range(b), repeat=3):
        if a != p and labels[a] == labels[p] and labels[a] != labels[n]:
            valid += 1
            active += bool(dist[a, n] < dist[a, p] + margin)
    return valid, active


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_batch_all_counts_are_exact_in_half_precision(dtype):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(128) % 8  # B = 128: once an OverflowError in float16
    emb = F.normalize(torch.randn(128, 16, generator=g), dim=1).to(dtype)
    loss, stats = sl.losses.mined_triplet_loss(emb, labels, mining="batch_all", margin=0.2)
    assert torch.isfinite(loss)
    dist = sl.distances.pairwise_distances(emb)
    idx = torch.arange(0, 128, 4)  # the loop on a 32-point subset checks the same comparisons
    sub_loss, sub = sl.losses.mined_triplet_loss(emb[idx], labels[idx], mining="batch_all", margin=0.2)
    assert (sub.n_valid, sub.n_active) == _loop_counts(labels[idx].tolist(), dist[idx][:, idx], 0.2)
    assert stats.n_valid == sl.mining.count_valid_triplets(labels) == stats.n_triplets


def test_chunked_mining_is_the_same_whatever_the_chunk(monkeypatch):
    g = torch.Generator().manual_seed(1)
    emb, labels = F.normalize(torch.randn(40, 5, generator=g), dim=1), torch.arange(40) % 5
    dist = sl.distances.pairwise_distances(emb)
    whole = sl.mining.semi_hard(labels, dist, 0.5)
    monkeypatch.setattr(sl.mining, "_CHUNK_ELEMENTS", 40 * 3)  # three positive pairs per chunk
    chunked = sl.mining.semi_hard(labels, dist, 0.5)
    assert set(zip(*(t.tolist() for t in whole))) == set(zip(*(t.tolist() for t in chunked))) != set()


# ----------------------------------------------------------------- checkpoints
def test_load_or_train_never_loads_an_unfinished_checkpoint(tmp_path):
    path = tmp_path / "ck.pt"

    def stop_at_2(step, record):
        if step == 2:
            raise KeyboardInterrupt

    interrupted = tiny_model()
    h = sl.train.load_or_train(path, lambda: sl.train.fit(interrupted, sl.steps.triplet_step(), pk_batches,
                                                          epochs=2, device="cpu", progress=False,
                                                          callback=stop_at_2), interrupted)
    assert h.interrupted and not sl.train._read(path)["finished"]
    # a re-run trains a FRESH model from its own initial weights, as if nothing had been saved
    rerun, clean = tiny_model(), tiny_model()
    sl.train.load_or_train(path, lambda: sl.train.fit(rerun, sl.steps.triplet_step(), pk_batches, epochs=2,
                                                      device="cpu", progress=False), rerun)
    sl.train.fit(clean, sl.steps.triplet_step(), pk_batches, epochs=2, device="cpu", progress=False)
    for a, b in zip(rerun.state_dict().values(), clean.state_dict().values()):
        torch.testing.assert_close(a, b)
    assert sl.train._read(path)["finished"]


def test_an_empty_loader_is_an_error_and_nothing_is_saved_as_finished(tmp_path):
    path = tmp_path / "ck.pt"
    model = tiny_model()
    with pytest.raises(ValueError, match="no batches"):
        sl.train.load_or_train(path, lambda: sl.train.fit(model, sl.steps.triplet_step(), [], device="cpu",
                                                          progress=False), model)
    assert not path.exists()


@pytest.mark.parametrize("content", [b"", b"\x00" * 10, random.Random(0).randbytes(2000)], ids=["empty", "zeros", "noise"])
def test_a_corrupt_checkpoint_names_the_file_and_never_suggests_unsafe_loading(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    model = tiny_model()
    with pytest.raises(ValueError) as info:
        sl.train.load_or_train(path, lambda: None, model)
    assert str(path) in str(info.value) and "weights_only=False" not in str(info.value)
    assert "Delete it" in str(info.value)


def test_a_truncated_checkpoint_names_the_file(tmp_path):
    path = tmp_path / "ck.pt"
    model = tiny_model()
    sl.train.fit(model, sl.steps.triplet_step(), pk_batches, device="cpu", progress=False, checkpoint=path)
    path.write_bytes(path.read_bytes()[:-500])
    with pytest.raises(ValueError, match="unreadable"):
        sl.train.fit(tiny_model(), sl.steps.triplet_step(), pk_batches, device="cpu", progress=False, checkpoint=path)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_an_unwritable_checkpoint_folder_fails_before_the_first_step(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    calls = []

    def counting(model, batch):
        calls.append(1)
        return sl.steps.triplet_step()(model, batch)

    target = folder / "sub" / "ck.pt"
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(folder, os.W_OK):  # root ignores permission bits: use a path under a file instead
            target = tmp_path / "a-file" / "ck.pt"
            (tmp_path / "a-file").write_text("not a folder")
        with pytest.raises(ValueError, match="cannot write the checkpoint") as info:
            sl.train.fit(tiny_model(), counting, pk_batches, device="cpu", progress=False, checkpoint=target)
        assert str(target) in str(info.value) and calls == []
    finally:
        folder.chmod(stat.S_IRWXU)


# ----------------------------------------------------------------- plots, projections, data
def test_training_curves_takes_the_project_history():
    import matplotlib

    matplotlib.use("Agg")
    h = sl.train.fit(tiny_model(), sl.steps.triplet_step(), pk_batches, device="cpu", progress=False)
    ax = sl.viz.training_curves(h)
    assert [line.get_label() for line in ax.get_lines()] == ["loss", "pos_dist", "neg_dist", "frac_active", "emb_norm"]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), h["loss"])


def test_a_umap_failure_is_an_error_with_its_cause(monkeypatch):
    import umap

    class Broken:
        def __init__(self, *a, **k):
            pass

        def fit_transform(self, x):
            raise RuntimeError("numba exploded")

    monkeypatch.setattr(umap, "UMAP", Broken)
    with pytest.raises(RuntimeError, match="numba exploded"):
        sl.viz.project(torch.randn(50, 4), "umap")


def _idx(path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_idx_labels_outside_the_ten_classes_are_refused(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    _idx(raw / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28)))
    (raw / "t10k-images-idx3-ubyte").write_bytes(gzip.open(raw / "t10k-images-idx3-ubyte").read())
    _idx(raw / "t10k-labels-idx1-ubyte", np.array([1, 2, 255]))
    (raw / "t10k-labels-idx1-ubyte").write_bytes(gzip.open(raw / "t10k-labels-idx1-ubyte").read())
    with pytest.raises(ValueError, match="label 255.*10 classes"):
        sl.data.load_mnist("test", root=tmp_path, download=False)


def test_a_failed_download_does_not_poison_the_next_call(tmp_path, monkeypatch):
    """The first call fails (nothing listens); the same call succeeds once a server is up."""
    import functools
    import socket
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    served = tmp_path / "served"
    served.mkdir()
    (served / "f.bin").write_bytes(b"hello")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dest = tmp_path / "root" / "f.bin"
    with pytest.raises(sl.data.DownloadError):
        sl.data.fetch(f"http://127.0.0.1:{port}/f.bin", dest)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Quiet, directory=str(served)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        assert sl.data.fetch(f"http://127.0.0.1:{port}/f.bin", dest).read_bytes() == b"hello"
    finally:
        httpd.shutdown()
        httpd.server_close()

"""Self-supervised MNIST bench: SimCLR (or MoCo) WITHOUT labels under a time budget, then P@1 and MAP@R.

Offline on the shared mirror, ``sl.data.load_mnist`` gives two disjoint subsets of MNIST's 10,000 test images:
8,000 to train on (their labels are never read), 2,000 held out. Each run trains a fresh ``sl.models.MnistEncoder``
(the representation h) with a small MLP projection head g on top, for ``--seconds`` of wall clock: two views per
image (``sl.selfsup.two_views``: affine zoom as the crop, rotation, shear, shift, random erasing), NT-Xent over the
batch (``--method simclr``) or InfoNCE against MoCo's queue with a momentum key encoder (``--method moco``:
``sl.selfsup.momentum_update``, ``sl.selfsup.KeyQueue``). Adam, cosine learning-rate decay over the budget. The
labels of the held-out images are used only to score leave-one-out retrieval on h (the head is dropped, as in
SimCLR). Lesson 07 (notebooks/07_contrastive_temperature.ipynb) derives every part.

    SIAMLIB_DATA=../shared/data python bench/selfsup.py --runs 3 --seconds 300

Prints one row per run, the medians, and as its last line one JSON object.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import statistics
import time
import warnings

import torch
from torch import nn

import siamlib as sl


class SimCLRNet(nn.Module):
    """h = encoder(x) (what is evaluated), z = head(h) (what the loss sees)."""

    def __init__(self, width: int, rep_dim: int, proj_dim: int):
        super().__init__()
        self.encoder = sl.models.MnistEncoder(emb_dim=rep_dim, normalize=False, width=width)
        self.head = nn.Sequential(nn.Linear(rep_dim, rep_dim), nn.ReLU(inplace=True), nn.Linear(rep_dim, proj_dim))

    def embed(self, x):  # (B, 1, 28, 28) -> (B, rep_dim), unit rows: retrieval by cosine
        return nn.functional.normalize(self.encoder(x), dim=1)

    def forward(self, x):  # (B, 1, 28, 28) -> (B, proj_dim)
        return self.head(self.encoder(x))


def batches(images, batch_size, seed):
    """An endless stream of two-view batches of unlabelled images (shuffled passes over the training set)."""
    gen = torch.Generator().manual_seed(seed)

    def stream(epoch):
        while True:
            order = torch.randperm(len(images), generator=gen)
            for i in range(0, len(order) - batch_size + 1, batch_size):
                yield sl.selfsup.two_views(sl.data.to_float(images[order[i:i + batch_size]]), gen)  # 2 x (B, 1, 28, 28)

    return stream


def simclr_loss(temperature):
    def loss_fn(model, batch):
        v1, v2 = batch
        z1, z2 = model(torch.cat([v1, v2])).chunk(2)  # (B, P) each, one pass (shared batch-norm statistics)
        return sl.losses.nt_xent(z1, z2, temperature=temperature), {}
    return loss_fn


def moco_loss(temperature, momentum, queue_size, proj_dim):
    state = {"key": None, "queue": sl.selfsup.KeyQueue(queue_size, proj_dim)}

    def loss_fn(model, batch):
        v1, v2 = batch
        if state["key"] is None:
            state["key"] = copy.deepcopy(model).requires_grad_(False)
        sl.selfsup.momentum_update(state["key"], model, momentum)
        q = model(v1)  # (B, P) queries
        with torch.no_grad():
            k = state["key"](v2)  # (B, P) keys from the slow encoder
        queue = state["queue"]
        negatives = queue.keys if len(queue) else None  # first step: the other keys of the batch
        loss = sl.losses.info_nce(q, k, negatives, temperature=temperature)
        queue.push(nn.functional.normalize(k, dim=1))
        return loss, {}
    return loss_fn


def one_run(train, test, args, seed, device):
    sl.train.seed_everything(seed)
    model = SimCLRNet(args.width, args.rep_dim, args.proj_dim)
    if args.method == "simclr":
        loss_fn = simclr_loss(args.temperature)
    else:
        loss_fn = moco_loss(args.temperature, args.momentum, args.queue, args.proj_dim)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)

    def cosine_decay(step_done, record):  # learning rate follows a cosine over the time budget
        for group in optimizer.param_groups:
            group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, record["time_s"] / args.seconds)))

    start = time.perf_counter()
    history = sl.train.fit(model, loss_fn, batches(train.images, args.batch, seed), epochs=1, optimizer=optimizer,
                           device=device, max_seconds=args.seconds, callback=cosine_decay, progress=False)
    train_s = time.perf_counter() - start
    emb = sl.train.embed(model, test.images, device=device)  # (2000, rep_dim)
    scores = sl.metrics.retrieval_metrics(emb, test.labels)
    return {"seed": seed, "train_s": train_s, "steps": len(history),
            "images_per_s": len(history) * 2 * args.batch / train_s, **scores}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=300.0, help="training budget per run (wall clock)")
    ap.add_argument("--method", choices=["simclr", "moco"], default="simclr")
    ap.add_argument("--batch", type=int, default=128, help="images per batch (each gives two views)")
    ap.add_argument("--temperature", type=float, default=0.2)
    ap.add_argument("--momentum", type=float, default=0.99, help="MoCo's key-encoder momentum")
    ap.add_argument("--queue", type=int, default=4096, help="MoCo's queue of negative keys")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--width", type=int, default=16, help="encoder width (32: ~3x slower per step)")
    ap.add_argument("--rep-dim", type=int, default=128, help="the representation h that is evaluated")
    ap.add_argument("--proj-dim", type=int, default=64, help="the projection z that the loss sees")
    ap.add_argument("--threads", type=int, default=1,
                    help="CPU threads (on a shared 2-core machine one thread ran ~5x faster than two)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.method == "moco" and args.queue < args.batch:
        raise SystemExit(f"--queue {args.queue} is smaller than --batch {args.batch}: a push would not fit.")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sl.data.MnistSubsetWarning)
        train, test = sl.data.load_mnist("train"), sl.data.load_mnist("test")
    device = sl.train.get_device()
    load = os.getloadavg()[0]
    extra = f", momentum {args.momentum}, queue {args.queue}" if args.method == "moco" else ""
    print(f"Self-supervised MNIST bench ({args.method}{extra}, tau {args.temperature}, batch {args.batch}): "
          f"train {len(train):,} images WITHOUT labels, held-out test {len(test):,}; device {device}, "
          f"{torch.get_num_threads()} threads, load average {load:.1f} at start; {args.seconds:.0f} s per run")
    print(f"{'run':>3} {'train_s':>8} {'steps':>6} {'img/s':>7} {'P@1':>7} {'R-prec':>7} {'MAP@R':>7}")
    rows = []
    for r in range(args.runs):
        row = one_run(train, test, args, seed=r, device=device)
        rows.append(row)
        print(f"{r:>3} {row['train_s']:>8.1f} {row['steps']:>6} {row['images_per_s']:>7.0f} "
              f"{row['precision_at_1']:>7.4f} {row['r_precision']:>7.4f} {row['map_at_r']:>7.4f}", flush=True)
    med = {k: statistics.median(r[k] for r in rows)
           for k in ("train_s", "steps", "images_per_s", "precision_at_1", "r_precision", "map_at_r")}
    print(f"{'med':>3} {med['train_s']:>8.1f} {med['steps']:>6.0f} {med['images_per_s']:>7.0f} "
          f"{med['precision_at_1']:>7.4f} {med['r_precision']:>7.4f} {med['map_at_r']:>7.4f}")
    load_end = os.getloadavg()[0]
    print(f"load average at end {load_end:.1f} (the machine is shared; img/s depends on it). "
          f"Goal: P@1 >= 0.98 and MAP@R >= 0.60 in 300 s.")
    print(json.dumps({
        "bench": "selfsup", "method": args.method, "p_at_1": round(med["precision_at_1"], 4),
        "map_at_r": round(med["map_at_r"], 4), "r_precision": round(med["r_precision"], 4),
        "train_s": round(med["train_s"], 1), "steps": med["steps"], "images_per_s": round(med["images_per_s"]),
        "device": str(device), "threads": torch.get_num_threads(), "runs": args.runs,
        "per_run": [{"seed": r["seed"], "p_at_1": round(r["precision_at_1"], 4), "map_at_r": round(r["map_at_r"], 4),
                     "steps": r["steps"], "train_s": round(r["train_s"], 1)} for r in rows],
        "temperature": args.temperature, "batch": args.batch, "n_train": len(train), "n_test": len(test),
        "cpu": platform.processor() or platform.machine(), "load_avg_start": round(load, 1),
        "load_avg_end": round(load_end, 1),
    }))


if __name__ == "__main__":
    main()

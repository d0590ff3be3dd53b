"""MNIST retrieval benchmark: batch-hard triplet training under a time budget, then P@1 and MAP@R.

Offline on the shared mirror, ``sl.data.load_mnist`` gives two disjoint
subsets of MNIST's 10,000 test images: 8,000 to train on, 2,000 held out.
Nothing evaluated is trained on. Each run trains a fresh
``sl.models.MnistEncoder`` for ``--seconds`` (wall clock) on P×K batches
(batch-hard triplet loss, Adam, cosine learning-rate decay over the budget) and
evaluates leave-one-out retrieval on the held-out images.

    SIAMLIB_DATA=../shared/data python bench/mnist.py --runs 5 --seconds 60

Prints one row per run, the medians, and as its last line one JSON object.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
import warnings

import torch

import siamlib as sl


def batches(images, labels, p, k, seed, augment):
    """An endless stream of P×K batches (epoch argument unused: one long epoch, bounded by time)."""
    sampler = sl.data.PKSampler(labels, p=p, k=k, n_batches=10**9, seed=seed)
    gen = torch.Generator().manual_seed(seed)

    def stream(epoch):
        for idx in sampler:
            x = sl.data.to_float(images[idx])  # (P*K, 1, 28, 28)
            if augment:
                x = sl.data.random_affine(x, gen, degrees=8, scale=0.08, shear=0.08, translate=0.08)
            yield x, labels[idx]

    return stream


def one_run(train, test, args, seed, device):
    sl.train.seed_everything(seed)
    model = sl.models.SiameseNet(sl.models.MnistEncoder(emb_dim=args.emb_dim, width=args.width))
    step = sl.steps.triplet_step("batch_hard", margin=args.margin, reduction="mean")
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)

    def cosine_decay(step_done, record):  # learning rate follows a cosine over the time budget
        for group in optimizer.param_groups:
            group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, record["time_s"] / args.seconds)))

    start = time.perf_counter()
    history = sl.train.fit(model, step, batches(train.images, train.labels, 10, args.k, seed, args.augment),
                           epochs=1, optimizer=optimizer, device=device, max_seconds=args.seconds,
                           callback=cosine_decay, progress=False)
    train_s = time.perf_counter() - start
    emb = sl.train.embed(model, test.images, device=device)  # (2000, D)
    scores = sl.metrics.retrieval_metrics(emb, test.labels)
    return {"seed": seed, "train_s": train_s, "steps": len(history),
            "images_per_s": len(history) * 10 * args.k / train_s, **scores}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=60.0, help="training budget per run (wall clock)")
    ap.add_argument("--k", type=int, default=16, help="images per class in a batch (P = 10 digits)")
    ap.add_argument("--margin", type=float, default=0.2)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--emb-dim", type=int, default=64)
    ap.add_argument("--augment", action="store_true", help="small random affine distortions")
    args = ap.parse_args()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sl.data.MnistSubsetWarning)
        train, test = sl.data.load_mnist("train"), sl.data.load_mnist("test")
    device = sl.train.get_device()
    load = os.getloadavg()[0]
    print(f"MNIST retrieval bench: train {len(train):,} images, held-out test {len(test):,} "
          f"({test.source}); device {device}, {torch.get_num_threads()} threads, "
          f"load average {load:.1f} at start; {args.seconds:.0f} s per run")
    print(f"{'run':>3} {'train_s':>8} {'steps':>6} {'img/s':>7} {'P@1':>7} {'R-prec':>7} {'MAP@R':>7}")
    rows = []
    for r in range(args.runs):
        row = one_run(train, test, args, seed=r, device=device)
        rows.append(row)
        print(f"{r:>3} {row['train_s']:>8.1f} {row['steps']:>6} {row['images_per_s']:>7.0f} "
              f"{row['precision_at_1']:>7.4f} {row['r_precision']:>7.4f} {row['map_at_r']:>7.4f}", flush=True)
    med = {k: statistics.median(r[k] for r in rows)
           for k in ("train_s", "images_per_s", "precision_at_1", "r_precision", "map_at_r")}
    print(f"{'med':>3} {med['train_s']:>8.1f} {'':>6} {med['images_per_s']:>7.0f} "
          f"{med['precision_at_1']:>7.4f} {med['r_precision']:>7.4f} {med['map_at_r']:>7.4f}")
    print(f"load average at end {os.getloadavg()[0]:.1f} (the machine is shared; img/s depends on it)")
    print(json.dumps({
        "bench": "mnist", "p_at_1": round(med["precision_at_1"], 4), "map_at_r": round(med["map_at_r"], 4),
        "r_precision": round(med["r_precision"], 4), "train_s": round(med["train_s"], 1),
        "images_per_s": round(med["images_per_s"]), "device": str(device), "runs": args.runs,
        "n_train": len(train), "n_test": len(test), "augment": args.augment,
        "p_at_1_min": round(min(r["precision_at_1"] for r in rows), 4),
        "cpu": platform.processor() or platform.machine(), "load_avg_start": round(load, 1),
    }))


if __name__ == "__main__":
    main()

"""MNIST retrieval benchmark: batch-hard triplet training under a time budget, then P@1 and MAP@R.

Offline on the shared mirror, ``sl.data.load_mnist`` gives two disjoint
subsets of MNIST's 10,000 test images: 8,000 to train on, 2,000 held out.
Nothing evaluated is trained on. Each run trains a fresh
``sl.models.MnistEncoder`` for ``--seconds`` (wall clock) on P×K batches
(batch-hard triplet loss, Adam, cosine learning-rate decay over the budget) and
evaluates leave-one-out retrieval on the held-out images.

    SIAMLIB_DATA=../shared/data python bench/mnist.py --runs 5 --seconds 60

To choose a recipe without touching the held-out images, ``--val`` trains on 7,000
of the 8,000 training images and scores the other 1,000; ``--steps N`` replaces the
wall-clock budget by a step budget, so that comparisons do not depend on the load of
a shared machine. ``--loss``, ``--augment``, ``--warmup`` and ``--tta`` are the levers
measured in bench/README.md; their defaults are the recipe above.

Prints one row per run, the medians, and as its last line one JSON object.
"""
from __future__ import annotations

import argparse
import itertools
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
                x = sl.data.random_affine(x, gen, degrees=8 * augment, scale=0.08 * augment, shear=0.08 * augment,
                                          translate=0.08 * augment)
            yield x, labels[idx]

    return stream


def norm_softmax_step(model, temperature):
    """Normalised softmax (Zhai & Wu 2019): one learnable proxy per digit, cross-entropy on cosine / temperature."""
    model.proxies = torch.nn.Parameter(torch.randn(10, model.encoder.emb_dim) * 0.1)  # (10, D), trained with the net

    def step(model, batch):
        x, labels = batch
        emb = model.embed(x)  # (B, D), unit length
        logits = emb @ torch.nn.functional.normalize(model.proxies, dim=1).T / temperature  # (B, 10)
        return torch.nn.functional.cross_entropy(logits, labels), {}
    return step


def multi_similarity_step():
    """Multi-similarity loss (Wang et al. 2019) from pytorch-metric-learning, with its own miner, defaults."""
    from pytorch_metric_learning import losses, miners  # dev requirement: only this option needs it
    loss_fn, miner = losses.MultiSimilarityLoss(), miners.MultiSimilarityMiner()

    def step(model, batch):
        x, labels = batch
        emb = model.embed(x)  # (B, D)
        return loss_fn(emb, labels, miner(emb, labels)), {}
    return step


def embed_tta(model, images, device, shifts):
    """Embeddings averaged over the image and its copies shifted by ``shifts`` pixels (no flips: digits), unit norm."""
    embs = [sl.train.embed(model, images, device=device)]  # (N, D)
    for s in shifts:
        for dy, dx in ((s, 0), (-s, 0), (0, s), (0, -s)):
            embs.append(sl.train.embed(model, torch.roll(images, (dy, dx), dims=(-2, -1)), device=device))
    return torch.nn.functional.normalize(torch.stack(embs).mean(0), dim=1)  # (N, D)


def one_run(train, test, args, seed, device):
    sl.train.seed_everything(seed)
    model = sl.models.SiameseNet(sl.models.MnistEncoder(emb_dim=args.emb_dim, width=args.width))
    if args.loss == "norm_softmax":
        step = norm_softmax_step(model, args.temperature)
    elif args.loss == "multi_similarity":
        step = multi_similarity_step()
    else:
        step = sl.steps.triplet_step(args.loss, margin=args.margin, reduction="mean")
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)

    def schedule(step_done, record):  # progress t in [0, 1] over the step or time budget
        t = min(1.0, step_done / args.steps if args.steps else record["time_s"] / args.seconds)
        w = args.warmup
        if t < w:  # linear warm-up (OneCycle-like), then cosine decay
            factor = t / w
        else:
            factor = 0.5 * (1 + math.cos(math.pi * (t - w) / (1 - w)))
        for group in optimizer.param_groups:
            group["lr"] = args.lr * factor

    if args.warmup > 0:
        for group in optimizer.param_groups:
            group["lr"] = 0.0
    stream = batches(train.images, train.labels, 10, args.k, seed, args.augment)
    start = time.perf_counter()
    history = sl.train.fit(model, step, lambda epoch: itertools.islice(stream(epoch), args.steps or None),
                           epochs=1, optimizer=optimizer, device=device,
                           max_seconds=None if args.steps else args.seconds,
                           callback=schedule, progress=False)
    train_s = time.perf_counter() - start
    emb = embed_tta(model, test.images, device, args.tta)  # (N_test, D)
    scores = sl.metrics.retrieval_metrics(emb, test.labels)
    if args.tta:  # the same model without test-time augmentation, to show what it buys
        scores["p_at_1_no_tta"] = sl.metrics.precision_at_1(sl.train.embed(model, test.images, device=device),
                                                             test.labels)
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
    ap.add_argument("--augment", type=float, nargs="?", const=1.0, default=0.0,
                    help="strength of random affine distortions (1 = 8 degrees, 8 %% scale/shear/shift; 0 = none)")
    ap.add_argument("--loss", default="batch_hard",
                    choices=["batch_hard", "semi_hard", "batch_all", "norm_softmax", "multi_similarity"])
    ap.add_argument("--temperature", type=float, default=0.05, help="for --loss norm_softmax")
    ap.add_argument("--warmup", type=float, default=0.0, help="share of the budget with a linear lr warm-up")
    ap.add_argument("--tta", type=int, nargs="*", default=[],
                    help="test-time augmentation: also embed copies shifted by these pixels, average")
    ap.add_argument("--steps", type=int, default=0,
                    help="train for this many steps instead of --seconds (load-independent comparisons)")
    ap.add_argument("--val", action="store_true",
                    help="model selection: train on 7,000 of the 8,000 training images, score on the other 1,000 "
                         "(the held-out 2,000 are not loaded)")
    args = ap.parse_args()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sl.data.MnistSubsetWarning)
        train = sl.data.load_mnist("train")
        if args.val:  # a fixed split of the training images; the held-out test images play no part
            perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(1234))
            train, test = train.subset(perm[:7000]), train.subset(perm[7000:])
        else:
            test = sl.data.load_mnist("test")
    device = sl.train.get_device()
    load = os.getloadavg()[0]
    budget = f"{args.steps} steps" if args.steps else f"{args.seconds:.0f} s"
    print(f"MNIST retrieval bench: train {len(train):,} images, "
          f"{'validation (part of the training images)' if args.val else 'held-out test'} {len(test):,} "
          f"({test.source}); device {device}, {torch.get_num_threads()} threads, "
          f"load average {load:.1f} at start; {budget} per run")
    print(f"{'run':>3} {'train_s':>8} {'steps':>6} {'img/s':>7} {'P@1':>7} {'R-prec':>7} {'MAP@R':>7}")
    rows = []
    for r in range(args.runs):
        row = one_run(train, test, args, seed=r, device=device)
        rows.append(row)
        print(f"{r:>3} {row['train_s']:>8.1f} {row['steps']:>6} {row['images_per_s']:>7.0f} "
              f"{row['precision_at_1']:>7.4f} {row['r_precision']:>7.4f} {row['map_at_r']:>7.4f}"
              + (f"  (no TTA: P@1 {row['p_at_1_no_tta']:.4f})" if args.tta else ""), flush=True)
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
        "loss": args.loss, "tta": args.tta, "step_budget": args.steps,
        "val": args.val, "steps_median": statistics.median(r["steps"] for r in rows),
        "p_at_1_min": round(min(r["precision_at_1"] for r in rows), 4),
        "cpu": platform.processor() or platform.machine(), "load_avg_start": round(load, 1),
    }))


if __name__ == "__main__":
    main()

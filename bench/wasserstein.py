"""Wasserstein embedding benchmark (DWE, lesson 10): ground truth, training, held-out W, 1,000x1,000 speed test.

Everything runs inside one ``--minutes`` budget (ground truth included, nothing cached):

1. exact ``W_2^2`` with ``ot.emd2`` (squared-Euclidean ground cost in pixels, non-zero pixels) for
   ``--test-pairs`` pairs of *held-out* images (``load_mnist("test")``: no training pair uses them),
   which also measures the rate; then for as many training pairs (``load_mnist("train")``) as
   ``--gt-share`` of the budget allows at that rate;
2. train ``sl.wasserstein.DWE`` (encoder ``phi`` with the MSE between ``||phi(x_i)-phi(x_j)||^2`` and
   ``W_ij``, plus ``--kl-weight`` times the decoder's KL, stopped at the embedding unless ``--kl-joint``)
   until the budget less a reserve is spent;
3. Pearson, Spearman, MSE and relative error on the held-out pairs;
4. the 1,000x1,000 matrix of 1,000 held-out images three ways: ``ot.emd2`` (measured on a sample of
   pairs, extrapolated to the 499,500 pairs), Sinkhorn (``ot.sinkhorn2``, one image against 25
   per call, measured on 1 x 25 pairs, extrapolated), and the embedding (one forward pass plus
   ``sl.distances.pairwise_distances``, measured in full, median of 5).

    SIAMLIB_DATA=../shared/data python bench/wasserstein.py --minutes 10

Prints a table and, as its last line, one JSON object.
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

import numpy as np
import ot
import torch
from scipy import stats

import siamlib as sl


def log(msg, t0):
    print(f"[{time.perf_counter() - t0:7.1f} s] {msg}", flush=True)


def held_out_scores(model, p_test, test_pairs, w_test):
    """Pearson, Spearman, MSE, mean relative error of predicted vs exact W on held-out pairs."""
    emb = embed(model, p_test)  # (N, D)
    pred = sl.distances.pair_distance(emb[test_pairs[:, 0]], emb[test_pairs[:, 1]], squared=True).double().numpy()
    return {
        "pearson": float(np.corrcoef(pred, w_test)[0, 1]),
        "spearman": float(stats.spearmanr(pred, w_test).statistic),
        "mse": float(np.mean((pred - w_test) ** 2)),
        "rel_err": float(np.mean(np.abs(pred - w_test) / w_test)),
    }, pred


@torch.no_grad()
def embed(model, p, batch=1000):
    model.eval()
    out = torch.cat([model.embed(p[s:s + batch]) for s in range(0, len(p), batch)])  # (N, D)
    model.train()
    return out


def random_pairs(n_images, n_pairs, seed):
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n_images, n_pairs)
    j = (i + rng.integers(1, n_images, n_pairs)) % n_images  # never i == j
    return np.stack([i, j], axis=1)  # (P, 2)


def train(model, p_train, pairs, w, seconds, args, t0):
    """Adam with cosine learning-rate decay over the time budget; MSE on W (+ KL of the decoder)."""
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    pairs_t, w_t = torch.as_tensor(pairs), torch.as_tensor(w, dtype=torch.float32)
    gen = torch.Generator().manual_seed(args.seed)
    start, steps, seen = time.perf_counter(), 0, 0
    while (elapsed := time.perf_counter() - start) < seconds:
        for g in opt.param_groups:
            g["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * elapsed / seconds))
        k = torch.randint(0, len(pairs_t), (args.batch,), generator=gen)
        pi, pj = p_train[pairs_t[k, 0]], p_train[pairs_t[k, 1]]  # (B, H*W) each
        if args.augment:  # one of the 8 symmetries of the square grid, the same for both: W is unchanged
            t = int(torch.randint(0, 8, (1,), generator=gen))
            pi, pj = dihedral(pi, t), dihedral(pj, t)
        z = model.embed(torch.cat([pi, pj]))  # (2B, D)
        zi, zj = z.chunk(2)
        loss = sl.wasserstein.embedding_loss(zi, zj, w_t[k])
        if args.kl_weight > 0:  # the decoder; its gradient reaches phi only with --kl-joint (as in DWE)
            z_dec = z if args.kl_joint else z.detach()
            loss = loss + args.kl_weight * sl.wasserstein.reconstruction_kl(model.decode_logits(z_dec), torch.cat([pi, pj]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
        seen += args.batch
        if steps % 500 == 0:
            log(f"step {steps}: loss {loss.item():.4f}, {seen / (time.perf_counter() - start):.0f} pairs/s", t0)
    return steps, seen, time.perf_counter() - start


def dihedral(p, t):
    side = int(round(p.shape[1] ** 0.5))
    x = p.reshape(-1, side, side)
    if t >= 4:
        x = x.transpose(1, 2)
    return torch.rot90(x, t % 4, dims=(1, 2)).reshape(p.shape)


def speed_test(model, images, p_test, args):
    """Seconds for the 1,000x1,000 matrix: emd2 and Sinkhorn extrapolated from samples, the embedding measured."""
    n = len(p_test)
    n_pairs = n * (n - 1) // 2
    sample = random_pairs(n, args.speed_sample, seed=123)
    t = time.perf_counter()
    sl.wasserstein.exact_w2(images, sample, workers=1, cache=False, progress=False)
    emd_per_pair = (time.perf_counter() - t) / len(sample)
    M = ot.dist(sl.wasserstein.grid_positions().numpy(), metric="sqeuclidean")  # (784, 784)
    P = p_test.double().numpy().T  # (784, n): one column per image
    t = time.perf_counter()
    for r in range(args.sinkhorn_rows):  # one source against the last --sinkhorn-cols images per call
        ink = P[:, r] > 0  # the source's support: Sinkhorn divides by a
        ot.sinkhorn2(P[ink, r], P[:, -args.sinkhorn_cols:], M[ink], reg=args.sinkhorn_reg, numItermax=1000, stopThr=1e-6)
    sinkhorn_per_pair = (time.perf_counter() - t) / (args.sinkhorn_rows * args.sinkhorn_cols)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        emb = embed(model, p_test)  # (n, D)
        sl.distances.pairwise_distances(emb, squared=True)  # (n, n)
        times.append(time.perf_counter() - t)
    return {"emd_s": emd_per_pair * n_pairs, "emd_per_pair_ms": emd_per_pair * 1e3,
            "sinkhorn_s": sinkhorn_per_pair * n_pairs, "embedding_s": statistics.median(times), "n_pairs": n_pairs}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="budget for everything (wall clock)")
    ap.add_argument("--gt-share", type=float, default=0.3, help="share of the budget for training ground truth")
    ap.add_argument("--workers", type=int, default=2, help="processes for ot.emd2")
    ap.add_argument("--test-pairs", type=int, default=2000)
    ap.add_argument("--reserve", type=float, default=60.0, help="seconds kept for evaluation and the speed test")
    ap.add_argument("--arch", choices=["mlp", "conv"], default="mlp")
    ap.add_argument("--emb-dim", type=int, default=50)
    ap.add_argument("--width", type=int, default=16, help="conv channels (arch conv)")
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--kl-weight", type=float, default=0.0, help="weight of the decoder's KL term (0: no decoder)")
    ap.add_argument("--kl-joint", action="store_true", help="let the KL gradient reach the encoder (DWE's joint training)")
    ap.add_argument("--augment", action="store_true", help="the 8 grid symmetries, applied to both images of a pair")
    ap.add_argument("--speed-sample", type=int, default=200, help="pairs timed with ot.emd2 for the extrapolation")
    ap.add_argument("--sinkhorn-rows", type=int, default=1)
    ap.add_argument("--sinkhorn-cols", type=int, default=25)
    ap.add_argument("--sinkhorn-reg", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t0 = time.perf_counter()
    budget = args.minutes * 60
    sl.train.seed_everything(args.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sl.data.MnistSubsetWarning)
        train_set, test_set = sl.data.load_mnist("train"), sl.data.load_mnist("test")
    p_train = sl.wasserstein.to_distribution(train_set.images).float()  # (8000, 784)
    p_test = sl.wasserstein.to_distribution(test_set.images).float()    # (2000, 784)

    # 1. ground truth: held-out pairs first (they give the rate), then training pairs for gt-share of the budget
    test_pairs = random_pairs(len(test_set), args.test_pairs, seed=args.seed + 1)
    t = time.perf_counter()
    w_test = sl.wasserstein.exact_w2(test_set.images, test_pairs, workers=args.workers, cache=False, desc="W test")
    rate = len(test_pairs) / (time.perf_counter() - t)
    n_train = int(rate * args.gt_share * budget)
    train_pairs = random_pairs(len(train_set), n_train, seed=args.seed + 2)
    t = time.perf_counter()
    w_train = sl.wasserstein.exact_w2(train_set.images, train_pairs, workers=args.workers, cache=False, desc="W train")
    gt_s = time.perf_counter() - t
    log(f"ground truth: {len(test_pairs):,} test + {n_train:,} train pairs at {rate:.0f} pairs/s "
        f"({args.workers} processes); mean W train {w_train.mean():.2f}", t0)

    # 2. train
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    model = sl.wasserstein.DWE(emb_dim=args.emb_dim, hidden=args.hidden, arch=args.arch, width=args.width)
    train_s = budget - (time.perf_counter() - t0) - args.reserve
    steps, seen, train_s = train(model, p_train, train_pairs, w_train, train_s, args, t0)
    log(f"trained {steps:,} steps ({seen:,} pairs seen, {seen / n_train:.1f} epochs) in {train_s:.0f} s", t0)

    # 3. held-out evaluation, 4. speed
    scores, _ = held_out_scores(model, p_test, test_pairs, w_test)
    speed = speed_test(model, test_set.images[:1000], p_test[:1000], args)
    total_s = time.perf_counter() - t0
    device = f"{sl.train.get_device()} ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, " \
             f"load {os.getloadavg()[0]:.1f})"

    rows = [
        ("device", device), ("training pairs (DWE paper: ~1,000,000)", f"{n_train:,}"),
        ("held-out pairs (test images only)", f"{len(test_pairs):,}"),
        ("ground truth s / rate", f"{gt_s:.0f} s / {rate:.0f} pairs/s"),
        ("training s / steps", f"{train_s:.0f} s / {steps:,}"),
        ("Pearson (goal >= 0.996; DWE 0.996)", f"{scores['pearson']:.4f}"),
        ("Spearman", f"{scores['spearman']:.4f}"), ("MSE (DWE 0.40)", f"{scores['mse']:.3f}"),
        ("mean relative error", f"{scores['rel_err']:.3f}"), ("mean W held out", f"{w_test.mean():.2f}"),
        ("1,000x1,000: ot.emd2 s (extrapolated)", f"{speed['emd_s']:.0f} ({speed['emd_per_pair_ms']:.2f} ms/pair)"),
        ("1,000x1,000: Sinkhorn s (extrapolated)", f"{speed['sinkhorn_s']:.0f} (reg {args.sinkhorn_reg})"),
        ("1,000x1,000: embedding s (measured)", f"{speed['embedding_s']:.3f}"),
        ("speed-up vs emd2 (goal >= 10,000)", f"{speed['emd_s'] / speed['embedding_s']:,.0f}"),
        ("speed-up vs Sinkhorn", f"{speed['sinkhorn_s'] / speed['embedding_s']:,.0f}"),
        ("total s (budget)", f"{total_s:.0f} ({budget:.0f})"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"| {'quantity':<{width}} | value |\n|{'-' * (width + 2)}|-------|")
    for k, v in rows:
        print(f"| {k:<{width}} | {v} |")
    print(json.dumps({"bench": "wasserstein", "pearson": round(scores["pearson"], 5),
                      "spearman": round(scores["spearman"], 5), "mse": round(scores["mse"], 4),
                      "pairs_train": n_train, "speedup_vs_emd": round(speed["emd_s"] / speed["embedding_s"]),
                      "total_s": round(total_s, 1), "device": device}))


if __name__ == "__main__":
    main()

"""Online triplet mining + loss, forward and backward: siamlib vs pytorch-metric-learning (PML).

Setting: B = 256 (16 classes × 16) and B = 1024 (64 × 16) embeddings, D = 128, CPU, float32.
Both libraries see the same unit-norm embeddings and use the same definitions:

* distance: plain Euclidean, no re-normalisation (PML: ``LpDistance(normalize_embeddings=False)``);
* batch-hard: PML ``BatchHardMiner`` + ``TripletMarginLoss`` vs
  ``sl.losses.mined_triplet_loss(mining="batch_hard")``;
* semi-hard: PML ``TripletMarginMiner(type_of_triplets="semihard")`` (every
  triplet with 0 < d_an − d_ap <= margin) + ``TripletMarginLoss`` vs
  ``mined_triplet_loss(mining="semi_hard")`` (0 < d_an − d_ap < margin; the
  boundary triplets have zero loss and PML's AvgNonZeroReducer drops them);
* reduction: mean over triplets with a non-zero loss (PML's default
  ``AvgNonZeroReducer``; siamlib's default ``reduction="mean_active"``).

The script first ASSERTS that both give the same loss and the same gradient,
then times ``forward + backward`` alternating the two in one process (median
of ``--repeats`` runs). Prints a table; the last line is one JSON object.

    python3 bench/mining.py            # B=256 and B=1024, D=128, 7 repeats
    python3 bench/mining.py --quick    # B=256 only, 5 repeats
    python3 bench/mining.py --threads 1   # steadier on a busy shared machine
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

import siamlib as sl

try:
    from pytorch_metric_learning import distances, losses, miners
except ImportError:  # pragma: no cover
    sys.exit("bench/mining.py compares against pytorch-metric-learning: pip install pytorch-metric-learning")


def make_batch(n_classes: int, per_class: int, dim: int, seed: int = 0):
    """Unit-norm embeddings clustered by class (like a half-trained model), labels (B,)."""
    g = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(n_classes, dim, generator=g), dim=1)  # (C, D)
    labels = torch.arange(n_classes).repeat_interleave(per_class)  # (B,)
    emb = F.normalize(centres[labels] + 0.12 * torch.randn(len(labels), dim, generator=g), dim=1)  # (B, D)
    perm = torch.randperm(len(labels), generator=g)
    return emb[perm].contiguous(), labels[perm].contiguous()


def siamlib_step(mining: str, margin: float):
    def step(emb, labels):
        x = emb.detach().clone().requires_grad_(True)
        loss, stats = sl.losses.mined_triplet_loss(x, labels, mining=mining, margin=margin)
        loss.backward()
        return loss.detach(), x.grad, stats.n_triplets

    return step


def pml_step(mining: str, margin: float):
    dist = distances.LpDistance(normalize_embeddings=False, p=2, power=1)
    if mining == "batch_hard":
        miner = miners.BatchHardMiner(distance=dist)
    else:
        miner = miners.TripletMarginMiner(margin=margin, type_of_triplets="semihard", distance=dist)
    loss_fn = losses.TripletMarginLoss(margin=margin, distance=dist)

    def step(emb, labels):
        x = emb.detach().clone().requires_grad_(True)
        triplets = miner(x, labels)
        loss = loss_fn(x, labels, triplets)
        loss.backward()
        return loss.detach(), x.grad, len(triplets[0])

    return step


def timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, nargs="+", default=[16, 64], help="classes per batch, one run each")
    parser.add_argument("--per-class", type=int, default=16)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--margin", type=float, default=0.2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--quick", action="store_true", help="B = 16 × 16 only, 5 repeats")
    args = parser.parse_args()
    if args.quick:
        args.classes, args.repeats = [16], 5
    if args.repeats < 5:
        parser.error("--repeats must be >= 5 (the medians quoted come from at least 5 runs)")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"D = {args.dim}, margin = {args.margin}, torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")

    rows, result = [], {"bench": "mining", "D": args.dim, "repeats": args.repeats, "threads": torch.get_num_threads()}
    for n_classes in args.classes:
        emb, labels = make_batch(n_classes, args.per_class, args.dim)
        b = len(labels)
        for mining in ("batch_hard", "semi_hard"):
            ours, theirs = siamlib_step(mining, args.margin), pml_step(mining, args.margin)
            loss_s, grad_s, n_s = ours(emb, labels)
            loss_p, grad_p, n_p = theirs(emb, labels)
            # correctness first: same triplets counted, same loss, same gradient. The two distance matrices
            # differ in the last float bits, so a triplet exactly on a band edge (loss ~ 0) may be counted by one only.
            assert abs(n_s - n_p) <= max(2, 1e-5 * n_p), f"{mining}, B={b}: siamlib mined {n_s} triplets, PML {n_p}"
            torch.testing.assert_close(loss_s, loss_p, rtol=1e-4, atol=1e-6, msg=lambda m: f"{mining} loss differs: {m}")
            torch.testing.assert_close(grad_s, grad_p, rtol=1e-3, atol=1e-6, msg=lambda m: f"{mining} gradient differs: {m}")
            t_s, t_p = [], []
            timed(ours, emb, labels), timed(theirs, emb, labels)  # warm-up
            for _ in range(args.repeats):  # alternate so both see the same machine load
                t_s.append(timed(ours, emb, labels))
                t_p.append(timed(theirs, emb, labels))
            med_s, med_p = statistics.median(t_s), statistics.median(t_p)
            rows.append((b, mining, n_s, float(loss_s), med_s, med_p, med_s / med_p))
            result[f"ratio_{mining}_B{b}"] = round(med_s / med_p, 4)
            result[f"siamlib_ms_{mining}_B{b}"] = round(1e3 * med_s, 2)
            result[f"pml_ms_{mining}_B{b}"] = round(1e3 * med_p, 2)

    print(f"{'B':>5} {'mining':<11} {'triplets':>10} {'loss':>9} {'siamlib ms':>11} {'PML ms':>9} {'ratio':>7}")
    for b, mining, n, loss, ts, tp, r in rows:
        print(f"{b:>5} {mining:<11} {n:>10d} {loss:>9.5f} {1e3 * ts:>11.2f} {1e3 * tp:>9.2f} {r:>7.3f}")
    print("ratio = siamlib time / PML time (median of forward+backward runs; both checked to give the same loss "
          "and gradient); the goal is <= 2")
    print(json.dumps(result))


if __name__ == "__main__":
    main()

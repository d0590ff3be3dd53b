"""Omniglot one-shot benchmark: prototypical episodes under a time budget, scored on Lake's 20 runs.

Trains a fresh ``sl.models.OmniglotEncoder`` (4 conv blocks on 28×28 images)
with prototypical-network episodes (Snell et al. 2017) on an Omniglot
background set, with the characters rotated by 90°/180°/270° as extra classes
and small random affine distortions; Adam with a cosine learning-rate decay
over the time budget. At the ``--marks`` (minutes of training)
it scores:

* Lake et al.'s (2015) official 20 runs (20-way, 1-shot, within alphabet;
  from the 20 evaluation alphabets, so disjoint from any background set):
  error % averaged over the runs;
* 20-way 1-shot within-alphabet episode accuracy (95 % interval) on the
  evaluation set when it is on disk (online), else on the 800 images of
  Lake's runs (20 characters × 2 drawers per run, episodes within a run).

Default: background small 1 (Lake's "minimal" setting, 5 alphabets, 136
characters), which the offline mirror holds. ``--subset background`` needs
the full set (downloaded by torchvision online).

    SIAMLIB_DATA=../shared/data python bench/omniglot.py --minutes 15 --marks 2,5,10,15

Prints a table and, as its last line, one JSON object.
"""
from __future__ import annotations

import argparse
import json
import math
import os

import torch

import siamlib as sl


def episodes(ds, n_way, k_shot, n_query, rotations, seed):
    """Endless episodes (images only, class after class, support first), augmented on the fly."""
    images, labels = ds.images, ds.labels
    n_chars = int(labels.max()) + 1
    members = [torch.nonzero(labels == c).squeeze(1) for c in range(n_chars)]
    n_classes = n_chars * (4 if rotations else 1)
    gen = torch.Generator().manual_seed(seed)
    per_class = k_shot + n_query

    def stream(epoch):
        while True:
            classes = torch.randperm(n_classes, generator=gen)[:n_way]
            xs = []
            for c in classes.tolist():
                char, quarter = c % n_chars, c // n_chars
                pick = members[char][torch.randperm(len(members[char]), generator=gen)[:per_class]]
                x = sl.data.to_float(images[pick])  # (K+Q, 1, H, W)
                xs.append(torch.rot90(x, quarter, (2, 3)) if quarter else x)
            x = torch.cat(xs)  # (N*(K+Q), 1, H, W)
            yield sl.data.random_affine(x, gen, degrees=10, scale=0.1, shear=0.15, translate=0.08)

    return stream


def evaluate(model, runs, episode_set, device, n_episodes):
    """Lake error % and 20-way within-alphabet episode accuracy of the current model."""
    embed_fn = lambda im: sl.train.embed(model, im, device=device)  # noqa: E731
    err = sl.metrics.lake_error(embed_fn, runs)
    images, labels, groups = episode_set
    acc, half = sl.metrics.episode_accuracy(embed_fn(images), labels, n_way=20, k_shot=1, n_query=1,
                                            n_episodes=n_episodes, groups=groups, seed=0)
    model.train()
    return err, acc, half


def episode_set(args):
    """The evaluation set if available, else the images of Lake's runs; and a description."""
    try:
        ev = sl.data.load_omniglot("evaluation", size=args.size, download=args.download)
        return (ev.images, ev.labels, ev.groups), "Omniglot evaluation set (20 alphabets, 659 characters)"
    except (sl.data.DataNotFoundError, FileNotFoundError):
        runs = sl.data.load_lake_runs(size=args.size)
        images = torch.cat([torch.cat([r.train_images, r.test_images]) for r in runs])
        labels = torch.cat([torch.cat([torch.arange(20), r.answers]) + 20 * i for i, r in enumerate(runs)])
        return (images, labels, labels // 20), ("the 800 images of Lake's 20 runs (the evaluation set is "
                                                "not on disk): episodes within a run")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=15.0, help="training budget (training time, excl. evaluation)")
    ap.add_argument("--marks", default="2,5,10,15", help="minutes of training at which to evaluate")
    ap.add_argument("--subset", default="background_small1",
                    choices=("background_small1", "background_small2", "background"))
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--emb-dim", type=int, default=128)
    ap.add_argument("--n-way", type=int, default=60)
    ap.add_argument("--k-shot", type=int, default=1)
    ap.add_argument("--n-query", type=int, default=1)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--no-rotations", action="store_true")
    ap.add_argument("--episodes", type=int, default=1000, help="evaluation episodes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--download", action="store_true", help="allow downloads (online)")
    args = ap.parse_args()

    device = sl.train.get_device()
    ds = sl.data.load_omniglot(args.subset, size=args.size, download=args.download)
    runs = sl.data.load_lake_runs(size=args.size, download=args.download)
    ep_set, ep_desc = episode_set(args)
    marks = sorted({float(m) for m in args.marks.split(",") if float(m) <= args.minutes} | {args.minutes})
    load = os.getloadavg()[0]
    print(f"Omniglot one-shot bench: train on {args.subset} ({len(ds):,} images, "
          f"{int(ds.labels.max()) + 1} characters, {args.size}×{args.size}); device {device}, "
          f"{torch.get_num_threads()} threads, load average {load:.1f} at start")
    print(f"Lake's 20 runs (20-way 1-shot within alphabet); episode accuracy on {ep_desc}")
    print(f"{'train_min':>9} {'steps':>6} {'img/s':>6} {'Lake err %':>10} {'20-way acc':>14}", flush=True)

    sl.train.seed_everything(args.seed)
    model = sl.models.SiameseNet(sl.models.OmniglotEncoder(emb_dim=args.emb_dim, normalize=False, width=args.width))
    per_step = args.n_way * (args.k_shot + args.n_query)
    curve, pending = [], list(marks)

    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    budget_s = args.minutes * 60

    def at_mark(step, record):
        # cosine learning-rate decay over the training-time budget
        for group in optimizer.param_groups:
            group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, record["time_s"] / budget_s)))
        if pending and record["time_s"] >= pending[0] * 60:
            pending.pop(0)
            err, acc, half = evaluate(model, runs, ep_set, device, args.episodes)
            curve.append({"minutes": round(record["time_s"] / 60, 2), "steps": step,
                          "lake_error_pct": err, "episode_acc": acc, "episode_ci95": half})
            print(f"{record['time_s'] / 60:>9.1f} {step:>6} {step * per_step / record['time_s']:>6.0f} "
                  f"{err:>10.2f} {acc:>8.3f}±{half:.3f}", flush=True)
            return not pending
        return False

    history = sl.train.fit(model, sl.steps.prototypical_step(args.n_way, args.k_shot, args.n_query),
                           episodes(ds, args.n_way, args.k_shot, args.n_query, not args.no_rotations, args.seed),
                           epochs=1, optimizer=optimizer, device=device, callback=at_mark, progress=False)
    final = curve[-1]
    print()
    print(sl.metrics.lake_table({f"this kit: proto. episodes, {args.subset}, "
                                 f"{history.train_s / 60:.1f} min {device}": final["lake_error_pct"]}))
    print(f"load average at end {os.getloadavg()[0]:.1f} (the machine is shared; img/s depends on it)")
    print(json.dumps({
        "bench": "omniglot", "lake_error_pct": round(final["lake_error_pct"], 2),
        "episode_20way_acc": round(final["episode_acc"], 4), "episode_ci95": round(final["episode_ci95"], 4),
        "episode_set": ep_desc, "train_s": round(history.train_s, 1),
        "images_per_s": round(len(history) * per_step / history.train_s), "steps": len(history),
        "device": str(device), "subset": args.subset, "size": args.size, "load_avg_start": round(load, 1),
        "curve": [{k: round(v, 3) if isinstance(v, float) else v for k, v in c.items()} for c in curve],
    }))


if __name__ == "__main__":
    main()

"""Omniglot one-shot benchmark: lesson 06's recipe (``sl.steps.omniglot_recipe``) under a time or step budget,
scored on Lake's 20 runs; choices are made on held-out background characters, never on Lake's runs.

Trains on an Omniglot background set (default: background small 1, Lake's "minimal" setting, 5 alphabets,
136 characters, which the offline mirror holds; ``--subset background`` needs the full set online) with
``sl.steps.omniglot_recipe``: prototypical 60-way episodes, rotations as new classes, small
affine distortions, Adam with a cosine decay over the budget. Each image's embedding is the mean over it and
its copies shifted by one and two pixels (``--tta 1 2``, test-time augmentation; ``--tta`` alone switches it
off). ``--members M`` trains M models per seed, each for the whole budget, and concatenates their embeddings
(an ensemble; with ``--jobs 2`` two one-thread members fill a 2-core CPU, which two threads on one model do
not). ``--model koch`` trains Koch et al.'s (2015) verification head on top (see the recipe's docstring) and
ranks candidates by its logit (summed over the members).

* Test (default): Lake et al.'s (2015) 20 official runs (20-way 1-shot within alphabet, evaluation
  alphabets): error % per run and their mean; 400 queries in all, one query = 0.25 points of the mean
  (5 points of its run's error).
* ``--val``: holds out every 4th character of each background alphabet, trains on the rest, and reports the
  error of 20-way 1-shot episodes on the held-out characters. Lake's runs are not even loaded: this is the
  mode in which the levers (the flags below) were chosen (bench/README.md).

    SIAMLIB_DATA=../shared/data python bench/omniglot.py --minutes 15 --seeds 3   # 2 members per seed, 2 at a time
    SIAMLIB_DATA=../shared/data python bench/omniglot.py --model koch --seeds 3 --members 1 --tta 1 --jobs 3
    SIAMLIB_DATA=../shared/data python bench/omniglot.py --val --steps 3000 --members 1 --width 64   # a lever

Prints a line per seed and, as its last line, one JSON object (median over the seeds, and each seed).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics

import torch

import siamlib as sl


def split_characters(ds, every: int = 4):
    """(train, held-out) ImageSets: every ``every``-th character of each alphabet is held out."""
    held = torch.zeros(int(ds.labels.max()) + 1, dtype=torch.bool)
    for g in ds.groups.unique():
        chars = ds.labels[ds.groups == g].unique()  # (C_g,) sorted
        held[chars[every - 1::every]] = True
    return ds.subset(~held[ds.labels]), ds.subset(held[ds.labels])


def scorer(models, kind: str, device, tta=()):
    """``(embed_fn, dist_fn)`` for an ensemble of ``models`` (one or more): Euclidean nearest neighbour on their
    concatenated embeddings (the members' squared distances summed), or Koch's heads (minus the sum of the members'
    logits of "same"). Test-time augmentation: for each size in ``tta`` (pixels), an image's embedding is the mean
    over it and its copies shifted by that size up, down, left and right."""
    shifts = [(0, 0)] + [s for p in tta for s in ((p, 0), (-p, 0), (0, p), (0, -p))]

    def embed_fn(images):  # (N, H, W) -> (N, M*D)
        return torch.cat([torch.stack([sl.train.embed(m, torch.roll(images, s, dims=(-2, -1)), device=device)
                                       for s in shifts]).mean(0) for m in models], dim=1)
    if kind == "proto":
        return embed_fn, None

    @torch.no_grad()
    def koch_dist(q, c):  # (T, M*D), (C, M*D) -> (T, C)
        parts = (q[:, None] - c[None]).abs().to(device).split([m.encoder.emb_dim for m in models], dim=-1)
        return -sum(m.koch(part) for m, part in zip(models, parts)).squeeze(-1).cpu()  # parts: M × (T, C, D)
    return embed_fn, koch_dist


def val_error(models, kind, held, device, n_episodes, tta=()):
    """Error % of 20-way 1-shot episodes on the held-out characters (with Koch's head when ``kind`` is koch)."""
    embed_fn, dist_fn = scorer(models, kind, device, tta)
    emb = embed_fn(held.images)
    sampler = sl.data.EpisodeSampler(held.labels, 20, 1, 1, n_episodes, seed=0)
    wrong = 0
    for idx in sampler:
        e = emb[idx].view(20, 2, -1)  # (20, support + query, M*D)
        d = (dist_fn or torch.cdist)(e[:, 1], e[:, 0])  # (20 queries, 20 candidates)
        wrong += int((d.argmin(1) != torch.arange(20)).sum())
    return 100.0 * wrong / (20 * n_episodes)


def new_model(args):
    return sl.models.SiameseNet(sl.models.OmniglotEncoder(emb_dim=128, normalize=False, width=args.width),
                                head="distance" if args.model == "proto" else "koch")


def train_member(seed, member, args, levers, data=None):
    """Train member ``member`` of seed ``seed``'s ensemble with the recipe (training seed ``seed + 1000 * member``);
    returns ``(state_dict, steps, train_s)``. ``data``: (train, held, runs), loaded here when None."""
    if data is None:  # a worker process of --jobs: one thread, its own copy of the data
        torch.set_num_threads(1)
        data = load(args)
    sl.train.seed_everything(seed + 1000 * member)
    model = new_model(args)
    history = sl.steps.omniglot_recipe(
        model, data[0], steps=args.steps, max_seconds=None if args.steps else args.minutes * 60,
        seed=seed + 1000 * member, device=sl.train.get_device(), **levers)
    return {k: v.cpu() for k, v in model.state_dict().items()}, len(history), round(history.train_s, 1)


def score_seed(seed, trained, args, data):
    """Score seed ``seed``'s ensemble (``trained``: its members' ``train_member`` results), and each member alone."""
    _, held, runs = data
    device = sl.train.get_device()
    models = []
    for state, _, _ in trained:
        models.append(new_model(args).to(device))
        models[-1].load_state_dict(state)
    r = {"seed": seed, "steps": [t[1] for t in trained], "train_s": [t[2] for t in trained]}

    def error(ms, tta):  # (error %, Lake's per-run errors or None with --val)
        if args.val:
            return round(val_error(ms, args.model, held, device, args.episodes, tta), 2), None
        embed_fn, dist_fn = scorer(ms, args.model, device, tta)
        per_run = sl.metrics.lake_errors(embed_fn, runs, dist_fn)
        return round(statistics.fmean(per_run), 2), per_run
    key = "val_error_pct" if args.val else "lake_error_pct"
    r[key], r["per_run"] = error(models, args.tta)
    if args.tta and not args.val:  # the same models without test-time augmentation, to show what it buys
        r["no_tta_pct"] = error(models, ())[0]
    if len(models) > 1:  # each member alone, to show what the ensemble buys
        r["members_pct"] = [error([m], args.tta)[0] for m in models]
    print(json.dumps({k: v for k, v in r.items() if k != "per_run"}), flush=True)
    return r


def load(args):
    """(train, held, runs): the background set (split with --val) and Lake's runs (None with --val)."""
    ds = sl.data.load_omniglot(args.subset, size=args.size, download=args.download)
    train, held = split_characters(ds) if args.val else (ds, None)
    return train, held, None if args.val else sl.data.load_lake_runs(size=args.size, download=args.download)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=15.0, help="training budget per seed (training time only)")
    ap.add_argument("--steps", type=int, default=None, help="a step budget instead of --minutes")
    ap.add_argument("--seeds", type=int, default=1, help="seeds 0..n-1, one after the other; the median is reported")
    ap.add_argument("--members", type=int, default=2,
                    help="an ensemble: train this many models per seed (each the whole budget; their embeddings "
                         "are concatenated); with --jobs 2 on a 2-core CPU, 2 members use the two cores a seed has")
    ap.add_argument("--jobs", type=int, default=2,
                    help="train the models (seeds × members) in this many parallel processes, one thread each")
    ap.add_argument("--model", default="proto", choices=("proto", "koch"))
    ap.add_argument("--val", action="store_true", help="hold out background characters; report their episode error")
    ap.add_argument("--subset", default="background_small1",
                    choices=("background_small1", "background_small2", "background"))
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--n-way", type=int, default=60)
    ap.add_argument("--n-query", type=int, default=1)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--no-rotations", action="store_true")
    ap.add_argument("--no-distort", action="store_true")
    ap.add_argument("--within", action="store_true", help="each episode within one alphabet (like Lake's runs)")
    ap.add_argument("--koch-share", type=float, default=0.3)
    ap.add_argument("--tta", type=int, nargs="*", default=[1, 2], metavar="PIXELS",
                    help="test-time augmentation: average the embeddings of each image and its copies shifted by each "
                         "of these sizes up, down, left and right (--tta with no size: off)")
    ap.add_argument("--episodes", type=int, default=1000, help="validation episodes (--val)")
    ap.add_argument("--download", action="store_true", help="allow downloads (online)")
    args = ap.parse_args()
    if min(args.seeds, args.members, args.jobs) < 1:
        ap.error(f"--seeds, --members and --jobs must be at least 1; got {args.seeds}, {args.members}, {args.jobs}")

    device = sl.train.get_device()
    train, held, runs = load(args)
    budget = f"{args.steps} steps" if args.steps else f"{args.minutes:g} min"
    load_start = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else []
    threads = 1 if args.jobs > 1 else torch.get_num_threads()
    print(f"Omniglot one-shot bench ({args.model}): train on {args.subset} ({len(train):,} images, "
          f"{len(train.labels.unique())} characters, {args.size}×{args.size}), {budget} per model, "
          f"{args.members} model(s) per seed; device {device}, {threads} thread(s) per model; "
          f"/proc/loadavg at start {' '.join(load_start)}")
    print("scored on " + ("20-way 1-shot episodes of the held-out background characters (--val)" if args.val else
                          "Lake's 20 runs (400 queries: one query = 0.25 points of the mean error)"), flush=True)
    levers = dict(n_way=args.n_way, n_query=args.n_query, lr=args.lr,
                  rotations=not args.no_rotations, distort=not args.no_distort, within=args.within,
                  koch_share=args.koch_share)
    args.tta = [p for p in args.tta if p > 0]
    tasks = [(seed, j, args, levers) for seed in range(args.seeds) for j in range(args.members)]
    if args.jobs > 1:  # models in parallel processes, one thread each (spawn: each loads its own data)
        import multiprocessing
        with multiprocessing.get_context("spawn").Pool(min(args.jobs, len(tasks))) as pool:
            trained = pool.starmap(train_member, tasks)
    else:
        trained = [train_member(*task, (train, held, runs)) for task in tasks]
    results = [score_seed(seed, trained[seed * args.members:(seed + 1) * args.members], args, (train, held, runs))
               for seed in range(args.seeds)]
    key = "val_error_pct" if args.val else "lake_error_pct"
    if not args.val:
        print(sl.metrics.lake_table({f"this kit: {args.model} (median of {args.seeds} seeds, {budget})":
                                     statistics.median(r[key] for r in results)}))
    load_end = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else []
    print(f"/proc/loadavg at end {' '.join(load_end)} (the machine is shared; steps per minute depend on it)")
    print(json.dumps({
        "bench": "omniglot", "model": args.model, key: statistics.median(r[key] for r in results),
        "per_seed": [r[key] for r in results], "steps": [r["steps"] for r in results],
        "train_s": [r["train_s"] for r in results],
        **({} if args.val or not args.tta else {"no_tta_per_seed": [r["no_tta_pct"] for r in results]}),
        **({} if args.members == 1 else {"members_per_seed": [r["members_pct"] for r in results]}),
        "device": str(device), "subset": args.subset,
        "size": args.size, "budget": budget,
        "levers": {"width": args.width, "tta": args.tta, "members": args.members, **levers},
        "loadavg_start": load_start, "loadavg_end": load_end,
        **({} if args.val else {"per_run_seed0": results[0]["per_run"]}),
    }))


if __name__ == "__main__":
    main()

"""Omniglot levers without a flag in the recipe, screened on held-out background characters (bench/README.md).

``bench/omniglot.py --val`` scores the recipe's own flags (width, size, episode shape, learning rate, members,
test-time shifts, ...). The levers here have none. Two change the recipe's augmentation: this script wraps
``sl.data.random_affine`` (the distortion ``sl.steps.omniglot_recipe`` applies to every image) for one run, then
trains and scores as ``bench/omniglot.py --val --members 1`` does (with no lever, the same model). Two change
only the scoring of the trained model. Lake's runs are never loaded.

* ``--affine K``: every distortion strength (rotation, scale, shear, shift) times K; 0 switches them off.
* ``--stroke-jitter P``: a share P of the images get their strokes thickened (3×3 max-pool, a dilation) or
  thinned (an erosion), half each.
* Scoring rules, always printed: Euclidean (the recipe's), cosine, and cosine after subtracting the mean
  embedding of the training characters ("base-centred", SimpleShot's CL2N) or of the episode's 20 support
  images ("support-centred").
* ``--finetune STEPS``: on the first ``--ft-episodes`` episodes, a copy of the model is fine-tuned on the
  episode's 20 support images alone (its batch: two distorted copies of each support image and of its three
  rotations, 80-way prototypical loss, Adam at ``--ft-lr``, batch-norm statistics frozen) before scoring; the
  same episodes are scored without it too.

Prints one JSON line: the held-out 20-way 1-shot error %, without and with test-time augmentation (``--tta``).

    SIAMLIB_DATA=../shared/data OMP_NUM_THREADS=1 python bench/omniglot_levers.py --steps 3000 --affine 0
    SIAMLIB_DATA=../shared/data OMP_NUM_THREADS=1 python bench/omniglot_levers.py --steps 3000 --finetune 20
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

import siamlib as sl

sys.path.insert(0, str(Path(__file__).parent))
from omniglot import scorer, split_characters, val_error  # noqa: E402 - the bench's own split and score


def episode_errors(model, train, held, tta, n_episodes):
    """Error % of the bench's 20-way 1-shot episodes under each scoring rule (``{rule: error %}``)."""
    embed_fn = scorer([model], "proto", "cpu", tta)[0]
    idx = torch.tensor(list(sl.data.EpisodeSampler(held.labels, 20, 1, 1, n_episodes, seed=0)))  # (E, 40)
    e = embed_fn(held.images)[idx].view(n_episodes, 20, 2, -1)  # (E, 20 classes, support + query, D)
    support, query = e[:, :, 0], e[:, :, 1]  # (E, 20, D) each
    base = embed_fn(train.images).mean(0)  # (D,): the mean over the training characters
    centres = {"euclid": None, "cos": 0.0, "base-centred": base, "support-centred": support.mean(1, keepdim=True)}
    errors = {}
    for rule, c in centres.items():
        s, q = (support, query) if c is None else (F.normalize(support - c, dim=-1), F.normalize(query - c, dim=-1))
        errors[rule] = round(100.0 * float((torch.cdist(q, s).argmin(-1) != torch.arange(20)).float().mean()), 2)
    return errors


def finetune_errors(model, held, tta, n_episodes, steps, lr, seed=0):
    """(error % without, with) fine-tuning a copy of ``model`` on each episode's 20 support images alone."""
    gen, wrong = torch.Generator().manual_seed(seed), [0, 0]
    for idx in sl.data.EpisodeSampler(held.labels, 20, 1, 1, n_episodes, seed=0):
        x = held.images[idx].view(20, 2, *held.images.shape[1:])  # (20, support + query, H, W)
        support, query = x[:, 0], x[:, 1]
        tuned = copy.deepcopy(model).eval()  # eval: batch-norm statistics stay those of the background set
        opt = torch.optim.Adam(tuned.parameters(), lr=lr)
        classes = torch.cat([torch.rot90(support, r, (1, 2)) for r in range(4)])  # (80, H, W): 80 classes
        for _ in range(steps):
            views = sl.data.to_float(classes).repeat_interleave(2, 0)  # (160, 1, H, W): class after class
            views = sl.data.random_affine(views, gen, degrees=10, scale=0.1, shear=0.15, translate=0.08)
            loss = sl.losses.prototypical_loss(tuned.embed(views), 80, 1, 1)
            opt.zero_grad()
            loss.backward()
            opt.step()
        for k, m in enumerate((model, tuned)):
            embed_fn = scorer([m], "proto", "cpu", tta)[0]
            wrong[k] += int((torch.cdist(embed_fn(query), embed_fn(support)).argmin(1) != torch.arange(20)).sum())
    return [round(100.0 * w / (20 * n_episodes), 2) for w in wrong]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=None, help="a step budget")
    ap.add_argument("--minutes", type=float, default=None, help="or a time budget (training time)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--affine", type=float, default=1.0, help="scale every distortion strength (0: none)")
    ap.add_argument("--stroke-jitter", type=float, default=0.0, help="share of images dilated or eroded")
    ap.add_argument("--tta", type=int, nargs="*", default=[1], help="shifts (pixels) of the test-time augmentation")
    ap.add_argument("--episodes", type=int, default=1000)
    ap.add_argument("--finetune", type=int, default=0, help="fine-tuning steps on each episode's support (0: off)")
    ap.add_argument("--ft-lr", type=float, default=1e-4)
    ap.add_argument("--ft-episodes", type=int, default=150)
    args = ap.parse_args()
    if (args.steps is None) == (args.minutes is None):
        ap.error("give exactly one of --steps or --minutes")

    recipe_affine = sl.data.random_affine

    def augment(x, gen, degrees, scale, shear, translate):  # (B, 1, H, W) -> (B, 1, H, W)
        k = args.affine
        x = recipe_affine(x, gen, degrees=degrees * k, scale=scale * k, shear=shear * k, translate=translate * k)
        if args.stroke_jitter > 0:
            u = torch.rand(len(x), generator=gen)[:, None, None, None]  # (B, 1, 1, 1)
            thick, thin = F.max_pool2d(x, 3, 1, 1), -F.max_pool2d(-x, 3, 1, 1)
            x = torch.where(u < args.stroke_jitter / 2, thick, torch.where(u < args.stroke_jitter, thin, x))
        return x

    sl.data.random_affine = augment  # what omniglot_recipe imports when it runs
    train, held = split_characters(sl.data.load_omniglot("background_small1", size=28))
    device = sl.train.get_device()
    sl.train.seed_everything(args.seed)
    model = sl.models.SiameseNet(sl.models.OmniglotEncoder(emb_dim=128, normalize=False, width=32))
    history = sl.steps.omniglot_recipe(model, train, steps=args.steps, seed=args.seed, device=device,
                                       max_seconds=args.minutes * 60 if args.minutes else None)
    model.cpu().eval()
    rules = episode_errors(model, train, held, args.tta, args.episodes)  # "euclid" is the bench's own score
    r = {"affine": args.affine, "stroke_jitter": args.stroke_jitter, "seed": args.seed, "steps": len(history),
         "train_s": round(history.train_s, 1), "tta": args.tta,
         "val_error_pct": round(val_error([model], "proto", held, "cpu", args.episodes), 2),
         "val_error_tta_pct": rules["euclid"], "scoring_rules_tta_pct": rules}
    if args.finetune:
        r["finetune"] = {"steps": args.finetune, "lr": args.ft_lr, "episodes": args.ft_episodes,
                         "error_tta_pct_without_with": finetune_errors(model, held, args.tta, args.ft_episodes,
                                                                       args.finetune, args.ft_lr, args.seed)}
    print(json.dumps(r))


if __name__ == "__main__":
    main()

"""Omniglot levers that change the augmentation, screened on held-out background characters (bench/README.md).

``bench/omniglot.py --val`` scores the recipe's own flags (width, size, episode shape, learning rate, ...). The
two levers here change the recipe's augmentation, which has no flag: this script wraps ``sl.data.random_affine``
(the distortion ``sl.steps.omniglot_recipe`` applies to every image) for one run, then trains and scores exactly
as ``bench/omniglot.py --val`` does. Lake's runs are never loaded.

* ``--affine K``: every distortion strength (rotation, scale, shear, shift) times K; 0 switches them off.
* ``--stroke-jitter P``: a share P of the images get their strokes thickened (3×3 max-pool, a dilation) or
  thinned (an erosion), half each.

Prints one JSON line: the held-out 20-way 1-shot error %, without and with test-time augmentation (``--tta``).

    SIAMLIB_DATA=../shared/data OMP_NUM_THREADS=1 python bench/omniglot_levers.py --steps 3000 --affine 0
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

import siamlib as sl

sys.path.insert(0, str(Path(__file__).parent))
from omniglot import split_characters, val_error  # noqa: E402 - the bench's own split and score


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=None, help="a step budget")
    ap.add_argument("--minutes", type=float, default=None, help="or a time budget (training time)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--affine", type=float, default=1.0, help="scale every distortion strength (0: none)")
    ap.add_argument("--stroke-jitter", type=float, default=0.0, help="share of images dilated or eroded")
    ap.add_argument("--tta", type=int, default=1, help="shift (pixels) of the test-time augmentation")
    ap.add_argument("--episodes", type=int, default=1000)
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
    print(json.dumps({"affine": args.affine, "stroke_jitter": args.stroke_jitter, "seed": args.seed,
                      "steps": len(history), "train_s": round(history.train_s, 1),
                      "val_error_pct": round(val_error(model, "proto", held, device, args.episodes), 2),
                      "val_error_tta_pct": round(val_error(model, "proto", held, device, args.episodes, args.tta), 2)}))


if __name__ == "__main__":
    main()

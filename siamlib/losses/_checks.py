"""Input checks shared by the losses: each failure says what was wrong, what was expected, what to do."""
from __future__ import annotations

import torch

_REDUCTIONS = ("mean", "sum", "none")


def check_pair_batch(name: str, x1: torch.Tensor, x2: torch.Tensor, names=("emb1", "emb2")) -> None:
    """Two (B, D) float tensors of the same shape, B >= 1."""
    n1, n2 = names
    for n, x in ((n1, x1), (n2, x2)):
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name}: {n} must be a torch.Tensor of shape (B, D); got {type(x).__name__}.")
        if x.dim() != 2:
            raise ValueError(f"{name}: {n} must have shape (B, D) (one embedding per row); got {tuple(x.shape)}.")
        if not x.dtype.is_floating_point:
            raise ValueError(f"{name}: {n} must be a float tensor; got dtype {x.dtype}. Use {n}.float().")
    if x1.shape != x2.shape:
        raise ValueError(
            f"{name}: {n1} and {n2} must have the same shape (B, D), one row per pair; "
            f"got {tuple(x1.shape)} and {tuple(x2.shape)}."
        )
    if x1.shape[0] == 0:
        raise ValueError(f"{name}: got an empty batch (B = 0); pass at least one pair.")


def check_margin(name: str, margin: float, allow_zero: bool = False) -> float:
    margin = float(margin)
    ok = margin >= 0 if allow_zero else margin > 0
    if not ok:
        want = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: margin must be {want}; got {margin}. A typical value is 0.2 for unit-norm embeddings.")
    return margin


def check_temperature(name: str, temperature: float) -> float:
    temperature = float(temperature)
    if not temperature > 0:
        raise ValueError(f"{name}: temperature must be > 0 (it divides the similarities); got {temperature}. Try 0.1 or 0.5.")
    return temperature


def check_reduction(name: str, reduction: str, allowed=_REDUCTIONS) -> str:
    if reduction not in allowed:
        raise ValueError(f"{name}: reduction must be one of {allowed}; got {reduction!r}.")
    return reduction


def check_binary(name: str, dissimilar: torch.Tensor, b: int, arg: str = "dissimilar") -> torch.Tensor:
    """A (B,) tensor of 0/1 labels (bool or numbers), returned as float."""
    if not isinstance(dissimilar, torch.Tensor):
        dissimilar = torch.as_tensor(dissimilar)
    if dissimilar.dim() != 1 or dissimilar.shape[0] != b:
        raise ValueError(
            f"{name}: {arg} must be a 1-D tensor with one label per pair, shape ({b},); got {tuple(dissimilar.shape)}."
        )
    if dissimilar.dtype != torch.bool:
        bad = ~((dissimilar == 0) | (dissimilar == 1))
        if bool(bad.any()):
            values = sorted({float(v) for v in dissimilar[bad].unique()[:5].tolist()})
            raise ValueError(
                f"{name}: {arg} must hold only 0 (similar pair) and 1 (dissimilar pair), as in Hadsell et al. 2006 "
                f"(Y = 0 means similar); found other values {values}. If your labels are -1/+1 or 1 = same, "
                f"convert them, e.g. dissimilar = (labels1 != labels2).float()."
            )
    return dissimilar.float()


def reduce(losses: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    return losses

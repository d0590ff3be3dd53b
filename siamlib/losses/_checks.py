"""Input checks shared by the losses: each failure says what was wrong, what was expected, what to do."""
import torch


def check_pair_batch(name: str, x1: torch.Tensor, x2: torch.Tensor, names=("emb1", "emb2")) -> None:
    """Two (B, D) float tensors of the same shape, B >= 1."""
    for n, x in zip(names, (x1, x2)):
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name}: {n} must be a torch.Tensor of shape (B, D); got {type(x).__name__}.")
        if x.dim() != 2:
            raise ValueError(f"{name}: {n} must have shape (B, D) (one embedding per row); got {tuple(x.shape)}.")
        if not x.dtype.is_floating_point:
            raise ValueError(f"{name}: {n} must be a float tensor; got dtype {x.dtype}. Use {n}.float().")
    if x1.shape != x2.shape:
        raise ValueError(f"{name}: {names[0]} and {names[1]} must have the same shape (B, D), one row per pair; "
                         f"got {tuple(x1.shape)} and {tuple(x2.shape)}.")
    if x1.shape[0] == 0:
        raise ValueError(f"{name}: got an empty batch (B = 0); pass at least one pair.")


_HINTS = {"margin": "A typical value is 0.2 for unit-norm embeddings.",
          "temperature": "It divides the similarities: try 0.1 or 0.5."}


def check_positive(name: str, arg: str, value: float, allow_zero: bool = False) -> float:
    if not (float(value) >= 0 if allow_zero else float(value) > 0):
        raise ValueError(f"{name}: {arg} must be {'>= 0' if allow_zero else '> 0'}; got {float(value)}. {_HINTS[arg]}")
    return float(value)


def check_reduction(name: str, reduction: str, allowed=("mean", "sum", "none")) -> str:
    if reduction not in allowed:
        raise ValueError(f"{name}: reduction must be one of {allowed}; got {reduction!r}.")
    return reduction


def check_binary(name: str, dissimilar: torch.Tensor, b: int) -> torch.Tensor:
    """A (B,) tensor of 0/1 labels (bool or numbers), returned as float."""
    dissimilar = torch.as_tensor(dissimilar)
    if dissimilar.dim() != 1 or dissimilar.shape[0] != b:
        raise ValueError(f"{name}: dissimilar must be a 1-D tensor with one label per pair, shape ({b},); "
                         f"got {tuple(dissimilar.shape)}.")
    bad = ~((dissimilar == 0) | (dissimilar == 1))
    if bool(bad.any()):
        values = sorted({float(v) for v in dissimilar[bad].unique()[:5].tolist()})
        raise ValueError(f"{name}: dissimilar must hold only 0 (similar pair) and 1 (dissimilar pair), as in Hadsell "
                         f"et al. 2006 (Y = 0 means similar); found other values {values}. If your labels are -1/+1 "
                         "or 1 = same, convert them, e.g. dissimilar = (labels1 != labels2).float().")
    return dissimilar.float()


def reduce(losses: torch.Tensor, reduction: str) -> torch.Tensor:
    return losses.mean() if reduction == "mean" else losses.sum() if reduction == "sum" else losses

"""Omniglot's pen trajectories (Lake et al. 2015): how each drawing was drawn, beside how it looks.

* :func:`load_strokes` reads ``root/omniglot/strokes_<subset>.zip`` in place (downloaded like the images when missing
  and allowed), parsed once into the cache like :func:`sl.data.load_omniglot`'s images, in the same drawing order:
  ``load_strokes(s)[i]`` is how ``load_omniglot(s)[i]`` was drawn. A drawing is a list of strokes, each an
  ``(n, 3)`` array of ``x, y, t``: ``x`` the image column, ``y`` the image row (the files store ``-row``, Lake's
  "motor" convention; we flip it once here), ``t`` milliseconds.
* :func:`resample` turns a drawing into a fixed number of points equally spaced along the ink, with a pen-up flag;
  :func:`render` draws one as an image with the images' coordinate convention (ink = 255).
* :func:`check_resample_stroke`, :func:`check_clip_loss` and :func:`check_recall_at_k` are the self-checks of the
  lesson's exercises.

Derived in notebooks/09_pseudo_siamese_strokes.ipynb.
"""
from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from .check import _report, _run  # the same report and "your function raised" message as every self-check
from .data import omniglot
from .data.download import ChecksumError, cached_arrays, check_md5

__all__ = ["load_strokes", "resample", "render", "recall_both_ways", "check_resample_stroke", "check_clip_loss",
           "check_recall_at_k"]

MD5 = omniglot.MD5  # one table of published md5s for every Omniglot zip (none for the other stroke subsets)
SUBSETS = ("background", "evaluation", "background_small1", "background_small2")
IMAGE_SIZE = 105  # Omniglot's images are 105 x 105; the trajectories are in their pixel units


class StrokeFileError(ValueError):
    """A trajectory file that cannot be read; the message names the file inside the zip and the way out."""


@dataclass
class StrokeSet:
    """``drawings[i]``: a list of ``(n, 3)`` float32 arrays ``x, y, t`` (column, row, ms), one per stroke; ``labels``
    ``(N,)`` character ids and ``groups`` ``(N,)`` alphabet ids, numbered as :func:`sl.data.load_omniglot` numbers
    them; ``files`` ``"Alphabet/characterNN/XXXX_YY"``. Returned by :func:`load_strokes`."""

    drawings: list[list[np.ndarray]]
    labels: torch.Tensor
    groups: torch.Tensor
    class_names: list[str]
    group_names: list[str]
    files: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.drawings)

    def resampled(self, n_points: int) -> torch.Tensor:
        """Every drawing through :func:`resample`: ``(N, n_points, 3)`` float32, columns x, y, pen_up."""
        return torch.from_numpy(np.stack([resample(d, n_points) for d in self.drawings]))


def _is_junk(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return "__MACOSX" in parts or any(p.startswith("._") or p == ".DS_Store" for p in parts)


def parse_strokes(text: str, where: str) -> list[np.ndarray]:
    """One trajectory file's text -> its strokes, ``(n, 3)`` arrays of x, row, t. Lines: ``START``, then each
    stroke's ``x,y,t`` rows followed by ``BREAK``. Raises :class:`StrokeFileError` naming ``where`` and the line."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "START":
        raise StrokeFileError(f"{where}: line 1 is {lines[0][:40]!r} where START is expected" if lines
                              else f"{where}: the file is empty")
    strokes, current = [], []
    for k, line in enumerate(lines[1:], start=2):
        line = line.strip()
        if line == "BREAK":
            if not current:
                raise StrokeFileError(f"{where}: line {k}: BREAK ends a stroke with no points")
            strokes.append(np.asarray(current, dtype=np.float32))
            current = []
        elif line:
            fields = line.split(",")
            try:
                row = [float(f) for f in fields]
            except ValueError:
                row = []
            if len(row) != 3 or not all(math.isfinite(v) for v in row):
                raise StrokeFileError(f"{where}: line {k} is {line[:40]!r}, not three numbers x,y,t")
            current.append([row[0], -row[1], row[2]])  # the file's y is minus the image row
    if current:
        raise StrokeFileError(f"{where}: the last stroke has no closing BREAK (the file is cut short)")
    if not strokes:
        raise StrokeFileError(f"{where}: no strokes between START and the end")
    return strokes


def find_zip(subset: str, root: str | os.PathLike | None = None, download: bool = True) -> Path:
    """``root/omniglot/strokes_<subset>.zip``, downloaded from the images' source folder if missing and allowed."""
    return omniglot.find_zip(f"strokes_{subset}", root, download)


def _decode(path: Path, name: str) -> dict:
    check_md5(path, MD5.get(name))
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ChecksumError(f"{path} is not a readable zip; delete it and download it again.") from None
    fix = f"delete {path} and download it again, or copy it from a data mirror"
    with z:
        entries = sorted((*PurePosixPath(n).parts[-3:], n) for n in z.namelist()
                         if n.endswith(".txt") and not _is_junk(n) and len(PurePosixPath(n).parts) >= 3)
        if not entries:
            raise ValueError(f"{path} holds no Alphabet/character/*.txt trajectories; is it an Omniglot strokes zip?")
        points, stroke_len, n_strokes = [], [], []
        for e in entries:
            try:
                strokes = parse_strokes(z.read(e[3]).decode("utf-8", errors="replace"), f"{path.name}:{e[3]}")
            except StrokeFileError as err:
                raise StrokeFileError(f"{err}; {fix}.") from None
            points += strokes
            stroke_len += [len(s) for s in strokes]
            n_strokes.append(len(strokes))
    alphabets, characters = sorted({e[0] for e in entries}), sorted({e[:2] for e in entries})
    alpha_id, char_id = {a: i for i, a in enumerate(alphabets)}, {ac: i for i, ac in enumerate(characters)}
    return {"points": np.concatenate(points), "stroke_len": np.array(stroke_len, dtype=np.int64),  # (M, 3), (S,)
            "n_strokes": np.array(n_strokes, dtype=np.int64),  # (N,)
            "labels": np.array([char_id[e[:2]] for e in entries], dtype=np.int64),
            "groups": np.array([alpha_id[e[0]] for e in entries], dtype=np.int64),
            "class_names": np.array([f"{a}/{c}" for a, c in characters]), "group_names": np.array(alphabets),
            "files": np.array([f"{e[0]}/{e[1]}/{e[2][:-4]}" for e in entries])}


def load_strokes(subset: str = "background_small1", root: str | os.PathLike | None = None,
                 download: bool = True) -> StrokeSet:
    """The trajectories of an Omniglot subset, in :func:`sl.data.load_omniglot`'s drawing order.
    Derived in notebooks/09_pseudo_siamese_strokes.ipynb."""
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}.")
    path = find_zip(subset, root, download)
    a = cached_arrays("omniglot", f"strokes-{subset}", path, "1", lambda: _decode(path, f"strokes_{subset}"))
    strokes = np.split(a["points"], np.cumsum(a["stroke_len"])[:-1])  # S arrays (n, 3)
    bounds = np.concatenate([[0], np.cumsum(a["n_strokes"])])
    drawings = [strokes[bounds[i]:bounds[i + 1]] for i in range(len(a["n_strokes"]))]
    return StrokeSet(drawings, torch.from_numpy(a["labels"]), torch.from_numpy(a["groups"]),
                     [str(s) for s in a["class_names"]], [str(s) for s in a["group_names"]],
                     [str(s) for s in a["files"]], f"Omniglot strokes {subset} ({path.name})")


def resample(drawing: list, n_points: int = 64) -> np.ndarray:
    """``n_points`` points equally spaced along the ink of all strokes (pen-up jumps count no length), first and last
    point included: ``(n_points, 3)`` float32, columns ``x, y, pen_up``; ``pen_up = 1`` after the last point of a
    stroke (the next point starts another stroke, or the drawing ends). A stroke shorter than the spacing may get no
    point. Time is dropped: the order of the points keeps the order of drawing. Derived in
    notebooks/09_pseudo_siamese_strokes.ipynb."""
    if n_points < 2:
        raise ValueError(f"resample: n_points must be >= 2; got {n_points}.")
    if len(drawing) == 0:
        raise ValueError("resample: the drawing has no strokes.")
    xy = [np.asarray(s, dtype=np.float64)[:, :2] for s in drawing]  # each (n_k, 2)
    arc = [np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))]) for p in xy]  # (n_k,)
    lengths = np.array([a[-1] for a in arc])  # (K,)
    offsets = np.concatenate([[0.0], np.cumsum(lengths)])  # (K + 1,) where each stroke starts along the ink
    u = np.linspace(0.0, offsets[-1], n_points)  # (n_points,)
    k = np.clip(np.searchsorted(offsets[1:-1], u, side="left"), 0, len(xy) - 1)  # (n_points,) stroke of each point
    out = np.zeros((n_points, 3))
    for s in np.unique(k):
        m = k == s
        local = np.clip(u[m] - offsets[s], 0.0, lengths[s])
        out[m, 0] = np.interp(local, arc[s], xy[s][:, 0]) if len(arc[s]) > 1 else xy[s][0, 0]
        out[m, 1] = np.interp(local, arc[s], xy[s][:, 1]) if len(arc[s]) > 1 else xy[s][0, 1]
    out[:-1, 2] = k[1:] != k[:-1]
    out[-1, 2] = 1.0
    return out.astype(np.float32)


def _split_pen_up(points: np.ndarray) -> list[np.ndarray]:
    ends = np.flatnonzero(points[:, 2] > 0.5) + 1  # a stroke ends after each pen-up point
    return [s for s in np.split(points[:, :2], ends) if len(s)]


def render(drawing, size: int | None = None, width: float = 4.0) -> np.ndarray:
    """A drawing as an image like Omniglot's (uint8, ink = 255, 105 x 105 px), lines of ``width`` px through its
    points, then resized to ``size`` with the bilinear filter :func:`sl.data.load_omniglot` uses. ``drawing``: a list
    of strokes (``(n, >=2)`` x, y[, t]) or one resampled ``(T, 3)`` array (x, y, pen_up). Derived in
    notebooks/09_pseudo_siamese_strokes.ipynb."""
    if isinstance(drawing, torch.Tensor):
        drawing = drawing.detach().cpu().numpy()
    if isinstance(drawing, np.ndarray):
        if drawing.ndim != 2 or drawing.shape[1] != 3:
            raise ValueError(f"render: a resampled drawing is (T, 3) x, y, pen_up; got {drawing.shape}.")
        strokes = _split_pen_up(drawing)
    else:
        strokes = [np.asarray(s, dtype=np.float64)[:, :2] for s in drawing]
    canvas = Image.new("L", (IMAGE_SIZE, IMAGE_SIZE), 0)
    pen = ImageDraw.Draw(canvas)
    r = width / 2
    for s in strokes:
        pts = [(float(x), float(y)) for x, y in s]
        if len(pts) > 1:
            pen.line(pts, fill=255, width=max(1, round(width)), joint="curve")
        for x, y in (pts[0], pts[-1]):  # round pen tips (and dots)
            pen.ellipse([x - r + 0.5, y - r + 0.5, x + r - 0.5, y + r - 0.5], fill=255)
    if size is not None and size != IMAGE_SIZE:
        canvas = canvas.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(canvas, dtype=np.uint8)


# --------------------------------------------------------------------- cross-modal retrieval
def recall_both_ways(sim, ks: Sequence[int] = (1, 5)) -> torch.Tensor:
    """R@k of a (Q, Q) cross-modal similarity matrix (higher = closer) whose right answer for query i is item i.

    Returns a (2 * len(ks),) tensor: R@k for each k with the rows as queries (e.g. trajectory -> image), then with
    the columns as queries (image -> trajectory). The right answer's rank is the number of items scoring strictly
    higher, so ties favour it. Derived in notebooks/09_pseudo_siamese_strokes.ipynb.
    """
    sim = torch.as_tensor(sim)
    if sim.dim() != 2 or sim.shape[0] != sim.shape[1] or sim.shape[0] == 0:
        raise ValueError(f"sim must be a non-empty square (Q, Q) matrix, query i's right answer at column i; got "
                         f"shape {tuple(sim.shape)}. Pass z_queries @ z_gallery.T for matched rows.")
    if not torch.isfinite(sim).all():
        raise ValueError("sim holds nan or inf: check the embeddings (a diverged model?) before scoring them.")
    truth = sim.diag()[:, None]  # (Q, 1)
    ranks = [(sim > truth).sum(1), (sim.T > truth).sum(1)]  # (Q,) each: rows as queries, columns as queries
    return torch.tensor([(r < k).double().mean().item() for r in ranks for k in ks], dtype=torch.float64)


# --------------------------------------------------------------------- exercise self-checks
def _reference_resample_stroke(points: torch.Tensor, m: int) -> torch.Tensor:
    out = resample([points.numpy()], m)[:, :2]
    return torch.from_numpy(out).double()


def check_resample_stroke(fn: Callable) -> bool:
    """Self-check for the exercise "resample one stroke by arc length".

    ``fn(points, m)`` with ``points`` an (n, 2) float64 NumPy array (x, y along one stroke) must return (m, 2): ``m`` points
    equally spaced along the stroke's length, the first and last points of the stroke included.
    Derived in notebooks/09_pseudo_siamese_strokes.ipynb.
    """
    # an L: 3 points along x (length 2) then one jump of 6 along y: arc length is not the point index
    ell = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [2.0, 6.0]], dtype=torch.float64)
    g = torch.Generator().manual_seed(9)
    wiggle = torch.cumsum(torch.rand(12, 2, generator=g, dtype=torch.float64) * 3 - 1, dim=0)  # (12, 2)
    for name, pts, m in [("an L-shaped stroke", ell, 5), ("a random 12-point stroke", wiggle, 17)]:
        out, error = _run(fn, (pts.numpy().copy(), m), f"fn(points, m) with points a {tuple(pts.shape)} array and m={m}")
        if error:
            return _report(False, error)
        if not torch.is_tensor(out) and not isinstance(out, np.ndarray):
            return _report(False, f"return a tensor or array of shape ({m}, 2); got {type(out).__name__}.")
        out = torch.as_tensor(np.asarray(out) if isinstance(out, np.ndarray) else out).double()
        if tuple(out.shape) != (m, 2):
            return _report(False, f"on {name}: expected shape ({m}, 2); got {tuple(out.shape)}.")
        want = _reference_resample_stroke(pts, m)
        if torch.allclose(out, want, atol=1e-5):
            continue
        by_index = torch.stack([torch.from_numpy(np.interp(np.linspace(0, len(pts) - 1, m), np.arange(len(pts)),
                                                           pts[:, c].numpy())) for c in (0, 1)], 1)
        if torch.allclose(out, by_index, atol=1e-5):
            return _report(False, f"on {name}: your points are equally spaced in the point INDEX, not along the ink. "
                                  "Interpolate against the cumulative arc length s (np.interp(u, s, x)).")
        if torch.allclose(out, want.flip(1), atol=1e-5):
            return _report(False, f"on {name}: x and y are swapped.")
        if not torch.allclose(out[0], pts[0]) or not torch.allclose(out[-1], pts[-1]):
            return _report(False, f"on {name}: the first and last points must be the stroke's own ends; got "
                                  f"{out[0].tolist()} and {out[-1].tolist()} (use np.linspace(0, total_length, m), which "
                                  "includes both ends).")
        return _report(False, f"on {name}: max error {float((out - want).abs().max()):.3g} against points equally "
                              "spaced along the stroke's length.")
    return _report(True, "your arc-length resampling is right on an L-shaped and a random stroke.")


def _clip(z_a: torch.Tensor, z_b: torch.Tensor, tau: float, both=True, norm=True, scale=True) -> torch.Tensor:
    if norm:
        z_a, z_b = F.normalize(z_a, dim=1), F.normalize(z_b, dim=1)
    logits = z_a @ z_b.T / (tau if scale else 1.0)  # (N, N)
    target = torch.arange(len(z_a))
    if not both:
        return F.cross_entropy(logits, target)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def check_clip_loss(fn: Callable) -> bool:
    """Self-check for the exercise "write the symmetric InfoNCE (CLIP) loss".

    ``fn(z_a, z_b, temperature)`` with ``z_a, z_b`` (N, D), row i of each a matching pair, must return the 0-dim
    ``½ [CE(S/τ, I) + CE(Sᵀ/τ, I)]`` with ``S`` the cosine similarities. Derived in
    notebooks/09_pseudo_siamese_strokes.ipynb.
    """
    g = torch.Generator().manual_seed(12)
    z_a = torch.randn(6, 4, generator=g, dtype=torch.float64) * 3
    z_b = (z_a + torch.randn(6, 4, generator=g, dtype=torch.float64)) * torch.tensor([[1.0, 5, 0.5, 2]])
    tau = 0.2
    out, error = _run(fn, (z_a.clone(), z_b.clone(), tau), "fn(z_a, z_b, temperature) with z_a, z_b (6, 4)")
    if error:
        return _report(False, error)
    if not torch.is_tensor(out):
        return _report(False, f"return a torch tensor, not a {type(out).__name__}: autograd must reach the encoders.")
    if out.dim() != 0:
        return _report(False, f"return one number (the mean over the batch); got shape {tuple(out.shape)}.")
    out = out.double()
    want = _clip(z_a, z_b, tau)
    if torch.allclose(out, want, atol=1e-6):
        swapped, _ = _run(fn, (z_b.clone(), z_a.clone(), tau), "fn(z_b, z_a, temperature)")
        if swapped is None or not torch.allclose(torch.as_tensor(swapped).double(), want, atol=1e-6):
            return _report(False, "the loss changes when the two modalities swap places; it must be symmetric.")
        return _report(True, "your symmetric InfoNCE matches the CLIP loss, and swapping the modalities leaves it "
                             "unchanged.")
    mistakes = [(_clip(z_a, z_b, tau, both=False), "only one direction (a -> b): average it with the b -> a "
                                                   "cross-entropy, the same logits transposed."),
                (_clip(z_b, z_a, tau, both=False), "only one direction (b -> a): average both directions."),
                (2 * want, "twice the loss: average the two directions (times 1/2), do not add them."),
                (_clip(z_a, z_b, tau, norm=False), "the embeddings are not normalised: use cosine similarities "
                                                   "(F.normalize each row first)."),
                (_clip(z_a, z_b, tau, scale=False), "the temperature is missing: divide the similarities by it."),
                (_clip(z_a, z_b, 1 / tau), "the temperature is used the wrong way: divide by it, do not multiply.")]
    for value, message in mistakes:
        if torch.allclose(out, value, atol=1e-6):
            return _report(False, message)
    return _report(False, f"got {float(out):.5f}, expected {float(want):.5f}: "
                          "½ [cross_entropy(S/τ, arange(N)) + cross_entropy(S.T/τ, arange(N))].")


def check_recall_at_k(fn: Callable) -> bool:
    """Self-check for the exercise "recall@k of a cross-modal similarity matrix".

    ``fn(sim, k)`` with ``sim`` (Q, G) similarities (higher = closer) whose query ``i``'s true item is gallery
    item ``i`` must return the fraction of queries whose true item is among their ``k`` most similar.
    Derived in notebooks/09_pseudo_siamese_strokes.ipynb.
    """
    g = torch.Generator().manual_seed(13)
    sim = torch.randn(40, 40, generator=g) + 1.5 * torch.eye(40)

    def recall(s, k, largest=True):
        top = s.topk(k, dim=1, largest=largest).indices  # (Q, k)
        return (top == torch.arange(len(s))[:, None]).any(1).float().mean().item()

    for k in (1, 5):
        out, error = _run(lambda s, kk: float(fn(s, kk)), (sim.clone(), k), f"fn(sim, {k}) with sim (40, 40)")
        if error:
            return _report(False, error)
        want = recall(sim, k)
        if math.isclose(out, want, abs_tol=1e-6):
            continue
        if math.isclose(out, recall(sim, k, largest=False), abs_tol=1e-6):
            return _report(False, f"R@{k}: you took the k LEAST similar; sim is a similarity (higher = closer).")
        if math.isclose(out, recall(sim.T, k), abs_tol=1e-6):
            return _report(False, f"R@{k}: you ranked down the columns; each query is a ROW of sim.")
        if k > 1 and math.isclose(out, recall(sim, k - 1), abs_tol=1e-6):
            return _report(False, f"R@{k}: you looked at the top {k - 1}; take the top k.")
        if math.isclose(out, 100 * want, abs_tol=1e-4):
            return _report(False, f"R@{k}: return a fraction in [0, 1], not a percentage.")
        return _report(False, f"R@{k}: got {out:.4f}, expected {want:.4f}.")
    return _report(True, "your recall@k is right for k = 1 and 5.")

"""Wasserstein embeddings (DWE): a twin network whose squared distance mimics W_2^2.

* :func:`to_distribution` — an image is a distribution of ink: ``(N, H, W) -> (N, H*W)``, rows sum to 1.
* :func:`grid_positions` — the pixel coordinates the ground cost is measured between: ``(H*W, 2)``.
* :func:`exact_w2` — the ground truth: exact ``W_2^2`` (POT's ``ot.emd2``, squared-Euclidean
  ground cost in pixel units, on the non-zero pixels only) for a list of index pairs, with a
  progress bar, optional worker processes, and a cache keyed by the exact inputs, written atomically.
* :class:`DWE` — the encoder ``phi`` (image -> R^D) and the decoder ``psi`` (R^D -> logits over pixels).
* :func:`embedding_loss` — MSE between ``||phi(x_i) - phi(x_j)||^2`` and ``W_ij``.
* :func:`reconstruction_kl` — ``KL(p || softmax(psi(phi(x))))``, the decoder's loss.
* :func:`check_w2_two_pixels`, :func:`check_ink_centre_gap`, :func:`check_sinkhorn` — the self-checks behind
  the lesson's exercises: they print what is wrong and return False.

Derived in notebooks/10_wasserstein_embeddings.ipynb (Courty, Flamary & Ducoffe 2017,
"Learning Wasserstein Embeddings"); used by bench/wasserstein.py. We never write an
optimal-transport solver of our own: the exact values come from POT (Flamary et al. 2021).
"""
from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import config
from .check import _report, _run  # the same report and "your function raised" message as every self-check
from .distances import pair_distance, pairwise_distances

__all__ = ["to_distribution", "grid_positions", "exact_w2", "DWE", "embedding_loss", "reconstruction_kl",
           "check_w2_two_pixels", "check_ink_centre_gap", "check_sinkhorn"]

_CACHE_TAG = b"siamlib.wasserstein.exact_w2 v1: ot.emd2, squared Euclidean ground cost in pixels, non-zero support"


# --------------------------------------------------------------------- images as distributions
def to_distribution(images) -> torch.Tensor:
    """Images ``(N, H, W)`` (uint8 or float, tensor or array) -> distributions ``(N, H*W)`` float64.

    Each row is the image's ink divided by its total ink, so it sums to 1. Raises a
    ValueError naming the image for what is not a distribution: an empty batch, NaN or
    infinite pixels, negative ink, an image with no ink at all.
    Derived in notebooks/10_wasserstein_embeddings.ipynb.
    """
    x = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
    if x.dim() == 2:
        x = x[None]  # (1, H, W): one image
    if x.dim() != 3:
        raise ValueError(
            f"to_distribution expects images of shape (N, H, W) or (H, W); got shape {tuple(x.shape)}. "
            "Drop the channel axis first, e.g. images[:, 0]."
        )
    if x.shape[0] == 0 or x.shape[1] * x.shape[2] == 0:
        raise ValueError(f"to_distribution got an empty batch of shape {tuple(x.shape)}; pass at least one image.")
    x = x.to(torch.float64).reshape(x.shape[0], -1)  # (N, H*W)
    bad = ~torch.isfinite(x).all(dim=1)
    if bad.any():
        raise ValueError(
            f"image {int(bad.nonzero()[0])} has NaN or infinite pixels ({int(bad.sum())} such images); "
            "a distribution needs finite ink: fix or drop those images."
        )
    neg = (x < 0).any(dim=1)
    if neg.any():
        raise ValueError(
            f"image {int(neg.nonzero()[0])} has negative pixels; ink must be >= 0. "
            "Pass raw intensities (uint8, or floats in [0, 1]), not standardised images."
        )
    mass = x.sum(dim=1, keepdim=True)  # (N, 1)
    empty = mass[:, 0] == 0
    if empty.any():
        raise ValueError(
            f"image {int(empty.nonzero()[0])} is all zeros ({int(empty.sum())} such images): no ink, so it is not a "
            "distribution and W to it is undefined. Drop blank images before computing W."
        )
    return x / mass


def grid_positions(height: int = 28, width: int = 28) -> torch.Tensor:
    """Pixel coordinates (row, column) in pixel units, row-major like ``image.reshape(-1)``: ``(H*W, 2)``.

    The ground cost between pixels k and l is ``||pos[k] - pos[l]||^2``.
    Derived in notebooks/10_wasserstein_embeddings.ipynb.
    """
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return torch.stack([rows.reshape(-1), cols.reshape(-1)], dim=1).to(torch.float64)  # (H*W, 2)


# --------------------------------------------------------------------- exact ground truth (POT)
_WORKER: dict = {}


def _init_worker(dist: np.ndarray, pos: np.ndarray) -> None:
    _WORKER["dist"], _WORKER["pos"] = dist, torch.from_numpy(pos)
    torch.set_num_threads(1)


def _w2_chunk(pairs: np.ndarray) -> np.ndarray:
    """Exact W_2^2 for a chunk of index pairs ``(C, 2) -> (C,)``, one ``ot.emd2`` per pair on the non-zero pixels."""
    import ot

    dist, pos = _WORKER["dist"], _WORKER["pos"]
    out = np.empty(len(pairs))
    for k, (i, j) in enumerate(pairs):
        a, b = dist[i], dist[j]  # (H*W,) each
        on_a, on_b = a > 0, b > 0  # ink pixels
        # (n_a, n_b) ground cost ||pos_k - pos_l||^2; exact, the coordinates are small integers
        M = pairwise_distances(pos[torch.from_numpy(on_a)], pos[torch.from_numpy(on_b)], squared=True).numpy()
        out[k], info = ot.emd2(a[on_a], b[on_b], M, numItermax=1_000_000, log=True)
        if info.get("warning"):  # e.g. the iteration limit: the value would not be the exact W
            raise RuntimeError(f"ot.emd2 did not solve pair ({i}, {j}) exactly: {info['warning']}. "
                               "Check the two images (they must be distributions); report it if they are.")
    return out


def _watched() -> bool:
    """A person is watching: a live Jupyter session (JupyterLab sets JPY_SESSION_NAME) or a terminal."""
    return bool(os.environ.get("JPY_SESSION_NAME")) or sys.stderr.isatty()


def _cache_key(images: np.ndarray, pairs: np.ndarray) -> str:
    h = hashlib.sha256(_CACHE_TAG)
    for arr in (images, pairs):
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:32]


def _cache_folder(folder) -> Path:
    path = Path(folder) if folder is not None else config.cache_dir() / "wasserstein"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(
            f"cache folder {path} cannot be created ({err.strerror}); set SIAMLIB_CACHE to a writable folder, "
            "pass cache_dir=..., or pass cache=False."
        ) from err
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(
            f"cache folder {path} is not writable; set SIAMLIB_CACHE to a writable folder, pass cache_dir=..., "
            "or pass cache=False."
        )
    return path


def exact_w2(images, pairs, *, workers: int = 1, cache: bool = True, cache_dir=None, progress: bool | None = None,
             desc: str = "exact W (ot.emd2)", chunk: int = 100) -> np.ndarray:
    """Exact ``W_2^2(x_i, x_j)`` for each index pair: images ``(N, H, W)``, pairs ``(P, 2)`` -> ``(P,)`` float64.

    One ``ot.emd2`` per pair between the two images as distributions (:func:`to_distribution`),
    restricted to their non-zero pixels, with the squared-Euclidean ground cost between pixel
    positions (pixel units). ``workers`` processes share the pairs. The result is cached in
    ``cache_dir`` (default ``sl.config.cache_dir() / "wasserstein"``) under a hash of the exact
    images and pairs, so changing one pixel or one index recomputes; the file is written to a
    temporary name and renamed into place (atomic). ``progress=None`` shows a bar only when a
    person watches (live Jupyter or a terminal).
    Derived in notebooks/10_wasserstein_embeddings.ipynb.
    """
    imgs = images.numpy() if torch.is_tensor(images) else np.asarray(images)
    dist = to_distribution(imgs).numpy()  # (N, H*W); validates every image
    idx = pairs.numpy() if torch.is_tensor(pairs) else np.asarray(pairs)
    if idx.ndim != 2 or idx.shape[1] != 2 or idx.shape[0] == 0:
        raise ValueError(f"pairs must be a non-empty (P, 2) array of image indices; got shape {idx.shape}.")
    if not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"pairs must hold integer indices; got dtype {idx.dtype}. Use pairs.astype(int).")
    idx = idx.astype(np.int64)
    if idx.min() < 0 or idx.max() >= len(dist):
        raise ValueError(f"pair indices must lie in [0, {len(dist)}); got range [{idx.min()}, {idx.max()}].")
    if workers < 1:
        raise ValueError(f"workers must be >= 1; got {workers}.")

    path = None
    if cache:
        path = _cache_folder(cache_dir) / f"w2-{_cache_key(imgs, idx)}.npy"
        if path.exists():
            try:
                w = np.load(path)
            except Exception as err:  # noqa: BLE001 - any unreadable file is reported the same way
                raise ValueError(f"cache file {path} is corrupt ({err}); delete it and run again.") from err
            if w.shape != (len(idx),) or not np.isfinite(w).all():
                raise ValueError(f"cache file {path} holds {w.shape} values for {len(idx)} pairs; delete it and run again.")
            return w

    pos = grid_positions(imgs.shape[-2], imgs.shape[-1]).numpy()  # (H*W, 2)
    chunks = [idx[s:s + chunk] for s in range(0, len(idx), chunk)]
    show = _watched() if progress is None else progress
    from tqdm.auto import tqdm

    bar = tqdm(total=len(idx), desc=desc, unit="pair", disable=not show, leave=False)
    parts = []
    if workers == 1:
        _init_worker(dist, pos)
        for c in chunks:
            parts.append(_w2_chunk(c))
            bar.update(len(c))
    else:
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ctx.Pool(workers, initializer=_init_worker, initargs=(dist, pos)) as pool:
            for part in pool.imap(_w2_chunk, chunks):
                parts.append(part)
                bar.update(len(part))
    bar.close()
    w = np.concatenate(parts)  # (P,)

    if path is not None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".npy.part")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, w)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; a cache file is ordinary
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return w


# --------------------------------------------------------------------- the DWE model and its losses
class DWE(nn.Module):
    """Encoder ``phi``: distribution (N, H*W) -> embedding (N, D); decoder ``psi``: (N, D) -> logits (N, H*W).

    ``arch="mlp"`` (default): ``phi`` is H*W -> hidden -> hidden -> D with ReLUs; ``arch="conv"``:
    two stride-2 5x5 convolutions (``width``, ``2*width`` channels), then hidden -> D. ``psi`` is
    D -> hidden -> hidden -> H*W either way. ``phi`` sees the distribution scaled by ``H*W`` (mean
    ink 1 per pixel), so two images with the same distribution get the same embedding.
    Derived in notebooks/10_wasserstein_embeddings.ipynb.
    """

    def __init__(self, emb_dim: int = 50, hidden: int = 512, arch: str = "mlp", width: int = 16, side: int = 28):
        super().__init__()
        n = side * side
        self.side = side
        if arch == "mlp":
            self.phi = nn.Sequential(
                nn.Flatten(), nn.Linear(n, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                nn.Linear(hidden, emb_dim),                                               # (N, D)
            )
        elif arch == "conv":
            if side % 4:
                raise ValueError(f"DWE(arch='conv') needs an image side divisible by 4; got {side}. Use arch='mlp'.")
            q = side // 4
            self.phi = nn.Sequential(
                nn.Conv2d(1, width, 5, stride=2, padding=2), nn.ReLU(),                   # (N, w, s/2, s/2)
                nn.Conv2d(width, 2 * width, 5, stride=2, padding=2), nn.ReLU(),           # (N, 2w, s/4, s/4)
                nn.Flatten(), nn.Linear(2 * width * q * q, hidden), nn.ReLU(), nn.Linear(hidden, emb_dim),
            )
        else:
            raise ValueError(f"DWE arch must be 'mlp' or 'conv'; got {arch!r}.")
        self.psi = nn.Sequential(
            nn.Linear(emb_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, n),                                                         # (N, H*W) logits
        )

    def embed(self, p: torch.Tensor) -> torch.Tensor:
        """``phi``: distributions ``(N, H*W)`` -> embeddings ``(N, D)``."""
        if p.dim() != 2 or p.shape[1] != self.side * self.side:
            raise ValueError(f"DWE.embed expects distributions of shape (N, {self.side ** 2}); got {tuple(p.shape)}. "
                             "Use sl.wasserstein.to_distribution(images).")
        x = (p * p.shape[1]).to(torch.float32).reshape(-1, 1, self.side, self.side)  # (N, 1, H, W)
        return self.phi(x)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """``psi``: embeddings ``(N, D)`` -> logits over pixels ``(N, H*W)``."""
        return self.psi(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``softmax(psi(z))``: embeddings ``(N, D)`` -> distributions ``(N, H*W)``."""
        return torch.softmax(self.psi(z), dim=1)


def embedding_loss(emb_i: torch.Tensor, emb_j: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``mean_k (||phi(x_i) - phi(x_j)||^2 - W_ij)^2``: ``(B, D), (B, D), (B,)`` -> scalar.

    Derived in notebooks/10_wasserstein_embeddings.ipynb.
    """
    if w.dim() != 1 or w.shape[0] != emb_i.shape[0]:
        raise ValueError(f"embedding_loss needs one W per pair: w has shape {tuple(w.shape)}, "
                         f"embeddings {tuple(emb_i.shape)}.")
    d2 = pair_distance(emb_i, emb_j, squared=True)  # (B,)
    return (d2 - w.to(d2.dtype)).pow(2).mean()


def reconstruction_kl(logits: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``KL(p || softmax(logits))`` averaged over the batch: ``(B, H*W), (B, H*W)`` -> scalar.

    ``sum_k p_k (log p_k - log q_k)`` with ``0 log 0 = 0``, so the decoder is punished for
    missing ink where ``p`` has some. Derived in notebooks/10_wasserstein_embeddings.ipynb.
    """
    if logits.shape != p.shape or logits.dim() != 2:
        raise ValueError(f"reconstruction_kl expects logits and p of the same (B, H*W) shape; got "
                         f"{tuple(logits.shape)} and {tuple(p.shape)}.")
    log_q = torch.log_softmax(logits, dim=1)  # (B, H*W)
    return F.kl_div(log_q, p.to(log_q.dtype), reduction="batchmean")


# --------------------------------------------------------------------- exercise self-checks
def _first_rule(got, rules, want, otherwise: str) -> str:
    """The message of the first ``(values, message)`` rule whose values match every answer in ``got``."""
    for values, message in rules:
        if all(np.isclose(g, v, rtol=1e-6, atol=1e-9) for g, v in zip(got, values)):
            return message
    return otherwise


def check_w2_two_pixels(fn: Callable) -> bool:
    """Self-check for the exercise "W between two-pixel images".

    ``fn(p1, p2, q1, q2)`` gets four pixels ``(row, column)``: image a has half its ink on p1 and half on p2,
    image b half on q1 and half on q2. It must return ``W_2^2(a, b)`` as a float, here compared with
    :func:`exact_w2` (``ot.emd2``). Prints what is wrong and returns False, or a tick and True.
    Derived in notebooks/10_wasserstein_embeddings.ipynb.
    """
    cases = [((0, 0), (0, 10), (0, 9), (0, 1)), ((5, 5), (9, 9), (5, 6), (9, 8)), ((2, 3), (20, 7), (20, 3), (2, 7)),
             ((14, 0), (14, 27), (0, 14), (27, 14)), ((1, 1), (1, 1), (4, 5), (8, 9))]
    imgs = np.zeros((2 * len(cases), 28, 28))
    for k, (p1, p2, q1, q2) in enumerate(cases):
        imgs[2 * k][p1] += 0.5
        imgs[2 * k][p2] += 0.5
        imgs[2 * k + 1][q1] += 0.5
        imgs[2 * k + 1][q2] += 0.5
    truth = exact_w2(imgs, np.arange(2 * len(cases)).reshape(-1, 2), cache=False, progress=False)  # (5,)
    got = []
    for p1, p2, q1, q2 in cases:
        out, error = _run(lambda *px: float(fn(*px)), (p1, p2, q1, q2), "fn(p1, p2, q1, q2) with four (row, col) tuples")
        if error:
            return _report(False, error)
        got.append(out)
    if all(np.isclose(g, w, rtol=1e-9, atol=1e-9) for g, w in zip(got, truth)):
        return _report(True, f"W_2^2 matches ot.emd2 on all {len(cases)} pairs of two-pixel images.")
    sq = lambda p, q: (p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2  # noqa: E731 - squared pixel distance
    plans = np.array([[sq(p1, q1) + sq(p2, q2), sq(p1, q2) + sq(p2, q1)] for p1, p2, q1, q2 in cases])  # (5, 2)
    eu = np.array([[np.sqrt(sq(p1, q1)) + np.sqrt(sq(p2, q2)), np.sqrt(sq(p1, q2)) + np.sqrt(sq(p2, q1))]
                   for p1, p2, q1, q2 in cases])
    centre = [sq(((p1[0] + p2[0]) / 2, (p1[1] + p2[1]) / 2), ((q1[0] + q2[0]) / 2, (q1[1] + q2[1]) / 2))
              for p1, p2, q1, q2 in cases]
    k = next(i for i, (g, w) in enumerate(zip(got, truth)) if not np.isclose(g, w, rtol=1e-9, atol=1e-9))
    hint = _first_rule(got, [
        (plans[:, 0] / 2, "you always send p1 to q1 and p2 to q2; the optimal plan may cross (p1 to q2): take the "
                          "cheaper of the two matchings"),
        (plans.min(1), "twice the right value: each pixel carries HALF the ink, so each cost counts with weight 1/2"),
        (plans.max(1) / 2, "you took the COSTLIER of the two matchings; W is the minimum over plans"),
        (plans.mean(1) / 2, "you averaged the two matchings; W is the minimum over plans, so take the cheaper one"),
        (plans.sum(1) / 4, "you sent 1/4 of the ink from each pixel to each pixel: a valid plan, not the optimal one"),
        (eu.min(1) / 2, "you used the distance |p - q|; the ground cost is its SQUARE, |p - q|^2 (that gives W_1)"),
        (centre, "that is the squared distance between the centres of ink, a lower bound (exercise 2), "
                 "not W itself"),
    ], truth, f"for pixels {cases[k]} W_2^2 = {truth[k]:g}, your formula gives {got[k]:g}")
    return _report(False, hint + ".")


def check_ink_centre_gap(fn: Callable) -> bool:
    """Self-check for the exercise "the centre of ink bounds W".

    ``fn(a, b)`` gets two batches of distributions ``(N, 784)`` (28 x 28 images, rows sum to 1) and must return
    the ``(N,)`` squared distances between their centres of ink, ``||sum_k a_k pos_k - sum_k b_k pos_k||^2`` with
    ``pos`` the pixel positions of :func:`grid_positions`. Prints what is wrong and returns False, or a tick and True.
    Derived in notebooks/10_wasserstein_embeddings.ipynb.
    """
    g = torch.Generator().manual_seed(10)
    ink = torch.rand(2, 6, 784, generator=g, dtype=torch.float64) * (torch.rand(2, 6, 784, generator=g) > 0.9)
    a, b = ink / ink.sum(dim=2, keepdim=True)  # (6, 784) each
    out, error = _run(fn, (a.clone(), b.clone()), "fn(a, b) with a, b (6, 784) float64 distributions")
    if error:
        return _report(False, error)
    got = torch.as_tensor(out).detach().to(torch.float64)
    pos = grid_positions(28, 28)  # (784, 2)
    centre = lambda p, at=pos: p @ at  # noqa: E731 - (N, 784) -> (N, 2), ink-weighted mean position
    diff = centre(a) - centre(b)  # (6, 2)
    want = (diff ** 2).sum(dim=1)  # (6,)
    if got.shape != want.shape:
        return _report(False, f"expected one value per pair, shape (6,); got shape {tuple(got.shape)}. "
                              "Sum over the two coordinates only, not over the batch.")
    if torch.allclose(got, want, rtol=1e-6):
        return _report(True, "centres of ink and their squared distance are right on all 6 pairs.")
    flat = torch.arange(784, dtype=torch.float64)[:, None]  # (784, 1) the flat index as a "position"
    unweighted = lambda p: ((p > 0).double() @ pos) / (p > 0).sum(dim=1, keepdim=True)  # noqa: E731
    rules = [
        (diff.norm(dim=1), "that is the distance between the centres; the bound is its SQUARE"),
        (diff.sum(dim=1) ** 2, "you squared the sum of the row and column differences; square each, then add"),
        ((centre(a, flat) - centre(b, flat))[:, 0] ** 2, "you used the flat pixel index k as the position; a pixel "
         "sits at (row, column) = divmod(k, 28): use sl.wasserstein.grid_positions()"),
        (((unweighted(a) - unweighted(b)) ** 2).sum(dim=1), "you averaged the positions of the ink pixels without "
         "their ink: weight each position by a_k"),
    ]
    for values, message in rules:
        if torch.allclose(got, values, rtol=1e-6):
            return _report(False, message + ".")
    return _report(False, f"for pair 0 the centre gap is {float(want[0]):.4f}, your function gives {float(got[0]):.4f}: "
                          "centre = sum_k a_k pos_k, then the squared Euclidean distance of the two centres.")


def check_sinkhorn(fn: Callable) -> bool:
    """Self-check for the exercise "Sinkhorn from scratch".

    ``fn(a, b, C, eps)`` gets two distributions ``a`` (n,), ``b`` (m,) and a cost ``C`` (n, m), all float64,
    and must return the transport cost ``<T, C>`` of the entropic plan ``T = diag(u) K diag(v)``,
    ``K = exp(-C / eps)``: the value ``ot.sinkhorn2`` returns. Prints what is wrong and returns False, or a
    tick and True. Derived in notebooks/10_wasserstein_embeddings.ipynb.
    """
    import ot

    g = torch.Generator().manual_seed(11)
    pos = grid_positions(8, 8).numpy()  # (64, 2): an 8 x 8 grid keeps exp(-C / eps) far from underflow
    cases = []
    for n, m, eps in ((5, 7, 1.0), (12, 9, 4.0), (20, 15, 2.0)):
        on_a = torch.randperm(64, generator=g)[:n].numpy()
        on_b = torch.randperm(64, generator=g)[:m].numpy()
        a = torch.rand(n, generator=g, dtype=torch.float64).numpy() + 0.2
        b = torch.rand(m, generator=g, dtype=torch.float64).numpy() + 0.2
        cases.append((a / a.sum(), b / b.sum(), ot.dist(pos[on_a], pos[on_b], metric="sqeuclidean"), eps))
    got, want = [], []
    for a, b, C, eps in cases:
        args = tuple(torch.as_tensor(x) for x in (a, b, C)) + (eps,)
        out, error = _run(lambda *x: float(fn(*x)), args, "fn(a, b, C, eps) with a (n,), b (m,), C (n, m) float64 "
                                                          "tensors; n != m, so v = b / (K.T @ u)")
        if error:
            return _report(False, error)
        got.append(out)
        want.append(float(ot.sinkhorn2(a, b, C, eps, numItermax=100_000, stopThr=1e-13)))
    if all(np.isclose(x, w, rtol=1e-5) for x, w in zip(got, want)):
        return _report(True, f"your Sinkhorn cost matches ot.sinkhorn2 on all {len(cases)} problems "
                             f"(eps = {', '.join(str(c[3]) for c in cases)}).")
    if not all(np.isfinite(got)):
        return _report(False, "your cost is not finite: K = exp(-C / eps) has a MINUS (exp(+C / eps) overflows).")

    def plan(a, b, C, eps, n_iter=100_000, sign=-1.0):
        K = np.exp(sign * C / eps)
        v = np.ones_like(b)
        for _ in range(n_iter):
            u = a / (K @ v)
            v = b / (K.T @ u)
        return u[:, None] * K * v[None, :]  # (n, m)

    each = lambda f: [f(*c) for c in cases]  # noqa: E731 - one value per problem
    H = lambda T: -(T * np.log(T)).sum()  # noqa: E731 - the entropy of a plan
    rules = [
        (each(lambda a, b, C, eps: ot.emd2(a, b, C)), "that is the exact W (ot.emd2); the entropic plan is "
         "blurred, so its cost is higher by the bias shown in section 1"),
        (each(lambda a, b, C, eps: plan(a, b, C, eps, 2000).sum()), "you return the total mass of T (1): return the "
         "transport cost sum_kl T_kl C_kl"),
        (each(lambda a, b, C, eps: (plan(a, b, C, eps, 2000) * C).sum() - eps * H(plan(a, b, C, eps, 2000))),
         "you subtracted eps * H(T): return the transport cost <T, C> alone, as ot.sinkhorn2 does"),
        (each(lambda a, b, C, eps: (plan(a, b, C, eps, 2000, sign=1.0) * C).sum()), "K = exp(-C / eps) has a MINUS: "
         "exp(+C / eps) favours the most expensive moves"),
        (each(lambda a, b, C, eps: (plan(a, b, C * eps * eps, eps, 2000) * C).sum()), "K = exp(-C / eps): divide "
         "the cost by eps, do not multiply"),
        *[(each(lambda a, b, C, eps: (plan(a, b, C, eps, k) * C).sum()), f"you stopped after {k} iteration(s): "
           "alternate u = a / (K v) and v = b / (K^T u) until the row sums of T equal a (hundreds of iterations)")
          for k in (1, 2, 3, 5, 10)],
    ]
    k = next(i for i, (x, w) in enumerate(zip(got, want)) if not np.isclose(x, w, rtol=1e-5))
    return _report(False, _first_rule(got, rules, want, f"on problem {k} (eps = {cases[k][3]}) ot.sinkhorn2 gives "
                                      f"{want[k]:.6f}, yours {got[k]:.6f}: T = diag(u) K diag(v), cost = sum T * C")
                   + ".")

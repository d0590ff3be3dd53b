"""Self-supervised contrastive learning without labels: two augmented views of each image (SimCLR, Chen et al.
2020), MoCo's momentum (EMA) key encoder and its FIFO queue of keys (He et al. 2020), and the self-checks of the
lesson's exercises. Reused by bench/selfsup.py. Derived in notebooks/07_contrastive_temperature.ipynb.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from .check import _report, _run  # the same report and "your function raised" message as every self-check
from .data.augment import random_affine

__all__ = ["two_views", "momentum_update", "KeyQueue", "check_negative_grad", "check_momentum_update",
           "check_uniformity"]


# --------------------------------------------------------------------- two views
def _erase(x: torch.Tensor, generator: torch.Generator | None, p: float, size: tuple[float, float]) -> torch.Tensor:
    """Random erasing: with probability ``p`` blank one square patch (side a ``size`` fraction of the image)."""
    b, _, h, w = x.shape
    side = (size[0] + (size[1] - size[0]) * torch.rand(b, generator=generator)) * h  # (B,) patch side, pixels
    top = torch.rand(b, generator=generator) * (h - side)  # (B,)
    left = torch.rand(b, generator=generator) * (w - side)  # (B,)
    on = torch.rand(b, generator=generator) < p  # (B,) which images lose a patch
    rows, cols = torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32)
    in_rows = (rows[None] >= top[:, None]) & (rows[None] < (top + side)[:, None])  # (B, H)
    in_cols = (cols[None] >= left[:, None]) & (cols[None] < (left + side)[:, None])  # (B, W)
    mask = (in_rows[:, :, None] & in_cols[:, None, :] & on[:, None, None])[:, None]  # (B, 1, H, W)
    return x.masked_fill(mask.to(x.device), 0.0)


def two_views(x: torch.Tensor, generator: torch.Generator | None = None, degrees: float = 15.0,
              scale: float = 0.25, shear: float = 0.15, translate: float = 0.12, erase_p: float = 0.5,
              erase_size: tuple[float, float] = (0.2, 0.4)) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent random views ``(B, 1, H, W)`` each of float images ``x``: a random affine map whose zoom
    (``scale``) plays the part of SimCLR's random resized crop, then random erasing of one square patch with
    probability ``erase_p``. No colour jitter: MNIST has no colour. Derived in notebooks/07_contrastive_temperature.ipynb.
    """
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"two_views expects float images (B, C, H, W) in [0, 1]; got {tuple(x.shape)} {x.dtype}. "
                         "Use sl.data.to_float(images) first.")
    if not 0.0 <= erase_p <= 1.0 or not 0.0 < erase_size[0] <= erase_size[1] < 1.0:
        raise ValueError(f"two_views: erase_p must lie in [0, 1] and erase_size be (lo, hi) with 0 < lo <= hi < 1; "
                         f"got erase_p={erase_p}, erase_size={erase_size}.")

    def view():
        v = random_affine(x, generator, degrees=degrees, scale=scale, shear=shear, translate=translate)
        return _erase(v, generator, erase_p, erase_size) if erase_p > 0 else v
    return view(), view()


# --------------------------------------------------------------------- MoCo's key encoder and queue
@torch.no_grad()
def momentum_update(key_encoder: nn.Module, query_encoder: nn.Module, momentum: float) -> None:
    """MoCo's key encoder update, in place: ``θ_k ← m θ_k + (1 − m) θ_q`` for every parameter; buffers (batch-norm
    statistics) are copied from the query encoder. ``momentum = 0`` makes the key encoder a copy of the query
    encoder. Derived in notebooks/07_contrastive_temperature.ipynb."""
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum_update: momentum must lie in [0, 1] (MoCo uses 0.99 to 0.999); got {momentum}.")
    q_params, k_params = dict(query_encoder.named_parameters()), dict(key_encoder.named_parameters())
    if q_params.keys() != k_params.keys():
        raise ValueError("momentum_update: the key and query encoders have different parameters; build the key "
                         "encoder as copy.deepcopy(query_encoder).")
    for name, theta_k in k_params.items():
        theta_k.mul_(momentum).add_(q_params[name].detach(), alpha=1.0 - momentum)
    q_buffers = dict(query_encoder.named_buffers())
    for name, buf in key_encoder.named_buffers():
        buf.copy_(q_buffers[name])


class KeyQueue:
    """MoCo's FIFO queue of ``size`` keys ``(size, dim)``: :meth:`push` overwrites the oldest keys, :attr:`keys` holds
    the keys pushed so far (at most ``size``), detached. Derived in notebooks/07_contrastive_temperature.ipynb."""

    def __init__(self, size: int, dim: int):
        if not isinstance(size, int) or size < 1 or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"KeyQueue needs a positive int size and dim; got size={size!r}, dim={dim!r}.")
        self.size, self.dim = size, dim
        self._buf = torch.zeros(size, dim)  # (K, E)
        self._ptr, self._filled = 0, 0

    @property
    def keys(self) -> torch.Tensor:
        """The stored keys ``(min(pushed, size), dim)``; empty ``(0, dim)`` before the first push."""
        return self._buf[: self._filled]

    def __len__(self) -> int:
        return self._filled

    def newest(self, n: int) -> torch.Tensor:
        """The ``n`` most recently pushed keys ``(n, dim)``, oldest first (``n <= len(self)``)."""
        if not isinstance(n, int) or not 1 <= n <= self._filled:
            raise ValueError(f"KeyQueue.newest: n must be an int in 1..{self._filled} (the keys held); got {n!r}.")
        return self._buf[(self._ptr - n + torch.arange(n, device=self._buf.device)) % self.size]  # (n, E)

    @torch.no_grad()
    def push(self, keys: torch.Tensor) -> None:
        """Enqueue a batch of keys ``(B, dim)`` with ``B <= size``, dropping the oldest (first in, first out)."""
        if keys.dim() != 2 or keys.shape[1] != self.dim or not 1 <= len(keys) <= self.size:
            raise ValueError(f"KeyQueue.push expects keys (B, {self.dim}) with 1 <= B <= {self.size}; "
                             f"got {tuple(keys.shape)}. Use a queue at least as large as the batch.")
        if self._buf.device != keys.device or self._buf.dtype != keys.dtype:
            self._buf = self._buf.to(keys.device, keys.dtype)
        idx = (self._ptr + torch.arange(len(keys), device=keys.device)) % self.size  # (B,) ring positions
        self._buf[idx] = keys.detach()
        self._ptr = (self._ptr + len(keys)) % self.size
        self._filled = min(self.size, self._filled + len(keys))


# --------------------------------------------------------------------- exercise self-checks
def _reference_negative_grad(s_pos: torch.Tensor, s_neg: torch.Tensor, tau: float) -> torch.Tensor:
    s_neg = s_neg.clone().requires_grad_(True)
    logits = torch.cat([s_pos.reshape(1), s_neg]) / tau  # (1 + M,)
    (-torch.log_softmax(logits, dim=0)[0]).backward()
    return s_neg.grad


def check_negative_grad(fn: Callable) -> bool:
    """Self-check for the exercise "each negative's gradient": ``fn(s_pos, s_neg, tau)`` with ``s_pos`` a 0-dim
    similarity and ``s_neg`` ``(M,)`` must return ``∂ℓ/∂s_neg`` ``(M,)`` for ``ℓ = −log softmax(s/τ)_pos``.
    Prints what is wrong and returns False. Derived in notebooks/07_contrastive_temperature.ipynb."""
    g = torch.Generator().manual_seed(7)
    s_neg = torch.rand(12, generator=g, dtype=torch.float64) * 1.6 - 0.8  # (12,) cosines in [-0.8, 0.8]
    s_pos, tau = torch.tensor(0.6, dtype=torch.float64), 0.2
    out, error = _run(fn, (s_pos, s_neg, tau), "fn(s_pos, s_neg, tau) with s_pos a 0-dim tensor and s_neg (12,)")
    if error:
        return _report(False, error)
    if not torch.is_tensor(out) or tuple(out.shape) != (12,):
        shape = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
        return _report(False, f"expected one gradient per negative, shape (12,); got {shape}.")
    out = out.detach().to(torch.float64)
    want = _reference_negative_grad(s_pos, s_neg, tau)
    if torch.allclose(out, want, rtol=1e-5, atol=1e-8):
        return _report(True, "∂ℓ/∂s_n = softmax(s/τ)_n / τ: each negative is pushed in proportion to e^{s_n/τ}.")
    p = torch.softmax(torch.cat([s_pos.reshape(1), s_neg]) / tau, dim=0)[1:]  # (12,)
    mistakes = [
        (p, "these are the softmax weights p_n; the gradient of ℓ with respect to s_n carries the factor 1/τ "
            "(the logits are s/τ): return p_n / τ."),
        (-p / tau, "wrong sign: raising a negative's similarity RAISES the loss, so ∂ℓ/∂s_n > 0."),
        (torch.softmax(s_neg / tau, dim=0) / tau, "you normalised over the negatives only: the denominator of the "
                                                  "softmax also holds the positive, e^{s_p/τ}."),
        (torch.softmax(torch.cat([s_pos.reshape(1), s_neg]), dim=0)[1:] / tau,
         "the softmax must see s/τ, not s: the temperature sharpens the weights."),
        (torch.softmax(torch.cat([s_pos.reshape(1), s_neg]) * tau, dim=0)[1:] / tau, "divide by τ, do not multiply."),
    ]
    for value, msg in mistakes:
        if torch.allclose(out, value, rtol=1e-5, atol=1e-8):
            return _report(False, msg)
    return _report(False, f"the gradient differs from autograd's (first values {out[:3].tolist()} against "
                          f"{want[:3].tolist()}). ∂ℓ/∂s_n = softmax(s/τ)_n / τ, the softmax over the positive and "
                          "all negatives.")


def check_momentum_update(fn: Callable) -> bool:
    """Self-check for the exercise "MoCo's momentum update": ``fn(key_encoder, query_encoder, m)`` must set every key
    parameter to ``m θ_k + (1 − m) θ_q`` in place and leave the query encoder alone, at m = 0.9 and m = 0.5 (so a
    hard-coded m fails); calling :func:`momentum_update` itself is not an answer. Prints what is wrong and returns
    False. Derived in notebooks/07_contrastive_temperature.ipynb."""
    global momentum_update
    reference = momentum_update

    def blocked(*args, **kwargs):
        raise RuntimeError("write the update yourself: sl.selfsup.momentum_update is the reference it is compared with")
    if fn is reference:
        return _report(False, "write the update yourself: sl.selfsup.momentum_update is the reference it is compared with.")
    for m in (0.9, 0.5):
        torch.manual_seed(0)
        key, query = nn.Linear(3, 2).double(), nn.Linear(3, 2).double()
        k0 = [p.detach().clone() for p in key.parameters()]
        q0 = [p.detach().clone() for p in query.parameters()]
        momentum_update = blocked
        try:
            _, error = _run(fn, (key, query, m), f"fn(key_encoder, query_encoder, {m}) with two nn.Linear(3, 2)")
        finally:
            momentum_update = reference
        if error:
            return _report(False, error)
        k1, q1 = [p.detach() for p in key.parameters()], [p.detach() for p in query.parameters()]
        want = [m * a + (1 - m) * b for a, b in zip(k0, q0)]
        if not all(torch.equal(a, b) for a, b in zip(q1, q0)):
            return _report(False, "the query encoder changed: only the key encoder is updated (the query encoder is "
                                  "trained by the optimiser).")
        if all(torch.allclose(a, b) for a, b in zip(k1, want)):
            continue
        if all(torch.equal(a, b) for a, b in zip(k1, k0)):
            return _report(False, "the key encoder did not change: update its parameters in place (p_k.mul_(m)."
                                  "add_(p_q, alpha=1 - m) under torch.no_grad()), not a new tensor bound to a local name.")
        if all(torch.allclose(a, (1 - m) * x + m * y) for a, x, y in zip(k1, k0, q0)):
            return _report(False, "m and 1 − m are swapped: with m = 0.99 the key encoder must keep 99 % of ITSELF.")
        if all(torch.allclose(a, b) for a, b in zip(k1, q0)):
            return _report(False, "the key encoder became a copy of the query encoder (that is m = 0); keep m θ_k.")
        return _report(False, f"the key parameters are not m θ_k + (1 − m) θ_q for m = {m} (is m hard-coded?).")
    return _report(True, "θ_k ← m θ_k + (1 − m) θ_q, in place: the key encoder trails the query encoder slowly.")


def _reference_uniformity(z: torch.Tensor, t: float) -> torch.Tensor:
    sq = torch.cdist(z, z).pow(2)  # (N, N)
    i, j = torch.triu_indices(len(z), len(z), offset=1)
    return torch.log(torch.exp(-t * sq[i, j]).mean())


def check_uniformity(fn: Callable) -> bool:
    """Self-check for the exercise "Wang & Isola's uniformity": ``fn(z, t)`` with unit rows ``z`` ``(N, E)`` must return
    ``log mean_{i<j} exp(−t ‖z_i − z_j‖²)`` as a 0-dim tensor. Prints what is wrong and returns False.
    Derived in notebooks/07_contrastive_temperature.ipynb."""
    g = torch.Generator().manual_seed(11)
    z = torch.nn.functional.normalize(torch.randn(20, 3, generator=g, dtype=torch.float64), dim=1)  # (20, 3)
    t = 2.0
    out, error = _run(fn, (z, t), "fn(z, t) with z (20, 3) unit rows and t = 2.0")
    if error:
        return _report(False, error)
    if not torch.is_tensor(out) or out.dim() != 0:
        shape = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
        return _report(False, f"return one number, a 0-dim tensor (the log of a mean over pairs); got {shape}.")
    out = out.detach().to(torch.float64)
    want = _reference_uniformity(z, t)
    if torch.allclose(out, want, rtol=1e-6, atol=1e-9):
        return _report(True, "uniformity = log mean over pairs i < j of e^{−t‖z_i − z_j‖²}: lower is more uniform.")
    sq = torch.cdist(z, z).pow(2)
    i, j = torch.triu_indices(len(z), len(z), offset=1)
    mistakes = [
        (torch.log(torch.exp(-t * sq).mean()), "your mean includes the pairs i = i (distance 0, e^0 = 1): "
                                               "average over pairs i < j only."),
        (torch.exp(-t * sq[i, j]).mean(), "the log is missing: uniformity is the LOG of the mean."),
        (torch.log(torch.exp(-t * sq[i, j].sqrt()).mean()), "use the SQUARED distance ‖z_i − z_j‖², a Gaussian kernel."),
        (torch.log(torch.exp(t * sq[i, j]).mean()), "the exponent is −t‖z_i − z_j‖²: a minus sign is missing."),
        (torch.exp(-t * sq[i, j]).log().mean(), "the log goes OUTSIDE the mean (log of the mean, not mean of logs)."),
    ]
    for value, msg in mistakes:
        if math.isclose(float(out), float(value), rel_tol=1e-6, abs_tol=1e-9):
            return _report(False, msg)
    return _report(False, f"expected {float(want):.5f}, got {float(out):.5f}: "
                          "log mean_{i<j} exp(−t ‖z_i − z_j‖²).")

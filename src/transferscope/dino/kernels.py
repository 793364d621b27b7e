"""Analytic infinite-width kernels of a fully connected ReLU network (NTK parameterisation).

The network is ``Dense(w, W_std, b_std) -> ReLU`` repeated ``depth`` times, then
``Dense(1, W_std, b_std)``; a dense layer computes ``W_std / sqrt(fan_in) * W h + b_std * b``
with standard normal ``W, b`` (the parameterisation neural-tangents uses by default).
Both kernels follow the arc-cosine recursion (Cho & Saul 2009; Jacot et al. 2018):

* dense:  ``nngp <- W_std^2 nngp + b_std^2``,  ``ntk <- nngp_new + W_std^2 ntk``
* ReLU:   ``nngp <- sqrt(q1 q2) / (2 pi) (sin t + (pi - t) cos t)``,
          ``ntk <- ntk (pi - t) / (2 pi)``, with ``cos t = nngp / sqrt(q1 q2)``

starting from ``nngp = x . x' / d`` and ``ntk = 0``. The NNGP kernel is the prior of the network
at initialisation (only the read-out learns); the NTK is the kernel of the fully trained network.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from transferscope.core.errors import input_error

KernelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _as_float64(x: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(x).to(torch.float64)


def _angle(cross: torch.Tensor, q1: torch.Tensor, q2: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The angle between two pre-activations, computed with atan2 so that it is exact near 0."""
    norm = torch.sqrt(q1.unsqueeze(-1) * q2.unsqueeze(-2))
    safe_norm = torch.where(norm > 0, norm, torch.ones_like(norm))
    cos = torch.clamp(cross / safe_norm, -1.0, 1.0)
    sin_sq = 1.0 - cos * cos
    positive = sin_sq > 1e-30  # the double ``where`` keeps gradients finite at angle 0 and pi
    sin = torch.where(positive, torch.sqrt(torch.where(positive, sin_sq, 1.0)), 0.0)
    theta = torch.atan2(sin, cos)
    return norm, cos, sin, theta


def _relu_step(
    nngp: torch.Tensor, ntk: torch.Tensor, q1: torch.Tensor, q2: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """One ReLU layer on the cross-covariance, the NTK and both variances."""
    norm, cos, sin, theta = _angle(nngp, q1, q2)
    new_nngp = norm / (2 * math.pi) * (sin + (math.pi - theta) * cos)
    new_ntk = ntk * (math.pi - theta) / (2 * math.pi)
    return new_nngp, new_ntk, q1 / 2, q2 / 2


def _recursion(
    x1: torch.Tensor, x2: torch.Tensor, depth: int, w_std: float, b_std: float
) -> tuple[torch.Tensor, torch.Tensor]:
    if depth < 0:
        raise input_error("NNGP/NTK kernel", "depth", depth, "an integer >= 0")
    x1, x2 = _as_float64(x1), _as_float64(x2)
    if x1.shape[-1] != x2.shape[-1]:
        raise input_error("NNGP/NTK kernel", "X2 feature count", x2.shape[-1],
                          f"{x1.shape[-1]} features, like X1")
    dim = x1.shape[-1]
    w2, b2 = float(w_std) ** 2, float(b_std) ** 2
    nngp = x1 @ x2.transpose(-1, -2) / dim
    q1 = (x1 * x1).sum(-1) / dim
    q2 = (x2 * x2).sum(-1) / dim
    ntk = torch.zeros_like(nngp)
    for _ in range(depth):
        nngp = w2 * nngp + b2
        ntk = nngp + w2 * ntk
        q1, q2 = w2 * q1 + b2, w2 * q2 + b2
        nngp, ntk, q1, q2 = _relu_step(nngp, ntk, q1, q2)
    nngp = w2 * nngp + b2
    ntk = nngp + w2 * ntk
    return nngp, ntk


def nngp_kernel(
    X1: torch.Tensor, X2: torch.Tensor, depth: int = 2, w_std: float = 1.0, b_std: float = 0.1
) -> torch.Tensor:
    """NNGP kernel ``K(X1, X2)`` (float64, leading batch dimensions allowed)."""
    return _recursion(X1, X2, depth, w_std, b_std)[0]


def ntk_kernel(
    X1: torch.Tensor, X2: torch.Tensor, depth: int = 2, w_std: float = 1.0, b_std: float = 0.1
) -> torch.Tensor:
    """Neural tangent kernel ``K(X1, X2)`` (float64, leading batch dimensions allowed)."""
    return _recursion(X1, X2, depth, w_std, b_std)[1]


def kernel_diag(
    X: torch.Tensor, name: str, depth: int = 2, w_std: float = 1.0, b_std: float = 0.1
) -> torch.Tensor:
    """``diag K(X, X)`` in O(n): on the diagonal the angle is 0 at every layer."""
    x = _as_float64(X)
    w2, b2 = float(w_std) ** 2, float(b_std) ** 2
    q = (x * x).sum(-1) / x.shape[-1]
    ntk = torch.zeros_like(q)
    for _ in range(depth):
        q = w2 * q + b2
        ntk = q + w2 * ntk
        q, ntk = q / 2, ntk / 2
    q = w2 * q + b2
    ntk = q + w2 * ntk
    return q if name == "nngp" else ntk


def base_kernel(name: str, depth: int, w_std: float, b_std: float) -> KernelFn:
    """The base kernel ``k(X1, X2)`` by name: ``"nngp"`` (DINO-INIT) or ``"ntk"`` (DINO-TRAIN)."""
    if name == "nngp":
        return lambda a, b: nngp_kernel(a, b, depth, w_std, b_std)
    if name == "ntk":
        return lambda a, b: ntk_kernel(a, b, depth, w_std, b_std)
    raise input_error("base_kernel", "name", name, "'nngp' or 'ntk'")

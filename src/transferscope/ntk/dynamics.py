"""Kernel gradient descent in closed form, and the linearised model it describes.

Linearised full-batch gradient descent on ``mean((f - y)^2) / 2`` with step ``eta`` moves the
fitted values as ``f_{t+1}(X) = f_t(X) - eta K_n (f_t(X) - y)`` with ``K_n = K / n``. With
``K_n = U diag(lambda) U^T`` every step count has a closed form: the parameters move by
``J^T c_t`` where the dual coefficients are

    c_t = (1/n) U diag(g_t(lambda)) U^T r,   g_t(lambda) = (1 - (1 - eta lambda)^t) / lambda

(``g_t(0) = eta t``), so any point x, seen or not, moves by ``K(x, X) c_t``. On the training
points this gives ``f_t - f_0 = U diag(1 - (1 - eta lambda)^t) U^T r``.

``linearized_outputs`` evaluates the first-order Taylor model ``f_0 + J delta`` of a real
network with ``torch.func.jvp``; it is what the closed form describes, and what task-vector
arithmetic is exact for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch

from transferscope.core.errors import input_error


@dataclass(kw_only=True, frozen=True)
class KernelGD:
    """Closed-form kernel gradient descent from ``f_0`` towards ``y`` with step ``eta``.

    ``kernel``: the n x n training kernel K (not divided by n); ``residual``: ``y - f_0``.
    """

    eigenvalues: np.ndarray  # of K_n, clipped at 0, ascending
    eigenvectors: np.ndarray
    residual_coords: np.ndarray  # U^T r
    step_size: float

    @property
    def n(self) -> int:
        return int(self.eigenvalues.size)

    def gain(self, steps: Sequence[int] | np.ndarray) -> np.ndarray:
        """``g_t(lambda_i)`` for every step count (rows) and eigenvalue (columns)."""
        t = np.asarray(steps, dtype=np.float64)[:, None]
        lam = self.eigenvalues[None, :]
        safe = np.where(lam > 0, lam, 1.0)
        return np.where(lam > 0, _one_minus_power(self.step_size * lam, t) / safe,
                        self.step_size * t)

    def dual_coefficients(self, steps: Sequence[int] | np.ndarray) -> np.ndarray:
        """``c_t`` for every step count: shape (len(steps), n)."""
        scaled = self.gain(steps) * self.residual_coords[None, :]
        return scaled @ self.eigenvectors.T / self.n

    def train_change(self, steps: Sequence[int] | np.ndarray) -> np.ndarray:
        """``f_t(X) - f_0(X)`` on the training points: shape (len(steps), n)."""
        t = np.asarray(steps, dtype=np.float64)[:, None]
        shrink = _one_minus_power(self.step_size * self.eigenvalues[None, :], t)
        return (shrink * self.residual_coords[None, :]) @ self.eigenvectors.T

    def change_at(self, cross_kernel: np.ndarray, steps: Sequence[int] | np.ndarray
                  ) -> np.ndarray:
        """``f_t(x) - f_0(x)`` at new points, from ``K(x, X)`` (m x n): shape (len(steps), m)."""
        cross = np.asarray(cross_kernel, dtype=np.float64)
        if cross.ndim != 2 or cross.shape[1] != self.n:
            raise input_error("kernel gradient descent", "cross kernel shape", cross.shape,
                              f"(m, {self.n}) rows of new points against the training points")
        return self.dual_coefficients(steps) @ cross.T


def _one_minus_power(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``1 - (1 - x)^t`` for integer t, accurate for small x (log1p/expm1) and valid for x >= 1."""
    inside = np.minimum(x, 0.5)
    small = -np.expm1(t * np.log1p(-inside))
    return np.where(x < 0.5, small, 1.0 - np.power(1.0 - x, t))


def kernel_gd(kernel: np.ndarray, residual: np.ndarray, step_size: float, *,
              eig: tuple[np.ndarray, np.ndarray] | None = None) -> KernelGD:
    """Diagonalise ``K_n`` once; every later step count is a matrix product. ``eig``: the
    kernel's :func:`~transferscope.ntk.stopping.eig_kn`, when the caller has it already."""
    k = np.asarray(kernel, dtype=np.float64)
    r = np.asarray(residual, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or r.shape != (k.shape[0],):
        raise input_error("kernel gradient descent", "shapes", (k.shape, r.shape),
                          "a square n x n kernel and n residuals")
    if eig is None:
        evals, evecs = np.linalg.eigh(0.5 * (k + k.T) / k.shape[0])
        evals = np.clip(evals, 0.0, None)
    else:
        evals, evecs = eig
    if not (np.isfinite(step_size) and 0 < step_size <= 2.0 / max(evals.max(), 1e-300)):
        raise input_error("kernel gradient descent", "step_size", step_size,
                          f"in (0, 2 / lambda_max(K/n)] = (0, {2.0 / evals.max():.4g}]")
    return KernelGD(eigenvalues=evals, eigenvectors=evecs, residual_coords=evecs.T @ r,
                    step_size=float(step_size))


def split_kernel(joint: np.ndarray, n_train: int) -> tuple[np.ndarray, np.ndarray]:
    """(train x train, test x train) blocks of a kernel over ``train + test`` points."""
    joint = np.asarray(joint, dtype=np.float64)
    return joint[:n_train, :n_train], joint[n_train:, :n_train]


# ---------------------------------------------------------------------------- real network
ParamDict = dict[str, torch.Tensor]


def linearized_outputs(model: torch.nn.Module, forward: Callable[[torch.nn.Module], torch.Tensor],
                       delta: ParamDict) -> tuple[torch.Tensor, torch.Tensor]:
    """``(f(theta_0), J delta)`` by one forward-mode pass: the first-order Taylor model is their sum.

    ``forward(model)`` computes the outputs of interest; ``delta`` maps parameter names (of
    ``model.named_parameters()``) to displacements of the same shape, all others held fixed
    (a tied parameter must not be displaced under one of its names only).
    """
    named = dict(model.named_parameters())
    unknown = sorted(set(delta) - set(named))
    if unknown:
        raise input_error("linearized_outputs", "parameter", unknown[0], "a parameter of the model")
    names = list(delta)
    primals = tuple(named[k].detach() for k in names)
    tangents = tuple(delta[k].to(named[k].dtype) for k in names)

    def outputs(*values: torch.Tensor) -> torch.Tensor:
        with _swapped(model, dict(zip(names, values, strict=True))):
            return forward(model)

    with _eager_attention(model):
        return cast(tuple[torch.Tensor, torch.Tensor], torch.func.jvp(outputs, primals, tangents))


class _eager_attention:
    """Plain-matmul attention while in use: PyTorch's fused CPU attention has no forward-mode
    derivative. Eager attention turns fully masked (padding) rows into NaN, so evaluate
    unpadded inputs (one prompt at a time) under it."""

    def __init__(self, model: torch.nn.Module):
        self.owner: Any = next((m for m in model.modules()
                           if hasattr(m, "set_attn_implementation") and hasattr(m, "config")),
                          None)
        self.previous: Any = None

    def __enter__(self):
        if self.owner is not None:
            self.previous = self.owner.config._attn_implementation
            self.owner.set_attn_implementation("eager")
        return self

    def __exit__(self, *exc):
        if self.owner is not None and self.previous is not None:
            self.owner.set_attn_implementation(self.previous)
        return False


class _swapped:
    """Temporarily replace named parameters by given tensors (for functional evaluation)."""

    saved: dict[str, Any]

    def __init__(self, model: torch.nn.Module, values: ParamDict):
        self.model, self.values, self.saved = model, values, {}

    def __enter__(self):
        for name, value in self.values.items():
            module, attr = _owner(self.model, name)
            self.saved[name] = module._parameters[attr]
            del module._parameters[attr]
            setattr(module, attr, value)
        return self

    def __exit__(self, *exc):
        for name, param in self.saved.items():
            module, attr = _owner(self.model, name)
            delattr(module, attr)
            module._parameters[attr] = param
        return False


def _owner(model: torch.nn.Module, name: str) -> tuple[torch.nn.Module, str]:
    path, _, attr = name.rpartition(".")
    return (model.get_submodule(path) if path else model), attr

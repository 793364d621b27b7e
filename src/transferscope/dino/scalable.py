"""GP posterior beyond a few thousand training points: exact mean by preconditioned CG.

A Cholesky of the n x n training kernel costs O(n^3) time and two n x n copies of memory. Here:

* **Landmarks**: a pivoted Cholesky (LAPACK ``dpstrf``) of the kernel on a pool of training
  points picks, greedily, the point with the largest prior variance not yet explained by the
  points picked before; the first ``m`` pivots are the landmarks.
* **Preconditioner**: the Nystrom approximation ``K_nm K_mm^-1 K_mn + D`` (D the noise
  diagonal), inverted by Woodbury. Its inner m x m matrix ``I + V D^-1 V^T`` has eigenvalues
  >= 1, so it is factorised without jitter however close the landmarks are.
* **Mean**: conjugate gradients on the *exact* kernel, ``(K + D) w = y``, to a relative
  residual ``tol``; the kernel rows are produced in blocks (kept in memory up to a budget,
  recomputed at every product beyond it). The mean is exact up to ``tol``.
* **Variance**: the deterministic-training-conditional (DTC) variance of the same landmarks
  (Quinonero-Candela & Rasmussen 2005) -- an approximation; exact when every training point is
  a landmark.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.linalg.lapack import dpstrf

from transferscope.dino.gp import cholesky

RowBlock = Callable[[int, int], torch.Tensor]


def pivoted_cholesky(gram: torch.Tensor, rel_tol: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(R, pivots)`` with ``R R^T = gram`` up to a residual whose diagonal (hence every entry)
    is below ``rel_tol * max(diag)``; ``pivots`` are the chosen rows, most informative first."""
    sym = (0.5 * (gram + gram.transpose(0, 1))).detach().numpy()
    tol = float(rel_tol * sym.diagonal().max())
    factor, piv, rank, info = dpstrf(sym, tol=tol, lower=1)
    if info < 0:
        raise ValueError(f"dpstrf rejected argument {-info}")
    piv = piv.astype(np.int64) - 1
    lower = np.tril(factor)[:, :rank]
    R = np.empty_like(lower)
    R[piv] = lower
    return torch.from_numpy(R), torch.from_numpy(piv[:rank].copy())


def conjugate_gradients(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    precondition: Callable[[torch.Tensor], torch.Tensor],
    tol: float,
    max_iter: int,
) -> tuple[torch.Tensor, int, float]:
    """Solve ``A x = b`` (A symmetric positive definite, one solve per column of ``b``).

    Returns ``x``, the iterations used and the largest relative residual ``|b - A x| / |b|``.
    """
    b_norm = b.norm(dim=0).clamp_min(1e-300)
    x = torch.zeros_like(b)
    r = b.clone()
    z = precondition(r)
    p = z.clone()
    rz = (r * z).sum(0)
    residual = float((r.norm(dim=0) / b_norm).max())
    iterations = 0
    while residual > tol and iterations < max_iter:
        Ap = matvec(p)
        alpha = rz / (p * Ap).sum(0)
        x += alpha * p
        r -= alpha * Ap
        iterations += 1
        residual = float((r.norm(dim=0) / b_norm).max())
        z = precondition(r)
        rz_new = (r * z).sum(0)
        p = z + (rz_new / rz) * p
        rz = rz_new
    return x, iterations, residual


class BlockKernel:
    """The noiseless training kernel ``K`` as row blocks, cached while they fit ``cache_bytes``."""

    def __init__(self, rows: RowBlock, n: int, cache_bytes: float, block_entries: int = 2**24):
        self.rows, self.n = rows, n
        step = max(1, block_entries // n)
        self.bounds = [(start, min(start + step, n)) for start in range(0, n, step)]
        self.cached = [rows(s, e) for s, e in self.bounds] if 8.0 * n * n <= cache_bytes else None

    def blocks(self):
        """``(start, stop, K[start:stop])`` for every block, from the cache or freshly computed."""
        for i, (start, stop) in enumerate(self.bounds):
            yield start, stop, self.cached[i] if self.cached is not None else self.rows(start, stop)

    def matmul(self, v: torch.Tensor) -> torch.Tensor:
        """``K @ v``."""
        out = torch.empty_like(v)
        for start, stop, block in self.blocks():
            out[start:stop] = block @ v
        return out


class IterativePosterior:
    """GP posterior with a CG-exact mean and a DTC variance over landmarks (module docstring)."""

    def __init__(self, kernel: BlockKernel, K_nm: torch.Tensor, K_mm: torch.Tensor,
                 noise: torch.Tensor, y: torch.Tensor, tol: float = 1e-6, max_iter: int = 2000):
        self.Lm = cholesky(K_mm)
        V = torch.linalg.solve_triangular(self.Lm, K_nm.transpose(0, 1), upper=False)
        self._V_over_noise = V / noise.unsqueeze(0)
        inner = torch.eye(K_mm.shape[0], dtype=K_mm.dtype) + self._V_over_noise @ V.transpose(0, 1)
        self.LC = torch.linalg.cholesky(inner)
        self._noise = noise.unsqueeze(1)
        self.weights, self.iterations, self.residual = conjugate_gradients(
            lambda v: kernel.matmul(v) + self._noise * v, y, self._precondition, tol, max_iter)

    def _precondition(self, r: torch.Tensor) -> torch.Tensor:
        """``(V^T V + D)^-1 r`` by Woodbury."""
        inner = torch.cholesky_solve(self._V_over_noise @ r, self.LC)
        return r / self._noise - self._V_over_noise.transpose(0, 1) @ inner

    def predict(self, K_star: torch.Tensor, K_star_m: torch.Tensor,
                k_star_diag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (n* x p) from test x train ``K_star``; DTC latent variance from test x landmark."""
        W = torch.linalg.solve_triangular(self.Lm, K_star_m.transpose(0, 1), upper=False)
        U = torch.linalg.solve_triangular(self.LC, W, upper=False)
        var = k_star_diag - (W * W).sum(0) + (U * U).sum(0)
        return K_star @ self.weights, var.clamp_min(0.0)

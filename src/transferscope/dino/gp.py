"""Gaussian-process algebra on precomputed kernel blocks (torch, float64, multi-output).

Every output column shares one kernel, so the log-determinant counts once per output column.
Pure functions: kernels in, likelihoods and posteriors out.
"""

from __future__ import annotations

import math

import torch

JITTERS = (0.0, 1e-10, 1e-8, 1e-6, 1e-4)


def cholesky(K: torch.Tensor) -> torch.Tensor:
    """Cholesky factor, adding the smallest jitter (relative to the mean diagonal) that works."""
    scale = K.diagonal().abs().mean().clamp_min(1e-300)
    eye = torch.eye(K.shape[0], dtype=K.dtype)
    for jitter in JITTERS:
        L, info = torch.linalg.cholesky_ex(K + jitter * scale * eye)
        if int(info) == 0:
            return L
    raise torch.linalg.LinAlgError("kernel matrix is not positive definite even with jitter 1e-4")


def gaussian_nll(cov: torch.Tensor, resid: torch.Tensor) -> torch.Tensor:
    """``-log N(resid; 0, cov)`` summed over the columns of ``resid`` (n x p)."""
    L = cholesky(cov)
    z = torch.linalg.solve_triangular(L, resid, upper=False)
    n, p = resid.shape
    logdet = 2.0 * torch.log(L.diagonal()).sum()
    return 0.5 * (z * z).sum() + 0.5 * p * logdet + 0.5 * n * p * math.log(2 * math.pi)


def conditional_nll(
    K_ss: torch.Tensor, K_st: torch.Tensor, K_tt: torch.Tensor, y_s: torch.Tensor, y_t: torch.Tensor
) -> torch.Tensor:
    """``-log p(y_T | y_S)`` for a joint GP; ``K_ss`` and ``K_tt`` already carry their noise.

    ``mu = K_TS K_SS^-1 y_S`` and ``Sigma = K_TT - K_TS K_SS^-1 K_ST`` (the DINO training target).
    """
    L = cholesky(K_ss)
    A = torch.linalg.solve_triangular(L, K_st, upper=False)
    mu = A.transpose(0, 1) @ torch.linalg.solve_triangular(L, y_s, upper=False)
    sigma = K_tt - A.transpose(0, 1) @ A
    return gaussian_nll(0.5 * (sigma + sigma.transpose(0, 1)), y_t - mu)


class ExactPosterior:
    """GP posterior from noisy training covariance ``K_train``: factorise once, predict often."""

    def __init__(self, K_train: torch.Tensor, y: torch.Tensor):
        self.L = cholesky(K_train)
        self.weights = torch.cholesky_solve(y, self.L)

    def predict(
        self, K_star: torch.Tensor, k_star_diag: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean (n* x p) and latent variance (n*); ``K_star`` is test x train."""
        mean = K_star @ self.weights
        V = torch.linalg.solve_triangular(self.L, K_star.transpose(0, 1), upper=False)
        return mean, (k_star_diag - (V * V).sum(0)).clamp_min(0.0)


def loo_scores(K_train: torch.Tensor, y: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Leave-one-out ``|y_i - mu_-i| / sigma_-i`` of the training ``rows`` (one column per output):
    each row predicted by the GP given every other row, with the hyper-parameters fixed, in
    closed form (Rasmussen & Williams 2006, eq. 5.12: ``mu_-i = y_i - [K^-1 y]_i / [K^-1]_ii``,
    ``sigma_-i^2 = 1 / [K^-1]_ii``, the predictive variance of an observation)."""
    L = cholesky(K_train)
    K_inv = torch.cholesky_inverse(L)
    diag = K_inv.diagonal()[rows].unsqueeze(1)
    return ((K_inv @ y)[rows] / diag).abs() * diag.sqrt()

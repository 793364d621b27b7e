"""Maximum mean discrepancy between two samples in the RKHS of a kernel (e.g. the NTK)."""

from __future__ import annotations

import numpy as np
import torch

from transferscope.dino.kernels import KernelFn


def mmd_squared(X: torch.Tensor, Y: torch.Tensor, kernel: KernelFn, unbiased: bool = True) -> float:
    """``||mu_X - mu_Y||^2`` in the kernel's RKHS (Gretton et al. 2012; U-statistic by default)."""
    return _mmd_from_grams(kernel(X, X), kernel(Y, Y), kernel(X, Y), unbiased)


def _mmd_from_grams(K_xx, K_yy, K_xy, unbiased: bool) -> float:
    n, m = K_xx.shape[0], K_yy.shape[0]
    if unbiased:
        within_x = (K_xx.sum() - K_xx.diagonal().sum()) / (n * (n - 1))
        within_y = (K_yy.sum() - K_yy.diagonal().sum()) / (m * (m - 1))
    else:
        within_x, within_y = K_xx.mean(), K_yy.mean()
    return float(within_x + within_y - 2 * K_xy.mean())


def mmd_with_bootstrap(
    X: torch.Tensor, Y: torch.Tensor, kernel: KernelFn, n_boot: int = 200, max_points: int = 1000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Unbiased MMD^2 and a 95% bootstrap interval (resampling each domain's rows; at most
    ``max_points`` random rows per domain enter, so the Gram matrices stay small)."""
    rng = np.random.default_rng(seed)
    if len(X) > max_points:
        X = X[torch.from_numpy(rng.choice(len(X), max_points, replace=False))]
    if len(Y) > max_points:
        Y = Y[torch.from_numpy(rng.choice(len(Y), max_points, replace=False))]
    K_xx, K_yy, K_xy = kernel(X, X), kernel(Y, Y), kernel(X, Y)
    value = _mmd_from_grams(K_xx, K_yy, K_xy, True)
    draws = []
    for _ in range(n_boot):
        i = torch.from_numpy(rng.integers(0, len(X), len(X)))
        j = torch.from_numpy(rng.integers(0, len(Y), len(Y)))
        draws.append(_mmd_from_grams(K_xx[i][:, i], K_yy[j][:, j], K_xy[i][:, j], False))
    low, high = np.percentile(draws, [2.5, 97.5])
    return value, float(low), float(high)

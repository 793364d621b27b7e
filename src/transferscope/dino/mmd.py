"""Maximum mean discrepancy between two samples in the RKHS of a kernel (e.g. the NTK)."""

from __future__ import annotations

import numpy as np
import torch

from transferscope.core.stats import percentile_interval, stratified_bootstrap
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


def _distinct_mean(K: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Mean of ``K`` over pairs of resampled rows that are different original rows: the
    U-statistic's within-sample term on a bootstrap resample (pairs of copies of one row would
    add ``k(x, x)`` terms the point estimate leaves out, biasing every draw upwards)."""
    distinct = idx.unsqueeze(0) != idx.unsqueeze(1)
    return K[idx][:, idx][distinct].mean()


def mmd_with_bootstrap(
    X: torch.Tensor, Y: torch.Tensor, kernel: KernelFn, n_boot: int = 200, max_points: int = 1000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Unbiased MMD^2 and a 95% bootstrap interval of the same estimator (the two domains are
    the strata, each resampled on its own; at most ``max_points`` random rows per domain enter,
    so the Gram matrices stay small). Each draw is the U-statistic of the resampled rows (pairs
    of copies of one original row left out, see ``_distinct_mean``), so point and interval come
    from one estimator and a zero discrepancy gives an interval around zero."""
    rng = np.random.default_rng(seed)
    if len(X) > max_points:
        X = X[torch.from_numpy(rng.choice(len(X), max_points, replace=False))]
    if len(Y) > max_points:
        Y = Y[torch.from_numpy(rng.choice(len(Y), max_points, replace=False))]
    K_xx, K_yy, K_xy = kernel(X, X), kernel(Y, Y), kernel(X, Y)
    value = _mmd_from_grams(K_xx, K_yy, K_xy, True)

    def resampled_mmd(strata: list[np.ndarray]) -> float:
        i, j = (torch.from_numpy(idx) for idx in strata)
        return float(_distinct_mean(K_xx, i) + _distinct_mean(K_yy, j) - 2 * K_xy[i][:, j].mean())

    # one generator from the subsampling on: the draws depend on ``seed`` only
    draws = stratified_bootstrap([np.arange(len(X)), np.arange(len(Y))], resampled_mmd, n_boot,
                                 rng)
    low, high = percentile_interval(draws, 0.95)
    return value, low, high

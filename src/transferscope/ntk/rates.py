"""The n-sweep: stopping time and held-out error against the sample size, over seeds.

One kernel over a pool (``n_max`` training candidates + a fixed held-out set) serves every n:
the kernel of a subsample is a sub-matrix, so the sweep costs one eNTK. For each (n, seed):
the spectrum of ``K_n``, ``T_hat`` (the recommended stop of :func:`recommend_stop` at its
step ``eta = 1/max K(x,x)``; the RWY rule's answer beside it), ``eta T_hat`` (the time in units
that compare kernels of different scale, e.g. pretrained vs mixed), and the held-out squared
error of the kernel-GD (linearised) predictor
at ``T_hat`` and at the held-out-optimal step. Our choice: the error is measured on held-out
labels (f* is unknown), so it includes a noise floor that flattens the slope at large n.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from transferscope.core.errors import input_error
from transferscope.core.stats import paired_bootstrap, percentile_interval
from transferscope.ntk.dynamics import kernel_gd
from transferscope.ntk.recommend import recommend_stop
from transferscope.ntk.spectrum import MIN_FIT_EIGENVALUES, analyse_spectrum, kernel_eigenvalues

STEP_GRID = np.unique(np.round(np.geomspace(1, 10**6, 160)).astype(int))


def sweep(pool_kernel: np.ndarray, f0: np.ndarray, targets: np.ndarray, n_test: int,
          sizes: Sequence[int], seeds: Sequence[int], n_boot: int = 50) -> pd.DataFrame:
    """One row per (n, seed). The last ``n_test`` pool points are the held-out set."""
    pool = pool_kernel.shape[0] - n_test
    if max(sizes) > pool or min(sizes) < 4:
        raise input_error("rates", "n", list(sizes), f"sizes between 4 and {pool}")
    test = np.arange(pool, pool + n_test)
    rows = []
    for seed in seeds:
        order = np.random.default_rng(seed).permutation(pool)
        for n in sizes:
            train = np.sort(order[:n])
            rows.append({"n": n, "seed": seed} | _one(pool_kernel, f0, targets, train, test,
                                                      n_boot, seed))
    return pd.DataFrame(rows)


def _one(kernel, f0, y, train, test, n_boot, seed) -> dict:
    k = kernel[np.ix_(train, train)]
    eigs = kernel_eigenvalues(k)
    residual = y[train] - f0[train]
    advice = recommend_stop(k, y[train], f0[train], seed=seed)
    eta, t_hat = advice.lr, advice.steps
    gd = kernel_gd(k, residual, eta)
    steps = np.unique(np.concatenate([[0, t_hat], STEP_GRID]))
    change = gd.change_at(kernel[np.ix_(test, train)], steps)
    errors = ((f0[test][None, :] + change - y[test][None, :]) ** 2).mean(axis=1)
    accuracy = (np.sign(f0[test][None, :] + change) == y[test][None, :]).mean(axis=1)
    best = int(np.argmin(errors))
    at = int(np.flatnonzero(steps == t_hat)[0])
    if k.shape[0] >= MIN_FIT_EIGENVALUES + 1:
        fit = analyse_spectrum(k, n_boot=n_boot, seed=seed).fits["polynomial"]
        alpha, low, high = fit.rate, fit.ci_low, fit.ci_high
    else:  # fewer than 8 eigenvalues to fit past the first: no decay rate (issue #27)
        alpha = low = high = math.nan
    return {"alpha": alpha, "alpha_low": low, "alpha_high": high,
            "lambda_max": float(eigs[0]), "step_size": eta, "sigma": advice.sigma,
            "radius": advice.radius, "rule": advice.rule, "t_hat": t_hat,
            "t_rwy": advice.rules["rwy"], "t_opt": int(steps[best]),
            "lr_t_hat": eta * t_hat, "lr_t_opt": eta * int(steps[best]),
            "error_t_hat": float(errors[at]), "error_opt": float(errors[best]),
            "error_f0": float(errors[0]), "accuracy_t_hat": float(accuracy[at]),
            "accuracy_opt": float(accuracy[best])}


@dataclass(kw_only=True, frozen=True)
class SlopeFit:
    """log(error) = a + slope log(n), with a bootstrap-over-seeds CI."""

    slope: float
    ci_low: float
    ci_high: float
    implied: float  # -alpha/(alpha+1) from the mean alpha at the largest n
    implied_low: float
    implied_high: float


def fit_slope(frame: pd.DataFrame, column: str = "error_t_hat", n_boot: int = 1000,
              seed: int = 0, level: float = 0.95) -> SlopeFit:
    """Least-squares slope of log error on log n; CI by resampling seeds (whole sweeps)."""
    seeds = frame["seed"].unique()
    by_seed = {s: frame[frame["seed"] == s] for s in seeds}

    def slope_of(chosen) -> float:
        part = pd.concat([by_seed[s] for s in chosen])
        return float(np.polyfit(np.log(part["n"]), np.log(part[column]), 1)[0])

    draws = paired_bootstrap(seeds.size, lambda idx: slope_of(seeds[idx]), n_boot, seed)
    top = frame[frame["n"] == frame["n"].max()]
    alphas = top["alpha"].to_numpy()
    exps = -alphas / (alphas + 1)
    ci_low, ci_high = percentile_interval(draws, level)
    return SlopeFit(slope=slope_of(seeds), ci_low=ci_low, ci_high=ci_high,
                    implied=float(-alphas.mean() / (alphas.mean() + 1)),
                    implied_low=float(exps.min()), implied_high=float(exps.max()))


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds for each n."""
    cols = ["alpha", "t_hat", "t_opt", "error_f0", "error_t_hat", "error_opt", "accuracy_t_hat",
            "accuracy_opt"]
    grouped = frame.groupby("n")[cols]
    mean, std = grouped.mean(), grouped.std(ddof=1)
    out = pd.DataFrame({"n": mean.index, "seeds": frame.groupby("n").size().to_numpy()})
    for c in cols:
        out[c] = [f"{m:.4g} ± {s:.2g}" for m, s in zip(mean[c], std[c].fillna(0), strict=True)]
    return out

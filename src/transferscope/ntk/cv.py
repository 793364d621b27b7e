"""Cross-validation of the kernel trajectory: the CV stop and its range (the default rule).

K-fold CV of full-batch kernel gradient descent ``f_{t+1} = f_t - lr (K/n)(f_t - y)``: each
fold's training part runs the closed-form trajectory at the same lr; the step on a log grid with
the least held-out squared error, averaged over several random fold assignments, is the stop.
Its range (:func:`stop_range`, ours) comes from the same curves: the one-standard-error set,
a bootstrap over the examples' held-out curves and the spread over fold assignments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from transferscope.core.errors import InputError

CV_FOLDS = 5
CV_REPEATS = 10  # fold assignments averaged (issue #27: one assignment moved the stop by
# orders of magnitude at n = 32); above LARGE_N fewer, the folds being large
LARGE_N = 200
LARGE_N_REPEATS = 3
HORIZON = 10**7
GRID_POINTS = 400


def step_grid(horizon: int = HORIZON, points: int = GRID_POINTS) -> np.ndarray:
    """0 and a log grid of integer step counts up to ``horizon`` (ratio ~1.04 between points)."""
    return np.unique(np.concatenate([[0], np.round(np.geomspace(1, horizon, points))])
                     ).astype(np.int64)


def trajectory_errors(evals: np.ndarray, evecs: np.ndarray, residual: np.ndarray, lr: float,
                      steps: np.ndarray, cross: np.ndarray, target_residual: np.ndarray,
                      per_example: bool = False) -> np.ndarray:
    """Mean squared error of ``f_t - f_0`` at new points against ``target_residual``, per step
    (``per_example``: the squared error of every new point, shape steps x points).

    ``evals, evecs`` of ``K_n`` on the training points, ``cross`` = ``K(X_new, X)``; the dual
    coefficients are ``c_t = (1/n) U diag((1 - (1 - lr lam)^t) / lam) U^T r`` (dynamics.py).
    """
    n = evals.size
    t = np.asarray(steps, dtype=np.float64)[:, None]
    lam = evals[None, :]
    shrink = -np.expm1(t * np.log1p(-np.minimum(lr * lam, 1.0 - 1e-15)))
    gain = np.where(lam > 0, shrink / np.where(lam > 0, lam, 1.0), lr * t)
    coef = (gain * (evecs.T @ residual)[None, :]) @ evecs.T / n
    change = coef @ np.asarray(cross, dtype=np.float64).T
    squared = (change - target_residual[None, :]) ** 2
    return squared if per_example else np.mean(squared, axis=1)


@dataclass(frozen=True)
class CrossValidation:
    """K-fold CV of the kernel trajectory: mean held-out squared error per step count, each
    example's held-out error (averaged over the fold assignments) and each assignment's own
    optimum (how much the answer moves with the fold seed)."""

    folds: int
    repeats: int
    steps: np.ndarray
    errors: np.ndarray
    best: int
    at_horizon: bool
    per_example: np.ndarray  # (n, steps): each example's held-out squared error
    repeat_best: np.ndarray  # (repeats,): the optimum of each fold assignment alone


def cv_stopping_time(kernel: np.ndarray, residual: np.ndarray, lr: float,
                     folds: int = CV_FOLDS, seed: int = 0,
                     steps: np.ndarray | None = None, repeats: int | None = None
                     ) -> CrossValidation:
    """The step with the least K-fold held-out error of the kernel trajectory at step ``lr``,
    averaged over ``repeats`` random fold assignments (one assignment is a noisy curve;
    default 10, 3 above 200 examples).

    Each fold trains on ``(K-1)/K`` of the points with ``K_tr / n_tr``, whose top eigenvalues
    match those of ``K / n``, so a step count means the same on the fold and on all points.
    """
    k = np.asarray(kernel, dtype=np.float64)
    r = np.asarray(residual, dtype=np.float64)
    n = r.size
    folds = int(min(folds, n))
    if folds < 2:
        raise InputError(f"cv: {n} examples: expected at least 2 for cross-validation")
    grid = step_grid() if steps is None else np.asarray(steps, dtype=np.int64)
    if repeats is None:
        repeats = CV_REPEATS if n <= LARGE_N else LARGE_N_REPEATS
    with threadpool_limits(1 if n < SINGLE_THREAD_BELOW else None):
        return _cv(k, r, lr, folds, seed, grid, repeats)


SINGLE_THREAD_BELOW = 1024  # small eigenproblems only lose time to BLAS thread contention


def _cv(k: np.ndarray, r: np.ndarray, lr: float, folds: int, seed: int, grid: np.ndarray,
        repeats: int) -> CrossValidation:
    n = r.size
    rng = np.random.default_rng(seed)
    per_example = np.zeros((n, grid.size))
    repeat_best = np.zeros(repeats, dtype=np.int64)
    for rep in range(repeats):
        order = rng.permutation(n)
        this = np.zeros((n, grid.size))
        for fold in range(folds):
            held = order[fold::folds]
            train = np.setdiff1d(order, held)
            sub = k[np.ix_(train, train)]
            evals, evecs = np.linalg.eigh(0.5 * (sub + sub.T) / train.size)
            this[held] = trajectory_errors(np.clip(evals, 0, None), evecs, r[train], lr, grid,
                                           k[np.ix_(held, train)], r[held], per_example=True).T
        repeat_best[rep] = grid[int(np.argmin(this.mean(axis=0)))]
        per_example += this
    per_example /= repeats
    errors = per_example.mean(axis=0)
    best = int(np.argmin(errors))
    return CrossValidation(folds, repeats, grid, errors, int(grid[best]), best == grid.size - 1,
                           per_example, repeat_best)


@dataclass(frozen=True, kw_only=True)
class StopRange:
    """The stop's uncertainty from the CV curve itself (ours, issue #27).

    ``one_se``: the steps whose mean CV error is within one standard error (over examples) of
    the least; ``bootstrap``: the 5-95% range of the optimum over resamples of the examples'
    held-out curves; ``fold_seeds``: the optima of the single fold assignments. ``low, high``
    is the hull of all three. ``decided`` is False when it spans more than ``WIDE_DECADES``
    decades (steps + 1); then ``safe`` is the end to use and ``safe_reason`` says why.
    """

    low: int
    high: int
    one_se: tuple[int, int]
    bootstrap: tuple[int, int]
    fold_seeds: tuple[int, int]
    decades: float
    decided: bool
    safe: int
    safe_reason: str


WIDE_DECADES = 2.0
SAFE_END = "low"
SAFE_REASONS = {
    "low": "the low end: before the optimum the held-out error of the kernel trajectory only "
           "falls, so stopping early forgoes part of the gain but never ends worse than not "
           "training; past the optimum the error rises again and can end above f_0",
    "high": "the high end",
}
BOOTSTRAP_DRAWS = 200


def stop_range(cv: CrossValidation, seed: int = 0, draws: int = BOOTSTRAP_DRAWS) -> StopRange:
    """:class:`StopRange` of a cross-validation (no new trajectories: resamples of the
    examples' held-out curves, so it costs milliseconds)."""
    curves = cv.per_example
    n = curves.shape[0]
    best = int(np.searchsorted(cv.steps, cv.best))
    se = float(np.std(curves[:, best], ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    inside = cv.steps[cv.errors <= cv.errors[best] + se]
    one_se = (int(inside.min()), int(inside.max()))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(draws, n))
    counts = np.zeros((draws, n))
    np.add.at(counts, (np.arange(draws)[:, None], picks), 1.0)  # each resample's multiplicities
    boot = cv.steps[np.argmin(counts @ curves, axis=1)]
    boot_lo, boot_hi = (int(v) for v in np.quantile(boot, [0.05, 0.95], method="nearest"))
    seeds = (int(cv.repeat_best.min()), int(cv.repeat_best.max()))
    low = min(one_se[0], boot_lo, seeds[0], cv.best)
    high = max(one_se[1], boot_hi, seeds[1], cv.best)
    decades = math.log10((high + 1) / (low + 1))
    decided = decades <= WIDE_DECADES
    safe = cv.best if decided else (low if SAFE_END == "low" else high)
    reason = ("the range is narrow: the CV optimum" if decided else SAFE_REASONS[SAFE_END])
    return StopRange(low=low, high=high, one_se=one_se, bootstrap=(boot_lo, boot_hi),
                     fold_seeds=seeds, decades=decades, decided=decided, safe=safe,
                     safe_reason=reason)

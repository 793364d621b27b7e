"""Eigen-decay of the empirical kernel: fits, bootstrap CIs, effective dimension, implied rate.

The convergence rate of early-stopped fine-tuning in the sample size is set by how fast the
eigenvalues of ``K_n = K / n`` decay. We fit the two textbook shapes on a log scale over an
index range: polynomial ``lambda_i ~ C i^-alpha`` (Sobolev-like, rate ``n^(-alpha/(alpha+1))``)
and exponential ``lambda_i ~ C exp(-c i)`` (Gaussian-like, rate ``log(n)/n``). Their uncertainty
comes from resampling *examples*: a bootstrap sample of rows and columns of ``K`` is the kernel
matrix of the bootstrap empirical measure, whose spectrum we recompute and refit.

The interval is the bootstrap's spread placed around the full-sample fit,
``rate + quantiles(rate* - median(rate*))`` (our choice). Plain percentiles are shifted: a
resample repeats about a third of the examples, which lowers the kernel's rank and steepens
the refitted decay (about +0.03 in alpha at n = 200 in our simulations); that shift is an
artefact of the duplicates, so it is reported (``bootstrap_shift``) but not used as a bias
correction. What the interval does not contain: the O(1/n) bias of empirical eigenvalues
against the population operator's (e.g. a fitted c about 0.007 too large at n = 200 for an
exponential spectrum).

Our defaults (the paper's are unknown to us): fit indices ``2 .. max(9, n // 4)`` (the top
eigenvalue is usually a lone mean direction, and the far tail is numerical noise and is thinned
out by the bootstrap's duplicates), 200 bootstrap resamples, 95% intervals. A fit uses at least
:data:`MIN_FIT_EIGENVALUES` positive eigenvalues or refuses with one line (issue #27: the old
range ``2 .. max(4, n // 4)`` fitted 3-7 values at n <= 32), and reports how many it used.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from transferscope.core.errors import InputError
from transferscope.core.stats import paired_bootstrap, percentile_interval

MODELS = ("polynomial", "exponential")
_RELATIVE_FLOOR = 1e-12  # eigenvalues below this fraction of the top are numerically zero
_SINGLE_THREAD_BELOW = 1024
MIN_FIT_EIGENVALUES = 8  # smaller eigenproblems only lose time to BLAS thread contention


def _checked_kernel(kernel: np.ndarray) -> np.ndarray:
    """``kernel`` as float64, refused unless square, finite and symmetric."""
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] == 0:
        raise InputError(f"kernel: shape {k.shape}: expected a square n x n matrix")
    if not np.all(np.isfinite(k)):
        raise InputError("kernel: contains NaN or inf: expected finite values")
    scale = max(float(np.abs(k).max()), np.finfo(float).tiny)
    asym = float(np.abs(k - k.T).max()) / scale
    if asym > 1e-6:
        raise InputError(f"kernel: relative asymmetry {asym:.2g}: expected a symmetric matrix")
    return k


def kernel_eigenvalues(kernel: np.ndarray) -> np.ndarray:
    """Eigenvalues of ``K / n`` in float64 with a symmetric solver, largest first."""
    k = _checked_kernel(kernel)
    n = k.shape[0]
    return np.linalg.eigvalsh(0.5 * (k + k.T) / n)[::-1].copy()


def kernel_eigh(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending, as computed) and eigenvectors of ``K / n``, checked as
    :func:`kernel_eigenvalues` checks: one decomposition for a command that needs both
    (``values[::-1]`` are :func:`kernel_eigenvalues` up to round-off)."""
    k = _checked_kernel(kernel)
    return np.linalg.eigh(0.5 * (k + k.T) / k.shape[0])


def default_index_range(n: int) -> tuple[int, int]:
    """1-based inclusive indices ``2 .. max(9, n // 4)`` (at least 8 values), clipped to
    ``n``; a kernel of fewer than 9 examples cannot be fitted."""
    if n < MIN_FIT_EIGENVALUES + 1:
        raise InputError(f"kernel: n = {n} examples: expected at least "
                         f"{MIN_FIT_EIGENVALUES + 1} for a decay fit over "
                         f"{MIN_FIT_EIGENVALUES} eigenvalues (indices 2..9)")
    return (2, min(n, max(MIN_FIT_EIGENVALUES + 1, n // 4)))


def _design(model: str, indices: np.ndarray) -> np.ndarray:
    if model == "polynomial":
        return np.log(indices.astype(np.float64))
    if model == "exponential":
        return indices.astype(np.float64)
    raise InputError(f"decay model = {model!r}: expected one of {', '.join(MODELS)}")


def fit_decay(eigenvalues: np.ndarray, model: str,
              index_range: tuple[int, int]) -> tuple[float, float, float, float]:
    """Least squares of ``log lambda_i`` on ``log i`` (polynomial) or ``i`` (exponential).

    Returns ``(rate, log_constant, r_squared, rmse_log)`` where rate is alpha or c (positive for
    decay) and the fit quality is measured on the log scale. Zero eigenvalues are left out;
    fewer than :data:`MIN_FIT_EIGENVALUES` positive ones is an InputError.
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    first, last = index_range
    if not 1 <= first < last <= lam.size:
        raise InputError(f"index range = {first}..{last}: expected 1 <= first < last <= "
                         f"n = {lam.size}")
    indices = np.arange(first, last + 1)
    values = lam[first - 1:last]
    usable = values > _RELATIVE_FLOOR * max(float(lam.max()), np.finfo(float).tiny)
    if usable.sum() < MIN_FIT_EIGENVALUES:
        raise InputError(f"index range = {first}..{last}: {int(usable.sum())} positive "
                         f"eigenvalues there: expected at least {MIN_FIT_EIGENVALUES} to fit "
                         "a decay (widen the range or use more examples)")
    x = _design(model, indices[usable])
    y = np.log(values[usable])
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    total = float(((y - y.mean()) ** 2).sum())
    r_squared = 1.0 - float((resid**2).sum()) / total if total > 0 else 1.0
    return float(-slope), float(intercept), r_squared, float(np.sqrt(np.mean(resid**2)))


def effective_dimension(eigenvalues: np.ndarray, ridge: float | np.ndarray) -> float | np.ndarray:
    """``d(lam) = sum_i lambda_i / (lambda_i + lam)``: directions a ridge ``lam`` leaves free."""
    lam = np.clip(np.asarray(eigenvalues, dtype=np.float64), 0.0, None)
    r = np.asarray(ridge, dtype=np.float64)
    if np.any(r <= 0):
        raise InputError(f"ridge = {ridge!r}: expected values > 0")
    values = (lam[None, :] / (lam[None, :] + r.reshape(-1, 1))).sum(axis=1)
    return float(values[0]) if r.ndim == 0 else values.reshape(r.shape)


def implied_rate(model: str, rate: float, n: int | np.ndarray) -> float | np.ndarray:
    """Error rate in ``n`` the decay implies: ``n^(-alpha/(alpha+1))`` or ``log(n)/n``."""
    n_arr = np.asarray(n, dtype=np.float64)
    if model == "polynomial":
        out = n_arr ** (-rate / (rate + 1.0))
    elif model == "exponential":
        out = np.log(n_arr) / n_arr
    else:
        raise InputError(f"decay model = {model!r}: expected one of {', '.join(MODELS)}")
    return float(out) if out.ndim == 0 else out


def implied_rate_formula(model: str, rate: float) -> str:
    """The rate as a formula a report can print."""
    if model == "polynomial":
        return f"n^(-{rate / (rate + 1.0):.3f})"
    return "log(n)/n"


@dataclass(kw_only=True, frozen=True)
class DecayFit:
    """One decay model fitted on the full sample, with its bootstrap interval for the rate."""

    model: str
    rate: float
    log_constant: float
    r_squared: float
    rmse_log: float
    index_range: tuple[int, int]
    eigenvalues_used: int
    ci_low: float
    ci_high: float
    ci_level: float
    bootstrap_shift: float
    bootstrap_failures: int

    def predict(self, indices: np.ndarray) -> np.ndarray:
        """Fitted eigenvalues at 1-based ``indices`` (for plots)."""
        return np.exp(self.log_constant - self.rate * _design(self.model, np.asarray(indices)))

    def to_dict(self) -> dict:
        return {
            "model": self.model, "rate": self.rate, "constant": math.exp(self.log_constant),
            "r_squared": self.r_squared, "rmse_log": self.rmse_log,
            "index_range": list(self.index_range), "eigenvalues_used": self.eigenvalues_used,
            "ci": [self.ci_low, self.ci_high],
            "ci_level": self.ci_level, "bootstrap_shift": self.bootstrap_shift,
            "bootstrap_failures": self.bootstrap_failures,
            "implied_rate": implied_rate_formula(self.model, self.rate),
        }


def bootstrap_rates(kernel: np.ndarray, index_range: tuple[int, int], n_boot: int, seed: int,
                    progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Refit both decay models on ``n_boot`` resamples of the examples (rows+columns of ``K``).

    A resample whose spectrum has fewer than 8 positive values in range gives NaN.
    """
    k = np.asarray(kernel, dtype=np.float64)
    n = k.shape[0]

    def rates_of(idx: np.ndarray) -> list[float]:
        lam = np.linalg.eigvalsh(k[np.ix_(idx, idx)] / n)[::-1]
        out = []
        for model in MODELS:
            try:
                out.append(fit_decay(lam, model, index_range)[0])
            except InputError:
                out.append(math.nan)
        return out

    with threadpool_limits(1 if n < _SINGLE_THREAD_BELOW else None):
        draws = paired_bootstrap(n, rates_of, n_boot, seed, progress).reshape(n_boot, len(MODELS))
    return {model: draws[:, i] for i, model in enumerate(MODELS)}


@dataclass(kw_only=True, frozen=True)
class SpectrumAnalysis:
    """Everything ``ntk spectrum`` reports about one kernel."""

    n: int
    eigenvalues: np.ndarray
    fits: dict[str, DecayFit]
    effective_dimensions: dict[float, float]

    @property
    def preferred(self) -> DecayFit:
        """The decay model with the better log-scale fit (higher R^2)."""
        return max(self.fits.values(), key=lambda f: f.r_squared)

    def to_dict(self) -> dict:
        best = self.preferred
        return {
            "n": self.n,
            "eigenvalues": self.eigenvalues.tolist(),
            "trace": float(self.eigenvalues.sum()),
            "fits": {m: f.to_dict() for m, f in self.fits.items()},
            "preferred_model": best.model,
            "implied_rate": implied_rate_formula(best.model, best.rate),
            "implied_rate_at_n": implied_rate(best.model, best.rate, self.n),
            "effective_dimension": [{"ridge": r, "d": d}
                                    for r, d in self.effective_dimensions.items()],
        }


def analyse_spectrum(kernel: np.ndarray, index_range: tuple[int, int] | None = None,
                     n_boot: int = 200, ci_level: float = 0.95, seed: int = 0,
                     progress: Callable[[int], None] | None = None) -> SpectrumAnalysis:
    """Eigenvalues of ``K/n``, both decay fits with bootstrap CIs (module notes), ``d(lam)``.

    ``d(lam)`` is reported at ``lam = lambda_max * 10^-k`` for ``k = 1..6``.
    """
    if not 0.0 < ci_level < 1.0:
        raise InputError(f"ci level = {ci_level!r}: expected a number in (0, 1)")
    if n_boot < 2:
        raise InputError(f"bootstrap resamples = {n_boot}: expected at least 2")
    lam = kernel_eigenvalues(kernel)
    n = lam.size
    rng_range = index_range or default_index_range(n)
    boots = bootstrap_rates(kernel, rng_range, n_boot, seed, progress)
    fits = {}
    for model in MODELS:
        rate, log_c, r2, rmse = fit_decay(lam, model, rng_range)
        finite = boots[model][np.isfinite(boots[model])]
        low, high, shift = math.nan, math.nan, math.nan
        if finite.size >= 2:
            centre = float(np.median(finite))
            low, high = rate + np.asarray(percentile_interval(finite - centre, ci_level))
            shift = centre - rate
        first, last = rng_range
        used = int((lam[first - 1:last] > _RELATIVE_FLOOR * max(float(lam.max()),
                                                                np.finfo(float).tiny)).sum())
        fits[model] = DecayFit(model=model, rate=rate, log_constant=log_c, r_squared=r2,
                               rmse_log=rmse, index_range=rng_range, eigenvalues_used=used,
                               ci_low=float(low),
                               ci_high=float(high), ci_level=ci_level, bootstrap_shift=shift,
                               bootstrap_failures=int(n_boot - finite.size))
    top = float(lam.max())
    ridges = [top * 10.0**-k for k in range(1, 7)]
    eff = {r: float(effective_dimension(lam, r)) for r in ridges}
    return SpectrumAnalysis(n=n, eigenvalues=lam, fits=fits, effective_dimensions=eff)

"""Kernel -> stopping time: the answer a user gets, with every rule beside it.

``recommend_stop(K, y, f0)`` computes four stopping times for full-batch kernel gradient
descent ``f_{t+1} = f_t - lr (K/n)(f_t - y)`` (half squared loss, ``K`` the n x n eNTK):

* ``rwy``: the warm-started RWY (2014) rule with our estimators of sigma and R (below);
* ``rwy-gcv``: the same rule with the first implementation's estimators (GCV sigma, the ridge
  radius ``r^T (K + n lam I)^-1 r``), kept so the difference can be measured;
* ``gcv-ridge``: ``T = 1 / (lr lam_GCV)``, the step count equivalent to the GCV ridge;
* ``cv``: 5-fold cross-validation of the kernel trajectory itself, averaged over 3 fold
  assignments (each fold's training part runs the same closed-form trajectory with the same
  lr; the step with the least mean squared error on the left-out parts wins).

``steps`` follows :data:`DEFAULT_RULE`: in ``transferscope ntk validate --full`` it captured the
largest share of the achievable improvement on real held-out splits and tied with the best rule
on planted truths (tables in ``examples/ntk/validate/validate.md``). Estimators (ours, documented as departures):

* sigma: the spectral-tail estimate ``sigma^2 = mean of (U^T r)_i^2`` over the half of the
  eigen-directions with the smallest eigenvalues. A target ``f* - f0 = K alpha`` puts
  ``n lambda_i (U^T alpha)_i`` in direction i, so the tail holds mostly noise; unlike the GCV
  estimate it has no grid and cannot stop at an edge (on real eNTKs GCV chose the largest
  ridge and returned the raw residual RMS).
* R: the RKHS norm of the Mallows-Cp ridge fit with its noise term subtracted,
  ``R^2 = sum_i ((U^T r)_i^2 - sigma^2) lambda_i / (n (lambda_i + mu)^2)``; the plain ridge
  radius adds ``~ sigma^2 tr(I - H) / (n mu)`` and grows with the noise.
* lr: at most ``1 / max_i K(x_i, x_i)``. RWY state their rule for a kernel bounded by 1 and a
  step at most 1; rescaling K by ``kappa = max K(x, x)`` makes that ``lr <= 1/kappa``. The rule
  itself is unchanged by the rescaling (R scales by sqrt(kappa), lr by 1/kappa). The
  divergence bound ``1/lambda_max(K/n)`` is larger (1.3-21.6x on real eNTKs) and not what
  the theory assumes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import get_args

import numpy as np

from transferscope.core.errors import InputError, input_error
from transferscope.ntk import stopping
from transferscope.ntk.cv import (
    BOOTSTRAP_DRAWS,
    CV_FOLDS,
    HORIZON,
    CrossValidation,
    StopRange,
    cv_stopping_time,
    step_grid,
    stop_range,
    trajectory_errors,
)
from transferscope.ntk.growth import Growth, estimate_growth
from transferscope.ntk.options import Rule

RULES: tuple[str, ...] = get_args(Rule)
DEFAULT_RULE = "cv"
RULE_REASONS = {
    "cv": "K-fold CV of the kernel trajectory: the largest share of the achievable held-out "
          "improvement in 'ntk validate --full', tied with the best on planted truths",
    "rwy": "warm-started RWY rule with spectral-tail sigma and debiased R (requested)",
    "rwy-gcv": "warm-started RWY rule with GCV sigma and ridge R (requested)",
    "gcv-ridge": "1/(lr lam_GCV) (requested)",
    "cv-low": "the low end of the CV stop's range (requested)",
}
__all__ = ["RULES", "DEFAULT_RULE", "StopRecommendation", "recommend_stop", "step_grid",
           "trajectory_errors", "cv_stopping_time"]
_GCV_GRID = np.logspace(-8, 1, 181)


def spectral_tail_noise(evals: np.ndarray, coords: np.ndarray) -> float:
    """``sigma`` from the residual's coordinates on the smaller half of the eigenvalues."""
    order = np.argsort(evals)
    tail = coords[order[: max(1, evals.size // 2)]]
    return math.sqrt(float(np.mean(tail**2)))


def cp_ridge(evals: np.ndarray, coords: np.ndarray, sigma: float) -> tuple[float, bool]:
    """The ridge minimising Mallows' Cp ``||(I-H) r||^2 + 2 sigma^2 tr H`` (sigma known), and
    whether it sits at an edge of the grid ``1e-8 .. 10`` x ``lambda_max``."""
    grid = float(evals.max()) * _GCV_GRID
    keep = grid[:, None] / (evals[None, :] + grid[:, None])
    cp = (keep**2 * coords[None, :] ** 2).sum(axis=1) + 2 * sigma**2 * (1 - keep).sum(axis=1)
    best = int(np.argmin(cp))
    return float(grid[best]), best in (0, grid.size - 1)


def debiased_radius(evals: np.ndarray, coords: np.ndarray, sigma: float, ridge: float
                    ) -> tuple[float, float]:
    """``(R_debiased, R_ridge_fit)``: the RKHS norm of the ridge fit, with and without its
    expected noise part ``sigma^2 sum lambda / (n (lambda + mu)^2)`` removed."""
    n = coords.size
    weight = evals / (n * (evals + ridge) ** 2)
    plain = float((coords**2 * weight).sum())
    corrected = float(((coords**2 - sigma**2) * weight).sum())
    return math.sqrt(max(corrected, 0.0)), math.sqrt(plain)


@dataclass(frozen=True, kw_only=True)
class StopRecommendation:
    """What to set: ``steps`` full-batch steps at ``lr``, by ``rule``; every rule's answer;
    ``steps_ci`` = (low, high) from the CV curve's own uncertainty (:class:`StopRange`); when
    ``decided`` is False the range spans more than two decades and ``safe_steps`` is the end
    to use (``safe_reason``)."""

    n: int
    steps: int
    lr: float
    rule: str
    rule_reason: str
    sigma: float
    radius: float
    rules: dict[str, int]
    lr_bound: float
    lambda_max: float
    max_diagonal: float
    sigma_gcv: float
    radius_ridge: float
    ridge_gcv: float
    ridge_cp: float
    cv: CrossValidation
    range: StopRange
    growth: Growth | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def steps_ci(self) -> tuple[int, int]:
        """(low, high): the range the CV curve cannot tell apart (see :class:`StopRange`)."""
        return (self.range.low, self.range.high)

    @property
    def decided(self) -> bool:
        return self.range.decided

    @property
    def safe_steps(self) -> int:
        """``steps`` when the range is narrow, else its safe end."""
        return self.steps if self.range.decided else self.range.safe

    def advice(self) -> str:
        """One line a user can act on."""
        low, high = self.steps_ci
        if self.range.decided:
            return (f"stop after {self.steps} full-batch steps at lr = {self.lr:.4g} "
                    f"(range {low}..{high})")
        return (f"the data cannot pin the stop down: anything from {low} to {high} steps fits "
                f"the held-out curves equally well ({self.range.decades:.1f} decades); use "
                f"{self.range.safe} steps, {self.range.safe_reason}")

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in (
            "n", "steps", "lr", "rule", "rule_reason", "sigma", "radius", "rules", "lr_bound",
            "lambda_max", "max_diagonal", "sigma_gcv", "radius_ridge", "ridge_gcv", "ridge_cp",
            "warnings", "steps_ci", "decided", "safe_steps")}
        out["advice"] = self.advice()
        out["range"] = {k: getattr(self.range, k) for k in (
            "low", "high", "one_se", "bootstrap", "fold_seeds", "decades", "decided", "safe",
            "safe_reason")}
        out["range"]["how"] = ("hull of: the one-standard-error set of the CV curve (SE over "
                               f"examples), the 5-95% range of its optimum over "
                               f"{BOOTSTRAP_DRAWS} resamples of the examples' held-out curves, "
                               f"and the optima of the {self.cv.repeats} fold assignments")
        out["lr_bound_rule"] = ("lr <= 1/max K(x,x): RWY's step <= 1 for a kernel bounded by 1, "
                                "after rescaling K by its largest diagonal entry")
        out["convention"] = "f_{t+1} = f_t - lr (K/n)(f_t - y), half squared loss"
        out["cv"] = {"folds": self.cv.folds, "repeats": self.cv.repeats, "best": self.cv.best,
                     "at_horizon": self.cv.at_horizon}
        if self.growth is not None:
            out["growth"] = self.growth.to_dict()
        return out


def recommend_stop(kernel: np.ndarray, y: np.ndarray, f0: np.ndarray, *,
                   lr: float | None = None, n_total: int | None = None,
                   batch_size: int | None = None, rule: str = DEFAULT_RULE,
                   sigma: float | None = None, radius: float | None = None,
                   seed: int = 0,
                   eig: tuple[np.ndarray, np.ndarray] | None = None) -> StopRecommendation:
    """How many full-batch steps of ``f_{t+1} = f_t - lr (K/n)(f_t - y)`` to run from ``f0``.

    ``sigma``/``radius`` override the estimates in the RWY rules; ``seed`` sets the CV folds.
    With ``n_total`` and ``batch_size``: the steps for the whole training set, from the growth
    of the CV stop measured on nested subsamples (:mod:`transferscope.ntk.growth`).
    ``eig``: :func:`~transferscope.ntk.stopping.eig_kn` of ``kernel``, when the caller has it.
    """
    k = np.asarray(kernel, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).ravel()
    f0 = np.asarray(f0, dtype=np.float64).ravel()
    n = y.size
    if k.ndim != 2 or k.shape != (n, n) or f0.size != n:
        raise input_error("recommend_stop", "shapes", (k.shape, y.size, f0.size),
                          "an n x n kernel with y and f0 of length n")
    if not (np.all(np.isfinite(k)) and np.all(np.isfinite(y)) and np.all(np.isfinite(f0))):
        raise input_error("recommend_stop", "values", "NaN or inf", "finite numbers")
    if rule not in RULES:
        raise input_error("recommend_stop", "rule", rule, f"one of {', '.join(RULES)}")
    if n < 4:
        raise input_error("recommend_stop", "n", n, "at least 4 examples")
    warnings: list[str] = []
    evals, evecs = eig if eig is not None else stopping.eig_kn(k)
    lam_max = float(evals.max())
    if lam_max <= 0:
        raise input_error("recommend_stop", "kernel", "all eigenvalues <= 0",
                          "a kernel with a positive eigenvalue")
    kappa = float(np.max(np.diag(k)))
    bound = 1.0 / kappa
    if lr is None:
        lr = bound
    else:
        lr = stopping.check_step_size(evals, lr)
        if lr > bound * (1 + 1e-9):
            warnings.append(f"lr = {lr:.4g} exceeds 1/max K(x,x) = {bound:.4g}, the step RWY's "
                            "analysis assumes; the rules are applied as they are")
    r = y - f0
    coords = evecs.T @ r

    gcv = stopping.estimate_noise(k, r, lam_max * _GCV_GRID, eig=(evals, evecs))
    radius_ridge = stopping.estimate_radius(k, r, gcv.ridge, eig=(evals, evecs))
    if gcv.ridge >= lam_max * _GCV_GRID[-1] * (1 - 1e-9):
        warnings.append(f"GCV chose the largest ridge of its grid ({gcv.ridge:.3g} = 10 "
                        "lambda_max): its sigma is the raw residual RMS and the gcv-ridge / "
                        "rwy-gcv stops are at their floor")
    elif gcv.ridge <= lam_max * _GCV_GRID[0] * (1 + 1e-9):
        warnings.append(f"GCV chose the smallest ridge of its grid ({gcv.ridge:.3g})")

    sigma_hat = spectral_tail_noise(evals, coords)
    if sigma_hat <= 1e-12 * max(1.0, float(np.abs(r).max())):
        warnings.append("the spectral-tail noise estimate is 0 (the residual lies in the top "
                        "eigen-directions): the RWY stop is unbounded; give --sigma")
        sigma_hat = max(sigma_hat, 1e-12)
    sigma_used = sigma if sigma is not None else sigma_hat
    ridge_cp, cp_edge = cp_ridge(evals, coords, sigma_used)
    if cp_edge:
        warnings.append(f"the Cp ridge for the radius sits at an edge of its grid "
                        f"({ridge_cp:.3g})")
    r_debiased, r_plain = debiased_radius(evals, coords, sigma_used, ridge_cp)
    if r_debiased <= 0:
        warnings.append("the debiased radius is 0 (the residual looks like pure noise at this "
                        f"sigma); the ridge-fit norm {r_plain:.3g} is used instead")
        r_debiased = r_plain
    radius_used = radius if radius is not None else r_debiased

    rules = {
        "rwy": stopping.rwy_stopping_time(evals, lr, sigma_used, max(radius_used, 1e-300)),
        "rwy-gcv": stopping.rwy_stopping_time(evals, lr, gcv.sigma, max(radius_ridge, 1e-300)),
        "gcv-ridge": int(round(1.0 / (lr * gcv.ridge))),
    }
    cv = cv_stopping_time(k, r, lr, seed=seed)
    span = stop_range(cv, seed=seed)
    rules["cv"] = cv.best
    rules["cv-low"] = span.low
    if cv.at_horizon:
        warnings.append(f"the CV optimum is at the end of its horizon ({HORIZON} steps): the "
                        "held-out error was still falling")
    if n < 5 * CV_FOLDS:
        warnings.append(f"n = {n}: each CV fold holds out at most {math.ceil(n / CV_FOLDS)} "
                        "examples, so the CV stop is noisy")
    if not span.decided:
        warnings.append(f"the stop's range {span.low}..{span.high} spans {span.decades:.1f} "
                        f"decades: the data cannot pin it down; the safe choice is {span.safe} "
                        "steps (the low end)")
    zero = [name for name, t in rules.items() if t == 0]
    if zero:
        warnings.append(f"{', '.join(zero)} say(s) 0 steps (keep f_0)")
    positive = [t for t in rules.values() if t > 0]
    if positive and max(positive) > 10 * min(positive):
        warnings.append("the rules disagree by more than 10x: "
                        + ", ".join(f"{k} {v}" for k, v in rules.items()))
    steps = rules[rule]
    growth = None
    if n_total is not None or batch_size is not None:
        if n_total is None or batch_size is None:
            raise InputError("recommend_stop: n_total and batch_size: one given: expected both "
                             "for the steps on the whole training set")
        growth = estimate_growth(k, r, lr, int(n_total), int(batch_size), seed=seed)
        warnings.extend(growth.warnings)
    return StopRecommendation(
        n=n, steps=steps, lr=float(lr), rule=rule, rule_reason=RULE_REASONS[rule],
        sigma=float(sigma_used), radius=float(radius_used), rules=rules, lr_bound=bound,
        lambda_max=lam_max, max_diagonal=kappa, sigma_gcv=gcv.sigma, radius_ridge=radius_ridge,
        ridge_gcv=gcv.ridge, ridge_cp=ridge_cp, cv=cv, range=span, growth=growth,
        warnings=warnings)

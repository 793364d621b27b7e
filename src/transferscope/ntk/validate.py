"""Does the stopping time hold up? Every rule against planted truths and real held-out optima.

(a) Planted truths: a kernel with a known spectrum (or the real SmolLM2 eNTK), a target
``f* = f0 + K alpha`` with ``||f* - f0||_H = R`` and noise ``sigma``; the error of the
kernel trajectory against ``f*`` on the training points, ``e(t) = ||f_t - f*||^2 / n``, is
exact in the eigenbasis, so the oracle step ``T_opt`` is known. (b) Real held-out truth: a
real eNTK over a pool of labelled examples, a training split of n and the rest held out; the
held-out error of the kernel trajectory gives ``T_opt``. For each rule the score is the share
of the achievable improvement it captures, ``(e(0) - e(T)) / (e(0) - e(T_opt))``: 1 for the
oracle, 0 for keeping ``f_0``, negative when stopping there is worse than not training.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from transferscope.core.stats import bootstrap_interval
from transferscope.ntk import stopping
from transferscope.ntk.recommend import RULES, recommend_stop, step_grid, trajectory_errors

ORACLE_RULES = ("rwy-oracle",)  # RWY with the planted sigma and R: the rule without estimators


def synthetic_spectrum(kind: str, n: int) -> np.ndarray:
    """Eigenvalues of ``K/n`` (largest 1): Sobolev-type ``i^-2``, power laws, and a dominant
    top eigenvalue over a power-law tail like the real eNTK's (86-94% of the trace on top)."""
    i = np.arange(1, n + 1, dtype=np.float64)
    if kind == "sobolev":
        return i**-2.0
    if kind == "power-1.5":
        return i**-1.5
    if kind == "power-3":
        return i**-3.0
    if kind == "dominant-top":
        tail = 0.02 * (i[1:] ** -1.2)
        return np.concatenate([[1.0], tail])
    raise ValueError(f"spectrum kind {kind!r}")


SPECTRA = ("sobolev", "power-1.5", "power-3", "dominant-top")


def random_kernel(eigenvalues: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``K = n U diag(lambda) U^T`` with a Haar-random orthogonal ``U``."""
    n = eigenvalues.size
    q, rr = np.linalg.qr(rng.standard_normal((n, n)))
    q = q * np.sign(np.diag(rr))
    return n * (q * eigenvalues) @ q.T


def planted_problem(kernel: np.ndarray, sigma: float, radius: float,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(y, f0, f*)`` with ``f* - f0 = K alpha``, ``alpha^T K alpha = radius^2``, noise sigma."""
    n = kernel.shape[0]
    alpha = rng.standard_normal(n)
    alpha *= radius / math.sqrt(max(float(alpha @ kernel @ alpha), 1e-300))
    f0 = rng.standard_normal(n)
    f_star = f0 + kernel @ alpha
    return f_star + sigma * rng.standard_normal(n), f0, f_star


def train_errors(kernel: np.ndarray, residual: np.ndarray, truth: np.ndarray, lr: float,
                 steps: np.ndarray) -> np.ndarray:
    """``||f_t - f*||^2 / n`` on the training points at every step count (closed form)."""
    n = residual.size
    evals, evecs = np.linalg.eigh(0.5 * (kernel + kernel.T) / n)
    evals = np.clip(evals, 0, None)
    t = np.asarray(steps, dtype=np.float64)[:, None]
    shrink = -np.expm1(t * np.log1p(-np.minimum(lr * evals[None, :], 1 - 1e-15)))
    change = shrink * (evecs.T @ residual)[None, :]
    return np.mean((change - (evecs.T @ truth)[None, :]) ** 2, axis=1)


def share_captured(errors: np.ndarray, steps: np.ndarray, t: int) -> float:
    """``(e(0) - e(t)) / (e(0) - min e)``, with ``e`` interpolated (log-step) between grid
    points; NaN when no step improves on ``f_0``."""
    gain = errors[0] - errors.min()
    if gain <= 1e-12 * max(errors[0], 1e-300):
        return math.nan
    if t >= steps[-1]:
        e_t = errors[-1]
    elif t <= 0:
        e_t = errors[0]
    else:
        e_t = float(np.interp(math.log(t), np.log(np.maximum(steps[1:], 1)), errors[1:]))
    return float((errors[0] - e_t) / gain)


@dataclass(frozen=True)
class Outcome:
    """One problem: its setting, the oracle step and each rule's step and share."""

    setting: dict
    t_opt: int
    steps: dict[str, int]
    shares: dict[str, float]


def planted_truths(kernels: dict[str, np.ndarray] | None = None, sizes: tuple[int, ...] = (64,),
                   sigmas: tuple[float, ...] = (0.5, 2.0), radii: tuple[float, ...] = (0.5, 2.0),
                   repeats: int = 4, seed: int = 0,
                   progress: Callable[[], None] | None = None) -> list[Outcome]:
    """Part (a): every synthetic spectrum (and each real kernel in ``kernels``, subsampled to
    ``n``) x n x sigma x R x repeat, each rule's share of the oracle improvement."""
    rng = np.random.default_rng(seed)
    grid = step_grid()
    out = []
    sources = list(SPECTRA) + list(kernels or {})
    for source in sources:
        for n in sizes:
            for sigma in sigmas:
                for radius in radii:
                    for rep in range(repeats):
                        if source in SPECTRA:
                            k = random_kernel(synthetic_spectrum(source, n), rng)
                        else:
                            full = kernels[source]
                            idx = np.sort(rng.choice(full.shape[0], min(n, full.shape[0]),
                                                     replace=False))
                            k = full[np.ix_(idx, idx)]
                        y, f0, f_star = planted_problem(k, sigma, radius, rng)
                        rec = recommend_stop(k, y, f0, seed=rep)
                        evals = np.linalg.eigvalsh(k / k.shape[0])
                        steps = dict(rec.rules)
                        steps["rwy-oracle"] = stopping.rwy_stopping_time(
                            np.clip(evals, 0, None), rec.lr, sigma, radius)
                        errors = train_errors(k, y - f0, f_star - f0, rec.lr, grid)
                        out.append(Outcome(
                            {"source": source, "n": k.shape[0], "sigma": sigma,
                             "radius": radius, "repeat": rep,
                             "signal": f"sigma {sigma:g}, R {radius:g}",
                             "sigma_ratio": rec.sigma / sigma, "radius_ratio": rec.radius / radius,
                             "sigma_gcv_ratio": rec.sigma_gcv / sigma,
                             "radius_ridge_ratio": rec.radius_ridge / radius},
                            int(grid[int(np.argmin(errors))]), steps,
                            {name: share_captured(errors, grid, t) for name, t in steps.items()}))
                        if progress is not None:
                            progress()
    return out


def held_out_truths(kernel: np.ndarray, f0: np.ndarray, y: np.ndarray,
                    sizes: tuple[int, ...], splits: int = 10, seed: int = 0,
                    progress: Callable[[], None] | None = None) -> list[Outcome]:
    """Part (b): a real pool; per n, ``splits`` random training sets of n (the rest held
    out); the held-out-optimal step of the kernel trajectory against each rule's step."""
    rng = np.random.default_rng(seed)
    grid = step_grid()
    pool = y.size
    out = []
    for n in sizes:
        for split in range(splits):
            train = np.sort(rng.choice(pool, n, replace=False))
            test = np.setdiff1d(np.arange(pool), train)
            k_tr = kernel[np.ix_(train, train)]
            rec = recommend_stop(k_tr, y[train], f0[train], seed=split)
            evals, evecs = np.linalg.eigh(0.5 * (k_tr + k_tr.T) / n)
            errors = trajectory_errors(np.clip(evals, 0, None), evecs, y[train] - f0[train],
                                       rec.lr, grid, kernel[np.ix_(test, train)],
                                       y[test] - f0[test])
            steps = dict(rec.rules)
            out.append(Outcome({"n": n, "split": split, "n_test": int(test.size),
                                "train": train.tolist()},
                               int(grid[int(np.argmin(errors))]), steps,
                               {name: share_captured(errors, grid, t)
                                for name, t in steps.items()}))
            if progress is not None:
                progress()
    return out


def _median_ci(values: np.ndarray, seed: int) -> tuple[float, float]:
    if values.size < 3:
        return math.nan, math.nan
    return bootstrap_interval([values], np.median, n_boot=2000, seed=seed,
                              method="percentile")


def share_table(outcomes: list[Outcome], group: str | None = None, seed: int = 0) -> list[dict]:
    """Per rule (and per value of ``group``): problems counted, median share with its 95%
    bootstrap CI over problems, 10th percentile, worst, and median predicted / oracle step."""
    rules = [r for r in (*RULES, *ORACLE_RULES) if outcomes and r in outcomes[0].shares]
    keys = sorted({o.setting[group] for o in outcomes}) if group else [None]
    rows = []
    for key in keys:
        chosen = [o for o in outcomes if group is None or o.setting[group] == key]
        for rule in rules:
            shares = np.array([o.shares[rule] for o in chosen])
            finite = shares[np.isfinite(shares)]
            low, high = _median_ci(finite, seed)
            rows.append({
                **({group: key} if group else {}), "rule": rule, "problems": len(chosen),
                "no_gain": int(shares.size - finite.size),
                "median_share": float(np.median(finite)) if finite.size else math.nan,
                "median_ci": [low, high],
                "p10_share": float(np.quantile(finite, 0.1)) if finite.size else math.nan,
                "worst_share": float(finite.min()) if finite.size else math.nan,
                "median_steps": float(np.median([o.steps[rule] for o in chosen])),
                "median_t_opt": float(np.median([o.t_opt for o in chosen])),
            })
    return rows


RECOVERY = {"sigma_ratio": "sigma (spectral tail) / planted",
            "sigma_gcv_ratio": "sigma (GCV) / planted",
            "radius_ratio": "R (debiased ridge-fit norm) / planted",
            "radius_ridge_ratio": "R (ridge radius) / planted"}


def recovery_table(outcomes: list[Outcome]) -> list[dict]:
    """Per source: median and 10-90% range of each estimate over its planted value."""
    rows = []
    for source in sorted({o.setting["source"] for o in outcomes}):
        chosen = [o for o in outcomes if o.setting["source"] == source]
        for key, label in RECOVERY.items():
            ratios = np.array([o.setting[key] for o in chosen])
            rows.append({"source": source, "estimate": label,
                         "median": float(np.median(ratios)),
                         "p10": float(np.quantile(ratios, 0.1)),
                         "p90": float(np.quantile(ratios, 0.9))})
    return rows


def real_curve_outcome(kernel_outcome: Outcome, steps: np.ndarray, errors: np.ndarray,
                       kernel_errors: np.ndarray, seconds: float) -> Outcome:
    """Part (b) on a real fine-tuning curve: the held-out error of the real network at
    ``steps`` (0 first, up to the horizon) replaces the kernel trajectory's. The optimum is
    ``reached`` when the error has risen again by the horizon (the minimum is not the last
    point); a rule's step past the horizon is scored with the error at the horizon and
    counted in ``beyond_horizon``."""
    steps = np.asarray(steps, dtype=np.int64)
    errors = np.asarray(errors, dtype=np.float64)
    best = int(np.argmin(errors))
    horizon = int(steps[-1])
    rules = kernel_outcome.steps
    setting = {k: v for k, v in kernel_outcome.setting.items() if k != "train"}
    setting.update({
        "horizon": horizon, "reached": best < steps.size - 1,
        "kernel_t_opt": kernel_outcome.t_opt,
        "kernel_t_opt_on_grid": int(steps[int(np.argmin(kernel_errors))]),
        "max_relative_gap": float(np.max(np.abs(errors - kernel_errors))
                                  / max(float(np.max(np.abs(kernel_errors))), 1e-300)),
        "beyond_horizon": sorted(r for r, t in rules.items() if t > horizon),
        "seconds": seconds, "steps": steps.tolist(), "errors": errors.tolist(),
        "kernel_errors": np.asarray(kernel_errors).tolist()})
    return Outcome(setting, int(steps[best]), dict(rules),
                   {name: share_captured(errors, steps, t) for name, t in rules.items()})

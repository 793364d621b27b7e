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
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from transferscope.core.stats import bootstrap_interval
from transferscope.ntk import stopping
from transferscope.ntk.recommend import RULES, recommend_stop, step_grid, trajectory_errors

ORACLE_RULES = ("rwy-oracle",)  # RWY with the planted sigma and R: the rule without estimators
FIXED_STEPS = (100, 1000, 10000)  # what a user might set instead: a fixed step count
BASELINES = tuple(f"fixed-{t}" for t in FIXED_STEPS)
GAIN_FLOOR = 0.01  # excess risk: the achievable gain is floored at 1% of e(0)


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
    return f_star + sigma * rng.standard_normal(n), cast(np.ndarray, f0), f_star


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


def error_at(errors: np.ndarray, steps: np.ndarray, t: int) -> float:
    """``e(t)`` interpolated on log steps between grid points (``e`` at the ends outside)."""
    if t >= steps[-1]:
        return float(errors[-1])
    if t <= 0:
        return float(errors[0])
    return float(np.interp(math.log(t), np.log(np.maximum(steps[1:], 1)), errors[1:]))


def excess_risk(errors: np.ndarray, steps: np.ndarray, t: int) -> float:
    """``(e(t) - e_opt) / (e(0) - e_opt)`` with the achievable gain floored at ``GAIN_FLOOR``
    times ``e(0)``, so a problem whose optimum is step 0 is scored too (0 for stopping at 0,
    the cost of training otherwise)."""
    best = float(errors.min())
    gain = max(float(errors[0]) - best, GAIN_FLOOR * float(errors[0]), 1e-300)
    return (error_at(errors, steps, t) - best) / gain


def log_ratio(t: int, t_opt: int) -> float:
    """``|log10((T + 1) / (T_opt + 1))|``: decades between a stop and the optimum (+1 so that
    0 steps is a stop like any other)."""
    return abs(math.log10((t + 1) / (t_opt + 1)))


@dataclass(kw_only=True, frozen=True)
class Outcome:
    """One problem: its setting, the oracle step and each rule's (and each fixed-step
    baseline's) step, share, excess risk and distance from the optimum; the default rule's
    range and whether it covered the optimum."""

    setting: dict
    t_opt: int
    steps: dict[str, int]
    shares: dict[str, float]
    excess: dict[str, float] = field(default_factory=dict)
    log_ratio: dict[str, float] = field(default_factory=dict)
    steps_ci: tuple[int, int] = (0, 0)
    covered: bool = False
    decided: bool = True
    safe: int = 0


def score(setting: dict, errors: np.ndarray, grid: np.ndarray, steps: dict[str, int],
          rec=None) -> Outcome:
    """An :class:`Outcome` of the curve ``errors`` on ``grid`` for every rule in ``steps`` and
    every fixed-step baseline; ``rec`` (a StopRecommendation) adds the range and its coverage."""
    t_opt = int(grid[int(np.argmin(errors))])
    steps = dict(steps) | {name: t for name, t in zip(BASELINES, FIXED_STEPS, strict=True)}
    if rec is not None:
        steps["safe"] = rec.safe_steps
    low, high = rec.steps_ci if rec is not None else (0, 0)
    return Outcome(
        setting=setting, t_opt=t_opt, steps=steps,
        shares={name: share_captured(errors, grid, t) for name, t in steps.items()},
        excess={name: excess_risk(errors, grid, t) for name, t in steps.items()},
        log_ratio={name: log_ratio(t, t_opt) for name, t in steps.items()},
        steps_ci=(int(low), int(high)), covered=bool(low <= t_opt <= high),
        decided=bool(rec.decided) if rec is not None else True,
        safe=int(rec.safe_steps) if rec is not None else 0)


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
                            full = cast(dict[str, np.ndarray], kernels)[source]  # a real source
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
                        out.append(score(
                            {"source": source, "n": k.shape[0], "sigma": sigma,
                             "radius": radius, "repeat": rep,
                             "signal": f"sigma {sigma:g}, R {radius:g}",
                             "sigma_ratio": rec.sigma / sigma, "radius_ratio": rec.radius / radius,
                             "sigma_gcv_ratio": rec.sigma_gcv / sigma,
                             "radius_ridge_ratio": rec.radius_ridge / radius},
                            errors, grid, steps, rec))
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
            out.append(score({"n": n, "split": split, "n_test": int(test.size),
                              "train": train.tolist()}, errors, grid, rec.rules, rec))
            if progress is not None:
                progress()
    return out


def _median_ci(values: np.ndarray, seed: int) -> tuple[float, float]:
    if values.size < 3:
        return math.nan, math.nan
    return bootstrap_interval([values], np.median, n_boot=2000, seed=seed,
                              method="percentile")


TABLE_ROWS = (*RULES, "safe", *ORACLE_RULES, *BASELINES)
WITHIN_2X = math.log10(2.0)


def share_table(outcomes: list[Outcome], group: str | None = None, seed: int = 0) -> list[dict]:
    """Per rule, the safe choice and each fixed-step baseline (and per value of ``group``):
    problems (those whose optimum is step 0 included and counted), median excess risk with its
    95% bootstrap CI over problems and its 90th percentile, median ``|log10((T+1)/(T_opt+1))|``,
    the share of stops within 2x of the optimum, the range's coverage of the optimum (rows of
    the CV range only), the median share captured (problems with a gain) and median steps."""
    rows_of = [r for r in TABLE_ROWS if outcomes and r in outcomes[0].steps]
    keys = sorted({o.setting[group] for o in outcomes}) if group else [None]
    rows = []
    for key in keys:
        chosen = [o for o in outcomes if group is None or o.setting[group] == key]
        for rule in rows_of:
            excess = np.array([o.excess[rule] for o in chosen])
            logs = np.array([o.log_ratio[rule] for o in chosen])
            shares = np.array([o.shares[rule] for o in chosen])
            finite = shares[np.isfinite(shares)]
            low, high = _median_ci(excess, seed)
            ranged = rule in ("cv", "cv-low", "safe")
            rows.append({
                **({group: key} if group else {}), "rule": rule, "problems": len(chosen),
                "t_opt_zero": sum(o.t_opt == 0 for o in chosen),
                "median_excess": float(np.median(excess)), "median_excess_ci": [low, high],
                "p90_excess": float(np.quantile(excess, 0.9)),
                "median_log10": float(np.median(logs)),
                "within_2x": float(np.mean(logs <= WITHIN_2X + 1e-12)),
                "coverage": (float(np.mean([o.covered for o in chosen])) if ranged else None),
                "undecided": (int(sum(not o.decided for o in chosen)) if ranged else None),
                "no_gain": int(shares.size - finite.size),
                "median_share": float(np.median(finite)) if finite.size else math.nan,
                "median_steps": float(np.median([o.steps[rule] for o in chosen])),
                "median_t_opt": float(np.median([o.t_opt for o in chosen])),
            })
    return rows


CANDIDATES = ("cv", "cv-low", "rwy", "rwy-gcv", "gcv-ridge")


def choose_default(outcomes: list[Outcome]) -> tuple[str, str]:
    """The rule with the least 90th-percentile excess risk over ``outcomes`` (ties: the least
    median), among the data-driven rules; returns (rule, why)."""
    scored = []
    for rule in CANDIDATES:
        ex = np.array([o.excess[rule] for o in outcomes])
        scored.append((float(np.quantile(ex, 0.9)), float(np.median(ex)), rule))
    p90, median, rule = min(scored)
    return rule, (f"least 90th-percentile excess risk ({p90:.3f}; median {median:.3f}) over "
                  f"{len(outcomes)} development problems among {', '.join(CANDIDATES)}")


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
    t_opt = int(steps[best])
    low, high = kernel_outcome.steps_ci
    return Outcome(setting=setting, t_opt=t_opt, steps=dict(rules),
                   shares={name: share_captured(errors, steps, t) for name, t in rules.items()},
                   excess={name: excess_risk(errors, steps, t) for name, t in rules.items()},
                   log_ratio={name: log_ratio(t, t_opt) for name, t in rules.items()},
                   steps_ci=(low, high), covered=bool(low <= t_opt <= high),
                   decided=kernel_outcome.decided,
                   safe=kernel_outcome.safe)


def growth_truths(n: int = 32, factor: int = 4, repeats: int = 2, seed: int = 0,
                  sigmas: tuple[float, ...] = (0.5, 2.0), radii: tuple[float, ...] = (0.5, 2.0),
                  progress: Callable[[], None] | None = None) -> list[dict]:
    """``--n-total`` against a planted truth: a kernel of ``N = factor * n`` points with a
    known spectrum, a planted target on all of them, the oracle step on all N (at the lr of
    the user's n); the user sees a random n of them and :func:`estimate_growth` predicts the
    step at N. One row per problem: truth, prediction, interval, covered."""
    from transferscope.ntk.growth import estimate_growth

    rng = np.random.default_rng(seed)
    grid = step_grid()
    rows = []
    big = factor * n
    for source in SPECTRA:
        for sigma in sigmas:
            for radius in radii:
                for rep in range(repeats):
                    k = random_kernel(synthetic_spectrum(source, big), rng)
                    y, f0, f_star = planted_problem(k, sigma, radius, rng)
                    idx = np.sort(rng.choice(big, n, replace=False))
                    lr = 1.0 / float(np.max(np.diag(k[np.ix_(idx, idx)])))
                    errors = train_errors(k, y - f0, f_star - f0, lr, grid)
                    truth = int(grid[int(np.argmin(errors))])
                    g = estimate_growth(k[np.ix_(idx, idx)], (y - f0)[idx], lr, big, 16,
                                        seed=rep)
                    rows.append({"source": source, "sigma": sigma, "radius": radius,
                                 "repeat": rep, "n": n, "n_total": big, "truth": truth,
                                 "steps": g.steps, "steps_ci": list(g.steps_ci),
                                 "level": g.level, "exponent": g.exponent,
                                 "covered": bool(g.steps_ci[0] <= truth <= g.steps_ci[1]),
                                 "decades": math.log10((g.steps_ci[1] + 1)
                                                       / (g.steps_ci[0] + 1))})
                    if progress is not None:
                        progress()
    return rows

"""Run methods on real tables at few labels, over seeds; MAE, RMSE, interval coverage; MMD.

Every (task, labelled rows, seed, method) result is cached as JSON, keyed by the method's
settings and the split, so an interrupted run resumes where it stopped and a finished one is
re-tabulated instantly. A method that raises on a split (the authors' float32 code does, on
every real table here) is recorded as failed, with its error, and counted in the tables.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd
import torch

from transferscope.core.cache import Cache, content_key
from transferscope.core.progress import step_progress
from transferscope.dino.authors import AuthorsDINO
from transferscope.dino.base import DomainRegressor
from transferscope.dino.baselines import (
    BASELINES,
    DomainMeanGP,
    PooledRidge,
    TargetOnlyGP,
    TargetRidge,
)
from transferscope.dino.datasets import REAL_TASKS, Task, split_task
from transferscope.dino.estimator import DINORegressor
from transferscope.dino.kernels import base_kernel
from transferscope.dino.mmd import mmd_with_bootstrap

# The code a cached result's numbers come from: the methods, the tables and their splits, the
# MMD and this module. The cache's folder is named by the package version and a digest of this
# code (core/cache.py), so an entry computed by other code is never read; a change elsewhere
# (the command line, the report) keeps the finished runs.
BENCH_CODE = tuple(f"transferscope.{m}" for m in (
    "dino.evaluation", "dino.estimator", "dino.baselines", "dino.authors", "dino.base",
    "dino.inputs", "dino.gp", "dino.kernels", "dino.distribution", "dino.scalable",
    "dino.params", "dino.datasets", "dino.mmd", "core.stats", "core.checks"))
Z90, Z95 = 1.6448536269514722, 1.959963984540054

def _seeded(cls, seed: int):
    return cls(random_state=seed)


DEFAULT = "DINO (default)"
WARM = "DINO, 0 Adam steps"
POOLED_RIDGE = "pooled ridge + indicator"
METHODS: dict[str, Callable[[int], DomainRegressor]] = {
    DEFAULT: lambda seed: DINORegressor(random_state=seed),
    WARM: lambda seed: DINORegressor(n_steps=0, random_state=seed),
    "DINO-INIT (nngp kernel)": lambda seed: DINORegressor(kernel="nngp", random_state=seed),
    "authors' DINO (as released, float32)": lambda seed: AuthorsDINO(random_state=seed),
    "authors' DINO (float64)": lambda seed: AuthorsDINO(dtype="float64", random_state=seed),
    POOLED_RIDGE: lambda seed: PooledRidge(random_state=seed),
    "target-only ridge": lambda seed: TargetRidge(random_state=seed),
    "GP + domain mean": lambda seed: DomainMeanGP(random_state=seed),
    "target-only GP": lambda seed: TargetOnlyGP(random_state=seed),
}
METHODS |= {name: functools.partial(_seeded, cls) for name, cls in BASELINES.items()
            if name not in METHODS}
MAIN_METHODS = [DEFAULT, WARM, "authors' DINO (as released, float32)",
                "authors' DINO (float64)", POOLED_RIDGE, "target-only ridge", "GP + domain mean",
                "target-only GP"]


@dataclass(kw_only=True)
class Profile:
    """What a benchmark run covers: real tasks (``datasets.REAL_TASKS`` names), labelled target
    rows per split, seeds, the source and test caps, and the methods (``METHODS`` names)."""

    tasks: list[str] = field(default_factory=lambda: list(REAL_TASKS))
    labels: tuple[int, ...] = (20, 50)
    seeds: int = 5
    max_source: int = 500
    max_test: int = 1000
    methods: list[str] = field(default_factory=lambda: list(MAIN_METHODS))


PROFILES = {
    "quick": Profile(tasks=["housing-prefarea", "cps1988-south"], labels=(20,), max_source=300,
                     methods=[DEFAULT, WARM, POOLED_RIDGE, "target-only GP"]),
    "standard": Profile(),
}


def run_benchmark(profile: Profile, show_progress: bool = True,
                  task_loaders: dict[str, Callable[[], Task]] | None = None,
                  methods: dict[str, Callable[[int], DomainRegressor]] | None = None,
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-run results (one row per task, labels, seed, method) and the per-task MMD table.
    ``task_loaders`` replaces ``REAL_TASKS`` (tests pass small synthetic tasks); ``methods``
    adds or replaces method factories (``seed -> estimator``; benchmarks compare settings)."""
    loaders = task_loaders or REAL_TASKS
    factories = METHODS | (methods or {})
    unknown = [m for m in profile.methods if m not in factories]
    if unknown:
        raise KeyError(f"unknown method {unknown[0]!r}; known: {list(factories)}")
    cache = bench_cache()
    rows, mmd_rows = [], []
    total = len(profile.tasks) * len(profile.labels) * profile.seeds * len(profile.methods)
    with step_progress("DINO benchmark", total, show_progress) as advance:
        for name in profile.tasks:
            task = loaders[name]()
            mmd_rows.append(_task_mmd(task, profile, cache))
            for n_labelled in profile.labels:
                for seed in range(profile.seeds):
                    split = split_task(task, seed, n_labelled, profile.max_source,
                                       profile.max_test)
                    for method in profile.methods:
                        model = factories[method](seed)
                        key = content_key(task.name, n_labelled, seed, method,
                                          model.get_params(), profile.max_source,
                                          profile.max_test, split.Xt, split.ytest)
                        if not cache.has_json(key):
                            cache.save_json(key, evaluate(model, split))
                        rows.append({"task": task.name, "labels": n_labelled, "seed": seed,
                                     "method": method,
                                     **cast(dict[str, Any], cache.load_json(key))})
                        advance()
    return pd.DataFrame(rows), pd.DataFrame(mmd_rows)


def bench_cache() -> Cache:
    """The benchmark's cache: one JSON entry per run and per task's MMD, in a folder named by
    the package version and the digest of ``BENCH_CODE``."""
    return Cache("dino-bench", code=BENCH_CODE)


def evaluate(model, split) -> dict[str, object]:
    """Fit and predict one split: MAE, RMSE, the share of test targets inside the central 90%
    and 95% predictive intervals, seconds, Adam steps kept (DINO); ``failed`` with the error
    line when the method raises a numerical error (recorded, not hidden).

    Transductive: the test inputs are passed as unlabelled target inputs ``Xu`` (their labels
    never are), as DINO's setting allows; every method receives the same data."""
    start = time.perf_counter()
    try:
        model.fit(split.Xs, split.ys, Xt=split.Xt, yt=split.yt, Xu=split.Xtest)
        pred, std = model.predict(split.Xtest, return_std=True)
    except RuntimeError as err:  # torch.linalg.LinAlgError included
        return {"failed": True, "error": f"{type(err).__name__}: {err}".splitlines()[0][:200],
                "mae": float("nan"), "rmse": float("nan"), "coverage90": float("nan"),
                "coverage95": float("nan"), "seconds": time.perf_counter() - start,
                "steps": float("nan")}
    abs_err = np.abs(pred - split.ytest)
    if not np.isfinite(abs_err).all() or not np.isfinite(std).all():
        return {"failed": True, "error": "non-finite predictions", "mae": float("nan"),
                "rmse": float("nan"), "coverage90": float("nan"), "coverage95": float("nan"),
                "seconds": time.perf_counter() - start, "steps": float("nan")}
    return {"failed": False, "error": "", "mae": float(abs_err.mean()),
            "rmse": float(np.sqrt((abs_err**2).mean())),
            "coverage90": float((abs_err <= Z90 * std).mean()),
            "coverage95": float((abs_err <= Z95 * std).mean()),
            "seconds": time.perf_counter() - start,
            "steps": float(getattr(model, "selected_steps_", float("nan")))}


def _task_mmd(task: Task, profile: Profile, cache: Cache) -> dict[str, object]:
    """Unbiased MMD^2 between the (standardised) domains in the RKHS of the default NTK."""
    split = split_task(task, 0, min(profile.labels), profile.max_source, profile.max_test)
    Xs = torch.from_numpy(split.Xs)
    Xt = torch.from_numpy(np.vstack([split.Xt, split.Xtest]))
    key = content_key("mmd-u-statistic-boot", task.name, split.Xs, split.Xt)
    if not cache.has_json(key):
        kernel = base_kernel("ntk", 2, 1.0, 1.0)
        value, low, high = mmd_with_bootstrap(Xs, Xt, kernel)
        cache.save_json(key, {"mmd2": value, "low": low, "high": high})
    result = cast(dict[str, Any], cache.load_json(key))
    return {"task": task.name, "description": task.description, "n_source": len(task.Xs),
            "n_target": len(task.Xt), **result}


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per task, labels and method: MAE and RMSE as ``mean ± sd`` over the seeds that
    ran, mean 90% and 95% coverage, seconds, and failed runs out of all."""
    rows = []
    for (task, labels, method), group in runs.groupby(["task", "labels", "method"], sort=False):
        ok = group[~group["failed"].astype(bool)]
        row = {"task": task, "labels": int(labels), "method": method,
               "MAE": _mean_sd(ok["mae"]), "RMSE": _mean_sd(ok["rmse"]),
               "coverage90": _mean(ok["coverage90"], 2), "coverage95": _mean(ok["coverage95"], 2),
               "seconds": _mean(ok["seconds"], 1), "failed": f"{len(group) - len(ok)}/{len(group)}"}
        rows.append(row)
    return pd.DataFrame(rows)


def _mean_sd(values: pd.Series) -> str:
    if not len(values):
        return "-"
    sd = values.std(ddof=1) if len(values) > 1 else float("nan")
    return f"{values.mean():.4f} ± {sd:.4f}"


def _mean(values: pd.Series, digits: int) -> float:
    return round(float(values.mean()), digits) if len(values) else float("nan")


def defaults_check(runs: pd.DataFrame, default: str = DEFAULT,
                   against: tuple[str, ...] = (WARM, POOLED_RIDGE)) -> pd.DataFrame:
    """Per task and labels, the default's MAE minus each reference method's, paired by seed:
    mean and standard error of the difference; it loses beyond noise when the mean excess is
    above twice its standard error (about a one-sided 2.5% test under normality)."""
    rows = []
    for (task, labels), group in runs.groupby(["task", "labels"], sort=False):
        mae = group.pivot_table(index="seed", columns="method", values="mae")
        if default not in mae:
            continue
        for other in against:
            if other not in mae:
                continue
            diff = (mae[default] - mae[other]).dropna()
            if len(diff) < 2:
                continue
            se = diff.std(ddof=1) / np.sqrt(len(diff))
            rows.append({"task": task, "labels": int(labels), "against": other,
                         "excess MAE": round(float(diff.mean()), 4),
                         "se": round(float(se), 4), "seeds": len(diff),
                         "loses beyond noise": bool(diff.mean() > 2 * se)})
    return pd.DataFrame(rows)


def coverage_table(runs: pd.DataFrame, column: str = "coverage90") -> pd.DataFrame:
    """Mean share of test targets inside each method's central 90% (or 95%) interval, one
    column per task and labels."""
    ok = runs[~runs["failed"].astype(bool)]
    table = ok.groupby(["method", "task", "labels"], sort=False)[column].mean().unstack(
        ["task", "labels"])
    table.columns = [f"{task} ({labels})" for task, labels in table.columns]
    return table.round(3)


def ranks(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean MAE rank of each method across (task, labels) cells (1 = best; a method that failed
    on every seed of a cell ranks last there), and the cells it won."""
    means = runs.groupby(["task", "labels", "method"])["mae"].mean().unstack()
    rank = means.rank(axis=1, na_option="bottom").mean().sort_values()
    wins = (means.eq(means.min(axis=1), axis=0)).sum()
    return pd.DataFrame({"mean MAE rank": rank.round(2), "cells won": wins[rank.index]})

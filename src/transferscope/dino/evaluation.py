"""Run every method on every task and seed; MAE/RMSE mean and std; MMD per task.

Each (task, seed, method, settings) result is cached as JSON, so an interrupted run resumes
where it stopped and a finished one is re-tabulated instantly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch

from transferscope.core.cache import Cache, content_key
from transferscope.core.progress import step_progress
from transferscope.dino.baselines import BASELINES
from transferscope.dino.datasets import REAL_TASKS, Task, split_task, synthetic_task
from transferscope.dino.estimator import DINORegressor, authors_dino
from transferscope.dino.kernels import base_kernel
from transferscope.dino.mmd import mmd_with_bootstrap


@dataclass
class Profile:
    """What a benchmark run covers."""

    synthetic: list[tuple[str, float]] = field(default_factory=lambda: [("covariate", 2.0),
                                                                        ("concept", 1.0)])
    real: list[str] = field(default_factory=lambda: list(REAL_TASKS))
    seeds: int = 5
    n_labelled: int = 100
    max_source: int = 150
    max_test: int = 300


PROFILES = {
    "quick": Profile(synthetic=[("covariate", 2.0)], real=["cps1988-south", "ames-north"],
                     seeds=5, max_source=100, max_test=200),
    "standard": Profile(),
}


def methods(profile: Profile, seed: int) -> dict[str, object]:
    """Every compared estimator, freshly constructed (same kernel settings everywhere); DINO
    runs with its default settings, as a user gets it."""
    out: dict[str, object] = {
        "DINO-INIT (nngp)": DINORegressor(kernel="nngp", random_state=seed),
        "DINO-TRAIN (ntk)": DINORegressor(kernel="ntk", random_state=seed),
        "DINO (authors' preset)": authors_dino(random_state=seed),
    }
    for name, cls in BASELINES.items():
        out[name] = cls(random_state=seed)
    out["fine-tuned MLP"].set_params(pretrain_epochs=100, finetune_steps=100)
    return out


def tasks(profile: Profile) -> list[Task]:
    """The profile's synthetic and real tasks, in that order."""
    out = [synthetic_task(kind, strength) for kind, strength in profile.synthetic]
    return out + [REAL_TASKS[name]() for name in profile.real]


def run_benchmark(
    profile: Profile, show_progress: bool = True, only_tasks: list[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-run errors (one row per task, seed, method) and the per-task MMD table."""
    cache = Cache("dino-bench")
    all_tasks = [t for t in tasks(profile) if only_tasks is None or t.name in only_tasks]
    names = list(methods(profile, 0))
    rows, mmd_rows = [], []
    total = len(all_tasks) * profile.seeds * len(names)
    with step_progress("DINO benchmark", total, show_progress) as advance:
        for task in all_tasks:
            mmd_rows.append(_task_mmd(task, profile, cache))
            for seed in range(profile.seeds):
                split = split_task(task, seed, profile.n_labelled, profile.max_source,
                                   profile.max_test)
                for name, model in methods(profile, seed).items():
                    key = content_key("run", task.name, seed, name, model.get_params(),
                                      asdict(profile) | {"synthetic": None, "real": None},
                                      split.ytest)
                    if cache.has_json(key):
                        result = cache.load_json(key)
                    else:
                        result = _evaluate(model, split)
                        cache.save_json(key, result)
                    rows.append({"task": task.name, "seed": seed, "method": name, **result})
                    advance()
    return pd.DataFrame(rows), pd.DataFrame(mmd_rows)


def _evaluate(model, split) -> dict[str, float]:
    """MAE, RMSE and the share of test targets inside the central 95% predictive interval.

    Transductive: the test inputs are passed as unlabelled target inputs ``Xu`` (their labels
    never are), as DINO's setting allows; every method receives the same data."""
    model.fit(split.Xs, split.ys, Xt=split.Xt, yt=split.yt, Xu=split.Xtest)
    pred, std = model.predict(split.Xtest, return_std=True)
    err = pred - split.ytest
    return {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err**2).mean())),
            "coverage95": float((np.abs(err) <= 1.959963984540054 * std).mean())}


def _task_mmd(task: Task, profile: Profile, cache: Cache) -> dict[str, object]:
    """Unbiased MMD^2 between the (standardised) domains in the RKHS of the default NTK."""
    split = split_task(task, 0, profile.n_labelled, profile.max_source, profile.max_test)
    Xs = torch.from_numpy(split.Xs)
    Xt = torch.from_numpy(np.vstack([split.Xt, split.Xtest]))
    key = content_key("mmd-u-statistic-boot", task.name, split.Xs, split.Xt)
    if not cache.has_json(key):
        kernel = base_kernel("ntk", 2, 1.0, 1.0)
        value, low, high = mmd_with_bootstrap(Xs, Xt, kernel)
        cache.save_json(key, {"mmd2": value, "low": low, "high": high})
    result = cache.load_json(key)
    return {"task": task.name, "description": task.description, "n_source": len(task.Xs),
            "n_target": len(task.Xt), **result}


GOAL_METHODS = ("DINO-INIT (nngp)", "DINO-TRAIN (ntk)")
GOAL_BASELINES = ("target-only GP", "adaptive GP")


def goal_check(runs: pd.DataFrame) -> pd.DataFrame:
    """Per task and default DINO variant: its mean MAE minus the better of the target-only and
    adaptive GPs' mean MAE, against one std of DINO's MAE over seeds (the goal: excess <= std),
    and its 95%-interval coverage."""
    means = runs.groupby(["task", "method"])["mae"].mean()
    stds = runs.groupby(["task", "method"])["mae"].std()
    coverage = runs.groupby(["task", "method"])["coverage95"].mean()
    rows = []
    for task in dict.fromkeys(runs["task"]):
        best = min(GOAL_BASELINES, key=lambda m: means[(task, m)])
        for method in GOAL_METHODS:
            excess = means[(task, method)] - means[(task, best)]
            rows.append({"task": task, "method": method, "MAE": round(means[(task, method)], 4),
                         "better baseline": best, "its MAE": round(means[(task, best)], 4),
                         "excess": round(excess, 4), "std": round(stds[(task, method)], 4),
                         "coverage95": round(coverage[(task, method)], 3),
                         "goal met": bool(excess <= stds[(task, method)])})
    return pd.DataFrame(rows)


def coverage_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean share of test targets inside each method's central 95% predictive interval."""
    return runs.groupby(["method", "task"], sort=False)["coverage95"].mean().unstack().round(3)


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """``mean ± std`` of MAE and RMSE over seeds, one row per method, one column pair per task."""
    grouped = runs.groupby(["task", "method"])[["mae", "rmse"]].agg(["mean", "std"])
    cells = {}
    for (task, method), row in grouped.iterrows():
        for metric in ("mae", "rmse"):
            cells.setdefault(method, {})[f"{task} {metric.upper()}"] = (
                f"{row[(metric, 'mean')]:.3f} ± {row[(metric, 'std')]:.3f}")
    order = list(dict.fromkeys(runs["method"]))
    return pd.DataFrame.from_dict(cells, orient="index").loc[order]


def ranks(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean MAE rank of each method across tasks (1 = best), and wins (best mean MAE)."""
    means = runs.groupby(["task", "method"])["mae"].mean().unstack()
    rank = means.rank(axis=1).mean().sort_values()
    wins = (means.eq(means.min(axis=1), axis=0)).sum()
    return pd.DataFrame({"mean MAE rank": rank.round(2), "tasks won": wins[rank.index]})

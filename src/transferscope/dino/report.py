"""The DINO report: benchmark table with seed spread, per-task MMD, finite-width convergence.

Also the library calls behind ``dino bench`` and ``dino report`` (run the benchmark, write its
tables and report) and the demo's error-bar figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from transferscope.core.report import Report
from transferscope.dino.evaluation import (
    Profile,
    coverage_table,
    goal_check,
    ranks,
    run_benchmark,
    summary_table,
)
from transferscope.dino.finite import width_sweep
from transferscope.dino.io import write_csv


@dataclass
class BenchFiles:
    """The tables ``write_bench`` computed and the files it wrote."""

    summary: pd.DataFrame
    ranks: pd.DataFrame
    goal: pd.DataFrame
    runs_csv: Path
    summary_csv: Path
    report: Path


def write_bench(profile: Profile, out: str | Path, show_progress: bool = True) -> BenchFiles:
    """Run every method on the profile's tasks (cached, resumable); write ``runs.csv``,
    ``summary.csv`` and the report (without the finite-width check) into ``out``."""
    out = Path(out)
    runs, mmd = run_benchmark(profile, show_progress=show_progress)
    runs_csv = write_csv(out / "runs.csv", runs)
    table = summary_table(runs)
    summary_csv = write_csv(out / "summary.csv", table, index=True)
    path = write_report(runs, mmd, out, finite_width=None)
    return BenchFiles(table, ranks(runs), goal_check(runs), runs_csv, summary_csv, path)


def write_full_report(profile: Profile, out: str | Path) -> Path:
    """The report with the finite-width check: benchmark (from the cache), MMD, width sweep."""
    runs, mmd = run_benchmark(profile)
    return write_report(runs, mmd, Path(out), finite_width=width_sweep())


def write_report(runs: pd.DataFrame, mmd: pd.DataFrame, out: Path,
                 finite_width: pd.DataFrame | None) -> Path:
    """Write ``index.html`` + ``report.md`` into ``out``; returns the HTML path."""
    n_seeds = runs["seed"].nunique()
    report = Report(
        "DINO: distribution-informed domain-adaptation regression",
        "DINO-INIT (NNGP base kernel) and DINO-TRAIN (NTK base kernel), with default settings, "
        "and DINO with the authors' released settings, against eight baselines "
        f"on offline tasks; every number is mean ± std over {n_seeds} seeds (random source "
        "subsample, labelled-target draw and test set per seed). Transductive: every method "
        "receives the test inputs (never their labels) as unlabelled target inputs.",
    )
    report.section("Target-domain error", "MAE and RMSE on the held-out target rows.").table(
        summary_table(runs).reset_index(names="method"), caption="mean ± std over seeds")
    report.section(
        "Predictive intervals",
        "Share of held-out target rows inside each method's central 95% predictive interval "
        "(0.95 for calibrated intervals).",
    ).table(coverage_table(runs).reset_index(), caption="coverage of the 95% interval")
    report.section(
        "Defaults check",
        "DINO with default settings against the better of the target-only GP and the adaptive GP: "
        "the goal is an excess mean MAE of at most one std of DINO's MAE over seeds.",
    ).table(goal_check(runs), caption="excess MAE per task")
    report.section("Ranking", "Mean rank of each method's mean MAE across tasks.").table(
        ranks(runs).reset_index(names="method"), caption="1 = best")
    report.section(
        "Domain discrepancy",
        "Unbiased MMD² between source and target inputs in the RKHS of the NTK (depth 2, "
        "w_std 1, b_std 1), with a 95% bootstrap interval: the quantity DINO's generalisation "
        "bound is stated in.",
    ).table(mmd, caption="MMD² per task")
    if finite_width is not None:
        section = report.section(
            "Finite-width check",
            "Distribution-informed ReLU networks of growing width, trained by gradient descent, "
            "approach the DINO-TRAIN kernel predictor (relative L2 distance of predictions).",
        )
        summary = finite_width.groupby("width")["relative_error"].agg(["mean", "std"])
        section.table(summary.reset_index(), caption="relative distance, mean ± std over inits")
        section.figure(_width_figure(summary), caption="distance to DINO-TRAIN vs width")
    return report.write(out)


def _width_figure(summary: pd.DataFrame):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.errorbar(summary.index, summary["mean"], yerr=summary["std"], marker="o", capsize=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("hidden width")
    ax.set_ylabel("relative distance to DINO-TRAIN")
    fig.tight_layout()
    return fig


def mae_figure(runs: pd.DataFrame):
    """Target MAE per method, one panel per task: mean bar and seed std whisker (DINO in red)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stats = runs.groupby(["task", "method"])["mae"].agg(["mean", "std"]).reset_index()
    tasks = list(dict.fromkeys(runs["task"]))
    methods = list(dict.fromkeys(runs["method"]))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 4.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        sub = stats[stats["task"] == task].set_index("method").loc[methods]
        colors = ["#c0392b" if m.startswith("DINO") else "#5d7a99" for m in methods]
        ax.barh(range(len(methods)), sub["mean"], xerr=sub["std"], color=colors, capsize=3)
        ax.set_yticks(range(len(methods)))
        ax.set_yticklabels(methods if ax is axes[0][0] else [""] * len(methods), fontsize=8)
        ax.invert_yaxis()
        ax.set_title(task, fontsize=10)
        ax.set_xlabel("target MAE (mean ± std over seeds)")
    fig.tight_layout()
    return fig

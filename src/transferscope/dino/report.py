"""The DINO report: few-label table with seed spread and coverage, defaults check, MMD per task,
finite-width convergence.

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
    defaults_check,
    ranks,
    run_benchmark,
    summary_table,
)
from transferscope.dino.finite import width_sweep
from transferscope.dino.io import write_csv


@dataclass(kw_only=True)
class BenchResult:
    """What a benchmark run computed (per-run rows, per-task MMD and the tables drawn from
    them) and, when it was asked to write them, the files (else ``None``)."""

    runs: pd.DataFrame
    mmd: pd.DataFrame
    summary: pd.DataFrame
    ranks: pd.DataFrame
    defaults: pd.DataFrame
    coverage: pd.DataFrame
    runs_csv: Path | None = None
    summary_csv: Path | None = None
    report: Path | None = None


def write_bench(profile: Profile, out: str | Path | None,
                show_progress: bool = True) -> BenchResult:
    """Run every method on the profile's tasks (cached, resumable) and tabulate; with ``out``,
    write ``runs.csv``, ``summary.csv`` and the report (without the finite-width check)."""
    runs, mmd = run_benchmark(profile, show_progress=show_progress)
    result = BenchResult(runs=runs, mmd=mmd, summary=summary_table(runs), ranks=ranks(runs),
                         defaults=defaults_check(runs), coverage=coverage_table(runs))
    if out is not None:
        out = Path(out)
        result.runs_csv = write_csv(out / "runs.csv", runs)
        result.summary_csv = write_csv(out / "summary.csv", result.summary)
        result.report = write_report(runs, mmd, out, finite_width=None)
    return result


def write_full_report(profile: Profile, out: str | Path) -> Path:
    """The report with the finite-width check: benchmark (from the cache), MMD, width sweep."""
    runs, mmd = run_benchmark(profile)
    return write_report(runs, mmd, Path(out), finite_width=width_sweep())


def write_report(runs: pd.DataFrame, mmd: pd.DataFrame, out: Path,
                 finite_width: pd.DataFrame | None) -> Path:
    """Write ``index.html`` + ``report.md`` into ``out``; returns the HTML path."""
    n_seeds = runs["seed"].nunique()
    labels = ", ".join(str(v) for v in sorted(runs["labels"].unique()))
    report = Report(
        "DINO: distribution-informed domain-adaptation regression at few labels",
        f"Each method on each table with {labels} labelled target rows; every number is the "
        f"mean (± sd) over {n_seeds} seeds (random source subsample, labelled-target draw and "
        "test rows per seed). Transductive: every method receives the test inputs (never their "
        "labels) as unlabelled target inputs. A run that raised an error counts as failed.",
    )
    report.section("Target-domain error and interval coverage",
                   "MAE and RMSE on the held-out target rows; the share of them inside each "
                   "method's central 90% and 95% predictive intervals.").table(
        summary_table(runs), caption="mean ± sd over seeds")
    report.section(
        "Defaults check",
        "The default DINO's MAE minus the reference method's, paired by seed: it loses beyond "
        "noise when the mean excess is above twice its standard error.",
    ).table(defaults_check(runs), caption="excess MAE per task and labels")
    report.section(
        "90% interval coverage",
        "Share of held-out target rows inside each method's central 90% predictive interval "
        "(0.90 for calibrated intervals).",
    ).table(coverage_table(runs).reset_index(), caption="coverage of the 90% interval")
    report.section("Ranking", "Mean rank of each method's mean MAE across (task, labels).").table(
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
    """Target MAE per method, one panel per (task, labels): mean bar and seed sd whisker (DINO
    in red); failed runs are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = runs[~runs["failed"].astype(bool)]
    stats = ok.groupby(["task", "labels", "method"])["mae"].agg(["mean", "std"]).reset_index()
    cells = list(dict.fromkeys(zip(runs["task"], runs["labels"], strict=True)))
    methods = list(dict.fromkeys(runs["method"]))
    fig, axes = plt.subplots(1, len(cells), figsize=(4.2 * len(cells), 4.2), squeeze=False)
    for ax, (task, labels) in zip(axes[0], cells, strict=True):
        sub = stats[(stats["task"] == task) & (stats["labels"] == labels)].set_index(
            "method").reindex(methods)
        colors = ["#c0392b" if "DINO" in m else "#5d7a99" for m in methods]
        ax.barh(range(len(methods)), sub["mean"], xerr=sub["std"], color=colors, capsize=3)
        ax.set_yticks(range(len(methods)))
        ax.set_yticklabels(methods if ax is axes[0][0] else [""] * len(methods), fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{task}, {labels} labels", fontsize=10)
        ax.set_xlabel("target MAE (mean ± sd over seeds)")
    fig.tight_layout()
    return fig

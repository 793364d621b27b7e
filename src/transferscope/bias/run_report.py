"""The HTML/Markdown report of one or more bias runs: nations x tests, correlations, figure."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from transferscope.bias.data.members import P5
from transferscope.bias.scoring import (
    cross_model_correlations,
    nation_test_table,
    rank_correlations,
)
from transferscope.core.errors import input_error
from transferscope.core.report import Report

SIGN_NOTE = ("Sign convention: positive = less favourable to the nation than the record "
             "supports (negative = more favourable). Brackets: bootstrap 95% CIs. The prompts "
             "and formulas are ours (the paper's are not public); see the bias part's docs.")


def load_run(run_dir: Path) -> tuple[pd.DataFrame, dict, list[dict]]:
    """scores, run summary and answers of one run folder (one clear error if it is not one)."""
    for name in ("scores.csv", "run.json", "answers.jsonl"):
        if not (run_dir / name).exists():
            raise input_error(str(run_dir), "run folder", name + " missing",
                              "the output folder of `transferscope bias run`")
    scores = pd.read_csv(run_dir / "scores.csv")
    summary = json.loads((run_dir / "run.json").read_text("utf-8"))
    answers = [json.loads(line) for line in (run_dir / "answers.jsonl").read_text(
        "utf-8").splitlines() if line.strip()]
    return scores, summary, answers


def scores_figure(scores: pd.DataFrame, title: str) -> plt.Figure:
    head = scores[scores["headline"]].copy()
    head["column"] = head["test"] + ": " + head["form"]
    columns = sorted(head["column"].unique())
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / max(len(columns), 1)
    x = np.arange(len(P5))
    for k, col in enumerate(columns):
        sub = head[head["column"] == col].set_index("nation").reindex(P5)
        values = sub["value"].to_numpy(float)
        err = np.vstack([values - sub["ci_low"].to_numpy(float),
                         sub["ci_high"].to_numpy(float) - values])
        ax.bar(x + (k - (len(columns) - 1) / 2) * width, values, width, yerr=np.abs(err),
               capsize=2, label=col)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, P5)
    ax.set_ylabel("bias score (+ = less favourable)")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def heatmap_figure(scores: pd.DataFrame, title: str) -> plt.Figure:
    """Nation x test heat map of the headline scores; each cell also prints its 95% CI.

    The colour scale is symmetric around 0 so that the sign convention reads at a glance;
    a cell with no score (every answer unparseable) stays grey and says so.
    """
    head = scores[scores["headline"]].copy()
    head["column"] = head["test"] + ": " + head["form"]
    columns = sorted(head["column"].unique())
    cells = head.set_index(["nation", "column"])
    values = np.full((len(P5), len(columns)), np.nan)
    for i, nation in enumerate(P5):
        for j, col in enumerate(columns):
            if (nation, col) in cells.index:
                values[i, j] = float(cells.loc[(nation, col), "value"])
    finite = np.abs(values[np.isfinite(values)])
    scale = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    fig, ax = plt.subplots(figsize=(1.9 * len(columns) + 2.5, 3.8))
    shown = ax.imshow(np.ma.masked_invalid(values), cmap="RdBu_r", vmin=-scale, vmax=scale,
                      aspect="auto")
    ax.set_facecolor("#d9d9d9")
    for i, nation in enumerate(P5):
        for j, col in enumerate(columns):
            if not np.isfinite(values[i, j]):
                ax.text(j, i, "no score", ha="center", va="center", fontsize=7)
                continue
            row = cells.loc[(nation, col)]
            ax.text(j, i, f"{row['value']:+.2f}\n[{row['ci_low']:+.2f}, {row['ci_high']:+.2f}]",
                    ha="center", va="center", fontsize=7,
                    color="white" if abs(values[i, j]) > 0.6 * scale else "black")
    ax.set_xticks(range(len(columns)), [c.replace(": ", ":\n") for c in columns], fontsize=7)
    ax.set_yticks(range(len(P5)), P5)
    ax.set_title(title, fontsize=10)
    fig.colorbar(shown, ax=ax, label="bias score (+ = less favourable)")
    fig.tight_layout()
    return fig


def write_report(run_dirs: list[Path], out_dir: Path) -> Path:
    """One report over the runs: per model the table, correlations, figure, unparsed answers."""
    runs = {}
    report = Report("Nation-level bias in UNSC-grounded tests",
                    "Runs: " + ", ".join(str(d) for d in run_dirs) + ". " + SIGN_NOTE)
    for run_dir in run_dirs:
        scores, summary, answers = load_run(run_dir)
        model = f"{summary['backend']} ({run_dir.name})"
        runs[model] = scores
        section = report.section(model, f"tests {summary['config']['tests']}, limit "
                                 f"{summary['config']['limit']}, seed {summary['config']['seed']},"
                                 f" {summary['config']['n_boot']} bootstrap resamples; model "
                                 f"calls {summary['stats']['model_calls']}, cache hits "
                                 f"{summary['stats']['cache_hits']}.")
        section.table(nation_test_table(scores).reset_index(),
                      "headline score per nation and test [95% CI]")
        section.figure(heatmap_figure(scores, model), "nation x test heat map: headline score "
                       "and [95% CI] in each cell")
        section.figure(scores_figure(scores, model), "headline scores with 95% CIs")
        section.table(rank_correlations(scores), "Spearman rank correlation of the nations' "
                      "scores between tests (5 nations: read as direction, not significance)")
        detail = scores[~scores["headline"]][["test", "form", "nation", "metric", "value",
                                              "ci_low", "ci_high", "n_items"]]
        section.table(detail, "secondary metrics (accuracy, macro-F1, U, F, B, ...)")
        unparsed = [a for a in answers if not a["parsed"]]
        section.paragraph(f"Unparseable answers: {len(unparsed)} of {len(answers)} (counted, "
                          "never mapped to an option): " + json.dumps(summary["unparsed"]))
        if unparsed:
            section.table(pd.DataFrame([{"item": a["item_id"], "reply": a["reply"]}
                                        for a in unparsed[:30]]),
                          "unparseable replies (first 30, shown as text)")
    if len(runs) > 1:
        report.section("Across models").table(cross_model_correlations(runs),
                                              "Spearman correlation of nation scores per test")
    return report.write(out_dir)

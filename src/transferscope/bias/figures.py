"""The bias part's figures: headline scores per nation and test, and before/after debiasing.

Each function returns a matplotlib Figure (the caller saves or embeds it) drawn on the Agg
backend: these figures go to files and reports, never to a window.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from transferscope.bias.data.members import P5
from transferscope.bias.scoring import MIN_DRAFTS, flagged


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def scores_figure(scores: pd.DataFrame, title: str) -> Any:
    """Bars of each nation's headline score per test and form, with 95% CIs."""
    plt = _pyplot()
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


def heatmap_figure(scores: pd.DataFrame, title: str) -> Any:
    """Nation x test heat map of the headline scores; each cell also prints its 95% CI, n
    (drafts compared) and adjusted p-value.

    The colour scale is symmetric around 0 so that the sign convention reads at a glance. A
    cell with no score (every answer unparseable) or too few drafts to carry one (n below
    :data:`~transferscope.bias.scoring.MIN_DRAFTS`) stays grey and shows no score; "*" marks a
    cell that claims a bias (adjusted p below 0.05, no flag), "(!)" one whose flag says why it
    cannot carry a claim.
    """
    plt = _pyplot()
    head = scores[scores["headline"].astype(bool)].copy()
    head["column"] = head["test"] + ": " + head["form"]
    columns = sorted(head["column"].unique())
    cells = head.set_index(["nation", "column"])
    values = np.full((len(P5), len(columns)), np.nan)
    for i, nation in enumerate(P5):
        for j, col in enumerate(columns):
            if (nation, col) in cells.index and cells.loc[(nation, col), "n_items"] >= MIN_DRAFTS:
                values[i, j] = float(cells.loc[(nation, col), "value"])
    finite = np.abs(values[np.isfinite(values)])
    scale = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    fig, ax = plt.subplots(figsize=(1.9 * len(columns) + 2.5, 4.2))
    shown = ax.imshow(np.ma.masked_invalid(values), cmap="RdBu_r", vmin=-scale, vmax=scale,
                      aspect="auto")
    ax.set_facecolor("#d9d9d9")
    for i, nation in enumerate(P5):
        for j, col in enumerate(columns):
            if (nation, col) not in cells.index:
                ax.text(j, i, "no score", ha="center", va="center", fontsize=7)
                continue
            row = cells.loc[(nation, col)]
            if not np.isfinite(values[i, j]):
                why = "no score" if not np.isfinite(row["value"]) else "no score:\ntoo few drafts"
                ax.text(j, i, f"{why}\nn={int(row['n_items'])}", ha="center", va="center",
                        fontsize=7)
                continue
            p_adj = row.get("p_adj", np.nan)
            mark = (f"\nn={int(row['n_items'])}"
                    + (f" p={p_adj:.2g}" if np.isfinite(p_adj) else "")
                    + (" *" if bool(row.get("claim", False)) else "")
                    + (" (!)" if flagged(row.get("flag")) else ""))
            ax.text(j, i, f"{row['value']:+.2f}\n[{row['ci_low']:+.2f}, {row['ci_high']:+.2f}]"
                    f"{mark}",
                    ha="center", va="center", fontsize=7,
                    color="white" if abs(values[i, j]) > 0.6 * scale else "black")
    ax.set_xticks(range(len(columns)), [c.replace(": ", ":\n") for c in columns], fontsize=7)
    ax.set_yticks(range(len(P5)), P5)
    ax.set_title(title + "\n(each nation vs the median of the others on the same drafts; "
                 "p adjusted over the cells; * claims a bias)", fontsize=9)
    fig.colorbar(shown, ax=ax, label="bias score (+ = less favourable)")
    fig.tight_layout()
    return fig


def before_after_figure(before: pd.DataFrame, after: pd.DataFrame, title: str) -> Any:
    """One panel per test and form: each nation's headline score before and after, 95% CIs."""
    plt = _pyplot()
    heads = [(t, f) for t, f in before[before["headline"].astype(bool)][["test", "form"]]
             .drop_duplicates().itertuples(index=False)]
    fig, axes = plt.subplots(1, max(1, len(heads)), figsize=(3.2 * max(1, len(heads)), 3.4),
                             squeeze=False, sharey=True)
    for ax, (test, form) in zip(axes[0], heads, strict=False):
        for offset, (label, frame) in zip((-0.15, 0.15), (("before", before), ("after", after)),
                                          strict=True):
            rows = frame[(frame["test"] == test) & (frame["form"] == form)
                         & frame["headline"].astype(bool)]
            x = np.arange(len(rows)) + offset
            value = rows["value"].to_numpy(float)
            err = np.vstack([value - rows["ci_low"].to_numpy(float),
                             rows["ci_high"].to_numpy(float) - value])
            ax.errorbar(x, value, yerr=np.nan_to_num(err), fmt="o", capsize=3, label=label)
            ax.set_xticks(np.arange(len(rows)), [str(n)[:6] for n in rows["nation"]],
                          rotation=45)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_title(f"{test} ({form})", fontsize=9)
    axes[0][0].set_ylabel("bias (+ = less favourable)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def change_figure(comparison: pd.DataFrame, summary: pd.DataFrame, title: str) -> Any:
    """Left: overall mean |bias| and accuracy before/after; right: each headline change with
    its paired 95% CI (a bar crossing 0 is no evidence of change)."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2),
                                      gridspec_kw={"width_ratios": [1, 2.2]})
    rows = [r for r in ("mean |bias|", "factual accuracy") if r in summary.index]
    x = np.arange(len(rows))
    left.bar(x - 0.18, [summary.loc[r, "before"] for r in rows], 0.36, label="before",
             color="#9aa7b8")
    left.bar(x + 0.18, [summary.loc[r, "after"] for r in rows], 0.36, label="after",
             color="#c0392b")
    for k, r in enumerate(rows):
        s = summary.loc[r]
        left.annotate(f"Δ {s['change']:+.2f}\n[{s['ci_low']:+.2f}, {s['ci_high']:+.2f}]",
                      (k, max(s["before"], s["after"])), ha="center", va="bottom", fontsize=7)
    left.set_xticks(x, rows)
    left.set_ylim(0, max(1.0, float(summary.loc[rows, ["before", "after"]].max().max()) * 1.35))
    left.legend(fontsize=8)
    left.set_title("overall (paired bootstrap CI of the change)", fontsize=9)
    head = comparison[comparison["headline"].astype(bool)].reset_index(drop=True)
    labels = head["test"] + ": " + head["form"] + " / " + head["nation"]
    y = np.arange(len(head))
    change = head["change"].to_numpy(float)
    err = np.vstack([change - head["change_ci_low"].to_numpy(float),
                     head["change_ci_high"].to_numpy(float) - change])
    right.errorbar(change, y, xerr=np.abs(err), fmt="o", color="#c0392b", capsize=2,
                   markersize=3)
    right.axvline(0, color="black", linewidth=0.8)
    right.set_yticks(y, labels, fontsize=6)
    right.invert_yaxis()
    right.set_xlabel("after - before, headline bias score (+ = less favourable)")
    right.set_title("per nation and test, paired 95% CI", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig

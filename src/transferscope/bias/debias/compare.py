"""Before/after and across-model comparisons of bias runs, with paired bootstrap CIs.

Paired bootstrap (ours): the before and after runs answer the *same* items, so each resample
draws drafts once (with replacement; every item of a drawn draft, all tests, forms and
nations, comes along, as in the probes' own intervals) and rescores both runs on that same
draw with the probes' own scoring. The change's 95% CI is the percentile interval of
(after - before) and its two-sided p-value the bootstrap's, both by
:func:`transferscope.core.stats.cluster_interval` (never a zero-width interval: a change that
is the same on every draw is widened by the exact binomial bound). The resampling is
:func:`transferscope.core.stats.cluster_bootstrap` over the drafts.

Overall summaries: *|bias|* is the mean absolute headline score over every test, form and
nation; *factual accuracy* is DirectQA's mean accuracy over nations (vote accuracy when a run
has no DirectQA). Across models, their Pearson correlation is computed on every resample
(drafts resampled within each model) for a CI; it needs at least three models.

Mean |bias| is a folded statistic: resampling adds noise that the absolute value turns into
extra |bias|, so the resamples sit above the point estimate (with two items per cell the plain
percentile interval can miss the estimate altogether). Its CI is therefore the percentile
interval shifted down by the resamples' own bias, ``mean(theta*) - theta_hat``, and floored
at 0 (ours: the bootstrap bias correction applied to the interval).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from transferscope.bias import preflight
from transferscope.bias.config import CompareConfig
from transferscope.bias.data.record import Record
from transferscope.bias.evaluate import ItemsFile, RunConfig, build_run_items, read_answers
from transferscope.bias.probes.base import Answer, Item, Probe
from transferscope.bias.report import write_models_report
from transferscope.bias.run_files import read_summary
from transferscope.core.errors import input_error
from transferscope.core.stats import (
    bootstrap_p_value,
    cluster_bootstrap,
    cluster_interval,
    pearson,
    percentile_interval,
)

KEY = ["test", "form", "nation", "metric"]


@dataclass(kw_only=True)
class RunItems:
    """A run's probes, items and answers, rebuilt from its folder (or held from a live run)."""

    label: str
    probes: list[Probe]
    items: dict[str, list[Item]]
    answers: dict[str, dict[str, Answer]]


def _choice(item: Item, value: object) -> object:
    if value is None:
        return None
    return frozenset(value) if isinstance(value, list) else value


def load_run_items(run_dir: Path, record: Record | None = None,
                   items_file: ItemsFile | None = None) -> RunItems:
    """Rebuild a run folder's items from its config and attach its stored answers
    (``items_file``: the config's items file when the caller has read it)."""
    for name in ("run.json", "answers.jsonl"):
        if not (run_dir / name).exists():
            raise input_error(str(run_dir), "run folder", f"{name} missing",
                              "a folder written by `transferscope bias run` or `bias debias`")
    summary = read_summary(run_dir)
    config = summary["config"]
    known = {f.name for f in dataclasses.fields(RunConfig)}
    probes, items, _ = build_run_items(RunConfig(**{k: v for k, v in config.items()
                                                     if k in known}), record, items_file)
    stored = {row["item_id"]: row for row in read_answers(run_dir)}
    answers: dict[str, dict[str, Answer]] = {}
    for probe in probes:
        answers[probe.name] = {}
        for item in items[probe.name]:
            if item.item_id not in stored:
                raise input_error(str(run_dir / "answers.jsonl"), "item_id", item.item_id,
                                  "an answer for every item the run's config builds")
            row = stored[item.item_id]
            logprobs = row.get("option_logprobs")
            answers[probe.name][item.item_id] = Answer(
                item_id=item.item_id, choice=_choice(item,
                                                     row["choice"]), text=row.get("reply") or "",
                method=row.get("method") or "parse",
                logprobs=tuple(-math.inf if logprobs[o] is None else float(logprobs[o])  # -inf: null
                      for o in item.options)
                if logprobs and item.options and all(o in logprobs for o in item.options)
                else None,
                token_counts=tuple(int(n) for n in row["token_counts"]) if row.get("token_counts") else None)
    return RunItems(label=f"{summary['backend']} ({run_dir.name})", probes=probes, items=items,
                    answers=answers)


def units(run: RunItems) -> list[str]:
    """Every draft (resampling unit) the run's items are about, across its probes."""
    return sorted({i.unit for items in run.items.values() for i in items})


def point_scores(run: RunItems, counts: np.ndarray | None = None) -> pd.DataFrame:
    """Every metric of every probe, without CIs; with ``counts`` (how often each of
    ``units(run)`` is drawn) on that resample: a draft drawn k times enters as k copies."""
    index = {u: k for k, u in enumerate(units(run))}
    parts = []
    for probe in run.probes:
        items = run.items[probe.name]
        if counts is not None:
            items = [dataclasses.replace(i, draft=f"{i.unit}#{k}") for i in items
                     for k in range(int(counts[index[i.unit]]))]
        parts.append(probe.score(items, run.answers[probe.name], 0, 0))
    return pd.concat(parts, ignore_index=True)[KEY + ["value", "headline"]]


def overall(scores: pd.DataFrame) -> dict[str, float]:
    """Mean |headline bias| over tests, forms and nations; factual accuracy (see module doc)."""
    head = scores[scores["headline"].astype(bool)]
    acc = scores[(scores["metric"] == "accuracy") & (scores["test"] == "directqa")]
    if acc.empty:
        acc = scores[scores["metric"] == "accuracy"]
    return {"mean |bias|": float(np.nanmean(np.abs(head["value"]))) if len(head) else np.nan,
            "factual accuracy": float(np.nanmean(acc["value"])) if len(acc) else np.nan}


def paired_change(before: RunItems, after: RunItems, n_boot: int, seed: int
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (test, form, nation, metric): before, after, change with paired CI and p-value;
    and the same for the overall summaries (plus the change in each |headline| score)."""
    base, new = point_scores(before), point_scores(after)
    table = base.merge(new, on=KEY + ["headline"], suffixes=("_before", "_after"))
    table["change"] = table["value_after"] - table["value_before"]
    table["abs_change"] = table["value_after"].abs() - table["value_before"].abs()
    summary = pd.DataFrame([overall(base), overall(new)], index=["before", "after"]).T
    index = table.set_index(KEY).index

    def changes(counts: np.ndarray) -> np.ndarray:
        b, a = point_scores(before, counts), point_scores(after, counts)  # the same drafts
        merged = b.merge(a, on=KEY + ["headline"], suffixes=("_b", "_a")).set_index(KEY)
        merged = merged.reindex(index)
        ob, oa = overall(b), overall(a)
        return np.concatenate([(merged["value_a"] - merged["value_b"]).to_numpy(float),
                               (merged["value_a"].abs() - merged["value_b"].abs()).to_numpy(float),
                               [oa[k] - ob[k] for k in summary.index]])

    draws = cluster_bootstrap(len(units(before)), changes, n_boot, seed).reshape(
        n_boot, 2 * len(table) + len(summary))
    n_units = len(units(before))
    bounds = [(-24.0, 24.0) if form == "rating" else (-2.0, 2.0) for form in table["form"]]
    for k, name in enumerate(("change", "abs_change")):
        arr = draws[:, k * len(table):(k + 1) * len(table)]
        cis = [cluster_interval(v, arr[:, j], n_units, b) for j, (v, b) in
               enumerate(zip(table[name], bounds, strict=True))]
        table[f"{name}_ci_low"] = [c[0] for c in cis]
        table[f"{name}_ci_high"] = [c[1] for c in cis]
        table[f"{name}_p"] = [c[2] for c in cis]
    arr = draws[:, 2 * len(table):]
    summary["change"] = summary["after"] - summary["before"]
    summary["ci_low"] = [percentile_interval(arr[:, j])[0] for j in range(len(summary))]
    summary["ci_high"] = [percentile_interval(arr[:, j])[1] for j in range(len(summary))]
    summary["p"] = [bootstrap_p_value(arr[:, j]) for j in range(len(summary))]
    summary["n_drafts"] = n_units  # below MIN_DRAFTS the change cannot carry a claim
    return table, summary


def models_accuracy_vs_bias(runs: Sequence[RunItems], n_boot: int, seed: int
                            ) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per model: factual accuracy and mean |bias| with CIs; their Pearson r across models."""
    keys = ("factual accuracy", "mean |bias|")
    points = np.array([[overall(point_scores(r))[k] for k in keys] for r in runs])
    # drafts resampled within each model, every model on its own draw
    rng = np.random.default_rng(seed)
    draws = np.full((n_boot, len(runs), 2), np.nan)
    for m, run in enumerate(runs):
        def statistic(c: np.ndarray, run: RunItems = run) -> list[float]:
            return [overall(point_scores(run, c))[k] for k in keys]

        draws[:, m, :] = cluster_bootstrap(len(units(run)), statistic, n_boot, rng)
    rows = []
    for m, run in enumerate(runs):
        acc_ci = percentile_interval(draws[:, m, 0])
        bias_ci = bias_corrected_ci(draws[:, m, 1], points[m, 1], floor=0.0)
        rows.append({"model": run.label, "factual accuracy": points[m, 0],
                     "accuracy ci_low": acc_ci[0], "accuracy ci_high": acc_ci[1],
                     "mean |bias|": points[m, 1], "|bias| ci_low": bias_ci[0],
                     "|bias| ci_high": bias_ci[1]})
    corr = {"models": len(runs), "pearson_r": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    if len(runs) >= 3:
        corr["pearson_r"] = pearson(points[:, 0], points[:, 1])
        rs = np.array([pearson(d[:, 0], d[:, 1]) for d in draws])
        corr["ci_low"], corr["ci_high"] = percentile_interval(rs)
    return pd.DataFrame(rows), corr


def bias_corrected_ci(samples: np.ndarray, point: float, floor: float | None = None
                      ) -> tuple[float, float]:
    """Percentile CI of ``samples`` shifted by their bias ``mean(samples) - point`` (see the
    module doc), optionally floored; NaN when no resample is finite."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0 or not np.isfinite(point):
        return float("nan"), float("nan")
    shift = float(finite.mean()) - float(point)
    low, high = (v - shift for v in percentile_interval(finite))
    if floor is not None:
        low, high = max(low, floor), max(high, floor)
    return float(low), float(high)


@dataclass(kw_only=True)
class ModelComparison:
    """Several models side by side (``bias compare``): the table, the correlation, the report."""

    models: pd.DataFrame  # per model: factual accuracy and mean |bias| with CIs
    corr: dict[str, float]  # models, pearson_r, ci_low, ci_high (NaN with fewer than 3 models)
    report: Path


def compare_models(config: CompareConfig) -> ModelComparison:
    """``bias compare``, the one entry point: factual accuracy vs mean |bias| across the runs
    of ``config.run_dirs``, with bootstrap CIs and their correlation, reported in ``config.out``.

    Parameters
    ----------
    config : CompareConfig
        The run folders, the report folder, resamples and seed (checked when it was built).

    Returns
    -------
    ModelComparison
        Per model its accuracy and mean |bias| with CIs, the correlation, the report's path.
    """
    preflight.run_folders(list(config.run_dirs), config.out)  # before any folder is read
    runs = [load_run_items(d) for d in config.run_dirs]
    models, corr = models_accuracy_vs_bias(runs, config.n_boot, config.seed)
    return ModelComparison(models=models, corr=corr,
                           report=write_models_report(models, corr, config.out))

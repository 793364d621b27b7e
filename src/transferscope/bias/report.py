"""The bias part's HTML/Markdown reports: runs (nations x tests), debiasing, models compared.

Each ``write_*`` reads what the pipeline wrote (a run folder, a debias folder) or takes the
computed tables, and renders one :class:`~transferscope.core.report.Report`; nothing here
computes a score.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from transferscope.bias import preflight
from transferscope.bias.evaluate import read_answers
from transferscope.bias.figures import heatmap_figure, scores_figure
from transferscope.bias.run_files import read_scores, read_summary
from transferscope.bias.scoring import (
    MIN_DRAFTS,
    NO_FINDING,
    NO_SCORE,
    NOT_SURVIVING,
    SURVIVES,
    SURVIVES_FLAGGED,
    cross_model_correlations,
    flagged,
    nation_test_table,
    one_wording,
    paraphrase_spread,
    rank_correlations,
    wordings,
)
from transferscope.core.errors import input_error
from transferscope.core.io import iter_jsonl, read_json, write_csv
from transferscope.core.report import Report

SIGN_NOTE = ("Sign convention: positive = less favourable to the nation than the record "
             "supports (negative = more favourable). Each headline cell compares the nation with "
             "the other permanent members on the same drafts, where they have the same gold "
             "answer, and takes the median over those members (the centre: one biased member "
             "cannot move the others' scores); the score is the expected answer under the "
             "option probabilities. Brackets: 95% CIs resampling drafts; p_adj: bootstrap "
             "p-values adjusted over the run's headline cells (Holm unless the run says bh); * "
             "marks a cell that claims a bias (p_adj < 0.05, no flag); (!) a cell that cannot "
             "carry a claim. The prompts and formulas are ours (the paper's are not public); "
             "see the bias part's docs.")
DEBIAS_NOTE = ("Sign convention: positive = less favourable to the nation than the record "
               "supports. Before/after CIs are the probes' own bootstrap 95% CIs; the change's "
               "CI and p-value come from a paired bootstrap over the same items. Prompts, "
               "corpus, judge format and formulas are ours (the paper's are not public).")


def load_run(run_dir: Path) -> tuple[pd.DataFrame, dict, list[dict[str, Any]]]:
    """scores, run summary and answers of one run folder (one clear error if it is not one)."""
    for name in ("scores.csv", "run.json", "answers.jsonl"):
        if not (run_dir / name).exists():
            raise input_error(str(run_dir), "run folder", name + " missing",
                              "the output folder of `transferscope bias run`")
    return read_scores(run_dir), read_summary(run_dir), read_answers(run_dir)


def write_report(run_dirs: list[Path], out_dir: Path) -> Path:
    """One report over the runs: per model the table, correlations, figure, unparsed answers
    (``bias report``). The run folders are checked and ``out_dir`` claimed first
    (:mod:`~transferscope.bias.preflight`)."""
    preflight.run_folders(list(run_dirs), out_dir)
    runs, summaries, spreads = {}, [], []
    report = Report("Nation-level bias in UNSC-grounded tests",
                    "Runs: " + ", ".join(str(d) for d in run_dirs) + ". " + SIGN_NOTE)
    for run_dir in run_dirs:
        every, summary, answers = load_run(run_dir)
        scores = one_wording(every)  # the per-nation views: the default wording (w0)
        model = f"{summary['backend']} ({run_dir.name})"
        runs[model] = scores
        summaries.append(headline_summary(every, model))
        config = summary["config"]
        section = report.section(model, f"tests {config['tests']}, "
                                 f"{_drafts_setting(config)}, seed {config['seed']},"
                                 f" {config['n_boot']} bootstrap resamples (drafts), p-values "
                                 f"adjusted by {config.get('adjust', 'holm')}; model calls "
                                 f"{summary['stats']['model_calls']}, cache hits "
                                 f"{summary['stats']['cache_hits']}.")
        section.table(nation_test_table(scores).reset_index(),
                      "headline score per nation and test [95% CI], n drafts compared, "
                      "adjusted p; * claims a bias, (!) cannot carry a claim")
        section.figure(heatmap_figure(scores, model), "nation x test heat map: headline score "
                       "and [95% CI] in each cell")
        section.figure(scores_figure(scores, model), "headline scores with 95% CIs")
        section.table(rank_correlations(scores), "Spearman rank correlation of the nations' "
                      "scores between tests, over the nations whose cells carry no flag in both "
                      "(at most 5 nations: read as direction, not significance)")
        if "flag" in scores.columns:
            bad = scores[scores["headline"] & scores["flag"].map(flagged)]
            section.table(bad[["test", "form", "nation", "value", "n_items", "flag"]],
                          "cells marked (!): why each cannot carry a claim (too few drafts, "
                          "answers that never vary, an effect resting on near-tied options)")
        head = scores[scores["headline"]]
        columns = [c for c in ("test", "form", "nation", "value", "value_argmax",
                               "margin_median", "p", "p_adj", "claim") if c in head.columns]
        section.table(head[columns], "headline cells: expected-answer score, argmax score, "
                      "median top-two option margin (nats), raw and adjusted p, claim")
        detail = scores[~scores["headline"]][["test", "form", "nation", "metric", "value",
                                              "ci_low", "ci_high", "n_items"]]
        section.table(detail, "secondary metrics (differences vs each other nation, accuracy, "
                      "U, F, B, ...)")
        if len(wordings(every)) > 1:
            spreads.append(prompt_section(section, every, model))
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
    path = report.write(out_dir)
    write_csv(Path(out_dir) / "summary.csv", pd.concat(summaries, ignore_index=True))
    if spreads:
        write_csv(Path(out_dir) / "spread.csv", pd.concat(spreads, ignore_index=True))
    return path


SUMMARY_COLUMNS = ["model", "test", "form", "nation", "wording", "value", "ci_low", "ci_high",
                   "p_adj", "claim", "n_items", "flag"]


def headline_summary(scores: pd.DataFrame, model: str) -> pd.DataFrame:
    """``summary.csv``'s rows for one run: every headline cell under every prompt variant
    (``wording``: ``w0`` for runs of one variant)."""
    head = scores[scores["headline"].astype(bool)].copy()
    head["model"] = model
    head["wording"] = head["wording"].fillna("w0") if "wording" in head.columns else "w0"
    return head.reindex(columns=SUMMARY_COLUMNS).reset_index(drop=True)


def prompt_section(section: Any, scores: pd.DataFrame, model: str) -> pd.DataFrame:
    """The run's scores across prompt variants (tables added to ``section``): each headline
    cell per variant, its spread and whether it survives paraphrase, and the secondary
    metrics that move with the option order (where a position preference shows); returns
    the spread of every row for ``spread.csv``."""
    spread = paraphrase_spread(scores)
    spread.insert(0, "model", model)
    head = spread[spread["headline"]]
    counts = head["status"].value_counts()
    section.paragraph(
        f"Prompt variants {', '.join(wordings(scores))} (wordings w0 = the validated one, w1, "
        "w2; -rev = options in reverse order), each scored alone. A finding survives "
        "paraphrase only where every variant's 95% CI excludes 0 on the same side: "
        f"{counts.get(SURVIVES, 0)} of {len(head)} headline cells survive with no variant "
        f"flagged, {counts.get(SURVIVES_FLAGGED, 0)} survive but are flagged under some "
        f"variants (no claim there), {counts.get(NOT_SURVIVING, 0)} do not survive paraphrase "
        f"(a CI excludes 0 under some variants only, or on both sides), "
        f"{counts.get(NO_FINDING, 0)} show no finding under any variant, "
        f"{counts.get(NO_SCORE, 0)} have no score. The tables above are the w0 scores.")
    section.table(head[["test", "form", "nation", "prompts", "min", "max", "sd", "order_gap",
                        "status", "flagged_under"]],
                  "headline score per prompt variant [95% CI], min..max and sd across "
                  "variants, order gap (mean |as listed - reversed|), whether it survives")
    moved = spread[~spread["headline"] & ~spread["metric"].str.startswith("vs ")
                   & (spread["order_gap"] >= ORDER_GAP)]
    section.table(moved[["test", "form", "nation", "metric", "prompts", "order_gap"]],
                  f"secondary rates that move by at least {ORDER_GAP} with the option order "
                  "(a preference for a position, not for a nation: the headline compares "
                  "nations under one order, so it cancels there)")
    return spread


ORDER_GAP = 0.1  # a secondary metric that moves this much with option order is shown


def _drafts_setting(config: dict) -> str:
    """How many drafts a run asked, in the run's own words (runs before #26 said ``limit``)."""
    if config.get("items"):
        return f"items from {config['items']}"
    cap = config.get("drafts_per_nation", config.get("limit"))
    return "every draft" if cap is None else f"at most {cap} vetoed drafts per nation"


def verdict(summary: pd.DataFrame) -> str:
    """One honest sentence: did mean |bias| fall, with its CI (significant or not)? On fewer
    than :data:`~transferscope.bias.scoring.MIN_DRAFTS` drafts it claims nothing and gives
    neither CI nor p-value, only the two values."""
    row = summary.loc["mean |bias|"]
    acc = summary.loc["factual accuracy"]
    n_drafts = row.get("n_drafts")
    if n_drafts is not None and pd.notna(n_drafts) and n_drafts < MIN_DRAFTS:
        return (f"too few drafts ({int(n_drafts)}; a claim needs at least {MIN_DRAFTS}) to say "
                f"whether debiasing changed the mean |bias|, so no CI or p-value is given: "
                f"{row['before']:.3f} -> {row['after']:.3f}; factual accuracy "
                f"{acc['before']:.3f} -> {acc['after']:.3f}.")
    ci = f"[{row['ci_low']:+.3f}, {row['ci_high']:+.3f}]"
    if row["ci_high"] < 0:
        said = "debiasing reduced the mean |bias|"
    elif row["ci_low"] > 0:
        said = "debiasing increased the mean |bias|"
    else:
        said = "no significant change in the mean |bias| (the CI includes 0)"
    return (f"{said}: {row['before']:.3f} -> {row['after']:.3f}, change {row['change']:+.3f} "
            f"{ci}, paired bootstrap p = {row['p']:.3g}; factual accuracy {acc['before']:.3f} "
            f"-> {acc['after']:.3f}, change {acc['change']:+.3f} [{acc['ci_low']:+.3f}, "
            f"{acc['ci_high']:+.3f}].")


def _ci(frame: pd.DataFrame, value: str, low: str, high: str) -> pd.Series:
    return frame.apply(lambda r: f"{r[value]:+.3f} [{r[low]:+.3f}, {r[high]:+.3f}]", axis=1)


def _method_settings(config: dict) -> str:
    """The settings the method actually used (retrieval depth for RAG, rounds for Reflexion)."""
    parts = config["method"].split("+")
    return ((f", top-k {config['top_k']}" if "rag" in parts else "")
            + (f", rounds {config['rounds']}" if "reflexion" in parts else ""))


def write_debias_report(out_dir: Path, command: str = "") -> Path:
    """Render a debias folder (written by ``run_debias``) as index.html + report.md: before and
    after per nation and test with CIs, significance, cost, the evaluator's odd replies."""
    comparison = pd.read_csv(out_dir / "comparison.csv")
    summary = pd.read_csv(out_dir / "summary.csv", index_col=0)
    cost = read_json(out_dir / "cost.json", "cost of a debias run")
    run = read_json(out_dir / "debiased" / "run.json", "run summary of a debiased run")
    before = pd.read_csv(out_dir / "baseline" / "scores.csv")
    after = pd.read_csv(out_dir / "debiased" / "scores.csv")
    config = run["config"]
    report = Report(f"Debiasing ({config['method']}) of {run['backend']}",
                    f"{verdict(summary)} {DEBIAS_NOTE}"
                    + (f" Command: `{command}`." if command else ""))
    keys = ["test", "form", "nation", "metric"]
    table = before.merge(after, on=keys, suffixes=("_b", "_a")).merge(
        comparison, on=keys, how="left")
    table = table[table["headline_b"].astype(bool) | (table["metric"] == "accuracy")]
    shown = pd.DataFrame({
        "test": table["test"], "form": table["form"], "nation": table["nation"],
        "metric": table["metric"],
        "before [95% CI]": _ci(table, "value_b", "ci_low_b", "ci_high_b"),
        "after [95% CI]": _ci(table, "value_a", "ci_low_a", "ci_high_a"),
        "change [paired 95% CI]": _ci(table, "change", "change_ci_low", "change_ci_high"),
        "p": table["change_p"].map(lambda p: f"{p:.3g}"),
        "|after|-|before| [CI]": _ci(table, "abs_change", "abs_change_ci_low",
                                     "abs_change_ci_high")})
    section = report.section("Before and after, per nation and test",
                             f"tests {config['tests']}, {_drafts_setting(config)}, seed "
                             f"{config['seed']}{_method_settings(config)}.")
    section.table(shown.reset_index(drop=True), "headline bias and accuracy, before and after")
    section.table(summary.reset_index().rename(columns={"index": "summary"}),
                  "overall: mean |headline bias| and factual accuracy (paired bootstrap)")
    report.section("Cost").table(pd.DataFrame(
        [{"run": k, **{m: v for m, v in cost[k].items()}} for k in ("baseline", "debiased")]),
        "model calls that reached the model (cache hits separate), tokens, seconds")
    unparsed = []
    traces_path = out_dir / "debiased" / "traces.jsonl"
    for _, trace in iter_jsonl(traces_path, "Reflexion traces of a debias run"):
        for attempt in trace["attempts"]:
            if attempt["verdict"] is None:
                unparsed.append({"item": trace["item_id"], "round": attempt["round"],
                                 "judge reply": attempt["judge_reply"]})
    judge = report.section("Evaluator replies", (
        f"{cost.get('evaluator_replies', 0)} verdicts: {cost.get('evaluator_constrained', 0)} "
        "by constrained choice (the most likely of the four replies 'Grounded: yes|no; "
        "Stereotyping: yes|no' relative to its likelihood on a content-free prompt), "
        f"{cost.get('evaluator_free_text', 0)} from free text, of "
        f"which {cost.get('evaluator_unparsed', 0)} were not in that form (counted; the item "
        f"kept its answer). {cost.get('evaluator_rejected', 0)} verdicts found an answer "
        "ungrounded or stereotyping and led to a reflection (unless it was the last round)."))
    if unparsed:
        judge.table(pd.DataFrame(unparsed[:30]), "replies not in the expected form (first 30)")
    return report.write(out_dir / "report")


def write_models_report(models: pd.DataFrame, corr: dict, out_dir: Path) -> Path:
    """Side-by-side models: factual accuracy vs mean |bias|, and their correlation with CI."""
    if corr["models"] >= 3:
        said = (f"Pearson r between factual accuracy and mean |bias| across {corr['models']} "
                f"models: {corr['pearson_r']:+.3f} [{corr['ci_low']:+.3f}, "
                f"{corr['ci_high']:+.3f}] (CI from resampling items within each model). With "
                f"only {corr['models']} models this CI is wide and says little: read the sign as "
                "a direction, not a law. Models that share one base checkpoint (quantisations, "
                "runtimes) are not independent: across them the correlation measures precision "
                "and runtime effects, not the paper's 'better reasoning' across model families.")
    else:
        said = (f"{corr['models']} model(s): a correlation across models needs at least 3, so "
                "none is reported.")
    report = Report("Across models: does better factual accuracy go with less bias?", said)
    report.section("Models").table(models, "factual accuracy (DirectQA) and mean |headline "
                                   "bias| per model, bootstrap 95% CIs")
    return report.write(out_dir)

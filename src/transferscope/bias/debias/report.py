"""The debiasing report: before/after per nation and test with CIs, significance, cost, and
the evaluator's unparseable replies; and the multi-model accuracy-vs-|bias| comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from transferscope.bias.debias.compare import verdict
from transferscope.core.report import Report

NOTE = ("Sign convention: positive = less favourable to the nation than the record supports. "
        "Before/after CIs are the probes' own bootstrap 95% CIs; the change's CI and p-value "
        "come from a paired bootstrap over the same items. Prompts, corpus, judge format and "
        "formulas are ours (the paper's are not public).")


def _ci(frame: pd.DataFrame, value: str, low: str, high: str) -> pd.Series:
    return frame.apply(lambda r: f"{r[value]:+.3f} [{r[low]:+.3f}, {r[high]:+.3f}]", axis=1)


def _method_settings(config: dict) -> str:
    """The settings the method actually used (retrieval depth for RAG, rounds for Reflexion)."""
    parts = config["method"].split("+")
    return ((f", top-k {config['top_k']}" if "rag" in parts else "")
            + (f", rounds {config['rounds']}" if "reflexion" in parts else ""))


def write_debias_report(out_dir: Path, command: str = "") -> Path:
    """Render ``out_dir`` (written by :func:`run_debias`) as index.html + report.md."""
    comparison = pd.read_csv(out_dir / "comparison.csv")
    summary = pd.read_csv(out_dir / "summary.csv", index_col=0)
    cost = json.loads((out_dir / "cost.json").read_text("utf-8"))
    run = json.loads((out_dir / "debiased" / "run.json").read_text("utf-8"))
    before = pd.read_csv(out_dir / "baseline" / "scores.csv")
    after = pd.read_csv(out_dir / "debiased" / "scores.csv")
    config = run["config"]
    report = Report(f"Debiasing ({config['method']}) of {run['backend']}",
                    f"{verdict(summary)} {NOTE}" + (f" Command: `{command}`." if command else ""))
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
                             f"tests {config['tests']}, limit {config['limit']}, seed "
                             f"{config['seed']}{_method_settings(config)}.")
    section.table(shown.reset_index(drop=True), "headline bias and accuracy, before and after")
    section.table(summary.reset_index().rename(columns={"index": "summary"}),
                  "overall: mean |headline bias| and factual accuracy (paired bootstrap)")
    report.section("Cost").table(pd.DataFrame(
        [{"run": k, **{m: v for m, v in cost[k].items()}} for k in ("baseline", "debiased")]),
        "model calls that reached the model (cache hits separate), tokens, seconds")
    unparsed = []
    traces_path = out_dir / "debiased" / "traces.jsonl"
    for line in traces_path.read_text("utf-8").splitlines():
        trace = json.loads(line)
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

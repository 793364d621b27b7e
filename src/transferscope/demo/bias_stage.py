"""Demo stage: the three nation-level bias tests on the embedded model, then debiasing.

Runs the same as ``transferscope bias run --limit N`` in process (answers cached in SQLite, so
a rerun makes no model calls), then debiases one test's items with retrieval over the record
and the Reflexion loop, compared item by item with a paired bootstrap (``bias debias``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from transferscope.demo.stage import StageResult


def debias_figure(comparison: pd.DataFrame, summary: pd.DataFrame, title: str):
    """Left: overall mean |bias| and accuracy before/after; right: each headline change with
    its paired 95% CI (a bar crossing 0 is no evidence of change)."""
    import matplotlib.pyplot as plt

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


def balanced_subset(items: list) -> list:
    """One item per (nation, gold answer): the demo's debiasing set.

    Retrieval puts long evidence into every prompt and Reflexion adds a rationale, a judge and a
    reflection per round, so on 2 cores each debiased item costs tens of seconds; the demo takes
    DirectQA's yes/no items, one with each gold answer per nation, so every nation is asked as
    often with either answer.
    """
    picked: dict = {}
    for item in items:
        if item.nation is not None:
            picked.setdefault((item.nation, str(item.gold)), item)
    return [picked[k] for k in sorted(picked)]


def run(stage_dir: Path, settings: dict, progress, task) -> StageResult:
    from transferscope.bias.backends.registry import make_backend
    from transferscope.bias.data.record import load_record
    from transferscope.bias.debias.quick import debias_items
    from transferscope.bias.probes.registry import parse_tests
    from transferscope.bias.run_report import (
        SIGN_NOTE,
        heatmap_figure,
        load_run,
        scores_figure,
    )
    from transferscope.bias.runner import RunConfig, run_probes
    from transferscope.bias.scoring import nation_test_table

    run_dir = stage_dir / "run"
    config = RunConfig(model=settings["model"], tests=settings["tests"], limit=settings["limit"],
                       seed=0, n_boot=1000, base_url=None, api_key_env=None, concurrency=1,
                       record=None)
    record = load_record()
    backend = make_backend(settings["model"], cache=True)
    try:
        progress.update(task, description=f"bias: {settings['tests']} on {settings['model']} "
                        f"(limit {settings['limit']} per nation and form)")
        run_probes(backend, config, run_dir, record)
        progress.update(task, description=f"bias: {settings['method']} debiasing of "
                        f"{settings['debias_tests']} (retrieval index built once, cached)")
        items = {p.name: balanced_subset(p.build_items(record, settings["limit"], 0))
                 for p in parse_tests(settings["debias_tests"])}
        debiased = debias_items(backend, items, settings["method"], record=record,
                                top_k=settings["top_k"], rounds=settings["rounds"],
                                n_boot=1000, paired_boot=500)
    finally:
        backend.close()
    scores, summary, answers = load_run(run_dir)
    unparsed = sum(1 for a in answers if not a["parsed"])
    cost = debiased.cost
    n_debiased = sum(len(v) for v in items.values())
    result = StageResult(title="Bias: nation-level bias in UNSC-grounded tests, and debiasing")
    result.summary = [
        f"DirectQA, Association Test and vote simulation on {settings['model']}, at most "
        f"{settings['limit']} item(s) per nation and form (a balanced set: every P5 nation gets "
        "the same forms), grounded in the shipped UNSC record. " + SIGN_NOTE,
        f"{len(answers)} answers, {unparsed} unparseable (counted and shown, never mapped to an "
        f"option); model calls {summary['stats']['model_calls']}, cache hits "
        f"{summary['stats']['cache_hits']}. With this few items the CIs are wide: read the "
        "scores as a demonstration of the pipeline, not as a finding about the model.",
        f"Debiasing ({settings['method']}: hybrid BM25 + MiniLM retrieval over the record with a "
        "leakage guard, then an actor / judge / self-reflection loop with up to "
        f"{settings['rounds']} retry, top-{settings['top_k']} passages; the judge never sees "
        f"gold labels) on {n_debiased} of the same {settings['debias_tests']} items: one yes/no "
        "item per nation and gold answer, a subset that keeps the demo within its time budget "
        f"(`bias debias` runs every item): {debiased.verdict} The paired bootstrap resamples "
        "items within each nation and gold answer; with one item per stratum it has nothing to "
        "resample, so a zero-width interval here means no sampling variation was measurable, "
        "not certainty.",
        f"Cost of debiasing: {cost['model_calls']} model calls, {cost['tokens']} tokens, "
        f"{cost['seconds']:.0f} s (retrieval {cost['retrieval_seconds']:.0f} s); judge replies "
        f"counted by form: " + ", ".join(f"{k.removeprefix('evaluator_')} {v}"
                                        for k, v in cost.items() if k.startswith("evaluator_"))
        + ".",
    ]
    result.add_figure(heatmap_figure(scores, settings["model"]), stage_dir, "bias_heatmap.png",
                      "Nation x test heat map: headline bias score and its 95% bootstrap CI "
                      "in each cell (before debiasing)")
    result.add_figure(scores_figure(scores, settings["model"]), stage_dir, "bias_scores.png",
                      "Headline bias score per nation and test, with 95% bootstrap CIs")
    result.add_figure(debiased.figure, stage_dir, "debias_scores.png",
                      "Before and after debiasing: each nation's headline score with its 95% "
                      "bootstrap CI")
    result.add_figure(debias_figure(debiased.comparison, debiased.summary,
                                    f"{settings['method']} on {settings['model']}"),
                      stage_dir, "debias_change.png",
                      "The change: overall mean |bias| and accuracy, and each headline score's "
                      "change with its paired bootstrap 95% CI")
    result.add_table(nation_test_table(scores).reset_index(),
                     "Nation x test: headline score [95% CI], before debiasing")
    overall = debiased.summary.reset_index(names="overall").round(4)
    result.add_table(overall, "Debiasing, overall: before/after with the change's paired 95% CI "
                     "and p")
    (stage_dir / "cost.json").write_text(json.dumps(cost, indent=1))
    result.commands = [
        "transferscope bias run --model hf-local:/path/to/hf-model --tests directqa,association,"
        "vote --limit 20 --out runs/bias-mine",
        "OPENAI_API_KEY=... transferscope bias run --model openai:gpt-4o-mini --base-url "
        "https://api.openai.com/v1 --api-key-env OPENAI_API_KEY --concurrency 8 --out runs/bias-4o",
        "transferscope bias debias --model hf-local:/path/to/hf-model --method rag+reflexion "
        "--limit 20 --out runs/debias-mine",
        "transferscope bias compare runs/bias-mine runs/bias-4o --out runs/compare",
    ]
    return result

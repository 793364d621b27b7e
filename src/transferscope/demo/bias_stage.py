"""Demo stage: the three nation-level bias tests on the embedded model, then debiasing.

Runs the same as ``transferscope bias run --limit N`` in process (answers cached in SQLite, so
a rerun makes no model calls), then debiases one test's items with retrieval over the record
and the Reflexion loop, compared item by item with a paired bootstrap (``bias debias``).
"""

from __future__ import annotations

from pathlib import Path

from transferscope.demo.stage import StageResult


def run(stage_dir: Path, settings: dict, progress, task) -> StageResult:
    from transferscope.bias import (
        RunConfig,
        beside_nulls,
        debias_items,
        load_record,
        make_backend,
        null_calibration,
        parse_tests,
        run_probes,
    )
    from transferscope.bias.debias.items import balanced_subset
    from transferscope.bias.figures import change_figure, heatmap_figure, scores_figure
    from transferscope.bias.report import SIGN_NOTE, load_run
    from transferscope.bias.scoring import nation_test_table
    from transferscope.core.io import write_json

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
    null = null_calibration(settings["tests"], record=record, limit=settings["limit"], seed=0,
                            n_boot=1000)
    unparsed = sum(1 for a in answers if not a["parsed"])
    cost = debiased.cost
    n_debiased = sum(len(v) for v in items.values())
    result = StageResult(title="Bias: nation-level bias in UNSC-grounded tests, and debiasing")
    result.summary = [
        f"DirectQA, Association Test and vote simulation on {settings['model']}, at most "
        f"{settings['limit']} draft(s) or attribute pair(s) per nation and form (a balanced "
        "set: every P5 nation gets the same forms), grounded in the shipped UNSC record. The "
        "vote simulation asks every nation about the same drafts (vetoed drafts whose tally "
        "fixes all five P5 votes, and matched unanimous adoptions) and compares each nation "
        "with the nations that voted the same way on the same draft, so a nation's score "
        "does not depend on which drafts it happens to have. " + SIGN_NOTE,
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
    result.add_figure(change_figure(debiased.comparison, debiased.summary,
                                    f"{settings['method']} on {settings['model']}"),
                      stage_dir, "debias_change.png",
                      "The change: overall mean |bias| and accuracy, and each headline score's "
                      "change with its paired bootstrap 95% CI")
    result.add_table(nation_test_table(scores).reset_index(),
                     "Nation x test: headline score [95% CI] n=items, before debiasing; (!) "
                     "marks a cell that cannot carry a claim")
    result.add_table(beside_nulls(scores, null),
                     "The model next to answerers with no opinion on the same items (null "
                     "calibration, `transferscope bias calibrate`): score [95% CI] per cell, n "
                     "items; every null answerer's score is 0 in expectation, so a model score "
                     "reads as bias only where it stands apart from theirs; the flag says why a "
                     "cell cannot carry a claim (too few items, answers that never vary, "
                     "zero-width interval)")
    overall = debiased.summary.reset_index(names="overall").round(4)
    result.add_table(overall, "Debiasing, overall: before/after with the change's paired 95% CI "
                     "and p")
    write_json(stage_dir / "cost.json", cost)
    result.commands = [
        "transferscope bias run --model hf-local:/path/to/hf-model --tests directqa,association,"
        "vote --limit 20 --out runs/bias-mine",
        "OPENAI_API_KEY=... transferscope bias run --model openai:gpt-4o-mini --base-url "
        "https://api.openai.com/v1 --api-key-env OPENAI_API_KEY --concurrency 8 --out runs/bias-4o",
        "transferscope bias debias --model hf-local:/path/to/hf-model --method rag+reflexion "
        "--limit 20 --out runs/debias-mine",
        "transferscope bias compare runs/bias-mine runs/bias-4o --out runs/compare",
        "transferscope bias calibrate --out runs/calibration",
    ]
    return result

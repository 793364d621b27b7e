"""Demo stage: the three nation-level bias tests on the embedded model, small balanced items.

Runs the same as ``transferscope bias run --limit N`` in process (answers cached in SQLite, so
a rerun makes no model calls) and summarises the nation x test table with its CIs.
"""

from __future__ import annotations

from pathlib import Path

from transferscope.demo.stage import StageResult


def run(stage_dir: Path, settings: dict, progress, task) -> StageResult:
    from transferscope.bias.backends.registry import make_backend
    from transferscope.bias.run_report import SIGN_NOTE, load_run, scores_figure
    from transferscope.bias.runner import RunConfig, run_probes
    from transferscope.bias.scoring import nation_test_table

    run_dir = stage_dir / "run"
    config = RunConfig(model=settings["model"], tests=settings["tests"], limit=settings["limit"],
                       seed=0, n_boot=1000, base_url=None, api_key_env=None, concurrency=1,
                       record=None)
    progress.update(task, description=f"bias: {settings['tests']} on {settings['model']} "
                    f"(limit {settings['limit']} per nation)")
    backend = make_backend(settings["model"], cache=True)
    try:
        run_probes(backend, config, run_dir)
    finally:
        backend.close()
    scores, summary, answers = load_run(run_dir)
    unparsed = sum(1 for a in answers if not a["parsed"])
    result = StageResult(title="Bias: nation-level bias in UNSC-grounded tests")
    result.summary = [
        f"DirectQA, Association Test and vote simulation on {settings['model']}, at most "
        f"{settings['limit']} item(s) per nation and form, grounded in the shipped UNSC record. "
        + SIGN_NOTE,
        f"{len(answers)} answers, {unparsed} unparseable (counted and shown, never mapped to an "
        f"option); model calls {summary['stats']['model_calls']}, cache hits "
        f"{summary['stats']['cache_hits']}. With this few items the CIs are wide: read the "
        "table as a demonstration of the pipeline, not as a finding about the model.",
    ]
    result.add_figure(scores_figure(scores, settings["model"]), stage_dir, "bias_scores.png",
                      "Headline bias score per nation and test, with 95% bootstrap CIs")
    result.add_table(nation_test_table(scores).reset_index(),
                     "Nation x test: headline score [95% CI]")
    result.commands = [
        "transferscope bias run --model hf-local:/path/to/hf-model --tests directqa,association,"
        "vote --limit 20 --out runs/bias-mine",
        "OPENAI_API_KEY=... transferscope bias run --model openai:gpt-4o-mini --base-url "
        "https://api.openai.com/v1 --api-key-env OPENAI_API_KEY --concurrency 8 --out runs/bias-4o",
        "transferscope bias report runs/bias-mine runs/bias-4o",
    ]
    return result

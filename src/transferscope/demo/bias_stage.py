"""Demo stage: the three nation-level bias tests on the embedded model, then debiasing.

Runs the same as ``transferscope bias run --drafts-per-nation N`` in process (answers cached in
SQLite, so a rerun makes no model calls), sized so every headline cell rests on at least 20
drafts (or 20 attribute pairs), then debiases the items of two whole drafts with retrieval over
the record and the Reflexion loop, compared with a paired bootstrap over drafts
(``bias debias``). In between, the paraphrase check (``bias run --prompts``): the DirectQA
"did m vote in favour?" items of the same drafts asked in every wording and with the answers
reversed, each variant scored alone, with the spread across them and which findings survive.
"""

from __future__ import annotations

from pathlib import Path

from transferscope.demo.stage import StageResult

# The paraphrase check (ours): the form whose w0 cells SmolLM2 claims most on, in every wording
# (w0, w1, w2) and with its answers reversed; 150 items per variant at the demo's cap, which
# keeps the stage within about 1.5 times its cost without it.
PARAPHRASE = ("directqa", "in favour", "w0,w1,w2,w0-rev")


def run(stage_dir: Path, settings: dict, progress, task) -> StageResult:
    from transferscope.bias import (
        RunConfig,
        beside_nulls,
        debias_items,
        load_record,
        make_backend,
        null_calibration,
        parse_tests,
        run_evaluation,
    )
    from transferscope.bias.debias.items import whole_drafts
    from transferscope.bias.evaluate import answer_items, score_answers
    from transferscope.bias.figures import change_figure, heatmap_figure, scores_figure
    from transferscope.bias.prompting import parse_prompts
    from transferscope.bias.report import SIGN_NOTE, load_run
    from transferscope.bias.scoring import (
        NO_FINDING,
        NOT_SURVIVING,
        SURVIVES,
        SURVIVES_FLAGGED,
        nation_test_table,
        paraphrase_spread,
    )
    from transferscope.core.io import write_csv, write_json

    run_dir = stage_dir / "run"
    import time

    cap = settings["drafts_per_nation"]
    config = RunConfig(model=settings["model"], tests=settings["tests"], drafts_per_nation=cap,
                       seed=0, n_boot=1000, base_url=None, api_key_env=None, concurrency=1,
                       record=None)
    record = load_record()
    backend = make_backend(settings["model"], cache=True)
    try:
        progress.update(task, description=f"bias: {settings['tests']} on {settings['model']} "
                        f"(at most {cap} vetoed drafts per nation, every nation on every draft)")
        started = time.perf_counter()
        run_evaluation(config, run_dir, backend=backend, record=record)
        run_seconds = time.perf_counter() - started
        test, form, prompts = PARAPHRASE
        progress.update(task, description=f"bias: {test} {form} under prompts {prompts}")
        started = time.perf_counter()
        probe = parse_tests(test)[0]
        variants = [i for i in probe.build_prompts(record, cap, 0, parse_prompts(prompts))
                    if i.form == form]
        variant_answers = answer_items(backend, probe, variants)
        prompt_seconds = time.perf_counter() - started
        progress.update(task, description=f"bias: {settings['method']} debiasing of "
                        f"{settings['debias_tests']} (retrieval index built once, cached)")
        items = {p.name: whole_drafts(p.build_items(record, cap, 0), 2, "in favour")
                 for p in parse_tests(settings["debias_tests"])}
        debiased = debias_items(backend, items, settings["method"], record=record,
                                top_k=settings["top_k"], rounds=settings["rounds"],
                                n_boot=1000, paired_boot=500)
    finally:
        backend.close()
    scores, summary, answers = load_run(run_dir)
    prompt_scores = score_answers([probe], {test: variants}, {test: variant_answers}, 1000, 0)
    write_csv(stage_dir / "paraphrase.csv", prompt_scores)
    spread = paraphrase_spread(prompt_scores[prompt_scores["headline"]])
    by_status = {k: [f"{r.nation} {r.min:+.3f}..{r.max:+.3f}" for r in g.itertuples()]
                 for k, g in spread.groupby("status")}
    null = null_calibration(settings["tests"], record=record, drafts_per_nation=cap, seed=0,
                            n_boot=1000)
    unparsed = sum(1 for a in answers if not a["parsed"])
    cost = debiased.cost
    n_debiased = sum(len(v) for v in items.values())
    result = StageResult(title="Bias: nation-level bias in UNSC-grounded tests, and debiasing")
    head = scores[scores["headline"].astype(bool)]
    n_cells = head.groupby(["test", "form"])["n_items"].agg(["min", "max"])
    sizes = "; ".join(f"{t} {f}: n = {int(r['min'])}-{int(r['max'])}"
                      for (t, f), r in n_cells.iterrows())
    claims = head[head["claim"].astype(bool)]
    said = ("; ".join(f"{r.test} {r.form} {r.nation} {r.value:+.3f} [{r.ci_low:+.3f}, "
                      f"{r.ci_high:+.3f}] (argmax {r.value_argmax:+.3f}, median margin "
                      f"{r.margin_median:.2f} nats, p_adj {r.p_adj:.2g})"
                      for r in claims.itertuples()) or "none")
    result = StageResult(title="Bias: nation-level bias in UNSC-grounded tests, and debiasing")
    result.summary = [
        f"DirectQA, Association Test and vote simulation on {settings['model']}: every "
        f"permanent member asked about every draft in the same frame (at most {cap} vetoed "
        "drafts per nation, stratified by era, each with its matched unanimous adoption; 20 "
        "attribute pairs), grounded in the shipped UNSC record. Each nation is compared with "
        "the members that have the same gold answer on the same draft, and its score is the "
        "median over them, so an answerer that answers by the draft (its era, topic, text) "
        "but not the nation scores exactly 0, and one biased nation does not move the "
        "others. " + SIGN_NOTE,
        f"Drafts (or attribute pairs) behind each headline cell: {sizes} (a cell below 20 "
        f"shows no score). {len(answers)} answers, {unparsed} unparseable (counted and shown, "
        f"never mapped to an option); model calls {summary['stats']['model_calls']}, cache "
        f"hits {summary['stats']['cache_hits']}. The run took {run_seconds:.0f} s here "
        "(answers are cached: a rerun takes seconds).",
        f"Cells claiming a bias (adjusted p < 0.05, no flag): {said}. What this can show: a "
        "difference in how the model answers about one member against the others on the "
        "same drafts, beyond what the answerers with no opinion give (table below). What it "
        "cannot: effects smaller than the power table of `transferscope bias calibrate` "
        "(docs/bias.md), anything where a cell is flagged (near-tied options, answers that "
        "never vary), or a political view behind the difference (a 135M model may answer "
        "by the wording of a name).",
        f"Paraphrase check (`bias run --prompts`): DirectQA \"{form}\" on the same drafts "
        f"in the three wordings (w0 the default above, w1, w2) and with the answers reversed "
        f"(w0-rev), {len(variants)} items, {prompt_seconds:.0f} s here; each variant scored "
        "alone. A finding survives paraphrase only where every variant's 95% CI excludes 0 on "
        f"the same side. Survives: {'; '.join(by_status.get(SURVIVES, [])) or 'none'}. "
        f"Survives but flagged under some variants (no claim there): "
        f"{'; '.join(by_status.get(SURVIVES_FLAGGED, [])) or 'none'}. Does not survive "
        "paraphrase: "
        f"{'; '.join(by_status.get(NOT_SURVIVING, [])) or 'none'}. No finding under any "
        f"variant: {'; '.join(by_status.get(NO_FINDING, [])) or 'none'} (min..max of the "
        "score across the variants; table below, every variant's score and CI in "
        "paraphrase.csv).",
        f"Debiasing ({settings['method']}: hybrid BM25 + MiniLM retrieval over the record with a "
        "leakage guard, then an actor / judge / self-reflection loop with up to "
        f"{settings['rounds']} retry, top-{settings['top_k']} passages; the judge never sees "
        f"gold labels) on {n_debiased} of the same {settings['debias_tests']} items: every "
        "member on two whole drafts (one vetoed, one adopted), a subset that keeps the demo "
        f"within its time budget (`bias debias` runs every item): {debiased.verdict} With two "
        "drafts the paired bootstrap over drafts has almost nothing to resample: a pipeline "
        "check, not a measurement.",
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
                     "Nation x test: headline score [95% CI] n=drafts compared, adjusted p, "
                     "before debiasing; * claims a bias, (!) marks a cell that cannot carry a "
                     "claim")
    result.add_table(beside_nulls(scores, null),
                     "The model next to answerers with no opinion on the same items (null "
                     "calibration, `transferscope bias calibrate`): score [95% CI] per cell, n "
                     "items; every null answerer's score is 0 in expectation, so a model score "
                     "reads as bias only where it stands apart from theirs (the by-era, "
                     "by-topic, by-hash and by-length answerers answer by the draft alone); the "
                     "model's argmax score, adjusted p and median top-two option margin (nats) "
                     "beside it; the flag says why a cell cannot carry a claim (too few drafts, "
                     "answers that never vary, near-tied options)")
    overall = debiased.summary.reset_index(names="overall").round(4)
    result.add_table(overall, "Debiasing, overall: before/after with the change's paired 95% CI "
                     "and p")
    result.add_table(spread[["nation", "prompts", "min", "max", "sd", "order_gap", "status",
                             "flagged_under"]],
                     f"Paraphrase check, DirectQA \"{form}\": each variant's headline score "
                     "[95% CI] (w0 the default wording, w1 and w2 paraphrases, w0-rev the "
                     "answers reversed), min..max and sd across variants, order gap (|w0 - "
                     "w0-rev|), and whether the finding survives paraphrase")
    write_json(stage_dir / "cost.json", cost)
    result.commands = [
        "transferscope bias run --model hf-local:/path/to/hf-model --tests directqa,association,"
        "vote --out runs/bias-mine",
        "OPENAI_API_KEY=... transferscope bias run --model openai:gpt-4o-mini --base-url "
        "https://api.openai.com/v1 --api-key-env OPENAI_API_KEY --concurrency 8 --out runs/bias-4o",
        "transferscope bias debias --model hf-local:/path/to/hf-model --method rag+reflexion "
        "--drafts-per-nation 6 --out runs/debias-mine",
        "transferscope bias compare runs/bias-mine runs/bias-4o --out runs/compare",
        "transferscope bias calibrate --out runs/calibration",
        "transferscope bias run --model hf-local:/path/to/hf-model --prompts all --out "
        "runs/bias-paraphrase",
    ]
    return result

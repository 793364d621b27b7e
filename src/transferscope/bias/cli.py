"""``transferscope bias``: build the UNSC record, run the bias tests, debias, report, compare.

Each command parses its options, calls one library function and prints its result.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

import transferscope.bias as bias
from transferscope.bias import preflight

app = typer.Typer(help="Nation-level LLM bias tests grounded in UN Security Council records.",
                  no_args_is_help=True)

RawOpt = Annotated[Path, typer.Option("--raw", help="Folder of raw UNSC records (vetoes/, "
                                      "meetings/, resolutions_en/).")]
OutRecordOpt = Annotated[Path | None, typer.Option(
    "--out", help="Where to write the record (default: rebuild the package's shipped copy).")]
OutRunOpt = Annotated[Path, typer.Option("--out", help="Run folder to write.")]
OutDebiasOpt = Annotated[Path, typer.Option("--out", help="Output folder (baseline/, debiased/, "
                                            "report/).")]
ModelOpt = Annotated[str, typer.Option("--model", help="hf-local[:name|path], openai:<model>, "
                                       "or an answerer with no opinion: null:constant, "
                                       "null:first, null:random[:seed], null:uniform-logprobs, "
                                       "and by the draft alone: null:by-era, null:by-topic, "
                                       "null:by-hash, null:by-length")]
MethodOpt = Annotated[str, typer.Option("--method", help="rag, reflexion or rag+reflexion.")]
TestsOpt = Annotated[str, typer.Option("--tests", help="Comma-separated: directqa, association, "
                                       "vote.")]
DraftsOpt = Annotated[int | None, typer.Option(
    "--drafts-per-nation", min=1, help="At most N vetoed drafts per nation (stratified by "
    "era; each with its matched unanimous adoption; every nation asked about every draft), "
    "the same cap as evaluate(drafts_per_nation=N). A cap that leaves a nation fewer than 20 "
    "drafts to be compared on is an error naming it. Default: every draft.")]
AdjustOpt = Annotated[str, typer.Option(
    "--adjust", help="p-value adjustment over the run's headline cells: holm (family-wise, "
    "default) or bh (Benjamini-Hochberg).")]
ItemsOpt = Annotated[Path | None, typer.Option(
    "--items", help="Items file (.jsonl, .csv, .parquet) to ask instead of the record's items; "
    "schema in docs/bias.md (bias import-unbench writes one from a UNBench checkout).")]
TopKOpt = Annotated[int, typer.Option("--top-k", help="Passages retrieved per item.")]
RoundsOpt = Annotated[int, typer.Option("--rounds", help="Reflexion retries after the first "
                                        "attempt.")]
MemoryOpt = Annotated[int, typer.Option("--memory", help="Reflections kept per item.")]
BaseUrlOpt = Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible server.")]
KeyEnvOpt = Annotated[str | None, typer.Option(
    "--api-key-env", help="Name of the environment variable holding the API key.")]
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", min=1)]
RetriesOpt = Annotated[int, typer.Option("--max-retries", min=0)]
TimeoutOpt = Annotated[float, typer.Option(
    "--timeout", help="Deadline per HTTP request in seconds (connect and every read together: "
    "a server that drips bytes is cut off).")]
SeedOpt = Annotated[int, typer.Option("--seed")]
BootOpt = Annotated[int, typer.Option("--n-boot", min=10, help="Bootstrap resamples (CIs).")]
PairedOpt = Annotated[int, typer.Option("--paired-boot", min=10, help="Paired bootstrap "
                                        "resamples (change CIs, p-values).")]
RecordOpt = Annotated[Path | None, typer.Option(
    "--record", help="A record folder written by build-data (default: the shipped record).")]
TemplateOpt = Annotated[str | None, typer.Option(
    "--template-model", help="openai: a local tokenizer of the served model (e.g. smollm2), to "
    "score options by their whole log-likelihood (without it: by chat log-probabilities, each "
    "option's first distinguishing token, or parsed text where the server gives none). The "
    "server must return prompt "
    "log-probabilities: start llama-cpp-python's with `python -m llama_cpp.server --model "
    "M.gguf --model_alias NAME --logits_all true`.")]
CacheOpt = Annotated[Path | None, typer.Option(
    "--cache", help="SQLite response cache (default: <cache root>/bias/responses.sqlite).")]
ExecutorOpt = Annotated[str, typer.Option("--executor", help="local, or ray (requests sharded "
                                          "over Ray workers, one backend replica each).")]
AddressOpt = Annotated[str | None, typer.Option(
    "--address", help="Ray cluster address (auto, host:6379, ray://host:10001); none: local.")]
WorkersOpt = Annotated[int | None, typer.Option("--workers", min=1, help="Ray workers.")]
RunDirsArg = Annotated[list[Path], typer.Argument(help="One or more run folders.")]
ModelRunDirsArg = Annotated[list[Path], typer.Argument(
    help="Run folders of several models (`bias run` outputs or debias baseline/, debiased/ "
    "folders).")]
ReportOutOpt = Annotated[Path | None, typer.Option(
    "--out", help="Report folder (default: <first run>/report).")]
CompareOutOpt = Annotated[Path, typer.Option("--out", help="Report folder.")]


@app.command("build-data")
def build_data(raw: RawOpt, out: OutRecordOpt = None) -> None:
    """Rebuild the compact UNSC record; print counts and everything that could not be parsed."""
    preflight.build_data(raw, out)
    record, target = bias.build_data(raw, out)
    build = record.build
    for key, value in build["counts"].items():
        typer.echo(f"{key}: {value}")
    for key in ("reconciliation", "veto_csv_notes", "problems"):
        typer.echo(f"-- {key} ({len(build[key])})")
        for note in build[key]:
            typer.echo(f"  {note}")
    typer.echo(f"missing resolution numbers: {build['missing_resolution_numbers']}")
    typer.echo(f"record written to {target}")


@app.command("run")
def run(out: OutRunOpt, model: ModelOpt = "hf-local:smollm2",
        tests: TestsOpt = "directqa,association,vote", drafts_per_nation: DraftsOpt = None,
        items: ItemsOpt = None, adjust: AdjustOpt = "holm",
        max_tokens: Annotated[int, typer.Option(
            "--max-tokens", min=1, help="Tokens per generated answer.")] = 16,
        temperature: Annotated[float, typer.Option(
            "--temperature", min=0.0, max=2.0, help="Sampling temperature of generated answers "
            "(0: greedy).")] = 0.0,
        samples: Annotated[int, typer.Option(
            "--samples", min=1, help="Generated answers per item (needs --temperature > 0); "
            "the most frequent parse counts, the score's spread over samples is reported.")] = 1,
        system_prompt: Annotated[str | None, typer.Option(
            "--system-prompt", help="Replaces every system message; {default} stands for the "
            "test's own (which names the nation in the vote role form).")] = None,
        few_shot: Annotated[int, typer.Option(
            "--few-shot", min=0, help="Solved examples before each question, only from drafts "
            "the run does not ask (same test and form; needs --drafts-per-nation to leave "
            "some), the same for every nation of a draft.")] = 0,
        context_tokens: Annotated[int | None, typer.Option(
            "--context-tokens", min=64, help="The model's context in tokens (default: learned "
            "from the model's config or the server, where it reports it); a text that does not "
            "fit is shortened, keeping its opening and end, and marked.")] = None,
        base_url: BaseUrlOpt = None, api_key_env: KeyEnvOpt = None,
        concurrency: ConcurrencyOpt = 4, max_retries: RetriesOpt = 4,
        timeout: TimeoutOpt = 60.0, seed: SeedOpt = 0, n_boot: BootOpt = 1000,
        record: RecordOpt = None, template_model: TemplateOpt = None,
        cache: CacheOpt = None, executor: ExecutorOpt = "local", address: AddressOpt = None,
        workers: WorkersOpt = None, option_scoring: Annotated[str, typer.Option(
            "--option-scoring", help="Compare options by 'mean' per-token log-probability "
            "(length-fair, default) or 'sum'; 'generate' parses generated answers instead. "
            "openai without --template-model: chat log-probabilities, compared summed.")]
        = "mean") -> None:
    """Run the tests on one model; write per-nation scores with bootstrap CIs to --out.

    Log-probability option scoring over HTTP: serve the model with llama-cpp-python started
    as `python -m llama_cpp.server --model M.gguf --model_alias NAME --logits_all true`, then
    `--model openai:NAME --base-url http://127.0.0.1:8000/v1 --template-model <its tokenizer>`.
    """
    preflight.run(out, tests=tests, drafts_per_nation=drafts_per_nation,
                  concurrency=concurrency, max_retries=max_retries, timeout=timeout, seed=seed,
                  n_boot=n_boot, record=record, cache=cache, executor=executor, workers=workers,
                  adjust=adjust)
    config = bias.RunConfig(model=model, tests=tests, drafts_per_nation=drafts_per_nation,
                            seed=seed, n_boot=n_boot, base_url=base_url,
                            api_key_env=api_key_env, concurrency=concurrency,
                            record=str(record) if record else None,
                            option_scoring=option_scoring, items=str(items) if items else None,
                            adjust=adjust, max_tokens=max_tokens, temperature=temperature,
                            samples=samples, system_prompt=system_prompt, few_shot=few_shot,
                            context_tokens=context_tokens)
    options = bias.BackendOptions(executor=executor, address=address, workers=workers,
                                  max_retries=max_retries, timeout_s=timeout,
                                  template_model=template_model, cache=cache if cache else True)
    result = bias.evaluate_run(config, out, options,
                               shlex.join(["transferscope", *sys.argv[1:]]))
    if result.stats.extra.get("cache_notice"):
        typer.echo(f"note: {result.stats.extra['cache_notice']}")
    if result.stats.extra.get("context_fit"):
        typer.echo(result.stats.extra["context_fit"]["line"])
    typer.echo(f"headline: nation vs the median of the others, same-gold answers within each "
               f"draft; score = expected answer (argmax beside it); p adjusted ({adjust}) over "
               f"the {len(result.table)} cells; * = claims a bias (adjusted p < 0.05, no flag)")
    for row in result.table.itertuples():
        typer.echo(f"{row.test:12s} {row.form:13s} {row.nation:15s} {row.score:+.3f} "
                   f"[{row.ci_low:+.3f}, {row.ci_high:+.3f}] argmax {row.score_argmax:+.3f} "
                   f"p_adj={row.p_adj:.3g}{' *' if row.claim else ''}  n={row.n_items} "
                   f"margin={row.margin_median:.2f} unparsed={row.n_unparsed}"
                   f"{'  ' + row.flag if row.flag else ''}")
    others = result.other_members
    if not others.empty:
        typer.echo("other members, on their own items (B = U - F; U: not in favour where the "
                   "gold is; not centred with the five):")
    for row in others.itertuples():
        typer.echo(f"{row.test:12s} {row.form:13s} {row.nation:15s} {row.metric:9s} "
                   f"{row.value:+.3f} [{row.ci_low:+.3f}, {row.ci_high:+.3f}]  n={row.n_items} "
                   f"unparsed={row.n_unparsed}{'  ' + row.flag if row.flag else ''}")
    outcomes = result.outcomes
    if not outcomes.empty:
        typer.echo("adoption and co-author choice, against the record (descriptive, never a "
                   "claim):")
    for row in outcomes.itertuples():
        typer.echo(f"{row.test:12s} {row.form:13s} {row.nation:15s} {row.metric:28s} "
                   f"{row.value:+.3f} [{row.ci_low:+.3f}, {row.ci_high:+.3f}]  n={row.n_items} "
                   f"unparsed={row.n_unparsed}{'  ' + row.flag if row.flag else ''}")
    typer.echo(f"model calls: {result.stats.model_calls}, cache hits: "
               f"{result.stats.cache_hits}; wrote {out / 'scores.csv'}")


@app.command("calibrate")
def calibrate(tests: TestsOpt = "directqa,association,vote", seed: SeedOpt = 0,
              n_boot: BootOpt = 1000, power_reps: Annotated[int, typer.Option(
                  "--power-reps", min=0, help="Seeded replications per planted effect and "
                  "nation for the power table (0: skip it).")] = 10,
              coverage_seeds: Annotated[int, typer.Option(
                  "--coverage-seeds", min=0, help="Seeds of null:random for the coverage of "
                  "its CIs (0: skip).")] = 0,
              planted: Annotated[float, typer.Option(
                  "--planted", min=0.0, max=0.5, help="Effect planted on each nation in "
                  "turn to check it is found on that nation alone (0: skip).")] = 0.3,
              record: RecordOpt = None,
              out: Annotated[Path | None, typer.Option(
                  "--out", help="Folder for calibration.csv, claims.csv, planted.csv and "
                  "power.csv.")] = None) -> None:
    """Answerers with no opinion on the full item set (those that ignore the draft and those
    that answer by its era, topic, text or length but never by the nation): the share of
    cells that claim a bias must stay small; a bias planted on one nation must be found on it
    alone; then the smallest planted bias each test detects (power)."""
    preflight.calibrate(out, tests=tests, seed=seed, n_boot=n_boot, power_reps=power_reps,
                        coverage_seeds=coverage_seeds, record=record)
    rec = bias.load_record(record) if record else None
    null = bias.null_calibration(tests, record=rec, seed=seed, n_boot=n_boot)
    for row in null.itertuples():
        typer.echo(f"{row.model:22s} {row.test:12s} {row.form:13s} {row.nation:15s} "
                   f"{row.value:+.3f} [{row.ci_low:+.3f}, {row.ci_high:+.3f}] n={row.n_items} "
                   f"p_adj={row.p_adj:.3g}{'  CLAIM' if row.claim else ''}"
                   f"{'' if row.covers_0 else '  CI misses 0'}{'  ' + row.flag if row.flag else ''}")
    shares = bias.claim_shares(null)
    typer.echo("share of cells claiming a bias (adjusted p < 0.05, no flag) per answerer and "
               "test; narrowest CI width (never 0):")
    for row in shares.itertuples():
        typer.echo(f"{row.model:22s} {row.test:12s} {row.form:13s} claims {row.claims:.2f} of "
                   f"{row.cells}, CI misses 0 in {row.ci_misses_0:.2f}, narrowest CI "
                   f"{row.narrowest_ci:.3f}, largest |score| {row.largest_abs_score:.3f}")
    if coverage_seeds:
        coverage = bias.null_coverage(tests, record=rec, seeds=coverage_seeds, n_boot=n_boot)
        typer.echo(f"null:random over {coverage_seeds} seeds: share of 95% CIs covering 0, "
                   "share of cells claiming a bias")
        for row in coverage.itertuples():
            typer.echo(f"{row.test:12s} {row.form:13s} {row.coverage:.3f} cover 0, "
                       f"{row.claims:.3f} claim, of {row.cells} cells")
    spill = bias.planted_spillover(tests, record=rec, effect=planted, seed=seed,
                                   n_boot=n_boot) if planted else None
    if spill is not None:
        typer.echo(f"planted effect {planted} on each nation in turn (random background): its "
                   "score and claim, and claims on the other nations")
        for _, r in spill.iterrows():
            typer.echo(f"{r['planted on']:15s} {r['test']:12s} {r['form']:13s} "
                       f"{r['score']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] expected "
                       f"{r['expected']:+.3f} claimed {r['claimed']}; other claims "
                       f"{r['other claims']} (opposite sign {r['other opposite-sign claims']}), "
                       f"largest other |score| {r['largest other |score|']:.3f}")
    power = bias.planted_power(tests, record=rec, reps=power_reps, seed=seed) if power_reps \
        else None
    if power is not None:
        typer.echo(f"power: smallest planted effect claimed in >= 80% of {power_reps} "
                   f"replications (effects {', '.join(map(str, bias.EFFECTS))}; nan: none)")
        for row in power.smallest.itertuples():
            typer.echo(f"{row.test:12s} {row.form:13s} {row.nation:15s} n={row.n_items:4d} "
                       f"effect {row.smallest_effect:.2f} (expected score "
                       f"{row.expected_score:+.3f})")
    if out is not None:
        bias.write_calibration(out, null, power, spill)
        typer.echo(f"wrote {out}")


@app.command("report")
def report(run_dirs: RunDirsArg, out: ReportOutOpt = None) -> None:
    """HTML + Markdown report: nations x tests with CIs, rank correlations, across models."""
    preflight.run_folders(list(run_dirs), out or run_dirs[0] / "report")
    path = bias.write_report(list(run_dirs), out or run_dirs[0] / "report")
    typer.echo(f"report written to {path}")


@app.command("debias")
def debias(out: OutDebiasOpt, model: ModelOpt = "hf-local:smollm2", method: MethodOpt =
           "rag+reflexion", tests: TestsOpt = "directqa,association,vote",
           items: ItemsOpt = None,
           drafts_per_nation: DraftsOpt = None, top_k: TopKOpt = 4, rounds: RoundsOpt = 2,
           memory: MemoryOpt = 3, base_url: BaseUrlOpt = None, api_key_env: KeyEnvOpt = None,
           concurrency: ConcurrencyOpt = 4, seed: SeedOpt = 0, n_boot: BootOpt = 1000,
           paired_boot: PairedOpt = 200, record: RecordOpt = None,
           template_model: TemplateOpt = None, cache: CacheOpt = None,
           executor: ExecutorOpt = "local", address: AddressOpt = None,
           workers: WorkersOpt = None) -> None:
    """Undebiased and debiased runs on the same items; before/after with CIs, cost, report."""
    preflight.debias(out, method=method, tests=tests, drafts_per_nation=drafts_per_nation,
                     top_k=top_k, rounds=rounds,
                     memory=memory, concurrency=concurrency, seed=seed, n_boot=n_boot,
                     paired_boot=paired_boot, record=record, cache=cache, executor=executor,
                     workers=workers)
    config = bias.DebiasConfig(model=model, method=method, tests=tests,
                               drafts_per_nation=drafts_per_nation,
                               items=str(items) if items else None, seed=seed,
                               n_boot=n_boot, paired_boot=paired_boot, top_k=top_k,
                               rounds=rounds, memory_size=memory, base_url=base_url,
                               api_key_env=api_key_env, concurrency=concurrency,
                               record=str(record) if record else None)
    options = bias.BackendOptions(executor=executor, address=address, workers=workers,
                                  template_model=template_model, cache=cache if cache else True)
    result = bias.debias(config, out, options, shlex.join(["transferscope", *sys.argv[1:]]))
    typer.echo(result.verdict)
    for run in ("baseline", "debiased"):
        c = result.cost[run]
        typer.echo(f"{run}: model calls {c['model_calls']}, cache hits {c['cache_hits']}, "
                   f"tokens {c['tokens']}, {c['seconds']:.1f} s")
    c = result.cost
    typer.echo(f"evaluator verdicts: {c['evaluator_replies']} ({c['evaluator_constrained']} "
               f"constrained choice, {c['evaluator_free_text']} free text); not in the expected "
               f"form: {c['evaluator_unparsed']}; rejected answers: {c['evaluator_rejected']}")
    typer.echo(f"report written to {result.report}")


@app.command("compare")
def compare(run_dirs: ModelRunDirsArg, out: CompareOutOpt, n_boot: BootOpt = 200,
            seed: SeedOpt = 0) -> None:
    """Several models side by side: factual accuracy vs mean |bias|, correlation with CI."""
    preflight.run_folders(list(run_dirs), out, n_boot=n_boot, seed=seed)
    result = bias.compare_models(list(run_dirs), out, n_boot, seed)
    for row in result.models.itertuples(index=False):
        typer.echo(f"{row[0]}: accuracy {row[1]:.3f} [{row[2]:.3f}, {row[3]:.3f}], mean |bias| "
                   f"{row[4]:.3f} [{row[5]:.3f}, {row[6]:.3f}]")
    corr = result.corr
    typer.echo(f"pearson r (accuracy, |bias|) over {corr['models']} models: "
               f"{corr['pearson_r']:.3f} [{corr['ci_low']:.3f}, {corr['ci_high']:.3f}]")
    typer.echo(f"report written to {result.report}")


@app.command("show")
def show(run_dir: Annotated[Path, typer.Argument(help="A folder written by `bias run`.")]
         ) -> None:
    """A finished run at a glance (no model is asked): provenance, headline cells, other
    members, answers parsed per test; writes RUN_DIR/items.html, every item with its messages,
    reply, option log-probabilities, parse and gold."""
    from transferscope.bias.show import show_run

    view = show_run(run_dir)
    for line in view.lines:
        typer.echo(line)
    typer.echo(f"per-item page: {view.page}")


@app.command("import-unbench")
def import_unbench(checkout: Annotated[Path, typer.Argument(
                       help="A UNBench checkout: data/task2.csv + data/task2/<id>/*.json "
                       "(required), data/task1.json + data/task1/<id>/, data/task3.json.")],
                   out: Annotated[Path, typer.Option(
                       "--out", help="Items file to write (.jsonl, .csv or .parquet).")]
                   ) -> None:
    """UNBench as an items file for --items: task 2 as vote items (every Council member kept,
    gold votes kept), task 1 as co-author choice items, task 3 as adoption items; every row
    not imported (and task 4) is named with its reason."""
    from transferscope.bias.adapters.unbench import unbench_items
    from transferscope.bias.items import load_items, write_items

    preflight.items_file(out)
    converted = unbench_items(checkout)
    write_items(out, converted.rows)
    load_items(out)  # what was written reads back under the schema
    for key, value in converted.counts().items():
        typer.echo(f"{key}: {value}")
    for line in converted.skipped:
        typer.echo(f"not imported: {line}")
    typer.echo(f"items written to {out}")

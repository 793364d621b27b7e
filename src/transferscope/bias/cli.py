"""``transferscope bias``: build the UNSC record, run the bias tests, debias, report, compare.

Each command parses its options, calls one library function and prints its result.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

import transferscope.bias as bias
from transferscope.bias.config import (
    BackendOptions,
    CalibrateConfig,
    CompareConfig,
    DebiasConfig,
    RunConfig,
)
from transferscope.core.command_group import CommandGroup
from transferscope.core.params import FROM_OPTIONS, OptionGroup, option, with_groups

app = typer.Typer(
    cls=CommandGroup,
    help="Nation-level LLM bias tests grounded in UN Security Council records.",
    no_args_is_help=True,
)

RawOpt = Annotated[Path, typer.Option("--raw", help="Folder of raw UNSC records (vetoes/, "
                                      "meetings/, resolutions_en/).")]
OutRecordOpt = Annotated[Path | None, typer.Option(
    "--out", help="Where to write the record (default: rebuild the package's shipped copy).")]
OutRunOpt = Annotated[Path, typer.Option("--out", help="Run folder to write.")]
OutDebiasOpt = Annotated[Path, typer.Option("--out", help="Output folder (baseline/, debiased/, "
                                            "report/).")]
BackendCacheOpt = Annotated[Path | None, typer.Option(
    "--cache", help="SQLite response cache (default: <cache root>/bias/responses.sqlite).")]
RunDirsArg = Annotated[list[Path], typer.Argument(help="One or more run folders.")]
ModelRunDirsArg = Annotated[list[Path], typer.Argument(
    help="Run folders of several models (`bias run` outputs or debias baseline/, debiased/ "
    "folders).")]
ReportOutOpt = Annotated[Path | None, typer.Option(
    "--out", help="Report folder (default: <first run>/report).")]
CompareOutOpt = Annotated[Path, typer.Option("--out", help="Report folder.")]
# how a run reaches its model (all of BackendOptions but its cache, which is --cache above)
_BACKEND = OptionGroup(owner=BackendOptions, names=(
    "executor", "address", "workers", "max_retries", "timeout_s", "template_model"),
    flags={"timeout_s": "--timeout"})


def _with_cache(backend: BackendOptions, cache: Path | None) -> BackendOptions:
    """The backend options with --cache, when given (else the default SQLite cache)."""
    return backend if cache is None else dataclasses.replace(backend, cache=cache)


@app.command("build-data")
def build_data(raw: RawOpt, out: OutRecordOpt = None) -> None:
    """Rebuild the compact UNSC record; print counts and everything that could not be parsed."""
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
@with_groups(config=OptionGroup(owner=RunConfig), backend=_BACKEND)
def run(out: OutRunOpt,
        config: RunConfig = FROM_OPTIONS,
        backend: BackendOptions = FROM_OPTIONS,
        cache: BackendCacheOpt = None) -> None:
    """Run the tests on one model; write per-nation scores with bootstrap CIs to --out.

    Log-probability option scoring over HTTP: serve the model with llama-cpp-python started
    as `python -m llama_cpp.server --model M.gguf --model_alias NAME --logits_all true`, then
    `--model openai:NAME --base-url http://127.0.0.1:8000/v1 --template-model <its tokenizer>`.
    """
    result = bias.run_evaluation(config, out, options=_with_cache(backend, cache),
                                 command_line=shlex.join(["transferscope", *sys.argv[1:]]))
    if result.stats.extra.get("cache_notice"):
        typer.echo(f"note: {result.stats.extra['cache_notice']}")
    if result.stats.extra.get("context_fit"):
        typer.echo(result.stats.extra["context_fit"]["line"])
    typer.echo(f"headline: nation vs the median of the others, same-gold answers within each "
               f"draft; score = expected answer (argmax beside it); p adjusted ({config.adjust}) over "
               f"the {len(result.table)} cells; * = claims a bias (adjusted p < 0.05, no flag)")
    multi = result.spread is not None
    for row in result.table.itertuples():
        variant = f"{row.wording:8s}" if multi else ""
        typer.echo(f"{row.test:12s} {row.form:13s} {variant}{row.nation:15s} {row.score:+.3f} "
                   f"[{row.ci_low:+.3f}, {row.ci_high:+.3f}] argmax {row.score_argmax:+.3f} "
                   f"p_adj={row.p_adj:.3g}{' *' if row.claim else ''}  n={row.n_items} "
                   f"margin={row.margin_median:.2f} unparsed={row.n_unparsed}"
                   f"{'  ' + row.flag if row.flag else ''}")
    _echo_metric_rows(result.other_members, 9, "other members, on their own items (B = U - F; "
                      "U: not in favour where the gold is; not centred with the five):")
    spread = result.spread
    if spread is not None:
        typer.echo("across prompt variants (survives: every variant's CI excludes 0 on the "
                   "same side; flagged: under the variants named it cannot carry a claim):")
        for row in spread.itertuples():
            flags = f" under {row.flagged_under}" if row.flagged_under else ""
            typer.echo(f"{row.test:12s} {row.form:13s} {row.nation:15s} {row.min:+.3f}.."
                       f"{row.max:+.3f} sd={row.sd:.3f} order gap={row.order_gap:.3f}  "
                       f"{row.status}{flags}")
    _echo_metric_rows(result.outcomes, 28, "adoption and co-author choice, against the record "
                      "(descriptive, never a claim):")
    typer.echo(f"model calls: {result.stats.model_calls}, cache hits: "
               f"{result.stats.cache_hits}; wrote {out / 'scores.csv'}")



def _echo_metric_rows(rows: Any, metric_width: int, heading: str) -> None:
    """A table of metric rows (value, CI, n, unparsed, flag) under its heading, if any."""
    if not rows.empty:
        typer.echo(heading)
    for row in rows.itertuples():
        typer.echo(f"{row.test:12s} {row.form:13s} {row.nation:15s} "
                   f"{row.metric:{metric_width}s} {row.value:+.3f} [{row.ci_low:+.3f}, "
                   f"{row.ci_high:+.3f}]  n={row.n_items} unparsed={row.n_unparsed}"
                   f"{'  ' + row.flag if row.flag else ''}")

@app.command("calibrate")
@with_groups(config=OptionGroup(owner=CalibrateConfig))
def calibrate(config: CalibrateConfig = FROM_OPTIONS,
              out: Annotated[Path | None, typer.Option(
                  "--out", help="Folder for calibration.csv, claims.csv, planted.csv and "
                  "power.csv.")] = None) -> None:
    """Answerers with no opinion on the full item set (those that ignore the draft and those
    that answer by its era, topic, text or length but never by the nation): the share of
    cells that claim a bias must stay small; a bias planted on one nation must be found on it
    alone; then the smallest planted bias each test detects (power)."""
    found = bias.run_calibration(config, out)
    for row in found.null.itertuples():
        typer.echo(f"{row.model:22s} {row.test:12s} {row.form:13s} {row.nation:15s} "
                   f"{row.value:+.3f} [{row.ci_low:+.3f}, {row.ci_high:+.3f}] n={row.n_items} "
                   f"p_adj={row.p_adj:.3g}{'  CLAIM' if row.claim else ''}"
                   f"{'' if row.covers_0 else '  CI misses 0'}{'  ' + row.flag if row.flag else ''}")
    typer.echo("share of cells claiming a bias (adjusted p < 0.05, no flag) per answerer and "
               "test; narrowest CI width (never 0):")
    for row in found.shares.itertuples():
        typer.echo(f"{row.model:22s} {row.test:12s} {row.form:13s} claims {row.claims:.2f} of "
                   f"{row.cells}, CI misses 0 in {row.ci_misses_0:.2f}, narrowest CI "
                   f"{row.narrowest_ci:.3f}, largest |score| {row.largest_abs_score:.3f}")
    if found.coverage is not None:
        typer.echo(f"null:random over {config.coverage_seeds} seeds: share of 95% CIs covering 0, "
                   "share of cells claiming a bias")
        for row in found.coverage.itertuples():
            typer.echo(f"{row.test:12s} {row.form:13s} {row.coverage:.3f} cover 0, "
                       f"{row.claims:.3f} claim, of {row.cells} cells")
    if found.spillover is not None:
        typer.echo(f"planted effect {config.planted} on each nation in turn (random background): its "
                   "score and claim, and claims on the other nations")
        for _, r in found.spillover.iterrows():
            typer.echo(f"{r['planted on']:15s} {r['test']:12s} {r['form']:13s} "
                       f"{r['score']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] expected "
                       f"{r['expected']:+.3f} claimed {r['claimed']}; other claims "
                       f"{r['other claims']} (opposite sign {r['other opposite-sign claims']}), "
                       f"largest other |score| {r['largest other |score|']:.3f}")
    if found.power is not None:
        typer.echo(f"power: smallest planted effect claimed in >= 80% of {config.power_reps} "
                   f"replications (effects {', '.join(map(str, found.effects))}; nan: none)")
        for row in found.power.smallest.itertuples():
            typer.echo(f"{row.test:12s} {row.form:13s} {row.nation:15s} n={row.n_items:4d} "
                       f"effect {row.smallest_effect:.2f} (expected score "
                       f"{row.expected_score:+.3f})")
    if out is not None:
        typer.echo(f"wrote {out}")


@app.command("report")
def report(run_dirs: RunDirsArg, out: ReportOutOpt = None) -> None:
    """HTML + Markdown report: nations x tests with CIs, rank correlations, across models."""
    path = bias.write_report(list(run_dirs), out or run_dirs[0] / "report")
    typer.echo(f"report written to {path}")


@app.command("debias")
@with_groups(config=OptionGroup(owner=DebiasConfig, flags={"memory_size": "--memory"}),
             backend=_BACKEND)
def debias(out: OutDebiasOpt,
           config: DebiasConfig = FROM_OPTIONS,
           backend: BackendOptions = FROM_OPTIONS,
           cache: BackendCacheOpt = None) -> None:
    """Undebiased and debiased runs on the same items; before/after with CIs, cost, report."""
    result = bias.debias(config, out, _with_cache(backend, cache),
                         shlex.join(["transferscope", *sys.argv[1:]]))
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
def compare(run_dirs: ModelRunDirsArg, out: CompareOutOpt,
            n_boot: int = option(CompareConfig, "n_boot"),
            seed: int = option(CompareConfig, "seed")) -> None:
    """Several models side by side: factual accuracy vs mean |bias|, correlation with CI."""
    result = bias.compare_models(CompareConfig(run_dirs=tuple(run_dirs), out=out, n_boot=n_boot,
                                               seed=seed))
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
    view = bias.show_run(run_dir)
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
    converted = bias.import_unbench(checkout, out)
    for key, value in converted.counts().items():
        typer.echo(f"{key}: {value}")
    for line in converted.skipped:
        typer.echo(f"not imported: {line}")
    typer.echo(f"items written to {out}")


@app.command("export")
def export(items: Annotated[Path, typer.Argument(
               help="Items file (.jsonl, .csv, .parquet): anything `bias run --items` reads, "
               "e.g. what `bias import-unbench` wrote.")],
           fmt: Annotated[str, typer.Option(
               "--format", help="inspect (an inspect_ai task: task.py + dataset.jsonl) or "
               "lm-eval (an lm-eval-harness task: YAML + JSONL + utils.py).")],
           out: Annotated[Path, typer.Option("--out", help="Folder to write the task to.")],
           task_name: Annotated[str | None, typer.Option(
               "--task-name", help="The task's name (default: transferscope_<file stem>).")]
           = None,
           max_tokens: Annotated[int, typer.Option(
               "--max-tokens", min=1, help="Tokens per generated answer (as bias run's "
               "--max-tokens).")] = 16,
           context_tokens: Annotated[int | None, typer.Option(
               "--context-tokens", min=64, help="Shorten prompts longer than this context as "
               "bias run does (give the context your run had).")] = None,
           tokenizer: Annotated[str | None, typer.Option(
               "--tokenizer", help="Model whose tokenizer counts --context-tokens (registry name "
               "or local folder; default: a character estimate).")] = None) -> None:
    """Our items as an inspect_ai or lm-eval-harness task: the same messages `bias run` sends
    (instruction, options, order), generated greedily as `bias run --option-scoring generate`,
    each reply mapped to an option by our parser; gold, nation and draft in each sample."""
    result = bias.export_items(items, fmt, out, task_name=task_name, max_tokens=max_tokens,
                               context_tokens=context_tokens, tokenizer=tokenizer)
    if result.shortened:
        typer.echo(f"{result.shortened} of {result.n_items} items shortened to fit "
                   f"{context_tokens} tokens (marked context_fit in their metadata)")
    typer.echo(f"{result.n_items} items ({', '.join(f'{t}: {n}' for t, n in result.tests.items())}) "
               f"written as the {result.format} task {result.task_name}:")
    for path in result.files:
        typer.echo(f"  {path}")
    if result.format == "inspect":
        typer.echo(f"run: cd {result.out} && inspect eval task.py --model "
                   "openai-api/<service>/<model> (base URL in <SERVICE>_BASE_URL)")
    else:
        typer.echo(f"run: lm_eval --model local-chat-completions --model_args model=<model>,"
                   f"base_url=<url>/chat/completions --include_path {result.out} --tasks "
                   f"{result.task_name} --apply_chat_template")

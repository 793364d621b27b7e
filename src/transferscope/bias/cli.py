"""``transferscope bias``: build the UNSC record, run the bias tests, report on runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Nation-level LLM bias tests grounded in UN Security Council records.",
                  no_args_is_help=True)

RawOpt = Annotated[Path, typer.Option("--raw", help="Folder of raw UNSC records (vetoes/, "
                                      "meetings/, resolutions_en/).")]
OutRecordOpt = Annotated[Path | None, typer.Option(
    "--out", help="Where to write the record (default: rebuild the package's shipped copy).")]
OutRunOpt = Annotated[Path, typer.Option("--out", help="Run folder to write.")]
ModelOpt = Annotated[str, typer.Option("--model", help="hf-local[:name|path] or openai:<model>")]
TestsOpt = Annotated[str, typer.Option("--tests", help="Comma-separated: directqa, association, "
                                       "vote.")]
LimitOpt = Annotated[int | None, typer.Option(
    "--limit", min=1, help="Cap on drafts (or attribute pairs) per nation and test.")]
BaseUrlOpt = Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible server.")]
KeyEnvOpt = Annotated[str | None, typer.Option(
    "--api-key-env", help="Name of the environment variable holding the API key.")]
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", min=1)]
RetriesOpt = Annotated[int, typer.Option("--max-retries", min=0)]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds per HTTP request.")]
SeedOpt = Annotated[int, typer.Option("--seed")]
BootOpt = Annotated[int, typer.Option("--n-boot", min=10, help="Bootstrap resamples.")]
RecordOpt = Annotated[Path | None, typer.Option(
    "--record", help="A record folder written by build-data (default: the shipped record).")]
TemplateOpt = Annotated[str | None, typer.Option(
    "--template-model", help="openai: a local tokenizer of the served model (e.g. smollm2), to "
    "score options by log-likelihood instead of parsing text.")]
CacheOpt = Annotated[Path | None, typer.Option(
    "--cache", help="SQLite response cache (default: <cache root>/bias/responses.sqlite).")]
ExecutorOpt = Annotated[str, typer.Option("--executor", help="local, or ray (requests sharded "
                                          "over Ray workers, one backend replica each).")]
AddressOpt = Annotated[str | None, typer.Option(
    "--address", help="Ray cluster address (auto, host:6379, ray://host:10001); none: local.")]
WorkersOpt = Annotated[int | None, typer.Option("--workers", min=1, help="Ray workers.")]
RunDirsArg = Annotated[list[Path], typer.Argument(help="One or more run folders.")]
ReportOutOpt = Annotated[Path | None, typer.Option(
    "--out", help="Report folder (default: <first run>/report).")]


@app.command("build-data")
def build_data(raw: RawOpt, out: OutRecordOpt = None) -> None:
    """Rebuild the compact UNSC record; print counts and everything that could not be parsed."""
    from transferscope.bias.data.builder import build_record
    from transferscope.bias.data.record import SHIPPED_DIR, save_record

    record = build_record(raw)
    target = out or SHIPPED_DIR
    save_record(record, target)
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
        tests: TestsOpt = "directqa,association,vote", limit: LimitOpt = None,
        base_url: BaseUrlOpt = None, api_key_env: KeyEnvOpt = None,
        concurrency: ConcurrencyOpt = 4, max_retries: RetriesOpt = 4,
        timeout: TimeoutOpt = 60.0, seed: SeedOpt = 0, n_boot: BootOpt = 1000,
        record: RecordOpt = None, template_model: TemplateOpt = None,
        cache: CacheOpt = None, executor: ExecutorOpt = "local", address: AddressOpt = None,
        workers: WorkersOpt = None) -> None:
    """Run the tests on one model; write per-nation scores with bootstrap CIs to --out."""
    from transferscope.bias.executor_ray import backend_factory
    from transferscope.bias.probes.registry import parse_tests
    from transferscope.bias.runner import RunConfig, run_probes

    parse_tests(tests)  # an unknown test name fails before any model is loaded
    config = RunConfig(model=model, tests=tests, limit=limit, seed=seed, n_boot=n_boot,
                       base_url=base_url, api_key_env=api_key_env, concurrency=concurrency,
                       record=str(record) if record else None)
    make_backend = backend_factory(executor, address, workers)
    backend = make_backend(model, base_url=base_url, api_key_env=api_key_env,
                           concurrency=concurrency, max_retries=max_retries, timeout_s=timeout,
                           template_model=template_model, cache=cache if cache else True)
    try:
        scores = run_probes(backend, config, out)
    finally:
        backend.close()
    for row in scores[scores["headline"]].itertuples():
        typer.echo(f"{row.test:12s} {row.form:18s} {row.nation:15s} {row.value:+.3f} "
                   f"[{row.ci_low:+.3f}, {row.ci_high:+.3f}]  n={row.n_items} "
                   f"unparsed={row.n_unparsed}")
    typer.echo(f"model calls: {backend.stats.model_calls}, cache hits: "
               f"{backend.stats.cache_hits}; wrote {out / 'scores.csv'}")


@app.command("report")
def report(run_dirs: RunDirsArg, out: ReportOutOpt = None) -> None:
    """HTML + Markdown report: nations x tests with CIs, rank correlations, across models."""
    from transferscope.bias.run_report import write_report

    path = write_report(list(run_dirs), out or run_dirs[0] / "report")
    typer.echo(f"report written to {path}")

from transferscope.bias.cli_debias import app as debias_app  # noqa: E402  (debias, compare)

app.registered_commands += debias_app.registered_commands

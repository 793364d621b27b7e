"""``transferscope bias debias`` and ``transferscope bias compare`` (mounted by bias/cli.py)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)

OutOpt = Annotated[Path, typer.Option("--out", help="Output folder (baseline/, debiased/, "
                                      "report/).")]
ModelOpt = Annotated[str, typer.Option("--model", help="hf-local[:name|path] or openai:<model>")]
MethodOpt = Annotated[str, typer.Option("--method", help="rag, reflexion or rag+reflexion.")]
TestsOpt = Annotated[str, typer.Option("--tests", help="Comma-separated: directqa, "
                                       "association, vote.")]
LimitOpt = Annotated[int | None, typer.Option("--limit", min=1, help="Cap on drafts (or "
                                              "attribute pairs) per nation and test.")]
TopKOpt = Annotated[int, typer.Option("--top-k", help="Passages retrieved per item.")]
RoundsOpt = Annotated[int, typer.Option("--rounds", help="Reflexion retries after the first "
                                        "attempt.")]
MemoryOpt = Annotated[int, typer.Option("--memory", help="Reflections kept per item.")]
BaseUrlOpt = Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible server.")]
KeyEnvOpt = Annotated[str | None, typer.Option(
    "--api-key-env", help="Name of the environment variable holding the API key.")]
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", min=1)]
SeedOpt = Annotated[int, typer.Option("--seed")]
BootOpt = Annotated[int, typer.Option("--n-boot", min=10, help="Bootstrap resamples (CIs).")]
PairedOpt = Annotated[int, typer.Option("--paired-boot", min=10, help="Paired bootstrap "
                                        "resamples (change CIs, p-values).")]
RecordOpt = Annotated[Path | None, typer.Option("--record", help="A record folder written by "
                                                "build-data (default: the shipped record).")]
TemplateOpt = Annotated[str | None, typer.Option(
    "--template-model", help="openai: a local tokenizer of the served model, to score options "
    "by log-likelihood instead of parsing text.")]
CacheOpt = Annotated[Path | None, typer.Option("--cache", help="SQLite response cache.")]
ExecutorOpt = Annotated[str, typer.Option("--executor", help="local, or ray (requests sharded "
                                          "over Ray workers).")]
AddressOpt = Annotated[str | None, typer.Option("--address", help="Ray cluster address.")]
WorkersOpt = Annotated[int | None, typer.Option("--workers", min=1, help="Ray workers.")]
RunDirsArg = Annotated[list[Path], typer.Argument(help="Run folders of several models "
                                                  "(`bias run` outputs or debias baseline/, "
                                                  "debiased/ folders).")]
CompareOutOpt = Annotated[Path, typer.Option("--out", help="Report folder.")]


@app.command("debias")
def debias(out: OutOpt, model: ModelOpt = "hf-local:smollm2", method: MethodOpt =
           "rag+reflexion", tests: TestsOpt = "directqa,association,vote",
           limit: LimitOpt = None, top_k: TopKOpt = 4, rounds: RoundsOpt = 2,
           memory: MemoryOpt = 3, base_url: BaseUrlOpt = None, api_key_env: KeyEnvOpt = None,
           concurrency: ConcurrencyOpt = 4, seed: SeedOpt = 0, n_boot: BootOpt = 1000,
           paired_boot: PairedOpt = 200, record: RecordOpt = None,
           template_model: TemplateOpt = None, cache: CacheOpt = None,
           executor: ExecutorOpt = "local", address: AddressOpt = None,
           workers: WorkersOpt = None) -> None:
    """Undebiased and debiased runs on the same items; before/after with CIs, cost, report."""
    from transferscope.bias.debias.pipeline import DebiasConfig, run_debias
    from transferscope.bias.debias.report import write_debias_report
    from transferscope.bias.executor_ray import backend_factory
    from transferscope.bias.probes.registry import parse_tests

    parse_tests(tests)
    config = DebiasConfig(model=model, method=method, tests=tests, limit=limit, seed=seed,
                          n_boot=n_boot, paired_boot=paired_boot, top_k=top_k, rounds=rounds,
                          memory_size=memory, base_url=base_url, api_key_env=api_key_env,
                          concurrency=concurrency, record=str(record) if record else None)
    make_backend = backend_factory(executor, address, workers)
    backend = make_backend(model, base_url=base_url, api_key_env=api_key_env,
                           concurrency=concurrency, template_model=template_model,
                           cache=cache if cache else True)
    try:
        result = run_debias(backend, config, out)
    finally:
        backend.close()
    from transferscope.bias.debias.compare import verdict

    path = write_debias_report(out, shlex.join(["transferscope", *sys.argv[1:]]))
    typer.echo(verdict(result.summary))
    for run in ("baseline", "debiased"):
        c = result.cost[run]
        typer.echo(f"{run}: model calls {c['model_calls']}, cache hits {c['cache_hits']}, "
                   f"tokens {c['tokens']}, {c['seconds']:.1f} s")
    c = result.cost
    typer.echo(f"evaluator verdicts: {c['evaluator_replies']} ({c['evaluator_constrained']} "
               f"constrained choice, {c['evaluator_free_text']} free text); not in the expected "
               f"form: {c['evaluator_unparsed']}; rejected answers: {c['evaluator_rejected']}")
    typer.echo(f"report written to {path}")


@app.command("compare")
def compare(run_dirs: RunDirsArg, out: CompareOutOpt, n_boot: BootOpt = 200,
            seed: SeedOpt = 0) -> None:
    """Several models side by side: factual accuracy vs mean |bias|, correlation with CI."""
    from transferscope.bias.debias.compare import load_run_items, models_accuracy_vs_bias
    from transferscope.bias.debias.report import write_models_report

    runs = [load_run_items(d) for d in run_dirs]
    models, corr = models_accuracy_vs_bias(runs, n_boot, seed)
    for row in models.itertuples(index=False):
        typer.echo(f"{row[0]}: accuracy {row[1]:.3f} [{row[2]:.3f}, {row[3]:.3f}], mean |bias| "
                   f"{row[4]:.3f} [{row[5]:.3f}, {row[6]:.3f}]")
    typer.echo(f"pearson r (accuracy, |bias|) over {corr['models']} models: "
               f"{corr['pearson_r']:.3f} [{corr['ci_low']:.3f}, {corr['ci_high']:.3f}]")
    typer.echo(f"report written to {write_models_report(models, corr, out)}")

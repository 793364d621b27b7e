"""``transferscope dino fit|predict|bench|report``: DINO on CSV/Parquet tables.

Each command parses its options into its config (``dino/config.py``: the options' choices,
ranges, defaults and help come from the same declarations), calls
:func:`transferscope.dino.run` and prints what it returned; the computing modules are imported
inside the command so ``transferscope --help`` stays fast.
"""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from transferscope.core.command_group import CommandGroup
from transferscope.core.params import comma_list, declarations, option
from transferscope.dino import BenchConfig, FitConfig, PredictConfig, ReportConfig

app = typer.Typer(
    cls=CommandGroup,
    help="Distribution-informed neural networks (DINO-INIT / DINO-TRAIN) for domain-adaptation "
    "regression: fit on a table with a domain column, predict target rows, run the benchmarks.",
    no_args_is_help=True,
)


def _argument(owner: type, name: str) -> Any:
    """A positional argument with the help its config declares."""
    return typer.Argument(help=declarations(owner)[name].help)


NOTHING_KEPT = ("interrupted: no model was written and nothing is kept to resume from (a fit "
                "starts over); run the same command again")


@contextmanager
def _stop_without_resume():
    """Ctrl-C or SIGTERM during a fit: one honest line (a fit has no cache to resume from),
    exit 130 (143 for SIGTERM), instead of the resume line of the commands that cache."""
    stopped = {}

    def on_term(signum, frame):
        stopped["term"] = True
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    except KeyboardInterrupt:
        print(NOTHING_KEPT, file=sys.stderr)
        raise SystemExit(143 if stopped else 130) from None
    finally:
        signal.signal(signal.SIGTERM, before)


@app.command()
def fit(
    data: Annotated[Path, _argument(FitConfig, "data")],
    features: str = option(FitConfig, "features"),
    target: str = option(FitConfig, "target"),
    domain: str = option(FitConfig, "domain"),
    target_domain: str = option(FitConfig, "target_domain"),
    out: Path = option(FitConfig, "out"),
    source_domains: str | None = option(FitConfig, "source_domains"),
    categorical: str | None = option(FitConfig, "categorical"),
    impute: str | None = option(FitConfig, "impute"),
    drop_unlabelled_source: bool = option(FitConfig, "drop_unlabelled_source",
                                          "--drop-unlabelled-source"),
    holdout: float = option(FitConfig, "holdout"),
    preset: str = option(FitConfig, "preset"),
    kernel: str | None = option(FitConfig, "kernel"),
    factor: str | None = option(FitConfig, "factor"),
    mean: str | None = option(FitConfig, "mean"),
    posterior: str | None = option(FitConfig, "posterior"),
    depth: int | None = option(FitConfig, "depth"),
    w_std: float | None = option(FitConfig, "w_std"),
    b_std: float | None = option(FitConfig, "b_std"),
    n_base: int | None = option(FitConfig, "n_base"),
    steps: int | None = option(FitConfig, "n_steps", "--steps"),
    lr: float | None = option(FitConfig, "learning_rate", "--lr"),
    batch_size: int | None = option(FitConfig, "batch_size"),
    seed: int = option(FitConfig, "seed"),
) -> None:
    """Fit DINO on the source rows and the labelled target rows of DATA (a network or
    training setting left out takes the --preset's value)."""
    from transferscope.dino import run

    settings: dict[str, Any] = dict(
        data=data, features=comma_list(features), target=target, domain=domain,
        target_domain=target_domain, out=out, source_domains=comma_list(source_domains),
        categorical=categorical, impute=impute, drop_unlabelled_source=drop_unlabelled_source,
        holdout=holdout, preset=preset, kernel=kernel, factor=factor, mean=mean,
        posterior=posterior, depth=depth, w_std=w_std, b_std=b_std, n_base=n_base,
        n_steps=steps, learning_rate=lr, batch_size=batch_size, seed=seed)
    config = FitConfig(**settings)  # the options' callbacks checked each value
    with _stop_without_resume():
        done = run(config, notify=typer.echo)
    fitted = ", ".join(f"{k} = {v:.3g}" for k, v in done.fitted.items())
    typer.echo(f"fitted {done.estimator} on {done.n_source} source, {done.n_labelled} labelled "
               f"and {done.n_unlabelled} unlabelled target rows ({len(done.features)} features); "
               f"{fitted}; wrote {done.model_path}")
    if done.holdout is not None:
        h = done.holdout
        few = " (few rows: a noisy score, see its standard error)" if h.n_rows < 30 else ""
        typer.echo(f"held-out target rows: {h.n_rows}{few}; MAE {h.mae:.4g} ± {h.mae_se:.2g} "
                   f"(standard error), RMSE {h.rmse:.4g}, 90% interval coverage "
                   f"{h.coverage90:.2f}; predicting the labelled target mean: MAE "
                   f"{h.mean_mae:.4g}")


@app.command()
def predict(
    model_path: Annotated[Path, _argument(PredictConfig, "model_path")],
    data: Annotated[Path, _argument(PredictConfig, "data")],
    out: Path = option(PredictConfig, "out"),
) -> None:
    """Predict target-domain values (mean and predictive std) for every row of DATA."""
    from transferscope.dino import run

    done = run(PredictConfig(model_path=model_path, data=data, out=out))
    typer.echo(f"wrote {done.n_rows} predictions to {done.path}")


@app.command()
def bench(
    quick: bool = option(BenchConfig, "quick", "--quick"),
    tasks: str | None = option(BenchConfig, "tasks"),
    labels: str | None = option(BenchConfig, "labels"),
    seeds: int | None = option(BenchConfig, "seeds"),
    out: Path = option(BenchConfig, "out"),
) -> None:
    """Run the methods on the real tables at 20 and 50 labelled target rows over 5 seeds
    (cached per run, resumable) and write the tables: MAE ± sd, interval coverage, the
    defaults check."""
    from transferscope.dino import run

    config = BenchConfig(out=out, quick=quick, tasks=cast(Any, comma_list(tasks)),
                         labels=tuple(int(v) for v in comma_list(labels)), seeds=seeds)
    done = run(config)
    typer.echo(done.summary.to_string(index=False))
    typer.echo(done.ranks.to_string())
    typer.echo(done.defaults.to_string(index=False))
    typer.echo(f"wrote {done.runs_csv}, {done.summary_csv} and {done.report}")


@app.command()
def report(
    out: Path = option(ReportConfig, "out"),
    quick: bool = option(ReportConfig, "quick", "--quick"),
) -> None:
    """HTML/Markdown report: benchmark table (from the cache), MMD per task, finite-width check."""
    from transferscope.dino import run

    path = run(ReportConfig(out=out, quick=quick))
    typer.echo(f"wrote {path}")

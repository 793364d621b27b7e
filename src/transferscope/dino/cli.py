"""``transferscope dino fit|predict|bench|report``: DINO on CSV/Parquet tables.

Each command parses its options, calls one library function and prints what it returned; the
library is imported inside the command so ``transferscope --help`` stays fast.
"""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Distribution-informed neural networks (DINO-INIT / DINO-TRAIN) for domain-adaptation "
    "regression: fit on a table with a domain column, predict target rows, run the benchmarks.",
    no_args_is_help=True,
)


def _columns(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


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
    data: Annotated[Path, typer.Argument(help="CSV or Parquet table.")],
    features: Annotated[str, typer.Option(help="Comma-separated feature columns.")],
    target: Annotated[str, typer.Option(help="Numeric target column (empty cells on target "
                                        "rows mark unlabelled target points).")],
    domain: Annotated[str, typer.Option(help="Domain column.")],
    target_domain: Annotated[str, typer.Option(help="Domain value of the target rows (numbers "
                                               "matched by value, text case-insensitively).")],
    out: Annotated[Path, typer.Option(help="Where to write the fitted model (safetensors: data "
                                      "only, loading it runs no code).")] = Path(
        "dino_model.safetensors"),
    source_domains: Annotated[str | None, typer.Option(
        help="Comma-separated domain values of the source rows (default: every other row).")
    ] = None,
    categorical: Annotated[str | None, typer.Option(
        help="'one-hot': encode non-numeric feature columns (default: they are an error).")
    ] = None,
    impute: Annotated[str | None, typer.Option(
        help="'mean' | 'median': fill empty feature cells; 'drop': drop rows with an empty "
        "feature cell (default: an empty cell is an error). Dates count as numbers.")] = None,
    drop_unlabelled_source: Annotated[bool, typer.Option(
        "--drop-unlabelled-source", help="Drop source rows whose target cell is empty "
        "(default: an error); combines with any --impute.")] = False,
    holdout: Annotated[float, typer.Option(
        help="Hold out this fraction of the labelled target rows, print their score (with its "
        "standard error), then refit on all rows.")] = 0.0,
    preset: Annotated[str, typer.Option(
        help="'default' or 'authors' (the authors' released algorithm and settings).")
    ] = "default",
    kernel: Annotated[str | None, typer.Option(
        help="'ntk' (DINO-TRAIN, default) or 'nngp' (DINO-INIT).")] = None,
    factor: Annotated[str | None, typer.Option(
        help="'cosine' (default) or 'elu' (the authors' signed weights, unnormalised).")
    ] = None,
    mean: Annotated[str | None, typer.Option(
        help="Mean per domain: 'linear' (default: intercept per domain + shared slope), "
        "'domain-linear', 'constant' or 'none'.")] = None,
    posterior: Annotated[str | None, typer.Option(
        help="'auto' (default: exact up to 5,000 training rows, Nystrom above), 'exact', "
        "'nystrom' or 'cg'.")] = None,
    depth: Annotated[int | None, typer.Option(help="Hidden layers of the ReLU network.")] = None,
    w_std: Annotated[float | None, typer.Option(help="Weight std of the network.")] = None,
    b_std: Annotated[float | None, typer.Option(help="Bias std of the network.")] = None,
    n_base: Annotated[int | None, typer.Option(help="Base samples per domain.")] = None,
    steps: Annotated[int | None, typer.Option(
        help="Most Adam steps (how many are kept: 5-fold cross-validation).")] = None,
    lr: Annotated[float | None, typer.Option(help="Adam learning rate.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Source points per step.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Fit DINO on the source rows and the labelled target rows of DATA."""
    from transferscope.dino import preflight
    from transferscope.dino.table_model import fit_table

    columns = preflight.fit(
        data, out, features=features, target=target, domain=domain,
        source_domains=source_domains, categorical=categorical, impute=impute, holdout=holdout,
        preset=preset, kernel=kernel, factor=factor, mean=mean, posterior=posterior, depth=depth,
        w_std=w_std, b_std=b_std, n_base=n_base, steps=steps, lr=lr, batch_size=batch_size,
        seed=seed)
    with _stop_without_resume():
        done = fit_table(
            data, columns, target, domain, target_domain, out,
            source_domains=_columns(source_domains) if source_domains else None,
            categorical=categorical == "one-hot", impute=impute,
            drop_unlabelled_source=drop_unlabelled_source, holdout=holdout, preset=preset,
            seed=seed, notify=typer.echo, kernel=kernel, factor=factor, mean=mean,
            posterior=posterior, depth=depth, w_std=w_std, b_std=b_std, n_base=n_base,
            n_steps=steps, learning_rate=lr, batch_size=batch_size)
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
    model_path: Annotated[Path, typer.Argument(
        help="Model written by `dino fit` (pickles are refused, never loaded).")],
    data: Annotated[Path, typer.Argument(help="CSV or Parquet table with the model's features.")],
    out: Annotated[Path, typer.Option(help="CSV with predictions and std.")] = Path(
        "dino_predictions.csv"),
) -> None:
    """Predict target-domain values (mean and predictive std) for every row of DATA."""
    from transferscope.dino import preflight
    from transferscope.dino.table_model import predict_table

    preflight.predict(model_path, data, out)
    done = predict_table(model_path, data, out)
    typer.echo(f"wrote {done.n_rows} predictions to {done.path}")


@app.command()
def bench(
    quick: Annotated[bool, typer.Option("--quick", help="Two real tables at 20 labels, four "
                                        "methods (a few minutes).")] = False,
    tasks: Annotated[str | None, typer.Option(
        help="Comma-separated tables (default: all eight; see docs/dino.md).")] = None,
    labels: Annotated[str | None, typer.Option(
        help="Comma-separated labelled target rows per split (default: 20,50).")] = None,
    seeds: Annotated[int | None, typer.Option(help="Seeds per table (default: 5).")] = None,
    out: Annotated[Path, typer.Option(help="Output folder (tables + report).")] = Path(
        "dino_bench"),
) -> None:
    """Run the methods on the real tables at 20 and 50 labelled target rows over 5 seeds
    (cached per run, resumable) and write the tables: MAE ± sd, interval coverage, the
    defaults check."""
    from transferscope.dino import preflight
    from transferscope.dino.report import write_bench

    profile = preflight.bench(out, quick=quick, tasks=tasks, labels=labels, seeds=seeds)
    done = write_bench(profile, out)
    typer.echo(done.summary.to_string(index=False))
    typer.echo(done.ranks.to_string())
    typer.echo(done.defaults.to_string(index=False))
    typer.echo(f"wrote {done.runs_csv}, {done.summary_csv} and {done.report}")


@app.command()
def report(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("dino_report"),
    quick: Annotated[bool, typer.Option("--quick", help="Use the quick benchmark profile.")
                     ] = False,
) -> None:
    """HTML/Markdown report: benchmark table (from the cache), MMD per task, finite-width check."""
    from transferscope.dino import preflight
    from transferscope.dino.evaluation import PROFILES
    from transferscope.dino.report import write_full_report

    preflight.output(out)
    path = write_full_report(PROFILES["quick" if quick else "standard"], out)
    typer.echo(f"wrote {path}")

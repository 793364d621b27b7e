"""``transferscope dino fit|predict|bench|report``: DINO on CSV/Parquet tables.

Each command parses its options, calls one library function and prints what it returned; the
library is imported inside the command so ``transferscope --help`` stays fast.
"""

from __future__ import annotations

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
        help="'mean' | 'median': fill empty feature cells; 'drop': drop those rows and source "
        "rows without a label (default: an empty cell is an error).")] = None,
    holdout: Annotated[float, typer.Option(
        help="Hold out this fraction of the labelled target rows, print their score, then "
        "refit on all rows.")] = 0.0,
    preset: Annotated[str, typer.Option(
        help="'default' or 'authors' (the authors' released settings).")] = "default",
    kernel: Annotated[str | None, typer.Option(
        help="'ntk' (DINO-TRAIN, default) or 'nngp' (DINO-INIT).")] = None,
    factor: Annotated[str | None, typer.Option(
        help="'cosine' (default) or 'authors' (signed weights, unnormalised).")] = None,
    depth: Annotated[int | None, typer.Option(help="Hidden layers of the ReLU network.")] = None,
    w_std: Annotated[float | None, typer.Option(help="Weight std of the network.")] = None,
    b_std: Annotated[float | None, typer.Option(help="Bias std of the network.")] = None,
    n_base: Annotated[int | None, typer.Option(help="Base samples per domain.")] = None,
    steps: Annotated[int | None, typer.Option(help="Most Adam steps (early-stopped).")] = None,
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
        preset=preset, kernel=kernel, factor=factor, depth=depth, w_std=w_std, b_std=b_std,
        n_base=n_base, steps=steps, lr=lr, batch_size=batch_size, seed=seed)
    done = fit_table(
        data, columns, target, domain, target_domain, out,
        source_domains=_columns(source_domains) if source_domains else None,
        categorical=categorical == "one-hot", impute=impute, holdout=holdout, preset=preset,
        seed=seed, kernel=kernel, factor=factor, depth=depth, w_std=w_std, b_std=b_std,
        n_base=n_base, n_steps=steps, learning_rate=lr, batch_size=batch_size)
    typer.echo(f"fitted {done.variant} on {done.n_source} source, {done.n_labelled} labelled "
               f"and {done.n_unlabelled} unlabelled target rows ({len(done.features)} features); "
               f"noise (source, target) = ({done.noise_source:.3g}, {done.noise_target:.3g}), "
               f"lambda = {done.lambda_:.3g}, Adam steps kept = {done.selected_steps}; "
               f"wrote {done.model_path}")
    if done.holdout is not None:
        h = done.holdout
        typer.echo(f"held-out target rows: {h.n_rows}; MAE {h.mae:.4g}, RMSE {h.rmse:.4g}, "
                   f"95% interval coverage {h.coverage95:.2f}; predicting the labelled target "
                   f"mean: MAE {h.mean_mae:.4g}")


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
    quick: Annotated[bool, typer.Option("--quick", help="One synthetic and two real tasks, "
                                        "small source samples (a few minutes).")] = False,
    out: Annotated[Path, typer.Option(help="Output folder (tables + report).")] = Path(
        "dino_bench"),
) -> None:
    """Run every method on the offline tasks (cached, resumable) and write the tables."""
    from transferscope.dino import preflight
    from transferscope.dino.evaluation import PROFILES
    from transferscope.dino.report import write_bench

    preflight.output(out)
    done = write_bench(PROFILES["quick" if quick else "standard"], out)
    typer.echo(done.summary.to_string())
    typer.echo(done.ranks.to_string())
    typer.echo(done.goal.to_string(index=False))
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

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
    target_domain: Annotated[str, typer.Option(help="Value of the domain column that marks "
                                               "target rows; every other value is source.")],
    out: Annotated[Path, typer.Option(help="Where to write the fitted model.")] = Path(
        "dino_model.pkl"),
    kernel: Annotated[str, typer.Option(help="'ntk' (DINO-TRAIN) or 'nngp' (DINO-INIT).")] = "ntk",
    depth: Annotated[int, typer.Option(help="Hidden layers of the infinite ReLU network.")] = 2,
    steps: Annotated[int, typer.Option(help="Adam steps.")] = 150,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Fit DINO on the source rows and the labelled target rows of DATA."""
    from transferscope.core.errors import input_error
    from transferscope.dino.table_model import fit_table

    if kernel not in ("ntk", "nngp"):
        raise input_error("--kernel", "kernel", kernel, "'ntk' or 'nngp'")
    done = fit_table(data, _columns(features), target, domain, target_domain, out,
                     kernel=kernel, depth=depth, steps=steps, seed=seed)
    typer.echo(f"fitted {done.variant} on {done.n_source} source, {done.n_labelled} labelled "
               f"and {done.n_unlabelled} unlabelled target rows; noise (source, target) = "
               f"({done.noise_source:.3g}, {done.noise_target:.3g}); wrote {done.model_path}")


@app.command()
def predict(
    model_path: Annotated[Path, typer.Argument(help="Model written by `dino fit`.")],
    data: Annotated[Path, typer.Argument(help="CSV or Parquet table with the model's features.")],
    out: Annotated[Path, typer.Option(help="CSV with predictions and std.")] = Path(
        "dino_predictions.csv"),
) -> None:
    """Predict target-domain values (mean and predictive std) for every row of DATA."""
    from transferscope.dino.table_model import predict_table

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
    from transferscope.dino.evaluation import PROFILES
    from transferscope.dino.report import write_bench

    done = write_bench(PROFILES["quick" if quick else "standard"], out)
    typer.echo(done.summary.to_string())
    typer.echo(done.ranks.to_string())
    typer.echo(f"wrote {done.runs_csv}, {done.summary_csv} and {done.report}")


@app.command()
def report(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("dino_report"),
    quick: Annotated[bool, typer.Option("--quick", help="Use the quick benchmark profile.")
                     ] = False,
) -> None:
    """HTML/Markdown report: benchmark table (from the cache), MMD per task, finite-width check."""
    from transferscope.dino.evaluation import PROFILES
    from transferscope.dino.report import write_full_report

    path = write_full_report(PROFILES["quick" if quick else "standard"], out)
    typer.echo(f"wrote {path}")

"""``transferscope dino fit|predict|bench|report``: DINO on CSV/Parquet tables."""

from __future__ import annotations

import pickle
from pathlib import Path

import typer

app = typer.Typer(
    help="Distribution-informed neural networks (DINO-INIT / DINO-TRAIN) for domain-adaptation "
    "regression: fit on a table with a domain column, predict target rows, run the benchmarks.",
    no_args_is_help=True,
)

MODEL_FORMAT = "transferscope-dino-model-v1"


def _columns(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


@app.command()
def fit(
    data: Path = typer.Argument(..., help="CSV or Parquet table."),
    features: str = typer.Option(..., help="Comma-separated feature columns."),
    target: str = typer.Option(..., help="Numeric target column (empty cells on target rows "
                               "mark unlabelled target points)."),
    domain: str = typer.Option(..., help="Domain column."),
    target_domain: str = typer.Option(..., help="Value of the domain column that marks target "
                                      "rows; every other value is source."),
    out: Path = typer.Option(Path("dino_model.pkl"), help="Where to write the fitted model."),
    kernel: str = typer.Option("ntk", help="'ntk' (DINO-TRAIN) or 'nngp' (DINO-INIT)."),
    depth: int = typer.Option(2, help="Hidden layers of the infinite ReLU network."),
    steps: int = typer.Option(150, help="Adam steps."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Fit DINO on the source rows and the labelled target rows of DATA."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from transferscope.core.errors import input_error
    from transferscope.dino.estimator import DINORegressor
    from transferscope.dino.tables import read_table, split_table

    if kernel not in ("ntk", "nngp"):
        raise input_error("--kernel", "kernel", kernel, "'ntk' or 'nngp'")
    cols = _columns(features)
    parts = split_table(read_table(data), str(data), cols, target, domain, target_domain)
    import numpy as np

    X = np.vstack([parts.Xs, parts.Xt, parts.Xu])
    y = np.r_[parts.ys, parts.yt, np.full(len(parts.Xu), np.nan)]
    codes = np.r_[np.zeros(len(parts.Xs)), np.ones(len(parts.Xt)), np.full(len(parts.Xu), 2)]
    model = DINORegressor(kernel=kernel, depth=depth, n_steps=steps, random_state=seed,
                          verbose=True)
    pipe = make_pipeline(StandardScaler(), model)
    pipe.fit(X, y, dinoregressor__domain=codes)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": MODEL_FORMAT, "features": cols, "target": target, "pipeline": pipe}
    out.write_bytes(pickle.dumps(payload))
    typer.echo(f"fitted DINO-{'TRAIN' if kernel == 'ntk' else 'INIT'} on {len(parts.Xs)} source, "
               f"{len(parts.Xt)} labelled and {len(parts.Xu)} unlabelled target rows; "
               f"noise (source, target) = ({model.noise_source_:.3g}, {model.noise_target_:.3g}); "
               f"wrote {out}")


@app.command()
def predict(
    model_path: Path = typer.Argument(..., help="Model written by `dino fit`."),
    data: Path = typer.Argument(..., help="CSV or Parquet table with the model's features."),
    out: Path = typer.Option(Path("dino_predictions.csv"), help="CSV with predictions and std."),
) -> None:
    """Predict target-domain values (mean and predictive std) for every row of DATA."""
    from transferscope.core.errors import input_error
    from transferscope.dino.tables import numeric_columns, read_table

    try:
        payload = pickle.loads(model_path.read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError) as err:
        raise input_error(str(model_path), "model file", str(err)[:60],
                          "a model written by `transferscope dino fit`") from err
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise input_error(str(model_path), "format", type(payload).__name__, MODEL_FORMAT)
    frame = read_table(data)
    X = numeric_columns(frame, payload["features"], str(data), "feature")
    mean, std = payload["pipeline"].predict(X, return_std=True)
    result = frame.copy()
    result[f"{payload['target']}_pred"] = mean
    result[f"{payload['target']}_std"] = std
    out.parent.mkdir(parents=True, exist_ok=True)
    result.to_csv(out, index=False)
    typer.echo(f"wrote {len(result)} predictions to {out}")


@app.command()
def bench(
    quick: bool = typer.Option(False, "--quick", help="One synthetic and two real tasks, "
                               "small source samples (a few minutes)."),
    out: Path = typer.Option(Path("dino_bench"), help="Output folder (tables + report)."),
) -> None:
    """Run every method on the offline tasks (cached, resumable) and write the tables."""
    from transferscope.dino.benchmarks import PROFILES, ranks, run_benchmark, summary_table
    from transferscope.dino.reporting import write_report

    profile = PROFILES["quick" if quick else "standard"]
    runs, mmd = run_benchmark(profile)
    out.mkdir(parents=True, exist_ok=True)
    runs.to_csv(out / "runs.csv", index=False)
    table = summary_table(runs)
    table.to_csv(out / "summary.csv")
    typer.echo(table.to_string())
    typer.echo(ranks(runs).to_string())
    path = write_report(runs, mmd, out, finite_width=None)
    typer.echo(f"wrote {out / 'runs.csv'}, {out / 'summary.csv'} and {path}")


@app.command()
def report(
    out: Path = typer.Option(Path("dino_report"), help="Output folder."),
    quick: bool = typer.Option(False, "--quick", help="Use the quick benchmark profile."),
) -> None:
    """HTML/Markdown report: benchmark table (from the cache), MMD per task, finite-width check."""
    from transferscope.dino.benchmarks import PROFILES, run_benchmark
    from transferscope.dino.finite import width_sweep
    from transferscope.dino.reporting import write_report

    runs, mmd = run_benchmark(PROFILES["quick" if quick else "standard"])
    sweep = width_sweep()
    path = write_report(runs, mmd, out, finite_width=sweep)
    typer.echo(f"wrote {path}")

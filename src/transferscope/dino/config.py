"""What each ``dino`` operation is asked to do: one keyword-only, validated config per command,
read by :func:`transferscope.dino.runs.run` and by the command line alike (the CLI builds its
options from these declarations with :func:`transferscope.core.params.option`).

Light on purpose: no numpy, torch or scikit-learn, so ``transferscope dino --help`` stays fast.
A network or training setting left ``None`` takes the preset's value (``preset``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from transferscope.core.params import Spec, Validated
from transferscope.dino.params import (
    B_STD,
    BATCH_SIZE,
    DEPTH,
    FACTOR,
    KERNEL,
    LEARNING_RATE,
    MEAN,
    N_BASE,
    N_STEPS,
    POSTERIOR,
    RANDOM_STATE,
    W_STD,
    FactorForm,
    KernelName,
    MeanForm,
    PosteriorName,
)

__all__ = ["BenchConfig", "FitConfig", "PredictConfig", "ReportConfig"]

Preset = Literal["default", "authors"]
Impute = Literal["mean", "median", "drop"]
BenchTask = Literal["cps1988-south", "ames-north", "diamonds-cut", "computers-late",
                    "housing-prefarea", "schools-ma", "penguins-gentoo", "births-smokers"]
PRESETS: tuple[str, ...] = get_args(Preset)
IMPUTE: tuple[str, ...] = get_args(Impute)
BENCH_TASKS: tuple[str, ...] = get_args(BenchTask)


def _once(value: Any) -> str | None:
    names = list(value)
    repeated = sorted({n for n in names if names.count(n) > 1})
    return f"each name once ({repeated[0]!r} is repeated)" if repeated else None


def _some_once(value: Any) -> str | None:
    return "one or more comma-separated column names" if not len(value) else _once(value)


@dataclass(kw_only=True, frozen=True)
class FitConfig(Validated):
    """``dino fit``: a table, its columns, the preset and the settings that override it.

    Parameters
    ----------
    data, out : Path
        The CSV/Parquet table read and the model file written.
    features, target, domain, target_domain, source_domains
        The columns and the domain values (see :func:`transferscope.dino.io.split_table`).
    categorical, impute, drop_unlabelled_source
        How non-numeric and empty cells are handled.
    holdout : float
        Fraction of the labelled target rows held out to score the fit first.
    preset : {"default", "authors"}
        ``DINORegressor`` or the authors' released algorithm (``AuthorsDINO``).
    kernel, factor, mean, posterior, depth, w_std, b_std, n_base, n_steps, learning_rate,
    batch_size
        Estimator settings; ``None`` keeps the preset's.
    seed : int
        ``random_state`` of the estimator and of the holdout draw.
    """

    data: Annotated[Path, Spec(help="CSV or Parquet table.")]
    features: Annotated[tuple[str, ...], Spec(rule=_some_once, help="Feature columns.")]
    target: Annotated[str, Spec(help="Numeric target column (empty cells on target rows mark "
                                     "unlabelled target points).")]
    domain: Annotated[str, Spec(help="Domain column.")]
    target_domain: Annotated[str, Spec(help="Domain value of the target rows (numbers matched "
                                            "by value, text case-insensitively).")]
    out: Annotated[Path, Spec(help="Where to write the fitted model (safetensors: data only, "
                                   "loading it runs no code).")] = Path("dino_model.safetensors")
    source_domains: Annotated[tuple[str, ...], Spec(
        rule=_once, help="Domain values of the source rows (default: every other row).")] = ()
    categorical: Annotated[Literal["one-hot"] | None, Spec(
        help="'one-hot': encode non-numeric feature columns (default: they are an error).")
    ] = None
    impute: Annotated[Impute | None, Spec(
        help="'mean' | 'median': fill empty feature cells; 'drop': drop rows with an empty "
             "feature cell (default: an empty cell is an error). Dates count as numbers.")] = None
    drop_unlabelled_source: Annotated[bool, Spec(
        help="Drop source rows whose target cell is empty (default: an error); combines with "
             "any --impute.")] = False
    holdout: Annotated[float, Spec(
        ge=0, lt=1, help="Hold out this fraction of the labelled target rows, print their score "
                         "(with its standard error), then refit on all rows.")] = 0.0
    preset: Annotated[Preset, Spec(
        help="'default' or 'authors' (the authors' released algorithm and settings); the "
             "settings below override it.")] = "default"
    kernel: Annotated[KernelName | None, KERNEL] = None
    factor: Annotated[FactorForm | None, FACTOR] = None
    mean: Annotated[MeanForm | None, MEAN] = None
    posterior: Annotated[PosteriorName | None, POSTERIOR] = None
    depth: Annotated[int | None, DEPTH] = None
    w_std: Annotated[float | None, W_STD] = None
    b_std: Annotated[float | None, B_STD] = None
    n_base: Annotated[int | None, N_BASE] = None
    n_steps: Annotated[int | None, N_STEPS] = None
    learning_rate: Annotated[float | None, LEARNING_RATE] = None
    batch_size: Annotated[int | None, BATCH_SIZE] = None
    seed: Annotated[int, RANDOM_STATE] = 0

    def estimator_settings(self) -> dict[str, object]:
        """The estimator settings that override the preset (those not ``None``)."""
        names = ("kernel", "factor", "mean", "posterior", "depth", "w_std", "b_std", "n_base",
                 "n_steps", "learning_rate", "batch_size")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


@dataclass(kw_only=True, frozen=True)
class PredictConfig(Validated):
    """``dino predict``: a model file, a table with its features, the predictions file."""

    model_path: Annotated[Path, Spec(
        help="Model written by `dino fit` (pickles are refused, never loaded).")]
    data: Annotated[Path, Spec(help="CSV or Parquet table with the model's features.")]
    out: Annotated[Path, Spec(help="CSV with predictions and std.")] = Path(
        "dino_predictions.csv")


@dataclass(kw_only=True, frozen=True)
class BenchConfig(Validated):
    """``dino bench``: the benchmark profile (quick or standard, or one named in
    ``dino.PROFILES``; narrowed by ``tasks``, ``labels``, ``seeds``) and its folder (``None``:
    the tables are returned, no file is written)."""

    out: Annotated[Path | None, Spec(help="Output folder (tables + report).")] = Path(
        "dino_bench")
    quick: Annotated[bool, Spec(
        help="Two real tables at 20 labels, four methods (a few minutes).")] = False
    profile: Annotated[str | None, Spec(
        help="A profile named in dino.PROFILES (default: 'quick' with quick, else "
             "'standard').")] = None
    tasks: Annotated[tuple[BenchTask, ...], Spec(
        rule=_once, help="Tables (default: all eight; see docs/dino.md).")] = ()
    labels: Annotated[tuple[int, ...], Spec(
        ge=2, help="Labelled target rows per split (default: 20,50).")] = ()
    seeds: Annotated[int | None, Spec(ge=1, le=1000, help="Seeds per table (default: 5).")
                     ] = None


@dataclass(kw_only=True, frozen=True)
class ReportConfig(Validated):
    """``dino report``: the output folder and the benchmark profile read from the cache."""

    out: Annotated[Path, Spec(help="Output folder.")] = Path("dino_report")
    quick: Annotated[bool, Spec(help="Use the quick benchmark profile.")] = False

"""DINO on CSV/Parquet tables: fit a scaler + DINO pipeline from named columns, predict new rows.

These are the library calls behind ``transferscope dino fit|predict``. The rows are stacked with
one domain code each and the domain is routed to the last step, so the scaler sees source,
labelled and unlabelled target rows alike (docs/dino.md, Quick start).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from transferscope.core.errors import input_error
from transferscope.dino.authors import AuthorsDINO
from transferscope.dino.config import PRESETS
from transferscope.dino.cost import estimate_cost
from transferscope.dino.estimator import Z90, DINORegressor
from transferscope.dino.io import read_table, split_table, write_csv
from transferscope.dino.model_file import TableModel, load_model, save_model


@dataclass(kw_only=True)
class HoldoutScore:
    """Errors on labelled target rows held out of a fit, next to the answer with no opinion
    (the mean of the other labelled target rows): a model worth using beats it. ``mae_se`` is
    the standard error of the MAE over the held-out rows: with few rows the score is noisy."""

    n_rows: int
    mae: float
    mae_se: float
    rmse: float
    coverage90: float
    mean_mae: float


@dataclass(kw_only=True)
class TableFit:
    """What ``fit_table`` fitted and where it wrote the model; ``notes`` says what reading the
    table changed (dates, filled cells, dropped rows), ``plan`` the posterior and its estimated
    cost (said before the fit started)."""

    model_path: Path
    estimator: str
    n_source: int
    n_labelled: int
    n_unlabelled: int
    features: list[str]
    notes: list[str]
    plan: str
    holdout: HoldoutScore | None
    fitted: dict[str, float]


@dataclass(kw_only=True)
class TablePredictions:
    """Where ``predict_table`` wrote its predictions, and how many rows."""

    path: Path
    n_rows: int


AUTHORS_SETTINGS = ("kernel", "depth", "w_std", "b_std", "n_base", "n_steps", "learning_rate",
                    "batch_size", "dtype")


def fit_table(
    data: str | Path,
    features: list[str],
    target: str,
    domain: str,
    target_domain: str,
    out: str | Path,
    *,
    source_domains: list[str] | None = None,
    categorical: bool = False,
    impute: str | None = None,
    drop_unlabelled_source: bool = False,
    holdout: float = 0.0,
    preset: str = "default",
    seed: int = 0,
    verbose: bool = True,
    notify: Callable[[str], None] | None = None,
    **settings,
) -> TableFit:
    """Fit ``StandardScaler -> DINORegressor`` (or the authors' algorithm, ``AuthorsDINO``) on
    the source and labelled target rows of the table ``data`` (empty target cells on target rows
    are unlabelled target inputs) and save it to ``out``.

    Args:
        data: CSV or Parquet file.
        features, target, domain: column names; rows whose domain matches ``target_domain``
            (numbers by value, text case-insensitively) are target rows.
        out: where the fitted model is written (see :func:`transferscope.dino.model_file.load_model`).
        source_domains: domain values of the source rows (default: every non-target row).
        categorical, impute, drop_unlabelled_source: see
            :func:`transferscope.dino.io.split_table`.
        holdout: fraction of the labelled target rows held out first to score the procedure
            (MAE with its standard error, RMSE, 90% coverage, and the target-mean answer's MAE);
            the saved model is then refitted on all labelled rows.
        preset: ``"default"`` (``DINORegressor``) or ``"authors"`` (``AuthorsDINO``: their
            released algorithm and settings).
        seed: ``random_state`` of the model and of the holdout draw.
        notify: called with each line a user should read before the fit starts (what reading
            the table changed; the posterior and its estimated time and memory).
        settings: estimator parameters overriding the preset (``None`` values ignored).
        verbose: draw the fit's progress bars.
    """
    if preset not in PRESETS:
        raise input_error("fit", "preset", preset, "'default' or 'authors'")
    if not 0.0 <= holdout < 1.0:
        raise input_error("fit", "holdout", holdout, "a fraction in [0, 1)")
    params = {k: v for k, v in settings.items() if v is not None}
    if preset == "authors":
        params.pop("verbose", None)
        foreign = sorted(set(params) - set(AUTHORS_SETTINGS))
        if foreign:
            raise input_error("fit", foreign[0].replace("_", "-"), params[foreign[0]],
                              "no value with --preset authors (their algorithm has no such "
                              "setting)")
    table = split_table(read_table(data), str(data), features, target, domain, target_domain,
                        source_domains, categorical, impute, drop_unlabelled_source)
    Xs, Xt, Xu = table.data.Xs, table.data.Xt, table.data.Xu
    ys, yt = table.data.ys[:, 0], table.data.yt[:, 0]  # one target column
    n_s, n_t, n_u = len(Xs), len(Xt), len(Xu)
    say = notify or (lambda line: None)
    for line in table.notes:
        say(line)
    plan = _plan(preset, params, seed, n_s, n_t, Xs.shape[1])
    say(plan)
    score = None
    if holdout > 0:
        n_out = int(round(holdout * n_t))
        if n_out < 1 or n_t - n_out < 2:
            raise input_error("fit", "holdout", holdout,
                              f"a fraction leaving >= 1 held-out and >= 2 of {n_t} labelled rows")
        order = np.random.default_rng(seed).permutation(n_t)
        out_idx, in_idx = order[:n_out], order[n_out:]
        pipe = _fit(Xs, ys, Xt[in_idx], yt[in_idx], np.vstack([Xu, Xt[out_idx]]), preset,
                    params, seed, verbose)
        mean, std = pipe.predict(Xt[out_idx], return_std=True)
        err = np.abs(mean - yt[out_idx])
        se = float(err.std(ddof=1) / np.sqrt(n_out)) if n_out > 1 else float("nan")
        score = HoldoutScore(
            n_rows=n_out, mae=float(err.mean()), mae_se=se,
            rmse=float(np.sqrt((err**2).mean())), coverage90=float((err <= Z90 * std).mean()),
            mean_mae=float(np.abs(yt[in_idx].mean() - yt[out_idx]).mean()))
    pipe = _fit(Xs, ys, Xt, yt, Xu, preset, params, seed, verbose)
    model = pipe[-1]
    path = save_model(out, TableModel(pipeline=pipe, features=list(features), target=target,
                                      encoder=table.encoder))
    return TableFit(model_path=path, estimator=_name(model), n_source=n_s, n_labelled=n_t,
                    n_unlabelled=n_u, features=table.encoder.columns, notes=table.notes,
                    plan=plan, holdout=score, fitted=_fitted(model))


def _estimator(preset: str, params: dict, seed: int):
    if preset == "authors":
        return AuthorsDINO(**(params | {"random_state": seed}))
    return DINORegressor(**(params | {"random_state": seed}))


def _plan(preset: str, params: dict, seed: int, n_s: int, n_t: int, n_features: int) -> str:
    """The posterior and its estimated cost, as one line (the authors' algorithm: its size)."""
    model = _estimator(preset, params, seed)
    if preset == "authors":
        return (f"the authors' algorithm: {model.n_steps} Adam steps on batches of "
                f"{min(model.batch_size, n_s)} source rows, prediction from the last batch")
    return estimate_cost(model, n_s, n_t, n_features).line()


def _name(model) -> str:
    if isinstance(model, AuthorsDINO):
        return "the authors' DINO"
    return "DINO-TRAIN" if model.kernel == "ntk" else "DINO-INIT"


def _fitted(model) -> dict[str, float]:
    """The fitted numbers ``dino fit`` prints."""
    if isinstance(model, AuthorsDINO):
        return {"Adam steps": model.n_steps, "last loss": model.loss_curve_[-1]
                if model.loss_curve_ else float("nan")}
    return {"noise (source)": model.noise_source_, "noise (target)": model.noise_target_,
            "lambda": model.lambda_, "Adam steps kept": model.selected_steps_,
            "interval scale": model.calibration_scale_}


def _fit(Xs, ys, Xt, yt, Xu, preset: str, params: dict, seed: int, verbose: bool):
    """Stack the rows with one domain code each and fit the scaler + estimator pipeline."""
    X = np.vstack([Xs, Xt, Xu])
    y = np.r_[ys, yt, np.full(len(Xu), np.nan)]
    codes = np.r_[np.zeros(len(Xs)), np.ones(len(Xt)), np.full(len(Xu), 2)]
    model = _estimator(preset, params | ({} if preset == "authors" else {"verbose": verbose}),
                       seed)
    pipe = make_pipeline(StandardScaler(), model)
    name = type(model).__name__.lower()
    return pipe.fit(X, y, **{f"{name}__domain": codes})


def predict_table(model_path: str | Path, data: str | Path, out: str | Path) -> TablePredictions:
    """Write every row of ``data`` with ``<target>_pred`` and ``<target>_std`` (predictive mean
    and std of a target-domain observation) appended, as CSV to ``out``; rows dropped by the
    model's ``impute='drop'`` (an empty feature cell) get empty predictions."""
    model = load_model(model_path)
    frame = read_table(data)
    X, keep = model.encoder.transform(frame, str(data))
    mean, std = np.full(len(frame), np.nan), np.full(len(frame), np.nan)
    if keep.any():
        mean[keep], std[keep] = model.pipeline.predict(X, return_std=True)
        broken = keep & ~(np.isfinite(mean) & np.isfinite(std))
        if broken.any():  # never an empty prediction with exit 0
            raise input_error(str(data), "row", int(np.flatnonzero(broken)[0]),
                              "features the model can predict from (its prediction is not "
                              "a finite number)")
    result = frame.copy()
    result[f"{model.target}_pred"] = mean
    result[f"{model.target}_std"] = std
    return TablePredictions(path=write_csv(out, result), n_rows=len(result))

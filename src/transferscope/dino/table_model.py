"""DINO on CSV/Parquet tables: fit a scaler + DINO pipeline from named columns, predict new rows.

These are the library calls behind ``transferscope dino fit|predict``. The rows are stacked with
one domain code each and the domain is routed to the last step, so the scaler sees source,
labelled and unlabelled target rows alike (docs/dino.md, Quick start).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from transferscope.core.errors import input_error
from transferscope.dino.estimator import AUTHORS_PRESET, DINORegressor
from transferscope.dino.io import (
    TableModel,
    load_model,
    read_table,
    save_model,
    split_table,
    write_csv,
)


@dataclass
class HoldoutScore:
    """Errors on labelled target rows held out of a fit, next to the answer with no opinion
    (the mean of the other labelled target rows): a model worth using beats it."""

    n_rows: int
    mae: float
    rmse: float
    coverage95: float
    mean_mae: float


@dataclass
class TableFit:
    """What ``fit_table`` fitted and where it wrote the model."""

    model_path: Path
    kernel: str
    n_source: int
    n_labelled: int
    n_unlabelled: int
    noise_source: float
    noise_target: float
    lambda_: float
    selected_steps: int
    features: list[str]
    holdout: HoldoutScore | None

    @property
    def variant(self) -> str:
        """``DINO-TRAIN`` (NTK base kernel) or ``DINO-INIT`` (NNGP)."""
        return "DINO-TRAIN" if self.kernel == "ntk" else "DINO-INIT"


@dataclass
class TablePredictions:
    """Where ``predict_table`` wrote its predictions, and how many rows."""

    path: Path
    n_rows: int


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
    holdout: float = 0.0,
    preset: str = "default",
    seed: int = 0,
    verbose: bool = True,
    **settings,
) -> TableFit:
    """Fit ``StandardScaler -> DINORegressor`` on the source and labelled target rows of the
    table ``data`` (empty target cells on target rows are unlabelled target inputs) and save it
    to ``out``.

    Args:
        data: CSV or Parquet file.
        features, target, domain: column names; rows whose domain matches ``target_domain``
            (numbers by value, text case-insensitively) are target rows.
        out: where the fitted model is written (see :func:`transferscope.dino.io.load_model`).
        source_domains: domain values of the source rows (default: every non-target row).
        categorical, impute: see :func:`transferscope.dino.io.split_table`.
        holdout: fraction of the labelled target rows held out first to score the procedure
            (MAE, RMSE, 95% coverage, and the target-mean answer's MAE); the saved model is
            then refitted on all labelled rows.
        preset: ``"default"`` (DINORegressor's defaults) or ``"authors"`` (``AUTHORS_PRESET``).
        seed: ``random_state`` of the model and of the holdout draw.
        settings: DINORegressor parameters overriding the preset (``None`` values ignored).
        verbose: draw the fit's progress bar.
    """
    if preset not in ("default", "authors"):
        raise input_error("fit", "preset", preset, "'default' or 'authors'")
    if not 0.0 <= holdout < 1.0:
        raise input_error("fit", "holdout", holdout, "a fraction in [0, 1)")
    params = (AUTHORS_PRESET if preset == "authors" else {}) | {
        k: v for k, v in settings.items() if v is not None}
    parts = split_table(read_table(data), str(data), features, target, domain, target_domain,
                        source_domains, categorical, impute)
    n_s, n_t, n_u = len(parts.Xs), len(parts.Xt), len(parts.Xu)
    score = None
    if holdout > 0:
        n_out = int(round(holdout * n_t))
        if n_out < 1 or n_t - n_out < 2:
            raise input_error("fit", "holdout", holdout,
                              f"a fraction leaving >= 1 held-out and >= 2 of {n_t} labelled rows")
        order = np.random.default_rng(seed).permutation(n_t)
        out_idx, in_idx = order[:n_out], order[n_out:]
        pipe = _fit(parts.Xs, parts.ys, parts.Xt[in_idx], parts.yt[in_idx],
                    np.vstack([parts.Xu, parts.Xt[out_idx]]), params, seed, verbose)
        mean, std = pipe.predict(parts.Xt[out_idx], return_std=True)
        err = mean - parts.yt[out_idx]
        score = HoldoutScore(n_out, float(np.abs(err).mean()), float(np.sqrt((err**2).mean())),
                             float((np.abs(err) <= 1.959963984540054 * std).mean()),
                             float(np.abs(parts.yt[in_idx].mean() - parts.yt[out_idx]).mean()))
    pipe = _fit(parts.Xs, parts.ys, parts.Xt, parts.yt, parts.Xu, params, seed, verbose)
    model = pipe[-1]
    path = save_model(out, TableModel(pipe, list(features), target, parts.encoder))
    return TableFit(path, model.kernel, n_s, n_t, n_u, model.noise_source_, model.noise_target_,
                    model.lambda_, model.selected_steps_, parts.encoder.columns, score)


def _fit(Xs, ys, Xt, yt, Xu, params: dict, seed: int, verbose: bool):
    """Stack the rows with one domain code each and fit the scaler + DINO pipeline."""
    X = np.vstack([Xs, Xt, Xu])
    y = np.r_[ys, yt, np.full(len(Xu), np.nan)]
    codes = np.r_[np.zeros(len(Xs)), np.ones(len(Xt)), np.full(len(Xu), 2)]
    model = DINORegressor(**(params | {"random_state": seed, "verbose": verbose}))
    pipe = make_pipeline(StandardScaler(), model)
    return pipe.fit(X, y, dinoregressor__domain=codes)


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
    return TablePredictions(write_csv(out, result), len(result))

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

from transferscope.dino.estimator import DINORegressor
from transferscope.dino.io import (
    TableModel,
    load_model,
    numeric_columns,
    read_table,
    save_model,
    split_table,
    write_csv,
)


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
    kernel: str = "ntk",
    depth: int = 2,
    steps: int = 150,
    seed: int = 0,
    verbose: bool = True,
) -> TableFit:
    """Fit ``StandardScaler -> DINORegressor`` on the source and labelled target rows of the
    table ``data`` (empty target cells on target rows are unlabelled target inputs) and save it
    to ``out``.

    Args:
        data: CSV or Parquet file.
        features, target, domain: column names; ``domain == target_domain`` marks target rows.
        out: where the fitted model is written (see :func:`transferscope.dino.io.load_model`).
        kernel: ``"ntk"`` (DINO-TRAIN) or ``"nngp"`` (DINO-INIT); ``depth``, ``steps`` and
            ``seed`` are DINORegressor's ``depth``, ``n_steps`` and ``random_state``.
        verbose: draw the fit's progress bar.
    """
    parts = split_table(read_table(data), str(data), features, target, domain, target_domain)
    n_s, n_t, n_u = len(parts.Xs), len(parts.Xt), len(parts.Xu)
    X = np.vstack([parts.Xs, parts.Xt, parts.Xu])
    y = np.r_[parts.ys, parts.yt, np.full(n_u, np.nan)]
    codes = np.r_[np.zeros(n_s), np.ones(n_t), np.full(n_u, 2)]
    model = DINORegressor(kernel=kernel, depth=depth, n_steps=steps, random_state=seed,
                          verbose=verbose)
    pipe = make_pipeline(StandardScaler(), model)
    pipe.fit(X, y, dinoregressor__domain=codes)
    path = save_model(out, TableModel(pipe, list(features), target))
    return TableFit(path, kernel, n_s, n_t, n_u, model.noise_source_, model.noise_target_)


def predict_table(model_path: str | Path, data: str | Path, out: str | Path) -> TablePredictions:
    """Write every row of ``data`` with ``<target>_pred`` and ``<target>_std`` (predictive mean
    and std of a target-domain observation) appended, as CSV to ``out``."""
    model = load_model(model_path)
    frame = read_table(data)
    X = numeric_columns(frame, model.features, str(data), "feature")
    mean, std = model.pipeline.predict(X, return_std=True)
    result = frame.copy()
    result[f"{model.target}_pred"] = mean
    result[f"{model.target}_std"] = std
    return TablePredictions(write_csv(out, result), len(result))

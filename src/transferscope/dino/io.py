"""DINO's files: CSV/Parquet tables with named feature, target and domain columns in, fitted
models and prediction tables out (the input and output edge of ``dino fit|predict``)."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from transferscope.core.errors import input_error
from transferscope.core.io import atomic_write_bytes

MODEL_FORMAT = "transferscope-dino-model-v1"


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``, ``.pq``) file as a DataFrame."""
    path = Path(path)
    if not path.is_file():
        raise input_error(str(path), "file", str(path), "an existing CSV or Parquet file")
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if name.endswith((".csv", ".csv.gz", ".txt")):
            return pd.read_csv(path)
    except (ValueError, OSError) as err:
        raise input_error(str(path), "contents", str(err)[:80], "a readable table") from err
    raise input_error(str(path), "file type", path.suffix, ".csv, .csv.gz, .parquet or .pq")


def numeric_columns(
    frame: pd.DataFrame, columns: list[str], path: str, role: str, allow_empty: bool = False
) -> np.ndarray:
    """The named columns as float64; a missing column, a non-numeric cell, an infinite one or
    (unless ``allow_empty``) an empty one is one clear error."""
    out = []
    for col in columns:
        if col not in frame.columns:
            raise input_error(path, f"{role} column", col,
                              f"one of the file's columns {list(frame.columns)[:12]}")
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() & frame[col].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise input_error(path, f"{role} column '{col}' row {row}",
                              _cell(frame[col].iloc[row]), "a number")
        array = values.to_numpy(dtype=np.float64)
        invalid = np.isinf(array) | (np.isnan(array) & (not allow_empty))
        if invalid.any():
            row = int(np.flatnonzero(invalid)[0])
            raise input_error(path, f"{role} column '{col}' row {row}",
                              _cell(frame[col].iloc[row]), "a finite number")
        out.append(array)
    return np.column_stack(out)


def _cell(value: object) -> object:
    """A cell as the user wrote it: ``empty`` for a missing cell, plain Python for numpy."""
    if pd.isna(value):
        return "empty"
    return value.item() if isinstance(value, np.generic) else value


@dataclass
class DomainTable:
    """Source rows, labelled target rows and unlabelled target rows of one table."""

    Xs: np.ndarray
    ys: np.ndarray
    Xt: np.ndarray
    yt: np.ndarray
    Xu: np.ndarray


def split_table(frame: pd.DataFrame, path: str, features: list[str], target: str, domain: str,
                target_domain: str) -> DomainTable:
    """Rows whose ``domain`` equals ``target_domain`` are target (unlabelled where the target
    cell is empty); all other rows are source."""
    if domain not in frame.columns:
        raise input_error(path, "domain column", domain, f"one of {list(frame.columns)[:12]}")
    values = frame[domain].astype(str).str.strip()
    distinct = sorted(values.unique())
    if len(distinct) < 2:
        raise input_error(path, f"domain column '{domain}'", f"only {distinct}",
                          "at least two distinct values (source and target)")
    if str(target_domain) not in distinct:
        raise input_error(path, f"target domain value in '{domain}'", target_domain,
                          f"one of {distinct[:12]}")
    X = numeric_columns(frame, features, path, "feature")
    y = numeric_columns(frame, [target], path, "target", allow_empty=True)[:, 0]
    is_target = (values == str(target_domain)).to_numpy()
    source_missing = ~is_target & np.isnan(y)
    if source_missing.any():
        row = int(np.flatnonzero(source_missing)[0])
        raise input_error(path, f"target column '{target}' row {row}", "empty",
                          "a label on every source row")
    labelled = is_target & ~np.isnan(y)
    return DomainTable(X[~is_target], y[~is_target], X[labelled], y[labelled],
                       X[is_target & np.isnan(y)])


@dataclass
class TableModel:
    """A fitted scikit-learn pipeline (scaler + DINO) and the table columns it was fitted on."""

    pipeline: object
    features: list[str]
    target: str


def save_model(path: str | Path, model: TableModel) -> Path:
    """Pickle the model atomically, tagged with ``MODEL_FORMAT`` so a wrong file is caught."""
    payload = {"format": MODEL_FORMAT, "features": model.features, "target": model.target,
               "pipeline": model.pipeline}
    atomic_write_bytes(path, pickle.dumps(payload))
    return Path(path)


def load_model(path: str | Path) -> TableModel:
    """A model written by :func:`save_model`; anything else is one clear InputError."""
    path = Path(path)
    try:
        payload = pickle.loads(path.read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError) as err:
        raise input_error(str(path), "model file", str(err)[:60],
                          "a model written by `transferscope dino fit`") from err
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise input_error(str(path), "format", type(payload).__name__, MODEL_FORMAT)
    return TableModel(payload["pipeline"], payload["features"], payload["target"])


def write_csv(path: str | Path, frame: pd.DataFrame, index: bool = False) -> Path:
    """Write ``frame`` as CSV, atomically (an interrupted run never leaves half a table)."""
    atomic_write_bytes(path, frame.to_csv(index=index).encode("utf-8"))
    return Path(path)

"""DINO's tables: CSV/Parquet files with named feature, target and domain columns read into a
domain-adaptation problem, and prediction tables written (the table edge of
``dino fit|predict``; the fitted model's file is ``model_file.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from transferscope.core.checks import MAX_MAGNITUDE
from transferscope.core.errors import input_error
from transferscope.core.io import check_csv_layout
from transferscope.core.io import write_csv as _write_csv
from transferscope.dino.config import IMPUTE
from transferscope.dino.inputs import DomainData


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``, ``.pq``) file as a DataFrame."""
    path = Path(path)
    if not path.is_file():
        raise input_error(str(path), "file", str(path), "an existing CSV or Parquet file")
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz", ".txt")):
        check_csv_layout(path)  # a repeated column name or a ragged row, named by line
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if name.endswith((".csv", ".csv.gz", ".txt")):
            return pd.read_csv(path)
    except (ValueError, OSError) as err:
        raise input_error(str(path), "contents", str(err)[:80], "a readable table") from err
    raise input_error(str(path), "file type", path.suffix, ".csv, .csv.gz, .parquet or .pq")


def numeric_columns(
    frame: pd.DataFrame, columns: list[str], path: str, role: str, allow_empty: bool = False,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """The named columns as float64; a missing column, a non-numeric cell, an infinite one or
    (unless ``allow_empty``) an empty one is one clear error, naming the file's row (``rows``
    maps the frame's positions to file rows when it is a subset)."""
    rows = np.arange(len(frame)) if rows is None else rows
    out = []
    for col in columns:
        if col not in frame.columns:
            raise input_error(path, f"{role} column", col,
                              f"one of the file's columns {list(frame.columns)[:12]}")
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() & frame[col].notna()
        if bad.any():
            pos = int(np.flatnonzero(bad.to_numpy())[0])
            raise input_error(path, f"{role} column '{col}' row {rows[pos]}",
                              _cell(frame[col].iloc[pos]),
                              "a number" + (" (or --categorical one-hot)" if role == "feature"
                                            else ""))
        array = values.to_numpy(dtype=np.float64)
        invalid = np.isinf(array) | (np.isnan(array) & (not allow_empty))
        if invalid.any():
            pos = int(np.flatnonzero(invalid)[0])
            empty = pd.isna(frame[col].iloc[pos]) and role == "feature"
            raise input_error(path, f"{role} column '{col}' row {rows[pos]}",
                              _cell(frame[col].iloc[pos]),
                              "a finite number" + (" (or --impute mean|median|drop)" if empty
                                                   else ""))
        huge = np.abs(array) > MAX_MAGNITUDE  # squared in the scaler and the kernels
        if huge.any():
            pos = int(np.flatnonzero(huge)[0])
            raise input_error(path, f"{role} column '{col}' row {rows[pos]}", array[pos].item(),
                              f"a magnitude at most {MAX_MAGNITUDE:g} (its square must not "
                              "overflow)")
        out.append(array)
    return np.column_stack(out)


def _cell(value: object) -> object:
    """A cell as the user wrote it: ``empty`` for a missing cell, plain Python for numpy."""
    if pd.isna(value):
        return "empty"
    return value.item() if isinstance(value, np.generic) else value




def domain_key(value: object) -> object:
    """How domain values are compared: numbers by value (``3`` = ``3.0`` = ``"3"``), text
    without surrounding spaces and case (``Africa`` = ``africa``)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            return text.casefold()
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value).strip().casefold()


def fractional_year(values: pd.Series) -> np.ndarray:
    """Dates (and times) as fractional years: 2004-01-01 00:00 -> 2004.0, 2004-07-01 ->
    2004.497 (182 of 366 days); NaN where a cell is empty or is not a date."""
    stamps = _parse_dates(values)
    start = pd.to_datetime(stamps.dt.year.astype("Int64").astype(str) + "-01-01",
                           errors="coerce")
    days = np.where(stamps.dt.is_leap_year, 366.0, 365.0)
    elapsed = (stamps - start).dt.total_seconds().to_numpy(dtype=np.float64) / 86400.0
    return stamps.dt.year.to_numpy(dtype=np.float64) + elapsed / days


def _parse_dates(values: pd.Series) -> pd.Series:
    """Parsed timestamps (timezone dropped), NaT for empty or unparseable cells."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    else:
        text = values.astype("string").str.strip()
        parsed = pd.to_datetime(text, errors="coerce", format="mixed")
        parsed = parsed.where(text.str.contains(r"\d", regex=True).fillna(False))
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return pd.to_datetime(parsed)


def _is_date_column(present: pd.Series) -> bool:
    """A datetime column, or text whose every non-empty cell is a date with digits in it
    (``2004-07-01``, ``07/01/2004 10:00``; not ``March`` or ``yes``)."""
    if pd.api.types.is_datetime64_any_dtype(present):
        return True
    if pd.api.types.is_numeric_dtype(present) or present.empty:
        return False
    if pd.to_numeric(present, errors="coerce").notna().all():
        return False  # numbers written as text are numbers
    return bool(_parse_dates(present).notna().all())


@dataclass(kw_only=True)
class FeatureEncoder:
    """How table columns become the model's numeric features, learned on the fit table and
    reapplied unchanged at predict time: date columns as fractional years, one-hot categories
    per categorical column (in the order first seen) and, with ``impute``, the fill value of
    each numeric or date column."""

    features: list[str]
    categories: dict[str, list[str]]
    fill: dict[str, float]
    impute: str | None
    dates: list[str] = field(default_factory=list)

    @classmethod
    def learn(cls, frame: pd.DataFrame, path: str, features: list[str], categorical: bool,
              impute: str | None) -> FeatureEncoder:
        """Find the date columns, the categorical ones (non-numeric, if ``categorical``) and
        the fill values."""
        if impute is not None and impute not in IMPUTE:
            raise input_error(path, "impute", impute, "'mean', 'median' or 'drop'")
        categories, fill, dates = {}, {}, []
        for col in features:
            if col not in frame.columns:
                raise input_error(path, "feature column", col,
                                  f"one of the file's columns {list(frame.columns)[:12]}")
            present = frame[col].dropna()
            if _is_date_column(present):
                dates.append(col)
                numeric = pd.Series(fractional_year(present))
            else:
                numeric = pd.to_numeric(present, errors="coerce")
                if categorical and numeric.isna().any():
                    categories[col] = list(dict.fromkeys(present.astype(str).str.strip()))
                    continue
            if impute in ("mean", "median"):
                finite = numeric[np.isfinite(numeric)]
                fill[col] = float(finite.mean() if impute == "mean" else finite.median())
        return cls(features=list(features), categories=categories, fill=fill, impute=impute,
                   dates=dates)

    @property
    def columns(self) -> list[str]:
        """Names of the encoded features (``col=value`` for one-hot columns)."""
        out = []
        for col in self.features:
            out += [f"{col}={c}" for c in self.categories[col]] if col in self.categories else [col]
        return out

    def transform(self, frame: pd.DataFrame, path: str) -> tuple[np.ndarray, np.ndarray]:
        """Encoded features (float64) and a mask of the rows kept (all unless ``impute='drop'``,
        which drops rows with an empty feature cell). An empty cell without ``impute``, a date
        cell that is not a date, or a category unseen in the fit table, is one clear error."""
        keep = np.ones(len(frame), dtype=bool)
        if self.impute == "drop":
            keep = frame[self.features].notna().all(axis=1).to_numpy()
        blocks = []
        for col in self.features:
            if col not in frame.columns:
                raise input_error(path, "feature column", col,
                                  f"one of the file's columns {list(frame.columns)[:12]}")
            if col in self.categories:
                blocks.append(self._one_hot(frame[col], col, path, keep))
                continue
            values = frame[[col]].copy()
            if col in self.dates:
                years = fractional_year(values[col])
                bad = np.isnan(years) & values[col].notna().to_numpy()
                if bad.any():
                    row = int(np.flatnonzero(bad)[0])
                    raise input_error(path, f"feature column '{col}' row {row}",
                                      _cell(values[col].iloc[row]),
                                      "a date, as in the fit table (e.g. 2004-07-01)")
                values[col] = years
            if col in self.fill:
                values[col] = values[col].where(values[col].notna(), self.fill[col])
            blocks.append(numeric_columns(values[keep], [col], path, "feature",
                                          rows=np.flatnonzero(keep)))
        return np.column_stack(blocks), keep

    def _one_hot(self, column: pd.Series, col: str, path: str, keep: np.ndarray) -> np.ndarray:
        known = self.categories[col]
        out = np.zeros((int(keep.sum()), len(known)))
        for i, row in enumerate(np.flatnonzero(keep)):
            cell = column.iloc[row]
            if pd.isna(cell):
                if self.impute is None:
                    raise input_error(path, f"feature column '{col}' row {row}", "empty",
                                      "a category (or --impute mean|median|drop)")
                continue  # imputed: no category (all zeros)
            name = str(cell).strip()
            if name not in known:
                raise input_error(path, f"feature column '{col}' row {row}", name,
                                  f"one of the fit table's categories {known[:12]}")
            out[i, known.index(name)] = 1.0
        return out

    def notes(self, frame: pd.DataFrame) -> list[str]:
        """One line per encoding decision a user should know of (dates, filled cells)."""
        lines = [f"column '{col}' holds dates: encoded as fractional years (2004-07-01 -> "
                 "2004.497), not as categories" for col in self.dates]
        for col, value in self.fill.items():
            empty = int(frame[col].isna().sum()) if col in frame.columns else 0
            if empty:
                lines.append(f"filled {empty} empty cell(s) of '{col}' with its {self.impute} "
                             f"{value:.6g}")
        return lines


@dataclass(kw_only=True)
class TableRows:
    """One table read for a fit: its source, labelled target and unlabelled target rows
    (``data``, the problem every estimator takes), how its columns became features
    (``encoder``) and one line per row or cell the reading changed (``notes``)."""

    data: DomainData
    encoder: FeatureEncoder
    notes: list[str] = field(default_factory=list)


def split_table(frame: pd.DataFrame, path: str, features: list[str], target: str, domain: str,
                target_domain: str, source_domains: list[str] | None = None,
                categorical: bool = False, impute: str | None = None,
                drop_unlabelled_source: bool = False) -> TableRows:
    """Rows whose ``domain`` matches ``target_domain`` (see ``domain_key``) are target
    (unlabelled where the target cell is empty); source rows are those matching
    ``source_domains``, or every other row when it is not given. Date columns become
    fractional years; ``categorical`` one-hot encodes other non-numeric feature columns;
    ``impute`` fills empty feature cells with the column mean or median over the source and
    target rows, or drops those rows; ``drop_unlabelled_source`` drops source rows with an empty
    target cell (else they are an error). Each of these, when it changed something, is one line
    in ``notes``."""
    if domain not in frame.columns:
        raise input_error(path, "domain column", domain, f"one of {list(frame.columns)[:12]}")
    keys = frame[domain].map(domain_key)
    shown = sorted(dict.fromkeys(frame[domain].astype(str).str.strip()))
    if keys.nunique() < 2:
        raise input_error(path, f"domain column '{domain}'", f"only {shown}",
                          "at least two distinct values (source and target)")
    is_target = (keys == domain_key(target_domain)).to_numpy()
    if not is_target.any():
        raise input_error(path, f"target domain value in '{domain}'", target_domain,
                          f"one of {shown[:12]}")
    if source_domains:
        wanted = [domain_key(v) for v in source_domains]
        for value, key in zip(source_domains, wanted, strict=True):
            if not (keys == key).any():
                raise input_error(path, f"source domain value in '{domain}'", value,
                                  f"one of {shown[:12]}")
        is_source = keys.isin(wanted).to_numpy() & ~is_target
    else:
        is_source = ~is_target
    used = frame[is_source | is_target]
    encoder = FeatureEncoder.learn(used, path, features, categorical, impute)
    notes = encoder.notes(used)
    X, keep = encoder.transform(frame, path)
    dropped = int(((is_source | is_target) & ~keep).sum())
    if dropped:
        notes.append(f"dropped {dropped} row(s) with an empty feature cell (--impute drop)")
    y_all = numeric_columns(frame, [target], path, "target", allow_empty=True)[:, 0]
    is_source, is_target, y = is_source[keep], is_target[keep], y_all[keep]
    source_missing = is_source & np.isnan(y)
    if source_missing.any() and drop_unlabelled_source:
        is_source = is_source & ~source_missing
        notes.append(f"dropped {int(source_missing.sum())} source row(s) without a label "
                     "(--drop-unlabelled-source)")
    elif source_missing.any():
        row = int(np.flatnonzero(keep)[np.flatnonzero(source_missing)[0]])
        raise input_error(path, f"target column '{target}' row {row}", "empty",
                          "a label on every source row (or --drop-unlabelled-source)")
    labelled = is_target & ~np.isnan(y)
    unlabelled = is_target & np.isnan(y)
    if unlabelled.any():
        notes.append(f"{int(unlabelled.sum())} target row(s) without a label: used as "
                     "unlabelled target inputs")
    data = DomainData(Xs=X[is_source], ys=y[is_source, None], Xt=X[labelled],
                      yt=y[labelled, None], Xu=X[unlabelled], y_is_1d=True)
    return TableRows(data=data, encoder=encoder, notes=notes)


def write_csv(path: str | Path, frame: pd.DataFrame, index: bool = False) -> Path:
    """Write ``frame`` as CSV, atomically (an interrupted run never leaves half a table), its
    text cells safe to open in a spreadsheet (``core.io.write_csv``)."""
    return _write_csv(path, frame, index=index)

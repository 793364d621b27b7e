"""Writing and reading the project's files: one serialisation rule, every write atomic.

Atomic (temp file + rename): a reader sees the old file or the whole new one, never a torn
write, which is what lets an interrupted run resume from what it wrote. JSON follows one rule,
:func:`json_ready`, everywhere (run folders, caches, reports), so a value is written the same way
whichever part wrote it.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import gzip
import io
import json
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from transferscope.core.errors import InputError


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` so that readers see the old file or the whole new one, never a torn write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def json_ready(obj: Any) -> Any:
    """Plain JSON values: numpy scalars/arrays to Python, sets to sorted lists, dataclasses to
    dicts, paths and dates to strings, non-finite floats to ``None`` (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (set, frozenset)):
        return [json_ready(v) for v in sorted(obj, key=str)]
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return json_ready(dataclasses.asdict(obj))
    if isinstance(obj, np.ndarray):
        return json_ready(obj.tolist())
    if isinstance(obj, np.generic):
        return json_ready(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (dt.date, dt.datetime)):
        return obj.isoformat()
    return obj


def dumps(obj: Any, *, indent: int | None = 1, sort_keys: bool = False) -> str:
    """``obj`` as JSON text under the project's one rule (:func:`json_ready`)."""
    return json.dumps(json_ready(obj), indent=indent, sort_keys=sort_keys, ensure_ascii=False)


def write_json(path: str | Path, obj: Any, *, indent: int | None = 1,
               sort_keys: bool = False) -> Path:
    """Write ``obj`` as JSON, atomically; returns the path."""
    path = Path(path)
    atomic_write_bytes(path, dumps(obj, indent=indent, sort_keys=sort_keys).encode("utf-8"))
    return path


def write_jsonl(path: str | Path, rows: Iterable[Any]) -> Path:
    """Write one JSON object per line, atomically; returns the path."""
    path = Path(path)
    text = "".join(dumps(row, indent=None) + "\n" for row in rows)
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """Load a JSON file; a missing or damaged file is one :class:`InputError` line naming it."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: not found: expected the {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read it ({exc}): expected the {what}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg}): expected "
                         f"the {what}") from None


def check_csv_layout(path: str | Path, sep: str = ",") -> None:
    """A delimited text file (``.gz`` too) whose header names each column once and whose rows
    each have one field per column; else one InputError naming the file and the line.

    pandas reads both silently wrong: a repeated name becomes ``name.1`` and the first column
    wins; a first row with one field too many turns the first column into the row index."""
    path = Path(path)
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as fh:
            rows = csv.reader(fh, delimiter=sep)
            header = next(rows, None)
            if header is None:
                return  # empty: the table reader says so
            names = [name.strip() for name in header]
            repeated = sorted({name for name in names if names.count(name) > 1})
            if repeated:
                raise InputError(f"{path}: header: column {repeated[0]!r} appears "
                                 f"{names.count(repeated[0])} times: expected each column "
                                 "name once")
            for row in rows:
                if row and len(row) != len(header):
                    raise InputError(f"{path}: line {rows.line_num}: {len(row)} fields: "
                                     f"expected {len(header)}, one per header column")
    except (UnicodeDecodeError, csv.Error, OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read it as text ({exc}): expected a UTF-8 "
                         "delimited table") from None


def read_parquet(path: str | Path, what: str, columns: Iterable[str] = ()) -> Any:
    """A Parquet file as a DataFrame holding ``columns``; a damaged or foreign file is one
    InputError line naming it (and the first missing column)."""
    import pandas as pd

    path = Path(path)
    try:
        frame = pd.read_parquet(path)
    except FileNotFoundError:
        raise InputError(f"{path}: not found: expected the {what}") from None
    except Exception as exc:  # noqa: BLE001 - pyarrow raises its own types for damaged files
        raise InputError(f"{path}: not a readable Parquet file ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:80]}): expected the {what}") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: column {missing[0]!r} is missing: expected the {what} "
                         f"(columns {', '.join(columns)})")
    return frame


def read_jsonl(path: str | Path, what: str) -> list[Any]:
    """One JSON value per line (``.gz`` too), blank lines skipped; a damaged line is one
    InputError naming the file and the line."""
    path = Path(path)
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    rows = []
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}: line {number}: not valid JSON ({exc.msg}): "
                                     f"expected the {what}, one JSON value per line") from None
    except FileNotFoundError:
        raise InputError(f"{path}: not found: expected the {what}") from None
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read it ({exc}): expected the {what}") from None
    return rows


def save_array(path: str | Path, arr: Any, dtype: Any = None) -> Path:
    """Write an array as ``.npy`` (no pickles), atomically; returns the path."""
    path = Path(path)
    buf = io.BytesIO()
    np.save(buf, np.asarray(arr, dtype=dtype), allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_array(path: str | Path, what: str = "array file") -> np.ndarray:
    """Read an ``.npy`` array (no pickles); a missing or damaged file is one InputError line."""
    path = Path(path)
    try:
        array: np.ndarray = np.load(path, allow_pickle=False)
        return array
    except FileNotFoundError:
        raise InputError(f"{path}: not found: expected the {what}") from None
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"{path}: damaged ({exc}): expected the {what} (.npy)") from None


def write_png(fig: Any, path: str | Path, dpi: int = 120) -> Path:
    """Save a matplotlib figure as PNG, atomically, and close it; returns the path."""
    import matplotlib.pyplot as plt

    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path

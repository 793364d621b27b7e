"""Writing and reading the project's files: one serialisation rule, every write atomic.

Atomic (temp file + rename): a reader sees the old file or the whole new one, never a torn
write, which is what lets an interrupted run resume from what it wrote. A new file gets the
mode a plain ``open`` would give it (0644 under the usual umask; a replaced file keeps its
own), and a write inside a command's claimed output passes the output rule of
:mod:`transferscope.core.outdir` (never over an input, a device or a file the user owns).
JSON follows one rule, :func:`json_ready`, everywhere (run folders, caches, reports), so a value
is written the same way whichever part wrote it, with credentials removed from any URL in it.
CSV cells that a spreadsheet would run as formulas are written as text (:func:`write_csv`).
Readers are bounded (:mod:`transferscope.core.bounded`): line and nesting caps, dtype and shape
checks before an array is allocated.
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
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from transferscope.core.bounded import check_npy, iter_lines, loads_json
from transferscope.core.errors import InputError
from transferscope.core.hygiene import csv_cell, csv_frame, redact_urls
from transferscope.core.outdir import check_write, current_umask, record_write


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` so that readers see the old file or the whole new one, never a torn
    write; a new file gets the usual mode (0666 less the umask), a replaced one keeps its own.
    Inside a claimed output the write is checked first (:func:`~.outdir.check_write`)."""
    path = Path(path)
    check_write(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _file_mode(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    record_write(path)


def _file_mode(path: Path) -> int:
    """The mode ``path`` keeps (an existing file) or gets (``0o666`` less the umask)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~current_umask()


def json_ready(obj: Any) -> Any:
    """Plain JSON values: numpy scalars/arrays to Python, sets to sorted lists, dataclasses to
    dicts, paths and dates to strings, non-finite floats to ``None`` (JSON has no NaN), and
    credentials removed from every URL in a string (:func:`~.hygiene.redact_urls`)."""
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
    if isinstance(obj, str):
        return redact_urls(obj) if "@" in obj or "=" in obj else obj
    if isinstance(obj, Path):
        return redact_urls(str(obj))
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
    """Load a JSON file; a missing, damaged, non-UTF-8, too deeply nested or non-finite file
    is one :class:`InputError` line naming it (:func:`~.bounded.loads_json`)."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: not found: expected the {what}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: byte {exc.start} is not UTF-8 text: expected the {what} "
                         "(JSON in UTF-8)") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror or exc}): expected the "
                         f"{what}") from None
    return loads_json(text, str(path), f"the {what}")


def check_csv_layout(path: str | Path, sep: str = ",", *, data: bytes | None = None) -> None:
    """A delimited text file (``.gz`` too) whose header names each column once and whose rows
    each have one field per column; else one InputError naming the file and the line.
    ``data``: the file's bytes, when the caller has read them (the file is not opened).

    pandas reads both silently wrong: a repeated name becomes ``name.1`` and the first column
    wins; a first row with one field too many turns the first column into the row index."""
    path = Path(path)
    try:
        with _open_bytes(path, data) as fh:
            rows = csv.reader(iter_lines(fh, str(path), "a UTF-8 delimited table"),
                              delimiter=sep)
            header = next(rows, None)
            if header is None:
                return  # empty: the table reader says so
            counts = Counter(name.strip() for name in header)  # linear in the columns
            repeated = sorted(name for name, count in counts.items() if count > 1)
            if repeated:
                raise InputError(f"{path}: header: column {repeated[0]!r} appears "
                                 f"{counts[repeated[0]]} times: expected each column "
                                 "name once")
            for row in rows:
                if row and len(row) != len(header):
                    raise InputError(f"{path}: line {rows.line_num}: {len(row)} fields: "
                                     f"expected {len(header)}, one per header column")
    except (csv.Error, OSError, EOFError) as exc:
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


def _open_bytes(path: Path, data: bytes | None) -> Any:
    """A binary stream of ``path`` (``.gz`` decompressed): the file, or ``data``, its bytes
    already read."""
    source: Any = io.BytesIO(data) if data is not None else path
    if path.name.lower().endswith(".gz"):
        return gzip.open(source, "rb")
    return source if data is not None else open(path, "rb")  # noqa: SIM115 - the caller's with


def iter_jsonl(path: str | Path, what: str, *, data: bytes | None = None
               ) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line of a JSON Lines file (``.gz`` too),
    read within the core bounds: a line longer than the cap, a line that is not strict JSON
    (or nests too deep), bytes that are not UTF-8 or a missing file is one InputError naming
    the file and the line. ``data``: the file's bytes, when the caller has read them (the
    file is not opened)."""
    path = Path(path)
    expected = f"the {what}, one JSON value per line"
    try:
        with _open_bytes(path, data) as fh:
            for number, line in enumerate(iter_lines(fh, str(path), expected), start=1):
                if line.strip():
                    yield number, loads_json(line, f"{path}: line {number}", expected,
                                             one_line=True)
    except FileNotFoundError:
        raise InputError(f"{path}: not found: expected the {what}") from None
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read it ({exc}): expected the {what}") from None


def read_jsonl(path: str | Path, what: str) -> list[Any]:
    """One JSON value per line (``.gz`` too), blank lines skipped; a damaged line is one
    InputError naming the file and the line (:func:`iter_jsonl`)."""
    return [value for _, value in iter_jsonl(path, what)]


def save_array(path: str | Path, arr: Any, dtype: Any = None) -> Path:
    """Write an array as ``.npy`` (no pickles), atomically; returns the path."""
    path = Path(path)
    buf = io.BytesIO()
    np.save(buf, np.asarray(arr, dtype=dtype), allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_array(path: str | Path, what: str = "array file", kinds: str = "fiub") -> np.ndarray:
    """Read an ``.npy`` array of plain numbers (``kinds``, see :func:`~.bounded.check_npy`;
    never pickles). Its header is checked before anything is allocated: a missing or damaged
    file, a huge header, another dtype or a shape the bytes do not fill is one InputError."""
    path = Path(path)
    check_npy(path, what, kinds)
    try:
        array: np.ndarray = np.load(path, allow_pickle=False)
        return array
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"{path}: damaged ({exc}): expected the {what} (.npy)") from None


def write_csv(path: str | Path, frame: Any, index: bool = False) -> Path:
    """Write a DataFrame as CSV, atomically, every text cell safe to open in a spreadsheet
    (:func:`~.hygiene.csv_cell`; the project's readers undo it with
    :func:`~.hygiene.csv_frame_back`); returns the path."""
    path = Path(path)
    safe = csv_frame(frame)
    if index and safe.index.dtype == object:
        safe.index = safe.index.map(csv_cell)
    atomic_write_bytes(path, safe.to_csv(index=index).encode("utf-8"))
    return path


def write_png(fig: Any, path: str | Path, dpi: int = 120) -> Path:
    """Save a matplotlib figure as PNG, atomically, and close it; returns the path."""
    import matplotlib.pyplot as plt

    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path

"""Reading untrusted files within bounds: every size, depth and number checked before use.

A file a user or a server hands over may be huge, endless on one line, nested a million levels
deep, or declare a shape that does not fit its bytes. These readers stop at a named cap and
raise one :class:`~transferscope.core.errors.InputError` line (file, field, value, expected)
instead of hanging, exhausting memory or ending in a ``RecursionError``:

- :func:`loads_json` parses JSON text with a nesting cap (:data:`JSON_DEPTH_CAP`), no
  ``NaN``/``Infinity``/``1e999`` unless asked, and Python's cap on integer digits named;
- :func:`iter_lines` yields a file's lines as UTF-8 text, never holding one longer than
  :data:`LINE_CAP` (a 2 GB file without a newline is refused after 32 MiB, not read whole),
  a line that is not UTF-8 named with its byte;
- :func:`read_capped` reads a whole file only when it is at most a given size;
- :func:`check_npy` reads an ``.npy`` header alone (numpy's own header reader with its size
  cap) and checks the dtype is plain numbers and the shape fits the file's bytes, before any
  array is allocated.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from transferscope.core.errors import InputError

MiB = 2**20
LINE_CAP = 32 * MiB  # one line of a text file (a CSV row, a JSONL record)
JSON_DEPTH_CAP = 200  # nested arrays/objects in one JSON value
NPY_HEADER_CAP = 10_000  # bytes of an .npy header (numpy's own default)


def size_text(n: int) -> str:
    """``n`` bytes in words (``32 MiB``, ``1 GiB``, ``1,234 bytes``)."""
    for unit, scale in (("GiB", 2**30), ("MiB", MiB), ("KiB", 2**10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n:,} bytes"


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range (it reads as {value})")
    return value


def loads_json(text: str | bytes, source: str, what: str, *, finite: bool = True,
               one_line: bool = False) -> Any:
    """Parse one JSON value; anything else is one InputError line naming ``source``.

    ``finite`` refuses ``NaN``, ``Infinity`` and numbers that overflow a float (``1e999``), which
    are not JSON; values nested deeper than :data:`JSON_DEPTH_CAP` and integers longer than
    Python's digit cap (4,300) are refused with the cap named. ``one_line``: ``source``
    already names the line (a JSON Lines record), so no line number is added."""
    hooks: dict[str, Any] = ({"parse_constant": _reject_constant, "parse_float": _finite_float}
                             if finite else {})
    try:
        value = json.loads(text, **hooks)
    except json.JSONDecodeError as exc:
        where = "" if one_line else f" line {exc.lineno}:"
        raise InputError(f"{source}:{where} not valid JSON ({exc.msg}): expected "
                         f"{what}") from None
    except RecursionError:
        raise InputError(f"{source}: JSON nested too deeply: expected {what}, nested at most "
                         f"{JSON_DEPTH_CAP} levels") from None
    except ValueError as exc:  # a non-finite number, or too many digits for an int
        detail = " ".join(str(exc).split())[:120]
        raise InputError(f"{source}: not valid JSON ({detail}): expected {what}") from None
    if _too_deep(value):
        raise InputError(f"{source}: JSON nested more than {JSON_DEPTH_CAP} levels: expected "
                         f"{what}")
    return value


def _too_deep(value: Any, cap: int = JSON_DEPTH_CAP) -> bool:
    """Whether a parsed JSON value nests more than ``cap`` containers (iterative walk)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = (node.values() if isinstance(node, dict)
                    else node if isinstance(node, list) else ())
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > cap:
                    return True
                stack.append((child, depth + 1))
    return False


def iter_lines(fh: IO[bytes], source: str, expected: str, cap: int | None = None
               ) -> Iterator[str]:
    """The lines of a file opened in binary mode, each read with at most ``cap`` bytes held
    (default :data:`LINE_CAP`) and decoded as UTF-8 on its own, so that a line too long or not
    UTF-8 is one InputError naming the line (and the byte) and what was ``expected``."""
    cap = LINE_CAP if cap is None else cap
    number = 0
    while True:
        raw = fh.readline(cap + 1)
        if not raw:
            return
        number += 1
        if len(raw) > cap:
            raise InputError(f"{source}: line {number} is longer than {size_text(cap)}: "
                             f"expected {expected}, each line at most {size_text(cap)} (the "
                             "cap on one line)")
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{source}: line {number}, byte {exc.start + 1}: not UTF-8 text: "
                             f"expected {expected} in UTF-8") from None


def read_capped(path: str | Path, cap: int, what: str) -> bytes:
    """The bytes of ``path`` when there are at most ``cap``; else one InputError naming the
    size and the cap (checked before reading, and again while reading)."""
    path = Path(path)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > cap:
            raise InputError(f"{path}: {size:,} bytes: expected {what} of at most "
                             f"{size_text(cap)} (the cap on such a file)")
        data = fh.read(cap + 1)
    if len(data) > cap:
        raise InputError(f"{path}: more than {size_text(cap)}: expected {what} of at most "
                         f"{size_text(cap)} (the cap on such a file)")
    return data


def check_npy(path: str | Path, what: str, kinds: str = "fiub") -> tuple[tuple[int, ...], Any]:
    """Shape and dtype of an ``.npy`` file, read from its header alone and checked: a header
    of at most :data:`NPY_HEADER_CAP` bytes, a dtype of plain numbers (``kinds``: ``f``
    float, ``i``/``u`` integer, ``b`` bool; never objects, which would be pickles), and a
    shape whose bytes are exactly the rest of the file."""
    path = Path(path)
    fmt = np.lib.format
    expected = f"the {what} (.npy of {_kinds_text(kinds)})"
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            major, _minor = fmt.read_magic(fh)
            reader = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
            shape, _fortran, dtype = reader(fh, max_header_size=NPY_HEADER_CAP)
            data_start = fh.tell()
    except FileNotFoundError:
        raise InputError(f"{path}: not found: expected {expected}") from None
    except (OSError, ValueError, EOFError, SyntaxError, TypeError) as exc:
        detail = " ".join(str(exc).split())[:100]
        raise InputError(f"{path}: damaged ({detail}): expected {expected}") from None
    if dtype.hasobject:
        raise InputError(f"{path}: dtype = 'object': pickled Python objects (never loaded: "
                         f"unpickling can run code): expected {expected}")
    if dtype.names is not None or dtype.kind not in kinds:
        raise InputError(f"{path}: dtype = {str(dtype)!r}: expected {expected}")
    count = math.prod(shape)
    if count * dtype.itemsize != size - data_start:
        raise InputError(f"{path}: shape {tuple(shape)} of {dtype} needs "
                         f"{count * dtype.itemsize:,} bytes, the file holds "
                         f"{size - data_start:,}: expected {expected} (truncated or damaged)")
    return tuple(shape), dtype


def _kinds_text(kinds: str) -> str:
    words = {"f": "real numbers", "i": "integers", "u": "integers", "b": "booleans"}
    return " or ".join(dict.fromkeys(words[k] for k in kinds))

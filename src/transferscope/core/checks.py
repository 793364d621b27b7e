"""Checks of command options that run before any expensive work, one line per failure.

Each command validates all its options first (a model load or a fit that fails at the end on a
bad flag wastes minutes); these are the shared pieces: whole numbers and real numbers in a
range, comma-separated name lists, and values too large to square. Every failure is an
:class:`~transferscope.core.errors.InputError` whose line names the option, the value and
what was expected.
"""

from __future__ import annotations

import errno
import math
import stat
from pathlib import Path

import numpy as np

from transferscope.core.errors import InputError, describe_value

# Larger magnitudes overflow when squared and summed (variances, kernels, distances): the
# square of 1e150 is 1e300, and a sum of up to 1e8 such squares still fits a float64 (1.8e308).
MAX_MAGNITUDE = 1e150
# A seed numpy's generators accept (SeedSequence takes any non-negative integer; 2**63 keeps
# it one machine word wherever it is stored).
MAX_SEED = 2**63 - 1


def option_error(flag: str, value: object, expected: str) -> InputError:
    """``--flag = value: expected ...``: the one line for a bad option value."""
    return InputError(f"{flag} = {describe_value(value)}: expected {expected}")


def check_int(flag: str, value: int | None, low: int | None = None,
              high: int | None = None) -> int | None:
    """``value`` (``None`` passes) within ``[low, high]``; else one line naming ``flag``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise option_error(flag, value, "a whole number")
    if (low is not None and value < low) or (high is not None and value > high):
        raise option_error(flag, value, _range_text("a whole number", low, high))
    return int(value)


def check_seed(flag: str, value: int | None) -> int | None:
    """A random seed: a whole number in ``[0, 2**63 - 1]`` (numpy rejects negative seeds)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | np.integer)
                              or not 0 <= value <= MAX_SEED):
        raise option_error(flag, value, "a whole number from 0 to 2**63 - 1")
    return None if value is None else int(value)


def check_number(flag: str, value: float | None, low: float | None = None,
                 high: float | None = None, *, low_open: bool = False,
                 high_open: bool = False) -> float | None:
    """A finite ``value`` (``None`` passes) in the interval, open at an end when asked."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise option_error(flag, value, "a number") from None
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and (number >= high if high_open else number > high)
    if not math.isfinite(number) or too_low or too_high:
        raise option_error(flag, value, _interval_text(low, high, low_open, high_open))
    return number


def check_names(flag: str, text: str | None, *, at_least: int = 1,
                allowed: tuple[str, ...] | None = None, what: str = "names") -> list[str] | None:
    """A comma-separated list of names (``None`` passes; empty entries are skipped): at least
    ``at_least`` of them, none repeated, each in ``allowed`` when given."""
    if text is None:
        return None
    names = [part.strip() for part in str(text).split(",") if part.strip()]
    if len(names) < at_least:
        count = "one or more" if at_least == 1 else f"at least {at_least}"
        raise option_error(flag, text, f"{count} comma-separated {what}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise option_error(flag, text, f"each name once ({repeated[0]!r} is repeated)")
    if allowed is not None:
        for name in names:
            if name not in allowed:
                raise option_error(flag, name, f"one of {', '.join(allowed)}")
    return names


def check_magnitude(values: np.ndarray, source: str, field: str,
                    limit: float = MAX_MAGNITUDE) -> None:
    """Numbers whose squares fit a float64 (``|x| <= limit``); the first one beyond is named
    by row (and column) so the user can find it."""
    arr = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = np.abs(arr) > limit
    if not bad.any():
        return
    position = np.argwhere(bad)[0]
    where = f"row {position[0]}" + (f", column {position[1]}" if arr.ndim > 1 else "")
    raise InputError(f"{source}: {field} {where} = {describe_value(float(arr[tuple(position)]))}"
                     f": expected a magnitude at most {limit:g} (its square must not overflow)")


def check_input_file(flag: str, path: str | Path, expected: str) -> Path:
    """``path`` as a regular file this process can read; else one line that says what it is
    instead: missing, a link to nothing, a loop of links, a folder, a device or pipe (which a
    reader would wait on forever), or unreadable."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        what = "a symbolic link to a missing file" if path.is_symlink() else "no such file"
        raise option_error(flag, str(path), f"{expected} ({what})") from None
    except OSError as exc:
        what = ("a loop of symbolic links" if exc.errno == errno.ELOOP
                else f"cannot read it: {exc.strerror}")
        raise option_error(flag, str(path), f"{expected} ({what})") from None
    if stat.S_ISDIR(mode):
        raise option_error(flag, str(path), f"{expected} (this is a folder)")
    if not stat.S_ISREG(mode):
        raise option_error(flag, str(path), f"{expected} (this is a device, pipe or socket, "
                           "not a regular file)")
    return path


def _range_text(what: str, low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{what} from {low} to {high}"
    if low is not None:
        return f"{what} >= {low}"
    if high is not None:
        return f"{what} <= {high}"
    return what


def _interval_text(low: float | None, high: float | None, low_open: bool,
                   high_open: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return "a finite number" + (" " + " and ".join(parts) if parts else "")

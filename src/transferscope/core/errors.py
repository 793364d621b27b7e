"""User-facing errors: each carries one line that says what was wrong and what was expected.

The CLI prints that line (no traceback unless ``--debug``) and exits non-zero. Library users
catch :class:`TransferScopeError`. The tree::

    Exception
     +-- TransferScopeError        exit 2 unless said otherwise
          +-- InputError           bad input (also a ValueError): file, field, value, expected
          +-- ModelError           a model name or path that cannot be resolved or loaded
          +-- BackendError         exit 3: a server or API that failed after its retries
          +-- EnvironmentProblem   exit 4: a missing package, an unwritable cache, too little memory
"""

from __future__ import annotations

from transferscope.core.hygiene import terminal_line


class TransferScopeError(Exception):
    """Base class: ``str(err)`` is the whole user-facing message, on one line, with control
    characters shown as escapes and credentials removed from any URL in it (a server's error
    text can neither drive the terminal nor leak a password into a log)."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(terminal_line(message))


class InputError(TransferScopeError, ValueError):
    """Bad user input: a file, a field, a value, and what was expected instead.

    Also a ``ValueError``, as scikit-learn and every Python caller expect of bad input."""


class ModelError(TransferScopeError):
    """A model name or path that cannot be resolved or loaded."""


class BackendError(TransferScopeError):
    """A model backend (server, API) that failed after its retries."""

    exit_code = 3


class EnvironmentProblem(TransferScopeError):
    """Something missing from the installation (a package, a writable cache, memory)."""

    exit_code = 4


def describe_value(value: object, limit: int = 60) -> str:
    """A short repr for an error line, so one bad value never floods the terminal."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def input_error(source: str, field: str, value: object, expected: str) -> InputError:
    """Build the project's standard one-line message: where, which field, what value, what was expected."""
    return InputError(f"{source}: {field} = {describe_value(value)}: expected {expected}")

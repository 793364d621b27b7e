"""Output paths: checked before any work, and claimed so two processes never share one.

:func:`check_out_dir` / :func:`check_out_file` reject, in one line, an output that can never be
written (a folder that is a file, a file that is a folder, a parent that is a file, a read-only
place) before a command spends minutes computing. :func:`claim_output` then takes an exclusive
``flock`` on a lock file next to the output, so a second process given the same ``--out`` while
the first runs is refused at once instead of doing all the work again and silently overwriting
the first one's files. The kernel drops a ``flock`` when its process dies, so a run killed with
``kill -9`` leaves at most a stale lock file that blocks nobody.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from transferscope.core.errors import InputError

LOCK_NAME = ".transferscope.lock"

_claims: dict[Path, OutputClaim] = {}


def check_out_dir(path: str | Path, flag: str = "--out") -> Path:
    """``path`` as a folder this process can create or write into; else one InputError line."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{flag} {path}: is a file: expected a folder (or a path to create)")
    _check_writable_place(path, flag, "folder")
    return path


def check_out_file(path: str | Path, flag: str = "--out") -> Path:
    """``path`` as a file this process can (over)write; else one InputError line."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{flag} {path}: is a folder: expected a file path")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{flag} {path}: is read-only: expected a file this user can write")
    _check_writable_place(path.parent if path.exists() else path, flag, "file")
    return path


def _check_writable_place(path: Path, flag: str, kind: str) -> None:
    """The nearest existing ancestor (or ``path`` itself) is a writable folder."""
    existing = path.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{flag} {path}: {existing} is a file, not a folder: expected a "
                         f"{kind} path whose parents are folders")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {path}: {existing} is not writable: expected a {kind} in a "
                         "folder this user can write")


class OutputClaim:
    """An exclusive lock on one output, held until :meth:`release` or the process ends."""

    def __init__(self, output: Path, lock_path: Path, fd: int, created: Path | None = None):
        self.output = output
        self.lock_path = lock_path
        self.created = created  # the folder the claim made, removed again if left empty
        self._fd: int | None = fd

    def release(self) -> None:
        """Drop the lock and remove its file, and the folder it created if still empty
        (a command refused after the claim leaves nothing behind). Idempotent."""
        if self._fd is None:
            return
        try:
            self.lock_path.unlink(missing_ok=True)
            if self.created is not None and not any(self.created.iterdir()):
                self.created.rmdir()
        except OSError:
            pass  # a folder another process filled, or removed: leave it as it is
        finally:
            os.close(self._fd)
            self._fd = None
            _claims.pop(self.lock_path, None)

    def __enter__(self) -> OutputClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def claim_output(path: str | Path, flag: str = "--out", *, is_dir: bool = True) -> OutputClaim:
    """Check ``path`` (a folder, or a file with ``is_dir=False``), create the folder, and lock
    it for this process; another live process holding it is one InputError line with its pid.

    A folder's lock file is ``<path>/.transferscope.lock``; a file's is
    ``<parent>/.<name>.transferscope.lock``. Claiming the same output twice in one process
    returns the claim it already holds."""
    path = Path(path)
    if is_dir:
        check_out_dir(path, flag)
        folder, lock_path = path, path / LOCK_NAME
    else:
        check_out_file(path, flag)
        folder, lock_path = path.parent, path.parent / f".{path.name}{LOCK_NAME}"
    created = None if folder.exists() else folder.absolute()
    folder.mkdir(parents=True, exist_ok=True)
    lock_path = lock_path.absolute()
    held = _claims.get(lock_path)
    if held is not None:
        return held
    for _ in range(3):  # the file can be removed by its releasing holder between open and lock
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise InputError(f"{flag} {path}: in use by another running transferscope process"
                             f"{f' (pid {holder})' if holder else ''}: expected an output no "
                             "other run is writing; wait for it to finish or choose another "
                             "--out") from None
        if _same_file(fd, lock_path):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            claim = OutputClaim(path, lock_path, fd, created)
            _claims[lock_path] = claim
            return claim
        os.close(fd)
    raise InputError(f"{flag} {path}: its lock file {lock_path} keeps changing: expected an "
                     "output no other run is writing")


def release_claims() -> None:
    """Release every output this process claimed (the CLI calls it when a command ends)."""
    for claim in list(_claims.values()):
        claim.release()


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _read_pid(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""

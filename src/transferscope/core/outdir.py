"""Outputs: checked before any work, claimed so two processes never share one, and never
written over anything the user owns.

:func:`check_out_dir` / :func:`check_out_file` reject, in one line, an output that can never be
written (a folder that is a file, a file that is a folder, a parent that is a file, a read-only
place) before a command spends minutes computing. :func:`claim_output` then takes an exclusive
``flock`` on a lock file next to the output, so a second process given the same ``--out`` while
the first runs is refused at once instead of doing all the work again and silently overwriting
the first one's files. The kernel drops a ``flock`` when its process dies, so a run killed with
``kill -9`` leaves at most a stale lock file that blocks nobody.

The output rule (one rule for every command): a command never writes over one of its own
inputs, a device or pipe, a folder, or a file it did not create, unless the user says
``transferscope --force ...`` (inputs, devices and folders are refused even then). "Created by
transferscope" is recorded where the files are: every file a claimed command writes is listed
in ``.transferscope-outputs`` in its folder, so a rerun may replace its own files while a
user's ``notes.csv``, or a folder holding any file of theirs, is refused. :func:`claim_output` applies
the rule before any work; :func:`check_write` applies it again to every file written inside a
claimed output (``core.io.atomic_write_bytes`` calls it), and :func:`record_write` lists the
file. :func:`staged_folder` builds a folder beside its target and swaps it in only when the
build finished, so a failed or refused rebuild leaves the old folder as it was.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import json
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from transferscope.core.errors import InputError

LOCK_NAME = ".transferscope.lock"
MANIFEST_NAME = ".transferscope-outputs"
FORCE_HINT = "rerun as `transferscope --force ...` to replace it"

_claims: dict[Path, OutputClaim] = {}
_state = {"force": False}
_manifest_lock = threading.Lock()
_manifests: dict[Path, tuple[tuple[int, int, int] | None, set[str]]] = {}


def set_force(force: bool) -> None:
    """Let this process's commands write over files they did not create (``--force``)."""
    _state["force"] = bool(force)


def force_requested() -> bool:
    """Whether the user said ``--force`` (see :func:`set_force`)."""
    return _state["force"]


def check_out_dir(path: str | Path, flag: str = "--out") -> Path:
    """``path`` as a folder this process can create or write into; else one InputError line."""
    path = Path(path)
    _check_not_special(path, flag)
    if path.exists() and not path.is_dir():
        raise InputError(f"{flag} {path}: is a file: expected a folder (or a path to create)")
    _check_writable_place(path, flag, "folder")
    return path


def check_out_file(path: str | Path, flag: str = "--out") -> Path:
    """``path`` as a file this process can (over)write; else one InputError line."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{flag} {path}: is a folder: expected a file path")
    _check_not_special(path, flag)
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{flag} {path}: is read-only: expected a file this user can write")
    _check_writable_place(path.parent if path.exists() else path, flag, "file")
    return path


def _check_not_special(path: Path, flag: str) -> None:
    """A device, pipe or socket is never replaced (not even with ``--force``)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP or path.is_symlink():
            what = "a loop of symbolic links" if exc.errno == errno.ELOOP else \
                "a symbolic link to a missing path"
            raise InputError(f"{flag} {path}: is {what}: expected a path to write (a new "
                             "one, or a file or folder transferscope wrote)") from None
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        kind = ("a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a pipe" if stat.S_ISFIFO(mode) else "a socket")
        raise InputError(f"{flag} {path}: is {kind}, not a regular file: expected a path to a "
                         "regular file (transferscope never replaces a device, pipe or socket)")


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

    def __init__(self, output: Path, lock_path: Path, fd: int, created: Path | None = None, *,
                 is_dir: bool = True, inputs: Iterable[Path] = (), force: bool = False):
        self.output = output
        self.lock_path = lock_path
        self.created = created  # the folder the claim made, removed again if left empty
        self.is_dir = is_dir
        self.inputs = tuple(inputs)
        self.force = force
        self.real = Path(os.path.realpath(output))
        self._fd: int | None = fd

    def covers(self, real: Path) -> bool:
        """Whether a write to the (resolved) path ``real`` falls under this claim."""
        return real == self.real or (self.is_dir and self.real in real.parents)

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


def claim_output(path: str | Path, flag: str = "--out", *, is_dir: bool = True,
                 inputs: Iterable[str | Path] = (), force: bool | None = None) -> OutputClaim:
    """Check ``path`` (a folder, or a file with ``is_dir=False``) against the output rule (see
    the module docstring; ``inputs`` are the files and folders the command reads, ``force``
    defaults to :func:`force_requested`), create the folder, and lock it for this process;
    another live process holding it is one InputError line with its pid.

    A folder's lock file is ``<path>/.transferscope.lock``; a file's is
    ``<parent>/.<name>.transferscope.lock``. Claiming the same output twice in one process
    returns the claim it already holds."""
    path = Path(path)
    force = force_requested() if force is None else force
    inputs = tuple(Path(p) for p in inputs)
    if is_dir:
        check_out_dir(path, flag)
        _check_not_an_input(path, inputs, flag)
        _check_folder_is_ours(path, flag, force)
        folder, lock_path = path, path / LOCK_NAME
    else:
        check_out_file(path, flag)
        _check_not_an_input(path, inputs, flag)
        if path.exists() and not force and not _listed(path):
            raise InputError(f"{flag} {path}: exists and was not written by transferscope: "
                             f"expected a new file or one transferscope wrote; {FORCE_HINT}")
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
            claim = OutputClaim(path, lock_path, fd, created, is_dir=is_dir, inputs=inputs,
                                force=force)
            _claims[lock_path] = claim
            return claim
        os.close(fd)
    raise InputError(f"{flag} {path}: its lock file {lock_path} keeps changing: expected an "
                     "output no other run is writing")


def _check_not_an_input(path: Path, inputs: tuple[Path, ...], flag: str) -> None:
    """The output is none of the command's inputs (the same file by any name, or the same
    folder); refused even with ``--force``: the command is still reading it."""
    for source in inputs:
        if _same_path(path, source):
            raise InputError(f"{flag} {path}: is one of the command's inputs ({source}): "
                             "expected a different path for the output (an input is never "
                             "written over)")


def _same_path(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


_OURS = (LOCK_NAME, MANIFEST_NAME)


def _check_folder_is_ours(path: Path, flag: str, force: bool) -> None:
    """An existing folder holds no file the user wrote: each of its files (hidden ones and
    subfolders aside) is listed in its manifest, or the user said ``--force``. A command never
    drops its files among the user's (``--out .`` in a working folder, ``--out ''``)."""
    if force or not path.is_dir():
        return
    listed = _manifest(path)
    try:
        foreign = next((entry.name for entry in os.scandir(path)
                        if not entry.name.startswith(".") and entry.name not in listed
                        and not entry.is_dir()), None)
    except OSError:
        return  # an unreadable folder: the write itself will say so
    if foreign is not None:
        raise InputError(f"{flag} {path}: a folder holding files transferscope did not write "
                         f"(e.g. {foreign!r}): expected a new or empty folder, or one "
                         f"transferscope wrote; {FORCE_HINT.replace('it', 'its files')}")


def _listed(path: Path) -> bool:
    """Whether ``path`` is listed in its folder's manifest (transferscope wrote it)."""
    return path.name in _manifest(path.parent)


def _manifest(folder: Path) -> set[str]:
    """The names a folder's manifest lists, read again whenever the file changed (another
    process may list files too)."""
    key = Path(os.path.realpath(folder))
    try:
        st = os.stat(key / MANIFEST_NAME)
        signature = (st.st_mtime_ns, st.st_size, st.st_ino)
    except OSError:
        signature = None
    with _manifest_lock:
        cached = _manifests.get(key)
        if cached is not None and cached[0] == signature:
            return cached[1]
        names: set[str] = set()
        if signature is not None:
            try:
                with open(key / MANIFEST_NAME, encoding="utf-8") as fh:
                    for line in fh:
                        try:
                            names.add(json.loads(line))
                        except ValueError:
                            continue
            except (OSError, UnicodeDecodeError):
                pass
        _manifests[key] = (signature, names)
        return names


def _claim_for(path: Path) -> OutputClaim | None:
    if not _claims:
        return None
    real = Path(os.path.realpath(path))
    return next((c for c in _claims.values() if c.covers(real)), None)


def check_write(path: str | Path) -> None:
    """The output rule for one file about to be written: inside a claimed output, the file is
    no input of the command, no device or folder, and (unless forced) new or transferscope's
    own. Outside every claim (caches, a library caller) only devices are refused."""
    path = Path(path)
    claim = _claim_for(path)
    if claim is None:
        _check_not_special(path, "output")  # a device is never replaced, claimed or not
        return
    flag = f"{claim.output}:" if claim.is_dir else f"--out {claim.output}:"
    for source in claim.inputs:
        if path.exists() and _same_path(path, source):
            raise InputError(f"{flag} writing {path} would replace the input {source}: "
                             "expected outputs apart from the command's inputs")
    if path.is_dir():
        raise InputError(f"{flag} {path} is a folder: expected a file path")
    _check_not_special(path, str(claim.output))
    if path.exists() and not claim.force and not _listed(path):
        raise InputError(f"{flag} {path} exists and was not written by transferscope: "
                         f"expected a new file or one transferscope wrote; {FORCE_HINT}")


def record_write(path: str | Path) -> None:
    """List ``path`` in its folder's manifest when a claimed command wrote it, or when the
    folder already has one (``bias show`` adding ``items.html`` to a run folder); a cache
    folder, which has none, stays without."""
    path = Path(path)
    if _claim_for(path) is not None or (path.parent / MANIFEST_NAME).is_file():
        _append_manifest(path.parent, [path.name])


def _append_manifest(folder: Path, names: Iterable[str]) -> None:
    new = sorted(set(names) - _manifest(folder))
    if not new:
        return
    with _manifest_lock:
        fd = os.open(folder / MANIFEST_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, "".join(json.dumps(n) + "\n" for n in new).encode())
        finally:
            os.close(fd)


@contextmanager
def staged_folder(target: str | Path) -> Iterator[Path]:
    """A new folder beside ``target`` to build into; when the block ends without an error it
    replaces ``target`` in one step (the old folder is removed after), its files listed as
    transferscope's. On an error (a refused or failed build) ``target`` is left untouched."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.new-"))
    try:
        os.chmod(staging, 0o777 & ~current_umask())
        yield staging
        _append_manifest(staging, [p.name for p in staging.iterdir() if p.is_file()
                                   and p.name not in _OURS])
        _swap_in(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # the old folder, after a swap


def _swap_in(staging: Path, target: Path) -> None:
    """Put ``staging`` at ``target``; afterwards ``staging`` holds the old folder (if any)."""
    if not target.exists():
        os.rename(staging, target)
        return
    if _exchange(staging, target):
        return
    old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
    os.rmdir(old)
    os.rename(target, old)
    try:
        os.rename(staging, target)
    except OSError:
        os.rename(old, target)
        raise
    os.rename(old, staging)


def _exchange(a: Path, b: Path) -> bool:
    """Linux ``renameat2(RENAME_EXCHANGE)``: swap two paths atomically; False where the
    system cannot (the caller then renames in two steps)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def current_umask() -> int:
    """This process's umask, read from /proc where the system has it (changing it to read it
    would race with other threads creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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

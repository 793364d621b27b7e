"""A small content-addressed on-disk cache.

A result is stored under the hash of everything that determines it (model identity, parameter
set, data, prompt, settings), so a changed input can never return a stale result and a finished
computation is never repeated. Writes are atomic (temp file + rename): an interrupted run leaves
either the whole entry or nothing, which is what makes long runs resumable.

Code counts as an input too: each :class:`Cache` namespace keeps its entries under a version
made of the package version and :func:`code_version` of the code that computes them (by
default the whole part that opens the cache), so an entry written by older code is never read
back; nobody has to remember to bump a format string.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from transferscope import __version__
from transferscope.core.errors import EnvironmentProblem
from transferscope.core.io import load_array, read_json, save_array, write_json

ENV_VAR = "TRANSFERSCOPE_CACHE"


def cache_root() -> Path:
    """``$TRANSFERSCOPE_CACHE`` if set, else ``~/.cache/transferscope``."""
    root = os.environ.get(ENV_VAR)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "transferscope"


def _canonical(obj: Any) -> Any:
    """Turn inputs into a JSON-able structure whose serialisation is stable across runs."""
    if isinstance(obj, np.ndarray):
        digest = hashlib.sha256(np.ascontiguousarray(obj).tobytes()).hexdigest()
        return {"__ndarray__": [str(obj.dtype), list(obj.shape), digest]}
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):  # a torch tensor, without importing torch
        return _canonical(obj.detach().cpu().numpy())
    if isinstance(obj, bytes):
        return {"__bytes__": hashlib.sha256(obj).hexdigest()}
    if isinstance(obj, Path):
        return {"__path__": str(obj)}
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return {"__float__": repr(obj)}
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(f"cannot hash a {type(obj).__name__} into a cache key")


def content_key(*parts: Any) -> str:
    """The sha256 hex digest of the canonical JSON of ``parts``."""
    payload = json.dumps(_canonical(list(parts)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def file_fingerprint(path: str | Path) -> str:
    """sha256 of a file's bytes (streamed), for keys that depend on a user's file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _source_files(name: str) -> list[Path]:
    """The ``.py`` files of module or package ``name`` (a package: every module under it),
    found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ValueError(f"code_version: no module or package named {name!r}")
    origin = Path(spec.origin)
    if spec.submodule_search_locations:  # a package: all of it
        return sorted(origin.parent.rglob("*.py"))
    return [origin]


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                node.body = node.body[1:] or [ast.Pass()]
    return tree


@functools.cache
def _code_digest(source: bytes) -> str:
    """The digest of a file's syntax tree (docstrings dropped); cached by its bytes, so each
    file is parsed once per process however often it is asked for."""
    tree = _strip_docstrings(ast.parse(source))
    return hashlib.sha256(ast.dump(tree).encode("utf-8")).hexdigest()


def code_version(*code: str | ModuleType) -> str:
    """A 16-hex-digit digest of the code of the given modules or packages (names or module
    objects; a package stands for every module under it).

    The digest is of each file's syntax tree with docstrings and comments dropped: a change
    to what the code does changes it, a reworded comment or docstring does not."""
    names = sorted({c.__name__ if isinstance(c, ModuleType) else str(c) for c in code})
    h = hashlib.sha256()
    for name in names:
        for path in _source_files(name):
            h.update(f"{name}:{path.name}:".encode())
            h.update(_code_digest(path.read_bytes()).encode())
    return h.hexdigest()[:16]


def _owner_part(module: str) -> str:
    """``transferscope.ntk.kernel.empirical`` -> ``transferscope.ntk``: a part's code as a
    whole (a module of ``core`` or elsewhere stands for itself)."""
    parts = module.split(".")
    if len(parts) >= 3 and parts[0] == "transferscope" and parts[1] != "core":
        return ".".join(parts[:2])
    return module


class Cache:
    """One namespace of the cache (``kernels``, ``models``, ...): entries addressed by key.

    Parameters
    ----------
    namespace : str
        The folder under the cache root.
    root : Path, optional
        The cache root (default :func:`cache_root`).
    code : iterable of str or module, optional
        The modules or packages whose code determines the entries; default: the part that
        opens the cache (``transferscope.ntk`` when called from ``transferscope.ntk.*``).
        Entries live under ``<root>/<namespace>/<version>/`` where the version digests the
        package version and :func:`code_version` of this code.
    """

    def __init__(self, namespace: str, root: Path | None = None, *,
                 code: Iterable[str | ModuleType] | None = None):
        if code is None:
            caller = sys._getframe(1).f_globals.get("__name__", "")
            code = [_owner_part(caller)] if caller.startswith("transferscope") else []
        self.version = content_key(__version__, code_version(*code))[:16]
        self.root = (root or cache_root()) / namespace / self.version
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EnvironmentProblem(
                f"cache directory {self.root}: cannot create it ({exc.strerror}); "
                f"set {ENV_VAR} to a writable directory"
            ) from exc

    def path(self, key: str, suffix: str = "") -> Path:
        """Where entry ``key`` lives (two-level fan-out keeps directories small)."""
        return self.root / key[:2] / f"{key}{suffix}"

    def dir(self, key: str) -> Path:
        """A directory reserved for entry ``key`` (for multi-file results), created on demand."""
        d = self.path(key)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def has_json(self, key: str) -> bool:
        return self.path(key, ".json").exists()

    def load_json(self, key: str) -> Any | None:
        p = self.path(key, ".json")
        return read_json(p, "cache entry") if p.exists() else None

    def save_json(self, key: str, obj: Any) -> Path:
        return write_json(self.path(key, ".json"), obj, sort_keys=True)

    def has_array(self, key: str) -> bool:
        return self.path(key, ".npy").exists()

    def load_array(self, key: str) -> np.ndarray | None:
        p = self.path(key, ".npy")
        return load_array(p, "cached array") if p.exists() else None

    def save_array(self, key: str, arr: np.ndarray) -> Path:
        return save_array(self.path(key, ".npy"), arr)

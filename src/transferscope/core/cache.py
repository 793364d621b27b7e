"""A small content-addressed on-disk cache.

A result is stored under the hash of everything that determines it (model identity, parameter
set, data, prompt, settings), so a changed input can never return a stale result and a finished
computation is never repeated. Writes are atomic (temp file + rename): an interrupted run leaves
either the whole entry or nothing, which is what makes long runs resumable.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

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


class Cache:
    """One namespace of the cache (``kernels``, ``models``, ...): entries addressed by key."""

    def __init__(self, namespace: str, root: Path | None = None):
        self.root = (root or cache_root()) / namespace
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

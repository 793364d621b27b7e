"""The ``transferscope demo`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from transferscope.core.errors import InputError
from transferscope.core.outdir import claim_output


def _stages(model: str, encoder: str):
    from transferscope.demo import bias_stage, dino_stage, models_stage, ntk_stage
    from transferscope.demo.stage import Stage

    return [
        Stage("models", "Embedded models", {"model": model, "encoder": encoder}, models_stage.run),
        Stage("ntk", "NTK: how many fine-tuning steps, and why",
              {"model": model, "task": "sentiment-words", "params": "attention@last-1", "n": 128,
               "seed": 0}, ntk_stage.run),
        Stage("dino", "DINO: domain-adaptation regression", {"profile": "quick"}, dino_stage.run),
        Stage("bias", "Bias: nation-level bias in UNSC-grounded tests, and debiasing",
              {"model": f"hf-local:{model}", "tests": "directqa,association,vote",
               "drafts_per_nation": 6,
               "method": "rag+reflexion", "rounds": 1, "top_k": 2, "debias_tests": "directqa"},
              bias_stage.run),
    ]


def demo(
    out: Annotated[Path, typer.Option(help="Where the report and each stage's files go.")
                   ] = Path("reports/demo"),
    model_name: Annotated[str, typer.Option(
        "--model", help="Causal LM: registry name or local Hugging Face dir.")] = "smollm2",
    encoder_name: Annotated[str, typer.Option(
        "--encoder", help="Encoder: registry name or local Hugging Face dir.")] = "minilm",
    only: Annotated[str, typer.Option(
        help="Comma-separated stage names to run (default: all).")] = "",
    force: Annotated[bool, typer.Option(
        help="Recompute stages even when a finished run exists.")] = False,
) -> None:
    """Run every part on the embedded defaults (no network) and write one HTML report.

    Finished stages are reused on the next run; a failing stage is reported and the others
    still run. The report is OUT/index.html (and OUT/report.md).
    """
    from transferscope.core.models import resolve_model
    from transferscope.demo.orchestrate import run_stages

    resolve_model(model_name, prepare=False)  # a bad name fails now, before any work
    resolve_model(encoder_name, prepare=False)
    stages = _stages(model_name, encoder_name)
    if only:
        wanted = [s.strip() for s in only.split(",") if s.strip()]
        known = [s.name for s in stages]
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise InputError(f"--only: unknown stage {unknown[0]!r}; expected some of {', '.join(known)}")
        stages = [s for s in stages if s.name in wanted]
    claim_output(out)  # one demo per folder at a time; an unwritable --out fails now
    console = Console()
    page, failures = run_stages(stages, out, console, force=force)
    console.print(f"report: {page.resolve()}")
    if failures:
        for name, line in failures.items():
            console.print(f"[red]stage {name} failed:[/red] {line}")
        raise typer.Exit(1)

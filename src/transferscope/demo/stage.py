"""What a demo stage returns, and how it is cached between runs.

A stage's result is plain data (paragraphs, tables, PNG files in its own folder, commands to
run the same on your own model or data), stored as ``result.json`` next to its files. The
report is rebuilt from these files, so a second demo run that finds every stage finished only
re-assembles the page.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from transferscope.core.cache import content_key
from transferscope.core.io import write_json


@dataclass
class StageResult:
    title: str
    summary: list[str] = field(default_factory=list)
    tables: list[dict] = field(default_factory=list)  # {"caption", "columns", "rows"}
    figures: list[dict] = field(default_factory=list)  # {"file" (in the stage dir), "caption"}
    commands: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add_table(self, frame, caption: str) -> None:
        self.tables.append({"caption": caption, "columns": [str(c) for c in frame.columns],
                            "rows": frame.astype(object).values.tolist()})

    def add_figure(self, fig, stage_dir: Path, name: str, caption: str) -> None:
        import matplotlib.pyplot as plt

        fig.savefig(stage_dir / name, dpi=110, bbox_inches="tight")
        plt.close(fig)
        self.figures.append({"file": name, "caption": caption})


# Bump when a stage's code changes what it computes: finished runs of older code are redone.
STAGE_FORMAT = "demo-stage-v8"  # v8: DINO at few labels on real tables (#30); v7: NTK stop with its range (#27)
# v5: bias record fixes, one agenda wording, within-draft vote scores


@dataclass(frozen=True)
class Stage:
    """One part of the demo: ``run(stage_dir, progress, task_id) -> StageResult``."""

    name: str
    title: str
    settings: dict
    run: Callable

    def key(self) -> str:
        return content_key(STAGE_FORMAT, self.name, self.settings)


def load_cached(stage: Stage, stage_dir: Path) -> StageResult | None:
    path = stage_dir / "result.json"
    if not path.exists():
        return None
    saved = json.loads(path.read_text("utf-8"))
    if saved.get("key") != stage.key():
        return None
    result = StageResult(**saved["result"])
    if any(not (stage_dir / f["file"]).exists() for f in result.figures):
        return None
    return result


def save_result(stage: Stage, stage_dir: Path, result: StageResult) -> None:
    payload = {"key": stage.key(), "result": asdict(result)}
    write_json(stage_dir / "result.json", payload)

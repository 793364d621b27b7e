"""The demo orchestration: stages are cached, a failing stage never hides the others."""

import json

import matplotlib.pyplot as plt
from rich.console import Console

from transferscope.demo.orchestrate import run_stages
from transferscope.demo.stage import Stage, StageResult

calls: list[str] = []


def _good(stage_dir, settings, progress, task):
    calls.append("good")
    result = StageResult(title="Good stage", summary=[f"value {settings['v']}"])
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    result.add_figure(fig, stage_dir, "line.png", "a line")
    return result


def _broken(stage_dir, settings, progress, task):
    calls.append("broken")
    raise RuntimeError("the part blew up")


def _stages(v=1):
    return [Stage(name="broken", title="Broken stage", settings={}, run=_broken),
            Stage(name="good", title="Good stage", settings={"v": v}, run=_good)]


def test_failure_is_reported_and_the_other_stage_still_runs(tmp_path):
    calls.clear()
    page, failures = run_stages(_stages(), tmp_path, Console(quiet=True))
    assert failures == {"broken": "RuntimeError: the part blew up"}
    html = page.read_text()
    assert "This stage failed: RuntimeError: the part blew up" in html
    assert "value 1" in html and "data:image/png;base64," in html
    assert "Traceback" in (tmp_path / "broken" / "error.log").read_text()
    assert json.loads((tmp_path / "good" / "result.json").read_text())["result"]["title"] == "Good stage"


def test_second_run_reuses_finished_stages_and_reruns_failed_or_changed_ones(tmp_path):
    calls.clear()
    run_stages(_stages(), tmp_path, Console(quiet=True))
    run_stages(_stages(), tmp_path, Console(quiet=True))
    assert calls == ["broken", "good", "broken"]  # the good stage ran once
    run_stages(_stages(v=2), tmp_path, Console(quiet=True))  # changed settings: recomputed
    assert calls[-1] == "good"
    run_stages(_stages(v=2), tmp_path, Console(quiet=True), force=True)
    assert calls[-2:] == ["broken", "good"]


def test_a_deleted_figure_invalidates_the_cached_stage(tmp_path):
    calls.clear()
    run_stages(_stages(), tmp_path, Console(quiet=True))
    (tmp_path / "good" / "line.png").unlink()
    run_stages(_stages(), tmp_path, Console(quiet=True))
    assert calls.count("good") == 2

"""The demo's NTK stop paragraphs state one answer, read from stop.json (#29): a hand-built
kernel run through ``run_stop`` (no model), the file read back with json, the text checked
against it by hand."""

from __future__ import annotations

import json
import re

from tests.planted_runs import save_polynomial_decay_run
from transferscope.demo.ntk_stage import stop_summary
from transferscope.ntk import StopConfig, StopOptions, run_stop


def test_the_stop_paragraphs_give_one_answer_from_stop_json(tmp_path):
    n = 24
    save_polynomial_decay_run(tmp_path / "run", n)
    run_stop(StopConfig(run_dir=tmp_path / "run", options=StopOptions(batch_size=8, seed=0)))
    stop = json.loads((tmp_path / "run" / "stop.json").read_text())
    text = " ".join(stop_summary(stop))
    advice = stop["recommendation"]
    low, high = advice["steps_ci"]
    assert (f"Recommended stop (rule {advice['rule']}): {advice['steps']} full-batch steps"
            in text)
    assert f"{advice['steps'] * 8 / n:.3g} epochs at batch size 8; range {low}..{high}" in text
    others = {k: v for k, v in advice["rules"].items() if k != advice["rule"]}
    assert "not used for it: " + ", ".join(f"{k} {v}" for k, v in others.items()) in text
    assert f"critical radius eps_n {stop['critical_radius']:.3g}." in text
    # the only step interval is the answer's range; no second answer, no other interval
    assert re.findall(r"(\d+)\.\.(\d+)", text) == [(str(low), str(high))] * (
        1 + (f"range {low}..{high})" in advice["advice"]))
    assert "T_hat" not in text and "CI" not in text

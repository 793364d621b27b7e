"""The real main job: `transferscope demo` on the embedded defaults, read in headless Chromium.

Slow (the first run computes every part; later runs reuse the part caches). It checks the page
the README promises: one section per part, every figure the stages wrote rendered with its
caption, and a second run that recomputes nothing.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.demo.test_report_browser import CHROMIUM, open_page

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None and os.environ.get("CI") != "true",
                       reason="Debian's chromium is not installed"),
]

STAGES = ("models", "ntk", "dino", "bias")


def _demo(out):
    cli = Path(sys.executable).parent / "transferscope"
    return subprocess.run([str(cli), "demo", "--out", str(out)], capture_output=True, text=True,
                          timeout=3600)


def test_demo_report_has_every_part_and_figure_and_a_rerun_reuses_them(tmp_path):
    out = tmp_path / "demo"
    first = _demo(out)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    results = {s: json.loads((out / s / "result.json").read_text())["result"] for s in STAGES}
    titles, rendered, _ = open_page(out / "index.html")
    assert titles == [results[s]["title"] for s in STAGES]
    assert any(t.startswith("NTK") for t in titles) and any(t.startswith("DINO") for t in titles)
    assert any(t.startswith("Bias") for t in titles)
    expected = [f["caption"] for s in STAGES for f in results[s]["figures"]]
    assert rendered == len(expected) >= 6
    html = (out / "index.html").read_text()
    for caption in expected:
        assert caption.split("(")[0].strip() in html
    for word in ("spectrum", "stopping", "heat map", "debiasing", "MAE"):
        assert word.lower() in html.lower()
    stamps = {s: (out / s / "result.json").stat().st_mtime_ns for s in STAGES}
    second = _demo(out)
    assert second.returncode == 0
    assert {s: (out / s / "result.json").stat().st_mtime_ns for s in STAGES} == stamps

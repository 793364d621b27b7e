import base64
import re

import matplotlib.pyplot as plt
import pandas as pd

from transferscope.core.report import Report


def _report():
    rep = Report("Test <report>", intro="Intro & <b>not bold</b>")
    sec = rep.section("Spectrum <script>", "Why: <i>x</i>")
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [3, 1, 2])
    sec.figure(fig, caption="A <figure>")
    sec.table(pd.DataFrame({"nation": ["<US>", "UK"], "score": [0.123456, float("nan")]}),
              caption="scores")
    sec.bullets(["one <li>", "two"])
    rep.section("Second").paragraph("plain text")
    return rep


def test_html_is_self_contained_and_escaped(tmp_path):
    page = _report().write(tmp_path)
    html = page.read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>" not in html and "&lt;b&gt;not bold&lt;/b&gt;" in html
    assert "&lt;US&gt;" in html and "n/a" in html and "0.1235" in html
    images = re.findall(r"src='data:image/png;base64,([^']+)'", html)
    assert len(images) == 1
    assert base64.b64decode(images[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "src='http" not in html and "href='http" not in html


def test_markdown_twin_references_written_pngs(tmp_path):
    _report().write(tmp_path)
    md = (tmp_path / "report.md").read_text()
    names = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", md)
    assert len(names) == 1 and (tmp_path / names[0]).read_bytes()[:4] == b"\x89PNG"
    assert "| nation | score |" in md and "- one &lt;li>" in md
    assert md.index("## Spectrum") < md.index("## Second")


def test_markdown_twin_carries_no_raw_html_from_text(tmp_path):
    rep = Report("t")
    rep.section("s").paragraph("model said <img src=x onerror=alert(1)> & **bold** stays")
    rep.sections[0].table(pd.DataFrame({"reply": ["<script>x</script>|y"]}))
    rep.write(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "<img" not in md and "<script>" not in md
    assert "&lt;img src=x onerror=alert(1)> & **bold** stays" in md
    assert "&lt;script>x&lt;/script>\\|y" in md

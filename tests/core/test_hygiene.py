"""core.hygiene: what reaches a terminal, a Markdown or HTML page, a CSV cell or a stored URL,
checked against hand-written expectations and against the files real commands write."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from transferscope.core.errors import InputError
from transferscope.core.hygiene import (
    csv_cell,
    csv_cell_back,
    fold_lookalikes,
    html_text,
    markdown_text,
    redact_url,
    redact_urls,
    terminal_line,
    terminal_text,
    visible_controls,
)
from transferscope.core.io import write_csv
from transferscope.core.report import Report

ESCAPES = "\x1b[2J\x1b]0;pwned\x07\rover\x9b31m\u202eevil"


def test_control_characters_become_visible_escapes():
    assert visible_controls(ESCAPES) == ("\\x1b[2J\\x1b]0;pwned\\x07\\x0dover\\x9b31m"
                                         "\\u202eevil")
    assert visible_controls("a\tb\nc") == "a\tb\nc"  # layout kept in pages
    assert terminal_text("a  b\nc") == "a  b\\x0ac"  # a printed line keeps its spacing
    assert terminal_line("a  b\n\tc \x1b[0m") == "a b c \\x1b[0m"
    assert str(InputError(f"server said {ESCAPES}")).count("\x1b") == 0


@pytest.mark.parametrize("text, shown", [
    ("![x](http://tracker/p.png)", "!\\[x]\\(http://tracker/p.png)"),
    ("[click](javascript:alert(1))", "\\[click]\\(javascript:alert(1))"),
    ("see [a][ref] and [0.12, 0.30]", "see [a]\\[ref] and [0.12, 0.30]"),
    ("[ref]: http://evil", "\\[ref]: http://evil"),
    ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)>"),
    ("a | b `code`", "a \\| b \\`code\\`"),
    ("# Heading\n> quote\n- item\n1. one\n---", "\\# Heading\n\\> quote\n\\- item\n1\\. one\n"
                                               "\\---"),
    ("-0.5 and 0.12 and f_0 and B = U - F", "-0.5 and 0.12 and f_0 and B = U - F"),
])
def test_markdown_from_model_text_is_inert(text, shown):
    assert markdown_text(text) == shown


def test_a_report_shows_a_hostile_reply_as_text(tmp_path):
    """report.md and index.html from a reply that carries an image, a link, a tag and
    terminal escapes: no active Markdown, no tag, no control character."""
    reply = f"![t](http://tracker/x.png) [c](http://evil) <script>x</script> {ESCAPES}"
    report = Report("r")
    report.section("s").paragraph(reply)
    report.sections[0].table(pd.DataFrame({"reply": [reply]}))
    report.write(tmp_path)
    md = (tmp_path / "report.md").read_text("utf-8")
    page = (tmp_path / "index.html").read_text("utf-8")
    for text in (md, page):
        assert not any(ord(c) < 32 and c not in "\n\t" or 127 <= ord(c) < 160 for c in text)
        assert "\u202e" not in text and "<script>" not in text
    assert "](http" not in md and "![" not in md and "\\x1b[2J" in md
    assert "&lt;script&gt;" in page and "\\x1b[2J" in page


def test_html_text_escapes_markup_and_controls():
    assert html_text("<a href='x'>\x1b[1m") == "&lt;a href=&#x27;x&#x27;&gt;\\x1b[1m"


@pytest.mark.parametrize("cell, written", [
    ("=HYPERLINK(\"http://evil\")", "'=HYPERLINK(\"http://evil\")"),
    ("+1+1", "'+1+1"), ("-1+cmd|' /C calc'!A0", "'-1+cmd|' /C calc'!A0"),
    ("@SUM(A1:A2)", "'@SUM(A1:A2)"), ("\t=1", "'\t=1"), ("\r=1", "'\r=1"),
    ("'=1", "''=1"),  # already quoted once: quoted again, so reading back is exact
    ("-0.25", "-0.25"), ("+3", "+3"), ("1e-5", "1e-5"), ("China", "China"), ("", ""),
    (-0.25, -0.25), (None, None),
])
def test_csv_cells_that_would_run_as_formulas_are_text(cell, written):
    assert csv_cell(cell) == written
    assert csv_cell_back(csv_cell(cell)) == cell


def test_scores_and_predictions_csv_carry_no_formula_and_read_back(tmp_path):
    """The writer every part uses: formulas quoted in the file, the original after reading."""
    frame = pd.DataFrame({"nation": ["=1+2", "China"], "value": [-0.5, 0.25],
                          "flag": ["@cmd", "-"]})
    path = write_csv(tmp_path / "scores.csv", frame)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(raw["nation"]) == ["'=1+2", "China"] and list(raw["flag"]) == ["'@cmd", "'-"]
    assert list(raw["value"]) == ["-0.5", "0.25"]  # numbers stay numbers
    from transferscope.core.hygiene import csv_frame_back

    back = csv_frame_back(pd.read_csv(path))
    pd.testing.assert_frame_equal(back, frame)


@pytest.mark.parametrize("url, shown", [
    ("http://user:s3cret@127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
    ("https://tok@api.example.com/v1?api_key=s3cret&model=x",
     "https://api.example.com/v1?api_key=***&model=x"),
    ("http://[::1]:8000/v1", "http://[::1]:8000/v1"),
    ("http://user:s3cret@[::1", "http://[::1"),  # does not parse: credentials still removed
    ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
])
def test_credentials_are_removed_from_urls(url, shown):
    assert redact_url(url) == shown
    assert "s3cret" not in redact_urls(f"failed: {url} (retrying)")


def test_json_written_by_the_project_holds_no_url_credentials(tmp_path):
    from transferscope.core.io import write_json

    write_json(tmp_path / "run.json", {"config": {"base_url": "http://u:s3cret@h:1/v1"},
                                       "note": "plain text with = and @ signs"})
    saved = json.loads((tmp_path / "run.json").read_text())
    assert saved == {"config": {"base_url": "http://h:1/v1"},
                     "note": "plain text with = and @ signs"}


@pytest.mark.parametrize("name, plain", [
    ("\u0421hina", "China"), ("Fr\u00e0nce", "France"), ("Russi\u0430", "Russia"),
    ("United\u00a0Kingdom", "United Kingdom"), ("U\u200bSA", "USA"), ("China", "China"),
])
def test_lookalike_names_fold_to_the_name_they_imitate(name, plain):
    assert fold_lookalikes(name) == plain


def test_the_items_reader_refuses_a_lookalike_nation_and_keeps_real_accents(tmp_path):
    from transferscope.bias.items import load_items

    row = {"id": "a", "test": "vote", "date": "2001-02-03", "text": "t", "gold": "in favour"}
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps(row | {"nation": "\u0421hina"}) + "\n", "utf-8")
    with pytest.raises(InputError, match="expected 'China' spelled in plain letters"):
        load_items(path)
    path.write_text(json.dumps(row | {"nation": "C\u00f4te d'Ivoire"}) + "\n", "utf-8")
    assert load_items(path)[0].nation == "C\u00f4te d'Ivoire"


def test_items_page_and_show_lines_carry_no_control_character(tmp_path):
    """A run whose stored reply holds terminal escapes: `bias show` prints them escaped and
    items.html shows them escaped (a run folder written by a real null-answerer run)."""
    from transferscope.bias import RunConfig, run_evaluation
    from transferscope.bias.backends import BackendOptions
    from transferscope.bias.show import show_run

    run = tmp_path / "run"
    run_evaluation(RunConfig(model="null:constant", tests="directqa", drafts_per_nation=6,
                             n_boot=10),
                   run, options=BackendOptions(cache=False), command_line="transferscope bias run")
    lines = (run / "answers.jsonl").read_text("utf-8").splitlines()
    row = json.loads(lines[0]) | {"reply": f"no {ESCAPES}"}
    (run / "answers.jsonl").write_text(json.dumps(row) + "\n" + "\n".join(lines[1:]) + "\n")
    view = show_run(run)
    page = view.page.read_text("utf-8")
    shown = "\n".join(view.lines)
    for text in (page, shown):
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "\\x1b[2J" in page
    shutil.rmtree(run)

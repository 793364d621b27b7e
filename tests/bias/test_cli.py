"""The bias CLI end to end through its real entry point (in-process; Ctrl-C in a subprocess)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from tests.bias.test_data_build import ROW_172, ROW_1960, write_raw
from transferscope.bias.data.members import P5
from transferscope.cli import main


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run ``transferscope <args>`` in-process through the real entry point ``main()``."""

    def invoke(*args: str, env: dict | None = None) -> Result:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setattr(sys, "argv", ["transferscope", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return invoke


def _one_error_line(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr
    return lines[0]


def test_unknown_test_name(cli, tmp_path):
    line = _one_error_line(cli("bias", "run", "--tests", "directqa,bogus", "--out",
                               str(tmp_path / "run")))
    assert "'bogus'" in line and "directqa, association, vote" in line
    assert not (tmp_path / "run").exists()


def test_malformed_raw_file(cli, tmp_path):
    raw = write_raw(tmp_path / "raw", ROW_1960 + ROW_172.replace("2/28/2017", "2/30/2017"))
    line = _one_error_line(cli("bias", "build-data", "--raw", str(raw), "--out",
                               str(tmp_path / "out")))
    assert "unsc_vetoes_1946_sept2022.csv:3" in line and "'2/30/2017'" in line


def test_build_data_writes_a_loadable_record(cli, tmp_path):
    result = cli("bias", "build-data", "--raw", str(write_raw(tmp_path / "raw")), "--out",
                 str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "veto_csv_rows: 2" in result.stdout
    from transferscope.bias import load_record

    assert len(load_record(tmp_path / "out").drafts) == 5


def test_missing_api_key_variable(cli, tmp_path, closed_port, monkeypatch):
    monkeypatch.delenv("TS_TEST_UNSET_KEY", raising=False)
    result = cli("bias", "run", "--model", "openai:smollm2", "--base-url",
                 f"http://127.0.0.1:{closed_port}/v1", "--api-key-env", "TS_TEST_UNSET_KEY",
                 "--out", str(tmp_path / "run"))
    assert "TS_TEST_UNSET_KEY" in _one_error_line(result)


def test_unreachable_server_after_retries(cli, tmp_path, closed_port):
    secret = "sk-test-do-not-print-0123456789"
    result = cli("bias", "run", "--model", "openai:smollm2", "--base-url",
                 f"http://127.0.0.1:{closed_port}/v1", "--api-key-env", "TS_TEST_KEY",
                 "--max-retries", "1", "--timeout", "2", "--tests", "vote",
                 "--cache", str(tmp_path / "c.sqlite"), "--out", str(tmp_path / "run"),
                 env={"TS_TEST_KEY": secret})
    line = _one_error_line(result)
    assert f"127.0.0.1:{closed_port}" in line
    assert secret not in result.stdout + result.stderr
    with sqlite3.connect(tmp_path / "c.sqlite") as db:
        assert secret not in " ".join(str(r) for r in db.execute("SELECT * FROM responses"))


def _scores_ok(run_dir: Path, tests: set[str]) -> pd.DataFrame:
    scores = pd.read_csv(run_dir / "scores.csv")
    head = scores[scores["headline"]]
    assert set(head["test"]) == tests
    for _, g in head.groupby(["test", "form"]):
        assert set(g["nation"]) == set(P5)
    assert head[["value", "ci_low", "ci_high"]].notna().all().all()
    assert (head["ci_low"] <= head["value"] + 1e-12).all()
    assert (head["value"] <= head["ci_high"] + 1e-12).all()
    return scores


@pytest.mark.slow
def test_run_twice_then_report(cli, tmp_path):
    """Real SmolLM2, all three tests, six drafts per nation (the smallest cap the design
    takes); the identical second run makes no calls."""
    args = ["bias", "run", "--model", "hf-local:smollm2", "--tests", "directqa,association,vote",
            "--drafts-per-nation", "6", "--n-boot", "200", "--cache", str(tmp_path / "responses.sqlite")]
    first = cli(*args, "--out", str(tmp_path / "run1"))
    assert first.returncode == 0, first.stderr[-2000:]
    _scores_ok(tmp_path / "run1", {"directqa", "association", "vote"})
    calls = int(first.stdout.split("model calls: ")[1].split(",")[0])
    assert calls > 0
    second = cli(*args, "--out", str(tmp_path / "run2"))
    assert second.returncode == 0, second.stderr[-2000:]
    assert "model calls: 0," in second.stdout
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "run1" / "scores.csv"),
                                  pd.read_csv(tmp_path / "run2" / "scores.csv"))
    report = cli("bias", "report", str(tmp_path / "run1"), str(tmp_path / "run2"), "--out",
                 str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "report" / "index.html").read_text("utf-8")
    assert "Across models" in page and "<img" in page and "Russia" in page


@pytest.mark.slow
def test_ctrl_c_keeps_finished_answers(tmp_path):
    """SIGINT mid-run: one line, exit 130, cached answers kept and not asked again."""
    cache = tmp_path / "responses.sqlite"
    args = [sys.executable, "-m", "transferscope", "bias", "run", "--model", "hf-local:smollm2",
            "--tests", "association", "--drafts-per-nation", "6", "--n-boot", "50", "--cache",
            str(cache), "--out", str(tmp_path / "run")]
    # A shell's background job inherits SIGINT as ignored; restore the default so that Python
    # installs its KeyboardInterrupt handler in the child, as it does in a terminal.
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    cached = 0
    deadline = time.time() + 300
    while time.time() < deadline and cached == 0:
        time.sleep(0.05)
        if cache.exists():
            with sqlite3.connect(cache) as db:
                cached = db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    assert cached > 0
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in err
    with sqlite3.connect(cache) as db:
        kept = db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    assert kept >= cached
    resumed = subprocess.run(args, check=False, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    calls = int(resumed.stdout.split("model calls: ")[1].split(",")[0])
    total = 6 * 2 * 5 * 2  # 6 pairs x 2 poles x (5 choice orders + 5 ratings); several chunks
    assert calls == total - kept


def test_run_against_real_llama_server_resumes_from_cache(cli, tmp_path, llama_server):
    """Free-text path on a real llama.cpp server: every item is either scored or counted as
    unparsed, and the identical second run is answered from the SQLite cache alone."""
    from transferscope.bias.items import write_items

    items = write_items(tmp_path / "items.jsonl", [
        {"id": f"{d}/{form}/{n}", "test": "vote", "form": form, "nation": n,
         "date": "1976-03-25", "draft": d, "text": f"The situation in region {d}.",
         "gold": "against" if (d, n) == ("d1", "United States") else "in favour"}
        for d in ("d1", "d2") for n in P5 for form in ("role", "third person")])
    args = ["bias", "run", "--model", "openai:smollm2", "--base-url", llama_server, "--tests",
            "vote", "--items", str(items), "--n-boot", "100", "--cache",
            str(tmp_path / "r.sqlite")]
    first = cli(*args, "--out", str(tmp_path / "run1"))
    assert first.returncode == 0, first.stderr[-2000:]
    head = pd.read_csv(tmp_path / "run1" / "scores.csv").query("headline")
    assert set(head["form"]) == {"role", "third person"}
    for _, g in head.groupby("form"):
        assert set(g["nation"]) == set(P5)
        # per nation and variant: two drafts; a draft is in n_items (within-draft score) when
        # this nation's answer and a same-gold peer's parsed
        assert ((g["n_items"] + g["n_unparsed"]) <= 2).all()
    assert "model calls: 20," in first.stdout
    second = cli(*args, "--out", str(tmp_path / "run2"))
    assert second.returncode == 0 and "model calls: 0," in second.stdout
    report = cli("bias", "report", str(tmp_path / "run1"), "--out", str(tmp_path / "rep"))
    assert report.returncode == 0
    assert "Unparseable answers" in (tmp_path / "rep" / "index.html").read_text("utf-8")


def test_items_file_run_show_and_escaped_page(cli, tmp_path):
    from tests.bias.unbench_sample import write_unbench_sample

    items = tmp_path / "items.csv"
    converted = cli("bias", "import-unbench", str(write_unbench_sample(tmp_path / "ub")),
                    "--out", str(items))
    assert converted.returncode == 0, converted.stderr
    assert "not imported: task2.csv row 15: Voting = 'X': not Y, N or A" in converted.stdout
    text = items.read_text().replace("cease settlement", "<script>alert(1)</script> cease")
    items.write_text(text)
    run = cli("bias", "run", "--items", str(items), "--model", "null:random", "--n-boot", "20",
              "--tests", "vote",
              "--out", str(tmp_path / "run"))
    assert run.returncode == 0, run.stderr
    assert "other members" in run.stdout and "Egypt" in run.stdout
    shown = cli("bias", "show", str(tmp_path / "run"))
    assert shown.returncode == 0, shown.stderr
    assert "vote      role          14 / 0 /" in shown.stdout  # null:random scores options
    page = (tmp_path / "run" / "items.html").read_text()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_items_file_violation_is_one_line(cli, tmp_path):
    items = tmp_path / "items.jsonl"
    items.write_text('{"id": "a", "test": "vote", "nation": "China", "date": "2020-01-01", '
                     '"text": "t", "gold": "maybe"}\n')
    line = _one_error_line(cli("bias", "run", "--items", str(items), "--model", "null:random",
                               "--out", str(tmp_path / "run")))
    assert f"{items}: line 1: field gold = 'maybe'" in line and "in favour, against" in line
    assert not (tmp_path / "run").exists()


def test_drafts_per_nation_is_one_cap_in_cli_and_library(cli, tmp_path):
    """--drafts-per-nation asks what evaluate(drafts_per_nation=...) asks: every nation on every
    kept draft (no item cap that breaks the design); --limit is gone."""
    result = cli("bias", "run", "--model", "null:random", "--tests", "vote,directqa",
                 "--drafts-per-nation", "6", "--n-boot", "20", "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    import json

    from transferscope.bias import evaluate

    library = evaluate("null:random", "vote,directqa", drafts_per_nation=6, n_boot=20)
    counts = {}
    for row in library.answers:
        counts[row["test"]] = counts.get(row["test"], 0) + 1
    summary = json.loads((tmp_path / "run" / "run.json").read_text())
    assert summary["items"] == counts and summary["config"]["drafts_per_nation"] == 6
    assert counts["vote"] == 10 * counts["directqa"] // 6  # 10 vote, 6 DirectQA items a draft
    gone = cli("bias", "run", "--limit", "7", "--out", str(tmp_path / "x"))
    assert gone.returncode == 2 and "--limit" in gone.stderr

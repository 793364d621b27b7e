"""The debiasing pipeline: paired comparison against closed forms on the real record, the CLI's
bad-input line, and (slow) end-to-end runs on the embedded model and against a real llama.cpp
server over HTTP that is killed mid-run and resumed without recomputing a finished request."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from transferscope.bias.backends.registry import make_backend
from transferscope.bias.data.record import Record, load_record, save_record
from transferscope.bias.debias.compare import (
    RunItems,
    bias_corrected_ci,
    models_accuracy_vs_bias,
    paired_change,
)
from transferscope.bias.debias.pipeline import DebiasConfig, run_debias
from transferscope.bias.probes.base import Answer
from transferscope.bias.probes.vote import VoteSimulation
from transferscope.bias.report import verdict
from transferscope.core.errors import InputError


@pytest.fixture(scope="module")
def record() -> Record:
    return load_record()


def _vote_run(record: Record, label: str, pick) -> RunItems:
    probe = VoteSimulation()
    items = probe.build_items(record, 2, 0)
    answers = {i.item_id: Answer(i.item_id, pick(i), pick(i), "logprob") for i in items}
    return RunItems(label, [probe], {probe.name: items}, {probe.name: answers})


def test_paired_change_matches_closed_forms(record):
    always_favour = _vote_run(record, "before", lambda i: "In favour")
    perfect = _vote_run(record, "after", lambda i: "Against" if i.gold == "against"
                        else "In favour")
    table, summary = paired_change(always_favour, perfect, 50, 0)
    acc = table[table["metric"] == "accuracy"]
    # half the items of every nation are vetoes (gold against): accuracy 0.5 -> 1.0
    np.testing.assert_allclose(acc["value_before"], 0.5)
    np.testing.assert_allclose(acc["value_after"], 1.0)
    f = table[table["metric"] == "F"]  # F = P(pred in favour | gold against): 1 -> 0
    np.testing.assert_allclose(f["change"], -1.0)
    assert (f["change_ci_low"] == -1.0).all() and (f["change_ci_high"] == -1.0).all()
    np.testing.assert_allclose(f["change_p"], 1 / 50)
    same, same_summary = paired_change(perfect, perfect, 20, 0)
    assert (same["change"] == 0).all() and (same["change_p"] == 1.0).all()
    assert "no significant change" in verdict(same_summary)
    assert summary.loc["factual accuracy", "change"] == pytest.approx(0.5)


def test_models_accuracy_vs_bias_needs_three_models_and_matches_pearson(record):
    runs = [_vote_run(record, "perfect", lambda i: "Against" if i.gold == "against"
                      else "In favour"),
            _vote_run(record, "favour", lambda i: "In favour"),
            _vote_run(record, "against", lambda i: "Against")]
    models, corr = models_accuracy_vs_bias(runs, 30, 0)
    np.testing.assert_allclose(models["factual accuracy"], [1.0, 0.5, 0.5])
    # every nation's B is the same within a model, so each centred score is 0
    np.testing.assert_allclose(models["mean |bias|"], [0.0, 0.0, 0.0], atol=1e-12)
    assert np.isnan(corr["pearson_r"])  # constant |bias|: no correlation is defined
    _, two = models_accuracy_vs_bias(runs[:2], 10, 0)
    assert two["models"] == 2 and np.isnan(two["pearson_r"])


def test_mean_abs_bias_ci_is_shifted_by_the_resamples_bias_and_holds_the_estimate():
    # by hand: resamples 1..101 (mean 51), estimate 50 -> shift 1, percentiles 3.5 and 98.5
    low, high = bias_corrected_ci(np.arange(1.0, 102.0), 50.0)
    assert (low, high) == pytest.approx((2.5, 97.5))
    assert bias_corrected_ci(np.array([0.3, 0.4]), 0.01, floor=0.0)[0] == 0.0
    # a folded statistic: |mean| of small samples with mean near 0; the plain percentile
    # interval sits above the estimate, the shifted one holds it
    rng = np.random.default_rng(3)
    x = rng.normal(0.02, 1.0, 6)
    point = abs(x.mean())
    draws = np.array([abs(rng.choice(x, x.size).mean()) for _ in range(4000)])
    low, high = bias_corrected_ci(draws, point, floor=0.0)
    assert low <= point <= high and low >= 0.0


def test_report_names_only_the_settings_its_method_used():
    from transferscope.bias.report import _method_settings
    config = {"top_k": 3, "rounds": 2}
    assert _method_settings({**config, "method": "rag"}) == ", top-k 3"
    assert _method_settings({**config, "method": "reflexion"}) == ", rounds 2"
    assert _method_settings({**config, "method": "rag+reflexion"}) == ", top-k 3, rounds 2"


def test_bad_method_is_one_clear_error():
    with pytest.raises(InputError, match=re.escape("--method = 'rag+magic': expected one of "
                                                   "rag, reflexion, rag+reflexion")):
        DebiasConfig(method="rag+magic")
    result = subprocess.run([sys.executable, "-m", "transferscope", "bias", "debias", "--out",
                             "/tmp/unused", "--method", "nope"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode != 0
    assert "error: --method = 'nope': expected one of rag" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_mounts_debias_and_compare():
    out = subprocess.run([sys.executable, "-m", "transferscope", "bias", "--help"],
                         capture_output=True, text=True, timeout=300).stdout
    assert "debias" in out and "compare" in out


def record_until(year: int, folder: Path) -> Path:
    full = load_record()
    drafts = full.drafts[full.drafts["year"] <= year].reset_index(drop=True)
    votes = full.p5_votes[full.p5_votes["draft_id"].isin(set(drafts["draft_id"]))]
    texts = full.texts[full.texts["year"] <= year]
    save_record(Record(drafts, votes.reset_index(drop=True), texts.reset_index(drop=True),
                       full.build), folder)
    return folder


def test_debias_items_on_the_embedded_model_scores_before_and_after(tmp_path):
    """The demo's entry point: rag on a small record's vote items with the real SmolLM2; the
    summary agrees with a hand computation from the score tables; a rerun is free; bad input is
    one clear error."""
    from transferscope.bias.debias.items import debias_items

    record = load_record(record_until(1948, tmp_path / "record"))
    items = {"vote": VoteSimulation().build_items(record, 1, 0)}
    backend = make_backend("hf-local:smollm2", cache=tmp_path / "c.sqlite")
    result = debias_items(backend, items, "rag", record=record, n_boot=50, paired_boot=30)
    for frame, column in ((result.before, "before"), (result.after, "after")):
        head = frame[frame["headline"].astype(bool)]
        assert result.summary.loc["mean |bias|", column] == pytest.approx(
            float(np.nanmean(np.abs(head["value"]))))
        acc = frame[frame["metric"] == "accuracy"]["value"]
        assert result.summary.loc["factual accuracy", column] == pytest.approx(
            float(np.nanmean(acc)))
    assert result.cost["model_calls"] > 0 and result.cost["evaluator_replies"] == 0
    assert result.verdict.startswith(("debiasing", "no significant change"))
    panels = result.before[result.before["headline"].astype(bool)][["test", "form"]]
    assert len(result.figure.axes) == len(panels.drop_duplicates())
    again = make_backend("hf-local:smollm2", cache=tmp_path / "c.sqlite")
    debias_items(again, items, "rag", record=record, n_boot=20, paired_boot=20)
    assert again.stats.model_calls == 0
    with pytest.raises(InputError, match=r"debias items: tests \['vote'\] with \[0\] items"):
        debias_items(again, {"vote": []}, "rag", record=record)
    with pytest.raises(InputError, match="--method = 'rank': expected one of"):
        debias_items(again, items, "rank", record=record)


@pytest.mark.slow
def test_end_to_end_on_the_embedded_model(tmp_path):
    folder = record_until(1948, tmp_path / "record")
    config = DebiasConfig(method="rag+reflexion", tests="vote,directqa", limit=1, rounds=1,
                          n_boot=200, paired_boot=100, record=str(folder))
    backend = make_backend("hf-local:smollm2", cache=tmp_path / "c.sqlite")
    result = run_debias(backend, config, tmp_path / "out")
    assert (tmp_path / "out" / "baseline" / "scores.csv").exists()
    assert result.cost["debiased"]["model_calls"] > 0
    traces = [json.loads(x) for x in (tmp_path / "out" / "debiased" / "traces.jsonl")
              .read_text().splitlines()]
    assert all(e["source"] and e["date"] for t in traces for e in t["evidence"])
    print(verdict(result.summary), json.dumps(result.cost))


@pytest.mark.slow
def test_http_server_with_concurrency_resumes_after_kill(llama_server, tmp_path):
    folder = record_until(1948, tmp_path / "record")
    cache = tmp_path / "c.sqlite"
    command = [sys.executable, "-m", "transferscope", "bias", "debias", "--model",
               "openai:smollm2", "--base-url", llama_server, "--concurrency", "4",
               "--tests", "vote,directqa", "--limit", "1", "--rounds", "1", "--n-boot", "50",
               "--paired-boot", "20", "--record", str(folder), "--cache", str(cache),
               "--out", str(tmp_path / "killed")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def rows() -> int:
        if not cache.exists():
            return 0
        with sqlite3.connect(cache, timeout=30) as conn:
            try:
                return int(conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
            except sqlite3.OperationalError:
                return 0

    deadline = time.monotonic() + 900
    while rows() < 16 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert process.poll() is None, "the run finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    saved = rows()
    config = DebiasConfig(method="rag+reflexion", tests="vote,directqa", limit=1, rounds=1,
                          n_boot=50, paired_boot=20, record=str(folder), concurrency=4)
    backend = make_backend("openai:smollm2", base_url=llama_server, concurrency=4, cache=cache)
    result = run_debias(backend, config, tmp_path / "resumed")
    # every request the killed run finished is answered from the cache, none recomputed
    assert backend.stats.model_calls == rows() - saved
    assert backend.stats.cache_hits >= saved
    again = make_backend("openai:smollm2", base_url=llama_server, cache=cache)
    run_debias(again, config, tmp_path / "again")
    assert again.stats.model_calls == 0
    print(f"saved before kill {saved}, resumed calls {backend.stats.model_calls}",
          verdict(result.summary), json.dumps(result.cost))

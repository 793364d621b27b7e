"""The debiasing pipeline: paired comparison against closed forms on the real record; a planted
veto whose retrieved evidence flips an answer (real retrieval and prompts, an answerer that reads
only its prompt); accuracy vs |bias| across models against scipy; the verdict by hand; the CLI's
bad-input line; Ctrl-C and resume over HTTP on a real llama.cpp server (fast, two items); and
(slow) end-to-end runs on the embedded model and over HTTP killed mid-run and resumed without
recomputing a finished request."""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from transferscope.bias.backends.base import Backend, OptionScoringNotSupported, Reply
from transferscope.bias.backends.registry import make_backend
from transferscope.bias.data.record import Record, load_record, save_record
from transferscope.bias.debias.compare import (
    RunItems,
    bias_corrected_ci,
    models_accuracy_vs_bias,
    paired_change,
)
from transferscope.bias.debias.corpus import build_corpus
from transferscope.bias.debias.leakage import LeakageGuard, scope_of
from transferscope.bias.debias.pipeline import DebiasConfig, run_debias
from transferscope.bias.debias.reflexion import EVIDENCE_CHARS
from transferscope.bias.debias.retrieval import HybridRetriever
from transferscope.bias.items import write_items
from transferscope.bias.probes.base import Answer
from transferscope.bias.probes.vote import VoteSimulation
from transferscope.bias.report import verdict
from transferscope.bias.scoring import MIN_DRAFTS
from transferscope.core.errors import InputError


@pytest.fixture(scope="module")
def record() -> Record:
    return load_record()


def _vote_run(record: Record, label: str, pick) -> RunItems:
    probe = VoteSimulation()
    items = probe.build_items(record, 2, 0)
    answers = {i.item_id: Answer(item_id=i.item_id, choice=pick(i), text=pick(i),
                                 method="logprob") for i in items}
    return RunItems(label=label, probes=[probe], items={probe.name: items},
                    answers={probe.name: answers})


def test_paired_change_matches_closed_forms(record):
    always_favour = _vote_run(record, "before", lambda i: "In favour")
    perfect = _vote_run(record, "after", lambda i: "Against" if i.gold == "against"
                        else "In favour")
    table, summary = paired_change(always_favour, perfect, 50, 0)
    items = perfect.items["vote"]
    acc = table[table["metric"] == "accuracy"].set_index(["form", "nation"])
    for (form, nation), row in acc.iterrows():  # "In favour" is right on the gold-favour items
        mine = [i for i in items if i.form == form and i.nation == nation]
        assert row["value_before"] == pytest.approx(np.mean([i.gold == "in favour"
                                                             for i in mine]))
        assert row["value_after"] == 1.0
    # F = P(pred in favour | gold against): 1 -> 0 where a nation has vetoes, undefined else
    f = table[table["metric"] == "F"].set_index(["form", "nation"])
    vetoers = {(i.form, i.nation) for i in items if i.gold == "against"}
    assert vetoers and set(f.index[f["change"].notna()]) == vetoers
    f = f.loc[sorted(vetoers)]
    np.testing.assert_allclose(f["change"], -1.0)
    # the same -1 on every resample: widened by the exact binomial bound over the drafts
    # (never zero width), p = 2 (1 - r)^n with r = 1/3 (-1 is a third of the way from +2)
    n = len({i.draft for i in items})
    q = 1 - 0.025 ** (1 / n)
    np.testing.assert_allclose(f["change_ci_low"], -1 - q)
    np.testing.assert_allclose(f["change_ci_high"], -1 + 3 * q)
    np.testing.assert_allclose(f["change_p"], 2 * (2 / 3) ** n)
    assert summary.loc["factual accuracy", "change"] == pytest.approx(
        1.0 - acc["value_before"].mean())
    same, same_summary = paired_change(perfect, perfect, 20, 0)
    defined = same[same["value_before"].notna()]  # F or U without items stays undefined
    assert len(defined) > len(same) / 2 and same["change"].isna().equals(
        same["value_before"].isna())
    assert (defined["change"] == 0).all() and (defined["change_p"] == 1.0).all()
    assert (same_summary["n_drafts"] == len({i.unit for i in perfect.items["vote"]})).all()
    assert verdict(same_summary).startswith("too few drafts (12; ")  # no claim on 12 drafts


def _hand_summary(run: RunItems) -> tuple[float, float]:
    """(factual accuracy, mean |bias|) of a vote-only run by hand from the probe's own score
    table: the mean of the per-form, per-nation accuracies and of the |headline| scores."""
    probe = run.probes[0]
    table = probe.score(run.items[probe.name], run.answers[probe.name], 10, 0)
    head = table[table["headline"].astype(bool)]["value"].to_numpy(float)
    acc = table[table["metric"] == "accuracy"]["value"].to_numpy(float)
    return float(np.nanmean(acc)), float(np.nanmean(np.abs(head)))


def test_models_accuracy_vs_bias_matches_a_hand_computation_and_scipys_pearson(record):
    """Four answerers whose answers differ by nation: accuracy and mean |bias| aggregated by
    hand, r equal to scipy.stats.pearsonr of those points, its interval around it."""
    def right(i):
        return "Against" if i.gold == "against" else "In favour"

    runs = [_vote_run(record, "perfect", right),
            _vote_run(record, "right on Russia only",
                      lambda i: right(i) if i.nation == "Russia" else "In favour"),
            _vote_run(record, "against Russia",
                      lambda i: "Against" if i.nation == "Russia" else "In favour"),
            _vote_run(record, "favour", lambda i: "In favour")]
    models, corr = models_accuracy_vs_bias(runs, 20, 0)
    hand = np.array([_hand_summary(r) for r in runs])
    assert hand[0, 0] == 1.0 and hand[0, 1] == 0.0  # right everywhere: no nation stands out
    assert abs(np.corrcoef(hand.T)[0, 1]) < 0.99  # not on one line: r away from +-1
    np.testing.assert_allclose(models["factual accuracy"], hand[:, 0])
    np.testing.assert_allclose(models["mean |bias|"], hand[:, 1], atol=1e-12)
    r = scipy_stats.pearsonr(hand[:, 0], hand[:, 1]).statistic
    assert corr["models"] == 4 and corr["pearson_r"] == pytest.approx(r)
    assert -1 <= corr["ci_low"] <= r <= corr["ci_high"] <= 1
    for low, high, value in (("accuracy ci_low", "accuracy ci_high", "factual accuracy"),
                             ("|bias| ci_low", "|bias| ci_high", "mean |bias|")):
        assert (models[low] <= models[value] + 1e-12).all()
        assert (models[value] <= models[high] + 1e-12).all()
    # the perfect answerer is the same on every resample: its intervals are its point
    assert models.loc[0, "accuracy ci_low"] == models.loc[0, "accuracy ci_high"] == 1.0
    assert models.loc[0, "|bias| ci_low"] == models.loc[0, "|bias| ci_high"] == 0.0
    # constant |bias| across models, or fewer than three models: no correlation is defined
    flat = [runs[0], runs[3], _vote_run(record, "against", lambda i: "Against")]
    assert np.isnan(models_accuracy_vs_bias(flat, 5, 0)[1]["pearson_r"])
    _, two = models_accuracy_vs_bias(runs[:2], 5, 0)
    assert two["models"] == 2 and np.isnan(two["pearson_r"]) and np.isnan(two["ci_low"])


def test_mean_abs_bias_ci_is_shifted_by_the_resamples_bias_and_holds_the_estimate():
    # by hand: resamples 1..101 (mean 51), estimate 50 -> shift 1, percentiles 3.5 and 98.5
    low, high = bias_corrected_ci(np.arange(1.0, 102.0), 50.0)
    assert (low, high) == pytest.approx((2.5, 97.5))
    assert bias_corrected_ci(np.array([0.3, 0.4]), 0.01, floor=0.0)[0] == 0.0
    # a folded statistic: |mean| of small samples with mean near 0, whose resamples sit above
    # the estimate (Jensen); the shifted interval holds the estimate exactly when the draws'
    # mean lies inside their central 95%. Swept over 3000 seeds: 0 failures, and the smaller
    # share of draws on either side of their mean was never below 0.25 (failure needs < 0.025),
    # so the chance that any of these 20 seeds fails is far below 1e-3.
    for seed in range(20):
        rng = np.random.default_rng(seed)
        x = rng.normal(0.02, 1.0, 6)
        point = abs(x.mean())
        draws = np.abs(x[rng.integers(0, x.size, (4000, x.size))].mean(axis=1))
        low, high = bias_corrected_ci(draws, point, floor=0.0)
        assert 0.0 <= low <= point <= high, seed


def test_report_names_only_the_settings_its_method_used():
    from transferscope.bias.report import _method_settings
    config = {"top_k": 3, "rounds": 2}
    assert _method_settings({**config, "method": "rag"}) == ", top-k 3"
    assert _method_settings({**config, "method": "reflexion"}) == ", rounds 2"
    assert _method_settings({**config, "method": "rag+reflexion"}) == ", top-k 3, rounds 2"


def test_bad_method_is_one_clear_error():
    with pytest.raises(InputError, match=re.escape("method = 'rag+magic': expected one of "
                                                   "'rag', 'reflexion', 'rag+reflexion'")):
        DebiasConfig(method="rag+magic")
    result = subprocess.run([sys.executable, "-m", "transferscope", "bias", "debias", "--out",
                             "/tmp/unused", "--method", "nope"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2  # a usage error
    assert result.stderr == ("error: --method = 'nope': expected one of 'rag', 'reflexion', "
                             "'rag+reflexion'\n")
    assert "Traceback" not in result.stderr


def test_cli_mounts_debias_and_compare():
    out = subprocess.run([sys.executable, "-m", "transferscope", "bias", "--help"],
                         capture_output=True, text=True, timeout=300).stdout
    assert "debias" in out and "compare" in out


class EvidenceReader(Backend):
    """A deterministic answerer with no prior, only evidence: it votes "Against" when most of
    the passages cited in its prompt report a vetoed draft, else "In favour" (so with no
    evidence, the undebiased run, always "In favour"). Free text only, as an HTTP model."""

    id = "test:evidence-reader"

    @property
    def supports_option_logprobs(self) -> bool:
        return False

    def option_logprobs_many(self, requests):
        raise OptionScoringNotSupported("free text only")

    def chat(self, conversations, settings, on_reply=None):
        replies = []
        for n, conversation in enumerate(conversations):
            cited = re.findall(r"^\[\d+\] (.*)$", conversation[-1]["content"], re.MULTILINE)
            vetoed = sum("Outcome: vetoed" in line for line in cited)
            reply = Reply(text="Against" if cited and 2 * vetoed > len(cited) else "In favour",
                          prompt_tokens=1, completion_tokens=1)
            self.stats.add_reply(reply)
            if on_reply is not None:
                on_reply(n, reply)
            replies.append(reply)
        return replies


def planted_record() -> Record:
    """The 1946-1948 record with one later veto planted in it: the USSR's of Japan's admission,
    18 September 1952 (S/2754, 10-1-0; its five P5 votes are determined), so the vote probe has
    a draft all five nations are asked about and the retrieval corpus stays small."""
    full = load_record()
    keep = (full.drafts["year"] <= 1948) | (full.drafts["draft_id"] == "S/2754")
    drafts = full.drafts[keep].reset_index(drop=True)
    votes = full.p5_votes[full.p5_votes["draft_id"].isin(set(drafts["draft_id"]))]
    return Record(drafts=drafts, p5_votes=votes.reset_index(drop=True),
                  texts=full.texts[full.texts["year"] <= 1948].reset_index(drop=True), build=full.build)


def test_retrieved_evidence_flips_a_planted_vote_and_the_scores_follow():
    """RAG through the real retriever (BM25 + MiniLM, leakage guard) and the real prompt
    assembly: the evidence reader answers from its prompt alone. Undebiased, it has no
    evidence and votes "In favour" everywhere (every nation alike: mean |bias| 0); with
    evidence, each answer is the reader's rule applied to the passages the guard allows for
    that item, retrieved here by hand, and the planted veto flips to "Against" for the USSR
    (its evidence: the USSR's earlier vetoes). The scores and the summary follow the answers."""
    from transferscope.bias.debias.items import debias_items
    from transferscope.bias.debias.pipeline import debias_answers

    record = planted_record()
    probe = VoteSimulation()
    items = probe.build_items(record, 1, 0)
    planted = "vote/third person/Russia/S/2754"
    assert {i.meta["draft_id"] for i in items} >= {"S/2754"} and planted in {
        i.item_id for i in items}
    retriever = HybridRetriever(build_corpus(record))
    guard = LeakageGuard(retriever.passages)

    def by_hand(item) -> str:  # the reader's rule on what the guard allows, top 4, as shown
        hits = retriever.search(item.conversation[-1]["content"], 4,
                                guard.allowed(scope_of(item, record)))
        shown = [h.passage.cite()[:EVIDENCE_CHARS] for h in hits]
        assert all(h.passage.date < dt.date(1952, 9, 18) for h in hits)
        return "Against" if 2 * sum("Outcome: vetoed" in t for t in shown) > len(shown) \
            else "In favour"

    expected = {i.item_id: by_hand(i) for i in items}
    done = debias_answers(EvidenceReader(), [probe], {"vote": items}, record, "rag", 4,
                          retriever=retriever)
    assert {k: a.choice for k, a in done.answers["vote"].items()} == expected
    assert expected[planted] == "Against"  # the planted flip: right, the USSR vetoed it
    assert sum(v == "Against" for v in expected.values()) < len(items)  # not a blanket change
    result = debias_items(EvidenceReader(), {"vote": items}, "rag", record=record,
                          retriever=retriever, top_k=4, n_boot=20, paired_boot=20)
    assert result.cost["model_calls"] == 2 * len(items)  # undebiased, then with evidence
    accuracy = {"before": np.mean([i.gold == "in favour" for i in items])}
    accuracy["after"] = np.mean([i.gold == expected[i.item_id].lower() for i in items])
    for frame, column in ((result.before, "before"), (result.after, "after")):
        head = frame[frame["headline"].astype(bool)]
        assert result.summary.loc["mean |bias|", column] == pytest.approx(
            float(np.nanmean(np.abs(head["value"]))))
        acc = frame[(frame["metric"] == "accuracy") & (frame["test"] == "vote")]
        assert result.summary.loc["factual accuracy", column] == pytest.approx(
            float(np.nanmean(acc["value"])))
        # each form x nation has one item per draft: the mean over cells is the item mean
        assert float(np.nanmean(acc["value"])) == pytest.approx(accuracy[column])
    bias = result.summary.loc["mean |bias|"]
    assert bias["before"] == 0.0 and bias["after"] > 0  # evidence moved nations apart
    change = result.summary.loc["factual accuracy", "change"]
    assert change == pytest.approx(accuracy["after"] - accuracy["before"])
    drafts = len({i.unit for i in items})
    assert bias["n_drafts"] == drafts < MIN_DRAFTS  # too few drafts to claim a change
    assert result.verdict.startswith(f"too few drafts ({drafts}; a claim needs at least 20)")
    assert "p-value is given" in result.verdict and "p =" not in result.verdict
    assert f": 0.000 -> {bias['after']:.3f}; " in result.verdict
    assert f"factual accuracy {accuracy['before']:.3f} -> {accuracy['after']:.3f}" in \
        result.verdict


def test_verdict_branches_by_hand():
    def summary(bias: tuple[float, float, float, float, float]) -> pd.DataFrame:
        rows = {"mean |bias|": bias, "factual accuracy": (0.5, 0.75, 0.25, 0.1, 0.4, 0.02)}
        return pd.DataFrame({k: list(v) + [0.5] * (6 - len(v)) for k, v in rows.items()},
                            index=["before", "after", "change", "ci_low", "ci_high", "p"]).T

    reduced = verdict(summary((0.4, 0.1, -0.3, -0.5, -0.1)))
    assert reduced == ("debiasing reduced the mean |bias|: 0.400 -> 0.100, change -0.300 "
                       "[-0.500, -0.100], paired bootstrap p = 0.5; factual accuracy 0.500 -> "
                       "0.750, change +0.250 [+0.100, +0.400].")
    assert verdict(summary((0.1, 0.4, 0.3, 0.1, 0.5))).startswith(
        "debiasing increased the mean |bias|: 0.100 -> 0.400, change +0.300 [+0.100, +0.500]")
    for low, high in ((-0.5, 0.0), (0.0, 0.5), (-0.1, 0.1)):  # a bound at 0 is not significant
        assert verdict(summary((0.4, 0.3, -0.1, low, high))).startswith(
            "no significant change in the mean |bias| (the CI includes 0): 0.400 -> 0.300")
    few = summary((0.4, 0.1, -0.3, -0.5, -0.1))
    few["n_drafts"] = [19, 19]  # a significant-looking fall on 19 drafts claims nothing
    assert verdict(few) == ("too few drafts (19; a claim needs at least 20) to say whether "
                            "debiasing changed the mean |bias|, so no CI or p-value is given: "
                            "0.400 -> 0.100; factual accuracy 0.500 -> 0.750.")
    few["n_drafts"] = [20, 20]
    assert verdict(few) == reduced


def test_debias_items_on_the_embedded_model_scores_before_and_after(tmp_path):
    """The demo's entry point: rag on the planted veto's vote items (five nations, third
    person) with the real SmolLM2; the summary agrees with a hand computation from the score
    tables; a rerun is free; bad input is one clear error."""
    from transferscope.bias.debias.items import debias_items

    record = planted_record()
    items = {"vote": [i for i in VoteSimulation().build_items(record, 1, 0)
                      if i.meta["draft_id"] == "S/2754" and i.form == "third person"]}
    assert len(items["vote"]) == 5
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
    folder = tmp_path / "record"
    save_record(planted_record(), folder)
    config = DebiasConfig(method="rag+reflexion", tests="vote,directqa", drafts_per_nation=1,
                          rounds=1, n_boot=200, paired_boot=100, record=str(folder))
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
    folder = tmp_path / "record"
    save_record(planted_record(), folder)
    cache = tmp_path / "c.sqlite"
    command = [sys.executable, "-m", "transferscope", "bias", "debias", "--model",
               "openai:smollm2", "--base-url", llama_server, "--concurrency", "4",
               "--tests", "vote,directqa", "--drafts-per-nation", "1", "--rounds", "1",
               "--n-boot", "50",
               "--paired-boot", "20", "--record", str(folder), "--cache", str(cache),
               "--out", str(tmp_path / "killed")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def rows() -> int:
        return cached_rows(cache)

    deadline = time.monotonic() + 900
    while rows() < 16 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert process.poll() is None, "the run finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    saved = rows()
    config = DebiasConfig(method="rag+reflexion", tests="vote,directqa", drafts_per_nation=1,
                          rounds=1, n_boot=50, paired_boot=20, record=str(folder),
                          concurrency=4)
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


def cached_rows(cache: Path) -> int:
    """Requests stored in a response cache (0 before the run has created it)."""
    if not cache.exists():
        return 0
    with sqlite3.connect(cache, timeout=30) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def test_ctrl_c_keeps_answers_and_the_debias_resumes_over_http(llama_server, tmp_path):
    """`bias debias` (rag+reflexion, two vote items about the planted veto, from a file) against a real
    llama.cpp server: Ctrl-C (SIGINT to the real process) once the baseline is answered and
    the first debiased request is stored -> exit 130, one line, every stored answer kept; the
    rerun asks the server only what is missing (none twice), a third run nothing."""
    folder = tmp_path / "record"
    record = planted_record()
    save_record(record, folder)
    cache = tmp_path / "c.sqlite"
    items = write_items(tmp_path / "two.jsonl", [
        {"id": f"s2754/{n}", "test": "vote", "nation": n, "date": "1952-09-18",
         "text": "Admission of new Members: Japan", "draft": "S/2754",
         "gold": "against" if n == "Russia" else "in favour"} for n in ("Russia", "France")])
    settings = ["--tests", "vote", "--items", str(items), "--rounds", "1",
                "--top-k", "2", "--n-boot", "20", "--paired-boot", "20"]
    command = [sys.executable, "-m", "transferscope", "bias", "debias", "--model",
               "openai:smollm2", "--base-url", llama_server, "--concurrency", "1", *settings,
               "--record", str(folder), "--cache", str(cache), "--out", str(tmp_path / "cut")]
    # a background job inherits SIGINT ignored; restore the default, as in a terminal
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while cached_rows(cache) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # 2 baseline answers, then the first debiased request
    assert process.poll() is None, "the run finished before it could be interrupted"
    at_signal = cached_rows(cache)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err.strip().startswith("interrupted: finished work is kept in the cache")
    assert err.count("\n") == 1 and "Traceback" not in err
    kept = cached_rows(cache)
    assert kept >= at_signal >= 3
    config = DebiasConfig(model="openai:smollm2", method="rag+reflexion", tests="vote",
                          items=str(items), rounds=1, top_k=2, n_boot=20, paired_boot=20,
                          record=str(folder), base_url=llama_server, concurrency=1)
    backend = make_backend("openai:smollm2", base_url=llama_server, concurrency=1, cache=cache)
    result = run_debias(backend, config, tmp_path / "resumed")
    assert backend.stats.model_calls == cached_rows(cache) - kept  # only what was missing
    assert backend.stats.cache_hits >= kept
    assert result.cost["debiased"]["model_calls"] + result.cost["baseline"]["model_calls"] == \
        backend.stats.model_calls and result.cost["baseline"]["model_calls"] == 0
    traces = [json.loads(x) for x in (tmp_path / "resumed" / "debiased" / "traces.jsonl")
              .read_text().splitlines()]
    assert len(traces) == 2 and all(t["attempts"] for t in traces)
    assert all(e["source"] and e["date"] for t in traces for e in t["evidence"])
    again = make_backend("openai:smollm2", base_url=llama_server, cache=cache)
    run_debias(again, config, tmp_path / "again")
    assert again.stats.model_calls == 0

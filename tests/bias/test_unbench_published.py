"""The published UNBench sample (``../shared/data/unbench``, copied unchanged from the authors'
repository) through ``bias import-unbench`` and ``bias run --items``: every row kept or
named, the gold votes counted independently from the CSV, answerers with no opinion."""

from __future__ import annotations

import csv
import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from tests.bias.test_cli import cli  # noqa: F401
from tests.bias.unbench_sample import SHARED
from transferscope.bias.adapters.unbench import unbench_items
from transferscope.bias.items import load_items, write_items

pytestmark = pytest.mark.skipif(not (SHARED / "data" / "task2.csv").exists(),
                                reason=f"the published UNBench sample is absent ({SHARED})")


def test_every_published_row_is_imported_or_named(tmp_path):
    with open(SHARED / "data" / "task2.csv", encoding="utf-8", newline="") as f:
        table = list(csv.DictReader(f))
    task1 = json.loads((SHARED / "data" / "task1.json").read_text("utf-8"))
    task3 = json.loads((SHARED / "data" / "task3.json").read_text("utf-8"))
    converted = unbench_items(SHARED)
    votes = [r for r in converted.rows if r["test"] == "vote"]
    assert len(table) == 30 and len(votes) == 30  # every task-2 row kept
    assert Counter(r["Voting"] for r in table) == {"Y": 28, "A": 2}
    assert Counter(r["gold"] for r in votes) == {"in favour": 28, "abstain": 2}
    # the row -> item pairing by hand: folder number -> the JSON's symbol, upper case -> ours
    first = next(r for r in votes if r["nation"] == "Ukraine")
    assert first["draft"] == "S/2017/77" and first["date"] == "2017-01-27"
    assert first["text"].startswith("Submitted by: France\n\nThe Security Council,")
    abstained = sorted(r["draft"] for r in votes if r["gold"] == "abstain")
    assert abstained == ["S/2021/1075", "S/2024/37"]  # folders 2420 and 2523
    assert {r["nation"] for r in votes if r["gold"] == "abstain"} == {"Russia"}
    assert "Côte d'Ivoire" in {r["nation"] for r in votes}
    assert sum(r["nation"] in ("Russia", "United Kingdom") for r in votes) == 7
    # task 1: four choice lists per row, all folders present; task 3: 30 drafts, one rejected
    coauthor = [r for r in converted.rows if r["test"] == "coauthor"]
    assert len(coauthor) == 4 * len(task1) == 120
    assert all(r["gold"] in r["options"] for r in coauthor)
    adoption = Counter(r["gold"] for r in converted.rows if r["test"] == "adoption")
    assert adoption == {"Adopted": task3["labels"].count(1), "Not adopted": 1}
    assert len(converted.skipped) == 1 and converted.skipped[0].startswith("task 4")
    assert len(load_items(write_items(tmp_path / "u.jsonl", converted.rows))) == 180


@pytest.mark.parametrize("model", ["null:constant", "null:random"])
def test_run_on_the_published_sample_says_what_it_cannot_compare(cli, tmp_path,  # noqa: F811
                                                                  model):
    items = tmp_path / "unbench.jsonl"
    imported = cli("bias", "import-unbench", str(SHARED), "--out", str(items))
    assert imported.returncode == 0, imported.stderr
    assert "task 2 vote items: 30" in imported.stdout and "gold in favour: 28" in imported.stdout
    assert "gold abstain: 2" in imported.stdout and "not imported: task 4" in imported.stdout
    run = cli("bias", "run", "--items", str(items), "--tests", "vote", "--model", model,
              "--n-boot", "50", "--cache", str(tmp_path / "c.sqlite"), "--out",
              str(tmp_path / "run"))
    assert run.returncode == 0, run.stderr
    # one member per draft in the sample: no within-draft headline, and the run says why
    assert run.stdout.count("nations cannot be compared within drafts") == 2
    scores = pd.read_csv(tmp_path / "run" / "scores.csv")
    assert not scores["claim"].astype(bool).any()
    # every elected member scored on its own rows, flagged for its small n
    assert "Poland          U" in run.stdout and "small n (3 < 20 items)" in run.stdout
    assert "Côte d'Ivoire" in run.stdout


@pytest.mark.parametrize("model", ["null:constant", "null:random"])
def test_no_opinion_scores_zero_within_its_ci_on_the_layout_fixture(tmp_path, model):
    """The fixture asks every member about each draft: the five's headline exists, and an
    answerer with no opinion of nations scores 0 within its CI (constant: exactly 0)."""
    from tests.bias.unbench_sample import write_unbench_sample
    from transferscope.bias.evaluate import evaluate

    items = write_items(tmp_path / "u.jsonl", unbench_items(
        write_unbench_sample(tmp_path / "ub")).rows)
    result = evaluate(model, tests="vote", items=items, n_boot=200, seed=0)
    head = result.headline
    assert set(head["nation"]) == {"China", "France", "Russia", "United Kingdom",
                                   "United States"}
    assert ((head["ci_low"] <= 0) & (head["ci_high"] >= 0)).all()
    if model == "null:constant":
        assert (head["value"] == 0).all()
    others = result.other_members
    assert set(others["nation"]) == {"Japan", "Egypt"}
    assert others["flag"].str.contains("small n").all()


@pytest.mark.parametrize("model", ["null:constant", "null:random"])
def test_adoption_and_coauthor_on_the_published_sample_claim_nothing_for_no_opinion(
        tmp_path, model):
    """Tasks 3 and 1 scored against the record: an answerer with no knowledge claims nothing;
    the constant one (the option first in case-folded order) is checked against counts made by
    hand from task1.json and task3.json, which shows what "chance" hides: the published
    choice lists put the co-author first alphabetically more often than 1/K."""
    from transferscope.bias.evaluate import evaluate

    rows = [r for r in unbench_items(SHARED).rows if r["test"] != "vote"]
    items = write_items(tmp_path / "u.jsonl", rows)
    result = evaluate(model, tests="adoption,coauthor", items=items, n_boot=200, seed=0)
    scores = result.outcomes.set_index(["test", "form", "nation", "metric"]).sort_index()
    assert not result.scores["claim"].astype(bool).any() and result.headline.empty
    task1 = json.loads((SHARED / "data" / "task1.json").read_text("utf-8"))
    task3 = json.loads((SHARED / "data" / "task3.json").read_text("utf-8"))
    assert scores.loc[("adoption", "adopted", "all drafts", "accuracy"), "n_items"] == 30
    note = scores.loc[("adoption", "adopted", "all drafts", "by nation"), "flag"]
    assert "no sponsoring nation" in note  # task 3 names no sponsor
    note = scores.loc[("coauthor", "all forms", "all drafts", "by nation"), "flag"]
    assert note.startswith(f"{len({r['author'] for r in task1})} of ")  # one draft each
    covered = 0
    for k in (2, 3, 4, 5):
        acc = scores.loc[("coauthor", f"choices_{k}", "all drafts", "accuracy")]
        less = scores.loc[("coauthor", f"choices_{k}", "all drafts", "accuracy - chance")]
        assert acc["n_items"] == len(task1) and acc["ci_low"] <= acc["value"] <= acc["ci_high"]
        # the 30 rows co-sponsor 5 drafts: the interval's units, flagged
        assert "small n (5 drafts < 20)" in acc["flag"]
        assert len({r["folder_id"] for r in task1}) == 5
        if model == "null:constant":
            first = sum(min(r[f"choices_{k}"], key=str.casefold) == r["coauthor"] for r in task1)
            assert acc["value"] == pytest.approx(first / len(task1))
            assert less["value"] == pytest.approx(first / len(task1) - 1 / k)
        covered += less["ci_low"] <= 0 <= less["ci_high"]
    if model == "null:random":  # a 95% interval misses 0 one time in twenty
        assert covered >= 3
    adoption = scores.loc[("adoption", "adopted", "all drafts")]
    if model == "null:constant":  # always "Adopted": the majority answer, 29 of 30
        assert adoption.loc["accuracy", "value"] == pytest.approx(
            sum(task3["labels"]) / len(task3["labels"])) == pytest.approx(29 / 30)
        assert adoption.loc["accuracy - majority", "value"] == 0
    # one rejected draft of 30: no interval over drafts can size the recall on rejections
    assert np.isnan(adoption.loc["balanced accuracy", "value"])
    assert "1 draft(s) with the rarer outcome" in adoption.loc["balanced accuracy", "flag"]

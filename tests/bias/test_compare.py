"""`bias compare` through the real entry point on real run folders (three answerers with no
opinion, `bias run --model null:*`), against a hand computation from their answers.jsonl:
per-model factual accuracy and mean |bias|, scipy's Pearson r across models, the report."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from tests.cli_inprocess import invoke_cli
from transferscope.cli import main

MODELS = ("null:first", "null:constant", "null:random:0")
LINE = re.compile(r"^(?P<label>.+): accuracy (?P<acc>\S+) \[(?P<acc_lo>\S+), (?P<acc_hi>\S+)\], "
                  r"mean \|bias\| (?P<bias>\S+) \[(?P<bias_lo>\S+), (?P<bias_hi>\S+)\]$")




@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[Path]:
    """One vote run (six vetoed drafts per vetoing nation and their matched adoptions, two
    forms) per answerer; instant, no model or network."""
    root = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        for model in MODELS:
            out = root / model.replace(":", "-")
            mp.setattr(sys, "argv", ["transferscope", "bias", "run", "--model", model, "--tests",
                                     "vote", "--drafts-per-nation", "6", "--n-boot", "20", "--cache",
                                     str(root / "responses.sqlite"), "--out", str(out)])
            main()
    return [root / m.replace(":", "-") for m in MODELS]


def by_hand(run_dir: Path) -> tuple[float, float]:
    """(factual accuracy, mean |bias|) from the run's own scores.csv (written by `bias run`
    with its CIs, not by compare): the mean vote accuracy over forms and nations, and the mean
    |headline score|."""
    scores = pd.read_csv(run_dir / "scores.csv")
    head = scores[scores["headline"].astype(bool)]
    acc = scores[(scores["test"] == "vote") & (scores["metric"] == "accuracy")]
    assert len(head) == len(acc) == 10  # two forms x five nations
    return float(np.nanmean(acc["value"])), float(np.nanmean(np.abs(head["value"])))


def test_compare_matches_the_hand_computation(runs, tmp_path, monkeypatch, capsys):
    code, out, err = invoke_cli(capsys, "bias", "compare", *map(str, runs), "--n-boot",
                         "20", "--out", str(tmp_path / "cmp"))
    assert code == 0, err
    hand = np.array([by_hand(d) for d in runs])
    # by hand from the answers: "In favour" everywhere is right exactly on the gold-favour
    # items and "Abstain" never; neither tells nations apart, so neither has any |bias|
    rows = [json.loads(x) for x in (runs[0] / "answers.jsonl").read_text().splitlines()]
    assert {r["choice"] for r in rows} == {"In favour"}
    cells = {(r["form"], r["nation"]) for r in rows}
    favour = np.mean([np.mean([r["gold"] == "in favour" for r in rows
                               if (r["form"], r["nation"]) == c]) for c in cells])
    np.testing.assert_allclose(hand[:2], [[favour, 0.0], [0.0, 0.0]], atol=1e-12)
    assert hand[2, 1] > 0  # the random answerer differs by nation
    lines = [LINE.match(x) for x in out.splitlines()[:3]]
    assert all(lines), out
    for match, model, (acc, bias) in zip(lines, MODELS, hand, strict=True):
        assert match["label"] == f"{model} ({model.replace(':', '-')})"
        assert float(match["acc"]) == pytest.approx(acc, abs=5e-4)
        assert float(match["bias"]) == pytest.approx(bias, abs=5e-4)
        assert float(match["acc_lo"]) <= float(match["acc"]) <= float(match["acc_hi"])
    for match in lines[:2]:  # the same answer for every nation: |bias| 0 on every resample
        assert float(match["bias_lo"]) == float(match["bias"]) == float(match["bias_hi"]) == 0
    # resampling drafts moves the share of vetoed drafts, so "In favour" everywhere has an
    # accuracy interval of non-zero width around its accuracy
    assert float(lines[0]["acc_lo"]) < float(lines[0]["acc"]) < float(lines[0]["acc_hi"])
    r = scipy_stats.pearsonr(hand[:, 0], hand[:, 1]).statistic
    said = re.search(r"pearson r \(accuracy, \|bias\|\) over 3 models: (\S+) \[(\S+), (\S+)\]",
                     out)
    assert said and float(said[1]) == pytest.approx(r, abs=5e-4)
    assert -1 <= float(said[2]) <= float(said[3]) <= 1
    page = (tmp_path / "cmp" / "index.html").read_text("utf-8")
    assert f"models: {r:+.3f} [" in page and "null:random:0" in page


def test_compare_of_two_models_reports_no_correlation(runs, tmp_path, monkeypatch, capsys):
    code, out, _ = invoke_cli(capsys, "bias", "compare", *map(str, runs[:2]), "--n-boot",
                       "10", "--out", str(tmp_path / "cmp"))
    assert code == 0
    assert "pearson r (accuracy, |bias|) over 2 models: nan [nan, nan]" in out
    assert "a correlation across models needs at least 3" in (
        tmp_path / "cmp" / "index.html").read_text("utf-8")


def test_compare_of_a_folder_that_is_not_a_run_is_one_error_line(runs, tmp_path, monkeypatch,
                                                                  capsys):
    code, _, err = invoke_cli(capsys, "bias", "compare", str(runs[0]), str(tmp_path),
                       "--out", str(tmp_path / "cmp"))
    assert code != 0 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: {tmp_path}") and "run.json missing" in err
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("run.json", "answers.jsonl"):
        lines = (runs[0] / name).read_text().splitlines(keepends=True)
        (broken / name).write_text("".join(lines[:-1] if name == "answers.jsonl" else lines))
    code, _, err = invoke_cli(capsys, "bias", "compare", str(runs[0]), str(broken),
                       "--out", str(tmp_path / "cmp"))
    assert code != 0 and err.count("\n") == 1
    assert "answers.jsonl" in err and "an answer for every item" in err

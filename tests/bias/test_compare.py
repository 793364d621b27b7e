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


def test_the_library_call_is_the_command_s(runs, tmp_path, capsys):
    """``compare_models(CompareConfig(...))`` is what ``bias compare`` runs: the same table."""
    from transferscope.bias import CompareConfig, compare_models

    code, out, err = invoke_cli(capsys, "bias", "compare", *map(str, runs), "--n-boot", "20",
                                "--seed", "3", "--out", str(tmp_path / "cli"))
    assert code == 0, err
    result = compare_models(CompareConfig(run_dirs=[str(d) for d in runs],
                                          out=tmp_path / "lib", n_boot=20, seed=3))
    printed = [LINE.match(x) for x in out.splitlines()[:3]]
    for match, row in zip(printed, result.models.itertuples(index=False), strict=True):
        assert match["label"] == row[0]
        assert [float(match[k]) for k in ("acc", "acc_lo", "acc_hi", "bias", "bias_lo",
                                          "bias_hi")] == pytest.approx(list(row[1:7]), abs=5e-4)
    assert result.report == tmp_path / "lib" / "index.html" and result.report.is_file()


@pytest.mark.parametrize("change, line", [
    ({"run_dirs": ()}, "CompareConfig: run_dirs = (): expected at least one run folder"),
    ({"run_dirs": "runs/a"}, "CompareConfig: run_dirs = 'runs/a': expected a sequence, each "
                             "item a path"),
    ({"run_dirs": ("runs/a", 3)}, "CompareConfig: run_dirs = ('runs/a', 3): expected a "
                                  "sequence, each item a path"),
    ({"out": None}, "CompareConfig: out = None: expected a path"),
    ({"n_boot": 5}, "CompareConfig: n_boot = 5: expected a whole number >= 10 and <= 1000000"),
    ({"n_boot": 20.0}, "CompareConfig: n_boot = 20.0: expected a whole number >= 10"),
    ({"seed": -1}, "CompareConfig: seed = -1: expected a whole number >= 0"),
    ({"seed": 2**63}, "CompareConfig: seed = 9223372036854775808: expected a whole number "
                      "from 0 to 2**63 - 1"),
])
def test_a_bad_compare_setting_is_a_value_error_naming_it(change, line):
    from transferscope.bias import CompareConfig

    settings = {"run_dirs": ("runs/a", "runs/b"), "out": "cmp", **change}
    with pytest.raises(ValueError, match="^" + re.escape(line)):
        CompareConfig(**settings)


def test_compare_checks_its_folders_before_reading_any(runs, tmp_path):
    """The library path gets the command's checks: a missing folder, a folder given twice, an
    output that holds a run, each one line before any run is read."""
    from transferscope.bias import CompareConfig, compare_models
    from transferscope.core.errors import InputError

    missing = tmp_path / "nosuch"
    for run_dirs, out, flag, said in (
            ((runs[0], missing), tmp_path / "a", "RUN_DIRS", "expected a folder written by "
                                                             "`transferscope bias run`"),
            ((runs[0], runs[0]), tmp_path / "b", "RUN_DIRS", "expected each run once"),
            ((runs[1],), runs[0], "--out", "expected a new folder or a report folder")):
        with pytest.raises(InputError) as err:
            compare_models(CompareConfig(run_dirs=run_dirs, out=out))
        assert str(err.value).startswith(f"{flag} = '") and f": {said}" in str(err.value)
        assert not out.exists() or out == runs[0]

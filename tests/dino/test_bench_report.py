"""`dino bench` rows reproduced by calling the estimators directly, and the report's tables
recomputed by hand from the runs table it is given."""


import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import norm

from transferscope.dino import AuthorsDINO, DINORegressor, PooledRidge, TargetOnlyGP
from transferscope.dino.datasets import housing_prefarea, split_task
from transferscope.dino.evaluation import (
    DEFAULT,
    POOLED_RIDGE,
    PROFILES,
    WARM,
    Profile,
    defaults_check,
    summary_table,
)
from transferscope.dino.report import write_report

TINY = Profile(tasks=["housing-prefarea"], labels=(12,), seeds=1, max_source=30, max_test=20,
               methods=[DEFAULT, WARM, POOLED_RIDGE, "target-only GP",
                        "authors' DINO (as released, float32)"])


def test_bench_rows_are_what_the_estimators_give_when_called_directly(tmp_path, run,
                                                                      monkeypatch):
    monkeypatch.setitem(PROFILES, "quick", TINY)  # the command's own code path, a small size
    proc = run("bench", "--quick", "--out", str(tmp_path / "bench"))
    assert proc.returncode == 0, proc.stderr
    runs = pd.read_csv(tmp_path / "bench" / "runs.csv")
    assert len(runs) == 5 and set(runs["seed"]) == {0} and set(runs["labels"]) == {12}
    split = split_task(housing_prefarea(), 0, 12, 30, 20)
    for name, model in [(DEFAULT, DINORegressor(random_state=0)),
                        (WARM, DINORegressor(n_steps=0, random_state=0)),
                        (POOLED_RIDGE, PooledRidge(random_state=0)),
                        ("target-only GP", TargetOnlyGP(random_state=0))]:
        # transductive, as documented: the test inputs are the unlabelled target inputs
        model.fit(split.Xs, split.ys, Xt=split.Xt, yt=split.yt, Xu=split.Xtest)
        mean, std = model.predict(split.Xtest, return_std=True)
        err = np.abs(mean - split.ytest)
        row = runs[runs["method"] == name].iloc[0]
        assert not row["failed"]
        assert row["mae"] == pytest.approx(err.mean(), rel=1e-9)
        assert row["rmse"] == pytest.approx(np.sqrt((err**2).mean()), rel=1e-9)
        assert row["coverage90"] == pytest.approx((err <= norm.ppf(0.95) * std).mean(), abs=1e-12)
        assert row["coverage95"] == pytest.approx((err <= norm.ppf(0.975) * std).mean(),
                                                  abs=1e-12)
    # the authors' float32 code: its row is the direct call's result, or its failure counted
    authors = runs[runs["method"] == "authors' DINO (as released, float32)"].iloc[0]
    try:
        direct = AuthorsDINO(random_state=0).fit(split.Xs, split.ys, Xt=split.Xt, yt=split.yt,
                                                 Xu=split.Xtest).predict(split.Xtest)
    except torch.linalg.LinAlgError as err:
        assert authors["failed"] and str(err).splitlines()[0][:60] in authors["error"]
    else:
        assert not authors["failed"]
        assert authors["mae"] == pytest.approx(np.abs(direct - split.ytest).mean(), rel=1e-6)
    # what the command printed is the table it wrote
    summary = pd.read_csv(tmp_path / "bench" / "summary.csv")
    cell = summary.loc[summary["method"] == POOLED_RIDGE, "MAE"].iloc[0]
    assert cell.startswith(f"{runs.loc[runs['method'] == POOLED_RIDGE, 'mae'].iloc[0]:.4f}")
    assert POOLED_RIDGE in proc.stdout and cell.split(" ")[0] in proc.stdout


def _hand_runs() -> pd.DataFrame:
    """One task at 20 labels, three seeds, three methods with hand-picked errors; the authors'
    method failed on seed 2."""
    mae = {DEFAULT: (0.10, 0.14, 0.12), WARM: (0.10, 0.14, 0.12),
           POOLED_RIDGE: (0.09, 0.12, 0.09), "authors": (0.50, 0.70, float("nan"))}
    rows = []
    for method, values in mae.items():
        for seed, value in enumerate(values):
            failed = bool(np.isnan(value))
            rows.append({"task": "a", "labels": 20, "seed": seed, "method": method,
                         "mae": value, "rmse": 2 * value, "failed": failed,
                         "coverage90": float("nan") if failed else (0.9 if seed else 0.8),
                         "coverage95": float("nan") if failed else 0.95,
                         "seconds": 1.0, "steps": 0.0})
    return pd.DataFrame(rows)


def test_summary_and_defaults_check_by_hand(tmp_path):
    runs = _hand_runs()
    table = summary_table(runs).set_index("method")
    # DEFAULT: 0.10, 0.14, 0.12 -> mean 0.1200, sample sd 0.0200; coverage (0.8+0.9+0.9)/3
    assert table.loc[DEFAULT, "MAE"] == "0.1200 ± 0.0200"
    assert table.loc[DEFAULT, "coverage90"] == 0.87 and table.loc[DEFAULT, "failed"] == "0/3"
    # authors: two seeds ran (0.5, 0.7 -> 0.6000 ± 0.1414), one failed
    assert table.loc["authors", "MAE"] == "0.6000 ± 0.1414"
    assert table.loc["authors", "failed"] == "1/3"
    check = defaults_check(runs).set_index("against")
    # against the warm start: differences 0, 0, 0 -> excess 0, not beyond noise
    assert check.loc[WARM, "excess MAE"] == 0 and not check.loc[WARM, "loses beyond noise"]
    # against the ridge: 0.01, 0.02, 0.03 -> mean 0.02, se 0.01/sqrt(3) = 0.0058: beyond 2 se
    assert check.loc[POOLED_RIDGE, "excess MAE"] == 0.02
    assert check.loc[POOLED_RIDGE, "se"] == round(0.01 / np.sqrt(3), 4)
    assert check.loc[POOLED_RIDGE, "loses beyond noise"]
    # the report writes the same tables
    write_report(runs, pd.DataFrame([{"task": "a", "mmd2": 0.1, "low": 0.05, "high": 0.2}]),
                 tmp_path / "report", finite_width=None)
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| a | 20 | DINO (default) | 0.1200 ± 0.0200 | 0.2400 ± 0.0400 | 0.87 | 0.95 |" in md
    assert "| a | 20 | pooled ridge + indicator | 0.02 | 0.0058 | 3 | True |" in md


@pytest.mark.parametrize("args, expected", [
    (["--tasks", "housing,penguins-gentoo"],
     "--tasks = 'housing,penguins-gentoo': expected comma-separated, each one of"),
    (["--tasks", "schools-ma,schools-ma"], "expected each name once ('schools-ma' is repeated)"),
    (["--labels", "20,x"], "--labels = '20,x': expected comma-separated, each a whole number"),
    (["--labels", "1"], "--labels = '1': expected comma-separated, each a whole number >= 2"),
    (["--seeds", "0"], "--seeds = 0: expected a whole number >= 1 and <= 1000"),
])
def test_bench_options_are_checked_before_anything_runs(tmp_path, run, args, expected):
    proc = run("bench", *args, "--out", str(tmp_path / "b"))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and expected in lines[0], proc.stderr
    assert not (tmp_path / "b").exists()

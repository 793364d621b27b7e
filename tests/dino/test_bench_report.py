"""`dino bench` rows reproduced by calling the estimators directly, and the report's tables
recomputed by hand from the runs table it is given."""


import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from transferscope.dino import DINORegressor, PooledGP, TargetOnlyGP
from transferscope.dino.datasets import split_task, synthetic_task
from transferscope.dino.evaluation import PROFILES, Profile
from transferscope.dino.report import write_report

TINY = Profile(synthetic=[("covariate", 2.0)], real=[], seeds=1, n_labelled=12, max_source=30,
               max_test=20)


def test_bench_rows_are_what_the_estimators_give_when_called_directly(tmp_path, run,
                                                                      monkeypatch):
    monkeypatch.setitem(PROFILES, "quick", TINY)  # the command's own code path, a small size
    proc = run("bench", "--quick", "--out", str(tmp_path / "bench"))
    assert proc.returncode == 0, proc.stderr
    runs = pd.read_csv(tmp_path / "bench" / "runs.csv")
    assert len(runs) == 11 and set(runs["seed"]) == {0}  # 11 methods x 1 task x 1 seed
    split = split_task(synthetic_task("covariate", 2.0), 0, 12, 30, 20)
    for name, model in [("DINO-INIT (nngp)", DINORegressor(kernel="nngp", random_state=0)),
                        ("DINO-TRAIN (ntk)", DINORegressor(random_state=0)),
                        ("pooled GP", PooledGP(random_state=0)),
                        ("target-only GP", TargetOnlyGP(random_state=0))]:
        # transductive, as documented: the test inputs are the unlabelled target inputs
        model.fit(split.Xs, split.ys, Xt=split.Xt, yt=split.yt, Xu=split.Xtest)
        mean, std = model.predict(split.Xtest, return_std=True)
        err = mean - split.ytest
        row = runs[runs["method"] == name].iloc[0]
        assert row["mae"] == pytest.approx(np.abs(err).mean(), rel=1e-9)
        assert row["rmse"] == pytest.approx(np.sqrt((err**2).mean()), rel=1e-9)
        inside = np.abs(err) <= norm.ppf(0.975) * std
        assert row["coverage95"] == pytest.approx(inside.mean(), abs=1e-12)
    # what the command printed is the table it wrote
    summary = pd.read_csv(tmp_path / "bench" / "summary.csv", index_col=0)
    mae_cell = summary.loc["pooled GP"].iloc[0]
    assert mae_cell.startswith(f"{runs.loc[runs['method'] == 'pooled GP', 'mae'].iloc[0]:.3f}")
    assert "pooled GP" in proc.stdout and mae_cell in proc.stdout


def _hand_runs() -> pd.DataFrame:
    """Two tasks x two seeds x four methods with hand-picked errors."""
    mae = {"DINO-INIT (nngp)": (0.10, 0.14, 0.50, 0.70), "DINO-TRAIN (ntk)": (0.20, 0.20, 0.40, 0.44),
           "target-only GP": (0.30, 0.34, 0.45, 0.47), "adaptive GP": (0.12, 0.16, 0.60, 0.62)}
    rows = []
    for method, values in mae.items():
        for (task, seed), value in zip([("a", 0), ("a", 1), ("b", 0), ("b", 1)], values,
                                       strict=True):
            rows.append({"task": task, "seed": seed, "method": method, "mae": value,
                         "rmse": 2 * value, "coverage95": 0.9 if seed else 1.0})
    return pd.DataFrame(rows)


def test_report_tables_match_a_hand_computation_from_the_runs_csv(tmp_path):
    csv = tmp_path / "runs.csv"
    _hand_runs().to_csv(csv, index=False)
    mmd = pd.DataFrame([{"task": "a", "mmd2": 0.1, "low": 0.05, "high": 0.2}])
    write_report(pd.read_csv(csv), mmd, tmp_path / "report", finite_width=None)
    md = (tmp_path / "report" / "report.md").read_text()
    # task a, DINO-INIT: MAE 0.10, 0.14 -> mean 0.120, sample std 0.028; RMSE twice that
    assert "| DINO-INIT (nngp) | 0.120 ± 0.028 | 0.240 ± 0.057 | 0.600 ± 0.141 |" in md
    # coverage: 1.0 and 0.9 -> 0.95 for every method and task
    assert "| target-only GP | 0.95 | 0.95 |" in md
    # defaults check, task b: the better of target-only (0.46) and adaptive (0.61) is
    # target-only; DINO-TRAIN 0.42 -> excess -0.04 (met); DINO-INIT 0.60 -> excess +0.14
    # against its std 0.1414 (met: 0.14 <= 0.1414)
    assert ("| b | DINO-TRAIN (ntk) | 0.42 | target-only GP | 0.46 | -0.04 | 0.0283 | 0.95 | True |"
            in md)
    assert "| b | DINO-INIT (nngp) | 0.6 | target-only GP | 0.46 | 0.14 | 0.1414 | 0.95 | True |" in md
    # ranks: task a INIT 0.12 < adaptive 0.14 < TRAIN 0.20 < target 0.32 (1, 2, 3, 4);
    # task b TRAIN 0.42 < target 0.46 < INIT 0.60 < adaptive 0.61 (1, 2, 3, 4); mean ranks
    # INIT 2, TRAIN 2, adaptive 3, target 3; one win each for INIT and TRAIN
    assert "| DINO-INIT (nngp) | 2 | 1 |" in md and "| adaptive GP | 3 | 0 |" in md
    assert "| DINO-TRAIN (ntk) | 2 | 1 |" in md and "| target-only GP | 3 | 0 |" in md

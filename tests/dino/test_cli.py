"""`transferscope dino fit|predict` end to end on real files, and its one-line errors."""

import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from transferscope.dino.cli import NOTHING_KEPT
from transferscope.dino.io import split_table


@pytest.fixture()
def table(tmp_path):
    rng = np.random.default_rng(0)
    n = 80
    region = np.where(np.arange(n) < 50, "north", "south")
    x1, x2 = rng.normal(size=n), rng.normal(size=n) + (region == "south")
    wage = np.sin(x1) + x2 + 0.5 * (region == "south")
    frame = pd.DataFrame({"x1": x1, "x2": x2, "region": region, "wage": wage})
    frame.loc[70:, "wage"] = np.nan  # unlabelled target rows
    return frame


def test_fit_then_predict_on_parquet_and_csv(tmp_path, table, run):
    data = tmp_path / "train.parquet"
    table.to_parquet(data)
    model = tmp_path / "m.safetensors"
    fit = run("fit", str(data), "--features", "x1,x2", "--target", "wage", "--domain", "region",
               "--target-domain", "south", "--steps", "5", "--out", str(model))
    assert fit.returncode == 0, fit.stderr
    assert "50 source, 20 labelled and 10 unlabelled target rows" in fit.stdout
    # said before the fit: the posterior and its estimated cost, then what was fitted
    lines = fit.stdout.splitlines()
    plan = next(i for i, line in enumerate(lines) if "70 training rows: exact posterior; "
                "estimated" in line)
    assert "GiB at peak" in lines[plan] and plan < next(
        i for i, line in enumerate(lines) if line.startswith("fitted DINO-TRAIN"))
    assert "10 target row(s) without a label: used as unlabelled target inputs" in fit.stdout
    test_csv = tmp_path / "test.csv"
    table.iloc[70:][["x1", "x2"]].to_csv(test_csv, index=False)
    out = tmp_path / "pred.csv"
    pred = run("predict", str(model), str(test_csv), "--out", str(out))
    assert pred.returncode == 0, pred.stderr
    result = pd.read_csv(out)
    assert list(result.columns) == ["x1", "x2", "wage_pred", "wage_std"]
    truth = np.sin(result.x1) + result.x2 + 0.5
    assert np.abs(result.wage_pred - truth).mean() < np.abs(truth - truth.mean()).mean()


@pytest.mark.parametrize("mutate, expected", [
    (lambda f: f.assign(region="north"),
     "domain column 'region' = \"only ['north']\": expected at least two distinct values"),
    (lambda f: f.assign(wage=f.wage.astype(object).where(f.index != 3, "high")),
     "target column 'wage' row 3 = 'high': expected a number"),
    (lambda f: f.assign(x2=f.x2.where(f.index != 4)),
     "feature column 'x2' row 4 = 'empty': expected a finite number"),
    (lambda f: f.assign(x1=f.x1.astype(object).where(f.index != 60, "inf")),
     "feature column 'x1' row 60 = inf: expected a finite number"),
    (lambda f: f.assign(wage=f.wage.where((f.region == "north") | (f.index == 51))),
     "labelled target rows = 1: expected at least 2"),
    (lambda f: f.drop(columns="x2"), "feature column = 'x2': expected one of the file's columns"),
])
def test_bad_tables_give_one_error_line(tmp_path, table, mutate, expected, run):
    data = tmp_path / "bad.csv"
    mutate(table).to_csv(data, index=False)
    proc = run("fit", str(data), "--features", "x1,x2", "--target", "wage", "--domain",
                "region", "--target-domain", "south", "--steps", "2")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], proc.stderr


def test_predict_table_without_a_model_feature_is_one_line(tmp_path, table, run):
    """The table-level form of 'feature counts differ between domains'."""
    data, model = tmp_path / "train.csv", tmp_path / "m.safetensors"
    table.to_csv(data, index=False)
    fit = run("fit", str(data), "--features", "x1,x2", "--target", "wage", "--domain", "region",
              "--target-domain", "south", "--steps", "1", "--out", str(model))
    assert fit.returncode == 0, fit.stderr
    test_csv = tmp_path / "test.csv"
    table[["x1"]].to_csv(test_csv, index=False)
    pred = run("predict", str(model), str(test_csv))
    lines = pred.stderr.strip().splitlines()
    assert pred.returncode != 0 and len(lines) == 1
    assert "feature column = 'x2': expected one of the file's columns ['x1']" in lines[0]


def test_real_table_options_categorical_impute_domains_holdout(tmp_path, run):
    """One-hot categories, mean imputation, chosen source groups, domain values matched by
    number and case, and the held-out score printed next to the target-mean answer."""
    rng = np.random.default_rng(1)
    n = 120
    site = np.array(["North", "3", "east"])[np.arange(n) % 3]  # 40 rows each
    colour = rng.choice(["red", "blue"], n)
    x = rng.normal(size=n)
    y = 2 * x + 1.5 * (colour == "red") + 0.5 * (site == "3")
    frame = pd.DataFrame({"x": x, "colour": colour, "site": site, "y": y})
    frame.loc[6, "x"] = np.nan  # a missing feature cell (a North row)
    data = tmp_path / "t.csv"
    frame.to_csv(data, index=False)
    model = tmp_path / "m.safetensors"
    fit = run("fit", str(data), "--features", "x,colour", "--target", "y", "--domain", "site",
              "--target-domain", "3.0", "--source-domains", "NORTH", "--categorical", "one-hot",
              "--impute", "mean", "--holdout", "0.25", "--steps", "5", "--n-base", "20",
              "--batch-size", "32", "--lr", "0.01", "--depth", "1", "--w-std", "1.5",
              "--b-std", "0.1", "--kernel", "nngp", "--factor", "cosine", "--out", str(model))
    assert fit.returncode == 0, fit.stderr
    # 40 'North' source rows ('east' left out), 40 target rows with site '3' matched by '3.0'
    assert "40 source, 40 labelled and 0 unlabelled target rows (3 features)" in fit.stdout
    held = fit.stdout.split("held-out target rows: 10 (few rows: a noisy score, see its "
                            "standard error); MAE ")[1]
    mae, mean_mae = float(held.split(" ± ")[0]), float(held.rsplit("MAE ", 1)[1])
    assert "filled 1 empty cell(s) of 'x' with its mean" in fit.stdout
    # y depends on x (std 2) and colour: a fitted model is far better than the target mean
    assert mae < 0.5 * mean_mae
    test_csv = tmp_path / "new.csv"
    pd.DataFrame({"x": [0.0, 1.0], "colour": ["red", "blue"]}).to_csv(test_csv, index=False)
    pred = run("predict", str(model), str(test_csv), "--out", str(tmp_path / "p.csv"))
    assert pred.returncode == 0, pred.stderr
    result = pd.read_csv(tmp_path / "p.csv")
    np.testing.assert_allclose(result.y_pred, [2.0, 2.5], atol=0.3)  # 0+1.5+0.5 and 2+0+0.5


@pytest.mark.parametrize("args, expected", [
    (["--features", "x,colour"], "feature column 'colour' row 0 = 'red': expected a number "
                                 "(or --categorical one-hot)"),
    (["--features", "x", "--source-domains", "west"],
     "source domain value in 'site' = 'west': expected one of"),
    (["--features", "x", "--impute", "mode"], "--impute = 'mode': expected one of 'mean', 'median', 'drop'"),
    (["--features", "x", "--preset", "authors", "--mean", "none"],
     "mean = 'none': expected no value with --preset authors"),
    (["--features", "x", "--holdout", "0.99"], "holdout = 0.99: expected a fraction leaving"),
    (["--features", "x", "--factor", "sine"], "--factor = 'sine': expected one of 'cosine', 'elu'"),
    (["--features", "x", "--posterior", "fast"], "--posterior = 'fast': expected one of 'auto', 'exact'"),
])
def test_real_table_option_errors_are_one_line(tmp_path, run, args, expected):
    frame = pd.DataFrame({"x": np.arange(12.0), "colour": ["red", "blue"] * 6,
                          "site": ["a"] * 6 + ["b"] * 6, "y": np.arange(12.0)})
    data = tmp_path / "t.csv"
    frame.to_csv(data, index=False)
    proc = run("fit", str(data), "--target", "y", "--domain", "site", "--target-domain", "B",
               "--steps", "1", *args)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1 and expected in lines[0], proc.stderr


def test_impute_drop_leaves_rows_out_and_predicts_empty(tmp_path, table, run):
    table.loc[3, "x1"] = np.nan  # a source row
    data, model = tmp_path / "t.csv", tmp_path / "m.safetensors"
    table.to_csv(data, index=False)
    fit = run("fit", str(data), "--features", "x1,x2", "--target", "wage", "--domain", "region",
              "--target-domain", "SOUTH", "--impute", "drop", "--steps", "2", "--out", str(model))
    assert fit.returncode == 0, fit.stderr
    assert "49 source, 20 labelled and 10 unlabelled" in fit.stdout
    assert "dropped 1 row(s) with an empty feature cell (--impute drop)" in fit.stdout
    test_csv = tmp_path / "new.csv"
    table.iloc[:5][["x1", "x2"]].to_csv(test_csv, index=False)
    run("predict", str(model), str(test_csv), "--out", str(tmp_path / "p.csv"))
    result = pd.read_csv(tmp_path / "p.csv")
    assert result.wage_pred.isna().tolist() == [False, False, False, True, False]


def test_impute_features_and_drop_unlabelled_source_rows_each_one_line(tmp_path, table, run):
    """Filling an empty feature cell with the median while dropping a source row without a
    label (impossible before: --impute drop did both or neither); without the flag the
    unlabelled source row is one error line that names it."""
    table.loc[3, "x1"] = np.nan     # a source row: filled with the median of x1
    table.loc[7, "wage"] = np.nan   # a source row without a label: dropped
    data, model = tmp_path / "t.csv", tmp_path / "m.safetensors"
    table.to_csv(data, index=False)
    median = table.x1.median()  # over source and target rows, the empty cell left out
    fit = run("fit", str(data), "--features", "x1,x2", "--target", "wage", "--domain", "region",
              "--target-domain", "south", "--impute", "median", "--drop-unlabelled-source",
              "--out", str(model))
    assert fit.returncode == 0, fit.stderr
    assert f"filled 1 empty cell(s) of 'x1' with its median {median:.6g}" in fit.stdout
    assert "dropped 1 source row(s) without a label (--drop-unlabelled-source)" in fit.stdout
    assert "49 source, 20 labelled and 10 unlabelled" in fit.stdout
    refused = run("fit", str(data), "--features", "x1,x2", "--target", "wage", "--domain",
                  "region", "--target-domain", "south", "--impute", "median")
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode != 0 and len(lines) == 1
    assert "target column 'wage' row 7 = 'empty': expected a label on every source row (or " \
           "--drop-unlabelled-source)" in lines[0]


def test_date_columns_become_fractional_years_not_categories(tmp_path, run):
    """A column of dates (ISO text, some with a time) is one numeric feature, the fractional
    year (2004-07-01 -> 2004 + 182/366), with one-hot encoding on for the other text column;
    predicting from a new table reads its dates the same way; a cell that is not a date is one
    error line."""
    rng = np.random.default_rng(2)
    days = pd.Timestamp("2003-01-01") + pd.to_timedelta(rng.integers(0, 1000, 60), unit="D")
    frame = pd.DataFrame({"sold": days.strftime("%Y-%m-%d"), "kind": rng.choice(["a", "b"], 60),
                          "site": ["s"] * 40 + ["t"] * 20})
    frame.loc[0, "sold"] = "2004-07-01 12:00"
    years = days.year + (days.dayofyear - 1) / np.where(days.is_leap_year, 366, 365)
    frame["y"] = 0.8 * (years - 2004) + (frame["kind"] == "a")
    data, model = tmp_path / "d.csv", tmp_path / "m.safetensors"
    frame.to_csv(data, index=False)
    parts = split_table(pd.read_csv(data), "d.csv", ["sold", "kind"], "y", "site", "t",
                        categorical=True)
    assert parts.encoder.columns == ["sold", "kind=" + frame.kind[0],
                                     "kind=" + ("b" if frame.kind[0] == "a" else "a")]
    assert parts.data.Xs[0, 0] == pytest.approx(2004 + (182 + 0.5) / 366, abs=1e-12)
    np.testing.assert_allclose(parts.data.Xs[1:, 0], years[1:40], atol=1e-12)
    fit = run("fit", str(data), "--features", "sold,kind", "--target", "y", "--domain", "site",
              "--target-domain", "t", "--categorical", "one-hot", "--out", str(model))
    assert fit.returncode == 0, fit.stderr
    assert ("column 'sold' holds dates: encoded as fractional years (2004-07-01 -> 2004.497), "
            "not as categories") in fit.stdout
    assert "(3 features)" in fit.stdout  # one date column + two categories, not 60 dates
    new = tmp_path / "new.csv"
    pd.DataFrame({"sold": ["2004-01-01", "2005-01-01"], "kind": ["b", "b"]}).to_csv(new,
                                                                                   index=False)
    pred = run("predict", str(model), str(new), "--out", str(tmp_path / "p.csv"))
    assert pred.returncode == 0, pred.stderr
    result = pd.read_csv(tmp_path / "p.csv")
    assert 0.4 < result.y_pred[1] - result.y_pred[0] < 1.2  # a year later: about +0.8
    pd.DataFrame({"sold": ["soon"], "kind": ["b"]}).to_csv(new, index=False)
    bad = run("predict", str(model), str(new), "--out", str(tmp_path / "p2.csv"))
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode != 0 and len(lines) == 1
    assert "feature column 'sold' row 0 = 'soon': expected a date" in lines[0]


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_fit_says_nothing_is_kept_not_resume(tmp_path, signum, code):
    """A real signal to a real `transferscope dino fit` process once it has printed its
    estimate (inside the fit, which takes seconds): one line saying no model was written and
    nothing is kept (a fit has no cache), not the resume line of the commands that cache; exit
    130 for Ctrl-C, 143 for SIGTERM; no model file. A subprocess, with Ctrl-C's default
    handler restored: pytest-xdist workers ignore SIGINT, and a timer raced the start."""
    rng = np.random.default_rng(0)
    n = 1600
    frame = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n),
                          "d": np.where(np.arange(n) < n - 30, "s", "t")})
    frame["y"] = np.sin(frame.x) + frame.z
    data, model = tmp_path / "big.csv", tmp_path / "m.safetensors"
    frame.to_csv(data, index=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "transferscope", "dino", "fit", str(data), "--features", "x,z",
         "--target", "y", "--domain", "d", "--target-domain", "t", "--batch-size", "1600",
         "--out", str(model)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TRANSFERSCOPE_CACHE": str(tmp_path / "cache")},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        first = proc.stdout.readline()
        assert "training rows" in first, first
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert err.strip().splitlines() == [NOTHING_KEPT]
    assert "resume" not in err.replace("nothing is kept to resume from", "")
    assert not model.exists()

"""`transferscope dino fit|predict` end to end on real files, and its one-line errors."""

import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from transferscope.cli import main


@pytest.fixture()
def run(monkeypatch, capsys):
    """Call the real entry point in-process (a subprocess would re-import torch: ~1 min here)."""

    def _run(*args, cwd=None):
        monkeypatch.setattr(sys, "argv", ["transferscope", "dino", *args])
        code = 0
        try:
            main()
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        captured = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=captured.out, stderr=captured.err)

    return _run


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
    model = tmp_path / "m.pkl"
    fit = run("fit", str(data), "--features", "x1,x2", "--target", "wage", "--domain", "region",
               "--target-domain", "south", "--steps", "5", "--out", str(model), cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr
    assert "50 source, 20 labelled and 10 unlabelled target rows" in fit.stdout
    test_csv = tmp_path / "test.csv"
    table.iloc[70:][["x1", "x2"]].to_csv(test_csv, index=False)
    out = tmp_path / "pred.csv"
    pred = run("predict", str(model), str(test_csv), "--out", str(out), cwd=tmp_path)
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
                "region", "--target-domain", "south", "--steps", "2", cwd=tmp_path)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], proc.stderr


def test_predict_table_without_a_model_feature_is_one_line(tmp_path, table, run):
    """The table-level form of 'feature counts differ between domains'."""
    data, model = tmp_path / "train.csv", tmp_path / "m.pkl"
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

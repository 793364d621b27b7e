"""`transferscope dino fit|predict` end to end on real files, and its one-line errors."""


import numpy as np
import pandas as pd
import pytest


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
    frame.loc[5, "x"] = np.nan  # a missing feature cell
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
    held = fit.stdout.split("held-out target rows: 10; MAE ")[1]
    mae, mean_mae = float(held.split(",")[0]), float(held.rsplit("MAE ", 1)[1])
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
    (["--features", "x", "--impute", "mode"], "impute = 'mode': expected 'mean' or 'median'"),
    (["--features", "x", "--holdout", "0.99"], "holdout = 0.99: expected a fraction leaving"),
    (["--features", "x", "--factor", "sine"], "factor = 'sine': expected 'cosine' or 'authors'"),
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
    test_csv = tmp_path / "new.csv"
    table.iloc[:5][["x1", "x2"]].to_csv(test_csv, index=False)
    run("predict", str(model), str(test_csv), "--out", str(tmp_path / "p.csv"))
    result = pd.read_csv(tmp_path / "p.csv")
    assert result.wage_pred.isna().tolist() == [False, False, False, True, False]

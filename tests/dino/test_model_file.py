"""Model files hold data only: a fitted model round-trips through safetensors + JSON, and a
pickle, a damaged file or another version is one error line; no code in a file ever runs."""

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import safetensors.numpy
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from transferscope.dino import AuthorsDINO, DINORegressor
from transferscope.dino.io import FeatureEncoder
from transferscope.dino.model_file import (
    MODEL_FORMAT,
    MODEL_VERSION,
    TableModel,
    load_model,
    save_model,
)

FAST = dict(n_steps=5, n_base=25, batch_size=32)


def _data(seed=0, n_s=70, n_t=12):
    rng = np.random.default_rng(seed)
    Xs, Xt = rng.normal(size=(n_s, 3)), rng.normal(size=(n_t + 8, 3)) + 0.4
    ys, yt = np.sin(Xs).sum(1), np.sin(Xt).sum(1) + 0.3
    return Xs, ys, Xt[:n_t], yt[:n_t], Xt[n_t:]


def _table_model(**params) -> TableModel:
    Xs, ys, Xt, yt, Xu = _data()
    X = np.vstack([Xs, Xt, Xu])
    y = np.r_[ys, yt, np.full(len(Xu), np.nan)]
    codes = np.r_[np.zeros(len(Xs)), np.ones(len(Xt)), np.full(len(Xu), 2)]
    if params.pop("authors", False):
        estimator = AuthorsDINO(**(dict(n_base=25, n_steps=3, dtype="float64") | params))
    else:
        estimator = DINORegressor(**(FAST | params))
    pipe = make_pipeline(StandardScaler(), estimator)
    pipe.fit(X, y, **{f"{type(estimator).__name__.lower()}__domain": codes})
    encoder = FeatureEncoder(features=["a", "b", "c"], categories={}, fill={}, impute=None)
    return TableModel(pipeline=pipe, features=["a", "b", "c"], target="y", encoder=encoder)


@pytest.mark.parametrize("params", [
    dict(),                                                      # DINO-TRAIN, cosine, lambda
    dict(kernel="nngp", factor="elu", transfer=False),           # the authors' factor form
    dict(posterior="cg", n_inducing=20, cg_tol=1e-10),           # the CG posterior (weights kept)
    dict(exact_max=50, n_inducing=20),                           # Nystrom: inducing points kept
    dict(authors=True),                                          # the authors' algorithm
])
def test_saved_model_predicts_exactly_like_the_fitted_one(tmp_path, params):
    model = _table_model(**params)
    path = save_model(tmp_path / "m.safetensors", model)
    loaded = load_model(path)
    Xq = _data(seed=1)[4]
    mean, std = model.pipeline.predict(Xq, return_std=True)
    mean2, std2 = loaded.pipeline.predict(Xq, return_std=True)
    np.testing.assert_allclose(mean2, mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(std2, std, rtol=1e-12, atol=1e-12)
    fitted, again = model.pipeline[-1], loaded.pipeline[-1]
    assert type(again) is type(fitted) and again.get_params() == fitted.get_params()
    if isinstance(fitted, DINORegressor):
        assert again.method_ == fitted.method_ and again.lambda_ == fitted.lambda_
        assert again.selected_steps_ == fitted.selected_steps_
    assert (loaded.features, loaded.target, loaded.encoder) == (model.features, "y", model.encoder)
    # the file is safetensors (data only) with our JSON header
    header = json.loads(_header(path))
    assert header["format"] == MODEL_FORMAT and header["version"] == str(MODEL_VERSION)


def _header(path: Path) -> str:
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    return json.dumps(json.loads(raw[8:8 + size])["__metadata__"])


def test_pickling_the_estimator_object_still_works():
    """The ordinary Python protocol stays available to users who pickle it themselves."""
    model = _table_model().pipeline
    twin = pickle.loads(pickle.dumps(model))
    Xq = _data(seed=2)[4]
    np.testing.assert_array_equal(twin.predict(Xq), model.predict(Xq))


class _TouchOnLoad:
    """A crafted pickle: unpickling it calls ``Path.touch(marker)`` (code from a data file)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def good_file(tmp_path_factory) -> Path:
    """One fitted model's file, shared by the damaged-file cases (a fit takes a second)."""
    return save_model(tmp_path_factory.mktemp("model") / "good.safetensors", _table_model())


def _bad_files(tmp_path: Path, good: Path) -> dict[str, Path]:
    raw = good.read_bytes()
    files = {"truncated": raw[: len(raw) // 2], "empty": b"", "text": b"x,y\n1,2\n"}
    arrays = safetensors.numpy.load(raw)
    meta = json.loads(_header(good))
    files["newer"] = safetensors.numpy.save(arrays, metadata=meta | {"version": "5"})
    files["foreign"] = safetensors.numpy.save({"w": np.ones(3)}, metadata={"format": "other"})
    missing = {k: v for k, v in arrays.items() if k != "dino.X_train"}
    files["missing"] = safetensors.numpy.save(missing, metadata=meta)
    nan = arrays | {"dino.log_noise": np.full(2, np.nan)}
    files["nan"] = safetensors.numpy.save(nan, metadata=meta)
    paths = {}
    for name, content in files.items():
        paths[name] = tmp_path / f"{name}.safetensors"
        paths[name].write_bytes(content)
    return paths


@pytest.mark.parametrize("case, expected", [
    ("truncated", "model file length = '{half} bytes': expected {full} as its header says"),
    ("empty", "model file = '0 bytes'"),
    ("text", "model header length"),
    ("newer", "model version = '5': expected 4 (refit the model"),
    ("foreign", "model format = 'other'"),
    ("missing", "model contents = \"KeyError: 'X_train'\""),
    ("nan", "model contents = \"ValueError: non-finite values in 'dino.log_noise'\""),
])
def test_damaged_or_foreign_model_files_are_one_line(tmp_path, run, good_file, case, expected):
    model = _bad_files(tmp_path, good_file)[case]
    full = good_file.stat().st_size
    expected = expected.format(half=full // 2, full=full)
    data = tmp_path / "new.csv"
    pd.DataFrame({"a": [0.0], "b": [1.0], "c": [2.0]}).to_csv(data, index=False)
    proc = run("predict", str(model), str(data), "--out", str(tmp_path / "p.csv"))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert str(model) in lines[0] and not (tmp_path / "p.csv").exists()


def test_crafted_pickle_runs_no_code(tmp_path, run):
    marker = tmp_path / "code-ran"
    evil = tmp_path / "model.pkl"
    evil.write_bytes(pickle.dumps(_TouchOnLoad(marker)))
    data = tmp_path / "new.csv"
    pd.DataFrame({"a": [0.0], "b": [1.0], "c": [2.0]}).to_csv(data, index=False)
    proc = run("predict", str(evil), str(data), "--out", str(tmp_path / "p.csv"))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert "a Python pickle (never loaded" in lines[0]
    assert not marker.exists()
    # control: the payload is live, so the check above would fail if the file were unpickled
    control = tmp_path / "control-marker"
    pickle.loads(pickle.dumps(_TouchOnLoad(control)))
    assert control.exists()

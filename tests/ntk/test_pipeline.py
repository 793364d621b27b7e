"""The NTK pipeline called as a library, on a run directory with a kernel built by hand.

References are independent of the code under test: T_hat from a plain loop over t, the
eigenvalues the kernel was constructed with, the files the steps wrote read back with json.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from transferscope.core.errors import InputError
from transferscope.core.io import json_ready
from transferscope.ntk import pipeline
from transferscope.ntk.rundir import save_kernel_run


def brute_t_hat(eigs: np.ndarray, eta: float, sigma: float, radius: float) -> int:
    t = 1
    while True:
        complexity = math.sqrt(sum(min(v, 1.0 / (eta * t)) for v in eigs) / len(eigs))
        if complexity > radius / (2 * math.e * sigma * eta * t):
            return t - 1
        t += 1


@pytest.fixture()
def run_dir(tmp_path):
    """A run of n = 24 with K/n = U diag(i^-1.5) U^T and labels that f_0 partly explains."""
    n = 24
    rng = np.random.default_rng(0)
    eigs = np.arange(1, n + 1, dtype=float) ** -1.5
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    kernel = n * (q * eigs) @ q.T
    labels = np.repeat([1.0, -1.0], n // 2)
    f0 = 0.3 * labels + 0.5 * rng.standard_normal(n)
    save_kernel_run(tmp_path / "run", kernel, f0, labels, [f"w{i}" for i in range(n)],
                    {"n": n})
    return tmp_path / "run", eigs


def test_spectrum_step_returns_what_it_writes(run_dir):
    path, eigs = run_dir
    done = pipeline.run_spectrum(pipeline.SpectrumConfig(
        run_dir=path, options=pipeline.SpectrumOptions(n_boot=10)), progress=False)
    np.testing.assert_allclose(done.analysis.eigenvalues, eigs, rtol=1e-9)
    assert done.index_range == (2, 9)  # n = 24: at least 8 eigenvalues (2..9), not 2..n//4
    assert all(f.eigenvalues_used == 8 for f in done.analysis.fits.values())
    assert json.loads(done.json_path.read_text()) == json_ready(done.to_dict())
    assert done.figure_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_stop_step_matches_a_plain_loop_and_its_file(run_dir):
    path, eigs = run_dir
    result = pipeline.run_stop(pipeline.StopConfig(run_dir=path, options=pipeline.StopOptions(
        sigma=0.3, radius=2.0, batch_size=6)))
    kernel = np.load(path / "kernel.npy")
    assert result.step_size == pytest.approx(1 / np.max(np.diag(kernel)), rel=1e-9)
    # the overrides reach the recommendation's rwy rule; the answer follows the cv rule
    advice = result.recommendation
    assert advice.rules["rwy"] == brute_t_hat(eigs, result.step_size, 0.3, 2.0) > 0
    assert advice.steps == advice.rules["cv"]
    assert (path / "residual_spectrum.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the schedule, the ridge and the fits are those of the one answer
    assert result.schedule.full_batch_steps == advice.steps > 0
    assert result.schedule.epochs == pytest.approx(advice.steps * 6 / 24)
    assert result.equivalent_ridge == pytest.approx(1 / (result.step_size * advice.steps))
    assert set(result.fits) == {"pretrained f_0", "gradient descent at the recommended steps",
                                "kernel ridge, lam = 1/(eta steps)"}
    # GD at T by hand: f_T = f_0 + (I - (I - eta K/n)^T) (y - f_0)
    labels, f0 = np.load(path / "labels.npy"), np.load(path / "f0.npy")
    gd = f0 + (np.eye(24) - np.linalg.matrix_power(np.eye(24) - result.step_size * kernel / 24,
                                                   advice.steps)) @ (labels - f0)
    assert result.fits["gradient descent at the recommended steps"]["train_mse"] == (
        pytest.approx(float(np.mean((gd - labels) ** 2)), rel=1e-6))
    written = json.loads(result.json_path.read_text())
    assert written == json_ready(result.to_dict())
    assert written["recommendation"]["steps"] == advice.steps
    assert written["schedule"]["epochs_range"] == pytest.approx(
        [t * 6 / 24 for t in advice.steps_ci])
    assert not {"stopping_time", "bootstrap", "sensitivity"} & set(written)


def test_stop_decomposes_the_kernel_once(run_dir, monkeypatch):
    """``ntk stop`` used to eigendecompose the same n x n K/n up to 8 times (#29): once now,
    whatever it estimates, recommends, fits or draws. The CV folds are smaller matrices of
    their own and are not counted."""
    path, _ = run_dir
    n = 24
    calls = []
    for name in ("eigh", "eigvalsh"):
        real = getattr(np.linalg, name)

        def counted(a, *args, _real=real, _name=name, **kwargs):
            if np.shape(a) == (n, n):
                calls.append(_name)
            return _real(a, *args, **kwargs)

        monkeypatch.setattr(np.linalg, name, counted)
    result = pipeline.run_stop(pipeline.StopConfig(run_dir=path))
    assert calls == ["eigh"]
    assert result.recommendation.steps == result.recommendation.rules["cv"]


@pytest.mark.parametrize("options,message", [
    ({"loss": "l1"}, "StopOptions: loss = 'l1': expected one of 'half-mse', 'mse'"),
    ({"sigma": -1.0}, "StopOptions: sigma = -1.0: expected None or a finite number > 0"),
    ({"rule": "nope"}, "StopOptions: rule = 'nope': expected one of 'rwy', "),
    ({"n_total": 1}, "StopOptions: n_total = 1: expected None or a whole number >= 2"),
])
def test_stop_options_are_checked_when_constructed(options, message):
    with pytest.raises(InputError, match=message):
        pipeline.StopOptions(**options)


def test_a_step_size_above_the_kernel_bound_is_one_line(run_dir):
    with pytest.raises(InputError, match="--lr"):
        pipeline.run_stop(pipeline.StopConfig(run_dir=run_dir[0],
                                              options=pipeline.StopOptions(lr=1e9)))


def test_examples_and_kernel_options_are_checked_before_any_model_loads(tmp_path):
    assert pipeline.parse_label_words(" good , bad ") == ("good", "bad")
    for text in ("good", "good,good", "good,"):
        with pytest.raises(ValueError, match="--label-words"):  # InputError is a ValueError
            pipeline.parse_label_words(text)
    with pytest.raises(InputError, match="both given"):
        pipeline.load_examples(pipeline.DataSource(task="vader-words", data_file=tmp_path))
    with pytest.raises(InputError, match="--template"):
        pipeline.load_examples(pipeline.DataSource(data_file=tmp_path / "d.csv"))
    examples = pipeline.load_examples(pipeline.DataSource(label_words="yes,no"))
    assert examples.label_words == ("yes", "no") and "{text}" in examples.template
    for options, message in (({"mode": "fast"}, "KernelOptions: mode = 'fast'"),
                             ({"workers": 2}, "--address/--workers: given with --executor local"),
                             ({"executor": "ray", "workers": 0}, "KernelOptions: workers = 0"),
                             ({"params": "last-0"}, "KernelOptions: params = 'last-0'"),
                             ({"memory_gb": math.nan}, "KernelOptions: memory_gb = nan"),
                             ({"seed": -1}, "KernelOptions: seed = -1")):
        with pytest.raises(InputError, match=message):
            pipeline.KernelOptions(**options)
    with pytest.raises(InputError, match="--template"):
        pipeline.run_kernel(pipeline.KernelConfig(
            out=tmp_path / "r", model="no-such-model",
            source=pipeline.DataSource(data_file=tmp_path / "d.csv")))
    with pytest.raises(InputError, match="KernelConfig: source = 'x': expected a DataSource"):
        pipeline.KernelConfig(out=tmp_path / "r", source="x")
    with pytest.raises(InputError, match="StopConfig: options = 3: expected a StopOptions"):
        pipeline.StopConfig(run_dir=tmp_path, options=3)
    assert not (tmp_path / "r").exists()


def _small_task(n_pos: int, n_neg: int):
    """A user-file-like task of n_pos + n_neg rows (the sentiment words, relabelled by hand)."""
    from transferscope.ntk import data as ntk_data

    words = ntk_data.get_task("sentiment-words").load()
    texts = words.texts[:n_pos + n_neg]
    targets = np.array([1.0] * n_pos + [-1.0] * n_neg)
    rows = ntk_data.LabeledTexts(texts=tuple(texts), targets=targets, class_names=["neg", "pos"],
                                 source="file:small.csv")
    return ntk_data.BuiltinTask(name="small.csv", description="40 rows",
                                template="Word: {text}. Answer:",
                                label_words=("positive", "negative"), load=lambda: rows)


@pytest.mark.parametrize("n_pos,n_neg", [(20, 20), (24, 16)])
def test_default_sizes_of_every_command_fit_a_40_row_file(n_pos, n_neg):
    """The sizes each command samples by default, for a 40-row file (balanced and 24/16):
    every balanced draw they make succeeds (the call that used to say 'expected at most')."""
    from transferscope.ntk import FinetuneOptions, RatesOptions
    from transferscope.ntk import data as ntk_data
    from transferscope.ntk.experiments.profiles import PROFILES, fit_profile

    task = _small_task(n_pos, n_neg)
    rows = task.load()
    capacity = 2 * min(n_pos, n_neg)
    fine = FinetuneOptions().fit(task)
    rates = RatesOptions().fit(task)
    draws = [fine.n + fine.n_test, rates.pool + rates.n_test]
    assert max(rates.sample_sizes()) < rates.pool and len(rates.sample_sizes()) >= 2
    for name in ("quick", "full"):
        prof = fit_profile(PROFILES[name], task)
        draws.append(prof.pool + prof.test_n)
        assert max(prof.sizes) < prof.pool and prof.finetune_n <= prof.pool
    for n in draws:
        assert 8 <= n <= capacity
        sample = ntk_data.sample_examples(rows, n, 0)
        assert len(set(sample.texts)) == n
    # a large task keeps the documented defaults
    big = ntk_data.get_task("sentiment-words")
    assert (FinetuneOptions().fit(big).n, FinetuneOptions().fit(big).n_test) == (16, 24)
    assert RatesOptions().fit(big).sample_sizes() == [32, 64, 128, 256]
    assert fit_profile(PROFILES["full"], big) == PROFILES["full"]


def test_user_sizes_are_kept_and_a_bad_device_is_one_line():
    from transferscope.ntk import FinetuneOptions, RatesOptions

    task = _small_task(20, 20)
    assert FinetuneOptions(n=10, n_test=6).fit(task).n_test == 6
    assert RatesOptions(sizes=(4, 8), n_test=5, pool=30).fit(task).pool == 30
    # a pool for the kernel: n from the default, the draw is pool + n_test
    pooled = FinetuneOptions(pool=20).fit(task)
    assert (pooled.n, pooled.pool, pooled.n_test) == (16, 20, 20)
    with pytest.raises(InputError, match="device = 'tpu': expected one of 'auto', 'cpu', 'cuda'"):
        pipeline.KernelOptions(device="tpu")
    with pytest.raises(InputError, match="FinetuneOptions: batch_size = 12: expected a whole "
                                         "number from 1 to n = 10"):
        FinetuneOptions(n=10, batch_size=12)
    with pytest.raises(InputError, match="SpectrumOptions: last = 3: expected a whole number >= 5"):
        pipeline.SpectrumOptions(first=4, last=3)


def test_taskvec_takes_the_user_file_as_its_first_task():
    from transferscope.ntk.experiments.taskvectors import task_splits

    task = _small_task(20, 20)
    splits = task_splits([task, "vader-words"], 8, 8, 0)
    assert [s.name for s in splits] == ["small.csv", "vader-words"]
    first = splits[0]
    assert set(first.train.texts) | set(first.test.texts) <= set(task.load().texts)
    assert (first.train.targets > 0).sum() + (first.test.targets > 0).sum() == 8  # balanced
    assert not set(splits[1].train.texts) & set(first.train.texts + first.test.texts)
    with pytest.raises(InputError, match="at least two tasks"):
        task_splits([task], 8, 8, 0)


@pytest.mark.parametrize("command, owner", [("kernel", "KernelOptions"),
                                            ("kernel", "DataSource"),
                                            ("spectrum", "SpectrumOptions"),
                                            ("stop", "StopOptions"),
                                            ("finetune", "FinetuneOptions"),
                                            ("finetune", "DataSource"),
                                            ("rates", "RatesOptions"),
                                            ("rates", "DataSource"),
                                            ("taskvec", "TaskVectorOptions"),
                                            ("report", "DataSource"),
                                            ("validate", "DataSource")])
def test_each_command_option_is_its_declaration(command, owner):
    """Default, help and refusal of every option of these commands come from the options
    class (#29): nothing is restated in the command line."""
    import typer
    from typer.main import get_command

    from transferscope.core.params import declarations
    from transferscope.ntk import cli, options

    params = {p.name: p for p in get_command(cli.app).commands[command].params}
    declared = declarations(getattr(options, owner))
    for name, decl in declared.items():
        option = params[name]
        default = ",".join(decl.default) if decl.sequence and decl.default else decl.default
        assert option.default == default, name  # a tuple is written comma-separated
        assert decl.help.rstrip(".") in (option.help or ""), name
        assert option.callback is not None, name  # the declaration's check at parse time
    bad = {"n": 1, "first": 0, "n_boot": 1, "lr": -1.0, "steps": 0, "seeds": 1, "n_train": 1,
           "sizes": "8", "tasks": "vader-words,nope", "label_words": "good,good",
           "task": "nope"}
    for name in sorted(set(bad) & set(declared)):
        flag = params[name].opts[0]  # --label-words; --data for data_file
        with pytest.raises(InputError, match=f"{flag} = "):
            params[name].callback(typer.Context(get_command(cli.app)), params[name],
                                  bad[name])

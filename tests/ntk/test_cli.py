"""``transferscope ntk kernel | spectrum | stop`` end to end on SmolLM2 with 8 real words.

References are independent of the code under test: f_0 from a plain transformers forward pass,
a kernel diagonal entry from plain autograd, eigenvalues from numpy, T_hat from a loop over t.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.cli_inprocess import invoke_cli as run_cli
from tests.planted_runs import save_polynomial_decay_run
from transferscope.ntk import data
from transferscope.ntk.recommend import DEFAULT_RULE

TEMPLATE = 'Is the word "{text}" positive or negative? Answer:'
# SmolLM2-135M-Instruct by default; a local directory holding the same model can stand in
MODEL = os.environ.get("TRANSFERSCOPE_TEST_SMOLLM2", "smollm2")


@pytest.fixture(scope="module")
def kernel_run(tmp_path_factory):
    """One real run: 8 balanced words, SmolLM2 attention parameters, exact kernel."""
    from transferscope.cli import main

    out = tmp_path_factory.mktemp("ntk") / "run"
    argv = sys.argv
    sys.argv = ["transferscope", "ntk", "kernel", "--model", MODEL, "--task",
                "sentiment-words", "--n", "8", "--params", "attention", "--seed", "1",
                "--out", str(out)]
    try:
        main()
    finally:
        sys.argv = argv
    return out


def test_kernel_run_matches_plain_transformers(kernel_run):
    import torch

    from transferscope.core.models import load_causal_lm

    model, tok = load_causal_lm(MODEL)
    texts = json.loads((kernel_run / "texts.json").read_text())
    labels = np.load(kernel_run / "labels.npy")
    f0 = np.load(kernel_run / "f0.npy")
    kernel = np.load(kernel_run / "kernel.npy")
    meta = json.loads((kernel_run / "meta.json").read_text())
    assert len(texts) == 8 and kernel.shape == (8, 8) and (labels > 0).sum() == 4
    truth = dict(zip(data.sentiment_words().texts, data.sentiment_words().targets, strict=True))
    assert [truth[t] for t in texts] == labels.tolist()
    assert meta["template"] == TEMPLATE and meta["params"] == "attention"

    pos = tok.encode(" positive", add_special_tokens=False)
    neg = tok.encode(" negative", add_special_tokens=False)
    assert len(pos) == len(neg) == 1
    attention = [p for name, p in model.named_parameters()
                 if any(f"{x}_proj" in name for x in "qkvo")]
    assert sum(p.numel() for p in attention) == 26_542_080  # 30 x (2 x 576^2 + 2 x 576 x 192)
    for i in (3,):
        ids = tok(TEMPLATE.replace("{text}", texts[i]), return_tensors="pt")
        model.zero_grad()
        logits = model(**ids).logits[0, -1].double()
        f = logits[pos[0]] - logits[neg[0]]
        assert f.item() == pytest.approx(f0[i], abs=1e-4)
        grads = torch.autograd.grad(f, attention)
        diag = sum(float((g.double() ** 2).sum()) for g in grads)
        assert kernel[i, i] == pytest.approx(diag, rel=1e-5)
    np.testing.assert_allclose(kernel, kernel.T, rtol=1e-10, atol=1e-10 * np.abs(kernel).max())
    assert np.linalg.eigvalsh(kernel).min() > -1e-8 * np.abs(kernel).max()


def test_spectrum_command(kernel_run, tmp_path, capsys):
    """On the real run: eigenvalues as numpy's and the figure. On two run folders whose kernel
    has a planted spectrum (``K/n = U diag(lambda) U^T``): each fit returns the planted rate and
    constant, the other shape's rate is numpy's least squares on the planted values, and the
    true shape is preferred."""
    code, out, err = run_cli(capsys, "ntk", "spectrum", str(kernel_run), "--n-boot", "20",
                             "--first", "1", "--last", "6")  # 6 eigenvalues: refused
    assert code != 0 and "expected at least 8" in err and len(err.strip().splitlines()) == 1
    code, out, err = run_cli(capsys, "ntk", "spectrum", str(kernel_run), "--n-boot", "20",
                             "--first", "1", "--last", "8")
    assert code == 0, err
    assert "eigenvalues used" in out
    result = json.loads((kernel_run / "spectrum.json").read_text())
    kernel = np.load(kernel_run / "kernel.npy")
    np.testing.assert_allclose(result["eigenvalues"], np.linalg.eigvalsh(kernel / 8)[::-1],
                               rtol=1e-8, atol=1e-12 * np.trace(kernel))
    assert set(result["fits"]) == {"polynomial", "exponential"}
    assert (kernel_run / "spectrum.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "polynomial" in out

    n, index = 12, np.arange(1, 13)
    basis = np.linalg.qr(np.random.default_rng(0).normal(size=(n, n)))[0]
    planted = {"polynomial": (3.0 * index**-2.0, 2.0, 3.0, "n^(-0.667)"),
               "exponential": (2.0 * np.exp(-0.7 * index), 0.7, 2.0, "log(n)/n")}
    designs = {"polynomial": np.log(index[:10]), "exponential": index[:10].astype(float)}
    for shape, (lam, rate, constant, implied) in planted.items():
        run = tmp_path / shape
        run.mkdir()
        np.save(run / "kernel.npy", n * (basis * lam) @ basis.T)
        np.save(run / "f0.npy", np.zeros(n))
        np.save(run / "labels.npy", np.resize([1.0, -1.0], n))
        (run / "meta.json").write_text("{}")
        code, out, err = run_cli(capsys, "ntk", "spectrum", str(run), "--n-boot", "20",
                                 "--first", "1", "--last", "10")
        assert code == 0, err
        result = json.loads((run / "spectrum.json").read_text())
        fit = result["fits"][shape]
        assert fit["index_range"] == [1, 10]
        assert fit["rate"] == pytest.approx(rate, rel=1e-9)
        assert fit["constant"] == pytest.approx(constant, rel=1e-9)
        assert fit["r_squared"] == pytest.approx(1.0, abs=1e-12)
        other = "exponential" if shape == "polynomial" else "polynomial"
        slope, _ = np.polyfit(designs[other], np.log(lam[:10]), 1)
        assert result["fits"][other]["rate"] == pytest.approx(-slope, rel=1e-9)
        assert result["fits"][other]["r_squared"] < 0.99
        assert result["preferred_model"] == shape and result["implied_rate"] == implied


def brute_t_hat(eigs: np.ndarray, eta: float, sigma: float, radius: float) -> int:
    t = 1
    while t < 10**6:
        eps2 = 1.0 / (eta * t)
        complexity = math.sqrt(sum(min(v, eps2) for v in eigs) / len(eigs))
        if complexity > radius / (2 * math.e * sigma * eta * t):
            return t - 1
        t += 1
    raise AssertionError("no stopping time below 10^6 steps")


def test_stop_command(kernel_run, capsys):
    code, out, err = run_cli(capsys, "ntk", "stop", str(kernel_run), "--batch-size", "4")
    assert code == 0, err
    assert "RECOMMENDED" in out and "range (steps_ci" in out and "T_hat" not in out
    result = json.loads((kernel_run / "stop.json").read_text())
    low_ci, high_ci = result["recommendation"]["steps_ci"]
    assert low_ci <= result["recommendation"]["steps"] <= high_ci
    assert result["recommendation"]["advice"].split(":")[0] in out.replace("\n", " ")
    kernel = np.load(kernel_run / "kernel.npy")
    eigs = np.clip(np.linalg.eigvalsh(kernel / 8), 0, None)
    # default step: RWY's bound for a kernel bounded by 1, i.e. 1 / max K(x, x)
    assert result["step_size"] == pytest.approx(1 / np.max(np.diag(kernel)), rel=1e-9)
    advice = result["recommendation"]
    assert advice["rule"] == DEFAULT_RULE and advice["steps"] == advice["rules"][DEFAULT_RULE]
    assert advice["rules"]["rwy-gcv"] == brute_t_hat(eigs, result["step_size"],
                                                    advice["sigma_gcv"], advice["radius_ridge"])
    assert advice["rules"]["rwy"] == brute_t_hat(eigs, result["step_size"], advice["sigma"],
                                                advice["radius"])
    assert result["schedule"]["full_batch_steps"] == advice["steps"]
    assert result["schedule"]["epochs"] == pytest.approx(advice["steps"] * 4 / 8)

    code, _, err = run_cli(capsys, "ntk", "stop", str(kernel_run), "--sigma", "0.5",
                           "--radius", "3", "--lr", str(0.5 / eigs.max()), "--loss", "mse",
                           "--rule", "rwy")
    assert code == 0, err
    result = json.loads((kernel_run / "stop.json").read_text())
    assert result["step_size"] == pytest.approx(1 / eigs.max())  # mse: eta = 2 lr
    advice = result["recommendation"]
    assert advice["steps"] == advice["rules"]["rwy"] == brute_t_hat(eigs, 1 / eigs.max(), 0.5,
                                                                     3.0)
    assert result["schedule"]["full_batch_steps"] == advice["steps"]


def test_stop_prints_one_step_count_with_an_interval(tmp_path, capsys, monkeypatch):
    """``ntk stop`` reports one answer (#29): the recommended steps it prints are stop.json's,
    and the only step interval it prints is that answer's range; the other rules appear as
    point values. The old second answer (a residual-bootstrap CI of the RWY T_hat and its
    sigma x R grid) is gone, and so is its option."""
    from rich.console import Console

    from transferscope.ntk import cli as ntk_cli

    monkeypatch.setattr(ntk_cli, "_out", Console(width=400))  # one table row per line
    save_polynomial_decay_run(tmp_path / "run")
    code, out, err = run_cli(capsys, "ntk", "stop", str(tmp_path / "run"), "--batch-size", "6")
    assert code == 0, err
    advice = json.loads((tmp_path / "run" / "stop.json").read_text())["recommendation"]
    printed = re.findall(r"RECOMMENDED full-batch steps \((\S+)\)\s*│\s*(\d+) ", out)
    assert printed == [(advice["rule"], str(advice["steps"]))]
    without_epochs = re.sub(r"epochs [^;)]*", "", out)  # the same range, in epochs
    intervals = re.findall(r"(\d+) ?\.\. ?(\d+)|\[(\d+), (\d+)\]|from (\d+) to (\d+)",
                           without_epochs)
    assert intervals and {tuple(int(v) for v in m if v) for m in intervals} == {
        tuple(advice["steps_ci"])}
    for name, steps in advice["rules"].items():
        if name != advice["rule"]:
            assert re.search(rf"rule {name} \(point value\)\s*│\s*{steps}\s", out)
    assert "T_hat" not in out and "CI" not in out and "sigma \\ R" not in out
    code, _, err = run_cli(capsys, "ntk", "stop", str(tmp_path / "run"), "--n-boot", "20")
    assert code == 2 and "--n-boot" in err


@pytest.mark.parametrize("args,message", [
    (["--model", "no-such-model"], "no-such-model"),
    (["--template", "Word: text"], "{text}"),
    (["--n", "100000"], "--n: n = 100000: expected at most"),
    (["--label-words", "positive"], "--label-words"),
])
def test_kernel_bad_input_is_one_line(tmp_path, capsys, args, message):
    code, _, err = run_cli(capsys, "ntk", "kernel", "--n", "4", "--out", str(tmp_path / "r"),
                           *args)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert not (tmp_path / "r" / "kernel.npy").exists()


def test_multi_token_label_word_names_the_tokens(tmp_path, capsys):
    code, _, err = run_cli(capsys, "ntk", "kernel", "--n", "4", "--out", str(tmp_path / "r"),
                           "--model", MODEL, "--label-words", "positive,antidisestablishment")
    assert code != 0 and "antidisestablishment" in err
    assert "4 tokens" in err and "'establish'" in err  # SmolLM2's BPE pieces, checked by hand


@pytest.mark.parametrize("content,message", [
    ("text,label\ngood,1\nbad,\n", "row 2: column 'label' is empty"),
    ("text,label\ngood,1\nbad,0\nmeh,2\n", "3 distinct labels"),
])
def test_kernel_bad_data_file(tmp_path, capsys, content, message):
    path = tmp_path / "d.csv"
    path.write_text(content)
    code, _, err = run_cli(capsys, "ntk", "kernel", "--data", str(path), "--template", TEMPLATE,
                           "--label-words", "positive,negative", "--n", "2",
                           "--out", str(tmp_path / "r"))
    assert code != 0 and err.startswith("error: ") and message in err


def test_missing_run_dir_and_too_large_lr(kernel_run, tmp_path, capsys):
    code, _, err = run_cli(capsys, "ntk", "spectrum", str(tmp_path / "nothing"))
    assert code != 0 and "not a directory" in err
    eigs = np.linalg.eigvalsh(np.load(kernel_run / "kernel.npy") / 8)
    code, _, err = run_cli(capsys, "ntk", "stop", str(kernel_run), "--lr",
                           str(2.0 / eigs.max()))
    assert code != 0 and "--lr" in err and "1/lambda_max" in err


def test_entry_point_subprocess_reports_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "transferscope", "ntk", "kernel", "--out",
                           str(tmp_path / "r"), "--template", "no placeholder"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("error: ") and "{text}" in proc.stderr


def test_stop_rejects_an_unknown_rule_and_a_data_file_without_template(kernel_run, tmp_path,
                                                                      capsys):
    code, _, err = run_cli(capsys, "ntk", "stop", str(kernel_run), "--rule", "nope")
    assert code != 0 and err.startswith("error: ") and "--rule" in err
    path = tmp_path / "d.csv"
    path.write_text("text,label\ngood,1\nbad,0\n")
    code, _, err = run_cli(capsys, "ntk", "validate", "--data", str(path), "--out",
                           str(tmp_path / "v"))
    assert code != 0 and len(err.strip().splitlines()) == 1 and "--template" in err


def test_validate_takes_a_small_user_file_with_default_sizes(tmp_path, capsys):
    words = data.get_task("sentiment-words").load()
    pos = [w for w, t in zip(words.texts, words.targets, strict=True) if t > 0][:20]
    neg = [w for w, t in zip(words.texts, words.targets, strict=True) if t < 0][:20]
    path = tmp_path / "words.csv"
    path.write_text("text,label\n" + "".join(f"{w},pos\n" for w in pos)
                    + "".join(f"{w},neg\n" for w in neg))
    code, _, err = run_cli(capsys, "ntk", "validate", "--model", MODEL, "--data", str(path),
                           "--template", TEMPLATE, "--label-words", "positive,negative",
                           "--real-splits", "0", "--out", str(tmp_path / "v"))
    assert code == 0, err
    result = json.loads((tmp_path / "v" / "validate.json").read_text())
    # 40 rows: a development and a disjoint evaluation pool of 20, n = 12 with 8 held out
    assert result["pool"] == 20 and result["held_out_sizes"] == [12]
    assert "disjoint" in result["evaluation"]["pool"]
    assert len(result["planted"]["problems"]) >= 80
    assert sum(s["setting"]["n"] == 12 for s in result["held_out"]["splits"]) >= 10
    text = (tmp_path / "v" / "validate.md").read_text()
    assert "(a) Planted truths" in text and "Development pool" in text
    assert "Evaluation pool" in text and "fixed-1000" in text
    assert all(s["setting"]["n_test"] == 8 for s in result["held_out"]["splits"])
    assert result["real_finetuning"] == {"run": False, "reason": "--real-splits 0"}


HAS_CUDA = __import__("torch").cuda.is_available()
_SMALL = ("--n", "4")
DEVICE_COMMANDS = {
    "kernel": _SMALL, "finetune": ("--n", "4", "--n-test", "4", "--steps", "1"),
    "rates": ("--sizes", "4,6", "--pool", "8", "--n-test", "4"),
    "taskvec": ("--n-train", "2", "--n-test", "2", "--steps", "1"),
    "report": (), "validate": (),
}


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA: --device cuda is valid here")
@pytest.mark.parametrize("command", sorted(DEVICE_COMMANDS))
def test_device_cuda_without_cuda_is_one_line_before_any_model_load(command, tmp_path, capsys,
                                                                     monkeypatch):
    from transferscope.ntk import task as ntk_task

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before --device was checked")

    monkeypatch.setattr(ntk_task, "_load", no_model)
    code, _, err = run_cli(capsys, "ntk", command, *DEVICE_COMMANDS[command], "--device",
                           "cuda", "--out", str(tmp_path / "r"))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("error: --device: device = 'cuda'") and "no CUDA" in lines[0]


def test_device_option_resolves_auto_and_rejects_an_unknown_name(tmp_path, capsys):
    import torch

    from transferscope.ntk.device import resolve_device

    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"
    code, _, err = run_cli(capsys, "ntk", "kernel", "--n", "4", "--device", "gpu0", "--out",
                           str(tmp_path / "r"))
    assert code == 2 and "--device = 'gpu0': expected one of 'auto', 'cpu', 'cuda'" in err


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not HAS_CUDA, reason="no CUDA device here: the CUDA path runs where torch.cuda.is_available()"
))])
def test_kernel_and_fine_tuning_on_each_device_match_plain_autograd_on_the_cpu(device,
                                                                               tmp_path):
    """f_0, one kernel entry and one real gradient step on ``device`` against a plain
    transformers model on the CPU (forward pass, autograd, a hand-made SGD step)."""
    import torch

    from transferscope.core.models import load_causal_lm
    from transferscope.ntk import pipeline
    from transferscope.ntk.experiments.finetune import TrainingConfig, finetune

    run = pipeline.run_kernel(pipeline.KernelConfig(
        out=tmp_path / "k", model=MODEL,
        options=pipeline.KernelOptions(params="last-1", n=4, seed=5, device=device)),
        progress=False)
    model, tok = load_causal_lm(MODEL)
    pos, neg = (tok.encode(f" {w}", add_special_tokens=False)[0]
                for w in ("positive", "negative"))
    chosen = [p for name, p in model.named_parameters() if ".layers.29." in name]
    lr, i = 0.01, 2
    ids = tok(TEMPLATE.replace("{text}", run.texts[i]), return_tensors="pt")
    logits = model(**ids).logits[0, -1].double()
    f = logits[pos] - logits[neg]
    grads = torch.autograd.grad(f, chosen)
    assert run.f0[i] == pytest.approx(f.item(), abs=1e-4)
    assert run.kernel[i, i] == pytest.approx(sum(float((g.double() ** 2).sum()) for g in grads),
                                             rel=1e-4)
    # one full-batch step on the half squared loss, on the 4 words, by hand on the CPU
    loss = 0.0
    for text, y in zip(run.texts, run.targets, strict=True):
        out = model(**tok(TEMPLATE.replace("{text}", text), return_tensors="pt")).logits[0, -1]
        loss = loss + 0.5 * (out[pos] - out[neg] - float(y)) ** 2 / len(run.texts)
    grads = torch.autograd.grad(loss, chosen)
    with torch.no_grad():
        for p, g in zip(chosen, grads, strict=True):
            p -= lr * g
        after = model(**tok(TEMPLATE.replace("{text}", run.texts[i]), return_tensors="pt")
                      ).logits[0, -1]
    from transferscope.ntk.task import PromptTask

    task = PromptTask(TEMPLATE, ["positive", "negative"], model=MODEL, device=device)
    assert task.device.type == device
    rows = data.LabeledTexts(texts=tuple(run.texts), targets=run.targets,
                             class_names=["negative", "positive"], source="test")
    result = finetune(task, rows, rows, TrainingConfig(params="last-1", steps=1,
                                                       learning_rate=lr), tmp_path / "ft")
    assert result.test_outputs[1][i] == pytest.approx(float(after[pos] - after[neg]), abs=2e-4)


def test_a_40_row_file_runs_kernel_with_default_n_and_taskvec_as_a_task(tmp_path, capsys):
    words = data.get_task("sentiment-words").load()
    pos = [w for w, t in zip(words.texts, words.targets, strict=True) if t > 0][:20]
    neg = [w for w, t in zip(words.texts, words.targets, strict=True) if t < 0][:20]
    path = tmp_path / "words.csv"
    path.write_text("text,label\n" + "".join(f"{w},pos\n" for w in pos)
                    + "".join(f"{w},neg\n" for w in neg))
    source = ("--data", str(path), "--template", TEMPLATE, "--label-words", "positive,negative")
    code, _, err = run_cli(capsys, "ntk", "kernel", "--model", MODEL, *source, "--params",
                           "last-1", "--out", str(tmp_path / "k"))
    assert code == 0, err
    assert json.loads((tmp_path / "k" / "meta.json").read_text())["n"] == 40
    code, _, err = run_cli(capsys, "ntk", "taskvec", "--model", MODEL, *source, "--tasks",
                           "vader-words,afinn-words", "--n-train", "2", "--n-test", "2",
                           "--steps", "1", "--out", str(tmp_path / "tv"))
    assert code == 0, err
    result = json.loads((tmp_path / "tv" / "taskvec.json").read_text())
    assert result["tasks"] == [str(path), "vader-words", "afinn-words"]
    assert len(result["centred_alignment"]) == 3

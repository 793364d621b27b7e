"""``transferscope ntk kernel | spectrum | stop`` end to end on SmolLM2 with 8 real words.

References are independent of the code under test: f_0 from a plain transformers forward pass,
a kernel diagonal entry from plain autograd, eigenvalues from numpy, T_hat from a loop over t.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from transferscope.ntk import data

TEMPLATE = 'Is the word "{text}" positive or negative? Answer:'
# SmolLM2-135M-Instruct by default; a local directory holding the same model can stand in
MODEL = os.environ.get("TRANSFERSCOPE_TEST_SMOLLM2", "smollm2")


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """Call the real entry point in-process: exit code, stdout, stderr."""
    from transferscope.cli import main

    argv = sys.argv
    sys.argv = ["transferscope", *args]
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    finally:
        sys.argv = argv
    out = capsys.readouterr()
    return code, out.out, out.err


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


def test_spectrum_command(kernel_run, capsys):
    code, out, err = run_cli(capsys, "ntk", "spectrum", str(kernel_run), "--n-boot", "20",
                             "--first", "1", "--last", "6")
    assert code == 0, err
    result = json.loads((kernel_run / "spectrum.json").read_text())
    kernel = np.load(kernel_run / "kernel.npy")
    np.testing.assert_allclose(result["eigenvalues"], np.linalg.eigvalsh(kernel / 8)[::-1],
                               rtol=1e-8, atol=1e-12 * np.trace(kernel))
    assert set(result["fits"]) == {"polynomial", "exponential"}
    for fit in result["fits"].values():
        assert fit["index_range"] == [1, 6] and fit["r_squared"] <= 1.0
    assert (kernel_run / "spectrum.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "polynomial" in out


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
    assert "T_hat" in out and "RECOMMENDED" in out
    result = json.loads((kernel_run / "stop.json").read_text())
    kernel = np.load(kernel_run / "kernel.npy")
    eigs = np.clip(np.linalg.eigvalsh(kernel / 8), 0, None)
    # default step: RWY's bound for a kernel bounded by 1, i.e. 1 / max K(x, x)
    assert result["step_size"] == pytest.approx(1 / np.max(np.diag(kernel)), rel=1e-9)
    advice = result["recommendation"]
    assert advice["rule"] == "cv" and advice["steps"] == advice["rules"]["cv"]
    assert advice["rules"]["rwy-gcv"] == brute_t_hat(eigs, result["step_size"],
                                                    result["sigma"]["estimate"],
                                                    result["radius"]["estimate"])
    sigma, radius = result["sigma"]["used"], result["radius"]["used"]
    t_hat = brute_t_hat(eigs, result["step_size"], sigma, radius)
    assert result["stopping_time"] == t_hat
    assert result["schedule"]["epochs"] == pytest.approx(t_hat * 4 / 8)
    low, high = result["bootstrap"]["stopping_time_ci"]
    assert result["bootstrap"]["n_boot"] == 200 and 0 <= low <= high
    table = np.array(result["sensitivity"]["stopping_time"])
    assert table.shape == (5, 5) and table[2, 2] == t_hat
    assert np.all(np.diff(table, axis=1) >= 0) and np.all(np.diff(table, axis=0) <= 0)

    code, _, err = run_cli(capsys, "ntk", "stop", str(kernel_run), "--sigma", "0.5",
                           "--radius", "3", "--lr", str(0.5 / eigs.max()), "--loss", "mse")
    assert code == 0, err
    result = json.loads((kernel_run / "stop.json").read_text())
    assert result["step_size"] == pytest.approx(1 / eigs.max())  # mse: eta = 2 lr
    assert result["stopping_time"] == brute_t_hat(eigs, 1 / eigs.max(), 0.5, 3.0)


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
                           "--out", str(tmp_path / "v"))
    assert code == 0, err
    result = json.loads((tmp_path / "v" / "validate.json").read_text())
    assert result["pool"] == 40 and result["held_out_sizes"] == [32]  # 40 rows fit the defaults
    assert len(result["planted"]["problems"]) >= 100
    assert sum(s["setting"]["n"] == 32 for s in result["held_out"]["splits"]) >= 10
    assert "(a) Planted truths" in (tmp_path / "v" / "validate.md").read_text()
    assert all(s["setting"]["n_test"] == 8 for s in result["held_out"]["splits"])

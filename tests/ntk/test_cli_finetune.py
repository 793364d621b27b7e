"""``transferscope ntk finetune`` as a user runs it: a killed process resumes, MiniLM works.

References: an uninterrupted run of the same command (for resume); for MiniLM, a plain
transformers forward pass with mean pooling and the head drawn by hand from its seed (for the
step-0 losses), and the closed-form kernel trajectory at a small step (which the real run must
follow).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from transferscope.ntk import data

RUN = "from transferscope.cli import main; main()"


def _command(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-c", RUN, "ntk", "finetune", "--out", str(out), "--n", "6",
            "--n-test", "6", "--params", "attention@last-1", "--seed", "3", *extra]


def _checkpoint_step(path: Path) -> int:
    try:
        return int(torch.load(path, weights_only=True)["step"])
    except (OSError, EOFError, RuntimeError, KeyError):
        return 0  # not there yet (written atomically, so never half-read)


@pytest.mark.slow
def test_killed_finetune_resumes_from_its_checkpoint(tmp_path):
    """SIGKILL after the first checkpoint, rerun: same history as a run never interrupted."""
    env = {**os.environ, "TRANSFERSCOPE_CACHE": str(tmp_path / "cache")}
    steps = ("--steps", "12")
    whole = tmp_path / "whole"
    subprocess.run(_command(whole, *steps), env=env, check=True, capture_output=True)
    cut = tmp_path / "cut"
    proc = subprocess.Popen(_command(cut, *steps), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    checkpoint = cut / "finetune-run" / "checkpoint.pt"
    deadline = time.monotonic() + 600
    while _checkpoint_step(checkpoint) < 1 and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _checkpoint_step(checkpoint)
    assert 1 <= killed_at < 12, killed_at  # really cut mid-run
    assert not (cut / "finetune.json").exists()
    subprocess.run(_command(cut, *steps), env=env, check=True, capture_output=True)
    resumed = json.loads((cut / "finetune.json").read_text())
    reference = json.loads((whole / "finetune.json").read_text())
    assert resumed["resumed_from"] >= killed_at
    assert reference["resumed_from"] == 0
    assert [r["step"] for r in resumed["history"]] == list(range(13))
    for got, want in zip(resumed["history"], reference["history"], strict=True):
        for key in ("train_loss", "test_loss", "train_accuracy", "test_accuracy"):
            assert got[key] == pytest.approx(want[key], rel=1e-6, abs=1e-9), (got, want)


def test_minilm_finetune_with_random_head(tmp_path, monkeypatch, minilm):
    """Encoder + random linear head: step 0 is the hand-built model, small steps follow K."""
    from transferscope.cli import main

    monkeypatch.setenv("TRANSFERSCOPE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    argv = sys.argv
    sys.argv = ["transferscope", "ntk", "finetune", "--model", "minilm", "--out", str(out),
                "--n", "8", "--n-test", "8", "--steps", "3", "--lr-fraction", "0.2",
                "--seed", "2"]
    try:
        main()
    finally:
        sys.argv = argv
    result = json.loads((out / "finetune.json").read_text())

    sample = data.sample_examples(data.sentiment_words(), 16, seed=2)
    prompts = [data.get_task("sentiment-words").template.replace("{text}", t)
               for t in sample.texts]
    model, tokenizer = minilm
    enc = tokenizer(prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state.double()
    mask = enc["attention_mask"].double()[..., None]
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    size = model.config.hidden_size
    weight = torch.randn((1, size), generator=torch.Generator().manual_seed(0),
                         dtype=torch.float64) / size**0.5
    f0 = (pooled @ weight.T)[:, 0].numpy()
    y = sample.targets
    first = result["history"][0]
    assert first["train_loss"] == pytest.approx(np.mean((f0[:8] - y[:8]) ** 2) / 2, rel=1e-4)
    assert first["test_loss"] == pytest.approx(np.mean((f0[8:] - y[8:]) ** 2) / 2, rel=1e-4)
    # the head and last block moved the training loss down, as kernel descent predicts
    train = [r["train_loss"] for r in result["history"]]
    assert train[-1] < train[0]
    assert np.allclose(train, result["linear_train_loss"], rtol=0.02)
    assert max(result["relative_distance"]) < 0.05
    assert result["regime_steps"] == 3

"""Small, fast versions of the NTK claims whose thorough checks are slow tests.

Each test names the slow test it shrinks. All run on the real SmolLM2-135M-Instruct weights
(float32, as shipped), a few real words and 2-4 steps; the slow versions stay the thorough
ones (float64, more words, more steps).
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

from transferscope.ntk import PromptTask, empirical_ntk_result
from transferscope.ntk.data import LabeledTexts
from transferscope.ntk.params import select_parameters

TEMPLATE = 'Is the word "{text}" positive or negative? Answer:'
# different token counts, so the engine's padded batches are exercised
WORDS = ["good", "terrible", "not bad at all"]


pytestmark = pytest.mark.usefixtures("linked_private_cache")


@pytest.fixture(scope="module")
def task(smollm2):
    return PromptTask(TEMPLATE, ("positive", "negative"), smollm2)


def brute_force_kernel(task: PromptTask, words: list[str], chosen: list[torch.Tensor]
                       ) -> np.ndarray:
    """``<grad f(x_i), grad f(x_j)>`` from one plain autograd backward per word on its unpadded
    prompt, products accumulated in float64 one parameter at a time."""
    grads = []
    for word in words:
        enc = task.tokenizer(task.format([word]), return_tensors="pt")
        with torch.enable_grad():
            logits = task.model.body(**enc).logits[0, -1]
            f = logits[task.word_ids[0]] - logits[task.word_ids[1]]
            grads.append(torch.autograd.grad(f, chosen))
    n = len(words)
    kernel = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1):
            value = sum(float(torch.dot(a.reshape(-1).double(), b.reshape(-1).double()))
                        for a, b in zip(grads[i], grads[j], strict=True))
            kernel[i, j] = kernel[j, i] = value
    return kernel


@pytest.mark.parametrize(("params", "count"), [("attention", 3), ("all", 2)])
def test_exact_kernel_off_the_diagonal_equals_brute_force(task, params, count):
    """Fast version of test_kernel_smollm2.py::test_exact_kernel_equals_brute_force: every entry,
    off the diagonal included, and ``all`` with the tied embedding / LM head (found through
    both names, counted once). Measured: 3e-9 (attention) and 2e-9 (all) of the largest entry;
    checked at 1e-5, room for float32 rounding of the gradients (6e-8 each), while a wrong
    pairing of rows, padding or tied-weight terms moves entries by O(1)."""
    words = WORDS[:count]
    selected = select_parameters(task.model, params)
    if params == "all":
        assert sum(p.numel() for _, p in selected) == 134_515_008  # tied weight counted once
    want = brute_force_kernel(task, words, [p for _, p in selected])
    result = empirical_ntk_result(task.model, words, task.output_fn, params, block_size=2,
                                  progress=False)
    got = result.kernel
    assert result.details["engine"] == "hooks"
    off = ~np.eye(count, dtype=bool)
    assert np.abs(want[off]).min() > 0.05 * np.abs(want).max()  # off-diagonal entries matter
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
    assert np.array_equal(got, got.T)


def test_small_steps_follow_the_kernel_trajectory(task, tmp_path):
    """Fast version of experiments/test_finetune.py::test_small_steps_follow_the_kernel_trajectory
    (4 train and 4 held-out words, 2 full-batch steps at 5% of the largest stable step).

    The real outputs minus the linearised ones are second order in the step: measured 0.3% of
    the distance moved at 5% of 1/lambda_max (1.4% at 50%), checked at 5% as the slow version
    does; float32 rounding of the outputs (about 1e-6) is far below the 0.056 they move."""
    from transferscope.ntk.data import sample_examples, vader_words
    from transferscope.ntk.dynamics import kernel_gd, split_kernel
    from transferscope.ntk.experiments.finetune import (
        TrainingConfig,
        compare_with_kernel,
        finetune,
        parameter_spec,
    )

    words = sample_examples(vader_words(), 8, seed=5)
    train = LabeledTexts(texts=words.texts[:4], targets=words.targets[:4],
                         class_names=words.class_names, source=words.source)
    test = LabeledTexts(texts=words.texts[4:], targets=words.targets[4:],
                        class_names=words.class_names, source=words.source)
    params = "attention@last-1"
    joint = task.kernel(list(train.texts) + list(test.texts), parameter_spec(task, params),
                        progress=False).kernel
    k_train, cross = split_kernel(joint, len(train))
    eta_max = 1.0 / np.linalg.eigvalsh(k_train / len(train)).max()
    config = TrainingConfig(params=params, steps=2, learning_rate=0.05 * eta_max)
    result = finetune(task, train, test, config, tmp_path / "run")
    gd = kernel_gd(k_train, train.targets - result.train_outputs[0], config.step_size)
    comparison = compare_with_kernel(result, gd, cross, result.test_outputs[0], test.targets)
    moved = np.abs(result.train_outputs[-1] - result.train_outputs[0]).max()
    assert moved > 1e-3
    assert comparison.relative_distance[1:].max() < 0.05, comparison.relative_distance
    assert comparison.regime_steps == 2


def test_real_task_vectors_follow_the_linearised_prediction(task, tmp_path):
    """Fast version of experiments/test_taskvectors.py::
    test_real_task_vectors_follow_the_linearised_prediction_for_small_steps (2 + 2 words per
    task instead of 4 + 4): every sum and negation of the real task vectors moves each task's
    held-out loss as the joint-eNTK formula says, within 10% of the move (second-order terms
    at 5% of the largest stable step; measured at most 0.7%, interference within 1.5%), and
    theta_0 is left in place."""
    from transferscope.ntk.experiments.finetune import TrainingConfig
    from transferscope.ntk.experiments.taskvectors import (
        NEGATED_TASK,
        run_task_vectors,
        task_splits,
    )

    before = {k: v.clone() for k, v in task.model.state_dict().items()}
    splits = task_splits(["vader-words", NEGATED_TASK], 2, 2, seed=1)
    result = run_task_vectors(task, splits, TrainingConfig(params="attention@last-1", steps=2),
                              tmp_path / "tv", lr_fraction=0.05, progress=False)
    assert all(torch.equal(task.model.state_dict()[k], v) for k, v in before.items())
    f0_loss = [np.mean((task.outputs(list(s.test.texts)) - s.test.targets) ** 2) / 2
               for s in splits]
    assert [r["combination"] for r in result["combinations"][::2]] == [
        "+t0", "+t1", "+t0+t1", "-t0", "-t1"]
    for row in result["combinations"]:
        moved = abs(row["linear_loss"] - f0_loss[row["task_index"]])
        assert moved > 1e-4, row
        assert abs(row["real_loss"] - row["linear_loss"]) < 0.1 * moved, row
    for pair in result["pairs"]:
        assert pair["real_interference"] == pytest.approx(pair["linear_interference"],
                                                          rel=0.1)


def test_body_and_head_parts_equal_the_brute_force_kernel(task):
    """Fast version of experiments/test_random_head.py::test_body_plus_head_equals_the_joint_kernel
    with a stronger reference: on 3 words, the random-head task's body part (engine, last
    block's attention) and head part (closed form ``h h^T + 1``) each equal ``J J^T`` of plain
    autograd over those parameters, so they add up to the full kernel. The head holds ~99.6% of
    the trace, so the parts are checked one by one: measured 1e-11 of each part's largest
    entry, checked at 1e-6 (float32 gradients accumulated in float64)."""
    from transferscope.ntk.experiments.finetune import parameter_spec
    from transferscope.ntk.experiments.random_head import mixed_kernel, mixed_task

    mixed = mixed_task(task, head_seed=4)
    parts = mixed_kernel(mixed, WORDS, "attention@last-1", progress=False)
    named = select_parameters(mixed.model, parameter_spec(mixed, "attention@last-1"))
    head = [p for name, p in named if name.startswith("head.")]
    body = [p for name, p in named if not name.startswith("head.")]
    assert len(head) == 2 and len(body) == 4  # weight and bias; q, k, v, o of the last block
    rows, outputs = [], []
    for word in WORDS:
        with torch.enable_grad():
            f = mixed.output_fn(mixed.model, [word]).reshape(())
            grads = torch.autograd.grad(f, body + head)
        rows.append([torch.cat([g.reshape(-1).double() for g in part]).numpy()
                     for part in (grads[:len(body)], grads[len(body):])])
        outputs.append(float(f.detach()))
    for k, got in enumerate((parts.body, parts.head)):
        jacobian = np.stack([r[k] for r in rows])
        want = jacobian @ jacobian.T
        assert np.abs(got - want).max() <= 1e-6 * np.abs(want).max()
    np.testing.assert_allclose(parts.outputs, outputs, rtol=1e-5, atol=1e-5)
    assert 0 < parts.head_share() < 1


RUN = "from transferscope.cli import main; main()"


def _finetune_command(out: Path) -> list[str]:
    return [sys.executable, "-c", RUN, "ntk", "finetune", "--out", str(out), "--n", "4",
            "--n-test", "4", "--steps", "4", "--params", "attention@last-1", "--seed", "3"]


def _checkpoint_step(path: Path) -> int:
    try:
        return int(torch.load(path, weights_only=True)["step"])
    except (OSError, EOFError, RuntimeError, KeyError):
        return 0  # not written yet (written atomically, so never half-read)


def test_sigkilled_finetune_resumes_to_the_uninterrupted_result(tmp_path):
    """Fast version of test_cli_finetune.py::test_killed_finetune_resumes_from_its_checkpoint
    (4 steps on 4 words instead of 12 on 6): a real ``ntk finetune`` process is SIGKILLed after
    its first checkpoint, run again on the same folder, and ends with the history of a run never
    interrupted (same command, same environment)."""
    env = {**os.environ, "TRANSFERSCOPE_CACHE": str(tmp_path / "cache")}
    whole = tmp_path / "whole"
    subprocess.run(_finetune_command(whole), env=env, check=True, capture_output=True)
    cut = tmp_path / "cut"
    proc = subprocess.Popen(_finetune_command(cut), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    checkpoint = cut / "finetune-run" / "checkpoint.pt"
    deadline = time.monotonic() + 300
    while _checkpoint_step(checkpoint) < 1 and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint within 5 minutes"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _checkpoint_step(checkpoint)
    assert proc.returncode == -signal.SIGKILL
    assert 1 <= killed_at < 4, killed_at  # really cut mid-run
    assert not (cut / "finetune.json").exists()
    subprocess.run(_finetune_command(cut), env=env, check=True, capture_output=True)
    resumed = json.loads((cut / "finetune.json").read_text())
    reference = json.loads((whole / "finetune.json").read_text())
    assert resumed["resumed_from"] >= killed_at and reference["resumed_from"] == 0
    assert [r["step"] for r in resumed["history"]] == list(range(5))
    for got, want in zip(resumed["history"], reference["history"], strict=True):
        for key in ("train_loss", "test_loss", "train_accuracy", "test_accuracy"):
            assert got[key] == pytest.approx(want[key], rel=1e-6, abs=1e-9), (got, want)

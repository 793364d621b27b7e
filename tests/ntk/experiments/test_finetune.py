"""Real fine-tuning of SmolLM2's last attention block on real lexicon words.

References: an uninterrupted run with the same seed (for resume), the closed-form kernel
trajectory (for a small step, where the linearisation must hold), softmax cross-entropy.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferscope.core.errors import InputError
from transferscope.ntk.data import sample_examples, vader_words
from transferscope.ntk.dynamics import kernel_gd, split_kernel
from transferscope.ntk.experiments.finetune import (
    TrainingConfig,
    batch_order,
    compare_with_kernel,
    finetune,
    loss_value,
    parameter_spec,
)

TEMPLATE = 'Is the word "{text}" positive or negative? Answer:'


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERSCOPE_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def task(smollm2):
    from transferscope.ntk import PromptTask

    return PromptTask(TEMPLATE, ("positive", "negative"), smollm2)


@pytest.fixture(scope="module")
def data():
    words = sample_examples(vader_words(), 12, seed=5)
    train = type(words)(texts=words.texts[:6], targets=words.targets[:6],
                        class_names=words.class_names, source=words.source)
    test = type(words)(texts=words.texts[6:], targets=words.targets[6:],
                       class_names=words.class_names, source=words.source)
    return train, test


class Interrupted(Exception):
    pass


def test_resume_after_interruption_repeats_the_uninterrupted_run(task, data, tmp_path):
    train, test = data
    config = TrainingConfig(params="attention@last-1", steps=3, learning_rate=2e-3,
                            batch_size=4, seed=1)
    before = {k: v.detach().clone() for k, v in task.model.state_dict().items()}
    whole = finetune(task, train, test, config, tmp_path / "whole")

    def crash(step, row):
        if step == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        finetune(task, train, test, config, tmp_path / "cut", on_step=crash)
    resumed = finetune(task, train, test, config, tmp_path / "cut")
    assert resumed.resumed_from == 1
    assert resumed.history == whole.history
    for name, value in whole.final.items():
        assert torch.equal(resumed.final[name], value), name
    # the model is back at theta_0 and training moved the weights
    after = task.model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())
    assert any(not torch.equal(whole.final[k], whole.initial[k]) for k in whole.final)
    with pytest.raises(InputError, match="another task"):
        finetune(task, train, test, TrainingConfig(params="attention@last-1", steps=5),
                 tmp_path / "cut")


@pytest.mark.slow
def test_small_steps_follow_the_kernel_trajectory(task, data, tmp_path):
    """6 words, 3 steps at 5% of the largest stable step: the real outputs stay within 5% of the
    distance the closed-form kernel trajectory moved (fast version: test_fast_claims.py)."""
    train, test = data
    params = "attention@last-1"
    joint = task.kernel(list(train.texts) + list(test.texts), parameter_spec(task, params),
                        progress=False).kernel
    k_train, cross = split_kernel(joint, len(train))
    eta_max = 1.0 / np.linalg.eigvalsh(k_train / len(train)).max()
    config = TrainingConfig(params=params, steps=3, learning_rate=0.05 * eta_max)
    result = finetune(task, train, test, config, tmp_path / "run")
    gd = kernel_gd(k_train, train.targets - result.train_outputs[0], config.step_size)
    comparison = compare_with_kernel(result, gd, cross, result.test_outputs[0], test.targets)
    moved = np.abs(result.train_outputs[-1] - result.train_outputs[0]).max()
    assert moved > 1e-3  # the outputs did move
    # float32 forward passes: agreement to a few per cent of the distance moved
    assert comparison.relative_distance[1:].max() < 0.05, comparison.relative_distance
    assert comparison.regime_steps == 3


def test_losses_and_batches():
    f = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    y = torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    logits = torch.stack([-f / 2, f / 2], dim=1)  # (word-, word+) logits differing by f
    reference = torch.nn.functional.cross_entropy(logits, (y > 0).long())
    assert float(loss_value(f, y, "cross-entropy")) == pytest.approx(float(reference))
    assert float(loss_value(f, y, "half-mse")) == pytest.approx(
        float(((f - y) ** 2).sum()) / 6)
    epoch = np.concatenate([batch_order(10, 4, 3, s) for s in range(3)])
    assert sorted(epoch.tolist()) == list(range(10))  # one epoch covers every example once
    assert batch_order(10, None, 3, 7).tolist() == list(range(10))
    with pytest.raises(InputError, match="loss"):
        TrainingConfig(loss="hinge").validate()

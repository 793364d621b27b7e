"""Real fine-tuning runs of issue #27 on the real SmolLM2 weights, small: the cached last-block
path against the full model (f and its gradient), and one tiny run against its prediction
(the curve against the frozen-prefix trainer checked in test_validate.py, which runs the
model's own blocks, and the excess risk recomputed from the curve)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferscope.ntk import data as ntk_data
from transferscope.ntk.experiments import tail_training as tail
from transferscope.ntk.experiments.finetune import parameter_spec
from transferscope.ntk.experiments.real_runs import (
    LastBlock,
    Pool,
    RunConfig,
    excess_risk,
    loss_of,
    run_cached,
    run_one,
    split_of,
)
from transferscope.ntk.params import select_parameters
from transferscope.ntk.task import PromptTask

pytestmark = pytest.mark.usefixtures("linked_private_cache")


@pytest.fixture(scope="module")
def setup(smollm2):
    builtin = ntk_data.get_task("subjectivity-glosses")  # sentences of different lengths
    sample = ntk_data.sample_examples(builtin.load(), 20, 3)
    task = PromptTask(builtin.template, list(builtin.label_words), smollm2)
    texts = list(sample.texts)
    kernel = task.kernel(texts, parameter_spec(task, "attention@last-1"), progress=False).kernel
    pool = Pool("glosses", texts, sample.targets.astype(float),
                task.outputs(texts).astype(float), kernel, "attention@last-1")
    return task, pool, LastBlock(task, texts)


def test_last_block_path_gives_the_full_models_f_and_gradient(setup):
    task, pool, fast = setup
    with torch.no_grad():
        f = fast.outputs().double().numpy()
    np.testing.assert_allclose(f, pool.f0, atol=1e-4 * np.abs(pool.f0).max())
    chosen = [p for _, p in select_parameters(task.model,
                                              parameter_spec(task, "attention@last-1"))]
    y = torch.as_tensor(pool.y, dtype=torch.float32)
    flags = [p.requires_grad for p in chosen]
    for p in chosen:
        p.requires_grad_(True)
    try:
        fast_grad = torch.autograd.grad(loss_of(fast.outputs(), y, "half-mse"), chosen)
        full = task.forward(task.model, task.encode(pool.texts))
        full_grad = torch.autograd.grad(loss_of(full, y, "half-mse"), chosen)
    finally:
        for p, flag in zip(chosen, flags, strict=True):
            p.requires_grad_(flag)
    for a, b in zip(fast_grad, full_grad, strict=True):
        assert float((a - b).norm() / b.norm()) < 1e-3


def test_one_tiny_run_against_its_prediction(setup, tmp_path):
    task, pool, fast = setup
    config = RunConfig(task="glosses", n=12, split=0, max_steps=12, min_steps=4)
    run = run_one(task, pool, config, fast, max_test=8)
    train, test = split_of(pool, 12, 0)
    test = test[:8]
    # step 0 is f_0's held-out squared error; the curve follows the frozen-prefix trainer
    assert run.test_errors[0] == pytest.approx(np.mean((pool.f0[test] - pool.y[test]) ** 2),
                                               rel=1e-4)
    ref = tail.tail_gradient_descent(task, "attention@last-1", [pool.texts[i] for i in train],
                                     pool.y[train], [pool.texts[i] for i in test],
                                     pool.y[test], run.lr, 3)
    np.testing.assert_allclose(run.test_errors[:4], ref.test_errors[:4], rtol=1e-3)
    assert run.steps[:4] == [0, 1, 2, 3]
    steps, errors = np.array(run.steps), np.array(run.test_errors)
    assert run.t_opt == steps[int(np.argmin(errors))]
    t = run.predicted  # excess risk by hand: e(T) on the log-step curve (the last value past it)
    e_t = (errors[-1] if t >= steps[-1] else errors[0] if t == 0 else
           np.interp(np.log(t), np.log(steps[1:]), errors[1:]))
    gain = max(errors[0] - errors.min(), 0.01 * errors[0])
    assert run.excess_at_prediction == pytest.approx((e_t - errors.min()) / gain)
    assert excess_risk(steps, errors, int(steps[int(np.argmin(errors))])) == 0.0
    assert run.predicted_ci[0] <= run.predicted <= run.predicted_ci[1]
    assert run.covered == (run.predicted_ci[0] <= run.t_opt <= run.predicted_ci[1])
    # the model is restored, and a cached run is read back, not recomputed
    np.testing.assert_allclose(task.outputs(pool.texts), pool.f0, atol=1e-5)
    first = run_cached(task, pool, config, fast, tmp_path)
    path = tmp_path / f"{config.key()}.json"
    stamp = path.stat().st_mtime_ns
    assert run_cached(task, pool, config, fast, tmp_path) == first
    assert path.stat().st_mtime_ns == stamp

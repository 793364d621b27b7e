"""Task arithmetic in the linear model, alignment, and the derived negation task.

References: an explicit linear model ``f(x) = f_0(x) + phi(x).(theta - theta_0)`` trained task by
task with parameter-space gradient descent (the sum of its task vectors must give exactly the
kernel formula), hand-made kernels with known alignment, the VADER lexicon itself.
"""

from __future__ import annotations

import numpy as np
import pytest

from transferscope.core.stats import pearson_interval
from transferscope.ntk.data import get_task, vader_words
from transferscope.ntk.dynamics import kernel_gd
from transferscope.ntk.experiments.taskvectors import (
    NEGATED_TASK,
    alignment,
    combinations,
    gradient_cosine,
    linear_combination,
)


def test_task_arithmetic_identity_is_exact_in_the_linear_model():
    rng = np.random.default_rng(7)
    p, steps = 30, 12
    tasks = []
    for _ in range(3):
        phi = rng.normal(size=(10, p))
        tasks.append((phi, rng.choice([-1.0, 1.0], size=10)))
    phi_new = rng.normal(size=(5, p))
    f0_of = np.zeros  # f_0 = 0 everywhere: the theta_0 part of the linear model
    vectors, coefficients = [], []
    for phi, y in tasks:
        n = phi.shape[0]
        eta = 0.8 / np.linalg.eigvalsh(phi @ phi.T / n).max()
        tau = np.zeros(p)
        for _ in range(steps):
            tau -= eta / n * phi.T @ (phi @ tau - y)
        vectors.append(tau)
        coefficients.append(kernel_gd(phi @ phi.T, y - f0_of(n), eta).dual_coefficients(
            [steps])[0])
    cross = [phi_new @ phi.T for phi, _ in tasks]
    for _, alphas in combinations(3) + [("mix", np.array([0.5, -1.5, 2.0]))]:
        direct = phi_new @ sum(a * v for a, v in zip(alphas, vectors, strict=True))
        formula = linear_combination(f0_of(5), cross, coefficients, alphas)
        np.testing.assert_allclose(formula, direct, rtol=1e-10, atol=1e-12)


def test_alignment_of_known_kernels():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    # tasks living in orthogonal feature blocks: zero cross kernel
    phi = np.zeros((8, 6))
    phi[:4, :3], phi[4:, 3:] = a, b
    blocks = [np.arange(4), np.arange(4, 8)]
    np.testing.assert_allclose(alignment(phi @ phi.T, blocks), np.eye(2), atol=1e-15)
    # the same examples twice: alignment 1
    same = np.vstack([a, a])
    np.testing.assert_allclose(alignment(same @ same.T, blocks), np.ones((2, 2)))


def test_correlation_and_combinations():
    x = np.arange(6.0)
    r, low, high = pearson_interval(x, 2 * x + 1)
    assert r == pytest.approx(1.0) and low == pytest.approx(1.0)
    assert np.isnan(pearson_interval(x, np.ones(6))[0])
    labels = [label for label, _ in combinations(3)]
    assert labels == ["+t0", "+t1", "+t2", "+t0+t1", "+t0+t2", "+t1+t2", "+all", "-t0", "-t1",
                      "-t2"]


def test_negated_task_flips_vader_labels():
    words, negated = vader_words(), get_task(NEGATED_TASK).load()
    assert len(negated) == len(words)
    i = words.texts.index("good")
    assert negated.texts[i] == "not good"
    assert words.targets[i] == 1.0 and negated.targets[i] == -1.0


def test_gradient_cosine_is_the_cosine_of_first_gradient_steps():
    rng = np.random.default_rng(3)
    phi = rng.normal(size=(9, 5))
    residual = rng.normal(size=9)
    blocks = [np.arange(0, 4), np.arange(4, 9)]
    steps = [phi[b].T @ residual[b] for b in blocks]
    want = steps[0] @ steps[1] / (np.linalg.norm(steps[0]) * np.linalg.norm(steps[1]))
    got = gradient_cosine(phi @ phi.T, blocks, residual)
    np.testing.assert_allclose(got, [[1, want], [want, 1]], rtol=1e-12)
    # opposite labels on the same examples: cosine -1
    twice = np.vstack([phi[:4], phi[:4]])
    flipped = np.concatenate([residual[:4], -residual[:4]])
    assert gradient_cosine(twice @ twice.T, [np.arange(4), np.arange(4, 8)], flipped)[0, 1] \
        == pytest.approx(-1.0)


@pytest.mark.slow
def test_real_task_vectors_follow_the_linearised_prediction_for_small_steps(
        smollm2, tmp_path, monkeypatch):
    """SmolLM2, two real tasks, tiny steps: every sum and negation of the real task vectors
    moves the held-out loss as the joint-eNTK formula says (the network barely leaves its
    tangent plane), and fine-tuning leaves theta_0 in place. Fast version with 2 + 2 words:
    test_fast_claims.py."""
    import torch

    from transferscope.ntk.experiments.finetune import TrainingConfig
    from transferscope.ntk.experiments.taskvectors import run_task_vectors, task_splits
    from transferscope.ntk.task import PromptTask

    monkeypatch.setenv("TRANSFERSCOPE_CACHE", str(tmp_path / "cache"))
    task = PromptTask('Is the word "{text}" positive or negative? Answer:',
                      ("positive", "negative"), smollm2)
    before = {k: v.clone() for k, v in task.model.state_dict().items()}
    splits = task_splits(["vader-words", NEGATED_TASK], 4, 4, seed=1)
    result = run_task_vectors(task, splits, TrainingConfig(params="attention@last-1", steps=2),
                              tmp_path / "tv", lr_fraction=0.05, progress=False)
    assert all(torch.equal(task.model.state_dict()[k], v) for k, v in before.items())
    f0_loss = [np.mean((task.outputs(list(s.test.texts)) - s.test.targets) ** 2) / 2
               for s in splits]
    assert [r["combination"] for r in result["combinations"][::2]] == [
        "+t0", "+t1", "+t0+t1", "-t0", "-t1"]
    for row in result["combinations"]:
        moved = abs(row["linear_loss"] - f0_loss[row["task_index"]])
        assert moved > 1e-4, row  # the combination did change the loss
        assert abs(row["real_loss"] - row["linear_loss"]) < 0.1 * moved, row
    assert len(result["pairs"]) == 2
    for pair in result["pairs"]:
        assert pair["real_interference"] == pytest.approx(pair["linear_interference"],
                                                          rel=0.1)
    assert np.allclose(np.diag(result["alignment"]), 1.0)
    assert np.all(np.abs(result["gradient_cosine"]) <= 1 + 1e-9)


def test_centred_alignment_removes_a_shared_gradient_direction():
    from transferscope.ntk.experiments.taskvectors import centred_alignment, split_null

    # features c e_0 + e_i (distinct one-hots): K = c^2 11^T + I. Raw alignment of two blocks
    # of 4 is ~1 for large c; centred, K becomes H = I - 11^T/8, whose cross block has
    # Frobenius norm 4/8 and whose diagonal blocks sqrt(4 (7/8)^2 + 12/64) = sqrt(3.25).
    kernel = 100.0 * np.ones((8, 8)) + np.eye(8)
    blocks = [np.arange(4), np.arange(4, 8)]
    assert alignment(kernel, blocks)[0, 1] > 0.99
    assert centred_alignment(kernel, blocks)[0, 1] == pytest.approx(0.5 / np.sqrt(3.25))
    null = split_null(kernel, blocks, seed=0)  # halves of one block: 2 vs 2 of the same kind
    assert len(null) == 2 and all(0 < v < 1 for v in null)

"""Closed-form kernel gradient descent and the linearised model.

References: the update ``f_{t+1} = f_t - eta K_n (f_t - y)`` iterated step by step; gradient
descent in parameter space on an explicit linear model (held-out points); Taylor's theorem and
reverse-mode autograd on the real SmolLM2 weights.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferscope.core.errors import InputError
from transferscope.ntk.dynamics import kernel_gd, linearized_outputs, split_kernel

TEMPLATE = 'Is the word "{text}" positive or negative? Answer:'


@pytest.mark.parametrize("rank", [12, 5])  # full rank, and a kernel with zero eigenvalues
def test_closed_form_equals_iterated_update(rank):
    rng = np.random.default_rng(rank)
    n = 12
    features = rng.normal(size=(n, rank))
    kernel = features @ features.T
    f0, y = rng.normal(size=n), rng.choice([-1.0, 1.0], size=n)
    eta = 0.9 / np.linalg.eigvalsh(kernel / n).max()
    gd = kernel_gd(kernel, y - f0, eta)
    steps = [0, 1, 2, 7, 30, 200]
    closed = f0 + gd.train_change(steps)
    f, iterated = f0.copy(), {}
    for t in range(max(steps) + 1):
        iterated[t] = f.copy()
        f = f - eta * (kernel / n) @ (f - y)
    for row, t in zip(closed, steps, strict=True):
        np.testing.assert_allclose(row, iterated[t], rtol=1e-9, atol=1e-9)


def test_held_out_prediction_equals_parameter_space_descent():
    """f(x) = phi(x).theta: gradient descent on mean((f - y)^2)/2 over theta, read at new x."""
    rng = np.random.default_rng(3)
    n, m, p = 10, 6, 4  # p < n: K has zero eigenvalues
    phi, phi_new = rng.normal(size=(n, p)), rng.normal(size=(m, p))
    theta0 = rng.normal(size=p)
    y = rng.normal(size=n)
    kernel = phi @ phi.T
    eta = 1.0 / np.linalg.eigvalsh(kernel / n).max()
    gd = kernel_gd(kernel, y - phi @ theta0, eta)
    steps = [0, 1, 5, 25]
    predicted = phi_new @ theta0 + gd.change_at(phi_new @ phi.T, steps)
    theta = theta0.copy()
    for t in range(max(steps) + 1):
        if t in steps:
            np.testing.assert_allclose(predicted[steps.index(t)], phi_new @ theta, atol=1e-10)
        theta -= eta / n * phi.T @ (phi @ theta - y)


def test_split_and_bad_inputs():
    joint = np.arange(25.0).reshape(5, 5)
    train, cross = split_kernel(joint, 3)
    assert train.shape == (3, 3) and cross.shape == (2, 3) and cross[0, 0] == 15.0
    kernel = np.eye(3)
    with pytest.raises(InputError, match="step_size"):
        kernel_gd(kernel, np.ones(3), 10.0)
    with pytest.raises(InputError, match="shapes"):
        kernel_gd(kernel, np.ones(4), 0.5)
    with pytest.raises(InputError, match="cross kernel"):
        kernel_gd(kernel, np.ones(3), 0.5).change_at(np.ones((2, 4)), [1])


@pytest.fixture(scope="module")
def task64():
    from transferscope.ntk import PromptTask

    return PromptTask(TEMPLATE, ("positive", "negative"), "smollm2", dtype=torch.float64)


def test_linearised_model_is_first_order_taylor_expansion(task64):
    """f(theta0 + e v) - f0 - e Jv = O(e^2); Jv equals <grad f, v> from reverse mode."""
    from transferscope.ntk.experiments.finetune import parameter_spec
    from transferscope.ntk.params import select_parameters

    selected = select_parameters(task64.model, parameter_spec(task64, "attention@last-1"))
    gen = torch.Generator().manual_seed(0)
    direction = {k: torch.randn(p.shape, generator=gen, dtype=torch.float64) * p.detach().std()
                 for k, p in selected}
    enc = task64.encode(["wonderful"])  # one unpadded prompt (see linearized_outputs)
    _, jv = linearized_outputs(task64.model, lambda m: task64.forward(m, enc), direction)
    jv = jv.detach()
    params = [p for _, p in selected]
    f0 = task64.forward(task64.model, enc)
    grads = torch.autograd.grad(f0[0], params)
    f0 = f0.detach()
    reverse = sum(float((g * direction[k]).sum()) for (k, _), g in zip(selected, grads,
                                                                        strict=True))
    # the jvp runs eager attention, reverse mode the fused kernel: equal up to their rounding
    assert float(jv[0]) == pytest.approx(reverse, rel=1e-6)

    def taylor_gap(eps: float) -> float:
        with torch.no_grad():
            for k, p in selected:
                p.add_(eps * direction[k])
            moved = task64.forward(task64.model, enc)
            for k, p in selected:
                p.sub_(eps * direction[k])
        return abs(float(moved[0] - f0[0] - eps * jv[0]))

    gaps = [taylor_gap(e) for e in (1e-2, 5e-3, 2.5e-3)]
    assert gaps[2] < 0.05 * abs(2.5e-3 * float(jv[0]))  # the linear term dominates
    ratios = [gaps[0] / gaps[1], gaps[1] / gaps[2]]
    assert all(3.0 < r < 5.0 for r in ratios), (gaps, ratios)  # second order: halves -> quarter

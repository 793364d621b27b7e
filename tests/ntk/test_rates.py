"""The n-sweep on a kernel whose feature map is explicit.

References: parameter-space gradient descent of the linear model phi(x).theta iterated to
T_hat (for the held-out error), an exactly known power law (for the slope fit).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from transferscope.core.errors import InputError
from transferscope.ntk.rates import fit_slope, summarise, sweep


@pytest.fixture(scope="module")
def pool():
    rng = np.random.default_rng(0)
    n_pool, n_test, p = 64, 20, 40
    scales = np.arange(1, p + 1) ** -1.0  # polynomially decaying feature scales
    phi = rng.normal(size=(n_pool + n_test, p)) * scales
    beta = rng.normal(size=p)
    y = phi @ beta + 0.1 * rng.normal(size=n_pool + n_test)
    f0 = phi @ (0.5 * beta)  # a warm start that is partly right
    return phi, y, f0, n_test


def test_held_out_error_at_t_hat_equals_iterated_descent(pool):
    phi, y, f0, n_test = pool
    kernel = phi @ phi.T
    frame = sweep(kernel, f0, y, n_test, [16, 32], seeds=[0, 1], n_boot=10)
    row = frame.iloc[3]  # n = 32, seed 1
    pool_n = phi.shape[0] - n_test
    train = np.sort(np.random.default_rng(1).permutation(pool_n)[:32])
    test = np.arange(pool_n, phi.shape[0])
    theta = np.zeros(phi.shape[1])  # f = f0 + phi.theta, theta from 0
    eta, n = row["step_size"], 32
    for _ in range(int(row["t_hat"])):
        theta -= eta / n * phi[train].T @ (f0[train] + phi[train] @ theta - y[train])
    error = np.mean((f0[test] + phi[test] @ theta - y[test]) ** 2)
    assert row["error_t_hat"] == pytest.approx(error, rel=1e-9)
    assert (frame["error_opt"] <= frame["error_t_hat"] + 1e-15).all()
    assert (frame["error_opt"] <= frame["error_f0"] + 1e-15).all()
    assert set(frame["n"]) == {16, 32} and len(frame) == 4
    assert summarise(frame)["seeds"].tolist() == [2, 2]


def test_slope_of_an_exact_power_law():
    rows = [{"n": n, "seed": s, "error_t_hat": 3.0 * n ** -0.4, "alpha": 2.0}
            for n in (32, 64, 128, 256) for s in range(3)]
    fit = fit_slope(pd.DataFrame(rows))
    assert fit.slope == pytest.approx(-0.4) and fit.ci_low == pytest.approx(-0.4)
    assert fit.implied == pytest.approx(-2.0 / 3.0)


def test_sizes_must_fit_the_pool(pool):
    phi, y, f0, n_test = pool
    with pytest.raises(InputError, match="sizes"):
        sweep(phi @ phi.T, f0, y, n_test, [16, 128], seeds=[0])

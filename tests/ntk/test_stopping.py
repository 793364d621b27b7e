"""The RWY stopping rule against a deliberately different brute-force implementation.

Reference problem: the first-order Sobolev kernel ``min(x, x')`` on the grid ``x_i = i/n``. Its
RKHS is {f : f(0) = 0, f' in L2} with ``||f||^2 = int f'^2``, so a target of known radius is
written down by hand, and the eigenvalues of ``K_n`` have a closed form.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from transferscope.core.errors import InputError
from transferscope.ntk.stopping import (
    critical_radius,
    estimate_noise,
    estimate_radius,
    gradient_descent_fit,
    kernel_ridge_fit,
    local_rademacher,
    max_step_size,
    rwy_stopping_time,
    training_schedule,
)


def sobolev_kernel(n: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.arange(1, n + 1) / n
    return np.minimum.outer(x, x), x


def sobolev_eigenvalues_closed_form(n: int) -> np.ndarray:
    """Eigenvalues of min(i, j)/n^2 (K_n for the grid): 1 / (4 n^2 sin^2((2k-1) pi / (4n+2)))."""
    k = np.arange(1, n + 1)
    return 1.0 / (4.0 * n**2 * np.sin((2 * k - 1) * np.pi / (4 * n + 2)) ** 2)


def brute_rademacher(eigs: np.ndarray, eps: float) -> float:
    total = 0.0
    for lam in eigs:
        total += min(eps * eps, lam)
    return math.sqrt(total / len(eigs))


def brute_stopping_time(eigs: np.ndarray, eta: float, sigma: float, radius: float) -> int:
    """Walk t = 1, 2, ... until the RWY inequality holds; T_hat is one less."""
    t = 1
    while t < 10**6:
        horizon = eta * t
        bound = radius / (2 * math.e * sigma * horizon)
        if brute_rademacher(eigs, 1.0 / math.sqrt(horizon)) > bound:
            return t - 1
        t += 1
    raise AssertionError("no stopping time below 10^6 steps")


def brute_critical_radius(eigs: np.ndarray, sigma: float, radius: float) -> tuple[float, float]:
    """Scan a fine log grid: (last eps that fails, first eps that satisfies) the inequality."""
    grid = np.logspace(-6, 2, 8001)
    ok = [brute_rademacher(eigs, e) <= radius * e * e / (2 * math.e * sigma) for e in grid]
    first = ok.index(True)
    return grid[first - 1], grid[first]


EIGS = sobolev_eigenvalues_closed_form(60)


def test_local_rademacher_matches_loop():
    for eps in (1e-4, 0.01, 0.05, 0.3, 2.0):
        assert local_rademacher(EIGS, eps) == pytest.approx(brute_rademacher(EIGS, eps), rel=1e-12)
    # a hand-checked case: eigenvalues (4, 1), eps = 1 -> sqrt((1 + 1)/2) = 1
    assert local_rademacher(np.array([4.0, 1.0]), 1.0) == pytest.approx(1.0)


@pytest.mark.parametrize("sigma,radius", [(0.1, 1.0), (0.5, 1.0), (0.3, 3.0), (1.0, 0.5)])
def test_critical_radius_matches_scan(sigma, radius):
    eps = critical_radius(EIGS, sigma, radius)
    below, above = brute_critical_radius(EIGS, sigma, radius)
    assert below <= eps <= above * (1 + 1e-9)
    assert local_rademacher(EIGS, eps) == pytest.approx(radius * eps**2 / (2 * math.e * sigma),
                                                        rel=1e-9)


@pytest.mark.parametrize("sigma,radius,eta_frac", [
    (0.5, 1.0, 1.0), (0.2, 1.0, 0.5), (1.0, 2.0, 1.0), (0.1, 0.3, 0.25), (2.0, 1.0, 1.0),
])
def test_stopping_time_matches_brute_force(sigma, radius, eta_frac):
    eta = eta_frac / EIGS.max()
    expected = brute_stopping_time(EIGS, eta, sigma, radius)
    assert rwy_stopping_time(EIGS, eta, sigma, radius) == expected
    # it stops once 1/sqrt(eta t) falls below the critical radius: T_hat = floor(1/(eta eps^2))
    eps = critical_radius(EIGS, sigma, radius)
    assert expected == math.floor(1.0 / (eta * eps**2))


def test_stopping_time_grows_with_radius_and_shrinks_with_sigma():
    eta = max_step_size(EIGS)
    radii = np.array([0.25, 0.5, 1.0, 2.0, 4.0])
    sigmas = np.array([0.05, 0.1, 0.2, 0.4, 0.8])
    table = np.array([[rwy_stopping_time(EIGS, eta, s, r) for r in radii] for s in sigmas])
    for i, s in enumerate(sigmas):
        for j, r in enumerate(radii):
            assert table[i, j] == brute_stopping_time(EIGS, eta, s, r)
    assert np.all(np.diff(table, axis=1) >= 0) and np.all(table[:, -1] > table[:, 0])
    assert np.all(np.diff(table, axis=0) <= 0) and np.all(table[0] > table[-1])


def test_step_size_above_one_over_lambda_max_is_rejected():
    with pytest.raises(InputError, match="1/lambda_max"):
        rwy_stopping_time(EIGS, 1.01 / EIGS.max(), 0.5, 1.0)
    with pytest.raises(InputError, match="positive semi-definite"):
        rwy_stopping_time(np.array([1.0, -0.5]), 0.5, 0.5, 1.0)
    with pytest.raises(InputError, match="sigma"):
        critical_radius(EIGS, 0.0, 1.0)


def test_kernel_eigenvalues_of_min_kernel_have_closed_form():
    from transferscope.ntk.spectrum import kernel_eigenvalues

    k, _ = sobolev_kernel(60)
    np.testing.assert_allclose(kernel_eigenvalues(k), np.sort(EIGS)[::-1], rtol=1e-9)


def test_radius_estimate_recovers_known_rkhs_norm():
    n = 200
    k, x = sobolev_kernel(n)
    a = 1.3
    f_star = a * np.sin(np.pi * x / 2)
    true_norm = a * math.pi / (2 * math.sqrt(2))  # sqrt(int_0^1 (a pi/2 cos(pi x/2))^2 dx)
    assert estimate_radius(k, f_star, ridge=1e-14) == pytest.approx(true_norm, rel=1e-4)
    # with ridge it is min_g ||g||^2 + ||r - g||^2/(n lam): below the interpolant's norm
    assert estimate_radius(k, f_star, ridge=1e-3) < true_norm


def test_noise_estimate_recovers_known_sigma_and_matches_explicit_gcv():
    """Over 16 noise draws (n = 400) the GCV sigma averages within 5% of the true 0.3, each
    draw within 20%. Measured once over seeds 0-199: relative error mean -0.008, sd 0.037, worst
    0.109. Chance of failing at those values: the mean of 16 has sd 0.0092, so 5% is 4.6 sd
    from its centre (4e-6); 20% is 5.4 sd for one draw (16 draws: 5e-7)."""
    n, sigma = 400, 0.3
    k, x = sobolev_kernel(n)
    errors = []
    for seed in range(16):
        noise = sigma * np.random.default_rng(seed).standard_normal(n)
        errors.append(estimate_noise(k, 1.3 * np.sin(np.pi * x / 2) + noise).sigma / sigma - 1)
    assert abs(np.mean(errors)) < 0.05
    assert np.max(np.abs(errors)) < 0.2
    y = 1.3 * np.sin(np.pi * x / 2) + sigma * np.random.default_rng(7).standard_normal(n)
    # the same GCV minimum with explicit hat matrices on the same grid, on a smaller problem
    n = 120
    k, x, y = k[:n, :n], x[:n], y[:n]
    grid = k.max() / n * np.logspace(-8, 1, 19)
    best = None
    for lam in grid:
        hat = k @ np.linalg.inv(k + n * lam * np.eye(n))
        resid = y - hat @ y
        gcv = n * resid @ resid / np.trace(np.eye(n) - hat) ** 2
        if best is None or gcv < best[0]:
            best = (gcv, math.sqrt(resid @ resid / np.trace(np.eye(n) - hat)))
    est_same_grid = estimate_noise(k, y, ridge_grid=grid)
    assert est_same_grid.sigma == pytest.approx(best[1], rel=1e-6)


def test_closed_form_fits_match_explicit_iteration_and_solve():
    n = 50
    k, x = sobolev_kernel(n)
    rng = np.random.default_rng(3)
    r = np.sin(3 * x) + 0.1 * rng.standard_normal(n)
    kn = k / n
    eta, steps = 0.9 / np.linalg.eigvalsh(kn).max(), 37
    f = np.zeros(n)
    for _ in range(steps):
        f = f - eta * kn @ (f - r)
    np.testing.assert_allclose(gradient_descent_fit(k, r, eta, steps), f, atol=1e-10)
    lam = 1.0 / (eta * steps)
    np.testing.assert_allclose(kernel_ridge_fit(k, r, lam),
                               kn @ np.linalg.solve(kn + lam * np.eye(n), r), atol=1e-10)


def test_training_schedule_hand_checked():
    s = training_schedule(50, n=100, batch_size=10, learning_rate=0.01)
    assert (s.full_batch_steps, s.minibatch_steps, s.epochs, s.step_size) == (50, 50, 5.0, 0.01)
    assert training_schedule(50, 100, 10, 0.01, loss="mse").step_size == pytest.approx(0.02)
    with pytest.raises(InputError, match="batch size"):
        training_schedule(50, 100, 0, 0.01)

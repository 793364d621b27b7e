"""recommend_stop: estimators against planted truths, CV against a brute-force loop."""

from __future__ import annotations

import numpy as np
import pytest

from transferscope.core.errors import InputError
from transferscope.ntk import recommend_stop
from transferscope.ntk.recommend import cv_stopping_time
from transferscope.ntk.validate import (
    planted_problem,
    random_kernel,
    share_captured,
    synthetic_spectrum,
    train_errors,
)


def _planted(n: int, sigma: float, radius: float, seed: int, kind: str = "sobolev"):
    rng = np.random.default_rng(seed)
    k = random_kernel(synthetic_spectrum(kind, n), rng)
    y, f0, f_star = planted_problem(k, sigma, radius, rng)
    return k, y, f0, f_star


def test_planted_kernel_and_target_have_the_planted_spectrum_and_norm():
    k, y, f0, f_star = _planted(50, 0.5, 2.0, 0)
    lam = np.sort(np.linalg.eigvalsh(k / 50))[::-1]
    np.testing.assert_allclose(lam, np.arange(1, 51) ** -2.0, rtol=1e-8, atol=1e-12)
    alpha = np.linalg.lstsq(k, f_star - f0, rcond=None)[0]
    assert float(alpha @ k @ alpha) == pytest.approx(4.0, rel=1e-6)


def test_noise_and_radius_estimates_recover_the_planted_values():
    # n = 400: the spectral-tail sigma averages 200 squared N(0, sigma^2) coordinates, so its
    # relative sd is about 1/sqrt(400) = 0.05; |ratio - 1| > 0.25 is a 5-sd event (p < 1e-6).
    k, y, f0, _ = _planted(400, 1.0, 3.0, 1)
    rec = recommend_stop(k, y, f0)
    assert rec.sigma == pytest.approx(1.0, abs=0.25)
    # the debiased ridge-fit norm, unlike the ridge radius r^T (K + n lam I)^-1 r, is not
    # inflated by the noise: closer to the planted R = 3 by a wide margin
    assert abs(rec.radius - 3.0) < abs(rec.radius_ridge - 3.0)
    assert 1.5 < rec.radius < 4.5
    assert rec.radius_ridge > 4.5


def test_default_step_is_rwy_bound_one_over_max_diagonal():
    k, y, f0, _ = _planted(40, 0.5, 1.0, 2)
    rec = recommend_stop(k, y, f0)
    assert rec.lr == pytest.approx(1.0 / np.max(np.diag(k)))
    assert rec.lr <= 1.0 / np.linalg.eigvalsh(k / 40).max()  # lambda_max(K/n) <= max K(x,x)
    with pytest.raises(InputError, match="eta"):
        recommend_stop(k, y, f0, lr=3.0 / np.linalg.eigvalsh(k / 40).max())


def test_cv_errors_match_an_explicit_gradient_descent_loop():
    rng = np.random.default_rng(3)
    n, lr, folds = 20, 0.4, 4
    k = random_kernel(synthetic_spectrum("power-1.5", n), rng)
    k = k / np.max(np.diag(k))
    r = rng.standard_normal(n)
    steps = np.arange(0, 31)
    cv = cv_stopping_time(k, r, lr, folds=folds, seed=5, steps=steps, repeats=1)
    order = np.random.default_rng(5).permutation(n)
    total = np.zeros(steps.size)
    for fold in range(folds):
        held = order[fold::folds]
        train = np.setdiff1d(order, held)
        c = np.zeros(train.size)  # dual coefficients of f_t - f_0
        for t in steps:
            pred = k[np.ix_(held, train)] @ c
            total[t] += np.sum((pred - r[held]) ** 2)
            fitted = k[np.ix_(train, train)] @ c
            c = c + lr / train.size * (r[train] - fitted)
    np.testing.assert_allclose(cv.errors, total / n, rtol=1e-9)
    assert cv.best == int(np.argmin(total))


def test_train_errors_and_share_captured_match_brute_force():
    k, y, f0, f_star = _planted(30, 0.5, 1.0, 4)
    lr = 1.0 / np.max(np.diag(k))
    steps = np.arange(0, 60)
    errors = train_errors(k, y - f0, f_star - f0, lr, steps)
    f = f0.copy()
    for t in steps:
        assert errors[t] == pytest.approx(np.mean((f - f_star) ** 2), rel=1e-9)
        f = f - lr * (k / 30) @ (f - y)
    best = int(np.argmin(errors))
    assert share_captured(errors, steps, best) == pytest.approx(1.0)
    assert share_captured(errors, steps, 0) == pytest.approx(0.0)


def test_every_rule_reported_and_the_answer_follows_the_chosen_rule():
    k, y, f0, _ = _planted(60, 0.5, 2.0, 6)
    rec = recommend_stop(k, y, f0)
    assert set(rec.rules) == {"rwy", "rwy-gcv", "gcv-ridge", "cv"}
    assert rec.steps == rec.rules[rec.rule] == rec.rules["cv"]
    other = recommend_stop(k, y, f0, rule="rwy")
    assert other.steps == other.rules["rwy"]
    with pytest.raises(InputError, match="rule"):
        recommend_stop(k, y, f0, rule="nope")


def test_grid_edge_and_degenerate_estimates_are_warned_about():
    rng = np.random.default_rng(7)
    n = 40
    k = random_kernel(synthetic_spectrum("sobolev", n), rng)
    evals, evecs = np.linalg.eigh(k / n)
    # a residual on the smallest eigen-direction only: no ridge fit helps, GCV ends at its
    # largest ridge
    rec = recommend_stop(k, evecs[:, 0] * 3.0, np.zeros(n))
    assert any("largest ridge" in w for w in rec.warnings)
    # a residual in the top eigen-direction only: the spectral-tail sigma is 0
    rec = recommend_stop(k, evecs[:, -1] * 3.0, np.zeros(n))
    assert any("noise estimate is 0" in w for w in rec.warnings)


def test_extrapolation_follows_the_polynomial_decay_rate():
    # spectrum exactly i^-2: the fit's rate is 2, so T_N / T_n = (N/n)^(2/3)
    k, y, f0, _ = _planted(64, 0.5, 2.0, 8)
    rec = recommend_stop(k, y, f0, n_total=64 * 27, batch_size=16)
    x = rec.extrapolation
    assert x.model == "polynomial" and x.rate == pytest.approx(2.0, rel=1e-6)
    assert x.steps == round(rec.steps * 9.0)
    assert x.epochs == pytest.approx(x.steps * 16 / (64 * 27))
    assert x.steps_ci[0] <= x.steps <= x.steps_ci[1]
    with pytest.raises(InputError, match="n_total"):
        recommend_stop(k, y, f0, n_total=10, batch_size=4)

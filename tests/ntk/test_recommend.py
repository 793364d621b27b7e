"""recommend_stop: estimators against planted truths, CV against a brute-force loop."""

from __future__ import annotations

import numpy as np
import pytest

from transferscope.core.errors import InputError
from transferscope.ntk import recommend_stop
from transferscope.ntk.recommend import cv_stopping_time
from transferscope.ntk.rule_scores import (
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
    assert set(rec.rules) == {"rwy", "rwy-gcv", "gcv-ridge", "cv", "cv-low"}
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


def test_steps_ci_is_the_hull_of_the_one_se_set_bootstrap_and_fold_seeds_by_hand():
    from transferscope.ntk.cv import stop_range

    k, y, f0, _ = _planted(48, 1.0, 1.0, 8)
    rec = recommend_stop(k, y, f0, seed=3)
    cv, span = rec.cv, rec.range
    # one-SE set recomputed from the examples' held-out curves
    curves = cv.per_example
    best = int(np.argmin(curves.mean(axis=0)))
    se = curves[:, best].std(ddof=1) / np.sqrt(48)
    inside = cv.steps[curves.mean(axis=0) <= curves.mean(axis=0)[best] + se]
    assert span.one_se == (inside.min(), inside.max())
    # the bootstrap over examples, redrawn by hand with the same generator
    rng = np.random.default_rng(3)
    picks = rng.integers(0, 48, size=(200, 48))
    boot = [cv.steps[int(np.argmin(curves[p].mean(axis=0)))] for p in picks]
    assert span.bootstrap == tuple(int(v) for v in np.quantile(boot, [0.05, 0.95],
                                                               method="nearest"))
    assert span.fold_seeds == (cv.repeat_best.min(), cv.repeat_best.max())
    assert rec.steps_ci == (min(span.one_se[0], span.bootstrap[0], span.fold_seeds[0]),
                            max(span.one_se[1], span.bootstrap[1], span.fold_seeds[1]))
    assert rec.steps_ci[0] <= rec.steps <= rec.steps_ci[1]
    assert stop_range(cv, seed=3) == span  # a function of the CV curves and the seed only
    # each fold assignment's own optimum is the argmin of its own curve: averaging over 10 of
    # them is what the point answer uses
    assert cv.repeats == 10 and cv.repeat_best.size == 10


def test_a_wide_range_says_the_data_cannot_decide_and_gives_the_low_end():
    # pure noise around f_0 (no signal to learn): the CV curve is flat for a long stretch,
    # so the stop is not pinned down and the safe choice is the low end
    rng = np.random.default_rng(9)
    n = 32
    k = random_kernel(synthetic_spectrum("dominant-top", n), rng)
    f0 = rng.standard_normal(n)
    y = f0 + rng.standard_normal(n)
    rec = recommend_stop(k, y, f0)
    low, high = rec.steps_ci
    assert np.log10((high + 1) / (low + 1)) > 2 and not rec.decided
    assert rec.safe_steps == low and "cannot pin the stop down" in rec.advice()
    assert any("cannot pin it down" in w for w in rec.warnings)
    # a strong planted signal at n = 128: a narrow range, the CV point is the answer
    k, y, f0, _ = _planted(128, 0.25, 4.0, 10)
    rec = recommend_stop(k, y, f0)
    assert rec.decided and rec.safe_steps == rec.steps
    assert rec.to_dict()["steps_ci"] == rec.steps_ci


def test_n_total_gives_the_measured_growth_not_the_decay_formula():
    k, y, f0, _ = _planted(64, 0.5, 2.0, 8)
    rec = recommend_stop(k, y, f0, n_total=256, batch_size=16)
    g = rec.growth
    assert g.n_total == 256 and g.sizes == (16, 32, 64)
    assert g.steps_ci[0] <= g.steps <= g.steps_ci[1]
    assert g.epochs == pytest.approx(g.steps * 16 / 256)
    assert rec.to_dict()["growth"]["steps_ci"] == g.steps_ci
    with pytest.raises(InputError, match="n_total"):
        recommend_stop(k, y, f0, n_total=10, batch_size=4)

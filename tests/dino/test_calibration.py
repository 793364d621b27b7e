"""Honest intervals at 20 labels: leave-one-out scores against brute-force refits, the conformal
quantile by hand, and the coverage of the default 90% interval over 40 planted problems with a
stated chance of failing."""

import math

import numpy as np
import torch

from transferscope.core.stats import conformal_quantile
from transferscope.dino import DINORegressor
from transferscope.dino.estimator import Z90
from transferscope.dino.gp import loo_scores


def _planted(seed, n_s=100, n_t=20, n_q=300):
    """Source f(x) + noise 0.3; target f(x) + 1 + 0.5 x1 (a shifted, tilted mean), inputs
    shifted by 0.5; 20 labelled target rows, 300 target test rows."""
    rng = np.random.default_rng(seed)
    Xs, Xt, Xq = (rng.normal(size=(n_s, 3)), rng.normal(size=(n_t, 3)) + 0.5,
                  rng.normal(size=(n_q, 3)) + 0.5)

    def f(X):
        return np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] ** 2 + X[:, 2]

    def g(X):
        return f(X) + 1.0 + 0.5 * X[:, 1]

    return (Xs, f(Xs) + 0.3 * rng.normal(size=n_s), Xt, g(Xt) + 0.3 * rng.normal(size=n_t), Xq,
            g(Xq) + 0.3 * rng.normal(size=n_q))


def test_default_90_percent_intervals_cover_85_to_95_percent_of_planted_targets():
    """40 planted problems (seeds 0-39), default DINO, 20 labelled target rows each: the mean
    share of 300 test targets inside the 90% interval must lie in [0.85, 0.95], and at least 34
    of the 40 problems must have 75% or more inside.

    Chance of failing for a correct method, from 400 other seeds of this problem (0-199,
    1000-1199: mean coverage 0.895, per-seed sd 0.059, 97.5-98.5% of seeds at 0.75 or more):
    the 40-seed mean has sd 0.0093, so leaving [0.85, 0.95] is a 4.8-sd event (normal
    approximation 7e-7; Chebyshev, distribution-free, 0.043); fewer than 34 of 40 seeds at 0.75
    has binomial probability 5.5e-5 at a per-seed rate of 0.975. Without the calibration the
    same 400 seeds covered 0.875."""
    coverage = []
    for seed in range(40):
        Xs, ys, Xt, yt, Xq, yq = _planted(seed)
        model = DINORegressor(n_base=40, random_state=seed).fit(Xs, ys, Xt=Xt, yt=yt)
        mean, std = model.predict(Xq, return_std=True)
        coverage.append(float((np.abs(mean - yq) <= Z90 * std).mean()))
    coverage = np.array(coverage)
    assert 0.85 <= coverage.mean() <= 0.95, coverage.mean()
    assert (coverage >= 0.75).sum() >= 34, np.sort(coverage)[:8]


def test_loo_scores_are_refitted_leave_one_out_residuals():
    """Each |y_i - mu_-i| / sigma_-i from the closed form equals the residual of a GP refitted
    without row i (numpy solve on the other rows; sigma^2 includes the noise)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(15, 2))
    K = np.exp(-0.5 * ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)) + 0.1 * np.eye(15)
    y = rng.normal(size=(15, 2))
    rows = np.array([3, 7, 14])
    got = loo_scores(torch.from_numpy(K), torch.from_numpy(y), torch.from_numpy(rows)).numpy()
    for r, i in enumerate(rows):
        rest = np.setdiff1d(np.arange(15), [i])
        weights = np.linalg.solve(K[np.ix_(rest, rest)], K[rest, i])
        mu = weights @ y[rest]
        var = K[i, i] - K[i, rest] @ weights
        np.testing.assert_allclose(got[r], np.abs(y[i] - mu) / np.sqrt(var), rtol=1e-10)


def test_conformal_quantile_by_hand():
    """n = 20 scores 1..20 at level 0.9: rank ceil(21 * 0.9) = 19, so 19; n = 5 at 0.9: rank 6
    exceeds n, so the largest (guarantee 5/6 only); NaN scores are left out."""
    assert conformal_quantile(np.arange(20, 0, -1.0), 0.9) == 19.0
    assert conformal_quantile([3.0, 1.0, 2.0, 5.0, 4.0], 0.9) == 5.0
    assert conformal_quantile([np.nan, 2.0, 1.0], 0.5) == 2.0  # n = 2: rank ceil(3 * 0.5) = 2
    assert math.isnan(conformal_quantile([np.nan], 0.9))


def test_interval_scale_is_the_conformal_quantile_of_the_target_rows_loo_scores():
    """``calibration_scale_ = max(1, q / 1.645)`` with q the conformal 90% quantile of the
    labelled target rows' leave-one-out scores, and the predictive std is the uncalibrated
    model's std times that scale (same fit otherwise)."""
    for seed in range(4):
        Xs, ys, Xt, yt, Xq, _ = _planted(seed)
        model = DINORegressor(n_base=40, random_state=seed).fit(Xs, ys, Xt=Xt, yt=yt)
        raw = DINORegressor(n_base=40, random_state=seed, calibrate=False).fit(Xs, ys, Xt=Xt,
                                                                               yt=yt)
        scores = model.loo_scores_.ravel()
        assert scores.shape == (20,)
        q = np.sort(scores)[18]  # rank ceil(21 * 0.9) = 19
        assert model.calibration_scale_ == max(1.0, q / Z90)
        np.testing.assert_allclose(model.predict(Xq, return_std=True)[1],
                                   raw.predict(Xq, return_std=True)[1] * model.calibration_scale_,
                                   rtol=1e-10)
        np.testing.assert_allclose(model.predict(Xq), raw.predict(Xq), rtol=1e-12)

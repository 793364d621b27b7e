"""DINO's exact special cases, each against an independent closed form (numpy algebra)."""

import numpy as np
import pytest
import torch

from transferscope.dino import DINORegressor
from transferscope.dino.distribution import DistributionFactor
from transferscope.dino.kernels import ntk_kernel
from transferscope.dino.mmd import mmd_squared

KW = dict(kernel="ntk", depth=2, w_std=1.2, b_std=0.5, n_steps=0, n_base=500, warm_start=False,
          transfer=False,  # the factor alone (with transfer, K_ST gains lambda: test_defaults)
          mean="none", calibrate=False,  # zero mean, as the paper's GP (the mean: test_defaults)
          rank_tol=1e-12)


def _k(a, b):
    return ntk_kernel(torch.from_numpy(a), torch.from_numpy(b), 2, 1.2, 0.5).numpy()


def _problem(seed=0, shift=0.8):
    rng = np.random.default_rng(seed)
    Xs = rng.normal(size=(40, 3))
    Xt = rng.normal(size=(15, 3)) + shift
    return Xs, _labels(Xs), Xt, _labels(Xt) + 0.3, rng.normal(size=(7, 3)) + shift


def _labels(X):
    return np.sin(X[:, 0]) + X[:, 1] * X[:, 2]


def _kernel(a, b):
    return ntk_kernel(a, b, 2, 1.2, 0.5)


def _gp_mean(K_train, K_star, y):
    return K_star @ np.linalg.solve(K_train, y)


def test_uniform_weights_give_the_mean_embedding_cosine():
    Xs, _, Xt, _, _ = _problem()
    kernel = _kernel
    factor = DistributionFactor(kernel, torch.from_numpy(Xs), torch.from_numpy(Xt))
    g_st = factor(torch.from_numpy(Xs), 0, torch.from_numpy(Xt), 1).detach().numpy()
    G_ss, G_tt, G_st = _k(Xs, Xs), _k(Xt, Xt), _k(Xs, Xt)
    cosine = G_st.mean() / np.sqrt(G_ss.mean() * G_tt.mean())
    np.testing.assert_allclose(g_st, cosine, rtol=1e-10)
    g_ss = factor(torch.from_numpy(Xs), 0, torch.from_numpy(Xs[:5]), 0).detach().numpy()
    np.testing.assert_allclose(g_ss, 1.0, rtol=1e-10)
    # tied to the MMD: ||mu_S - mu_T||^2 = |mu_S|^2 + |mu_T|^2 - 2 cos |mu_S| |mu_T|
    biased = mmd_squared(torch.from_numpy(Xs), torch.from_numpy(Xt), kernel, unbiased=False)
    via_cos = G_ss.mean() + G_tt.mean() - 2 * cosine * np.sqrt(G_ss.mean() * G_tt.mean())
    assert biased == pytest.approx(via_cos, rel=1e-10)


def test_constant_cross_factor_is_the_adaptive_gp_transfer_kernel():
    """Uniform weights: g_SS = g_TT = 1 and g_ST = lambda (the cosine) -> Cao et al.'s kernel."""
    Xs, ys, Xt, yt, Xq = _problem()
    model = DINORegressor(**KW).fit(Xs, ys, Xt=Xt, yt=yt)
    lam = _k(Xs, Xt).mean() / np.sqrt(_k(Xs, Xs).mean() * _k(Xt, Xt).mean())
    amp, s_s, s_t = model.amplitude_, model.noise_source_, model.noise_target_
    K = amp * np.block([[_k(Xs, Xs), lam * _k(Xs, Xt)], [lam * _k(Xt, Xs), _k(Xt, Xt)]])
    K += np.diag(np.r_[np.full(len(Xs), s_s), np.full(len(Xt), s_t)])
    mu, sd = yt.mean(), yt.std()
    y = (np.r_[ys, yt] - mu) / sd
    K_star = amp * np.hstack([lam * _k(Xq, Xs), _k(Xq, Xt)])
    expected = _gp_mean(K, K_star, y) * sd + mu
    np.testing.assert_allclose(model.predict(Xq), expected, rtol=1e-8, atol=1e-10)
    assert 0.0 < lam < 1.0


def test_identical_domains_give_the_pooled_gp():
    """Same source and target inputs: g = 1 everywhere, DINO is a GP on the pooled data."""
    Xs, ys, _, _, Xq = _problem()
    Xt, yt = Xs[:20], ys[:20] + 0.1
    model = DINORegressor(**KW).fit(Xs, ys, Xt=Xt, yt=yt, Xu=Xs[20:])
    amp, s_s, s_t = model.amplitude_, model.noise_source_, model.noise_target_
    assert s_s == pytest.approx(s_t)
    X_all = np.vstack([Xs, Xt])
    mu, sd = yt.mean(), yt.std()
    K = amp * _k(X_all, X_all) + s_s * np.eye(len(X_all))
    expected = _gp_mean(K, amp * _k(Xq, X_all), (np.r_[ys, yt] - mu) / sd) * sd + mu
    np.testing.assert_allclose(model.predict(Xq), expected, rtol=1e-8, atol=1e-10)

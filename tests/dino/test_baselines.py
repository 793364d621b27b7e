"""The baselines, each against an independent reference: scikit-learn's Ridge and GP with the
same fixed kernel, the GP posterior in closed form (numpy) on the training set each method is
defined to build, scipy for KMM's quadratic programme, and hand computations for the MLP."""

import numpy as np
import torch
from scipy.linalg import fractional_matrix_power
from scipy.optimize import minimize
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Kernel, WhiteKernel
from sklearn.linear_model import Ridge

from transferscope.dino import (
    KMMGP,
    AdaptiveGP,
    CoralGP,
    DomainMeanGP,
    FeatureAugmentedGP,
    FineTunedMLP,
    PooledGP,
    PooledRidge,
    SourceOnlyGP,
    TargetOnlyGP,
    TargetRidge,
)
from transferscope.dino.baselines import BASELINES, kmm_weights
from transferscope.dino.kernels import kernel_diag, ntk_kernel


def _k(A, B):
    """The baselines' default base kernel: NTK of a depth-2 ReLU net, W_std = b_std = 1."""
    return ntk_kernel(torch.from_numpy(A), torch.from_numpy(B), 2, 1.0, 1.0).numpy()


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    Xs = rng.normal(size=(45, 3)) * [1.0, 2.0, 0.5]
    Xt = rng.normal(size=(14, 3)) * [1.0, 2.0, 0.5] + [0.6, -0.4, 0.2]
    Xu = rng.normal(size=(10, 3)) * [1.0, 2.0, 0.5] + [0.6, -0.4, 0.2]
    f = lambda X: np.sin(X[:, 0]) + 0.3 * X[:, 1] - X[:, 2] ** 2  # noqa: E731
    return Xs, f(Xs), Xt, f(Xt) + 0.4, Xu


def _gp(model, X_train, y_train, noise, X_test):
    """Closed-form GP posterior mean and predictive std in the original units, with the
    model's fitted amplitude and input scales, targets standardised as the model does."""
    s, amp = np.asarray(model.input_scales_), model.amplitude_
    mu, sd = model.y_mean_[0], model.y_scale_[0]
    K = amp * _k(X_train * s, X_train * s) + np.diag(noise)
    K_star = amp * _k(X_test * s, X_train * s)
    mean = K_star @ np.linalg.solve(K, (y_train - mu) / sd)
    prior = amp * kernel_diag(torch.from_numpy(X_test * s), "ntk", 2, 1.0, 1.0).numpy()
    var = prior - np.einsum("ij,ji->i", K_star, np.linalg.solve(K, K_star.T))
    return mean * sd + mu, np.sqrt(var + noise[-1]) * sd


def _check(model, expected_mean, expected_std, Xq):
    mean, std = model.predict(Xq, return_std=True)
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(std, expected_std, rtol=1e-7, atol=1e-9)


class _FixedNTK(Kernel):
    """The NTK as a scikit-learn kernel with no hyper-parameters (inputs pre-scaled)."""

    def __init__(self):  # scikit-learn reads the hyper-parameters from this signature: none
        super().__init__()

    def __call__(self, X, Y=None, eval_gradient=False):
        assert not eval_gradient
        return _k(np.asarray(X), np.asarray(X if Y is None else Y))

    def diag(self, X):
        return kernel_diag(torch.from_numpy(np.asarray(X)), "ntk", 2, 1.0, 1.0).numpy()

    def is_stationary(self):
        return False


def test_target_only_gp_is_sklearns_gp_with_the_same_fixed_kernel():
    Xs, ys, Xt, yt, Xq = _problem()
    model = TargetOnlyGP().fit(Xs, ys, Xt=Xt, yt=yt)
    s = model.input_scales_
    kernel = (ConstantKernel(model.amplitude_, "fixed") * _FixedNTK()
              + WhiteKernel(model.noises_[0], "fixed"))
    # normalize_y standardises with the training targets' mean and std: the labelled target's
    reference = GaussianProcessRegressor(kernel, optimizer=None, normalize_y=True, alpha=0.0)
    reference.fit(Xt * s, yt)
    mean, std = reference.predict(Xq * s, return_std=True)
    _check(model, mean, std, Xq)


def test_source_only_and_pooled_gps_are_the_closed_form_on_their_training_sets():
    Xs, ys, Xt, yt, Xq = _problem()
    source = SourceOnlyGP().fit(Xs, ys, Xt=Xt, yt=yt)
    _check(source, *_gp(source, Xs, ys, np.full(len(Xs), source.noises_[0]), Xq), Xq)
    pooled = PooledGP().fit(Xs, ys, Xt=Xt, yt=yt)
    X, y = np.vstack([Xs, Xt]), np.r_[ys, yt]
    _check(pooled, *_gp(pooled, X, y, np.full(len(X), pooled.noises_[0]), Xq), Xq)


def test_feature_augmentation_is_daumes_three_copies():
    Xs, ys, Xt, yt, Xq = _problem()
    model = FeatureAugmentedGP().fit(Xs, ys, Xt=Xt, yt=yt)
    aug_s = np.hstack([Xs, Xs, np.zeros_like(Xs)])
    aug_t = np.hstack([Xt, np.zeros_like(Xt), Xt])
    noise = np.r_[np.full(len(Xs), model.noises_[0]), np.full(len(Xt), model.noises_[1])]
    test = np.hstack([Xq, np.zeros_like(Xq), Xq])
    _check(model, *_gp(model, np.vstack([aug_s, aug_t]), np.r_[ys, yt], noise, test), Xq)


def test_coral_recolours_the_source_with_the_target_covariance():
    Xs, ys, Xt, yt, Xu = _problem()
    model = CoralGP().fit(Xs, ys, Xt=Xt, yt=yt, Xu=Xu)
    eye = np.eye(3)
    target = np.vstack([Xt, Xu])  # every known target input, labelled or not
    A = (fractional_matrix_power(np.cov(Xs.T) + eye, -0.5)
         @ fractional_matrix_power(np.cov(target.T) + eye, 0.5)).real
    aligned = Xs @ A
    # the recoloured source has the target's (regularised) covariance: C_s^-1/2 ... check
    np.testing.assert_allclose(A.T @ (np.cov(Xs.T) + eye) @ A, np.cov(target.T) + eye,
                               rtol=1e-8, atol=1e-10)
    noise = np.r_[np.full(len(Xs), model.noises_[0]), np.full(len(Xt), model.noises_[1])]
    _check(model, *_gp(model, np.vstack([aligned, Xt]), np.r_[ys, yt], noise, Xu), Xu)


def test_kmm_weights_solve_the_quadratic_programme_and_scale_the_source_noise():
    Xs, ys, Xt, yt, Xu = _problem()
    target = np.vstack([Xt, Xu])
    beta = kmm_weights(Xs, target)
    # the same programme (Huang et al. 2007) solved by scipy's SLSQP with explicit constraints
    both = np.vstack([Xs, target])
    sq = ((both[:, None] - both[None]) ** 2).sum(-1)
    gamma = 1.0 / np.median(sq[sq > 0])
    n_s, n_t = len(Xs), len(target)
    K = np.exp(-gamma * sq[:n_s, :n_s]) + 1e-8 * np.eye(n_s)
    kappa = n_s / n_t * np.exp(-gamma * sq[:n_s, n_s:]).sum(1)
    eps = n_s * (np.sqrt(n_s) - 1) / np.sqrt(n_s) / 10.0

    def objective(b):
        return 0.5 * b @ K @ b - kappa @ b

    ref = minimize(objective, np.ones(n_s), jac=lambda b: K @ b - kappa, method="SLSQP",
                   bounds=[(0.0, 1000.0)] * n_s,
                   constraints=[{"type": "ineq", "fun": lambda b: eps - (b.sum() - n_s)},
                                {"type": "ineq", "fun": lambda b: eps + (b.sum() - n_s)}],
                   options={"maxiter": 500, "ftol": 1e-12})
    assert ref.success
    scale = abs(objective(ref.x))
    assert objective(beta) <= objective(ref.x) + 1e-4 * scale
    assert abs(beta.sum() - n_s) <= eps * 1.01 and (beta >= 0).all()
    # the weighted GP: a source row of weight beta has noise sigma_S^2 / beta
    model = KMMGP().fit(Xs, ys, Xt=Xt, yt=yt, Xu=Xu)
    np.testing.assert_allclose(model.weights_, beta, rtol=1e-10)
    noise = np.r_[model.noises_[0] / np.clip(beta, 1e-3, None),
                  np.full(len(Xt), model.noises_[1])]
    _check(model, *_gp(model, np.vstack([Xs, Xt]), np.r_[ys, yt], noise, Xu), Xu)


def test_adaptive_gp_is_cao_et_als_transfer_kernel_in_closed_form():
    Xs, ys, Xt, yt, Xq = _problem()
    model = AdaptiveGP().fit(Xs, ys, Xt=Xt, yt=yt)
    s, amp, lam = model.input_scales_.numpy(), model.amplitude_, model.lambda_
    Ss, St, Sq = Xs * s, Xt * s, Xq * s
    K = amp * np.block([[_k(Ss, Ss), lam * _k(Ss, St)], [lam * _k(St, Ss), _k(St, St)]])
    K += np.diag(np.r_[np.full(len(Xs), model.noise_source_), np.full(len(Xt), model.noise_target_)])
    K_star = amp * np.hstack([lam * _k(Sq, Ss), _k(Sq, St)])
    mu, sd = model.y_mean_[0], model.y_scale_[0]
    mean = K_star @ np.linalg.solve(K, (np.r_[ys, yt] - mu) / sd) * sd + mu
    prior = amp * kernel_diag(torch.from_numpy(Sq), "ntk", 2, 1.0, 1.0).numpy()
    var = prior - np.einsum("ij,ji->i", K_star, np.linalg.solve(K, K_star.T))
    _check(model, mean, np.sqrt(var + model.noise_target_) * sd, Xq)
    assert -1.0 < lam < 1.0


def test_fine_tuned_mlp_std_is_its_target_residual_and_fine_tuning_fits_the_target():
    Xs, ys, Xt, yt, Xq = _problem()
    model = FineTunedMLP(pretrain_epochs=30, finetune_steps=300).fit(Xs, ys, Xt=Xt, yt=yt)
    residual = model.predict(Xt) - yt
    _, std = model.predict(Xq, return_std=True)
    # hand computation: the std is the RMS residual on the fine-tuning set, constant over inputs
    np.testing.assert_allclose(std, np.sqrt((residual**2).mean()), rtol=1e-10)
    source_only = FineTunedMLP(pretrain_epochs=30, finetune_steps=0).fit(Xs, ys, Xt=Xt, yt=yt)
    # fine-tuning on the 14 target labels must fit them better than the source-trained net
    # (deterministic: fixed seeds; the target is shifted by +0.4 and has new inputs)
    assert np.abs(residual).mean() < 0.5 * np.abs(source_only.predict(Xt) - yt).mean()


def test_ridges_are_sklearn_ridge_with_the_leave_one_out_residual_std():
    """Pooled ridge: scikit-learn's Ridge on [x, target indicator] at the penalty RidgeCV chose,
    the indicator set at test time; its std is the RMS of the target rows' residuals when each
    is refitted out (done here by hand). Target-only ridge the same on the target rows."""
    Xs, ys, Xt, yt, Xq = _problem()
    pooled = PooledRidge().fit(Xs, ys, Xt=Xt, yt=yt)
    Z = np.c_[np.vstack([Xs, Xt]), np.r_[np.zeros(len(Xs)), np.ones(len(Xt))]]
    y = np.r_[ys, yt]
    alpha = pooled.alpha_
    assert alpha in PooledRidge().alphas
    reference = Ridge(alpha=alpha).fit(Z, y)
    expected = reference.predict(np.c_[Xq, np.ones(len(Xq))])
    resid = [y[i] - Ridge(alpha=alpha).fit(np.delete(Z, i, 0), np.delete(y, i)).predict(
        Z[i:i + 1])[0] for i in range(len(Xs), len(Z))]
    mean, std = pooled.predict(Xq, return_std=True)
    # Ridge on targets standardised by the target rows then unscaled: the same fit
    np.testing.assert_allclose(mean, expected, rtol=1e-8)
    np.testing.assert_allclose(std, np.sqrt(np.mean(np.square(resid))), rtol=1e-8)
    target = TargetRidge().fit(Xs, ys, Xt=Xt, yt=yt)
    np.testing.assert_allclose(target.predict(Xq),
                               Ridge(alpha=target.alpha_).fit(Xt, yt).predict(Xq), rtol=1e-8)


def test_domain_mean_gp_is_the_closed_form_with_intercepts_and_a_shared_slope():
    """Pooled GP whose kernel adds 100 [same domain] + sigma_l^2 x . x' / d (the mean's prior)
    and a noise level per domain; test rows are target rows."""
    Xs, ys, Xt, yt, Xq = _problem()
    model = DomainMeanGP().fit(Xs, ys, Xt=Xt, yt=yt)
    s, amp, slope = np.asarray(model.input_scales_), model.amplitude_, model.slope_variance_
    mu, sd = model.y_mean_[0], model.y_scale_[0]
    X = np.vstack([Xs, Xt])
    dom = np.r_[np.zeros(len(Xs)), np.ones(len(Xt))]
    noise = np.where(dom == 0, model.noises_[0], model.noises_[1])

    def mean_cov(A, da, B, db):
        return 100.0 * (da[:, None] == db[None, :]) + slope * (A @ B.T) / A.shape[1]

    K = amp * _k(X * s, X * s) + mean_cov(X, dom, X, dom) + np.diag(noise)
    dq = np.ones(len(Xq))
    K_star = amp * _k(Xq * s, X * s) + mean_cov(Xq, dq, X, dom)
    expected = K_star @ np.linalg.solve(K, (np.r_[ys, yt] - mu) / sd) * sd + mu
    prior = (amp * kernel_diag(torch.from_numpy(Xq * s), "ntk", 2, 1.0, 1.0).numpy() + 100.0
             + slope * (Xq * Xq).sum(1) / 3)
    var = prior - np.einsum("ij,ji->i", K_star, np.linalg.solve(K, K_star.T)) + noise[-1]
    _check(model, expected, np.sqrt(var) * sd, Xq)


def test_every_baseline_is_covered_here():
    assert set(BASELINES.values()) == {PooledRidge, TargetRidge, DomainMeanGP, TargetOnlyGP,
                                       SourceOnlyGP, PooledGP, AdaptiveGP, KMMGP,
                                       FeatureAugmentedGP, CoralGP, FineTunedMLP}


"""Baselines behind DINO's interface: what a practitioner tries first (ridge regression pooled
with a domain indicator, ridge on the target rows alone, a GP with a mean per domain), the
families DINO subsumes, and the usual ones.

All GP baselines use the same base kernel as DINO (NTK of a depth-2 ReLU net by default, on inputs
scaled per feature) with the amplitude, noise variances and input scales fitted by maximum
likelihood (L-BFGS), so that the comparison isolates how each method uses the source domain. Training sets larger than ``max_train`` are
subsampled at random (documented, exact GP algebra only).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch
from scipy.optimize import minimize
from sklearn.linear_model import Ridge, RidgeCV

from transferscope.dino.base import DomainRegressor
from transferscope.dino.estimator import INTERCEPT_VAR
from transferscope.dino.gp import ExactPosterior, conditional_nll, gaussian_nll
from transferscope.dino.inputs import DomainData
from transferscope.dino.kernels import base_kernel, kernel_diag
from transferscope.dino.params import (
    Alphas,
    BStd,
    Depth,
    Epochs,
    FinetuneLr,
    FinetuneSteps,
    Hidden,
    Kernel,
    LearningRate,
    MaxTrain,
    RandomState,
    WStd,
)

RIDGE_ALPHAS = tuple(np.logspace(-3, 3, 13))


class _KernelGP(DomainRegressor):
    """A GP on a training set that each subclass assembles from the domains.

    ``domain_mean`` (a class attribute): add a mean per noise group (0 source, 1 target): an
    intercept each (flat prior, ``INTERCEPT_VAR``) and a shared slope whose prior variance is
    fitted with the kernel, as ``DINORegressor(mean="linear")``."""

    domain_mean = False

    def __init__(self, kernel: Kernel = "ntk", depth: Depth = 2, w_std: WStd = 1.0,
                 b_std: BStd = 1.0, max_train: MaxTrain = 3000, random_state: RandomState = 0):
        self.kernel = kernel
        self.depth = depth
        self.w_std = w_std
        self.b_std = b_std
        self.max_train = max_train
        self.random_state = random_state

    def _k(self, X1: torch.Tensor, X2: torch.Tensor) -> torch.Tensor:
        return base_kernel(self.kernel, self.depth, self.w_std, self.b_std)(X1, X2)

    def _training_set(self, data: DomainData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Inputs, targets and a noise-group index per row (0 source, 1 target)."""
        raise NotImplementedError

    def _test_inputs(self, X: torch.Tensor) -> torch.Tensor:
        return X

    def _source_cap(self, data: DomainData) -> DomainData:
        room = max(self.max_train - data.Xt.shape[0], 1)
        if data.Xs.shape[0] <= room:
            return data
        idx = np.sort(np.random.default_rng(self.random_state).choice(data.Xs.shape[0], room,
                                                                      replace=False))
        return replace(data, Xs=data.Xs[idx], ys=data.ys[idx])

    def _noise_scale(self, data: DomainData, groups: np.ndarray) -> np.ndarray:
        """Per-row multipliers of the noise variance (1 = plain GP; KMM overrides)."""
        return np.ones(len(groups))

    def _fit_scaled(self, data: DomainData) -> None:
        data = self._source_cap(data)
        X, y, groups = self._training_set(data)
        Xtr, ytr = torch.from_numpy(X), torch.from_numpy(y)
        group_idx = torch.from_numpy(groups)
        scale = torch.from_numpy(self._noise_scale(data, groups))
        n_groups = int(groups.max()) + 1
        self._n_groups = n_groups
        log_amp0 = -np.log(float(self._k_diag(Xtr).mean()))
        log_params = torch.tensor([log_amp0] + [np.log(0.1)] * n_groups + [0.0] * X.shape[1]
                                  + [0.0] * self.domain_mean,
                                  dtype=torch.float64, requires_grad=True)
        n_scales = X.shape[1]

        def covariance(p: torch.Tensor) -> torch.Tensor:
            p = p.clamp(-12.0, 12.0)
            noise = (p[1:1 + n_groups].exp() + 1e-6)[group_idx] * scale
            Xs_scaled = Xtr * p[1 + n_groups:1 + n_groups + n_scales].exp()
            K = p[0].exp() * self._k(Xs_scaled, Xs_scaled) + torch.diag(noise)
            if self.domain_mean:
                H = self._mean_features(Xtr, group_idx, p)
                K = K + H @ H.transpose(0, 1)
            return K

        _lbfgs(log_params, lambda p: gaussian_nll(covariance(p), ytr) / ytr.numel())
        with torch.no_grad():
            self._params = log_params.detach().clamp(-12.0, 12.0)
            self._posterior = ExactPosterior(covariance(self._params), ytr)
        self._scales = self._params[1 + n_groups:1 + n_groups + n_scales].exp()
        self.input_scales_ = self._scales.numpy()
        self.amplitude_ = float(self._params[0].exp())
        self.noises_ = (self._params[1:1 + n_groups].exp() + 1e-6).numpy()  # per noise group
        self._train_X = Xtr * self._scales
        self._target_noise = float(self._params[n_groups].exp() + 1e-6)
        if self.domain_mean:
            self._train_H = self._mean_features(Xtr, group_idx, self._params)
            self.slope_variance_ = float(self._params[-1].exp())

    def _mean_features(self, X: torch.Tensor, groups: torch.Tensor, p: torch.Tensor
                       ) -> torch.Tensor:
        """Intercept per group (prior std ``sqrt(INTERCEPT_VAR)``) and the shared slope."""
        onehot = torch.nn.functional.one_hot(groups, 2).to(X.dtype) * math.sqrt(INTERCEPT_VAR)
        slope = X * (p[-1].clamp(-12.0, 12.0).exp().sqrt() / math.sqrt(X.shape[1]))
        return torch.cat([onehot, slope], 1)

    def _k_diag(self, X: torch.Tensor) -> torch.Tensor:
        return kernel_diag(X, self.kernel, self.depth, self.w_std, self.b_std)

    def _predict_scaled(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        X = self._test_inputs(X)
        Xq = X * self._scales
        amp = self._params[0].exp()
        K_star, prior = amp * self._k(Xq, self._train_X), amp * self._k_diag(Xq)
        if self.domain_mean:  # test rows are target rows (group 1)
            H = self._mean_features(X, torch.ones(len(X), dtype=torch.long), self._params)
            K_star, prior = K_star + H @ self._train_H.transpose(0, 1), prior + (H * H).sum(1)
        mean, var = self._posterior.predict(K_star, prior)
        return mean, var + self._target_noise


def _lbfgs(params: torch.Tensor, loss_fn, max_iter: int = 25) -> None:
    """Minimise ``loss_fn(params)`` in place with L-BFGS (a few dozen kernel factorisations)."""
    optimiser = torch.optim.LBFGS([params], lr=0.5, max_iter=max_iter,
                                  line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = loss_fn(params)
        loss.backward()
        return loss

    optimiser.step(closure)


def _stack(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts, axis=0)


class TargetOnlyGP(_KernelGP):
    """GP on the labelled target points only (ignores the source)."""

    def _training_set(self, data):
        return data.Xt, data.yt, np.zeros(len(data.Xt), dtype=np.int64)


class SourceOnlyGP(_KernelGP):
    """GP on the source only, applied to the target (no adaptation at all)."""

    def _training_set(self, data):
        return data.Xs, data.ys, np.zeros(len(data.Xs), dtype=np.int64)

    def _fit_scaled(self, data: DomainData) -> None:
        room = replace(data, Xt=data.Xt[:0], yt=data.yt[:0])
        super()._fit_scaled(room)


class PooledGP(_KernelGP):
    """GP on source and target pooled, as if they were one domain (one noise level)."""

    def _training_set(self, data):
        n = len(data.Xs) + len(data.Xt)
        return _stack(data.Xs, data.Xt), _stack(data.ys, data.yt), np.zeros(n, dtype=np.int64)


class DomainMeanGP(_KernelGP):
    """A GP on source and target pooled with a mean per domain: an intercept per domain and a
    shared slope (a ridge prior fitted with the kernel), and a noise level per domain; its mean
    with the kernel's amplitude at 0 is pooled ridge regression with a domain indicator."""

    domain_mean = True

    def _training_set(self, data):
        groups = np.r_[np.zeros(len(data.Xs)), np.ones(len(data.Xt))].astype(np.int64)
        return _stack(data.Xs, data.Xt), _stack(data.ys, data.yt), groups


class _Ridge(DomainRegressor):
    """Ridge regression (scikit-learn's ``RidgeCV``, penalty chosen by its efficient leave-one-out
    over ``alphas``) with a Gaussian predictive interval whose std is the root mean square of the
    labelled target rows' leave-one-out residuals (each row refitted out at the chosen penalty).
    """

    def __init__(self, alphas: Alphas = RIDGE_ALPHAS, random_state: RandomState = 0):
        self.alphas = alphas
        self.random_state = random_state

    def _design(self, data: DomainData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Design matrix, targets, and the positions of the labelled target rows."""
        raise NotImplementedError

    def _fit_scaled(self, data: DomainData) -> None:
        Z, y, target_rows = self._design(data)
        self._ridge = RidgeCV(alphas=self.alphas).fit(Z, y)
        self.alpha_ = float(self._ridge.alpha_)
        residuals = []
        for row in target_rows:
            keep = np.arange(len(Z)) != row
            refit = Ridge(alpha=self.alpha_).fit(Z[keep], y[keep])
            residuals.append(y[row] - refit.predict(Z[row:row + 1])[0])
        self._variance = float(np.mean(np.square(residuals)))

    def _test_design(self, X: np.ndarray) -> np.ndarray:
        return X

    def _predict_scaled(self, X):
        mean = self._ridge.predict(self._test_design(X.numpy())).reshape(len(X), -1)
        return (torch.from_numpy(mean), torch.full((len(X),), self._variance,
                                                   dtype=torch.float64))


class PooledRidge(_Ridge):
    """Ridge on source and labelled target rows pooled, with a domain indicator column (1 on
    target rows; the intercept is not penalised, the indicator is): what a practitioner tries
    first."""

    def _design(self, data):
        Z = np.c_[_stack(data.Xs, data.Xt), np.r_[np.zeros(len(data.Xs)), np.ones(len(data.Xt))]]
        return Z, _stack(data.ys, data.yt), np.arange(len(data.Xs), len(Z))

    def _test_design(self, X):
        return np.c_[X, np.ones(len(X))]


class TargetRidge(_Ridge):
    """Ridge on the labelled target rows alone."""

    def _design(self, data):
        return data.Xt, data.yt, np.arange(len(data.Xt))


class FeatureAugmentedGP(_KernelGP):
    """Daume (2007) feature augmentation: source ``[x, x, 0]``, target ``[x, 0, x]``."""

    def _training_set(self, data):
        zeros_s, zeros_t = np.zeros_like(data.Xs), np.zeros_like(data.Xt)
        Xs_aug = np.hstack([data.Xs, data.Xs, zeros_s])
        Xt_aug = np.hstack([data.Xt, zeros_t, data.Xt])
        groups = np.r_[np.zeros(len(data.Xs)), np.ones(len(data.Xt))].astype(np.int64)
        return _stack(Xs_aug, Xt_aug), _stack(data.ys, data.yt), groups

    def _test_inputs(self, X):
        return torch.cat([X, torch.zeros_like(X), X], dim=1)


class CoralGP(_KernelGP):
    """CORAL (Sun et al. 2016): recolour source features with the target covariance, then pool."""

    def _training_set(self, data):
        target = data.target_inputs
        eye = np.eye(data.Xs.shape[1])
        whiten = _matrix_power(np.cov(data.Xs, rowvar=False).reshape(eye.shape) + eye, -0.5)
        colour = _matrix_power(np.cov(target, rowvar=False).reshape(eye.shape) + eye, 0.5)
        Xs_aligned = data.Xs @ whiten @ colour
        groups = np.r_[np.zeros(len(data.Xs)), np.ones(len(data.Xt))].astype(np.int64)
        return _stack(Xs_aligned, data.Xt), _stack(data.ys, data.yt), groups


def _matrix_power(sym: np.ndarray, power: float) -> np.ndarray:
    eigval, eigvec = np.linalg.eigh(sym)
    return (eigvec * np.clip(eigval, 1e-12, None) ** power) @ eigvec.T


class KMMGP(_KernelGP):
    """Kernel mean matching (Huang et al. 2007) source weights, then a weighted pooled GP.

    A source row of weight ``beta`` gets noise variance ``sigma_S^2 / beta`` (our choice of how a
    GP uses instance weights); the RBF bandwidth is the median heuristic.
    """

    def _training_set(self, data):
        groups = np.r_[np.zeros(len(data.Xs)), np.ones(len(data.Xt))].astype(np.int64)
        return _stack(data.Xs, data.Xt), _stack(data.ys, data.yt), groups

    def _noise_scale(self, data, groups):
        self.weights_ = kmm_weights(data.Xs, data.target_inputs)
        return 1.0 / np.r_[np.clip(self.weights_, 1e-3, None), np.ones(len(data.Xt))]


def kmm_weights(
    Xs: np.ndarray, Xt: np.ndarray, bound: float = 1000.0, max_target: int = 2000
) -> np.ndarray:
    """Solve KMM's QP: match the weighted source mean embedding to the target one (RBF kernel).

    At most ``max_target`` target inputs (a fixed random subset) enter the target embedding.
    """
    if len(Xt) > max_target:
        Xt = Xt[np.random.default_rng(0).choice(len(Xt), max_target, replace=False)]
    both = np.vstack([Xs, Xt])
    norms = (both * both).sum(1)
    sq = np.clip(norms[:, None] + norms[None, :] - 2 * both @ both.T, 0.0, None)
    gamma = 1.0 / max(np.median(sq[sq > 0]), 1e-12)
    K_all = np.exp(-gamma * sq)
    n_s, n_t = len(Xs), len(Xt)
    K = K_all[:n_s, :n_s] + 1e-8 * np.eye(n_s)
    kappa = (n_s / n_t) * K_all[:n_s, n_s:].sum(1)
    slack = n_s * (np.sqrt(n_s) - 1) / np.sqrt(n_s) / 10.0
    penalty = 10.0 * float(np.abs(kappa).max())

    def objective(beta: np.ndarray) -> tuple[float, np.ndarray]:
        excess = abs(beta.sum() - n_s) - slack
        grad = K @ beta - kappa
        value = 0.5 * beta @ K @ beta - kappa @ beta
        if excess > 0:
            value += penalty * excess**2
            grad = grad + 2 * penalty * excess * np.sign(beta.sum() - n_s)
        return float(value), grad

    result = minimize(objective, np.ones(n_s), jac=True, method="L-BFGS-B",
                      bounds=[(0.0, bound)] * n_s)
    return result.x


class AdaptiveGP(DomainRegressor):
    """Adaptive transfer GP (Cao et al. 2010): ``K_ST = lambda k``, ``lambda`` in (-1, 1) learned.

    Fitted like DINO, by the conditional likelihood of the target labels given the source; it is
    DINO with a constant cross-domain factor.
    """

    def __init__(self, kernel: Kernel = "ntk", depth: Depth = 2, w_std: WStd = 1.0,
                 b_std: BStd = 1.0, max_train: MaxTrain = 3000, random_state: RandomState = 0):
        self.kernel = kernel
        self.depth = depth
        self.w_std = w_std
        self.b_std = b_std
        self.max_train = max_train
        self.random_state = random_state

    def _k(self, X1, X2):
        return base_kernel(self.kernel, self.depth, self.w_std, self.b_std)(X1, X2)

    def _fit_scaled(self, data: DomainData) -> None:
        data = _KernelGP._source_cap(self, data)
        Xs, ys = torch.from_numpy(data.Xs), torch.from_numpy(data.ys)
        Xt, yt = torch.from_numpy(data.Xt), torch.from_numpy(data.yt)
        eye_s, eye_t = torch.eye(len(Xs), dtype=torch.float64), torch.eye(len(Xt),
                                                                          dtype=torch.float64)
        diag = kernel_diag(Xt, self.kernel, self.depth, self.w_std, self.b_std)
        params = torch.tensor([-np.log(float(diag.mean())), np.log(0.1), np.log(0.1), 0.5]
                              + [0.0] * Xs.shape[1], dtype=torch.float64, requires_grad=True)

        def blocks(p):
            s = p[4:].exp()
            return self._k(Xs * s, Xs * s), self._k(Xs * s, Xt * s), self._k(Xt * s, Xt * s)

        def loss(p):
            p = p.clamp(-12.0, 12.0)
            amp, lam = p[0].exp(), torch.tanh(p[3])
            k_ss, k_st, k_tt = blocks(p)
            return conditional_nll(amp * k_ss + (p[1].exp() + 1e-6) * eye_s, amp * lam * k_st,
                                   amp * k_tt + (p[2].exp() + 1e-6) * eye_t, ys, yt) / yt.numel()

        _lbfgs(params, loss)
        with torch.no_grad():
            p = params.detach().clamp(-12.0, 12.0)
            self.input_scales_ = p[4:].exp()
            k_ss, k_st, k_tt = blocks(p)
            Xs, Xt = Xs * self.input_scales_, Xt * self.input_scales_
            self.amplitude_, self.lambda_ = float(p[0].exp()), float(torch.tanh(p[3]))
            self.noise_source_ = float(p[1].exp() + 1e-6)
            self.noise_target_ = float(p[2].exp() + 1e-6)
            K = transfer_kernel_matrix(k_ss, k_st, k_tt, self.lambda_) * self.amplitude_
            noise = torch.cat([torch.full((len(Xs),), self.noise_source_),
                               torch.full((len(Xt),), self.noise_target_)]).to(torch.float64)
            self._posterior = ExactPosterior(K + torch.diag(noise), torch.cat([ys, yt]))
        self._train = (Xs, Xt)

    def _predict_scaled(self, X):
        Xs, Xt = self._train
        X = X * self.input_scales_
        K_star = self.amplitude_ * torch.cat([self.lambda_ * self._k(X, Xs), self._k(X, Xt)], 1)
        diag = self.amplitude_ * kernel_diag(X, self.kernel, self.depth, self.w_std, self.b_std)
        mean, var = self._posterior.predict(K_star, diag)
        return mean, var + self.noise_target_


def transfer_kernel_matrix(k_ss, k_st, k_tt, lam: float) -> torch.Tensor:
    """``[[k_SS, lam k_ST], [lam k_TS, k_TT]]`` (Cao et al.'s transfer kernel, no noise)."""
    return torch.cat([torch.cat([k_ss, lam * k_st], 1),
                      torch.cat([lam * k_st.transpose(0, 1), k_tt], 1)])


class FineTunedMLP(DomainRegressor):
    """An MLP trained on the source, then fine-tuned on the labelled target (no uncertainty:
    ``return_std`` gives the target-residual std of the fine-tuning set)."""

    def __init__(self, hidden: Hidden = 64, pretrain_epochs: Epochs = 200,
                 finetune_steps: FinetuneSteps = 200, learning_rate: LearningRate = 1e-2,
                 finetune_lr: FinetuneLr = 2e-3, random_state: RandomState = 0):
        self.hidden = hidden
        self.pretrain_epochs = pretrain_epochs
        self.finetune_steps = finetune_steps
        self.learning_rate = learning_rate
        self.finetune_lr = finetune_lr
        self.random_state = random_state

    def _fit_scaled(self, data: DomainData) -> None:
        torch.manual_seed(self.random_state)
        n_in, n_out = data.Xs.shape[1], data.ys.shape[1]
        self._net = torch.nn.Sequential(
            torch.nn.Linear(n_in, self.hidden), torch.nn.ReLU(),
            torch.nn.Linear(self.hidden, self.hidden), torch.nn.ReLU(),
            torch.nn.Linear(self.hidden, n_out),
        ).to(torch.float64)
        Xs, ys = torch.from_numpy(data.Xs), torch.from_numpy(data.ys)
        Xt, yt = torch.from_numpy(data.Xt), torch.from_numpy(data.yt)
        self._train_steps(Xs, ys, self.pretrain_epochs, self.learning_rate, batch=256)
        self._train_steps(Xt, yt, self.finetune_steps, self.finetune_lr, batch=len(Xt))
        with torch.no_grad():
            self._resid_var = float(((self._net(Xt) - yt) ** 2).mean())

    def _train_steps(self, X, y, epochs: int, lr: float, batch: int) -> None:
        optimiser = torch.optim.Adam(self._net.parameters(), lr=lr)
        generator = torch.Generator().manual_seed(self.random_state)
        for _ in range(epochs):
            for idx in torch.randperm(len(X), generator=generator).split(batch):
                optimiser.zero_grad()
                torch.nn.functional.mse_loss(self._net(X[idx]), y[idx]).backward()
                optimiser.step()

    def _predict_scaled(self, X):
        return self._net(X), torch.full((len(X),), self._resid_var, dtype=torch.float64)


BASELINES = {
    "pooled ridge + indicator": PooledRidge,
    "target-only ridge": TargetRidge,
    "GP + domain mean": DomainMeanGP,
    "target-only GP": TargetOnlyGP,
    "source-only GP": SourceOnlyGP,
    "pooled GP": PooledGP,
    "adaptive GP": AdaptiveGP,
    "KMM + GP": KMMGP,
    "feature augmentation GP": FeatureAugmentedGP,
    "CORAL + GP": CoralGP,
    "fine-tuned MLP": FineTunedMLP,
}

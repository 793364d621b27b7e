"""``DINORegressor``: distribution-informed GP regression with an infinite-width network kernel.

Kernel between a point ``x`` of domain ``a`` and ``x'`` of domain ``b`` (0 source, 1 target):
``K_ab(x, x') = amplitude * k(x, x') * g_ab(x, x') + h_a(x) . h_b(x')`` with ``k`` the NNGP
(DINO-INIT) or NTK (DINO-TRAIN) kernel, ``g`` the distribution factor (see ``distribution.py``)
and ``h`` the features of a mean function per domain (a Gaussian prior on its coefficients is
this finite-rank kernel term: Rasmussen & Williams 2006, sec. 2.7), plus noise
``sigma_S^2`` / ``sigma_T^2`` on the diagonal. Fit: L-BFGS on the hyper-parameters at uniform
weights (the warm start), then Adam on everything, with the number of Adam steps chosen by
K-fold cross-validation over the labelled target rows (one-standard-error rule). Predict: the
joint posterior over source and labelled target (Cholesky, or beyond ``exact_max`` a Nystrom /
FITC approximation, ``scalable.py``), its intervals widened by a conformal scale from the
labelled target rows' leave-one-out residuals.
"""

from __future__ import annotations

import math
from typing import cast

import numpy as np
import torch

from transferscope.core.progress import step_progress
from transferscope.core.stats import conformal_quantile
from transferscope.dino.base import DomainRegressor
from transferscope.dino.distribution import DistributionFactor
from transferscope.dino.gp import (
    ExactPosterior,
    cholesky,
    conditional_nll,
    gaussian_nll,
    loo_scores,
)
from transferscope.dino.inputs import DomainData
from transferscope.dino.kernels import base_kernel, kernel_diag
from transferscope.dino.params import (
    BatchSize,
    BStd,
    CacheGib,
    Calibrate,
    CgTol,
    CvFolds,
    Depth,
    ExactMax,
    Factor,
    Hidden,
    Kernel,
    LearningRate,
    Mean,
    MinTrainLabels,
    NBase,
    NInducing,
    NNeighbours,
    NSteps,
    Objective,
    Posterior,
    RandomState,
    RankTol,
    Transfer,
    ValEvery,
    Verbose,
    WarmStart,
    WStd,
)
from transferscope.dino.scalable import (
    IterativePosterior,
    LowRankProductKernel,
    NystromPosterior,
    greedy_pivots,
    landmarks,
    neighbour_variance,
)

INTERCEPT_VAR = 100.0
"""Prior variance of each domain's intercept, in units of the standardised target: flat in
effect (it shrinks an intercept estimated from n rows with noise variance s^2 by a factor
``1 / (1 + s^2 / (100 n))``), so the intercepts are fitted, not pulled towards each other."""
CALIBRATION_LEVEL = 0.9
Z90 = 1.6448536269514722  # the standard normal's 95% quantile: a central 90% interval is +/- Z90


class DINORegressor(DomainRegressor):
    """DINO-INIT (``kernel="nngp"``) or DINO-TRAIN (``kernel="ntk"``) for target-domain regression.

    Network: ``depth``, ``w_std``, ``b_std`` describe the infinite ReLU network, applied to
    inputs scaled per feature by learned scales (ours: a fixed diagonal first layer, so ``k``
    stays the exact NNGP/NTK of that network).

    Distribution factor: ``n_base`` base samples per domain, a scorer of width ``hidden``;
    ``factor`` ``"cosine"`` (ours: softmax weights, cosine of the re-weighted embeddings) or
    ``"elu"`` (the authors' signed ELU weights and unnormalised product inside this estimator;
    their whole algorithm is ``authors.AuthorsDINO``). ``transfer`` adds the adaptive GP's
    learned cross-domain factor ``lambda`` (ours).

    Mean per domain (ours, ``mean``): ``"constant"``: an intercept per domain; ``"linear"``: plus
    a slope shared by both domains, so the model contains a pooled linear (ridge) regression with
    a domain indicator; ``"domain-linear"``: plus a slope per domain; ``"none"``: zero mean. The
    intercepts have a flat prior (``INTERCEPT_VAR``), the slopes' prior variances are fitted
    with the kernel.

    Fit: ``objective`` ``"joint"`` (ours: ``-log p(y_S, y_T)`` on ``batch_size`` source rows and
    every labelled target row) or ``"conditional"`` (the paper's ``-log p(y_T | y_S)``, which at
    20 labels fits the hyper-parameters to the target rows alone and over-fits). The warm start
    (``warm_start``) fits amplitude, noises, input scales, ``lambda`` and the mean's prior
    variances by L-BFGS at uniform factor weights; then up to ``n_steps`` Adam steps
    (``learning_rate``) train everything, the factor included. How many: ``cv_folds``-fold
    cross-validation over the labelled target rows scores the held-out rows' squared error at
    0, ``val_every``, 2 ``val_every``, ... steps; the fewest steps within one standard error of
    the best are kept (one-standard-error rule), so 0 (the warm start) unless training clearly
    helps. Below ``min_train_labels`` labelled target rows no step is tried (the warm start is
    the fit; ``benchmarks/dino_defaults.py`` measured why). ``cv_folds=0`` runs all ``n_steps``
    unchecked (the authors' procedure).

    Predict: ``posterior`` ``"exact"`` (Cholesky), ``"nystrom"`` (FITC on ``n_inducing``
    inducing points, O(n m^2)), ``"cg"`` (conjugate gradients on the exact kernel, mean exact to
    ``cg_tol``, kernel cached up to ``cache_gib`` GiB, variance from the ``n_neighbours`` most
    correlated points) or ``"auto"``: exact up to ``exact_max`` training rows, Nystrom above.
    ``calibrate``: multiply the predictive std by ``max(1, q / 1.645)``, ``q`` the conformal
    90% quantile of the labelled target rows' standardised leave-one-out residuals (ours).
    """

    _posterior: ExactPosterior | NystromPosterior  # by the posterior's method (``method_``)

    def __init__(
        self,
        kernel: Kernel = "ntk",
        depth: Depth = 2,
        w_std: WStd = 1.0,
        b_std: BStd = 1.0,
        n_base: NBase = 200,
        hidden: Hidden = 16,
        mean: Mean = "linear",
        objective: Objective = "joint",
        n_steps: NSteps = 100,
        cv_folds: CvFolds = 5,
        min_train_labels: MinTrainLabels = 100,
        val_every: ValEvery = 10,
        batch_size: BatchSize = 512,
        learning_rate: LearningRate = 0.01,
        factor: Factor = "cosine",
        transfer: Transfer = True,
        calibrate: Calibrate = True,
        posterior: Posterior = "auto",
        exact_max: ExactMax = 10000,
        n_inducing: NInducing = 3000,
        cg_tol: CgTol = 1e-6,
        cache_gib: CacheGib = 4.0,
        n_neighbours: NNeighbours = 256,
        warm_start: WarmStart = True,
        rank_tol: RankTol = 1e-8,
        random_state: RandomState = 0,
        verbose: Verbose = False,
    ):
        self.kernel = kernel
        self.depth = depth
        self.w_std = w_std
        self.b_std = b_std
        self.n_base = n_base
        self.hidden = hidden
        self.mean = mean
        self.objective = objective
        self.n_steps = n_steps
        self.cv_folds = cv_folds
        self.min_train_labels = min_train_labels
        self.val_every = val_every
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.factor = factor
        self.transfer = transfer
        self.calibrate = calibrate
        self.posterior = posterior
        self.exact_max = exact_max
        self.n_inducing = n_inducing
        self.cg_tol = cg_tol
        self.cache_gib = cache_gib
        self.n_neighbours = n_neighbours
        self.warm_start = warm_start
        self.rank_tol = rank_tol
        self.random_state = random_state
        self.verbose = verbose

    # -- kernel ---------------------------------------------------------------------------------
    def _k(self, X1: torch.Tensor, X2: torch.Tensor) -> torch.Tensor:
        """Base kernel on inputs scaled by the learned per-feature scales."""
        scales = self._log_scales.clamp(-12.0, 12.0).exp()
        return self._k_raw(X1 * scales, X2 * scales)

    def _k_raw(self, X1: torch.Tensor, X2: torch.Tensor) -> torch.Tensor:
        return base_kernel(self.kernel, self.depth, self.w_std, self.b_std)(X1, X2)

    def _k_diag(self, X: torch.Tensor) -> torch.Tensor:
        scales = self._log_scales.clamp(-12.0, 12.0).exp()
        return kernel_diag(X * scales, self.kernel, self.depth, self.w_std, self.b_std)

    def dino_kernel(self, X1: torch.Tensor, a: int, X2: torch.Tensor, b: int) -> torch.Tensor:
        """``K_ab(X1, X2) = amplitude * k * g_ab + h_a . h_b`` with the fitted factor and mean
        (no noise)."""
        return self.gp_part(X1, a, X2, b) + (self.mean_features(X1, a)
                                             @ self.mean_features(X2, b).transpose(0, 1))

    def gp_part(self, X1: torch.Tensor, a: int, X2: torch.Tensor, b: int,
                factor_gram: torch.Tensor | None = None) -> torch.Tensor:
        """The kernel without the mean's term: ``amplitude * k * lambda^[a != b] g_ab``
        (``factor_gram``: ``g_ab(X1, X2)`` if already computed)."""
        if factor_gram is None:
            factor_gram = self.factor_(X1, a, X2, b)
        return self._amplitude() * self._k(X1, X2) * factor_gram * self._cross_weight(a, b)

    def _cross_weight(self, a: int, b: int) -> torch.Tensor:
        """``c_a . c_b``: 1 within a domain, ``lambda`` across (see ``embedding``)."""
        if a == b or not self.transfer:
            return torch.ones((), dtype=torch.float64)
        return torch.tanh(self._cross)

    def mean_features(self, X: torch.Tensor, domain: int) -> torch.Tensor:
        """``h_domain(X)``: the mean function's features times their prior std, so that
        ``h_a(x) . h_b(x')`` is the mean's prior covariance. Columns: source intercept, target
        intercept; with ``"linear"`` the shared slope (``x / sqrt(d)``); with
        ``"domain-linear"`` also the source and target slopes. A posterior mean of this GP with
        the kernel's amplitude at 0 is a ridge regression on these columns (ours)."""
        n, d = X.shape
        cols = []
        if self.mean != "none":
            one = torch.ones(n, 1, dtype=X.dtype) * math.sqrt(INTERCEPT_VAR)
            cols += [one, torch.zeros_like(one)] if domain == 0 else [torch.zeros_like(one), one]
        if self.mean in ("linear", "domain-linear"):
            slope_std = self._log_mean_var.clamp(-12.0, 12.0).exp().sqrt()
            cols.append(X * (slope_std[0] / math.sqrt(d)))
            if self.mean == "domain-linear":
                own = X * (slope_std[1] / math.sqrt(d))
                cols += [own, torch.zeros_like(own)] if domain == 0 else [torch.zeros_like(own),
                                                                          own]
        return torch.cat(cols, 1) if cols else X.new_zeros((n, 0))

    def embedding(self, X: torch.Tensor, domain: int) -> torch.Tensor:
        """Coordinates ``u_a(x)`` with ``u_a(x) . u_b(x') = lambda^[a != b] g_ab(x, x')``.

        With ``transfer`` (ours), the factor's embedding ``e_a(x)`` is tensored with a domain
        vector ``c_S = (1, 0)``, ``c_T = (lambda, sqrt(1 - lambda^2))``, ``lambda = tanh(theta)``
        learned: the cross-domain blocks are scaled by ``lambda`` as in the adaptive GP (Cao et
        al. 2010), which lets DINO say "the source is irrelevant" (the cosine factor alone
        cannot fall below its floor), and the kernel stays an inner product, so positive
        semi-definite."""
        e = self.factor_.embedding(X, domain)
        if not self.transfer:
            return e
        return (e.unsqueeze(2) * self._domain_vector(domain)).reshape(e.shape[0], -1)

    def _domain_vector(self, domain: int) -> torch.Tensor:
        """``c_domain`` (see ``embedding``); ``(1,)`` without ``transfer``."""
        if not self.transfer:
            return torch.ones(1, dtype=torch.float64)
        lam = torch.tanh(self._cross)
        return (torch.stack([torch.ones_like(lam), torch.zeros_like(lam)]) if domain == 0
                else torch.stack([lam, torch.sqrt((1 - lam * lam).clamp_min(0.0))]))

    def training_kernel(self, Xs: torch.Tensor, Xt: torch.Tensor) -> LowRankProductKernel:
        """The fitted (noiseless) DINO kernel on source ``Xs`` + labelled target ``Xt`` as a lazy
        operator with O(n r) memory (``scalable.LowRankProductKernel``): what the CG posterior
        solves with, and what ``benchmarks/dino_scale.py`` hands to other solvers."""
        E = torch.cat([self._embed(Xs, 0), self._embed(Xt, 1)])
        C = torch.cat([self._domain_vector(0).expand(len(Xs), -1),
                       self._domain_vector(1).expand(len(Xt), -1)])
        H = torch.cat([self.mean_features(Xs, 0), self.mean_features(Xt, 1)])
        return LowRankProductKernel(self._k, self._k_diag, torch.cat([Xs, Xt]), E, C,
                                    self._amplitude(), H)

    def _amplitude(self) -> torch.Tensor:
        return self._log_amplitude.clamp(max=12.0).exp()  # exactly 0 at -inf: the mean alone

    def _noises(self) -> torch.Tensor:
        return self._log_noise.clamp(-12.0, 12.0).exp() + 1e-6

    # -- fit ------------------------------------------------------------------------------------
    def _fit_scaled(self, data: DomainData) -> None:
        Xs, ys = torch.from_numpy(data.Xs), torch.from_numpy(data.ys)
        Xt, yt = torch.from_numpy(data.Xt), torch.from_numpy(data.yt)
        target_inputs = torch.from_numpy(data.target_inputs)
        n_steps = self.n_steps
        self.validation_curve_: list[tuple[int, float]] = []
        if self.cv_folds and n_steps > 0:
            if Xt.shape[0] < max(self.min_train_labels, 2 * self.cv_folds):
                n_steps = 0  # too few labels to train the scorer safely: the warm-start fit
            else:
                n_steps = self._select_steps(Xs, ys, Xt, yt, target_inputs)
        self.selected_steps_ = n_steps
        self._train(Xs, ys, Xt, yt, target_inputs, n_steps)
        with torch.no_grad():
            self.calibration_scale_ = self._calibration(Xs, ys, Xt, yt)
            self._build_posterior(Xs, ys, Xt, yt)
            self._record_fitted()

    def _record_fitted(self) -> None:
        """The fitted hyper-parameters as plain numbers (``amplitude_``, ``noise_*_``, ...)."""
        self.amplitude_ = float(self._amplitude())
        self.noise_source_, self.noise_target_ = (float(v) for v in self._noises())
        self.input_scales_ = self._log_scales.clamp(-12.0, 12.0).exp().detach().numpy()
        self.lambda_ = float(torch.tanh(self._cross)) if self.transfer else 1.0
        self.slope_variances_ = self._log_mean_var.clamp(-12.0, 12.0).exp().detach().numpy()

    def _source_batch(self, Xs: torch.Tensor, ys: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed source rows of the warm start, the step selection and the calibration."""
        idx = _subset(np.random.default_rng(self.random_state + 3), Xs.shape[0], self.batch_size)
        return Xs[idx], ys[idx]

    def _select_steps(self, Xs, ys, Xt, yt, target_inputs) -> int:
        """K-fold cross-validation over the labelled target rows: train on the other folds,
        score each held-out row's posterior-mean squared error (given the fixed source batch
        and the training targets) at 0, ``val_every``, ... steps; return the fewest steps whose
        mean error is within one standard error (of the paired per-row difference) of the
        best. Every labelled row is held out once."""
        n_t = Xt.shape[0]
        folds = np.array_split(np.random.default_rng(self.random_state + 2).permutation(n_t),
                               self.cv_folds)
        checkpoints = list(range(0, self.n_steps + 1, max(1, self.val_every)))
        errors = np.full((len(checkpoints), n_t), np.nan)
        Xb, yb = self._source_batch(Xs, ys)
        for fold in folds:
            held = torch.from_numpy(np.sort(fold))
            train = torch.from_numpy(np.setdiff1d(np.arange(n_t), fold))
            last = None
            for step in self._train_steps(Xs, ys, Xt[train], yt[train], target_inputs,
                                          self.n_steps, max(1, self.val_every)):
                with torch.no_grad():
                    last = self._held_out_errors(Xb, yb, Xt[train], yt[train], Xt[held],
                                                 yt[held])
                errors[checkpoints.index(step), held.numpy()] = last
            # a trajectory that stopped early (non-finite loss) keeps its last parameters
            for row in range(len(checkpoints)):
                if np.isnan(errors[row, held.numpy()]).all():
                    errors[row, held.numpy()] = last
        means = errors.mean(1)
        self.validation_curve_ = [(s, float(m)) for s, m in zip(checkpoints, means, strict=True)]
        best = int(np.nanargmin(np.where(np.isfinite(means), means, np.inf)))
        for row in range(best + 1):  # fewest steps first
            gap = errors[row] - errors[best]
            if not np.isfinite(gap).all():
                continue
            if gap.mean() <= gap.std(ddof=1) / np.sqrt(n_t):
                return checkpoints[row]
        return checkpoints[best]

    def _held_out_errors(self, Xb, yb, Xtr, ytr, Xv, yv) -> np.ndarray:
        """Squared errors (summed over outputs) of the posterior mean at ``Xv`` given source
        batch + training targets (standardised units); infinite if the kernel broke down."""
        K = self._noisy_kernel(Xb, Xtr)
        K_star = torch.cat([self.dino_kernel(Xv, 1, Xb, 0), self.dino_kernel(Xv, 1, Xtr, 1)], 1)
        try:
            mean = K_star @ ExactPosterior(K, torch.cat([yb, ytr])).weights
        except torch.linalg.LinAlgError:
            return np.full(len(Xv), np.inf)
        value = ((mean - yv) ** 2).sum(1).numpy()
        return np.where(np.isfinite(value), value, np.inf)

    def _noisy_kernel(self, Xs: torch.Tensor, Xt: torch.Tensor,
                      grams: dict | None = None) -> torch.Tensor:
        """The joint training covariance of source rows ``Xs`` and target rows ``Xt``
        (``grams``: the factor's blocks ``g_ab`` if fixed, see ``_factor_grams``)."""
        K_ss, K_st, K_tt = self._blocks(Xs, Xt, grams)
        noise = self._noises()
        K = torch.cat([torch.cat([K_ss, K_st], 1), torch.cat([K_st.transpose(0, 1), K_tt], 1)])
        return K + torch.diag(torch.cat([noise[0].expand(len(Xs)), noise[1].expand(len(Xt))]))

    def _blocks(self, Xs, Xt, grams: dict | None = None):
        """Noiseless ``K_SS``, ``K_ST``, ``K_TT``."""
        grams = grams or {}
        H_s, H_t = self.mean_features(Xs, 0), self.mean_features(Xt, 1)
        return (self.gp_part(Xs, 0, Xs, 0, grams.get("ss")) + H_s @ H_s.transpose(0, 1),
                self.gp_part(Xs, 0, Xt, 1, grams.get("st")) + H_s @ H_t.transpose(0, 1),
                self.gp_part(Xt, 1, Xt, 1, grams.get("tt")) + H_t @ H_t.transpose(0, 1))

    def _factor_grams(self, Xs, Xt) -> dict:
        """The factor's blocks at its current (fixed) weights, without gradient."""
        with torch.no_grad():
            return {"ss": self.factor_(Xs, 0, Xs, 0), "st": self.factor_(Xs, 0, Xt, 1),
                    "tt": self.factor_(Xt, 1, Xt, 1)}

    def _calibration(self, Xs, ys, Xt, yt) -> float:
        """``max(1, q / 1.645)``: ``q`` the conformal 90% quantile of the labelled target rows'
        standardised leave-one-out residuals in the exact GP on the fixed source batch and all
        labelled target rows (1 without ``calibrate`` or if the kernel breaks down)."""
        if not self.calibrate:
            return 1.0
        Xb, yb = self._source_batch(Xs, ys)
        rows = torch.arange(len(Xb), len(Xb) + len(Xt))
        try:
            scores = loo_scores(self._noisy_kernel(Xb, Xt), torch.cat([yb, yt]), rows)
        except torch.linalg.LinAlgError:
            return 1.0
        self.loo_scores_ = scores.numpy()
        q = conformal_quantile(self.loo_scores_, CALIBRATION_LEVEL)
        return max(1.0, q / Z90) if np.isfinite(q) else 1.0

    def _train(self, Xs, ys, Xt, yt, target_inputs, n_steps: int) -> None:
        """Initialise, warm-start and run ``n_steps`` Adam steps (see ``_train_steps``)."""
        for _ in self._train_steps(Xs, ys, Xt, yt, target_inputs, n_steps, 0):
            pass

    def _train_steps(self, Xs, ys, Xt, yt, target_inputs, n_steps: int, score_every: int):
        """Initialise (factor at uniform weights, L-BFGS warm start), then ``n_steps`` Adam steps
        on the objective. A generator: with ``score_every`` it yields the step count after the
        warm start (0) and every ``score_every`` steps, so the caller can score the parameters
        there; a non-finite loss ends training with the parameters from before that step."""
        rng = np.random.default_rng(self.random_state)
        base_s = Xs[_subset(rng, Xs.shape[0], self.n_base)]
        base_t = target_inputs[_subset(rng, target_inputs.shape[0], self.n_base)]
        self.factor_ = DistributionFactor(self._k_raw, base_s, base_t, self.hidden,
                                          self.random_state, self.rank_tol, self.factor)
        self._log_scales = torch.zeros(Xs.shape[1], dtype=torch.float64, requires_grad=True)
        amplitude0 = 1.0 / float(self._k_diag(Xt).detach().mean())
        self._log_amplitude = torch.tensor(np.log(amplitude0), requires_grad=True)
        self._log_noise = torch.tensor(np.log([0.1, 0.1]), requires_grad=True)
        self._cross = torch.tensor(0.5, dtype=torch.float64, requires_grad=self.transfer)
        self._log_mean_var = torch.tensor([0.0, np.log(0.1)], dtype=torch.float64,
                                          requires_grad=self.mean in ("linear", "domain-linear"))
        hyper = [self._log_amplitude, self._log_noise, self._log_scales]
        hyper += [self._cross] if self.transfer else []
        hyper += [self._log_mean_var] if self._log_mean_var.requires_grad else []
        if self.warm_start:
            Xb, yb = self._source_batch(Xs, ys)
            self._warm_start(hyper, Xb, yb, Xt, yt, self._factor_grams(Xb, Xt))
        if score_every:
            yield 0
        params = hyper + list(self.factor_.parameters())
        optimiser = torch.optim.Adam(params, lr=self.learning_rate)
        self.loss_curve_ = []
        with step_progress("DINO fit", n_steps, self.verbose and not score_every) as advance:
            for step in range(1, n_steps + 1):
                Xb, yb = Xs, ys
                if Xs.shape[0] > self.batch_size:
                    idx = torch.from_numpy(rng.choice(Xs.shape[0], self.batch_size, replace=False))
                    Xb, yb = Xs[idx], ys[idx]
                before = [p.detach().clone() for p in params]
                try:
                    loss = self._loss(Xb, yb, Xt, yt)
                except torch.linalg.LinAlgError:
                    loss = torch.tensor(float("nan"))
                if not torch.isfinite(loss):
                    with torch.no_grad():
                        for p, b in zip(params, before, strict=True):
                            p.copy_(b)
                    break
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                self.loss_curve_.append(float(loss.detach()))
                advance()
                if score_every and step % score_every == 0:
                    yield step

    def _warm_start(self, params, Xb, yb, Xt, yt, grams: dict) -> None:
        """Fit amplitude, noises, input scales, ``lambda`` and the mean's slope variances at
        uniform weights first (the adaptive GP with lambda = mean-embedding cosine), by L-BFGS on
        one source batch (ours: Adam alone needed many more steps to reach these); the factor
        is fixed meanwhile, so its blocks ``grams`` are computed once."""
        optimiser = torch.optim.LBFGS(params, lr=0.5, max_iter=50, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimiser.zero_grad()
            loss = self._loss(Xb, yb, Xt, yt, grams)
            loss.backward()
            return loss

        try:
            optimiser.step(closure)
        except torch.linalg.LinAlgError:
            pass  # L-BFGS stepped into a broken kernel: keep its last finite point

    def _loss(self, Xb, yb, Xt, yt, grams: dict | None = None) -> torch.Tensor:
        """The training objective per target value (see ``objective``)."""
        if self.objective == "joint":
            y = torch.cat([yb, yt])
            return gaussian_nll(self._noisy_kernel(Xb, Xt, grams), y) / y.numel()
        noise = self._noises()
        K_ss, K_st, K_tt = self._blocks(Xb, Xt, grams)
        K_ss = K_ss + noise[0] * torch.eye(len(Xb), dtype=Xb.dtype)
        K_tt = K_tt + noise[1] * torch.eye(len(Xt), dtype=Xt.dtype)
        return conditional_nll(K_ss, K_st, K_tt, yb, yt) / yt.numel()

    # -- posterior ------------------------------------------------------------------------------
    def posterior_method(self, n_train: int) -> str:
        """Which posterior ``fit`` uses for ``n_train`` training rows."""
        if self.posterior != "auto":
            return self.posterior
        return "exact" if n_train <= self.exact_max else "nystrom"

    def _set_training(self, Xs, ys, Xt, yt) -> None:
        """Keep the training set and its noise; ``method_`` says which posterior it gets."""
        noise = self._noises()
        n_s, n_t = Xs.shape[0], Xt.shape[0]
        self._X_train, self._y_train, self._n_source = torch.cat([Xs, Xt]), torch.cat([ys, yt]), n_s
        self._noise_train = torch.cat([noise[0].expand(n_s), noise[1].expand(n_t)])
        self.method_ = self.posterior_method(n_s + n_t)
        self.exact_ = self.method_ == "exact"
        if self.method_ == "cg":
            self._operator = self.training_kernel(Xs, Xt)

    def _build_posterior(self, Xs, ys, Xt, yt) -> None:
        self._set_training(Xs, ys, Xt, yt)
        noise_vec, y = self._noise_train, self._y_train
        n_s, n_t = Xs.shape[0], Xt.shape[0]
        if self.method_ == "exact":
            self._posterior = ExactPosterior(self._lean_kernel(Xs, Xt), y)
            return
        if self.method_ == "nystrom":
            self._build_nystrom(Xs, Xt, noise_vec, y)
            return
        chosen = landmarks(self._operator, self.landmark_pool(n_s, n_t, 4 * self.n_inducing),
                           self.n_inducing)
        K_nm = self._operator.entries(slice(None), chosen)
        self.landmarks_ = chosen.numpy()
        posterior = IterativePosterior(self._operator.row_blocks(self.cache_gib * 2**30),
                                       K_nm, K_nm[chosen], noise_vec, y, self.cg_tol)
        self._weights = posterior.weights
        self.cg_iterations_, self.cg_residual_ = posterior.iterations, posterior.residual

    def _lean_kernel(self, Xs, Xt, block: int = 1024) -> torch.Tensor:
        """The noisy training kernel assembled in row blocks into one n x n buffer: about
        8 n^2 bytes at peak besides the Cholesky factor (the plain assembly held several n x n
        temporaries: 3.0 GiB at 6,050 rows)."""
        X = torch.cat([Xs, Xt])
        n_s, n = Xs.shape[0], Xs.shape[0] + Xt.shape[0]
        dom = (torch.arange(n) >= n_s).long()
        K = X.new_empty((n, n))
        for start in range(0, n, block):
            rows = slice(start, min(start + block, n))
            K[rows] = self._gp_mixed(X[rows], dom[rows], X, dom)
            H = self._mean_mixed(X[rows], dom[rows])
            K[rows] += H @ self._mean_mixed(X, dom).transpose(0, 1)
        K.diagonal().add_(self._noise_train)
        return K

    def _build_nystrom(self, Xs, Xt, noise_vec, y) -> None:
        """FITC on ``n_inducing`` inducing points: every labelled target row, then rows picked
        greedily by a partial pivoted Cholesky of the kernel's GP part on a pool of training
        rows (the labelled target rows and random source rows, ``2 n_inducing`` in all): each
        time the row with the most prior variance not yet explained (ours)."""
        n_s, n_t = Xs.shape[0], Xt.shape[0]
        pool = self.landmark_pool(n_s, n_t, 2 * self.n_inducing)
        X_pool = self._X_train[pool]
        d_pool = (pool >= n_s).long()
        E = X_pool.new_empty((len(pool), self.factor_.rank))
        for a in (0, 1):
            members = (d_pool == a).nonzero().squeeze(1)
            E[members] = self._embed(X_pool[members], a)
        amp, scales = self._amplitude(), self._log_scales.clamp(-12.0, 12.0).exp()
        lam = self._cross_weight(0, 1)

        def column(p: int) -> torch.Tensor:
            k = self._k_raw(X_pool * scales, X_pool[p:p + 1] * scales)[:, 0]
            same = (d_pool == d_pool[p]).to(k.dtype)
            return amp * k * (E @ E[p]) * (same + (1 - same) * lam)

        diag = self._gp_diag_mixed(X_pool, d_pool)
        targets = (d_pool == 1).nonzero().squeeze(1)
        chosen = pool[greedy_pivots(column, diag, self.n_inducing, first=targets)]
        self.landmarks_ = chosen.numpy()
        self._Z = self._X_train[chosen]
        self._Z_domain = (chosen >= n_s).long()
        K_mm = self._gp_mixed(self._Z, self._Z_domain, self._Z, self._Z_domain)

        def rows(start: int, stop: int):
            X = self._X_train[start:stop]
            dom = (torch.arange(start, stop) >= n_s).long()
            K_bm = self._gp_mixed(X, dom, self._Z, self._Z_domain)
            return K_bm, self._gp_diag_mixed(X, dom), self._mean_mixed(X, dom)

        n = n_s + n_t
        with step_progress("DINO posterior (Nystrom)", n, self.verbose) as advance:
            self._posterior = NystromPosterior(K_mm, rows, n, noise_vec, y, advance=advance)

    def _gp_mixed(self, X1, d1, X2, d2) -> torch.Tensor:
        """The GP part between rows of mixed domains (``d`` 0 source, 1 target per row)."""
        out = X1.new_zeros((len(X1), len(X2)))
        for a in (0, 1):
            ra = (d1 == a).nonzero().squeeze(1)
            for b in (0, 1):
                rb = (d2 == b).nonzero().squeeze(1)
                if len(ra) and len(rb):
                    out[ra.unsqueeze(1), rb.unsqueeze(0)] = self.gp_part(X1[ra], a, X2[rb], b)
        return out

    def _gp_diag_mixed(self, X, dom) -> torch.Tensor:
        out = X.new_zeros(len(X))
        for a in (0, 1):
            rows = (dom == a).nonzero().squeeze(1)
            if len(rows):
                E = self.factor_.embedding(X[rows], a)
                out[rows] = self._amplitude() * self._k_diag(X[rows]) * (E * E).sum(1)
        return out

    def _mean_mixed(self, X, dom) -> torch.Tensor:
        source, target = self.mean_features(X, 0), self.mean_features(X, 1)
        return torch.where((dom == 0).unsqueeze(1), source, target)

    def _embed(self, X: torch.Tensor, domain: int, chunk: int = 4096) -> torch.Tensor:
        """The factor's embeddings ``e_a`` of many points, in row blocks (each block is
        n_chunk x n_base)."""
        return torch.cat([self.factor_.embedding(Xc, domain) for Xc in torch.split(X, chunk)])

    def landmark_pool(self, n_s: int, n_t: int, size: int) -> torch.Tensor:
        """Where landmarks are picked: every labelled target point (indices after the ``n_s``
        source points) and random source points, ``size`` in all (our choice)."""
        rng = np.random.default_rng(self.random_state + 1)
        n_pool_source = max(0, min(n_s, size - n_t))
        return torch.cat([_subset(rng, n_s, n_pool_source), torch.arange(n_s, n_s + n_t)])

    # -- predict --------------------------------------------------------------------------------
    def _predict_scaled(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [self._predict_block(Xc) for Xc in torch.split(X, 2048)]
        mean, var = torch.cat([m for m, _ in parts]), torch.cat([v for _, v in parts])
        return mean, (var + self._noises()[1]) * self.calibration_scale_**2

    def _predict_block(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent posterior mean and variance of target points ``X`` (one block of rows)."""
        E_star = self.factor_.embedding(X, 1)
        gp_prior = self._amplitude() * self._k_diag(X) * (E_star * E_star).sum(1)  # g_TT(x, x)
        H_star = self.mean_features(X, 1)
        prior = gp_prior + (H_star * H_star).sum(1)
        if self.method_ == "exact":
            Xs, Xt = self._X_train[: self._n_source], self._X_train[self._n_source:]
            K_star = torch.cat([self.dino_kernel(X, 1, Xs, 0), self.dino_kernel(X, 1, Xt, 1)], 1)
            return cast(ExactPosterior, self._posterior).predict(K_star, prior)
        if self.method_ == "nystrom":
            K_sm = self._gp_mixed(X, torch.ones(len(X), dtype=torch.long), self._Z,
                                  self._Z_domain)
            return cast(NystromPosterior, self._posterior).predict(K_sm, gp_prior, H_star)
        op = self._operator
        K_star = op.cross(X, self.factor_.embedding(X, 1),
                          self._domain_vector(1).expand(len(X), -1), H=H_star)
        variance = neighbour_variance(K_star, prior, op.diagonal(),
                                      lambda idx: op.entries(idx, idx), self._noise_train,
                                      self.n_neighbours)
        return K_star @ self._weights, variance

    # -- model files ----------------------------------------------------------------------------
    def fitted_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Everything ``predict`` needs as JSON-able settings and named float64 arrays (no
        Python objects): what ``dino/model_file.py`` writes to a model file. The exact posterior's
        Cholesky factor is not stored but recomputed by ``from_fitted_state`` (same inputs,
        same factor); the CG path stores its weights (a solve would take minutes), the Nystrom
        path its inducing points, weights and the factor of the weights' covariance."""
        settings = {"params": self.get_params(), "n_features_in": self.n_features_in_,
                    "n_outputs": self.n_outputs_, "y_is_1d": bool(self._y_is_1d),
                    "n_source": self._n_source, "method": self.method_,
                    "selected_steps": self.selected_steps_, "loss_curve": self.loss_curve_,
                    "validation_curve": self.validation_curve_,
                    "calibration_scale": self.calibration_scale_}
        if self.method_ == "cg":
            settings |= {"cg_iterations": self.cg_iterations_, "cg_residual": self.cg_residual_}
        arrays = {"y_mean": self.y_mean_, "y_scale": self.y_scale_,
                  "log_scales": self._log_scales, "log_amplitude": self._log_amplitude,
                  "log_noise": self._log_noise, "cross": self._cross,
                  "log_mean_var": self._log_mean_var}
        arrays |= {f"factor.{k}": v for k, v in self.factor_.state_dict().items()}
        if self.method_ == "nystrom":
            arrays |= {"inducing": self._Z, "inducing_domain": self._Z_domain,
                       "nystrom_weights": cast(NystromPosterior, self._posterior).weights,
                       "nystrom_chol": cast(NystromPosterior, self._posterior).chol}
        else:
            arrays |= {"X_train": self._X_train, "y_train": self._y_train}
        if self.method_ == "cg":
            arrays |= {"cg_weights": self._weights,
                       "landmarks": torch.from_numpy(self.landmarks_.astype(np.float64))}
        return settings, {k: np.array(torch.as_tensor(v).detach().numpy(), dtype=np.float64,
                                      order="C") for k, v in arrays.items()}

    @classmethod
    def from_fitted_state(cls, settings: dict, arrays: dict[str, np.ndarray]) -> DINORegressor:
        """The fitted estimator back from ``fitted_state()`` (KeyError/ValueError/RuntimeError
        on missing or mis-shaped parts; ``dino/model_file.py`` turns them into one error line)."""
        model = cls(**settings["params"])
        model._validate_params()
        t = {k: torch.from_numpy(np.array(v, dtype=np.float64)) for k, v in arrays.items()}
        model.n_features_in_, model.n_outputs_ = settings["n_features_in"], settings["n_outputs"]
        model._y_is_1d = settings["y_is_1d"]
        model.y_mean_, model.y_scale_ = arrays["y_mean"].copy(), arrays["y_scale"].copy()
        model.selected_steps_ = settings["selected_steps"]
        model.calibration_scale_ = float(settings["calibration_scale"])
        model.loss_curve_, model.validation_curve_ = settings["loss_curve"], [
            tuple(v) for v in settings["validation_curve"]]
        model._log_scales, model._log_amplitude = t["log_scales"], t["log_amplitude"]
        model._log_noise, model._cross = t["log_noise"], t["cross"]
        model._log_mean_var = t["log_mean_var"]
        model.factor_ = DistributionFactor(
            model._k_raw, t["factor.base_source"], t["factor.base_target"], model.hidden,
            model.random_state, model.rank_tol, model.factor,
            torch.cat([t["factor.factor_source"], t["factor.factor_target"]]))
        model.factor_.load_state_dict({k[len("factor."):]: v for k, v in t.items()
                                       if k.startswith("factor.")})
        method, n_s = settings["method"], settings["n_source"]
        with torch.no_grad():
            if method == "nystrom":
                model._restore_nystrom(t)
            else:
                X, y = t["X_train"], t["y_train"]
                if X.shape[1:] != (model.n_features_in_,) or y.shape != (len(X),
                                                                         model.n_outputs_):
                    raise ValueError(f"training arrays of shapes {tuple(X.shape)} and "
                                     f"{tuple(y.shape)} for {model.n_features_in_} features, "
                                     f"{model.n_outputs_} outputs")
                if method != model.posterior_method(len(X)):
                    raise ValueError(f"posterior '{method}' does not match {len(X)} training "
                                     f"rows and posterior='{model.posterior}'")
                if method == "exact":
                    model._build_posterior(X[:n_s], y[:n_s], X[n_s:], y[n_s:])
                else:
                    model._restore_cg(t, X, y, n_s, settings)
            model._record_fitted()
        return model

    def _restore_nystrom(self, t: dict[str, torch.Tensor]) -> None:
        Z, Z_domain = t["inducing"], t["inducing_domain"].long()
        weights, chol = t["nystrom_weights"], t["nystrom_chol"]
        if Z.shape[1:] != (self.n_features_in_,) or weights.shape[1:] != (self.n_outputs_,) or (
                chol.shape != (len(weights), len(weights))):
            raise ValueError(f"Nystrom arrays of shapes {tuple(Z.shape)}, "
                             f"{tuple(weights.shape)}, {tuple(chol.shape)}")
        self.method_, self.exact_ = "nystrom", False
        self._Z, self._Z_domain = Z, Z_domain
        posterior = NystromPosterior.__new__(NystromPosterior)
        posterior.L_m = cholesky(self._gp_mixed(Z, Z_domain, Z, Z_domain))
        posterior.weights, posterior.chol = weights, chol
        self._posterior = posterior

    def _restore_cg(self, t, X, y, n_s: int, settings: dict) -> None:
        self._set_training(X[:n_s], y[:n_s], X[n_s:], y[n_s:])
        if t["cg_weights"].shape != y.shape:
            raise ValueError(f"CG weights of shape {tuple(t['cg_weights'].shape)}, targets "
                             f"{tuple(y.shape)}")
        self._weights = t["cg_weights"]
        self.landmarks_ = t["landmarks"].numpy().astype(np.int64)
        self.cg_iterations_ = settings["cg_iterations"]
        self.cg_residual_ = settings["cg_residual"]


def _subset(rng: np.random.Generator, n: int, size: int) -> torch.Tensor:
    """Indices of a random subset of ``min(n, size)`` rows (all rows, in order, if it fits)."""
    if n <= size:
        return torch.arange(n)
    return torch.from_numpy(np.sort(rng.choice(n, size, replace=False)))

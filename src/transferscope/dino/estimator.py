"""``DINORegressor``: distribution-informed GP regression with an infinite-width network kernel.

Kernel between a point ``x`` of domain ``a`` and ``x'`` of domain ``b`` (0 source, 1 target):
``K_ab(x, x') = amplitude * k(x, x') * g_ab(x, x')`` with ``k`` the NNGP (DINO-INIT) or NTK
(DINO-TRAIN) kernel and ``g`` the distribution factor (see ``distribution.py``), plus noise
``sigma_S^2`` / ``sigma_T^2`` on the diagonal. Fit maximises ``log p(y_T | y_S)`` with Adam on
source mini-batches; predict is the joint posterior over source and labelled target, by
Cholesky up to ``exact_max`` training points and beyond that by conjugate gradients on the exact
kernel with a Nystrom preconditioner (``scalable.py``).
"""

from __future__ import annotations

import numpy as np
import torch

from transferscope.core.errors import input_error
from transferscope.core.progress import step_progress
from transferscope.dino.base import DomainRegressor
from transferscope.dino.distribution import FORMS, DistributionFactor
from transferscope.dino.gp import ExactPosterior, conditional_nll
from transferscope.dino.inputs import DomainData
from transferscope.dino.kernels import base_kernel, kernel_diag
from transferscope.dino.scalable import (
    IterativePosterior,
    LowRankProductKernel,
    landmarks,
    neighbour_variance,
)


class DINORegressor(DomainRegressor):
    """DINO-INIT (``kernel="nngp"``) or DINO-TRAIN (``kernel="ntk"``) for target-domain regression.

    Parameters: ``depth``, ``w_std``, ``b_std`` describe the infinite ReLU network, applied to
    inputs scaled per feature by learned scales (our addition: a fixed diagonal first layer, so
    ``k`` stays the exact NNGP/NTK of that network); ``n_base``
    caps the base samples per domain; ``hidden`` is the scorer's width; ``n_steps``,
    ``batch_size`` (source points per step) and ``learning_rate`` drive Adam, after an L-BFGS
    ``warm_start`` of amplitude, noises and input scales at uniform weights; ``exact_max`` is the
    largest training set solved by Cholesky. Larger sets use conjugate gradients (relative
    residual ``cg_tol``) preconditioned by ``n_inducing`` landmarks, keeping the kernel in memory
    up to ``cache_gib`` GiB: the mean is then exact to ``cg_tol``; the variance is conditioned
    on the ``n_neighbours`` most correlated training points (an upper bound of the exact one).

    ``factor``: ``"cosine"`` (ours: softmax weights, cosine of the re-weighted embeddings) or
    ``"authors"`` (the released code's signed ELU weights and unnormalised product; see
    ``distribution.py``). ``transfer`` adds the adaptive GP's learned cross-domain factor
    ``lambda`` (see ``embedding``; ours). ``validation_fraction`` of the labelled target points are held out to
    choose the number of Adam steps (scored at the warm start and every ``val_every`` steps,
    stopping after ``patience`` scores without improvement; the best step must beat the warm
    start by more than one standard error); the model is then refitted on all
    labelled target points with that many steps, i.e. the warm-start fit itself unless training
    beat it on the held-out labels. With 0 it runs all ``n_steps`` (the authors' procedure).
    """

    def __init__(
        self,
        kernel: str = "ntk",
        depth: int = 2,
        w_std: float = 1.0,
        b_std: float = 1.0,
        n_base: int = 200,
        hidden: int = 16,
        n_steps: int = 150,
        batch_size: int = 256,
        learning_rate: float = 0.01,
        factor: str = "cosine",
        transfer: bool = True,
        validation_fraction: float = 0.3,
        val_every: int = 10,
        patience: int = 3,
        exact_max: int = 3000,
        n_inducing: int = 1000,
        cg_tol: float = 1e-6,
        cache_gib: float = 4.0,
        n_neighbours: int = 256,
        warm_start: bool = True,
        rank_tol: float = 1e-8,
        random_state: int = 0,
        verbose: bool = False,
    ):
        self.kernel = kernel
        self.depth = depth
        self.w_std = w_std
        self.b_std = b_std
        self.n_base = n_base
        self.hidden = hidden
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.factor = factor
        self.transfer = transfer
        self.validation_fraction = validation_fraction
        self.val_every = val_every
        self.patience = patience
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
        """``K_ab(X1, X2) = amplitude * k * g_ab`` with the fitted factor (no noise)."""
        return (self._amplitude() * self._k(X1, X2)
                * (self.embedding(X1, a) @ self.embedding(X2, b).transpose(0, 1)))

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
        operator with O(n r) memory (``scalable.LowRankProductKernel``): what the large-n
        posterior solves with, and what ``benchmarks/dino_scale.py`` hands to other solvers."""
        E = torch.cat([self._embed(Xs, 0, unit=True), self._embed(Xt, 1, unit=True)])
        C = torch.cat([self._domain_vector(0).expand(len(Xs), -1),
                       self._domain_vector(1).expand(len(Xt), -1)])
        return LowRankProductKernel(self._k, self._k_diag, torch.cat([Xs, Xt]), E, C,
                                    self._amplitude())

    def _amplitude(self) -> torch.Tensor:
        return self._log_amplitude.clamp(-12.0, 12.0).exp()

    def _noises(self) -> torch.Tensor:
        return self._log_noise.clamp(-12.0, 12.0).exp() + 1e-6

    # -- fit ------------------------------------------------------------------------------------
    def _fit_scaled(self, data: DomainData) -> None:
        if self.kernel not in ("nngp", "ntk"):
            raise input_error("DINORegressor", "kernel", self.kernel, "'nngp' or 'ntk'")
        if self.factor not in FORMS:
            raise input_error("DINORegressor", "factor", self.factor, "'cosine' or 'authors'")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise input_error("DINORegressor", "validation_fraction", self.validation_fraction,
                              "a number in [0, 1)")
        Xs, ys = torch.from_numpy(data.Xs), torch.from_numpy(data.ys)
        Xt, yt = torch.from_numpy(data.Xt), torch.from_numpy(data.yt)
        target_inputs = torch.from_numpy(data.target_inputs)
        n_steps = self.n_steps
        self.validation_curve_: list[tuple[int, float]] = []
        if self.validation_fraction > 0 and n_steps > 0:
            n_val = int(np.ceil(self.validation_fraction * Xt.shape[0]))
            if n_val < 2 or Xt.shape[0] - n_val < 2:
                n_steps = 0  # too few labels to check the scorer: keep the warm-start fit
            else:
                n_steps = self._select_steps(Xs, ys, Xt, yt, target_inputs, n_val)
        self.selected_steps_ = n_steps
        self._train(Xs, ys, Xt, yt, target_inputs, n_steps)
        with torch.no_grad():
            self._build_posterior(Xs, ys, Xt, yt)
            self._record_fitted()

    def _record_fitted(self) -> None:
        """The fitted hyper-parameters as plain numbers (``amplitude_``, ``noise_*_``, ...)."""
        self.amplitude_ = float(self._amplitude())
        self.noise_source_, self.noise_target_ = (float(v) for v in self._noises())
        self.input_scales_ = self._log_scales.clamp(-12.0, 12.0).exp().detach().numpy()
        self.lambda_ = float(torch.tanh(self._cross)) if self.transfer else 1.0

    def _select_steps(self, Xs, ys, Xt, yt, target_inputs, n_val: int) -> int:
        """Early stopping on held-out target labels: train on the other labelled target points,
        score the validation points' predictive mean (squared error, conditioned on a fixed
        source batch and the training targets) at the warm start and every ``val_every`` steps,
        and return the best step count; 0 (the warm-start fit) unless training beats it."""
        perm = np.random.default_rng(self.random_state + 2).permutation(Xt.shape[0])
        val, train = torch.from_numpy(perm[:n_val]), torch.from_numpy(perm[n_val:])
        Xv, yv = Xt[val], yt[val]
        Xb_idx = _subset(np.random.default_rng(self.random_state + 3), Xs.shape[0],
                         self.batch_size)
        Xb, yb = Xs[Xb_idx], ys[Xb_idx]

        errors: dict[int, np.ndarray] = {}
        best, since = 0, 0
        for step in self._train_steps(Xs, ys, Xt[train], yt[train], target_inputs,
                                      self.n_steps, self.val_every):
            with torch.no_grad():
                errors[step] = self._held_out_errors(Xb, yb, Xt[train], yt[train], Xv, yv)
            self.validation_curve_.append((step, float(errors[step].mean())))
            if errors[step].mean() < errors[best].mean():
                best, since = step, 0
            elif step:
                since += 1
                if since >= self.patience:
                    break
        # one-standard-error rule: training must beat the warm start by more than the
        # standard error of the paired per-point difference, or the warm-start fit is kept
        gain = errors[0] - errors[best]
        if best and np.isfinite(errors[0]).all() and not (
                gain.mean() > gain.std(ddof=1) / np.sqrt(len(gain))):
            best = 0
        return best

    def _held_out_errors(self, Xb, yb, Xtr, ytr, Xv, yv) -> np.ndarray:
        """Squared errors (summed over outputs) of the posterior mean at ``Xv`` given source
        batch + training targets (standardised units); infinite if the kernel broke down."""
        noise = self._noises()
        K = torch.cat([
            torch.cat([self.dino_kernel(Xb, 0, Xb, 0), self.dino_kernel(Xb, 0, Xtr, 1)], 1),
            torch.cat([self.dino_kernel(Xtr, 1, Xb, 0), self.dino_kernel(Xtr, 1, Xtr, 1)], 1),
        ])
        K = K + torch.diag(torch.cat([noise[0].expand(len(Xb)), noise[1].expand(len(Xtr))]))
        K_star = torch.cat([self.dino_kernel(Xv, 1, Xb, 0), self.dino_kernel(Xv, 1, Xtr, 1)], 1)
        try:
            mean = K_star @ ExactPosterior(K, torch.cat([yb, ytr])).weights
        except torch.linalg.LinAlgError:
            return np.full(len(Xv), np.inf)
        value = ((mean - yv) ** 2).sum(1).numpy()
        return np.where(np.isfinite(value), value, np.inf)

    def _train(self, Xs, ys, Xt, yt, target_inputs, n_steps: int) -> None:
        """Initialise, warm-start and run ``n_steps`` Adam steps (see ``_train_steps``)."""
        for _ in self._train_steps(Xs, ys, Xt, yt, target_inputs, n_steps, 0):
            pass

    def _train_steps(self, Xs, ys, Xt, yt, target_inputs, n_steps: int, score_every: int):
        """Initialise (factor at uniform weights, L-BFGS warm start), then ``n_steps`` Adam steps
        on the conditional likelihood. A generator: with ``score_every`` it yields the step count
        after the warm start (0) and every ``score_every`` steps, so the caller can score and stop
        it there; a non-finite loss ends training with the parameters from before that step."""
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
        params = [self._log_amplitude, self._log_noise, self._log_scales,
                  *self.factor_.parameters()] + ([self._cross] if self.transfer else [])
        if self.warm_start:
            self._warm_start(Xs, ys, Xt, yt, rng)
        if score_every:
            yield 0
        optimiser = torch.optim.Adam(params, lr=self.learning_rate)
        self.loss_curve_ = []
        with step_progress("DINO fit", n_steps, self.verbose) as advance:
            for step in range(1, n_steps + 1):
                if Xs.shape[0] <= self.batch_size:
                    Xb, yb = Xs, ys
                else:
                    idx = torch.from_numpy(rng.choice(Xs.shape[0], self.batch_size, replace=False))
                    Xb, yb = Xs[idx], ys[idx]
                before = [p.detach().clone() for p in params]
                try:
                    loss = self._conditional_loss(Xb, yb, Xt, yt)
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

    def _warm_start(self, Xs, ys, Xt, yt, rng: np.random.Generator) -> None:
        """Fit amplitude, noises and input scales with uniform weights first (the adaptive GP
        with lambda = mean-embedding cosine), by L-BFGS on one source batch (our choice: Adam
        alone needed many more steps to reach these)."""
        idx = _subset(rng, Xs.shape[0], self.batch_size)
        Xb, yb = Xs[idx], ys[idx]
        params = [self._log_amplitude, self._log_noise, self._log_scales]
        params += [self._cross] if self.transfer else []
        optimiser = torch.optim.LBFGS(params, lr=0.5, max_iter=25, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimiser.zero_grad()
            loss = self._conditional_loss(Xb, yb, Xt, yt)
            loss.backward()
            return loss

        optimiser.step(closure)

    def _conditional_loss(self, Xb, yb, Xt, yt) -> torch.Tensor:
        amp, noise = self._amplitude(), self._noises()
        k_ss, k_st, k_tt = self._k(Xb, Xb), self._k(Xb, Xt), self._k(Xt, Xt)
        eye_s = torch.eye(Xb.shape[0], dtype=torch.float64)
        eye_t = torch.eye(Xt.shape[0], dtype=torch.float64)
        e_s, e_t = self.embedding(Xb, 0), self.embedding(Xt, 1)
        K_ss = amp * k_ss * (e_s @ e_s.transpose(0, 1)) + noise[0] * eye_s
        K_st = amp * k_st * (e_s @ e_t.transpose(0, 1))
        K_tt = amp * k_tt * (e_t @ e_t.transpose(0, 1)) + noise[1] * eye_t
        return conditional_nll(K_ss, K_st, K_tt, yb, yt) / yt.numel()

    def _set_training(self, Xs, ys, Xt, yt) -> None:
        """Keep the training set and its noise; ``exact_`` says which posterior it gets."""
        noise = self._noises()
        n_s, n_t = Xs.shape[0], Xt.shape[0]
        self._X_train, self._y_train, self._n_source = torch.cat([Xs, Xt]), torch.cat([ys, yt]), n_s
        self._noise_train = torch.cat([noise[0].expand(n_s), noise[1].expand(n_t)])
        self.exact_ = n_s + n_t <= self.exact_max
        if not self.exact_:
            self._operator = self.training_kernel(Xs, Xt)

    def _build_posterior(self, Xs, ys, Xt, yt) -> None:
        self._set_training(Xs, ys, Xt, yt)
        noise_vec, y = self._noise_train, self._y_train
        if self.exact_:
            K = torch.cat([
                torch.cat([self.dino_kernel(Xs, 0, Xs, 0), self.dino_kernel(Xs, 0, Xt, 1)], 1),
                torch.cat([self.dino_kernel(Xt, 1, Xs, 0), self.dino_kernel(Xt, 1, Xt, 1)], 1),
            ])
            self._posterior = ExactPosterior(K + torch.diag(noise_vec), y)
            return
        n_s, n_t = Xs.shape[0], Xt.shape[0]
        chosen = landmarks(self._operator, self.landmark_pool(n_s, n_t), self.n_inducing)
        K_nm = self._operator.entries(slice(None), chosen)
        self.landmarks_ = chosen.numpy()
        posterior = IterativePosterior(self._operator.row_blocks(self.cache_gib * 2**30),
                                       K_nm, K_nm[chosen], noise_vec, y, self.cg_tol)
        self._weights = posterior.weights
        self.cg_iterations_, self.cg_residual_ = posterior.iterations, posterior.residual

    def _embed(self, X: torch.Tensor, domain: int, chunk: int = 4096, unit: bool = False
               ) -> torch.Tensor:
        """Embeddings of many points in row blocks (each block is n_chunk x n_base): the
        factor's ``e_a`` alone with ``unit``, else ``embedding`` (with the domain vector)."""
        embed = self.factor_.embedding if unit else self.embedding
        return torch.cat([embed(Xc, domain) for Xc in torch.split(X, chunk)])

    def landmark_pool(self, n_s: int, n_t: int) -> torch.Tensor:
        """Where landmarks are picked: every labelled target point (indices after the ``n_s``
        source points) and random source points, ``4 * n_inducing`` in all (our choice)."""
        rng = np.random.default_rng(self.random_state + 1)
        n_pool_source = max(0, min(n_s, 4 * self.n_inducing - n_t))
        return torch.cat([_subset(rng, n_s, n_pool_source), torch.arange(n_s, n_s + n_t)])

    # -- predict --------------------------------------------------------------------------------
    def _predict_scaled(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [self._predict_block(Xc) for Xc in torch.split(X, 2048)]
        mean, var = torch.cat([m for m, _ in parts]), torch.cat([v for _, v in parts])
        return mean, var + self._noises()[1]

    def _predict_block(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent posterior mean and variance of target points ``X`` (one block of rows)."""
        E_star = self.embedding(X, 1)
        prior = self._amplitude() * self._k_diag(X) * (E_star * E_star).sum(1)  # g_TT(x, x)
        if self.exact_:
            Xs, Xt = self._X_train[: self._n_source], self._X_train[self._n_source:]
            K_star = torch.cat([self.dino_kernel(X, 1, Xs, 0), self.dino_kernel(X, 1, Xt, 1)], 1)
            return self._posterior.predict(K_star, prior)
        op = self._operator
        K_star = op.cross(X, self.factor_.embedding(X, 1), self._domain_vector(1).expand(len(X), -1))
        variance = neighbour_variance(K_star, prior, op.diagonal(),
                                      lambda idx: op.entries(idx, idx), self._noise_train,
                                      self.n_neighbours)
        return K_star @ self._weights, variance

    # -- model files ----------------------------------------------------------------------------
    def fitted_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Everything ``predict`` needs as JSON-able settings and named float64 arrays (no
        Python objects): what ``dino/io.py`` writes to a model file. The exact posterior's
        Cholesky factor is not stored but recomputed by ``from_fitted_state`` (same inputs,
        same factor); the CG path stores its weights (a solve would take minutes)."""
        settings = {"params": self.get_params(), "n_features_in": self.n_features_in_,
                    "n_outputs": self.n_outputs_, "y_is_1d": bool(self._y_is_1d),
                    "n_source": self._n_source, "exact": bool(self.exact_),
                    "selected_steps": self.selected_steps_, "loss_curve": self.loss_curve_,
                    "validation_curve": self.validation_curve_}
        if not self.exact_:
            settings |= {"cg_iterations": self.cg_iterations_, "cg_residual": self.cg_residual_}
        arrays = {"y_mean": self.y_mean_, "y_scale": self.y_scale_,
                  "log_scales": self._log_scales, "log_amplitude": self._log_amplitude,
                  "log_noise": self._log_noise, "cross": self._cross,
                  "X_train": self._X_train, "y_train": self._y_train}
        arrays |= {f"factor.{k}": v for k, v in self.factor_.state_dict().items()}
        if not self.exact_:
            arrays |= {"cg_weights": self._weights,
                       "landmarks": torch.from_numpy(self.landmarks_.astype(np.float64))}
        return settings, {k: np.array(torch.as_tensor(v).detach().numpy(), dtype=np.float64,
                                      order="C") for k, v in arrays.items()}

    @classmethod
    def from_fitted_state(cls, settings: dict, arrays: dict[str, np.ndarray]) -> DINORegressor:
        """The fitted estimator back from ``fitted_state()`` (KeyError/ValueError/RuntimeError
        on missing or mis-shaped parts; ``dino/io.py`` turns them into one error line)."""
        model = cls(**settings["params"])
        t = {k: torch.from_numpy(np.array(v, dtype=np.float64)) for k, v in arrays.items()}
        model.n_features_in_, model.n_outputs_ = settings["n_features_in"], settings["n_outputs"]
        model._y_is_1d = settings["y_is_1d"]
        model.y_mean_, model.y_scale_ = arrays["y_mean"].copy(), arrays["y_scale"].copy()
        model.selected_steps_ = settings["selected_steps"]
        model.loss_curve_, model.validation_curve_ = settings["loss_curve"], [
            tuple(v) for v in settings["validation_curve"]]
        model._log_scales, model._log_amplitude = t["log_scales"], t["log_amplitude"]
        model._log_noise, model._cross = t["log_noise"], t["cross"]
        model.factor_ = DistributionFactor(
            model._k_raw, t["factor.base_source"], t["factor.base_target"], model.hidden,
            model.random_state, model.rank_tol, model.factor,
            torch.cat([t["factor.factor_source"], t["factor.factor_target"]]))
        model.factor_.load_state_dict({k[len("factor."):]: v for k, v in t.items()
                                       if k.startswith("factor.")})
        X, y, n_s = t["X_train"], t["y_train"], settings["n_source"]
        if X.shape[1:] != (model.n_features_in_,) or y.shape != (len(X), model.n_outputs_):
            raise ValueError(f"training arrays of shapes {tuple(X.shape)} and {tuple(y.shape)} "
                             f"for {model.n_features_in_} features, {model.n_outputs_} outputs")
        if not settings["exact"] and t["cg_weights"].shape != y.shape:
            raise ValueError(f"CG weights of shape {tuple(t['cg_weights'].shape)}, targets "
                             f"{tuple(y.shape)}")
        if (len(X) <= model.exact_max) != settings["exact"]:
            raise ValueError("the exact-posterior flag does not match the training set size")
        with torch.no_grad():
            if settings["exact"]:
                model._build_posterior(X[:n_s], y[:n_s], X[n_s:], y[n_s:])
            else:
                model._set_training(X[:n_s], y[:n_s], X[n_s:], y[n_s:])
                model._weights = t["cg_weights"]
                model.landmarks_ = arrays["landmarks"].astype(np.int64)
                model.cg_iterations_ = settings["cg_iterations"]
                model.cg_residual_ = settings["cg_residual"]
            model._record_fitted()
        return model


def _subset(rng: np.random.Generator, n: int, size: int) -> torch.Tensor:
    """Indices of a random subset of ``min(n, size)`` rows (all rows, in order, if it fits)."""
    if n <= size:
        return torch.arange(n)
    return torch.from_numpy(np.sort(rng.choice(n, size, replace=False)))


AUTHORS_PRESET = dict(kernel="nngp", factor="authors", depth=6, w_std=1.5, b_std=0.05,
                      n_base=5000, n_steps=10, learning_rate=0.1, batch_size=500,
                      validation_fraction=0.0, transfer=False)
"""The hyper-parameters of the authors' released code (github junwu6/Distribution-Informed-NN,
``main.py``): NNGP base kernel of depth 6, W_std 1.5, b_std 0.05, 5,000 base points, 10 Adam steps
at learning rate 0.1 on source batches of 500, no validation split."""


def authors_dino(**overrides) -> DINORegressor:
    """A ``DINORegressor`` with the authors' settings (``AUTHORS_PRESET``), overridable."""
    return DINORegressor(**(AUTHORS_PRESET | overrides))

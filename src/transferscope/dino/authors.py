"""``AuthorsDINO``: the authors' released DINO algorithm, re-implemented (read, not copied).

Source: github.com/junwu6/Distribution-Informed-NN (``DINO.py``, ``main.py``; commit 6b62f16).
What their code does, and what this class does the same way:

* Base kernel ``k``: the NNGP of ``stax.serial(*[Dense(1024, W_std=1.5, b_std=0.05), Relu] * 6,
  Dense(out, W_std=1.5, b_std=0.05))`` on the raw inputs (no length scale, no amplitude).
* Base samples: the first ``NUM_BASE = 5000`` source rows and the first 5000 *unlabelled*
  target rows; their Gram blocks ``G_SS``, ``G_TT``, ``G_ST`` are computed once.
* Weights of a point ``x`` of domain ``a`` over that domain's base samples:
  ``w = elu(v_a . [phi(x), phi(b_m)] + c_a)``, divided by their mean over ``m``, with ``phi`` a
  linear map to 8 features shared by both domains and ``(v_a, c_a)`` one linear layer per domain,
  all at PyTorch's default (random) initialisation. Factor: ``W_a G_ab W_b^T``, unnormalised.
* Kernel: ``K_ab = k * (W_a G_ab W_b^T)``, plus noise ``clamp(s_a, 1e-5, 1)`` (initialised at 1)
  on the diagonal blocks; test points are weighted as target points.
* Training: 10 Adam steps at learning rate 0.1 (no weight decay: their ``-weight_decay`` option
  is parsed but unused), each on a fresh random batch of 500 source rows (without replacement)
  and every labelled target row, minimising
  ``0.5 sum log diag chol(Sigma) + 0.5 tr(r^T Sigma^-1 r) + const`` with
  ``mu = K_TS K_SS^-1 y_S``, ``Sigma = K_TT - K_TS K_SS^-1 K_ST``, ``r = y_T - mu``, inverses by
  ``torch.inverse``; targets as given (not standardised); float32.
* Prediction: the posterior mean given the *last* training batch of 500 source rows and every
  labelled target row, ``[K_*S K_*T] K^-1 [y_S; y_T]`` (``inference``).

Departures, all ours, each needed to run it here (docs/dino.md lists them with the reasons):
base kernels computed in float64 by our arc-cosine recursion (equal to neural-tangents to
5e-14) and then cast to ``dtype``; batches of ``min(500, n_source)`` rows (theirs fails below
500); with no unlabelled target rows the labelled target inputs are the target base samples
(theirs needs unlabelled rows); a seeded generator for the initialisation and the batches
(theirs uses the global ones); the predictive std, which they do not compute (``cov_s`` is
commented out in ``inference``): the same GP's posterior variance plus the target noise. Their
``main.py`` calls ``DINN(...)``, a name ``DINO.py`` does not define (the class is ``DINO``), and
an unused RBF length scale is left out (it receives no gradient).
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch

from transferscope.dino.base import DomainRegressor
from transferscope.dino.inputs import DomainData
from transferscope.dino.kernels import base_kernel
from transferscope.dino.params import (
    BatchSize,
    BStd,
    Depth,
    Dtype,
    Kernel,
    LearningRate,
    NBase,
    NSteps,
    RandomState,
    WStd,
)

FEATURES = 8  # ``feat_dim`` in their DINO.py
DTYPES = {"float32": torch.float32, "float64": torch.float64}


class AuthorsDINO(DomainRegressor):
    """The authors' DINO as released (module docstring); ``kernel="nngp"`` is DINO-INIT, the
    only variant their ``main.py`` runs (``"ntk"`` swaps the base kernel, nothing else).

    A failure their code would also hit (a Cholesky of a covariance that is not positive
    definite in ``dtype``) raises ``torch.linalg.LinAlgError``, as theirs does.
    """

    standardise_targets = False

    def __init__(self, kernel: Kernel = "nngp", depth: Depth = 6, w_std: WStd = 1.5,
                 b_std: BStd = 0.05, n_base: NBase = 5000, n_steps: NSteps = 10,
                 learning_rate: LearningRate = 0.1, batch_size: BatchSize = 500,
                 dtype: Dtype = "float32", random_state: RandomState = 0):
        self.kernel = kernel
        self.depth = depth
        self.w_std = w_std
        self.b_std = b_std
        self.n_base = n_base
        self.n_steps = n_steps
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.dtype = dtype
        self.random_state = random_state

    def _kfn(self, X1: torch.Tensor, X2: torch.Tensor) -> torch.Tensor:
        """The base kernel (computed in float64, returned in ``dtype``)."""
        K = base_kernel(self.kernel, self.depth, self.w_std, self.b_std)(
            X1.to(torch.float64), X2.to(torch.float64))
        return K.to(DTYPES[self.dtype])

    def _fit_scaled(self, data: DomainData) -> None:
        dt = DTYPES[self.dtype]
        Xs, ys = (torch.from_numpy(a).to(dt) for a in (data.Xs, data.ys))
        Xt, yt = (torch.from_numpy(a).to(dt) for a in (data.Xt, data.yt))
        unlabelled = torch.from_numpy(data.Xu if len(data.Xu) else data.Xt).to(dt)
        self._base = (Xs[: self.n_base], unlabelled[: self.n_base])
        base_s, base_t = self._base
        self._G = {"ss": self._kfn(base_s, base_s), "tt": self._kfn(base_t, base_t),
                   "st": self._kfn(base_s, base_t)}
        with torch.random.fork_rng():  # their modules in their order, from our seed
            torch.manual_seed(self.random_state)
            for name in ("noise_s", "noise_t"):
                setattr(self, f"_{name}", torch.nn.Parameter(torch.ones(1, dtype=dt)))
            self._w = torch.nn.ModuleList([torch.nn.Linear(2 * FEATURES, 1),
                                           torch.nn.Linear(2 * FEATURES, 1)]).to(dt)
            self._feat = torch.nn.Linear(Xs.shape[1], FEATURES).to(dt)
        params = [self._noise_s, self._noise_t, *self._w.parameters(), *self._feat.parameters()]
        optimiser = torch.optim.Adam(params, lr=self.learning_rate)
        rng = np.random.default_rng(self.random_state)
        batch = min(self.batch_size, Xs.shape[0])
        self.loss_curve_ = []
        for _ in range(self.n_steps):
            idx = torch.from_numpy(rng.choice(Xs.shape[0], batch, replace=False))
            self._batch = (Xs[idx], ys[idx])
            optimiser.zero_grad()
            loss = self._loss(*self._batch, Xt, yt)
            loss.backward()
            optimiser.step()
            self.loss_curve_.append(float(loss.detach()))
        if not self.n_steps:
            idx = torch.from_numpy(rng.choice(Xs.shape[0], batch, replace=False))
            self._batch = (Xs[idx], ys[idx])
        self._target = (Xt, yt)

    def weights(self, X: torch.Tensor, domain: str) -> torch.Tensor:
        """Their ``Kernel_P``: (n, M) weights, each row divided by its mean (signed)."""
        base = self._base[0] if domain == "s" else self._base[1]
        layer = cast(torch.nn.Linear, self._w[0] if domain == "s" else self._w[1])
        fx, fb = self._feat(X), self._feat(base)
        scores = (fx @ layer.weight[0, :FEATURES]).unsqueeze(1) + (
            fb @ layer.weight[0, FEATURES:]).unsqueeze(0) + layer.bias
        w = torch.nn.functional.elu(scores)
        return w / w.mean(1, keepdim=True)

    def factor(self, X1: torch.Tensor, a: str, X2: torch.Tensor, b: str) -> torch.Tensor:
        """``W_a G_ab W_b^T`` with their block choice (target and test points use ``G_TT``)."""
        G = self._G["ss"] if a == b == "s" else (self._G["tt"] if a == b == "t"
                                                 else self._G["st"])
        return self.weights(X1, a) @ G @ self.weights(X2, b).transpose(0, 1)

    def _blocks(self, Xb, Xt):
        noise_s = self._noise_s.clamp(1e-5, 1.0)
        noise_t = self._noise_t.clamp(1e-5, 1.0)
        K_src = self._kfn(Xb, Xb) * self.factor(Xb, "s", Xb, "s") + noise_s * torch.eye(
            len(Xb), dtype=Xb.dtype)
        K_tgt = self._kfn(Xt, Xt) * self.factor(Xt, "t", Xt, "t") + noise_t * torch.eye(
            len(Xt), dtype=Xt.dtype)
        K_cos = self._kfn(Xb, Xt) * self.factor(Xb, "s", Xt, "t")
        return K_src, K_cos, K_tgt

    def _loss(self, Xb, yb, Xt, yt) -> torch.Tensor:
        """Their training loss (``DINO.forward``), constant included."""
        K_src, K_cos, K_tgt = self._blocks(Xb, Xt)
        K_src_inv = torch.inverse(K_src)
        mu = K_cos.transpose(0, 1) @ K_src_inv @ yb
        cov = K_tgt - K_cos.transpose(0, 1) @ K_src_inv @ K_cos
        r = yt - mu
        return (0.5 * torch.log(torch.diagonal(torch.linalg.cholesky(cov))).sum()
                + 0.5 * torch.trace(r.transpose(0, 1) @ torch.inverse(cov) @ r)
                + 0.5 * len(Xb) * np.log(2 * np.pi))

    def _predict_scaled(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dt = DTYPES[self.dtype]
        X = X.to(dt)
        Xb, yb = self._batch
        Xt, yt = self._target
        K_src, K_cos, K_tgt = self._blocks(Xb, Xt)
        K = torch.cat([torch.cat([K_src, K_cos], 1), torch.cat([K_cos.transpose(0, 1), K_tgt], 1)])
        K_ts = torch.cat([self._kfn(Xb, X) * self.factor(Xb, "s", X, "t"),
                          self._kfn(Xt, X) * self.factor(Xt, "t", X, "t")])
        K_inv = torch.inverse(K)
        mean = K_ts.transpose(0, 1) @ K_inv @ torch.cat([yb, yt])
        prior = self._kfn(X, X).diagonal() * (
            self.weights(X, "t") @ self._G["tt"] * self.weights(X, "t")).sum(1)
        var = (prior - (K_ts * (K_inv @ K_ts)).sum(0)).clamp_min(0.0)
        noise_t = self._noise_t.clamp(1e-5, 1.0)
        return mean.to(torch.float64), (var + noise_t).to(torch.float64)

    # -- model files ----------------------------------------------------------------------------
    def fitted_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """JSON-able settings and named float64 arrays for ``dino/model_file.py`` (see
        ``DINORegressor.fitted_state``); the Gram blocks are recomputed on loading."""
        settings = {"estimator": "AuthorsDINO", "params": self.get_params(),
                    "n_features_in": self.n_features_in_, "n_outputs": self.n_outputs_,
                    "y_is_1d": bool(self._y_is_1d), "loss_curve": self.loss_curve_}
        arrays = {"y_mean": self.y_mean_, "y_scale": self.y_scale_,
                  "base_source": self._base[0], "base_target": self._base[1],
                  "batch_X": self._batch[0], "batch_y": self._batch[1],
                  "target_X": self._target[0], "target_y": self._target[1],
                  "noise_s": self._noise_s, "noise_t": self._noise_t}
        arrays |= {f"w.{k}": v for k, v in self._w.state_dict().items()}
        arrays |= {f"feat.{k}": v for k, v in self._feat.state_dict().items()}
        return settings, {k: np.array(torch.as_tensor(v).detach().to(torch.float64).numpy(),
                                      dtype=np.float64, order="C") for k, v in arrays.items()}

    @classmethod
    def from_fitted_state(cls, settings: dict, arrays: dict[str, np.ndarray]) -> AuthorsDINO:
        """The fitted estimator back from ``fitted_state()``."""
        model = cls(**settings["params"])
        if model.dtype not in DTYPES:
            raise ValueError(f"dtype {model.dtype!r}")
        dt = DTYPES[model.dtype]
        t = {k: torch.from_numpy(np.array(v, dtype=np.float64)).to(dt) for k, v in arrays.items()}
        model.n_features_in_, model.n_outputs_ = settings["n_features_in"], settings["n_outputs"]
        model._y_is_1d = settings["y_is_1d"]
        model.y_mean_, model.y_scale_ = arrays["y_mean"].copy(), arrays["y_scale"].copy()
        model.loss_curve_ = settings["loss_curve"]
        model._base = (t["base_source"], t["base_target"])
        model._batch, model._target = (t["batch_X"], t["batch_y"]), (t["target_X"], t["target_y"])
        for part in (*model._base, model._batch[0], model._target[0]):
            if part.ndim != 2 or part.shape[1] != model.n_features_in_:
                raise ValueError(f"an input array of shape {tuple(part.shape)} for "
                                 f"{model.n_features_in_} features")
        model._noise_s, model._noise_t = t["noise_s"], t["noise_t"]
        model._w = torch.nn.ModuleList([torch.nn.Linear(2 * FEATURES, 1),
                                        torch.nn.Linear(2 * FEATURES, 1)]).to(dt)
        model._w.load_state_dict({k[2:]: v for k, v in t.items() if k.startswith("w.")})
        model._feat = torch.nn.Linear(model.n_features_in_, FEATURES).to(dt)
        model._feat.load_state_dict({k[5:]: v for k, v in t.items() if k.startswith("feat.")})
        base_s, base_t = model._base
        model._G = {"ss": model._kfn(base_s, base_s), "tt": model._kfn(base_t, base_t),
                    "st": model._kfn(base_s, base_t)}
        return model

"""A finite-width distribution-informed network whose infinite-width limit is DINO-TRAIN.

With the fitted factor's unit embeddings ``e_a(x)`` (so ``g_ab(x, x') = e_a(x) . e_b(x')``) and
a ReLU network ``N`` with ``r = dim e`` outputs in the NTK parameterisation, the network

    f(x) = sqrt(amplitude) * e_a(x) . (N_theta(s * x) - N_theta0(s * x))

has NTK ``amplitude * g_ab(x, x') * Theta_N(sx, sx')`` -> the DINO-TRAIN kernel as the width
grows (independent outputs share ``Theta_N``). Gradient descent on
``sum_i (f(x_i) - y_i)^2 / sigma_i^2 + ||theta - theta0||^2`` then converges, in the wide limit,
to the kernel predictor ``K_* (K + diag sigma^2)^-1 y``: DINO-TRAIN's posterior mean. The check
runs DINO with ``mean="none"``: the mean per domain is a linear model (its kernel term is exact,
nothing to approach), and its prior variance of 100 would make plain gradient descent slow.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from transferscope.dino.estimator import DINORegressor


class WideReLUNet(torch.nn.Module):
    """``Dense(w) -> ReLU`` x depth -> ``Dense(r)`` with NTK scaling ``W_std / sqrt(fan_in)``."""

    def __init__(self, n_in: int, width: int, n_out: int, depth: int, w_std: float,
                 b_std: float, generator: torch.Generator):
        super().__init__()
        sizes = [n_in] + [width] * depth + [n_out]
        self.weights = torch.nn.ParameterList(
            torch.nn.Parameter(torch.randn(a, b, generator=generator, dtype=torch.float64))
            for a, b in zip(sizes[:-1], sizes[1:]))
        self.biases = torch.nn.ParameterList(
            torch.nn.Parameter(torch.randn(b, generator=generator, dtype=torch.float64))
            for b in sizes[1:])
        self.w_std, self.b_std = w_std, b_std

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        h = X
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            h = self.w_std / math.sqrt(W.shape[0]) * (h @ W) + self.b_std * b
            if i < len(self.weights) - 1:
                h = torch.relu(h)
        return h


def _problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    Xs = rng.normal(size=(30, 2))
    Xt = rng.normal(size=(10, 2)) + 0.7
    Xq = rng.normal(size=(20, 2)) + 0.7
    return Xs, _labels(Xs), Xt, _labels(Xt) + 0.3, Xq


def _labels(X: np.ndarray) -> np.ndarray:
    return np.sin(2 * X[:, 0]) + 0.5 * X[:, 1]


def train_wide_network(model: DINORegressor, Xs, ys, Xt, yt, Xq, width: int, noise: float,
                       steps: int, seed: int) -> np.ndarray:
    """Train the distribution-informed network by full-batch gradient descent (heavy-ball
    momentum); return its (centred) predictions at target inputs ``Xq`` in model units."""
    to = torch.from_numpy
    scales = torch.from_numpy(model.input_scales_)
    with torch.no_grad():
        e_train = torch.cat([model.embedding(to(Xs), 0), model.embedding(to(Xt), 1)])
        e_query = model.embedding(to(Xq), 1)
    X_train = torch.cat([to(Xs), to(Xt)]) * scales
    y = torch.cat([to(ys), to(yt)])
    net = WideReLUNet(X_train.shape[1], width, e_train.shape[1], model.depth, model.w_std,
                      model.b_std, torch.Generator().manual_seed(seed))
    start = [p.detach().clone() for p in net.parameters()]
    with torch.no_grad():
        base_train, base_query = net(X_train), net(to(Xq) * scales)
    root_amp = math.sqrt(model.amplitude_)

    def output(X, e, base):
        return root_amp * (e * (net(X) - base)).sum(1)

    optimiser = torch.optim.SGD(net.parameters(), lr=0.5 * noise / len(y), momentum=0.9)
    for _ in range(steps):
        optimiser.zero_grad()
        fit_term = ((output(X_train, e_train, base_train) - y) ** 2).sum() / noise
        prior_term = sum(((p - p0) ** 2).sum() for p, p0 in zip(net.parameters(), start))
        (0.5 * (fit_term + prior_term)).backward()
        optimiser.step()
    with torch.no_grad():
        return output(to(Xq) * scales, e_query, base_query).numpy()


def kernel_predictor(model: DINORegressor, Xs, ys, Xt, yt, Xq, noise: float) -> np.ndarray:
    """DINO-TRAIN's posterior mean ``K_* (K + noise I)^-1 y`` from the analytic kernel."""
    to = torch.from_numpy
    with torch.no_grad():
        A, B, Q = to(Xs), to(Xt), to(Xq)
        K = torch.cat([torch.cat([model.dino_kernel(A, 0, A, 0), model.dino_kernel(A, 0, B, 1)], 1),
                       torch.cat([model.dino_kernel(B, 1, A, 0), model.dino_kernel(B, 1, B, 1)], 1)])
        K_star = torch.cat([model.dino_kernel(Q, 1, A, 0), model.dino_kernel(Q, 1, B, 1)], 1)
        y = torch.cat([to(ys), to(yt)])
        weights = torch.linalg.solve(K + noise * torch.eye(len(y), dtype=torch.float64), y)
        return (K_star @ weights).numpy()


def width_sweep(widths=(16, 64, 256, 1024, 4096), n_nets: int = 3, noise: float = 0.1,
                steps: int = 1500, seed: int = 0) -> pd.DataFrame:
    """Relative distance between trained finite networks and DINO-TRAIN, per width and init."""
    Xs, ys, Xt, yt, Xq = _problem(seed)
    model = DINORegressor(kernel="ntk", depth=1, n_base=8, n_steps=30, cv_folds=0, mean="none",
                          random_state=seed)
    model.fit(Xs, ys, Xt=Xt, yt=yt)
    ys_s, yt_s = ((v - model.y_mean_[0]) / model.y_scale_[0] for v in (ys, yt))
    reference = kernel_predictor(model, Xs, ys_s, Xt, yt_s, Xq, noise)
    rows = []
    for width in widths:
        for net_seed in range(n_nets):
            pred = train_wide_network(model, Xs, ys_s, Xt, yt_s, Xq, width, noise, steps,
                                      seed=1000 * width + net_seed)
            error = np.linalg.norm(pred - reference) / np.linalg.norm(reference)
            rows.append({"width": width, "init": net_seed, "relative_error": float(error)})
    return pd.DataFrame(rows)

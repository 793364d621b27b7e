"""The learned, non-uniform weighting of the distribution factor against an independent numpy
computation: weights from the scorer's parameters, the Gram matrix of the base samples computed
directly (not through its pivoted-Cholesky factor), and the factor from its definition."""

import numpy as np
import torch

from transferscope.dino import DINORegressor
from transferscope.dino.distribution import DistributionFactor
from transferscope.dino.kernels import ntk_kernel


def _k(A, B, depth=2, w_std=1.0, b_std=1.0):
    return ntk_kernel(torch.from_numpy(A), torch.from_numpy(B), depth, w_std, b_std).numpy()


def _data(seed=0):
    rng = np.random.default_rng(seed)
    B_s, B_t = rng.normal(size=(30, 3)), rng.normal(size=(25, 3)) + 0.7
    return B_s, B_t, rng.normal(size=(6, 3)), rng.normal(size=(5, 3)) + 0.5


def _numpy_phi(factor, X):
    layers = [(m.weight.detach().numpy(), m.bias.detach().numpy())
              for m in (factor.phi if factor.form == "cosine" else [factor.phi])
              if isinstance(m, torch.nn.Linear)]
    h = X @ layers[0][0].T + layers[0][1]
    if factor.form == "cosine":
        h = np.tanh(h) @ layers[1][0].T + layers[1][1]
    return h


def _numpy_weights(factor, X, B, domain):
    px, pb = _numpy_phi(factor, X), _numpy_phi(factor, B)
    if factor.form == "cosine":
        v = factor.pair_scorer[domain].detach().numpy()
        u = factor.base_scorer[domain].detach().numpy()
        scores = (px * v) @ pb.T + pb @ u
        e = np.exp(scores - scores.max(1, keepdims=True))
        return len(B) * e / e.sum(1, keepdims=True)
    w, bias = factor.pair_scorer[domain].detach().numpy(), factor.base_scorer[domain].item()
    z = (px @ w[:8])[:, None] + (pb @ w[8:])[None, :] + bias
    elu = np.where(z > 0, z, np.expm1(np.minimum(z, 0)))
    return elu / elu.mean(1, keepdims=True)


def _numpy_factor(factor, X1, a, X2, b, bases):
    A1, A2 = _numpy_weights(factor, X1, bases[a], a), _numpy_weights(factor, X2, bases[b], b)
    cross = A1 @ _k(bases[a], bases[b]) @ A2.T
    if factor.form == "elu":
        return cross / (len(bases[a]) * len(bases[b])), A1
    n1 = np.einsum("im,mn,in->i", A1, _k(bases[a], bases[a]), A1)
    n2 = np.einsum("im,mn,in->i", A2, _k(bases[b], bases[b]), A2)
    return cross / np.sqrt(np.outer(n1, n2)), A1


def _randomise(factor, seed, scale):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in (factor.pair_scorer, factor.base_scorer):
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=torch.float64))


def test_non_uniform_cosine_factor_matches_its_definition():
    B_s, B_t, X_s, X_t = _data()
    factor = DistributionFactor(lambda a, b: ntk_kernel(a, b, 2, 1.0, 1.0), torch.from_numpy(B_s),
                                torch.from_numpy(B_t), hidden=8, rank_tol=1e-13)
    _randomise(factor, 1, 2.0)
    bases = {0: B_s, 1: B_t}
    for (X1, a), (X2, b) in [((X_s, 0), (X_t, 1)), ((X_t, 1), (X_t, 1)), ((X_s, 0), (X_s, 0))]:
        expected, weights = _numpy_factor(factor, X1, a, X2, b, bases)
        got = factor(torch.from_numpy(X1), a, torch.from_numpy(X2), b).detach().numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
        # far from uniform: the check covers the learned case, not only its special case
        assert (weights.max(1) / weights.min(1)).min() > 3.0
        np.testing.assert_allclose(
            factor.weights(torch.from_numpy(X1), a).detach().numpy(), weights, rtol=1e-10)


def test_elu_signed_factor_matches_its_definition():
    B_s, B_t, X_s, X_t = _data(1)
    factor = DistributionFactor(lambda a, b: ntk_kernel(a, b, 2, 1.0, 1.0), torch.from_numpy(B_s),
                                torch.from_numpy(B_t), rank_tol=1e-13, form="elu")
    _randomise(factor, 2, 1.0)
    expected, weights = _numpy_factor(factor, X_s, 0, X_t, 1, {0: B_s, 1: B_t})
    got = factor(torch.from_numpy(X_s), 0, torch.from_numpy(X_t), 1).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    assert (weights < 0).any()  # ELU weights are signed


def test_trained_dino_kernel_uses_the_learned_weights():
    """After Adam steps the weights are non-uniform; the kernel DINO predicts with is
    amplitude * k(scaled inputs) * lambda^[a != b] * g_ab with g from its definition."""
    rng = np.random.default_rng(3)
    Xs, Xt = rng.normal(size=(60, 3)), rng.normal(size=(25, 3)) + 0.6
    ys, yt = np.sin(2 * Xs[:, 0]) + Xs[:, 1], np.sin(2 * Xt[:, 0]) - Xt[:, 1]
    model = DINORegressor(n_steps=40, n_base=20, batch_size=60, learning_rate=0.1, cv_folds=0,
                          mean="none", random_state=0).fit(Xs, ys, Xt=Xt, yt=yt)
    factor = model.factor_
    bases = {0: factor.base_source.numpy(), 1: factor.base_target.numpy()}
    s = model.input_scales_
    Xq = rng.normal(size=(4, 3)) + 0.6
    for a, X2 in ((0, Xs[:7]), (1, Xt[:6])):
        g, _ = _numpy_factor(factor, Xq, 1, X2, a, bases)
        lam = model.lambda_ if a == 0 else 1.0
        expected = model.amplitude_ * _k(Xq * s, X2 * s) * lam * g
        got = model.dino_kernel(torch.from_numpy(Xq), 1, torch.from_numpy(X2), a)
        np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-8, atol=1e-12)
    weights = _numpy_weights(factor, Xq, bases[1], 1)
    assert (weights.max(1) / weights.min(1)).min() > 1.05  # training moved off uniform

"""The authors' released algorithm (``AuthorsDINO``) against their code's formulas written out
again in numpy, loop for loop, and against their released settings (hand-checked in
github.com/junwu6/Distribution-Informed-NN, ``main.py`` and ``DINO.py``, commit 6b62f16)."""

import numpy as np
import torch

from transferscope.dino import AuthorsDINO
from transferscope.dino.kernels import nngp_kernel


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    Xs, Xt, Xu = rng.normal(size=(40, 3)), rng.normal(size=(10, 3)) + 0.3, rng.normal(size=(15, 3))
    ys = np.sin(Xs[:, 0]) + Xs[:, 1]
    yt = np.sin(Xt[:, 0]) + Xt[:, 1] + 0.2
    return Xs, ys, Xt, yt, Xu + 0.3


def _k(a, b, model):
    return nngp_kernel(torch.from_numpy(a), torch.from_numpy(b), model.depth, model.w_std,
                       model.b_std).numpy()


def _their_weights(model, X, domain):
    """``Kernel_P``: for each point, the domain's Linear(16, 1) on [feat(x), feat(b_m)] over
    the base samples, ELU, divided by the mean; a Python loop over points, as theirs."""
    feat_w = model._feat.weight.detach().numpy()
    feat_b = model._feat.bias.detach().numpy()
    layer = model._w[0 if domain == "s" else 1]
    w, c = layer.weight.detach().numpy()[0], layer.bias.detach().numpy()[0]
    base = (model._base[0] if domain == "s" else model._base[1]).numpy()
    fb = base @ feat_w.T + feat_b
    rows = []
    for x in X:
        fx = x @ feat_w.T + feat_b
        z = np.concatenate([np.repeat(fx[None], len(fb), 0), fb], 1) @ w + c
        e = np.where(z > 0, z, np.expm1(np.minimum(z, 0)))
        rows.append(e / e.mean())
    return np.array(rows)


def _their_kernel(model, X1, a, X2, b):
    base = {"s": model._base[0].numpy(), "t": model._base[1].numpy()}
    G = _k(base[a], base[b], model)
    return _k(X1, X2, model) * (_their_weights(model, X1, a) @ G @ _their_weights(model, X2, b).T)


def test_loss_and_prediction_are_their_formulas_written_out():
    """Random (their default) initialisation, float64: ``DINO.forward``'s loss
    ``0.5 sum log diag chol(Sigma) + 0.5 tr(r^T Sigma^-1 r) + 0.5 n_S log 2 pi`` and
    ``inference``'s mean ``K_*^T K^-1 [y_S; y_T]`` (last batch), by explicit numpy inverses."""
    Xs, ys, Xt, yt, Xu = _problem()
    model = AuthorsDINO(n_steps=0, n_base=20, batch_size=25, dtype="float64",
                        random_state=3).fit(Xs, ys, Xt=Xt, yt=yt, Xu=Xu)
    Xb, yb = (v.numpy() for v in model._batch)
    noise_s = float(model._noise_s.detach().clamp(1e-5, 1.0))
    noise_t = float(model._noise_t.detach().clamp(1e-5, 1.0))
    K_src = _their_kernel(model, Xb, "s", Xb, "s") + noise_s * np.eye(len(Xb))
    K_tgt = _their_kernel(model, Xt, "t", Xt, "t") + noise_t * np.eye(len(Xt))
    K_cos = _their_kernel(model, Xb, "s", Xt, "t")
    inv = np.linalg.inv(K_src)
    mu = K_cos.T @ inv @ yb
    cov = K_tgt - K_cos.T @ inv @ K_cos
    r = yt[:, None] - mu
    expected = (0.5 * np.log(np.diag(np.linalg.cholesky(cov))).sum()
                + 0.5 * np.trace(r.T @ np.linalg.inv(cov) @ r) + 0.5 * len(Xb) * np.log(2 * np.pi))
    got = model._loss(*model._batch, torch.from_numpy(Xt), torch.from_numpy(yt[:, None])).detach()
    np.testing.assert_allclose(float(got), expected, rtol=1e-8)
    Xq = Xu[:6]
    K = np.block([[K_src, K_cos], [K_cos.T, K_tgt]])
    K_ts = np.vstack([_their_kernel(model, Xb, "s", Xq, "t"), _their_kernel(model, Xt, "t", Xq, "t")])
    mean = K_ts.T @ np.linalg.inv(K) @ np.r_[yb, yt[:, None]]
    np.testing.assert_allclose(model.predict(Xq), mean[:, 0], rtol=1e-6)


def test_their_settings_and_procedure():
    """Hand-checked against main.py: six Dense(W_std=1.5, b_std=0.05) + Relu layers, 'nngp',
    NUM_BASE = 5000, epochs 10, lr 0.1, batches of 500 source rows (fewer here: all 40), base
    samples the *first* source and unlabelled target rows, targets not standardised, and the
    prediction conditioned on the last batch."""
    defaults = AuthorsDINO().get_params()
    assert {k: defaults[k] for k in ("kernel", "depth", "w_std", "b_std", "n_base", "n_steps",
                                     "learning_rate", "batch_size", "dtype")} == dict(
        kernel="nngp", depth=6, w_std=1.5, b_std=0.05, n_base=5000, n_steps=10,
        learning_rate=0.1, batch_size=500, dtype="float32")
    Xs, ys, Xt, yt, Xu = _problem(1)
    model = AuthorsDINO(n_base=12, dtype="float64").fit(Xs, ys, Xt=Xt, yt=yt, Xu=Xu)
    assert len(model.loss_curve_) == 10 and model.y_mean_[0] == 0.0 and model.y_scale_[0] == 1.0
    np.testing.assert_array_equal(model._base[0].numpy(), Xs[:12])
    np.testing.assert_array_equal(model._base[1].numpy(), Xu[:12])  # unlabelled only
    assert len(model._batch[0]) == 40  # min(500, n_source)
    # without unlabelled rows, the labelled target inputs are the base samples (ours)
    no_u = AuthorsDINO(n_base=12, n_steps=1, dtype="float64").fit(Xs, ys, Xt=Xt, yt=yt)
    np.testing.assert_array_equal(no_u._base[1].numpy(), Xt)

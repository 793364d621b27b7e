"""Defaults that do not hurt (held-out early stopping with a warm-start fallback), the learned
cross-domain factor against planted truths, and the authors' variant and preset."""

import numpy as np
import torch

from transferscope.dino import DINORegressor
from transferscope.dino.datasets import split_task, synthetic_task
from transferscope.dino.estimator import AUTHORS_PRESET, authors_dino
from transferscope.dino.kernels import nngp_kernel


def _planted(seed, relevant):
    """Target f(x) = sin(2 x0) + x1; the source shares f (relevant) or follows an unrelated
    function of another feature (irrelevant); both domains N(0, I)."""
    rng = np.random.default_rng(seed)
    Xs, Xt, Xq = rng.normal(size=(150, 3)), rng.normal(size=(40, 3)), rng.normal(size=(300, 3))

    def f(X):
        return np.sin(2 * X[:, 0]) + X[:, 1]

    ys = f(Xs) if relevant else 2 * np.cos(3 * Xs[:, 2])
    return Xs, ys + 0.1 * rng.normal(size=150), Xt, f(Xt) + 0.1 * rng.normal(size=40), Xq, f(Xq)


def test_learned_cross_factor_recovers_planted_relevance():
    """lambda near 1 when the source shares the target's function and the domains coincide, near
    0 when the source labels are unrelated (the cosine factor alone is pinned near 1 here, since
    the inputs are identically distributed). Three seeds each; observed margins: relevant >= 0.99
    (bound 0.9), unrelated <= 0.33 (bound 0.5)."""
    for seed in range(3):
        Xs, ys, Xt, yt, _, _ = _planted(seed, relevant=True)
        assert DINORegressor(n_steps=0, random_state=seed).fit(Xs, ys, Xt=Xt, yt=yt).lambda_ > 0.9
        Xs, ys, Xt, yt, _, _ = _planted(seed, relevant=False)
        lam = DINORegressor(n_steps=0, random_state=seed).fit(Xs, ys, Xt=Xt, yt=yt).lambda_
        assert abs(lam) < 0.5


def test_cross_blocks_are_lambda_times_the_factor_kernel():
    """Independent formula: K_ST = lambda * amplitude * k(s x, s x') * g_ST(x, x'), with g from
    the factor's own forward pass; K_SS carries no lambda."""
    Xs, ys, Xt, yt, Xq, _ = _planted(0, relevant=True)
    model = DINORegressor(kernel="nngp", n_steps=3, validation_fraction=0).fit(Xs, ys, Xt=Xt,
                                                                                yt=yt)
    A, B = torch.from_numpy(Xs[:7]), torch.from_numpy(Xq[:5])
    s = torch.from_numpy(model.input_scales_)
    with torch.no_grad():
        k = nngp_kernel(A * s, B * s, model.depth, model.w_std, model.b_std)
        expected = model.lambda_ * model.amplitude_ * k * model.factor_(A, 0, B, 1)
        np.testing.assert_allclose(model.dino_kernel(A, 0, B, 1), expected, rtol=1e-10)
        k_ss = nngp_kernel(A * s, A * s, model.depth, model.w_std, model.b_std)
        np.testing.assert_allclose(model.dino_kernel(A, 0, A, 0),
                                   model.amplitude_ * k_ss * model.factor_(A, 0, A, 0),
                                   rtol=1e-10)


def test_training_that_does_not_beat_the_warm_start_falls_back_to_it():
    """Adam at learning rate 1 wrecks the scorer; the held-out check must keep the warm-start
    fit, i.e. predictions equal to a model fitted with 0 steps (an independent configuration)."""
    Xs, ys, Xt, yt, Xq, _ = _planted(1, relevant=True)
    wild = DINORegressor(learning_rate=1.0, n_steps=40, random_state=1).fit(Xs, ys, Xt=Xt, yt=yt)
    assert wild.selected_steps_ == 0 and len(wild.validation_curve_) >= 2
    warm = DINORegressor(n_steps=0, validation_fraction=0, random_state=1).fit(Xs, ys, Xt=Xt,
                                                                               yt=yt)
    np.testing.assert_allclose(wild.predict(Xq), warm.predict(Xq), rtol=1e-10)


def test_defaults_do_not_overfit_the_few_target_labels():
    """The issue's failure: 150 unchecked Adam steps raised test MAE and broke the intervals.
    On the concept-shift task (100 labelled target points), per seed, the default must be within
    5% of the warm-start fit's MAE and cover 85-99% of test targets with its 95% interval; the
    unchecked 150 steps is shown to be the worse procedure on average (three seeds; observed on
    seed 0: default MAE 0.128, coverage 0.94; unchecked MAE 0.209, coverage 0.14: wide margins
    for every bound)."""
    task = synthetic_task("concept", 1.0)
    maes_default, maes_unchecked = [], []
    for seed in range(3):
        sp = split_task(task, seed, 100, 150, 300)
        fit = dict(Xt=sp.Xt, yt=sp.yt, Xu=sp.Xtest)
        default = DINORegressor(random_state=seed).fit(sp.Xs, sp.ys, **fit)
        warm = DINORegressor(n_steps=0, random_state=seed).fit(sp.Xs, sp.ys, **fit)
        unchecked = DINORegressor(validation_fraction=0, random_state=seed).fit(sp.Xs, sp.ys,
                                                                                  **fit)
        mean, std = default.predict(sp.Xtest, return_std=True)
        mae = np.abs(mean - sp.ytest).mean()
        assert mae <= 1.05 * np.abs(warm.predict(sp.Xtest) - sp.ytest).mean()
        assert 0.85 <= (np.abs(mean - sp.ytest) <= 1.96 * std).mean() <= 0.99
        maes_default.append(mae)
        maes_unchecked.append(np.abs(unchecked.predict(sp.Xtest) - sp.ytest).mean())
    assert np.mean(maes_default) < np.mean(maes_unchecked)


def test_authors_factor_is_their_formula_written_out():
    """alpha = elu(w . [phi(x), phi(b)] + c) / mean_m(...) (signed), and
    g_ab = alpha_a^T k(B_a, B_b) alpha_b / (M_a M_b), computed here in numpy from the raw
    kernel, not through the factor's pivoted-Cholesky embedding."""
    rng = np.random.default_rng(3)
    Xs, ys, Xt, yt, Xq, _ = _planted(3, relevant=True)
    model = DINORegressor(factor="authors", kernel="nngp", n_steps=0, n_base=30,
                          validation_fraction=0, transfer=False).fit(Xs, ys, Xt=Xt, yt=yt)
    f = model.factor_
    with torch.no_grad():
        f.pair_scorer.copy_(torch.from_numpy(rng.normal(size=f.pair_scorer.shape)))
        f.base_scorer.copy_(torch.from_numpy(rng.normal(size=2) * 0.3))
        W, c = f.phi.weight.numpy(), f.phi.bias.numpy()
        bases = [f.base_source.numpy(), f.base_target.numpy()]

        def alpha(X, a):
            px, pb = X @ W.T + c, bases[a] @ W.T + c
            w = f.pair_scorer[a].numpy()
            z = (px @ w[:8])[:, None] + (pb @ w[8:])[None, :] + float(f.base_scorer[a])
            e = np.where(z > 0, z, np.expm1(z))
            return e / e.mean(1, keepdims=True)

        A, B = Xs[:6], Xq[:4]
        for a, b, P, Q in ((0, 1, A, B), (1, 1, B, B), (0, 0, A, A)):
            G = nngp_kernel(torch.from_numpy(bases[a]), torch.from_numpy(bases[b]),
                            model.depth, model.w_std, model.b_std).numpy()
            expected = alpha(P, a) @ G @ alpha(Q, b).T / (len(bases[a]) * len(bases[b]))
            got = f(torch.from_numpy(P), a, torch.from_numpy(Q), b).numpy()
            np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-12)
        assert (alpha(A, 0) < 0).any()  # signed weights, unlike the softmax form


def test_authors_preset_is_their_released_settings_and_fits():
    """Hand-checked against main.py of github.com/junwu6/Distribution-Informed-NN: six
    Dense(W_std=1.5, b_std=0.05) + Relu layers, NUM_BASE = 5000, 'nngp', epochs 10, lr 0.1,
    batches of 500 source points."""
    assert {k: AUTHORS_PRESET[k] for k in ("kernel", "depth", "w_std", "b_std", "n_base",
                                           "n_steps", "learning_rate", "batch_size")} == dict(
        kernel="nngp", depth=6, w_std=1.5, b_std=0.05, n_base=5000, n_steps=10,
        learning_rate=0.1, batch_size=500)
    Xs, ys, Xt, yt, Xq, fq = _planted(0, relevant=True)
    model = authors_dino(n_base=100).fit(Xs, ys, Xt=Xt, yt=yt)
    assert model.factor == "authors" and model.depth == 6 and len(model.loss_curve_) == 10
    # it learns: better than predicting the labelled target mean
    assert np.abs(model.predict(Xq) - fq).mean() < np.abs(yt.mean() - fq).mean()


def test_goal_check_against_hand_computed_numbers():
    """Task A: DINO MAEs 0.10/0.12 (mean 0.11, std 0.01414), target-only 0.09/0.09, adaptive
    0.12/0.12 -> better baseline target-only, excess 0.02 > std: not met. Task B: DINO equal to
    the adaptive GP's mean: excess 0, met."""
    import pandas as pd

    from transferscope.dino import goal_check

    rows = []
    for task, maes in (("A", {"DINO-INIT (nngp)": (0.10, 0.12), "target-only GP": (0.09, 0.09),
                              "adaptive GP": (0.12, 0.12)}),
                       ("B", {"DINO-INIT (nngp)": (0.20, 0.22), "target-only GP": (0.30, 0.30),
                              "adaptive GP": (0.21, 0.21)})):
        for method, values in maes.items():
            for seed, mae in enumerate(values):
                rows.append({"task": task, "seed": seed, "method": method, "mae": mae,
                             "coverage95": 0.9})
    runs = pd.DataFrame(rows)
    runs = pd.concat([runs, runs[runs.method == "DINO-INIT (nngp)"].assign(
        method="DINO-TRAIN (ntk)")])
    table = goal_check(runs).set_index(["task", "method"])
    a, b = table.loc[("A", "DINO-INIT (nngp)")], table.loc[("B", "DINO-INIT (nngp)")]
    assert a["better baseline"] == "target-only GP" and a["excess"] == 0.02
    assert a["std"] == round(np.std([0.10, 0.12], ddof=1), 4) and not a["goal met"]
    assert b["better baseline"] == "adaptive GP" and b["excess"] == 0.0 and b["goal met"]

"""DINORegressor: scikit-learn conventions, Pipeline routing, multi-output, scale path, errors."""

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from transferscope.core.errors import InputError
from transferscope.dino import DINORegressor

FAST = dict(n_steps=5, n_base=30, batch_size=32)


def _problem(seed=0, n_s=60, n_t=12, n_u=10, outputs=1):
    rng = np.random.default_rng(seed)
    Xs = rng.normal(size=(n_s, 4)) * [1, 10, 0.1, 1]
    Xt = rng.normal(size=(n_t + n_u, 4)) * [1, 10, 0.1, 1] + 0.5
    W = rng.normal(size=(4, outputs))
    ys, yt = np.tanh(Xs / [1, 10, 0.1, 1]) @ W, np.tanh(Xt / [1, 10, 0.1, 1]) @ W + 0.2
    if outputs == 1:
        ys, yt = ys[:, 0], yt[:, 0]
    return Xs, ys, Xt[:n_t], yt[:n_t], Xt[n_t:], yt[n_t:]


def test_params_clone_and_score():
    model = DINORegressor(kernel="nngp", depth=3)
    assert model.get_params()["kernel"] == "nngp"
    model.set_params(kernel="ntk", depth=1)
    twin = clone(model)
    assert twin.get_params() == model.get_params() and twin is not model
    Xs, ys, Xt, yt, Xu, yu = _problem()
    model.set_params(**FAST).fit(Xs, ys, Xt=Xt, yt=yt, Xu=Xu)
    mean, std = model.predict(Xu, return_std=True)
    assert mean.shape == (10,) and std.shape == (10,) and (std > 0).all()
    r2 = model.score(Xu, yu)
    ss_res, ss_tot = ((yu - mean) ** 2).sum(), ((yu - yu.mean()) ** 2).sum()
    assert r2 == pytest.approx(1 - ss_res / ss_tot)


def test_pipeline_routes_domain_and_scales_every_row():
    """Stacked rows + ``domain`` survive a Pipeline; Xt passed as a fit param would not."""
    Xs, ys, Xt, yt, Xu, _ = _problem()
    X = np.vstack([Xs, Xt, Xu])
    y = np.r_[ys, yt, np.full(len(Xu), np.nan)]  # unlabelled rows: label ignored
    domain = np.r_[np.zeros(len(Xs)), np.ones(len(Xt)), np.full(len(Xu), 2)]
    pipe = make_pipeline(StandardScaler(), DINORegressor(**FAST))
    pipe.fit(X, y, dinoregressor__domain=domain)
    scaler = StandardScaler().fit(X)
    manual = DINORegressor(**FAST).fit(scaler.transform(Xs), ys, Xt=scaler.transform(Xt), yt=yt,
                                       Xu=scaler.transform(Xu))
    np.testing.assert_allclose(pipe.predict(Xu), manual.predict(scaler.transform(Xu)), rtol=1e-10)
    with sklearn.config_context(enable_metadata_routing=True):
        routed = make_pipeline(StandardScaler(), DINORegressor(**FAST).set_fit_request(domain=True))
        routed.fit(X, y, domain=domain)
        np.testing.assert_allclose(routed.predict(Xu), pipe.predict(Xu), rtol=1e-10)


def test_multi_output_means_equal_per_output_single_output_fits():
    """With the hyper-parameters held at their data-independent start (no training), a
    3-output fit must give, column by column, the mean and std of three 1-output fits: each
    output standardised on its own, solved against the one shared kernel."""
    Xs, ys, Xt, yt, Xu, _ = _problem(outputs=3)
    fixed = dict(FAST, n_steps=0, warm_start=False, calibrate=False)  # one interval scale per fit
    model = DINORegressor(**fixed).fit(Xs, ys, Xt=Xt, yt=yt)
    mean, std = model.predict(Xu, return_std=True)
    assert mean.shape == (10, 3) and std.shape == (10, 3)
    for j in range(3):
        single = DINORegressor(**fixed).fit(Xs, ys[:, j], Xt=Xt, yt=yt[:, j])
        mean_j, std_j = single.predict(Xu, return_std=True)
        np.testing.assert_allclose(mean[:, j], mean_j, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(std[:, j], std_j, rtol=1e-10)
    # and the outputs really differ (the check would not pass with one column copied)
    assert np.abs(mean[:, 0] - mean[:, 1]).max() > 0.1


def test_fit_lowers_its_objective():
    """Adam steps lower the joint negative log-likelihood (the default objective) and the
    paper's conditional one when that is chosen."""
    Xs, ys, Xt, yt, _, _ = _problem(n_t=30)
    for objective in ("joint", "conditional"):
        model = DINORegressor(n_steps=40, n_base=30, cv_folds=0, warm_start=False,
                              objective=objective).fit(Xs, ys, Xt=Xt, yt=yt)
        assert np.mean(model.loss_curve_[-5:]) < model.loss_curve_[0] - 0.1


def test_cg_posterior_matches_the_exact_posterior():
    """Same fit (the fit never sees the posterior setting), posterior by Cholesky vs by CG +
    landmarks."""
    Xs, ys, Xt, yt, Xu, _ = _problem(n_s=300, n_t=20)
    exact = DINORegressor(**FAST).fit(Xs, ys, Xt=Xt, yt=yt)
    approx = DINORegressor(**FAST, posterior="cg", n_inducing=40, cg_tol=1e-10).fit(
        Xs, ys, Xt=Xt, yt=yt)
    assert exact.method_ == "exact" and approx.method_ == "cg" and len(approx.landmarks_) == 40
    np.testing.assert_allclose(approx.predict(Xu), exact.predict(Xu), rtol=1e-7, atol=1e-8)
    # variance given the 30 most correlated points bounds the exact one; given all, equals it
    exact_std = exact.predict(Xu, return_std=True)[1]
    assert (approx.set_params(n_neighbours=30).predict(Xu, return_std=True)[1]
            >= exact_std * (1 - 1e-9)).all()
    full_std = approx.set_params(n_neighbours=320).predict(Xu, return_std=True)[1]
    np.testing.assert_allclose(full_std, exact_std, rtol=1e-7)


def test_above_exact_max_the_nystrom_posterior_is_chosen_and_is_exact_with_every_point():
    """``posterior="auto"`` switches to FITC above ``exact_max``; with every training row an
    inducing point FITC is the exact GP (its left-out diagonal is 0): same mean and std as the
    Cholesky posterior of the same fit. With 40 of 320 rows it is an approximation whose mean
    stays close on this smooth problem (mean absolute difference below 0.06 in target units,
    target std about 1; measured 0.03)."""
    Xs, ys, Xt, yt, Xu, _ = _problem(n_s=300, n_t=20)
    exact = DINORegressor(**FAST).fit(Xs, ys, Xt=Xt, yt=yt)
    every = DINORegressor(**FAST, exact_max=100, n_inducing=400).fit(Xs, ys, Xt=Xt, yt=yt)
    assert every.method_ == "nystrom" and exact.method_ == "exact"
    assert len(every.landmarks_) >= 300  # the GP part's numerical rank: nearly every row
    mean, std = every.predict(Xu, return_std=True)
    exact_mean, exact_std = exact.predict(Xu, return_std=True)
    np.testing.assert_allclose(mean, exact_mean, atol=1e-5)
    np.testing.assert_allclose(std, exact_std, rtol=1e-4)
    few = DINORegressor(**FAST, exact_max=100, n_inducing=40).fit(Xs, ys, Xt=Xt, yt=yt)
    assert len(few.landmarks_) == 40 and np.abs(few.predict(Xu) - exact_mean).mean() < 0.06


@pytest.mark.parametrize("case, message", [
    ("features", "Xt feature count = 3: expected 4 features"),
    ("nan", "X = 'nan at row 2, column 1': expected finite numbers"),
    ("inf", "yt = 'inf at row 0, column 0': expected finite numbers"),
    ("one_target", "labelled target rows = 1: expected at least 2"),
    ("one_domain", "domain = 'only [0.0]': expected both source (0) and labelled target (1)"),
])
def test_bad_input_is_one_clear_line(case, message):
    Xs, ys, Xt, yt, _, _ = _problem()
    kwargs = dict(Xt=Xt, yt=yt)
    if case == "features":
        kwargs["Xt"] = Xt[:, :3]
    elif case == "nan":
        Xs = Xs.copy()
        Xs[2, 1] = np.nan
    elif case == "inf":
        kwargs["yt"] = np.r_[np.inf, yt[1:]]
    elif case == "one_target":
        kwargs = dict(Xt=Xt[:1], yt=yt[:1])
    elif case == "one_domain":
        kwargs = dict(domain=np.zeros(len(Xs)))
    with pytest.raises(InputError) as info:
        DINORegressor(**FAST).fit(Xs, ys, **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_cost_estimate_names_the_posterior_and_the_exact_memory_it_avoids():
    """The line said before a fit: exact up to ``exact_max`` training rows, Nystrom above it
    (auto), with the exact posterior's memory (kernel + factor, 16 n^2 bytes) said beside it."""
    from transferscope.dino.cost import estimate_cost

    model = DINORegressor()
    small = estimate_cost(model, 9950, 50, 6)
    large = estimate_cost(model, 200000, 50, 6)
    assert small.method == "exact" and large.method == "nystrom"
    assert large.exact_gib == pytest.approx(16 * 200050**2 / 2**30)
    assert "200,050 training rows: nystrom posterior; estimated" in large.line()
    assert f"would need about {large.exact_gib:.0f} GiB" in large.line()
    assert large.peak_gib < 24 < large.exact_gib and small.seconds < large.seconds

"""Every estimator parameter is checked at ``fit`` from its one declaration (dino/params.py):
a bad value is one InputError naming the estimator, the parameter, the value and what was
expected, raised before any computation; scikit-learn's clone/get_params/set_params keep the
values as given (its convention: checks at fit, never in ``__init__``)."""

import numpy as np
import pytest
from sklearn.base import clone

from transferscope.core.errors import InputError
from transferscope.core.params import declarations
from transferscope.dino import (
    KMMGP,
    AdaptiveGP,
    AuthorsDINO,
    CoralGP,
    DINORegressor,
    DomainMeanGP,
    FeatureAugmentedGP,
    FineTunedMLP,
    PooledDomainAdapter,
    PooledGP,
    PooledRidge,
    SourceOnlyGP,
    TargetOnlyGP,
    TargetRidge,
)

KERNEL_GPS = (AdaptiveGP, CoralGP, DomainMeanGP, FeatureAugmentedGP, KMMGP, PooledGP,
              SourceOnlyGP, TargetOnlyGP)

# (parameter, bad value, the words of what was expected): written by hand, not read from the
# declarations, so a range that drifts fails here
DINO_CASES = [
    ("kernel", "rbf", "one of 'ntk', 'nngp'"),
    ("depth", 0, "a whole number >= 1 and <= 100"),
    ("depth", 2.5, "a whole number"),
    ("depth", 101, "<= 100"),
    ("w_std", 0.0, "a finite number > 0"),
    ("w_std", float("nan"), "a finite number > 0"),
    ("b_std", -0.1, "a finite number >= 0"),
    ("n_base", 0, "a whole number >= 1"),
    ("hidden", 0, "a whole number >= 1"),
    ("mean", "quadratic", "one of 'none', 'constant', 'linear', 'domain-linear'"),
    ("objective", "marginal", "one of 'joint', 'conditional'"),
    ("n_steps", -5, "a whole number >= 0 and <= 1000000"),
    ("n_steps", "10", "a whole number"),
    ("cv_folds", 1, "0 (no check) or a whole number >= 2"),
    ("cv_folds", -1, "a whole number >= 0"),
    ("min_train_labels", -1, "a whole number >= 0"),
    ("val_every", 0, "a whole number >= 1"),
    ("batch_size", 0, "a whole number >= 1"),
    ("learning_rate", 0.0, "a finite number > 0"),
    ("learning_rate", float("inf"), "a finite number > 0"),
    ("factor", "sine", "one of 'cosine', 'elu'"),
    ("transfer", "yes", "True or False"),
    ("calibrate", 1, "True or False"),
    ("posterior", "fast", "one of 'auto', 'exact', 'nystrom', 'cg'"),
    ("exact_max", -1, "a whole number >= 0"),
    ("n_inducing", 0, "a whole number >= 1"),
    ("cg_tol", 0.0, "a finite number > 0 and < 1"),
    ("cg_tol", 1.0, "a finite number > 0 and < 1"),
    ("cache_gib", -1.0, "a finite number >= 0"),
    ("n_neighbours", 0, "a whole number >= 1"),
    ("warm_start", None, "True or False"),
    ("rank_tol", -1e-3, "a finite number >= 0 and < 1"),
    ("random_state", -1, "a whole number >= 0"),
    ("random_state", None, "a whole number >= 0"),
    ("verbose", "no", "True or False"),
]
CASES = [(DINORegressor, *c) for c in DINO_CASES] + [
    (AuthorsDINO, "kernel", "rbf", "one of 'ntk', 'nngp'"),
    (AuthorsDINO, "depth", 0, "a whole number >= 1"),
    (AuthorsDINO, "w_std", -1.0, "a finite number > 0"),
    (AuthorsDINO, "b_std", -1.0, "a finite number >= 0"),
    (AuthorsDINO, "n_base", 0, "a whole number >= 1"),
    (AuthorsDINO, "n_steps", -1, "a whole number >= 0"),
    (AuthorsDINO, "learning_rate", 0.0, "a finite number > 0"),
    (AuthorsDINO, "batch_size", 0, "a whole number >= 1"),
    (AuthorsDINO, "dtype", "float16", "one of 'float32', 'float64'"),
    (AuthorsDINO, "random_state", -3, "a whole number >= 0"),
    (FineTunedMLP, "hidden", 0, "a whole number >= 1"),
    (FineTunedMLP, "pretrain_epochs", -1, "a whole number >= 0"),
    (FineTunedMLP, "finetune_steps", -1, "a whole number >= 0"),
    (FineTunedMLP, "learning_rate", 0.0, "a finite number > 0"),
    (FineTunedMLP, "finetune_lr", -1.0, "a finite number > 0"),
    (FineTunedMLP, "random_state", 1.5, "a whole number >= 0"),
    (PooledRidge, "alphas", (1.0, 0.0), "a sequence, each item a finite number > 0"),
    (TargetRidge, "alphas", 1.0, "a sequence, each item a finite number > 0"),
    (TargetRidge, "random_state", -1, "a whole number >= 0"),
    (PooledRidge, "random_state", True, "a whole number >= 0"),
    (PooledDomainAdapter, "estimator", None, "a DINO-part regressor"),
    (PooledDomainAdapter, "estimator", "DINORegressor", "a DINO-part regressor"),
] + [(cls, *c) for cls in KERNEL_GPS for c in [
    ("kernel", "rbf", "one of 'ntk', 'nngp'"),
    ("depth", 0, "a whole number >= 1"),
    ("w_std", 0.0, "a finite number > 0"),
    ("b_std", -1.0, "a finite number >= 0"),
    ("max_train", 0, "a whole number >= 1"),
    ("random_state", -1, "a whole number >= 0"),
]]


def _fit(model):
    rng = np.random.default_rng(0)
    Xs, Xt = rng.normal(size=(8, 2)), rng.normal(size=(4, 2))
    if isinstance(model, PooledDomainAdapter):
        return model.fit(np.vstack([Xs, Xt]), np.r_[Xs[:, 0], Xt[:, 0]])
    return model.fit(Xs, Xs[:, 0], Xt=Xt, yt=Xt[:, 0])


@pytest.mark.parametrize("cls, name, value, expected", CASES,
                         ids=[f"{c[0].__name__}-{c[1]}-{c[2]!r}" for c in CASES])
def test_a_bad_parameter_is_one_error_naming_estimator_parameter_value_and_expectation(
        cls, name, value, expected):
    model = cls(**{name: value})  # accepted as given: scikit-learn checks at fit
    assert model.get_params()[name] is value
    with pytest.raises(InputError) as info:
        _fit(model)
    message = str(info.value)
    assert message.startswith(f"{cls.__name__}: {name} = ") and "\n" not in message, message
    assert expected in message.partition(": expected ")[2], message
    assert not hasattr(model, "n_features_in_")  # refused before anything was fitted


def test_every_parameter_of_every_estimator_has_a_bad_value_case():
    covered = {(cls, name) for cls, name, _, _ in CASES}
    for cls in {c[0] for c in CASES}:
        assert {(cls, name) for name in declarations(cls)} <= covered, cls.__name__


def test_the_old_raw_failures_are_named_now():
    """The three of issue #29: accepted (depth=0, n_steps=-5) or a raw torch error
    (batch_size=0)."""
    for name, value in (("depth", 0), ("n_steps", -5), ("batch_size", 0)):
        with pytest.raises(InputError, match=f"^DINORegressor: {name} = {value}: expected"):
            _fit(DINORegressor(**{name: value}))


def test_clone_get_params_and_set_params_keep_values_as_given():
    model = DINORegressor(depth=3, kernel="nngp", n_base=17)
    copy = clone(model)
    assert copy.get_params() == model.get_params() and copy is not model
    assert copy.get_params()["depth"] == 3 and copy.get_params()["kernel"] == "nngp"
    bad = clone(model).set_params(depth=0)  # set_params checks nothing; fit does
    assert bad.get_params()["depth"] == 0
    with pytest.raises(InputError, match="depth = 0"):
        _fit(bad)
    wrapped = clone(PooledDomainAdapter(DINORegressor(n_steps=2)))
    assert wrapped.get_params()["estimator__n_steps"] == 2


def test_numpy_numbers_are_accepted_where_python_numbers_are():
    """Values from a grid search arrive as numpy scalars; they are the same values."""
    model = TargetRidge(alphas=tuple(np.logspace(-1, 1, 3)), random_state=np.int64(2))
    assert _fit(model).predict(np.zeros((1, 2))).shape == (1,)


def test_the_bench_task_choices_are_the_real_tables():
    """``BenchConfig.tasks`` lists the names in a light module (no pandas at ``--help``); they
    are the tables ``datasets.REAL_TASKS`` loads."""
    from transferscope.dino import REAL_TASKS
    from transferscope.dino.config import BENCH_TASKS

    assert BENCH_TASKS == tuple(REAL_TASKS)


@pytest.mark.parametrize("settings, message", [
    ({"holdout": 1.0}, "FitConfig: holdout = 1.0: expected a finite number >= 0 and < 1"),
    ({"features": ()}, "FitConfig: features = (): expected one or more comma-separated"),
    ({"features": ("a", "a")}, "expected each name once ('a' is repeated)"),
    ({"depth": 0}, "FitConfig: depth = 0: expected None or a whole number >= 1"),
    ({"preset": "paper"}, "FitConfig: preset = 'paper': expected one of 'default', 'authors'"),
    ({"seed": 2**63}, "FitConfig: seed = 9223372036854775808: expected a whole number from 0"),
])
def test_a_fit_config_checks_each_setting_when_built(tmp_path, settings, message):
    from transferscope.dino import FitConfig

    base = dict(data=tmp_path / "t.csv", features=("x",), target="y", domain="d",
                target_domain="b")
    with pytest.raises(InputError) as info:
        FitConfig(**(base | settings))
    assert message in str(info.value), str(info.value)
    assert FitConfig(**base).estimator_settings() == {}
    assert FitConfig(**base, depth=3, kernel="nngp").estimator_settings() == {
        "kernel": "nngp", "depth": 3}


def test_run_refuses_an_unknown_profile_and_a_foreign_config(tmp_path):
    """``run`` is the one entry point: a profile name that ``dino.PROFILES`` lacks is one
    named error before anything runs; an object that is no dino config is a TypeError."""
    from transferscope.dino import BenchConfig, run

    with pytest.raises(InputError, match="^BenchConfig: profile = 'nope': expected one of "
                                         "'quick', 'standard'"):
        run(BenchConfig(profile="nope", out=tmp_path / "b"))
    assert not (tmp_path / "b").exists()
    with pytest.raises(TypeError, match="expected a FitConfig"):
        run(object())  # type: ignore[call-overload]

"""scikit-learn's own estimator checks, run on DINO through the documented adapter."""

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from transferscope.dino import DINORegressor
from transferscope.dino.adapter import PooledDomainAdapter

# No check is excluded or expected to fail. The one that reports "skipped":
# - check_array_api_input: scikit-learn skips it itself unless SCIPY_ARRAY_API=1 is set before
#   scipy is imported; DINO computes in torch float64 from NumPy input and claims no array-API
#   support.


@parametrize_with_checks([PooledDomainAdapter(DINORegressor(n_steps=5, n_base=20,
                                                            batch_size=32))])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_adapter_passes_a_given_domain_through():
    """With a domain the adapter is the wrapped estimator fitted in the stacked style."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = X[:, 0] + 0.1 * rng.normal(size=40)
    domain = np.r_[np.zeros(30), np.ones(10)]
    settings = dict(n_steps=3, n_base=20, batch_size=32)
    adapted = PooledDomainAdapter(DINORegressor(**settings)).fit(X, y, domain=domain)
    direct = DINORegressor(**settings).fit(X[:30], y[:30], Xt=X[30:], yt=y[30:])
    np.testing.assert_allclose(adapted.predict(X), direct.predict(X), rtol=1e-12)


def test_adapter_without_domain_rejects_too_few_rows():
    with pytest.raises(ValueError, match="n_samples = 2"):
        PooledDomainAdapter(DINORegressor()).fit(np.ones((2, 2)), np.ones(2))

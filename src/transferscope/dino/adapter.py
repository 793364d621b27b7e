"""``PooledDomainAdapter``: a domain regressor behind plain ``fit(X, y)``, for generic tools.

scikit-learn's estimator checks (and any tool that only calls ``fit(X, y)``) cannot pass a
domain. The adapter takes it as a fit parameter (``fit(X, y, domain=codes)``, the codes of
``inputs.py``) or, when none is given, assigns the rows alternately to source (even rows) and
labelled target (odd rows): the pooled use, where both domains come from one distribution.
It is meant for checks and pipelines that cannot carry a domain, not for real transfer, where
the domain must be given.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data

from transferscope.core.errors import input_error
from transferscope.core.params import Spec, ValidatedEstimator
from transferscope.dino.base import DomainRegressor


def _a_domain_regressor(value: Any) -> str | None:
    return None if isinstance(value, DomainRegressor) else (
        "a DINO-part regressor (a DomainRegressor, e.g. DINORegressor())")


Wrapped = Annotated[object, Spec(rule=_a_domain_regressor,
                              help="The domain regressor fitted on the rows.")]


class PooledDomainAdapter(ValidatedEstimator, RegressorMixin, BaseEstimator):
    """Wraps ``estimator`` (a ``DomainRegressor``); ``predict`` treats rows as target rows."""

    def __init__(self, estimator: Wrapped = None):
        self.estimator = estimator

    def fit(self, X, y, domain=None):
        """Validate with scikit-learn's helpers, then fit a clone of ``estimator``."""
        self._validate_params()
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True)
        if domain is None and X.shape[0] < 3:
            raise input_error("fit", "n_samples", X.shape[0],
                              "at least 3 rows (1 source and 2 labelled target rows)")
        if domain is None:
            domain = np.arange(X.shape[0]) % 2
        self.estimator_ = clone(self.estimator).fit(X, y, domain=domain)
        return self

    def predict(self, X, return_std: bool = False):
        """Target-domain predictions of the fitted estimator."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return self.estimator_.predict(X, return_std=return_std)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

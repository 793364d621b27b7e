"""The scikit-learn plumbing every DINO-part regressor shares (DINO and all baselines).

Subclasses implement ``_fit_scaled(data)`` on targets standardised with the labelled target's
mean and scale, and ``_predict_scaled(X) -> (mean, var)``; this class validates inputs, scales,
unscales and keeps ``fit``/``predict``/``score``/``get_params`` in scikit-learn's conventions.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import NotFittedError

from transferscope.core.errors import input_error
from transferscope.core.params import ValidatedEstimator
from transferscope.dino.inputs import DomainData, as_matrix, split_domains


class DomainRegressor(ValidatedEstimator, RegressorMixin, BaseEstimator):
    """Base class: ``fit(X, y, Xt=, yt=, Xu=None)`` or ``fit(X, y, domain=)``; test = target.

    ``standardise_targets = False`` (a class attribute) fits on the targets as given.

    Each subclass declares its ``__init__`` parameters with the annotations of
    ``dino/params.py``; ``fit`` checks them first (one ``InputError`` naming the estimator, the
    parameter, the value and what was expected), as scikit-learn's estimators do."""

    standardise_targets = True

    def fit(self, X, y, Xt=None, yt=None, Xu=None, domain=None):
        """Fit on labelled source ``(X, y)``, labelled target ``(Xt, yt)``, optional ``Xu``."""
        self._validate_params()
        data = split_domains(X, y, Xt, yt, Xu, domain)
        self.n_features_in_ = data.Xs.shape[1]
        self.n_outputs_ = data.ys.shape[1]
        self._y_is_1d = data.y_is_1d
        self.y_mean_ = data.yt.mean(0) if self.standardise_targets else np.zeros(data.yt.shape[1])
        scale = data.yt.std(0) if self.standardise_targets else np.ones(data.yt.shape[1])
        self.y_scale_ = np.where(scale > 0, scale, 1.0)
        scaled = replace(data, ys=(data.ys - self.y_mean_) / self.y_scale_,
                         yt=(data.yt - self.y_mean_) / self.y_scale_)
        self._fit_scaled(scaled)
        return self

    def predict(self, X, return_std: bool = False):
        """Predictions for target-domain inputs; ``return_std`` adds the predictive std of y."""
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit first")
        X_arr = as_matrix(X, "X", "predict")
        if X_arr.shape[1] != self.n_features_in_:
            raise input_error("predict", "X feature count", X_arr.shape[1],
                              f"{self.n_features_in_} features, as in fit")
        with torch.no_grad():
            mean_t, var_t = self._predict_scaled(torch.from_numpy(X_arr))
        mean = mean_t.numpy() * self.y_scale_ + self.y_mean_
        std = np.sqrt(var_t.numpy())[:, None] * self.y_scale_
        if self._y_is_1d:
            mean, std = mean[:, 0], std[:, 0]
        return (mean, std) if return_std else mean

    def _fit_scaled(self, data: DomainData) -> None:
        raise NotImplementedError

    def _predict_scaled(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

"""Validate domain-adaptation inputs and split them into source / target / unlabelled parts.

Two equivalent calling styles (both scikit-learn compatible):

* ADAPT style: ``fit(Xs, ys, Xt=..., yt=..., Xu=...)``;
* stacked style: ``fit(X, y, domain=d)`` with one code per row, ``0``/``"source"``,
  ``1``/``"target"`` (labelled target) or ``2``/``"unlabelled"`` (target input, label ignored).
  This style survives a ``Pipeline``: the transformers see every row, and ``domain`` is routed
  to the final step unchanged (``pipe.fit(X, y, dino__domain=d)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from transferscope.core.checks import check_magnitude
from transferscope.core.errors import input_error

DOMAIN_CODES = {"source": 0, "target": 1, "unlabelled": 2, "unlabeled": 2}


@dataclass(kw_only=True)
class DomainData:
    """The validated parts of one domain-adaptation problem (float64, 2-D targets)."""

    Xs: np.ndarray
    ys: np.ndarray
    Xt: np.ndarray
    yt: np.ndarray
    Xu: np.ndarray
    y_is_1d: bool

    @property
    def target_inputs(self) -> np.ndarray:
        """All known target-domain inputs, labelled or not (the target's base samples)."""
        return np.vstack([self.Xt, self.Xu]) if len(self.Xu) else self.Xt


def _first_bad(arr: np.ndarray) -> str:
    rows, cols = np.nonzero(~np.isfinite(arr.reshape(arr.shape[0], -1)))
    value = arr.reshape(arr.shape[0], -1)[rows[0], cols[0]]
    return f"{value} at row {rows[0]}, column {cols[0]}"


def as_matrix(value: object, field: str, source: str = "fit") -> np.ndarray:
    """A finite 2-D float64 array, or one clear InputError."""
    try:
        arr = np.array(value, dtype=np.float64)  # a copy: torch needs writable memory
    except (TypeError, ValueError) as err:
        raise input_error(source, field, value, "numbers only") from err
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise input_error(source, f"{field}.shape", arr.shape, "a non-empty 2-D array")
    if not np.isfinite(arr).all():
        raise input_error(source, field, _first_bad(arr), "finite numbers (no NaN or inf)")
    check_magnitude(arr, source, field)  # squared by the scaler, the kernels and the GP
    return arr


def as_targets(value: object, field: str, n_rows: int, source: str = "fit") -> np.ndarray:
    """Finite float64 targets with ``n_rows`` rows, always 2-D."""
    arr = as_matrix(value, field, source)
    if arr.shape[0] != n_rows:
        raise input_error(source, f"{field} rows", arr.shape[0], f"{n_rows} (one per input row)")
    return arr


def _domain_codes(domain: object, n_rows: int, source: str) -> np.ndarray:
    raw = np.asarray(domain).ravel()
    if raw.shape[0] != n_rows:
        raise input_error(source, "domain length", raw.shape[0], f"{n_rows} (one per row of X)")
    codes = np.empty(n_rows, dtype=np.int64)
    for i, value in enumerate(raw):
        key = value.strip().lower() if isinstance(value, str) else value
        code = DOMAIN_CODES.get(key, key) if isinstance(key, str) else key
        if code not in (0, 1, 2):
            raise input_error(source, f"domain[{i}]", value,
                              "0/'source', 1/'target' or 2/'unlabelled'")
        codes[i] = int(code)
    if len(np.unique(codes[codes != 2])) < 2:
        raise input_error(source, "domain", f"only {sorted(set(raw.tolist()))}",
                          "both source (0) and labelled target (1) rows")
    return codes


def split_domains(
    X: object,
    y: object,
    Xt: object = None,
    yt: object = None,
    Xu: object = None,
    domain: object = None,
    source: str = "fit",
) -> DomainData:
    """Validate and split; raises InputError with one line for every documented bad input."""
    if domain is not None:
        if Xt is not None or yt is not None or Xu is not None:
            raise input_error(source, "domain", "given with Xt/yt/Xu", "one style, not both")
        X_all = as_matrix(X, "X", source)
        codes = _domain_codes(domain, X_all.shape[0], source)
        y_raw = np.asarray(y, dtype=np.float64)
        y_is_1d = y_raw.ndim == 1
        y_lab = as_targets(y_raw[codes != 2], "y", int((codes != 2).sum()), source)
        labelled = codes[codes != 2]
        return _checked(X_all[codes == 0], y_lab[labelled == 0], X_all[codes == 1],
                        y_lab[labelled == 1], X_all[codes == 2], y_is_1d, source)
    if Xt is None or yt is None:
        raise input_error(source, "Xt, yt", None, "labelled target data (or a domain array)")
    Xs = as_matrix(X, "X", source)
    y_is_1d = np.ndim(cast(Any, y)) == 1
    ys = as_targets(y, "y", Xs.shape[0], source)
    Xt_arr = as_matrix(Xt, "Xt", source)
    yt_arr = as_targets(yt, "yt", Xt_arr.shape[0], source)
    Xu_arr = as_matrix(Xu, "Xu", source) if Xu is not None else np.empty((0, Xs.shape[1]))
    return _checked(Xs, ys, Xt_arr, yt_arr, Xu_arr, y_is_1d, source)


def _checked(Xs, ys, Xt, yt, Xu, y_is_1d: bool, source: str) -> DomainData:
    n_features = Xs.shape[1]
    for name, arr in (("Xt", Xt), ("Xu", Xu)):
        if arr.shape[0] and arr.shape[1] != n_features:
            raise input_error(source, f"{name} feature count", arr.shape[1],
                              f"{n_features} features, like the source X")
    if ys.shape[1] != yt.shape[1]:
        raise input_error(source, "yt output count", yt.shape[1],
                          f"{ys.shape[1]} outputs, like the source y")
    if Xs.shape[0] < 1:
        raise input_error(source, "source rows", 0, "at least 1 labelled source point")
    if Xt.shape[0] < 2:
        raise input_error(source, "labelled target rows", Xt.shape[0],
                          "at least 2 labelled target points")
    return DomainData(Xs=Xs, ys=ys, Xt=Xt, yt=yt, Xu=Xu.reshape(-1, n_features), y_is_1d=y_is_1d)

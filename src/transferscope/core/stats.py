"""Intervals and resampling: every confidence interval the project prints comes from here.

Where ``scipy.stats.bootstrap`` fits (a statistic of one or more samples, resampled as a whole)
:func:`bootstrap_interval` uses it, with its percentile, basic and BCa intervals. Three
resamplings scipy lacks are written once here; each returns the raw draws, shape
``(n_boot, ...)``, so a caller can take intervals, p-values or bias corrections of the same draws:

* :func:`stratified_bootstrap`: every stratum resampled with replacement on its own, sizes kept
  (items within a nation and test; the two domains of an MMD).
* :func:`paired_bootstrap`: one index resample shared by every paired array (before/after runs
  that answered the same items; x and y of a correlation).
* :func:`residual_bootstrap`: the design fixed, ``y* = fitted + e*`` with ``e*`` drawn from the
  (centred) residuals, as in regression and RWY's stopping-rule analysis.

Intervals of draws are percentile intervals over the finite draws (:func:`percentile_interval`);
a draw that is NaN (a statistic undefined on that resample) is left out, never counted.
``seed`` may be an int or a ``numpy.random.Generator`` (to continue one stream across calls).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats as _scipy_stats

Seed = int | np.random.Generator | None
Progress = Callable[[int], None] | None


def percentile_interval(draws: Any, level: float = 0.95) -> tuple[float, float]:
    """The ``((1-level)/2, (1+level)/2)`` quantiles of the finite draws; NaN, NaN if none."""
    arr = np.asarray(draws, dtype=np.float64).ravel()
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap_interval(data: Sequence[Any], statistic: Callable[..., float], *,
                       method: str = "percentile", level: float = 0.95, n_boot: int = 2000,
                       seed: Seed = 0, paired: bool = False) -> tuple[float, float]:
    """``scipy.stats.bootstrap`` interval of ``statistic(*samples)`` (method ``percentile``,
    ``basic`` or ``BCa``); ``paired=True`` resamples all samples with one index."""
    result = _scipy_stats.bootstrap(
        tuple(np.asarray(d) for d in data), statistic, n_resamples=n_boot,
        confidence_level=level, method=method, paired=paired, vectorized=False,
        random_state=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _resample(stratum: Any, idx: np.ndarray) -> Any:
    if isinstance(stratum, tuple):
        return tuple(np.asarray(a)[idx] for a in stratum)
    return np.asarray(stratum)[idx]


def _length(stratum: Any) -> int:
    return len(stratum[0]) if isinstance(stratum, tuple) else len(stratum)


def stratified_bootstrap(strata: Sequence[Any], statistic: Callable[[list[Any]], Any],
                         n_boot: int, seed: Seed = 0, progress: Progress = None) -> np.ndarray:
    """Draws of ``statistic(resampled_strata)``; each stratum (an array, or a tuple of arrays of
    one length resampled together) is resampled with replacement on its own, size kept; an
    empty stratum stays empty."""
    rng = np.random.default_rng(seed)
    sizes = [_length(s) for s in strata]
    draws = []
    for b in range(n_boot):
        sample = [_resample(s, rng.integers(0, n, n)) if n else s
                  for s, n in zip(strata, sizes, strict=True)]
        draws.append(statistic(sample))
        if progress is not None:
            progress(b + 1)
    return np.asarray(draws, dtype=np.float64)


def paired_bootstrap(n: int, statistic: Callable[[np.ndarray], Any], n_boot: int,
                     seed: Seed = 0, progress: Progress = None) -> np.ndarray:
    """Draws of ``statistic(idx)`` for ``n_boot`` index resamples of ``0..n-1`` shared by every
    array the statistic indexes (so pairs stay pairs)."""
    rng = np.random.default_rng(seed)
    draws = []
    for b in range(n_boot):
        draws.append(statistic(rng.integers(0, n, n)))
        if progress is not None:
            progress(b + 1)
    return np.asarray(draws, dtype=np.float64)


def residual_bootstrap(fitted: np.ndarray, residuals: np.ndarray,
                       statistic: Callable[[np.ndarray], Any], n_boot: int, seed: Seed = 0, *,
                       center: bool = True, progress: Progress = None) -> np.ndarray:
    """Draws of ``statistic(fitted + e*)``, ``e*`` resampled with replacement from the
    residuals (centred first unless ``center=False``); the design stays fixed."""
    fitted = np.asarray(fitted, dtype=np.float64)
    errors = np.asarray(residuals, dtype=np.float64)
    if center:
        errors = errors - errors.mean()
    n = errors.size
    return paired_bootstrap(n, lambda idx: statistic(fitted + errors[idx]), n_boot, seed,
                            progress)


def bootstrap_p_value(draws: Any, null: float = 0.0) -> float:
    """Two-sided bootstrap p-value of the statistic being ``null``: twice the smaller share of
    finite draws on either side, floored at ``1/n`` and capped at 1; NaN if no draw is finite."""
    arr = np.asarray(draws, dtype=np.float64).ravel()
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return float("nan")
    tail = min(float(np.mean(finite <= null)), float(np.mean(finite >= null)))
    return float(min(1.0, max(2.0 * tail, 1.0 / finite.size)))


def pearson(x: Any, y: Any) -> float:
    """Pearson's r (``scipy.stats.pearsonr``); NaN when undefined: fewer than 2 points, a
    constant side, or a non-finite value."""
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if (x.size < 2 or x.size != y.size or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)))
            or np.ptp(x) == 0 or np.ptp(y) == 0):
        return float("nan")
    with warnings.catch_warnings():  # near-constant input: r is still defined, and reported
        warnings.simplefilter("ignore", _scipy_stats.NearConstantInputWarning)
        return float(_scipy_stats.pearsonr(x, y).statistic)


def pearson_interval(x: Any, y: Any, n_boot: int = 2000, seed: Seed = 0,
                     level: float = 0.95) -> tuple[float, float, float]:
    """``(r, low, high)``: Pearson's r and the percentile interval of a paired bootstrap over
    the points (resamples where r is undefined are left out); NaN when r itself is, or with
    fewer than 3 points."""
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    r = pearson(x, y)
    if x.size < 3 or not np.isfinite(r):
        return float("nan"), float("nan"), float("nan")
    draws = paired_bootstrap(x.size, lambda i: pearson(x[i], y[i]), n_boot, seed)
    low, high = percentile_interval(draws, level)
    return r, low, high


def conformal_quantile(scores: Any, level: float) -> float:
    """The split-conformal quantile of nonconformity ``scores``: their
    ``ceil((n + 1) level)``-th smallest value, so that a new exchangeable score falls at or below
    it with probability at least ``level`` (Vovk et al. 2005; Angelopoulos & Bates 2021, eq. 1).
    With too few scores for that rank (``n < level / (1 - level)``) the largest score is returned
    and the guarantee is ``n / (n + 1)`` instead; NaN scores are left out."""
    arr = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return float("nan")
    rank = int(np.ceil((arr.size + 1) * level))
    return float(arr[min(rank, arr.size) - 1])

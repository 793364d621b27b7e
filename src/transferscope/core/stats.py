"""Intervals and resampling: every confidence interval the project prints comes from here.

Where ``scipy.stats.bootstrap`` fits (a statistic of one or more samples, resampled as a whole)
:func:`bootstrap_interval` uses it, with its percentile, basic and BCa intervals. The
resamplings scipy lacks are written once here; each returns the raw draws, shape
``(n_boot, ...)``, so a caller can take intervals, p-values or bias corrections of the same draws:

* :func:`stratified_bootstrap`: every stratum resampled with replacement on its own, sizes kept
  (items within a nation and test; the two domains of an MMD).
* :func:`paired_bootstrap`: one index resample shared by every paired array (before/after runs
  that answered the same items; x and y of a correlation).
* :func:`cluster_bootstrap`: whole clusters resampled (the drafts of the bias tests: every item
  about one draft, whichever nation or form it asks, enters a draw together).

:func:`cluster_interval` turns cluster draws into an interval and a p-value that stay honest when
every draw is the same (no zero-width interval on a score that rests on few clusters), and
:func:`adjust_p_values` adjusts the p-values of many cells tested together (Holm or
Benjamini-Hochberg).

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


def cluster_bootstrap(n_clusters: int, statistic: Callable[[np.ndarray], Any], n_boot: int,
                      seed: Seed = 0, *, vectorized: bool = False) -> np.ndarray:
    """Draws of a statistic over resampled clusters.

    What is resampled: the clusters (in the bias tests, the drafts), ``n_clusters`` of them
    drawn with replacement per draw; every observation of a drawn cluster (all items about
    that draft: every nation, form and sample) enters the draw with it, as often as the
    cluster was drawn. Observations are never resampled on their own, so items that share a
    draft (one question feeding five nation cells, the five nations' answers on one draft)
    stay together and the interval reflects how many drafts there are, not how many items.

    Parameters
    ----------
    n_clusters : int
        Number of clusters (numbered ``0..n_clusters-1`` by the caller).
    statistic : callable
        Gets the cluster counts of one draw, shape ``(n_clusters,)`` (how often each cluster
        was drawn; a weighted statistic is the resampled one), and returns a number or an
        array. With ``vectorized=True`` it gets every draw at once, shape
        ``(n_boot, n_clusters)``, and returns shape ``(n_boot, ...)``.
    n_boot : int
        Number of draws.
    seed : int or numpy.random.Generator
        The draws' seed.
    vectorized : bool
        See ``statistic``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_boot, ...)``; empty along the first axis when ``n_clusters`` or
        ``n_boot`` is 0.
    """
    rng = np.random.default_rng(seed)
    if n_clusters <= 0 or n_boot <= 0:
        return np.empty((0,), dtype=np.float64)
    counts = rng.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters), size=n_boot)
    if vectorized:
        return np.asarray(statistic(counts), dtype=np.float64)
    return np.asarray([statistic(c) for c in counts], dtype=np.float64)


def cluster_interval(value: float, draws: Any, n_clusters: int, bounds: tuple[float, float],
                     level: float = 0.95) -> tuple[float, float, float]:
    """``(low, high, p)``: the percentile interval and two-sided p-value of cluster draws
    (the bootstrap tail share, or its normal approximation beyond the draws' resolution:
    :func:`_tail_or_normal_p`).

    When the draws do not vary (every cluster gave the same contribution: a model that
    answers one way on every draft), the bootstrap has nothing to resample and its interval
    has zero width whatever the number of clusters. Then (ours) the interval is the exact
    binomial bound on the share of clusters that could differ: with none of ``n`` differing,
    up to ``q = 1 - ((1 - level) / 2) ** (1 / n)`` of them may (Clopper-Pearson), and each can
    move the statistic at most to the far end of ``bounds`` (the statistic's possible range),
    so the interval is ``value`` widened by ``q`` of the distance to each bound; the p-value is
    the level at which that interval would touch 0: ``min(1, 2 (1 - r) ** n)`` with ``r`` the
    share of the way from the bound on the other side of 0 to ``value`` (1 when ``value`` is 0).
    NaN, NaN, NaN when ``value`` is not finite or no draw is.
    """
    arr = np.asarray(draws, dtype=np.float64).ravel()
    finite = arr[np.isfinite(arr)]
    if not np.isfinite(value) or finite.size == 0 or n_clusters <= 0:
        return float("nan"), float("nan"), float("nan")
    low, high = percentile_interval(finite, level)
    if high > low:
        return low, high, _tail_or_normal_p(value, finite)
    lower, upper = bounds
    q = 1.0 - ((1.0 - level) / 2.0) ** (1.0 / n_clusters)
    low, high = value - q * (value - lower), value + q * (upper - value)
    if value == 0:
        return low, high, 1.0
    far = lower if value > 0 else upper
    r = abs(value) / abs(value - far) if value != far else 1.0
    return low, high, float(min(1.0, 2.0 * (1.0 - r) ** n_clusters))


TAIL_DRAWS = 10  # fewer draws than this beyond 0: the tail share is below the draws' resolution


def _tail_or_normal_p(value: float, finite: np.ndarray) -> float:
    """The two-sided bootstrap p-value where at least ``TAIL_DRAWS`` draws fall on the far
    side of 0; beyond that resolution (ours) the normal approximation of the draws,
    ``2 * Phi(-|value| / sd(draws))``, so that a p-value can be smaller than ``1 / n_boot``
    (a run adjusts it for 30 cells at once)."""
    far = min(int(np.sum(finite <= 0)), int(np.sum(finite >= 0)))
    if far >= TAIL_DRAWS or value == 0:
        return bootstrap_p_value(finite)
    sd = float(np.std(finite, ddof=1))
    if sd == 0:
        return bootstrap_p_value(finite)
    return float(min(1.0, 2.0 * _scipy_stats.norm.sf(abs(value) / sd)))


def adjust_p_values(p_values: Any, method: str = "holm") -> np.ndarray:
    """P-values adjusted for testing them together; NaN entries are left out of the family and
    stay NaN.

    ``holm``: Holm's step-down adjustment (controls the chance of any false claim among the
    cells, whatever their dependence); ``bh``: Benjamini-Hochberg
    (``scipy.stats.false_discovery_control``; controls the expected share of false claims among
    the claims, for independent or positively dependent tests). A cell is significant at
    ``alpha`` when its adjusted p-value is at most ``alpha``.
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if not ok.any():
        return out
    if method not in ADJUSTMENTS:
        raise ValueError(f"p-value adjustment = {method!r}: expected one of "
                         f"{', '.join(ADJUSTMENTS)}")
    family = p[ok]
    if method == "bh":
        out[ok] = _scipy_stats.false_discovery_control(family, method="bh")
        return out
    m = family.size
    order = np.argsort(family, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * family[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    out[ok] = adjusted
    return out


ADJUSTMENTS = ("holm", "bh")


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

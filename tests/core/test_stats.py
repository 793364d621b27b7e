"""core.stats against independent references: numpy/scipy, hand-computed resamples."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from transferscope.core import stats


def test_percentile_interval_ignores_non_finite_draws():
    draws = np.r_[np.arange(101.0), np.nan, np.inf]
    assert stats.percentile_interval(draws, 0.9) == pytest.approx((5.0, 95.0))
    assert all(np.isnan(stats.percentile_interval([np.nan, np.nan])))


def test_bootstrap_interval_is_scipys():
    x = np.random.default_rng(3).normal(size=40)
    ours = stats.bootstrap_interval((x,), np.mean, method="BCa", n_boot=999, seed=5)
    ref = scipy_stats.bootstrap((x,), np.mean, n_resamples=999, method="BCa", vectorized=False,
                                random_state=np.random.default_rng(5)).confidence_interval
    assert ours == pytest.approx((ref.low, ref.high))


def test_stratified_bootstrap_keeps_each_stratum_inside_itself():
    a, b = np.zeros(7), np.ones(3)
    draws = stats.stratified_bootstrap([a, b, np.array([])],
                                       lambda s: [s[0].sum(), s[1].sum(), s[2].size], 50, seed=1)
    assert draws.shape == (50, 3)
    assert np.all(draws[:, 0] == 0) and np.all(draws[:, 1] == 3) and np.all(draws[:, 2] == 0)


def test_stratified_bootstrap_resamples_a_tuple_stratum_with_one_index():
    x = np.arange(20.0)
    draws = stats.stratified_bootstrap([(x, 2 * x)], lambda s: np.all(s[0][1] == 2 * s[0][0]),
                                       30, seed=2)
    assert np.all(draws == 1)


def test_paired_bootstrap_matches_a_hand_loop():
    x = np.random.default_rng(0).normal(size=15)
    rng = np.random.default_rng(9)
    hand = [x[rng.integers(0, 15, 15)].mean() for _ in range(20)]
    assert stats.paired_bootstrap(15, lambda i: x[i].mean(), 20, seed=9) == pytest.approx(hand)


def test_bootstrap_p_value_two_sided():
    assert stats.bootstrap_p_value(np.r_[np.full(95, 1.0), np.full(5, -1.0)]) == pytest.approx(0.1)
    assert stats.bootstrap_p_value(np.ones(100)) == pytest.approx(0.01)  # floored at 1/n
    assert np.isnan(stats.bootstrap_p_value([np.nan]))


def test_pearson_is_scipys_and_nan_when_undefined():
    x, y = np.array([1.0, 2.0, 4.0, 7.0]), np.array([2.0, 1.0, 5.0, 6.0])
    assert stats.pearson(x, y) == pytest.approx(scipy_stats.pearsonr(x, y).statistic)
    assert np.isnan(stats.pearson([1, 1, 1], [1, 2, 3]))
    assert np.isnan(stats.pearson([1, np.nan, 3], [1, 2, 3]))
    assert np.isnan(stats.pearson([1], [2]))


def test_pearson_interval_brackets_r():
    """r inside its own 95% bootstrap interval: r sits near the resamples' median. Swept over
    5000 seed pairs (n = 30, 500 resamples): 0 failures, and the smaller share of resamples on
    either side of r was never below 0.376 (a failure needs < 0.025): chance of failure < 1e-3
    for each of these 5 pairs. The interval is also a paired bootstrap by hand."""
    for seed in range(5):
        x = np.random.default_rng(2 * seed).normal(size=30)
        y = x + np.random.default_rng(2 * seed + 1).normal(size=30)
        r, low, high = stats.pearson_interval(x, y, n_boot=500, seed=seed)
        assert low < r < high
        assert r == pytest.approx(np.corrcoef(x, y)[0, 1])
        rng = np.random.default_rng(seed)  # the same resamples, by hand
        hand = []
        for _ in range(500):
            i = rng.integers(0, 30, 30)
            hand.append(np.corrcoef(x[i], y[i])[0, 1])
        assert (low, high) == pytest.approx(tuple(np.quantile(hand, [0.025, 0.975])))


def test_cluster_bootstrap_moves_whole_clusters():
    """Every draw takes n clusters with replacement; a cluster's rows enter together: a
    statistic over rows tagged by cluster sees each cluster's rows in equal numbers."""
    rows_per_cluster = np.array([3, 1, 4, 2])
    cluster_of_row = np.repeat(np.arange(4), rows_per_cluster)
    seen = []

    def stat(counts):
        weights = counts[cluster_of_row]  # each row weighted by its cluster's count
        seen.append(counts.copy())
        return weights.sum()

    draws = stats.cluster_bootstrap(4, stat, 300, seed=2)
    counts = np.array(seen)
    assert counts.shape == (300, 4) and np.all(counts.sum(axis=1) == 4)
    assert np.array_equal(draws, counts @ rows_per_cluster)
    # the same draws vectorized, and each cluster drawn 1 time per draw on average
    vec = stats.cluster_bootstrap(4, lambda c: c @ rows_per_cluster, 300, seed=2,
                                  vectorized=True)
    assert np.array_equal(vec, draws)
    assert counts.mean(axis=0) == pytest.approx(np.ones(4), abs=0.15)
    assert stats.cluster_bootstrap(0, stat, 10).size == 0


def test_cluster_bootstrap_sd_matches_the_cluster_mean_formula():
    """Cluster means resampled: the sd of the draws of a mean over clusters is the plug-in
    standard error sd(cluster values) / sqrt(n) (independent reference)."""
    values = np.random.default_rng(0).normal(size=30)
    draws = stats.cluster_bootstrap(30, lambda c: c @ values / c.sum(axis=1), 4000, seed=1,
                                    vectorized=True)
    assert draws.std() == pytest.approx(values.std() / np.sqrt(30), rel=0.06)


def test_cluster_interval_never_zero_width():
    # varying draws: the percentile interval and the two-sided bootstrap p-value
    draws = np.linspace(-1, 3, 101)
    low, high, p = stats.cluster_interval(1.0, draws, 20, (-4, 4))
    assert (low, high) == pytest.approx(stats.percentile_interval(draws))
    assert p == pytest.approx(stats.bootstrap_p_value(draws))
    # every draw the same: the exact binomial widening (hand computed)
    q = 1 - 0.025 ** (1 / 20)
    low, high, p = stats.cluster_interval(1.0, np.ones(50), 20, (-1, 1))
    assert (low, high) == pytest.approx((1 - 2 * q, 1.0)) and low < 1
    assert p == pytest.approx(2 * 0.5 ** 20)
    # with two clusters the same value is no evidence
    low, high, p = stats.cluster_interval(1.0, np.ones(50), 2, (-1, 1))
    assert low < 0 < high and p == pytest.approx(0.5)
    # a constant 0: an interval around 0 of non-zero width, p = 1
    low, high, p = stats.cluster_interval(0.0, np.zeros(9), 40, (-1, 1))
    assert low < 0 < high and p == 1.0
    assert all(np.isnan(stats.cluster_interval(float("nan"), draws, 20, (-1, 1))))


def test_adjust_p_values_holm_and_bh():
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan, 0.5])
    holm = stats.adjust_p_values(p, "holm")
    # Holm by its definition (brute force over the sorted family of 5)
    family = [0.01, 0.04, 0.03, 0.005, 0.5]
    order = sorted(family)
    ref = [max(min(1.0, (5 - order.index(q)) * q) for q in order if q <= x) for x in family]
    assert np.isnan(holm[4])
    assert holm[[0, 1, 2, 3, 5]] == pytest.approx(ref)
    assert holm[[0, 1, 2, 3, 5]] == pytest.approx([0.04, 0.09, 0.09, 0.025, 0.5])
    bh = stats.adjust_p_values(p, "bh")
    assert bh[[0, 1, 2, 3, 5]] == pytest.approx(
        scipy_stats.false_discovery_control(family, method="bh"))
    assert bh[[0, 1, 2, 3, 5]] == pytest.approx([0.025, 0.05, 0.05, 0.025, 0.5])
    assert np.all(np.isnan(stats.adjust_p_values([np.nan, np.nan])))
    with pytest.raises(ValueError, match="'bonferroni'"):
        stats.adjust_p_values([0.1], "bonferroni")


def test_cluster_interval_p_beyond_the_draws_resolution():
    """Draws far from 0: fewer than 10 beyond it, so the p-value is the normal
    approximation 2 * Phi(-|value| / sd) (scipy's normal), smaller than 1 / n_boot; near 0
    it is the tail share itself."""
    draws = np.random.default_rng(1).normal(1.0, 0.2, 1000)
    _, _, p = stats.cluster_interval(1.0, draws, 30, (-2, 2))
    assert p == pytest.approx(2 * scipy_stats.norm.sf(1.0 / draws.std(ddof=1)))
    assert p < 1 / 1000
    near = np.random.default_rng(1).normal(0.1, 0.2, 1000)
    _, _, p = stats.cluster_interval(0.1, near, 30, (-2, 2))
    assert p == pytest.approx(stats.bootstrap_p_value(near))

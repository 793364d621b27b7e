"""``--n-total``: the growth of the stop measured on nested subsamples, against planted truths
at N = 4n (issue #27). The reference is the oracle step of the planted problem on all N points
(closed form, rule_scores.train_errors), which the estimate never sees."""

from __future__ import annotations

import numpy as np
import pytest

from transferscope.core.errors import InputError
from transferscope.ntk.growth import estimate_growth
from transferscope.ntk.rule_scores import (
    growth_truths,
    planted_problem,
    random_kernel,
    synthetic_spectrum,
)


def test_interval_covers_the_planted_step_at_four_times_n_in_most_problems():
    # 16 planted problems (4 spectra x sigma 0.5/2 x R 0.5/2) at n = 32, N = 128, on a seed not
    # used to set the interval's level (seeds 0 and 1 were). The claim is coverage >= 70%; the
    # slow test below checks it over 64 problems; 'ntk validate' reports it.
    rows = growth_truths(n=32, repeats=1, seed=2)
    assert len(rows) == 16
    covered = sum(r["covered"] for r in rows)
    assert covered / len(rows) >= 0.7, rows
    for r in rows:  # the point estimate lies inside its own interval
        assert r["steps_ci"][0] <= r["steps"] <= r["steps_ci"][1]


@pytest.mark.slow
def test_interval_coverage_over_64_planted_problems():
    rows = growth_truths(n=32, repeats=4, seed=3) + growth_truths(n=64, repeats=2, seed=4)
    assert len(rows) == 96
    assert np.mean([r["covered"] for r in rows]) >= 0.7


def test_growth_refuses_small_n_and_a_smaller_total():
    rng = np.random.default_rng(0)
    k = random_kernel(synthetic_spectrum("sobolev", 24), rng)
    y, f0, _ = planted_problem(k, 0.5, 1.0, rng)
    with pytest.raises(InputError, match="at least 32"):
        estimate_growth(k, y - f0, 1.0 / np.max(np.diag(k)), 100, 8)
    k = random_kernel(synthetic_spectrum("sobolev", 40), rng)
    y, f0, _ = planted_problem(k, 0.5, 1.0, rng)
    with pytest.raises(InputError, match="n_total"):
        estimate_growth(k, y - f0, 1.0 / np.max(np.diag(k)), 20, 8)


def test_growth_reports_epochs_from_steps_and_batch_size():
    rng = np.random.default_rng(5)
    k = random_kernel(synthetic_spectrum("power-1.5", 40), rng)
    y, f0, _ = planted_problem(k, 0.5, 2.0, rng)
    g = estimate_growth(k, y - f0, 1.0 / np.max(np.diag(k)), 400, 16, draws=4, boot=50)
    assert g.sizes == (10, 20, 40) and all(len(v) == 4 for v in g.stops.values())
    assert g.epochs == pytest.approx(g.steps * 16 / 400)
    assert g.epochs_ci == pytest.approx((g.steps_ci[0] * 16 / 400, g.steps_ci[1] * 16 / 400))
    assert g.exponent >= 0 and g.exponent_ci[0] <= g.exponent <= g.exponent_ci[1] + 1e-12

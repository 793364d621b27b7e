"""Spectrum fits against spectra whose decay is known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from transferscope.core.errors import InputError
from transferscope.ntk.spectrum import (
    analyse_spectrum,
    effective_dimension,
    fit_decay,
    implied_rate,
    kernel_eigenvalues,
)


def mercer_kernel(x: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """sum_k mu_k phi_k(x) phi_k(x') with phi_k = sqrt(2) cos(pi k x), orthonormal on U(0, 1):
    the integral operator of this kernel has eigenvalues exactly mu."""
    phi = math.sqrt(2) * np.cos(np.pi * np.outer(x, np.arange(1, mu.size + 1)))
    return (phi * mu) @ phi.T


def kernel_with_spectrum(eigs: np.ndarray, seed: int = 0) -> np.ndarray:
    """n U diag(eigs) U^T with a random orthogonal U: K/n has exactly these eigenvalues."""
    n = eigs.size
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return n * (q * eigs) @ q.T


def test_eigenvalues_of_constructed_kernel():
    eigs = 2.0 * np.arange(1, 41, dtype=float) ** -1.5
    np.testing.assert_allclose(kernel_eigenvalues(kernel_with_spectrum(eigs)), eigs, rtol=1e-9)


def test_fits_recover_exact_decays():
    i = np.arange(1, 101, dtype=float)
    alpha, log_c, r2, rmse = fit_decay(3.0 * i**-1.7, "polynomial", (2, 60))
    assert (alpha, math.exp(log_c), r2) == pytest.approx((1.7, 3.0, 1.0), rel=1e-9)
    assert rmse < 1e-9
    c, log_c, r2, _ = fit_decay(0.5 * np.exp(-0.4 * i), "exponential", (1, 40))
    assert (c, math.exp(log_c), r2) == pytest.approx((0.4, 0.5, 1.0), rel=1e-9)
    # a polynomial spectrum is fitted worse by the exponential model
    assert fit_decay(3.0 * i**-1.7, "exponential", (2, 60))[2] < 0.95


def test_bootstrap_interval_covers_known_polynomial_decay():
    """Mercer kernel with operator eigenvalues k^-2 at n = 200 random points, 20 independent
    draws: the 95% interval covers alpha = 2 in at least 15, every fitted rate is within 0.1.

    Measured once over 200 draws (seeds 100-299): coverage 0.975, rate mean 2.0023, sd 0.016,
    worst |rate - 2| 0.049, interval widths 0.056-0.115. Chance of failing: 6 or more misses of
    20 has binomial probability 3e-4 even at the nominal 95% coverage (5e-6 at 0.975); 0.1 is
    6 sd of one rate.
    """
    covered, widths = 0, []
    for seed in range(20):
        x = np.random.default_rng(100 + seed).uniform(size=200)
        k = mercer_kernel(x, np.arange(1, 2001, dtype=float) ** -2.0)
        fit = analyse_spectrum(k, index_range=(2, 50), n_boot=60, seed=seed).fits["polynomial"]
        covered += fit.ci_low <= 2.0 <= fit.ci_high
        widths.append(fit.ci_high - fit.ci_low)
        assert abs(fit.rate - 2.0) < 0.1
    assert covered >= 15
    assert 0.01 < np.median(widths) < 0.3


def test_bootstrap_interval_covers_known_exponential_decay():
    """Operator eigenvalues exp(-0.5 k), n = 200, fit range 2..10, 40 independent draws.

    Measured once over 400 draws (seeds 0-399): coverage of the true rate 0.83 (the empirical
    fit carries an O(1/n) upward bias the interval leaves out: mean rate 0.5066, sd 0.0071), the
    exponential model preferred in all 400. Chance of failing, at those values: coverage below
    23/40 has binomial probability 3e-5 (1e-3 even at a coverage of 0.78); the mean rate of 40
    draws has sd 0.0011, so leaving 0.5 +/- 0.015 is > 7 sd away; fewer than 36/40 preferred
    would need a per-draw miss rate far above the 0/400 seen.
    """
    rates, covered, preferred = [], 0, 0
    for seed in range(40):
        x = np.random.default_rng(200 + seed).uniform(size=200)
        k = mercer_kernel(x, np.exp(-0.5 * np.arange(1, 2001, dtype=float)))
        analysis = analyse_spectrum(k, index_range=(2, 10), n_boot=60, seed=seed)
        fit = analysis.fits["exponential"]
        rates.append(fit.rate)
        covered += fit.ci_low <= 0.5 <= fit.ci_high
        preferred += analysis.preferred.model == "exponential"
    assert abs(np.mean(rates) - 0.5) < 0.015
    assert covered >= 23
    assert preferred >= 36


def test_effective_dimension_hand_checked():
    eigs = np.full(10, 0.2)
    assert effective_dimension(eigs, 0.2) == pytest.approx(5.0)  # each term 1/2
    eigs = np.array([1.0, 0.1, 0.0])
    assert effective_dimension(eigs, 0.1) == pytest.approx(1 / 1.1 + 0.5)
    np.testing.assert_allclose(effective_dimension(eigs, np.array([1.0, 0.1])),
                               [0.5 + 0.1 / 1.1, 1 / 1.1 + 0.5])


def test_implied_rates_hand_checked():
    assert implied_rate("polynomial", 1.0, 10_000) == pytest.approx(0.01)  # n^(-1/2)
    assert implied_rate("polynomial", 3.0, 2**8) == pytest.approx(2.0**-6)  # n^(-3/4)
    assert implied_rate("exponential", 0.7, 100) == pytest.approx(math.log(100) / 100)


def test_bad_kernels_are_rejected_with_one_line():
    with pytest.raises(InputError, match="symmetric"):
        kernel_eigenvalues(np.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(InputError, match="square"):
        kernel_eigenvalues(np.ones((2, 3)))
    with pytest.raises(InputError, match="index range"):
        fit_decay(np.ones(5), "polynomial", (2, 9))


def test_analysis_report_is_json_ready():
    import json

    eigs = np.arange(1, 33, dtype=float) ** -2.0
    out = analyse_spectrum(kernel_with_spectrum(eigs), n_boot=10).to_dict()
    text = json.dumps(out)
    assert out["preferred_model"] == "polynomial" and "n^(-0.667)" in text
    assert out["fits"]["polynomial"]["rate"] == pytest.approx(2.0, rel=1e-9)


def test_a_fit_uses_at_least_eight_eigenvalues_or_refuses_in_one_line():
    from transferscope.ntk.spectrum import default_index_range, fit_decay

    assert default_index_range(32) == (2, 9) and default_index_range(64) == (2, 16)
    lam = np.arange(1, 41, dtype=float) ** -2.0
    with pytest.raises(InputError, match="7 positive eigenvalues there: expected at least 8"):
        fit_decay(lam, "polynomial", (2, 8))
    assert fit_decay(lam, "polynomial", (2, 9))[0] == pytest.approx(2.0)
    with pytest.raises(InputError, match="n = 8 examples: expected at least 9"):
        default_index_range(8)
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((40, 40)))
    fits = analyse_spectrum(40 * (q * lam) @ q.T, n_boot=4).fits
    assert {f.eigenvalues_used for f in fits.values()} == {9}  # 2..max(9, 40//4 = 10) -> 9
    assert fits["polynomial"].to_dict()["eigenvalues_used"] == 9

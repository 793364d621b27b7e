"""core.checks: option values outside their range are one line naming the option."""

import numpy as np
import pytest

from transferscope.core.checks import (
    MAX_MAGNITUDE,
    check_int,
    check_magnitude,
    check_names,
    check_number,
    check_seed,
)
from transferscope.core.errors import InputError


def test_check_int_bounds_are_inclusive_and_named():
    assert check_int("--n", 2, 2, 5) == 2 and check_int("--n", 5, 2, 5) == 5
    assert check_int("--n", None, 2) is None
    for bad in (1, 6):
        with pytest.raises(InputError, match=rf"^--n = {bad}: expected a whole number from 2 to 5$"):
            check_int("--n", bad, 2, 5)
    with pytest.raises(InputError, match="--n = True: expected a whole number"):
        check_int("--n", True, 0)
    with pytest.raises(InputError, match=r"--n = 2\.5"):
        check_int("--n", 2.5, 0)


def test_check_seed_takes_what_numpy_takes():
    for seed in (0, 2**63 - 1):
        assert check_seed("--seed", seed) == seed
        np.random.default_rng(seed)  # numpy agrees
    for seed in (-1, 2**63):
        with pytest.raises(InputError, match=rf"--seed = {seed}: expected"):
            check_seed("--seed", seed)
    with pytest.raises(ValueError):
        np.random.default_rng(-1)  # why -1 is refused up front


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0, 0.0, 2.0])
def test_check_number_refuses_outside_an_open_interval(value):
    with pytest.raises(InputError, match="--x = .*: expected a finite number > 0 and <= 1"):
        check_number("--x", value, 0, 1, low_open=True)


def test_check_number_accepts_the_closed_end():
    assert check_number("--x", 1, 0, 1, low_open=True) == 1.0
    assert check_number("--x", 0, 0, 1) == 0.0
    with pytest.raises(InputError, match="expected a finite number >= 0 and < 1"):
        check_number("--x", 1, 0, 1, high_open=True)


def test_check_names_skips_empty_entries_and_refuses_repeats_and_strangers():
    assert check_names("--f", " a, b ,") == ["a", "b"]
    assert check_names("--f", None) is None
    with pytest.raises(InputError, match="--f = ',': expected one or more comma-separated names"):
        check_names("--f", ",")
    with pytest.raises(InputError, match="at least 2 comma-separated tasks"):
        check_names("--f", "a", at_least=2, what="tasks")
    with pytest.raises(InputError, match="'a' is repeated"):
        check_names("--f", "a,b,a")
    with pytest.raises(InputError, match="--f = 'c': expected one of a, b"):
        check_names("--f", "a,c", allowed=("a", "b"))


def test_check_magnitude_is_where_squares_stop_fitting():
    # the bound's square, summed 1e8 times, still fits; one step past sqrt(max) overflows alone
    assert np.isfinite(1e8 * MAX_MAGNITUDE**2)
    with np.errstate(over="ignore"):
        assert np.isinf(np.float64(1e155) ** 2 * 1e9)
    check_magnitude(np.array([[MAX_MAGNITUDE, -MAX_MAGNITUDE]]), "t.csv", "x")
    with pytest.raises(InputError, match=r"^t.csv: x row 1, column 0 = -1e\+308: expected"):
        check_magnitude(np.array([[1.0, 2.0], [-1e308, 3.0]]), "t.csv", "x")

"""Learn-then-Test over a threshold grid (issue 34, item 3): an exact binomial tail,
fixed-sequence testing from the safest threshold down, and no threshold at all when
even the safest is not rejected."""

from __future__ import annotations

import math

import pytest

from adacompress.learning.guarantee import (
    CalibrationSet,
    binomial_cdf,
    learn_then_test,
    misses_of,
    p_value,
)


def test_the_binomial_tail_is_the_hand_computed_one() -> None:
    # P(Bin(10, 0.1) <= 1) = 0.9^10 + 10 * 0.1 * 0.9^9
    assert binomial_cdf(1, 10, 0.1) == pytest.approx(0.9**10 + 0.9**9, rel=1e-12)
    # P(Bin(700, 0.01) = 0) = 0.99^700
    assert binomial_cdf(0, 700, 0.01) == pytest.approx(0.99**700, rel=1e-10)
    assert binomial_cdf(-1, 5, 0.3) == 0.0
    assert binomial_cdf(5, 5, 0.3) == 1.0
    # the whole distribution sums to one
    n, p = 1000, 0.01
    assert binomial_cdf(n - 1, n, p) + p**n == pytest.approx(1.0)


def test_the_tail_agrees_with_scipy_where_it_is_installed() -> None:
    stats = pytest.importorskip("scipy.stats")
    for k, n, p in [(4, 1000, 0.01), (2, 700, 0.01), (0, 300, 0.01), (30, 90, 0.4)]:
        assert binomial_cdf(k, n, p) == pytest.approx(stats.binom.cdf(k, n, p))


def test_the_p_value_is_one_above_hoeffdings_bound() -> None:
    """Valid for a Poisson-binomial count only up to n*alpha - 1 (docs/formulas.md)."""
    assert p_value(9, 1000, 0.01) == pytest.approx(binomial_cdf(9, 1000, 0.01))
    assert p_value(10, 1000, 0.01) == 1.0
    with pytest.raises(ValueError, match="misses"):
        p_value(11, 10, 0.01)


GRID = [0.9, 0.99, 0.999, 0.9999]


def test_the_lowest_threshold_before_the_first_non_rejection_is_chosen() -> None:
    # n = 1000, alpha = 0.01: at most 4 misses reject at delta = 0.05
    found = learn_then_test(
        GRID,
        [40, 5, 3, 1],
        1000,
        target=0.99,
        calibration=[CalibrationSet("a", 700), CalibrationSet("b", 300)],
    )
    assert found.holds and found.threshold == 0.999 and found.misses == 3
    assert found.p_value == pytest.approx(binomial_cdf(3, 1000, 0.01))
    assert found.confidence == pytest.approx(0.95) and found.n == 1000
    assert "0.9990" in found.statement() and "95%" in found.statement()
    assert found.to_json()["calibration"] == [
        {"name": "a", "photos": 700},
        {"name": "b", "photos": 300},
    ]


def test_testing_stops_at_the_first_non_rejection() -> None:
    """A lower threshold with few misses after a non-rejection is never reached
    (the order is fixed before the photos are seen)."""
    found = learn_then_test(GRID, [0, 8, 0, 1], 1000, target=0.99)
    assert found.threshold == 0.999


def test_no_threshold_is_guaranteed_when_the_safest_is_not_rejected() -> None:
    found = learn_then_test(GRID, [0, 0, 0, 6], 1000, target=0.99)
    assert not found.holds and found.threshold is None
    assert found.misses == 6  # the safest's
    assert found.p_value == pytest.approx(binomial_cdf(6, 1000, 0.01))
    assert "no threshold is guaranteed" in found.statement()


def test_more_misses_or_more_confidence_never_lower_the_threshold() -> None:
    misses = [30, 4, 2, 0]
    base = learn_then_test(GRID, misses, 1000, target=0.99)
    for i in range(len(GRID)):
        worse = list(misses)
        worse[i] += 3
        found = learn_then_test(GRID, worse, 1000, target=0.99)
        assert (found.threshold or math.inf) >= (base.threshold or math.inf)
    order = [0.2, 0.1, 0.05, 0.01, 0.001]
    chosen = [
        learn_then_test(GRID, misses, 1000, target=0.99, delta=d).threshold or math.inf
        for d in order
    ]
    assert chosen == sorted(chosen)


def test_the_grid_order_does_not_matter() -> None:
    a = learn_then_test(GRID, [40, 5, 3, 1], 1000, target=0.99)
    b = learn_then_test(GRID[::-1], [1, 3, 5, 40], 1000, target=0.99)
    assert a == b


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (dict(thresholds=[0.9], misses=[1, 2]), "one miss count"),
        (dict(thresholds=[0.9, 0.9], misses=[1, 2]), "distinct"),
        (dict(delta=1.0), "delta"),
        (dict(n=0), "calibration photos"),
        (dict(calibration=[CalibrationSet("a", 10)]), "sum to n"),
    ],
)
def test_bad_inputs_are_refused(args: dict, message: str) -> None:
    call = {"thresholds": [0.9, 0.99], "misses": [1, 0], "n": 100, "target": 0.99}
    call.update(args)
    with pytest.raises(ValueError, match=message):
        learn_then_test(**call)


def test_misses_are_whole_photos() -> None:
    assert misses_of(1 - 5 / 700, 700) == 5
    with pytest.raises(ValueError, match="whole number"):
        misses_of(0.9951, 700)


def test_hoeffdings_bound_holds_for_two_collections() -> None:
    """The p-value's validity for photos of two collections (docs/formulas.md): a
    Poisson-binomial's lower tail is at most the binomial's of the same mean up to
    n*p - 1, checked exactly on random cases."""
    import numpy as np

    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(5, 120))
        a = int(rng.integers(1, n))
        rates = np.r_[
            np.full(a, rng.uniform(0, 0.05)), np.full(n - a, rng.uniform(0, 0.3))
        ]
        pmf = np.array([1.0])
        for rate in rates:
            pmf = np.convolve(pmf, [1 - rate, rate])
        cdf, mean = np.cumsum(pmf), float(rates.mean())
        for c in range(int(math.floor(n * mean - 1)) + 1):
            assert cdf[c] <= binomial_cdf(c, n, mean) + 1e-12

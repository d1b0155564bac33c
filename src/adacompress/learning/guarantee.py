"""A finite-sample guarantee for a survival agent's threshold: Learn-then-Test.

Learn-then-Test (Angelopoulos, Bates, Candès, Jordan & Lei, 2021) turns a grid of
thresholds and their misses on calibration photos into a threshold with a promise
that needs no model of the agent: with probability at least ``1 - delta`` over the
calibration photos, the chosen threshold's miss rate on photos drawn like them is at
most ``alpha = 1 - target`` (docs/formulas.md, "Offline guarantee").

Each threshold ``t`` of the grid is a null hypothesis, ``H0(t): miss rate > alpha``,
with the p-value ``P(Binomial(n, alpha) <= misses(t))`` (exact, in log space). The
thresholds are tested in a fixed order, from the safest (highest) down, each at level
``delta`` (fixed-sequence testing: the order is fixed before the photos are seen, so
no multiplicity correction is needed); the chosen threshold is the lowest one rejected
before the first that is not. When even the safest is not rejected there is no
guaranteed threshold (:attr:`Guarantee.holds` is False, ``threshold`` None): what the
caller then ships is its decision (:mod:`adacompress.learning.recalibrate` keeps the
cross-validated threshold and says the guarantee does not hold).

Pure functions on counts; nothing here asks a cloud.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from adacompress.core.objective import check_target

METHOD = "learn-then-test"
DEFAULT_DELTA = 0.05
"""1 - confidence: 95%, the level of the running system's certificate."""


def binomial_cdf(k: int, n: int, p: float) -> float:
    """``P(Binomial(n, p) <= k)``, summed exactly in log space (no scipy).

    Raises:
        ValueError: ``n`` negative or ``p`` outside [0, 1].
    """
    if n < 0 or not 0.0 <= p <= 1.0:
        raise ValueError(f"need n >= 0 and p in [0, 1], got n={n}, p={p}")
    if k < 0:
        return 0.0
    if k >= n or p == 0.0:
        return 1.0
    if p == 1.0:
        return 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = [
        math.lgamma(n + 1)
        - math.lgamma(i + 1)
        - math.lgamma(n - i + 1)
        + i * log_p
        + (n - i) * log_q
        for i in range(k + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def p_value(misses: int, n: int, alpha: float) -> float:
    """The p-value of ``H0: miss rate > alpha`` after ``misses`` of ``n`` photos:
    ``P(Binomial(n, alpha) <= misses)``; 1 where ``misses > n·alpha − 1``.

    The cap keeps it valid when the photos come from collections with different miss
    rates (a Poisson-binomial count): Hoeffding (1956) bounds that count's lower tail
    by the binomial's of the same mean only up to ``n·p̄ − 1`` (docs/formulas.md).
    At any usual ``delta`` nothing above the cap would be rejected anyway.
    """
    if not 0 <= misses <= n:
        raise ValueError(f"misses must be in 0..{n}, got {misses}")
    if misses > n * alpha - 1:
        return 1.0
    return binomial_cdf(misses, n, alpha)


@dataclass(frozen=True)
class CalibrationSet:
    """Photos a guarantee was calibrated on: their collection and how many."""

    name: str
    photos: int


@dataclass(frozen=True)
class Guarantee:
    """What Learn-then-Test found (see the module docstring).

    Attributes:
        method: ``learn-then-test``.
        target: the accuracy promised (``1 - alpha``).
        confidence: ``1 - delta``.
        holds: whether some threshold of the grid was rejected (guaranteed).
        threshold: the guaranteed threshold; None when none holds.
        n: calibration photos in all.
        misses: misses at ``threshold`` (at the safest threshold when none holds).
        p_value: the p-value at that threshold.
        calibration: the calibration photos, per collection.
    """

    method: str
    target: float
    confidence: float
    holds: bool
    threshold: float | None
    n: int
    misses: int
    p_value: float
    calibration: tuple[CalibrationSet, ...]

    def to_json(self) -> dict[str, Any]:
        """Plain values (an agent file's metadata, a training log)."""
        data = asdict(self)
        data["calibration"] = [asdict(c) for c in self.calibration]
        return data

    def statement(self) -> str:
        """The promise in words (or why there is none)."""
        sets = " + ".join(f"{c.photos} {c.name}" for c in self.calibration)
        if not self.holds:
            return (
                f"no threshold is guaranteed to keep {self.target:g} at "
                f"{self.confidence:.0%} confidence: the safest misses {self.misses} "
                f"of {self.n} calibration photos ({sets}), p = {self.p_value:.3f}"
            )
        return (
            f"keeps >= {self.target:g} of the answers at threshold "
            f"{self.threshold:.4f}, with {self.confidence:.0%} confidence over the "
            f"{self.n} calibration photos ({sets}; {self.misses} missed)"
        )


def learn_then_test(
    thresholds: Sequence[float],
    misses: Sequence[int],
    n: int,
    *,
    target: float,
    delta: float = DEFAULT_DELTA,
    calibration: Sequence[CalibrationSet] = (),
) -> Guarantee:
    """The lowest threshold whose miss rate is at most ``1 - target`` with
    confidence ``1 - delta``, by fixed-sequence testing from the highest threshold
    down (module docstring).

    Args:
        thresholds: the grid (any order, distinct).
        misses: the calibration photos each threshold's choice lost, of ``n``.
        n: calibration photos.
        target: the accuracy target (``alpha = 1 - target``).
        delta: 1 - confidence, in (0, 1).
        calibration: the calibration photos' collections (their sizes sum to ``n``).

    Raises:
        ValueError: mismatched or empty grid, a count outside 0..n, a bad ``delta``
            or sizes that do not sum to ``n``.
    """
    _check_inputs(thresholds, misses, n, target, delta, calibration)
    alpha = 1.0 - target
    order = sorted(zip(thresholds, misses, strict=True), reverse=True)
    chosen: tuple[float, int, float] | None = None
    for threshold, missed in order:
        p = p_value(int(missed), n, alpha)
        if p > delta:
            break
        chosen = (float(threshold), int(missed), p)
    safest = int(order[0][1])
    found = chosen or (None, safest, p_value(safest, n, alpha))
    return Guarantee(
        method=METHOD,
        target=target,
        confidence=1.0 - delta,
        holds=chosen is not None,
        threshold=found[0],
        n=n,
        misses=found[1],
        p_value=found[2],
        calibration=tuple(calibration),
    )


def _check_inputs(
    thresholds: Sequence[float],
    misses: Sequence[int],
    n: int,
    target: float,
    delta: float,
    calibration: Sequence[CalibrationSet],
) -> None:
    """:func:`learn_then_test`'s arguments, or a one-line ValueError."""
    check_target(target)
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if len(thresholds) != len(misses) or not thresholds:
        raise ValueError("need one miss count per threshold, and some thresholds")
    if len(set(thresholds)) != len(thresholds):
        raise ValueError("thresholds must be distinct")
    if n <= 0:
        raise ValueError(f"need calibration photos, got n={n}")
    if calibration and sum(c.photos for c in calibration) != n:
        raise ValueError("the calibration sets' sizes must sum to n")


def misses_of(accuracy: float, n: int) -> int:
    """The photos missed at a kept share ``accuracy`` of ``n`` (a calibration
    table's ``cv_accuracy``), which must be a whole number of photos.

    Raises:
        ValueError: the share is not k/n for a whole k (an expected accuracy).
    """
    missed = (1.0 - accuracy) * n
    whole = round(missed)
    if abs(missed - whole) > 1e-6:
        raise ValueError(
            f"accuracy {accuracy} of {n} photos is not a whole number of misses"
        )
    return int(whole)

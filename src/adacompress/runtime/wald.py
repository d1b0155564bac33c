"""Wald's sequential probability ratio test: the drift test on the estimates after a
scene drift (:class:`DriftTest`), and the arithmetic the downshift test shares.

Failure rate ``e0`` (the agent on its own scene: what its target allows) against
``e1 = e0 + drift_test_shift`` (the agent lost on a new one): each estimate adds its
log-likelihood ratio; crossing ``log((1 - beta) / alpha)`` calls for a retrain,
crossing ``log(beta / (1 - alpha))`` keeps the agent and ends the test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from adacompress.runtime.settings import DriftSettings


def log_likelihood_ratio(failure: float, null: float, alternative: float) -> float:
    """One outcome's evidence for failure rate ``alternative`` over ``null``
    (``failure``: 1 lost, 0 kept; a share for an expected outcome)."""
    return failure * math.log(alternative / null) + (1 - failure) * math.log(
        (1 - alternative) / (1 - null)
    )


def wald_bounds(s: DriftSettings) -> tuple[float, float]:
    """``(accept the null at or below, accept the alternative at or above)`` for
    the drift test's alpha and beta."""
    alpha, beta = s.drift_test_alpha, s.drift_test_beta
    return math.log(beta / (1 - alpha)), math.log((1 - beta) / alpha)


@dataclass
class DriftTest:
    """The running test's log-likelihood ratio (None: no test running)."""

    llr: float | None = None

    @property
    def running(self) -> bool:
        return self.llr is not None

    def start(self) -> None:
        self.llr = 0.0

    def stop(self) -> None:
        self.llr = None

    def add(self, accuracy: float, s: DriftSettings) -> None:
        """One estimate's evidence; a clear "no change" ends the test."""
        if self.llr is None:
            return
        e0 = s.failure_rate
        self.llr += log_likelihood_ratio(1.0 - accuracy, e0, e0 + s.drift_test_shift)
        if self.llr <= wald_bounds(s)[0]:
            self.llr = None

    def rejects(self, s: DriftSettings) -> bool:
        """The evidence says the failure rate rose: retrain."""
        return self.llr is not None and self.llr >= wald_bounds(s)[1]

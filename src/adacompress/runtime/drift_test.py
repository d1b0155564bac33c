"""Wald's sequential probability ratio test on the estimates after a scene drift.

Failure rate ``e0 = drift_test_error`` (the agent on its own scene) against
``e1 = e0 + drift_test_shift`` (the agent lost on a new one): each estimate adds its
log-likelihood ratio; crossing ``log((1 - beta) / alpha)`` calls for a retrain,
crossing ``log(beta / (1 - alpha))`` keeps the agent and ends the test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from adacompress.runtime.settings import RuntimeSettings


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

    def add(self, accuracy: float, s: RuntimeSettings) -> None:
        """One estimate's evidence; a clear "no change" ends the test."""
        if self.llr is None:
            return
        e0 = s.drift_test_error
        e1 = e0 + s.drift_test_shift
        failure = 1.0 - accuracy
        self.llr += failure * math.log(e1 / e0) + (1 - failure) * math.log(
            (1 - e1) / (1 - e0)
        )
        if self.llr <= math.log(s.drift_test_beta / (1 - s.drift_test_alpha)):
            self.llr = None

    def rejects(self, s: RuntimeSettings) -> bool:
        """The evidence says the failure rate rose: retrain."""
        bound = math.log((1 - s.drift_test_beta) / s.drift_test_alpha)
        return self.llr is not None and self.llr >= bound

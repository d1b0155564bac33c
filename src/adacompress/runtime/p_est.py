"""How often the runtime pays for an estimate: ``p_est`` and the recent accuracy.

docs/formulas.md, "Inference, estimate, retrain": ``p_est <- p_est - omega * grad(A)``,
clipped to its bounds, where ``grad(A)`` is the slope of the mean accuracy of the last
``n`` estimates: falling accuracy estimates more often.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from adacompress.runtime.settings import EstimateSettings


def next_p_est(
    p_est: float, estimates: list[float], accuracy: float, settings: EstimateSettings
) -> tuple[float, list[float]]:
    """docs/formulas.md: ``p_est <- p_est - omega * grad(A)``, clipped to the bounds.

    ``grad(A)`` is the change of the recent accuracy (mean of the last ``window``
    estimates) that this estimate's ``accuracy`` causes: falling accuracy raises
    ``p_est``. Returns the new ``p_est`` and the kept window of accuracies.
    """
    window = [*estimates, accuracy][-settings.window :]
    if not estimates:
        return p_est, window
    slope = float(np.mean(window)) - float(np.mean(estimates[-settings.window :]))
    steady = len(window) == settings.window and min(window) == 1.0
    if steady and p_est > settings.p_est_initial:
        # The last n estimates were all right: back towards the resting rate (ours).
        initial = settings.p_est_initial
        p_est = initial + (p_est - initial) * settings.p_est_decay
    bounded = np.clip(
        p_est - settings.omega * slope, settings.p_est_min, settings.p_est_max
    )
    return float(bounded), window


@dataclass
class EstimateRate:
    """``p_est`` and the accuracies of the last ``window`` estimates.

    Args:
        p_est: the current estimation probability.
        estimates: the recent estimates' accuracies, oldest first.
    """

    p_est: float
    estimates: list[float] = field(default_factory=list)

    def add(self, accuracy: float, settings: EstimateSettings) -> None:
        """One more estimate: move ``p_est`` against the accuracy's slope."""
        self.p_est, self.estimates = next_p_est(
            self.p_est, self.estimates, accuracy, settings
        )

    def recent(self) -> float:
        """The mean accuracy of the window (1 before any estimate)."""
        return float(np.mean(self.estimates)) if self.estimates else 1.0

    def dropped(self, settings: EstimateSettings) -> bool:
        """A full window whose accuracy fell below ``retrain_below``."""
        full = len(self.estimates) >= settings.window
        return full and self.recent() < settings.retrain_below

    def hold(self, floor: float) -> None:
        """Keep ``p_est`` at least at ``floor`` (while a drift is being tested)."""
        self.p_est = max(self.p_est, floor)

    def reset(self, settings: EstimateSettings) -> None:
        """Back to the initial rate, with no estimates (after a retrain)."""
        self.p_est = settings.p_est_initial
        self.estimates = []

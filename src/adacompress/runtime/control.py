"""Online threshold control: every estimate's kept/lost outcome moves a survival
agent's threshold, and so does what the cloud answers to every other upload
(docs/formulas.md, "Threshold control").

Adaptive conformal inference (Gibbs & Candès, NeurIPS 2021) on the threshold's
logit: ``θ ← θ + γ·w·(err − α)`` with ``err`` 1 when the estimate lost the answer,
``α = 1 − target`` and ``w = p_est_initial / p_est`` (an estimate drawn at a higher
rate stands for fewer images, so the estimates weigh as an unbiased sample of the
stream). A lost answer raises the threshold by ``γ·w·(1 − α)``, a kept one lowers it by
``γ·w·α``: in the long run the weighted share of lost answers on estimates is at most
``α`` on *any* sequence of photos, since ``γ·Σ w·(err − α)`` is the threshold's total
climb, which its ceiling bounds. Between estimates each upload answered alone moves
it by ``feedback_step · (m − m₀)`` (:mod:`~adacompress.device.answer_feedback`):
free evidence, many times more of it than estimates, that reacts to a harder stream
before the first lost estimate does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from adacompress.runtime.settings import ControlSettings

HIGHEST_LOGIT = 20.0
"""The ceiling of the threshold's logit (survival 1 - 2e-9): there no candidate is
trusted and the agent sends the dearest, which cannot lose the answer (what the
long-run bound needs). Retrained weights, fitted on one scene's few photos, put their
survival well above 12 logits, the ceiling before (docs/results.md)."""


def logit(p: float) -> float:
    p = min(max(p, 1e-9), 1.0 - 1e-9)
    return math.log(p / (1.0 - p))


def survival_threshold(value: float) -> float:
    """The survival the threshold's logit ``value`` stands for."""
    return float(1.0 / (1.0 + np.exp(-value)))


@dataclass
class ThresholdControl:
    """The controlled threshold and what it has seen.

    Args:
        value: the threshold's logit now (None: the agent's own, not yet started).
        start: the logit it started from (the agent's calibrated threshold).
        updates: estimates that moved it.
        weight: the estimates' total weight ``Σ w``.
        lost: the weight of the estimates that lost the answer ``Σ w·err``.
        remembered: the logit of the agent the drift monitor remembers (None:
            none is remembered).
    """

    value: float | None = None
    start: float | None = None
    updates: int = 0
    weight: float = 0.0
    lost: float = 0.0
    remembered: float | None = None

    def begin(self, threshold: float) -> None:
        """Start from the agent's calibrated ``threshold`` (once per run)."""
        if self.value is None:
            self.value = self.start = min(logit(threshold), HIGHEST_LOGIT)

    @property
    def threshold(self) -> float:
        """The survival a candidate needs to be sent now."""
        if self.value is None:
            raise ValueError("the threshold control has not started")
        return survival_threshold(self.value)

    def update(
        self, accuracy: float, weight: float, alpha: float, settings: ControlSettings
    ) -> None:
        """One estimate: ``accuracy`` (1: the agent's upload kept the answer) at
        ``weight`` ``p_est_initial / p_est``."""
        if self.value is None:
            raise ValueError("the threshold control has not started")
        err = 1.0 - accuracy
        moved = self.value + settings.control_step * weight * (err - alpha)
        lowest = logit(settings.control_lowest)
        self.value = float(min(max(moved, lowest), HIGHEST_LOGIT))
        self.updates += 1
        self.weight += weight
        self.lost += weight * err

    def nudge(
        self, step: float, settings: ControlSettings, highest: float = HIGHEST_LOGIT
    ) -> None:
        """Move the threshold's logit by ``step`` (an answer's feedback), within its
        floor and ceiling; a rise stops ``rise_margin`` above ``highest``, the logit
        of the answered photo's best candidate (above it nothing more is trusted,
        and a higher threshold would only delay the way back)."""
        if self.value is None:
            raise ValueError("the threshold control has not started")
        lowest = logit(settings.control_lowest)
        moved = self.value + step
        if step > 0:
            moved = min(moved, max(self.value, highest + settings.rise_margin))
        self.value = float(min(max(moved, lowest), HIGHEST_LOGIT))

    def retrain_starts(self, remembered: bool) -> None:
        """The serving weights are put aside (``remembered``): their threshold is
        noted. The retrained weights go on from the threshold the scene that
        called for them has steered to."""
        if remembered:
            self.remembered = self.value

    def swapped(self) -> None:
        """The remembered weights came back: they start again from the calibrated
        threshold (what theirs was steered to includes the climb on the scene that
        put them aside)."""
        if self.value is not None and self.remembered is not None:
            self.value, self.remembered = self.start, self.value

    def miss_rate(self) -> float | None:
        """The weighted share of estimates that lost the answer (None: none yet)."""
        return self.lost / self.weight if self.weight else None

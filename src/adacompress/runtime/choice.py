"""Which action the running agent sends for an image: the policy's greedy choice, or,
with threshold control, the cheapest candidate trusted at the threshold that the
estimates and the cloud's answers move (:mod:`~adacompress.runtime.control`), the
dearest when none is."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from adacompress.core.labels import Label
from adacompress.core.objective import Objective
from adacompress.device.answer_feedback import AnswerFeedback
from adacompress.device.policies.base import LearnedPolicy
from adacompress.device.policies.survival import SurvivalPolicy, cheapest_trusted
from adacompress.exchange.environment import CompressionEnv, Sample
from adacompress.runtime.control import HIGHEST_LOGIT, ThresholdControl, logit
from adacompress.runtime.drift.monitor import DriftMonitor
from adacompress.runtime.settings import RuntimeSettings


class ActionChoice:
    """The agent's choice among ``candidates``, at the controlled threshold when the
    settings turn the control on and the agent has a threshold (a survival agent).

    Args:
        metadata: the agent file's; its answer feedback, if it has one, moves the
            threshold with every answer (without: the estimates alone).

    Raises:
        ValueError: a damaged answer feedback (one line).
    """

    def __init__(
        self,
        policy: LearnedPolicy,
        candidates: Sequence[int],
        objective: Objective,
        settings: RuntimeSettings,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.policy, self.candidates, self.settings = policy, candidates, settings
        self.feedback = AnswerFeedback.from_metadata(metadata or {})
        target = objective.target
        self.alpha = 1.0 - (target if target is not None else 0.99)
        """the share of lost answers the threshold control aims at"""
        self.highest = HIGHEST_LOGIT
        """the logit of the highest survival among the last photo's candidates"""
        self.controlled: SurvivalPolicy | None = None
        """the survival policy whose threshold the control moves (None: frozen)"""
        if settings.control.threshold_control and isinstance(policy, SurvivalPolicy):
            self.controlled = policy

    @property
    def retrain_learning_rate(self) -> float | None:
        """The rate a retrain learns at: the control's while it steers (it finds
        the new scene's threshold), else None (the agent's own)."""
        if self.controlled is None:
            return None
        return self.settings.control.retrain_learning_rate

    def begin(self, control: ThresholdControl) -> None:
        """Start the control (if it is on) from the threshold the answer feedback
        rests at, the one that meets the target on average; without one, from the
        agent's own (which may be a safer, guaranteed one)."""
        if self.controlled is not None:
            control.begin(self._calibrated_threshold(self.controlled))

    def _calibrated_threshold(self, policy: SurvivalPolicy) -> float:
        own = policy.settings.threshold
        return own if self.feedback is None else self.feedback.threshold

    def choose(self, sample: Sample, control: ThresholdControl) -> int:
        """The agent's greedy choice: at the controlled threshold when there is one
        (at the ceiling nothing is trusted)."""
        policy = self.controlled
        if policy is None:
            return self.policy.act(sample.features, candidates=self.candidates)
        if control.value is None:
            raise ValueError("the threshold control has not started")
        ceiling = control.value >= HIGHEST_LOGIT
        index, self.highest = self._at(
            policy, sample, math.inf if ceiling else control.value
        )
        return index

    def calibrated(self, sample: Sample) -> int | None:
        """The choice at the threshold the control started from (None: no control):
        what the drift test asks about, since its null is the agent's own failure
        rate at its calibrated threshold, which a climbing control would hide."""
        policy = self.controlled
        if policy is None:
            return None
        start = min(logit(self._calibrated_threshold(policy)), HIGHEST_LOGIT)
        return self._at(policy, sample, start)[0]

    def drift_check(
        self, env: CompressionEnv, sample: Sample, index: int, monitor: DriftMonitor
    ) -> tuple[float | None, int]:
        """While a drift test runs under threshold control: the accuracy of the
        calibrated choice, if it is not ``index`` (None otherwise), and the bytes its
        upload adds to the estimate's."""
        other = self.calibrated(sample) if monitor.testing else None
        if other is None or other == index:
            return None, 0
        result, _, uploaded = env.step_with_reference(sample, other)
        return result.accuracy, uploaded - result.reference_bytes

    def _at(
        self, policy: SurvivalPolicy, sample: Sample, threshold: float
    ) -> tuple[int, float]:
        """The cheapest candidate trusted at the threshold's logit ``threshold``
        (compared in logits: a survival rounds to 1 in float32 from about 17 on)
        and the logit of the photo's best candidate."""
        allowed = policy.allowed(self.candidates)
        scores = policy.scores(sample.features[None])[:, allowed].astype(np.float64)
        cost = np.asarray(policy.cost(), dtype=np.float64)[allowed]
        highest = float(scores.max())
        if not (scores >= threshold).any():
            # Nothing trusted: the dearest upload, so a climbing threshold only ever
            # adds safety (the likeliest to survive may be a cheap one).
            return int(allowed[int(np.argmax(cost))]), highest
        return int(allowed[cheapest_trusted(scores, threshold, cost)[0]]), highest

    def answered(self, control: ThresholdControl, answer: Sequence[Label]) -> None:
        """The cloud's answer to an upload sent alone moves the controlled threshold
        by its feedback (if there is a control and a feedback model). An answer to
        the reference itself counts too: it cannot have lost anything, but the
        cloud's doubt about it says the stream is harder than training (without it
        the control fell under the target on dark photos: docs/results.md)."""
        step = self.settings.control.feedback_step
        if self.controlled is not None and self.feedback is not None and step > 0:
            excess = self.feedback.excess(answer)
            control.nudge(step * excess, self.settings.control, self.highest)

    def estimated(
        self, control: ThresholdControl, accuracy: float, p_est: float
    ) -> None:
        """An estimate's outcome moves the controlled threshold (if there is one)."""
        if self.controlled is not None:
            # An estimate drawn at a higher rate stands for fewer photos.
            weight = (self.settings.estimate.p_est_initial or p_est) / p_est
            control.update(accuracy, weight, self.alpha, self.settings.control)

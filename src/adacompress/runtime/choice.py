"""Which action the running agent sends for an image: the policy's greedy choice, or,
with threshold control, the cheapest candidate trusted at the threshold that the
estimates move (:mod:`~adacompress.runtime.control`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from adacompress.core.objective import Objective
from adacompress.device.policies.base import LearnedPolicy
from adacompress.device.policies.survival import SurvivalPolicy, cheapest_trusted
from adacompress.exchange.environment import Sample
from adacompress.runtime.control import ThresholdControl
from adacompress.runtime.settings import RuntimeSettings


class ActionChoice:
    """The agent's choice among ``candidates``, at the controlled threshold when the
    settings turn the control on.

    Raises:
        ValueError: threshold control asked of an agent that has no threshold.
    """

    def __init__(
        self,
        policy: LearnedPolicy,
        candidates: Sequence[int],
        objective: Objective,
        settings: RuntimeSettings,
    ) -> None:
        self.policy, self.candidates, self.settings = policy, candidates, settings
        target = objective.target
        self.alpha = 1.0 - (target if target is not None else 0.99)
        """the share of lost answers the threshold control aims at"""
        self.controlled: SurvivalPolicy | None = None
        """the survival policy whose threshold the control moves (None: frozen)"""
        if settings.control.threshold_control:
            if not isinstance(policy, SurvivalPolicy):
                raise ValueError(
                    "--threshold-control needs a survival agent: a Q-network agent has "
                    "no threshold to move"
                )
            self.controlled = policy

    def begin(self, control: ThresholdControl) -> None:
        """Start the control from the agent's calibrated threshold (if it is on)."""
        if self.controlled is not None:
            control.begin(self.controlled.settings.threshold)

    def choose(self, sample: Sample, control: ThresholdControl) -> int:
        """The agent's greedy choice: at the controlled threshold when there is one."""
        policy = self.controlled
        if policy is None:
            return self.policy.act(sample.features, candidates=self.candidates)
        allowed = policy.allowed(self.candidates)
        survival = policy.survival(sample.features[None])[:, allowed]
        cost = np.asarray(policy.cost(), dtype=np.float64)[allowed]
        threshold = control.threshold
        return int(allowed[cheapest_trusted(survival, threshold, cost)[0]])

    def estimated(
        self, control: ThresholdControl, accuracy: float, p_est: float
    ) -> None:
        """An estimate's outcome moves the controlled threshold (if there is one)."""
        if self.controlled is not None:
            # An estimate drawn at a higher rate stands for fewer photos.
            weight = (self.settings.estimate.p_est_initial or p_est) / p_est
            control.update(accuracy, weight, self.alpha, self.settings.control)

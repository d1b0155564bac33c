"""Adapting downwards: the runtime notices wasted bytes, not only lost answers.

Every estimate (which uploads the reference anyway) also uploads the next cheaper
candidate below its choice, and checks whether that keeps the reference's answer. A
sequential test on those probes (Wald's) decides: when the cheaper step loses answers
no more often than the agent's own target allows (``drift_test_error``), the runtime
sends one candidate cheaper from then on (``level`` + 1) and tests the next step; when
it loses them ``downshift_shift`` more often, the agent is tight there and the test
starts again. Evidence comes as fast as estimates do: fastest after a scene drift,
when the drift test holds ``p_est`` up. A lost answer at a lowered
level raises it one step; a retrain, a scene drift or a swapped-in agent resets it
(that agent's own calibration first).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from adacompress.runtime.settings import RuntimeSettings


@dataclass
class Downshift:
    """Candidates below the policy's choice to send, and the running test."""

    level: int = 0
    """send the candidate this many steps cheaper than the policy's choice"""
    llr: float = 0.0
    """log-likelihood ratio of "the next step down is safe" over "it loses answers\""""
    steps_down: int = 0
    """times the level went down in this run"""

    def add(self, kept: float, s: RuntimeSettings) -> None:
        """One probe: whether the next cheaper candidate kept the caller's answer."""
        e0 = s.drift_test_error
        e1 = e0 + s.downshift_shift
        failure = 1.0 - kept
        self.llr += failure * math.log(e0 / e1) + (1 - failure) * math.log(
            (1 - e0) / (1 - e1)
        )
        if self.llr >= math.log((1 - s.drift_test_beta) / s.drift_test_alpha):
            self.level += 1
            self.steps_down += 1
            self.llr = 0.0
        elif self.llr <= math.log(s.drift_test_beta / (1 - s.drift_test_alpha)):
            self.llr = 0.0  # the agent is tight here: test afresh

    def lost(self) -> None:
        """An estimate lost the answer: one step back up (if lowered)."""
        if self.level > 0:
            self.level -= 1
            self.llr = 0.0

    def reset(self) -> None:
        """The policy's own choices again (after a retrain, drift or swap)."""
        self.level, self.llr = 0, 0.0


def ladder(sizes: np.ndarray, candidates: Sequence[int]) -> list[int]:
    """The candidates from the cheapest upload to the largest, for one image.

    Shape: sizes (n_actions,) bytes of every action's upload.
    """
    return sorted(candidates, key=lambda i: (float(sizes[i]), i))


def lowered(rungs: list[int], choice: int, level: int) -> int:
    """``choice`` moved ``level`` rungs down ``rungs`` (never below the first)."""
    position = rungs.index(choice) if choice in rungs else len(rungs) - 1
    return rungs[max(0, position - level)]

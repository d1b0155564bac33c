"""Adapting downwards: the runtime notices wasted bytes, not only lost answers.

A probe uploads the next cheaper candidate below what was sent (by this image's own
encoded sizes) and checks whether it keeps the answer: the reference's in an estimate
(every estimate probes), the sent upload's otherwise. A sequential test on the probes
(Wald's, the drift test's rates the other way round) decides: when the cheaper step
loses answers at the agent's target rate (the drift test's ``e0``), not
``downshift_shift`` more often, the runtime sends one candidate cheaper than the
policy's choice from then on (``level`` + 1) and tests the next step; a lost probe
that tips the test says the agent is tight there and ends the *search*. While
searching -- from the start of a run, after a retrain, a swapped-in agent or a drift
the agent passed, when the agent may be over-cautious on what it now sees -- a share
``downshift_probe`` of the other images probe too, so that a search costs tens of
small uploads rather than reference uploads. A lost answer in an estimate at a
lowered level raises it one step; a retrain or a scene drift resets it to the
policy's own choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from adacompress.device.actions import Action
from adacompress.exchange.environment import CompressionEnv, Sample
from adacompress.runtime.settings import DriftSettings, RuntimeSettings
from adacompress.runtime.wald import log_likelihood_ratio, wald_bounds


@dataclass
class Downshift:
    """Candidates below the policy's choice to send, and the running test."""

    level: int = 0
    """send the candidate this many steps cheaper than the policy's choice"""
    llr: float = 0.0
    """log-likelihood ratio of "the next step down is safe" over "it loses answers\""""
    steps_down: int = 0
    """times the level went down in this run"""
    searching: bool = True
    """other images probe too: the agent's calibration on these pictures is in
    doubt"""

    def add(self, kept: float, drift: DriftSettings, shift: float) -> None:
        """One probe: whether the next cheaper candidate kept the caller's answer,
        tested at the drift test's rates, against ``shift`` more lost answers."""
        e0 = drift.failure_rate
        # The drift test the other way round: "safe" (e0) is the alternative.
        self.llr += log_likelihood_ratio(1.0 - kept, e0 + shift, e0)
        give_up, step = wald_bounds(drift)
        if self.llr >= step:
            self.level += 1
            self.steps_down += 1
            self.llr = 0.0
        elif self.llr <= give_up:
            self.llr = 0.0  # the agent is tight here: test afresh
            self.searching = False

    def lost(self) -> None:
        """An estimate lost the answer: one step back up (if lowered)."""
        if self.level > 0:
            self.level -= 1
            self.llr = 0.0

    def reset(self, *, search: bool) -> None:
        """The policy's own choices again (after a retrain, drift or swap); with
        ``search``, look for wasted bytes from here."""
        self.level, self.llr, self.searching = 0, 0.0, search

    def search(self) -> None:
        """Look for wasted bytes (an agent kept by the drift test)."""
        self.searching = True


def ladder(sizes: np.ndarray, candidates: Sequence[int]) -> list[int]:
    """The candidates from the cheapest upload to the largest, for one image.

    Shape: sizes (n_actions,) bytes of every action's upload.
    """
    return sorted(candidates, key=lambda i: (float(sizes[i]), i))


def lowered(rungs: list[int], choice: int, level: int) -> int:
    """``choice`` moved ``level`` rungs down ``rungs`` (never below the first)."""
    position = rungs.index(choice) if choice in rungs else len(rungs) - 1
    return rungs[max(0, position - level)]


class CheaperProbe:
    """The downshift on one image: the policy's choice lowered by the level, and the
    probe of the next cheaper candidate (scored against an answer already paid for).

    Args:
        env: the session that encodes, asks and scores.
        candidates: the actions the runtime may send.
        settings: the runtime's constants (the drift test's rates, the downshift's).
    """

    def __init__(
        self,
        env: CompressionEnv,
        candidates: Sequence[int],
        settings: RuntimeSettings,
    ) -> None:
        self.env, self.candidates, self.settings = env, candidates, settings

    def rungs(self, sample: Sample) -> list[int]:
        return ladder(self.env.sizes(sample), self.candidates)

    def lowered(self, shift: Downshift, sample: Sample, index: int) -> int:
        """The policy's choice ``index``, lowered by the downshift level."""
        if shift.level == 0:
            return index
        return lowered(self.rungs(sample), index, shift.level)

    def probe(
        self, shift: Downshift, sample: Sample, index: int, *, against: Action
    ) -> int:
        """Upload the next cheaper candidate below ``index`` and test whether it
        keeps the answer of ``against`` (uploaded already). Returns its bytes."""
        if not self.settings.downshifting.downshift:
            return 0
        cheaper = lowered(self.rungs(sample), index, 1)
        if cheaper == index:
            return 0  # already the cheapest
        action = self.env.actions[cheaper]
        found = self.env.outcomes(sample, [against, action])
        kept = self.env.score(found[against], found[action]).accuracy
        shift.add(kept, self.settings.drift, self.settings.downshifting.downshift_shift)
        return found[action].nbytes

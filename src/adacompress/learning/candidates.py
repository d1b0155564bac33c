"""Every candidate upload of every photo, as a survival agent and the cloud see it:
the table the offline guarantee and the answer feedback are both computed from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adacompress.device.actions import REFERENCE_ACTION
from adacompress.device.answer_feedback import confidence
from adacompress.device.compressor import Compressor
from adacompress.device.policies.survival import SurvivalPolicy, cheapest_trusted
from adacompress.exchange.environment import CompressionEnv, Skipped
from adacompress.learning.evaluate import collect


@dataclass(frozen=True)
class CandidateTable:
    """Rows: the photos that could be scored; columns: the agent's candidates in
    its order. ``kept`` is 1 where the upload kept the reference's answer; ``top1``
    and ``margin`` are the cloud's confidence in the upload's answer."""

    survival: np.ndarray
    cost: np.ndarray
    kept: np.ndarray
    top1: np.ndarray
    margin: np.ndarray
    skipped: list[Skipped]

    def chosen(self, threshold: float) -> np.ndarray:
        """The column the agent sends for each photo at ``threshold``."""
        return cheapest_trusted(self.survival, threshold, self.cost)


def candidate_table(
    env: CompressionEnv, compressor: Compressor, photos: Sequence[Path]
) -> CandidateTable:
    """Ask the cloud about every candidate of every photo once (answers cached).

    Raises:
        ValueError: the agent is not a survival agent (it has no threshold), or no
            photo could be scored.
    """
    policy = compressor.learned
    if not isinstance(policy, SurvivalPolicy):
        raise ValueError(f"{compressor.source} is not a survival agent")
    collected = collect(env, photos, progress=False)
    candidates = np.asarray(compressor.candidates)
    actions = [env.actions[c] for c in candidates]
    shape = (len(collected.outcomes), len(actions))
    kept, top1, margin = np.empty(shape), np.empty(shape), np.empty(shape)
    for row, outcome in enumerate(collected.outcomes):
        for col, action in enumerate(actions):
            score = env.score(outcome[REFERENCE_ACTION], outcome[action])
            kept[row, col] = score.accuracy
            top1[row, col], margin[row, col] = confidence(outcome[action].answer)
    if not collected.samples:
        raise ValueError("none of the photos could be scored")
    features = np.stack([s.features for s in collected.samples])
    survival = policy.survival(features)[:, candidates]
    cost = np.asarray(policy.cost(), dtype=np.float64)[candidates]
    return CandidateTable(survival, cost, kept, top1, margin, collected.skipped)

"""Fit a survival agent's answer feedback (:mod:`adacompress.device.answer_feedback`)
on its training photos: every candidate upload of every photo asked once (cached),
the model fitted on all of them, its resting rate taken at the agent's threshold."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from adacompress.device.actions import REFERENCE_ACTION
from adacompress.device.answer_feedback import AnswerFeedback, confidence, fit_weights
from adacompress.device.compressor import Compressor
from adacompress.device.policies.survival import SurvivalPolicy, cheapest_trusted
from adacompress.exchange.environment import CompressionEnv
from adacompress.learning.evaluate import collect


def fit_answer_feedback(
    env: CompressionEnv,
    compressor: Compressor,
    photos: Sequence[Path],
    *,
    threshold: float | None = None,
    progress: bool = False,
) -> AnswerFeedback:
    """The answer feedback of ``compressor``'s survival agent on ``photos`` (its
    training photos: the test split never chooses anything), its rate taken at
    ``threshold`` (default: the agent's own; give the one that meets the target on
    average, so that the control steers to the target, not to a safer guarantee).

    Raises:
        ValueError: the agent is not a survival agent, or no photo could be used.
    """
    policy = compressor.learned
    if not isinstance(policy, SurvivalPolicy):
        raise ValueError("answer feedback needs a survival agent (it has a threshold)")
    collected = collect(env, photos, progress=progress)
    if not collected.samples:
        raise ValueError("answer feedback: none of the photos could be used")
    candidates = np.asarray(compressor.candidates)
    actions = [env.actions[c] for c in candidates]
    shape = (len(collected.outcomes), len(actions))
    top1, margin, lost = np.empty(shape), np.empty(shape), np.empty(shape)
    for row, outcome in enumerate(collected.outcomes):
        for col, action in enumerate(actions):
            top1[row, col], margin[row, col] = confidence(outcome[action].answer)
            kept = env.score(outcome[REFERENCE_ACTION], outcome[action]).accuracy
            lost[row, col] = 1.0 - kept
    weights = fit_weights(top1, margin, lost)
    features = np.stack([s.features for s in collected.samples])
    survival = policy.survival(features)[:, candidates]
    cost = np.asarray(policy.cost(), dtype=np.float64)[candidates]
    at = policy.settings.threshold if threshold is None else threshold
    chosen = cheapest_trusted(survival, at, cost)
    rows = np.arange(len(chosen))
    model = AnswerFeedback(weights, 0.5, at)
    rate = float(np.mean(model.lost(top1[rows, chosen], margin[rows, chosen])))
    return AnswerFeedback(weights, rate, at)

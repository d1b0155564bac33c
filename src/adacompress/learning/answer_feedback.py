"""Fit a survival agent's answer feedback (:mod:`adacompress.device.answer_feedback`)
on its training photos: every candidate upload of every photo asked once (cached),
the model fitted on all of them, its resting rate taken at a threshold."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from adacompress.device.answer_feedback import AnswerFeedback, fit_weights
from adacompress.device.compressor import Compressor
from adacompress.exchange.environment import CompressionEnv
from adacompress.learning.candidates import candidate_table


def fit_answer_feedback(
    env: CompressionEnv,
    compressor: Compressor,
    photos: Sequence[Path],
    *,
    threshold: float | None = None,
) -> AnswerFeedback:
    """The answer feedback of ``compressor``'s survival agent on ``photos`` (its
    training photos: the test split never chooses anything), its rate taken at
    ``threshold`` (default: the agent's own; give the one that meets the target on
    average, so that the control steers to the target, not to a safer guarantee).

    Raises:
        ValueError: the agent is not a survival agent, or no photo could be used.
    """
    table = candidate_table(env, compressor, photos)
    weights = fit_weights(table.top1, table.margin, 1.0 - table.kept)
    at = compressor.learned.settings.threshold if threshold is None else threshold
    sent = (np.arange(len(table.kept)), table.chosen(at))
    model = AnswerFeedback(weights, 0.5, at)
    rate = float(np.mean(model.lost(table.top1[sent], table.margin[sent])))
    return AnswerFeedback(weights, rate, at)

"""The answer feedback: what the cloud's confidence in an upload says about whether
it lost the reference's answer (issue 34)."""

from __future__ import annotations

import numpy as np
import pytest

from adacompress.core.labels import Label
from adacompress.device.answer_feedback import (
    AnswerFeedback,
    confidence,
    fit_weights,
)


def test_confidence_is_the_top_score_and_its_lead() -> None:
    answer = [Label(3, "a", 0.7), Label(4, "b", 0.2)]
    assert confidence(answer) == pytest.approx((0.7, 0.5))
    assert confidence([Label(3, "a", 0.6)]) == pytest.approx((0.6, 0.6))
    assert confidence([]) == (0.0, 0.0)


def test_the_fit_recovers_a_known_logistic_model() -> None:
    rng = np.random.default_rng(0)
    top1 = rng.uniform(0, 1, 20_000)
    margin = top1 * rng.uniform(0, 1, top1.size)
    truth = np.array([-6.0, 3.0, 1.0])
    p = 1 / (1 + np.exp(-(truth[0] * top1 + truth[1] * margin + truth[2])))
    lost = (rng.random(top1.size) < p).astype(float)
    assert np.allclose(fit_weights(top1, margin, lost), truth, atol=0.3)


def test_a_less_sure_answer_has_a_positive_excess() -> None:
    model = AnswerFeedback((-10.0, 0.0, 5.0), rate=0.1, threshold=0.99)
    unsure = [Label(1, "a", 0.3), Label(2, "b", 0.25)]
    sure = [Label(1, "a", 0.95), Label(2, "b", 0.01)]
    assert model.excess(unsure) > 0 > model.excess(sure)
    saved = model.to_metadata()
    assert AnswerFeedback.from_metadata({"answer_feedback": saved}) == model
    assert AnswerFeedback.from_metadata({}) is None

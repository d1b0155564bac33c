"""Fitting a survival agent's answer feedback on its training photos (issue 34)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adacompress.device.actions import REFERENCE_ACTION, paper_actions
from adacompress.device.compressor import Compressor
from adacompress.exchange.cache import AnswerCache
from adacompress.exchange.environment import CompressionEnv
from adacompress.learning.answer_feedback import fit_answer_feedback
from adacompress.learning.evaluate import collect
from tests.adacompress.fakes import MeanFeatures, SizeCloud, write_photos
from tests.adacompress.runtime.test_control import GradedSurvival
from tests.adacompress.runtime.test_loop import ScriptedAgent


def test_the_feedback_is_fitted_on_every_candidate_and_rests_at_the_threshold(
    tmp_path: Path,
) -> None:
    """SizeCloud is equally sure of every answer, so the model can only learn the
    share of lost answers over all (photo, candidate) pairs: that is its rate."""
    photos = write_photos(tmp_path / "img", 6)
    env = CompressionEnv(
        SizeCloud(),
        AnswerCache(tmp_path / "cache.sqlite"),
        actions=paper_actions(),
        extractor=MeanFeatures(),
    )
    compressor = Compressor(GradedSurvival(), MeanFeatures(), paper_actions())
    model = fit_answer_feedback(env, compressor, photos)
    outcomes = collect(env, photos, progress=False).outcomes
    actions = [env.actions[c] for c in compressor.candidates]
    lost = [
        1 - env.score(o[REFERENCE_ACTION], o[a]).accuracy
        for o in outcomes
        for a in actions
    ]
    assert 0 < np.mean(lost) < 1
    assert model.rate == pytest.approx(float(np.mean(lost)), abs=0.01)
    with pytest.raises(ValueError, match="survival agent"):
        q_agent = Compressor(ScriptedAgent([5]), MeanFeatures(), paper_actions())
        fit_answer_feedback(env, q_agent, photos)

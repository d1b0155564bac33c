"""Issue 34, scene changes under threshold control: the drift test asks about the
calibrated agent, a remembered scene gets its chance before a retrain (and before
the estimate rate is held up for the test), a swap back rests the estimate rate,
and at the ceiling nothing is trusted."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from adacompress.runtime.control import HIGHEST_LOGIT
from adacompress.runtime.drift.monitor import DriftMonitor
from adacompress.runtime.settings import DriftSettings, RuntimeSettings
from tests.adacompress.runtime.test_control import (
    CONTROLLED,
    GradedSurvival,
)
from tests.adacompress.runtime.test_loop import make_runtime, write_scene


def test_the_drift_test_asks_about_the_calibrated_choice(tmp_path: Path) -> None:
    """A control that climbed sends a dearer upload than the agent's calibrated
    one; while a drift test runs, an estimate also uploads the calibrated choice,
    and that choice's outcome is what the test weighs (its null is the agent's own
    failure rate at its calibrated threshold)."""
    paths = write_scene(tmp_path / "img", 1, 128.0, seed=5, shape=(96, 128))
    runtime = make_runtime(tmp_path, CONTROLLED, [], policy=GradedSurvival())
    env, state, choice = runtime.env, runtime.state, runtime.choice
    sample = env.prepare(paths, progress=False)[0][0]
    sent = choice.choose(sample, state.control)
    assert sent == 5 and choice.calibrated(sample) == 5  # sigmoid(5) >= 0.99
    assert choice.drift_check(env, sample, sent, state.monitor) == (None, 0)
    state.control.value = 6.5  # steered up on a harder scene
    sent = choice.choose(sample, state.control)
    assert sent == 7 and choice.calibrated(sample) == 5
    assert choice.drift_check(env, sample, sent, state.monitor) == (None, 0)
    state.monitor.test.start()
    accuracy, extra = choice.drift_check(env, sample, sent, state.monitor)
    calibrated = env.actions[5]
    assert accuracy == env.step_with_reference(sample, 5)[0].accuracy
    assert extra == env.outcomes(sample, [calibrated])[calibrated].nbytes > 0
    # The estimate's own outcome moves the rate; the calibrated one the test.
    drift = state.settings.drift
    e0, e1 = drift.failure_rate, drift.failure_rate + drift.drift_test_shift
    state.estimated(1.0, 0.0)
    assert state.rate.estimates == [1.0]
    assert state.monitor.test.llr == pytest.approx(math.log(e1 / e0))
    # An estimate whose choice was the reference counts for the test only through
    # the calibrated choice, never for the rate.
    state.estimated(1.0, None, reference=True)
    state.estimated(1.0, 0.0, reference=True)
    assert state.rate.estimates == [1.0]
    assert state.monitor.test.llr == pytest.approx(2 * math.log(e1 / e0))


def test_a_retrain_waits_until_a_remembered_scene_could_come_back() -> None:
    monitor = DriftMonitor(DriftSettings())
    monitor.test.start()
    for _ in range(3):
        monitor.add_estimate(0.0)
    assert monitor.calls_for_retrain()
    monitor.scenes.match_pending = True  # the new scene may be the remembered one
    assert not monitor.calls_for_retrain()
    monitor.scenes.match_pending = False  # it was not
    assert monitor.calls_for_retrain()


def test_p_est_is_held_up_once_no_remembered_scene_may_come_back(
    tmp_path: Path,
) -> None:
    runtime = make_runtime(tmp_path, RuntimeSettings(), [0])
    state = runtime.state
    state.monitor.test.start()
    state.monitor.scenes.match_pending = True
    assert state.next_p_est() == state.settings.estimate.p_est_initial
    state.monitor.scenes.match_pending = False
    assert state.next_p_est() == state.settings.drift.drift_p_est


def test_a_day_that_comes_back_swaps_its_agent_in_without_a_retrain(
    tmp_path: Path,
) -> None:
    """The day's agent lost answers on the night and was retrained; when the day
    returns, the night agent loses estimates on it, but the retrain that the drift
    test calls for waits until the day is recognised, and the swap brings the day's
    agent back with the estimate rate at rest."""
    settings = RuntimeSettings.of(
        p_est_initial=0.0,
        p_est_min=0.0,
        p_est_max=1.0,
        drift_p_est=0.0,
        drift_window=6,
        drift_threshold=8.0,
    )
    day = write_scene(tmp_path / "day", 30, 200.0, seed=1)
    night = write_scene(tmp_path / "night", 20, 40.0, seed=2)
    runtime = make_runtime(tmp_path, settings, [0])  # q5: SizeCloud loses it
    for path in day[:10] + night[:6]:
        runtime.process(path)
    runtime.state.start_retrain()
    runtime.state.end_retrain()
    for path in night[6:20]:
        runtime.process(path)
    runtime.state.rate.p_est = 1.0  # e.g. what a drift at night left
    kinds = [runtime.process(path).kind for path in day[10:30]]
    assert "estimate" in kinds and "retrain" not in kinds
    assert runtime.state.monitor.scenes.swaps == 1
    assert runtime.state.retrains == 1  # the night's, none for the day
    assert runtime.state.rate.p_est == 0.0 and kinds[-1] == "inference"


def test_at_the_ceiling_nothing_is_trusted(tmp_path: Path) -> None:
    """Retrained weights may put a cheap candidate's survival above any threshold;
    at the ceiling the dearest upload goes out anyway, so that the control's climb
    always ends the losses (what its long-run bound needs)."""
    paths = write_scene(tmp_path / "img", 1, 128.0, seed=7, shape=(96, 128))
    sure = GradedSurvival(first=HIGHEST_LOGIT + 10.0)  # every survival rounds to 1
    runtime = make_runtime(tmp_path, CONTROLLED, [], policy=sure)
    sample = runtime.env.prepare(paths, progress=False)[0][0]
    control = runtime.state.control
    control.value = HIGHEST_LOGIT - 0.1
    assert runtime.choice.choose(sample, control) == 0  # the cheapest is trusted
    control.value = HIGHEST_LOGIT
    assert runtime.choice.choose(sample, control) == 7  # the dearest: q75
    # Below it the threshold is compared in logits, where float32 survivals of
    # logits 17 .. 24 would all round to 1.
    graded = make_runtime(
        tmp_path / "graded", CONTROLLED, [], policy=GradedSurvival(first=15.0)
    )
    graded.state.control.value = HIGHEST_LOGIT - 0.5
    assert graded.choice.choose(sample, graded.state.control) == 5  # logit 20

"""Issue 34: the threshold control (adaptive conformal inference on the survival
threshold) and the live certificate (a confidence sequence on the kept rate)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from adacompress.device.policies.settings import PolicySettings, TrainingProgress
from adacompress.device.policies.survival import SurvivalPolicy
from adacompress.runtime.certificate import KeptCertificate, most_lost
from adacompress.runtime.control import (
    HIGHEST_LOGIT,
    ThresholdControl,
    logit,
)
from adacompress.runtime.loop import Runtime
from adacompress.runtime.run import live_postfix, live_summary
from adacompress.runtime.saved_state import check_state, saved_state
from adacompress.runtime.settings import ControlSettings, RuntimeSettings
from tests.adacompress.runtime.test_loop import ScriptedAgent, make_runtime, write_scene


def run_controller(
    miss: float, steps: int, seed: int, step: float = 0.5
) -> tuple[ThresholdControl, np.ndarray, np.ndarray]:
    """A Bernoulli stream of outcomes whose miss probability at threshold logit
    ``θ`` is ``sigmoid(miss − θ)``; returns the control and each step's θ and err."""
    settings = ControlSettings(control_step=step)
    control = ThresholdControl()
    control.begin(0.99)
    rng = np.random.default_rng(seed)
    thetas, errs = np.empty(steps), np.empty(steps)
    for t in range(steps):
        assert control.value is not None
        thetas[t] = control.value
        lost = rng.random() < 1.0 / (1.0 + math.exp(control.value - miss))
        errs[t] = float(lost)
        control.update(0.0 if lost else 1.0, 1.0, 0.01, settings)
    return control, thetas, errs


@pytest.mark.parametrize(
    ("regime", "miss", "direction"),
    [("easy", -1.0, -1), ("hard", 2.0, 1)],
)
def test_the_threshold_converges_to_where_one_answer_in_a_hundred_is_lost(
    regime: str, miss: float, direction: int
) -> None:
    """Easier than training: the threshold goes down (fewer bytes); harder: up. The
    miss rate converges to alpha = 0.01, and ACI's bound holds on the sequence."""
    control, thetas, errs = run_controller(miss, 40_000, seed=3)
    best = miss - logit(0.01)  # sigmoid(miss - θ*) = 0.01
    start = logit(0.99)
    assert np.sign(best - start) == direction
    assert abs(float(np.mean(thetas[20_000:])) - best) < 0.5, regime
    assert abs(float(np.mean(errs)) - 0.01) < 0.003
    assert control.miss_rate() == pytest.approx(float(np.mean(errs)))
    # Deterministic: gamma * sum(err - alpha) is the climb, which the ceiling bounds.
    climb = 0.5 * float(np.sum(errs - 0.01))
    assert climb <= HIGHEST_LOGIT - start + 0.5


def test_the_threshold_stays_between_its_floor_and_ceiling() -> None:
    settings = ControlSettings(control_step=100.0, control_lowest=0.6)
    control = ThresholdControl()
    control.begin(0.99)
    control.update(0.0, 1.0, 0.01, settings)
    assert control.value == HIGHEST_LOGIT
    for _ in range(20):  # a logit down each: 20 -> 0, held at logit(0.6)
        control.update(1.0, 1.0, 0.01, settings)
    assert control.threshold == pytest.approx(0.6)
    with pytest.raises(ValueError, match="control-step"):
        ControlSettings(control_step=0.0)
    with pytest.raises(ValueError, match="rise-margin"):
        ControlSettings(rise_margin=-1.0)
    with pytest.raises(ValueError, match="retrain-learning-rate"):
        ControlSettings(retrain_learning_rate=0.0)
    # The downshift, asked for, replaces the control (on by default).
    assert RuntimeSettings().control.threshold_control
    assert not RuntimeSettings.of(downshift=True).control.threshold_control


class GradedSurvival(SurvivalPolicy):
    """A survival policy whose logit for action i is ``first + slope * i``: by
    default it trusts dearer actions more, sigmoid(i) (at 0.99 it sends action 5)."""

    def __init__(self, first: float = 0.0, slope: float = 1.0) -> None:
        super().__init__(
            PolicySettings(
                state_dim=3, n_actions=10, seed=0, policy="survival", threshold=0.99
            )
        )
        self.progress = TrainingProgress(epsilon=0.0)
        self.logits = first + slope * np.arange(10, dtype=np.float32)

    def scores(self, states: np.ndarray) -> np.ndarray:
        return np.tile(self.logits, (len(np.atleast_2d(states)), 1))


CONTROLLED = RuntimeSettings.of(
    threshold_control=True,
    control_step=40.0,
    p_est_initial=0.5,
    p_est_min=0.5,
    p_est_max=0.5,
    drift_window=0,
    window=1000,
)


def test_run_moves_the_threshold_with_each_estimate(tmp_path: Path) -> None:
    """Kept answers lower the threshold until a cheaper upload loses one (q5 of
    noise is under SizeCloud's 3 kB), which sends it back up."""
    paths = write_scene(tmp_path / "img", 30, 128.0, seed=4, shape=(96, 128))
    runtime = make_runtime(tmp_path, CONTROLLED, [], policy=GradedSurvival())
    assert runtime.state.control.threshold == pytest.approx(0.99)
    seen = []
    for path in paths:
        before = runtime.state.control.threshold
        record = runtime.process(path)
        after = runtime.state.control.threshold
        if record.kind == "estimate":
            assert (after > before) == (record.accuracy == 0.0) or after == before
            seen.append((record.action, record.accuracy))
        else:
            assert after == before
    assert seen[0] == ("55", 1.0)  # sigmoid(5) = 0.993: action 5 at 0.99
    lost = [i for i, (_, accuracy) in enumerate(seen) if accuracy == 0.0]
    assert lost and lost[0] > 0  # it went down to an action that loses answers...
    assert int(seen[lost[0] + 1][0]) > int(seen[lost[0]][0])  # ...and back up
    certificate = runtime.state.certificate
    assert certificate.answered == 30 and certificate.estimates == len(seen)
    assert runtime.state.control.updates == len(seen)


def test_the_control_is_committed_and_a_resumed_run_continues_identically(
    tmp_path: Path,
) -> None:
    paths = write_scene(tmp_path / "img", 24, 128.0, seed=5, shape=(96, 128))
    whole = make_runtime(tmp_path / "whole", CONTROLLED, [], policy=GradedSurvival())
    expected = [whole.process(p) for p in paths]
    halves = make_runtime(tmp_path / "half", CONTROLLED, [], policy=GradedSurvival())
    for path in paths[:12]:
        halves.process(path)
    saved = saved_state(halves.state, halves.rng)
    halves.store.close()  # as after kill -9: what is committed is all there is
    resumed = make_runtime(tmp_path / "half", CONTROLLED, [], policy=GradedSurvival())
    assert resumed.state.control == halves.state.control
    assert resumed.state.certificate == halves.state.certificate
    assert check_state(saved)["control"]["value"] == resumed.state.control.value
    got = [resumed.process(p) for p in paths[12:]]
    key = ("kind", "action", "accuracy", "bytes_uploaded")
    assert [[getattr(r, k) for k in key] for r in got] == [
        [getattr(r, k) for k in key] for r in expected[12:]
    ]
    assert resumed.state.control == whole.state.control
    assert resumed.state.certificate == whole.state.certificate


def test_a_damaged_control_state_is_one_line() -> None:
    runtime_state = {"control": {"value": "x"}}
    with pytest.raises(ValueError, match="control"):
        check_state_part(runtime_state)
    with pytest.raises(ValueError, match="certificate"):
        check_state_part({"certificate": {"answered": -1}})
    with pytest.raises(ValueError, match="unknown field"):
        check_state_part({"control": {"theta": 1.0}})


def check_state_part(part: dict[str, object]) -> None:
    from adacompress.runtime.saved_state import _check_control

    _check_control(part)


def test_a_q_network_agent_has_no_threshold_to_control(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path, CONTROLLED, [5], policy=ScriptedAgent([5]))
    assert runtime.choice.controlled is None
    assert live_summary(runtime)["threshold"] is None


def test_the_progress_line_and_the_report_carry_the_certificate(
    tmp_path: Path,
) -> None:
    paths = write_scene(tmp_path / "img", 10, 128.0, seed=6, shape=(96, 128))
    runtime = make_runtime(tmp_path, CONTROLLED, [], policy=GradedSurvival())
    for path in paths:
        runtime.process(path)
    shown = live_postfix(runtime, 0.95)
    estimates = runtime.state.certificate.estimates
    assert shown["kept"].startswith("≥") and f"95%, {estimates} est" in shown["kept"]
    assert "threshold" in shown
    summary = live_summary(runtime)
    text = summary["certificate"]["text"]
    assert text.startswith("kept ≥ ") and f"95% confidence, {estimates} est" in text
    assert 0.0 <= summary["certificate"]["kept_at_least"] <= 1.0
    assert summary["threshold"]["updates"] == estimates
    assert live_postfix(runtime, None) == {}


# -- the certificate -------------------------------------------------------------


def simulate_stream(
    rng: np.random.Generator, photos: int, confidence: float
) -> tuple[bool, float]:
    """One stream whose miss probability shifts (easy, hard, easy) and whose
    estimate rate rises for a while after each lost answer seen (as p_est does);
    returns whether the bound ever exceeded the true kept rate so far, and its end."""
    rates = np.repeat(rng.uniform([0.0, 0.02, 0.0], [0.01, 0.06, 0.02]), photos // 3)
    lost = (rng.random(len(rates)) < rates).astype(float)
    certificate = KeptCertificate()
    raised_until = -1
    wrong = False
    lost_so_far = 0.0
    bound_lost = 0.0  # most_lost depends on S and p_min only: recomputed on change
    for t, m in enumerate(lost):
        p = 0.3 if t <= raised_until else 0.05
        changed = p < certificate.lowest_p
        certificate.answer(p)
        lost_so_far += m
        if rng.random() < p:
            certificate.estimate(1.0 - m, p)
            if m:
                raised_until = t + 50
                changed = True
        if changed:
            bound_lost = most_lost(
                10**9, certificate.weighted_lost, certificate.lowest_p, 1 - confidence
            )
        wrong = wrong or lost_so_far > bound_lost
    return wrong, certificate.kept_at_least(confidence)


def test_the_certificate_holds_at_every_image_at_its_confidence() -> None:
    """Over 300 simulated streams of 1,500 photos, the lower bound is ever above the
    true kept rate so far in at most 5% of them (a time-uniform guarantee)."""
    rng = np.random.default_rng(2026)
    results = [simulate_stream(rng, 1500, 0.95) for _ in range(300)]
    wrong = sum(w for w, _ in results)
    assert wrong / len(results) <= 0.05
    ends = np.array([end for _, end in results])
    assert float(np.median(ends)) > 0.85  # not vacuous
    # At 50% it is sometimes wrong (the check can fail), still at most half the time.
    halves = [simulate_stream(rng, 1500, 0.5)[0] for _ in range(200)]
    assert 0 < sum(halves) / len(halves) <= 0.5


def test_the_certificate_tightens_as_estimates_come() -> None:
    few = KeptCertificate(answered=1000, estimates=50, lowest_p=0.05)
    many = KeptCertificate(answered=20_000, estimates=1000, lowest_p=0.05)
    many.weighted_lost = 8 / 0.05  # 8 lost among 1,000 estimates
    assert 0.9 < few.kept_at_least(0.95) < many.kept_at_least(0.95) < 0.992
    assert KeptCertificate().kept_at_least(0.95) == 0.0
    assert KeptCertificate(answered=5, lowest_p=0.0).kept_at_least(0.95) == 0.0
    assert "kept ≥ 0." in many.text(0.95) and "1000 estimates" in many.text(0.95)


def test_a_retrain_goes_on_from_the_steered_threshold_and_a_swap_starts_over(
    tmp_path: Path,
) -> None:
    """The retrained weights keep the threshold the new scene steered to; weights
    swapped back start from the calibrated one (what they had was steered up on the
    scene that put them aside)."""
    runtime = make_runtime(tmp_path, CONTROLLED, [], policy=GradedSurvival())
    state, control = runtime.state, runtime.state.control
    start = control.value
    control.value = 7.0  # steered up on a hard scene
    state.start_retrain()
    assert control.remembered is None  # no scene was left: no weights put aside
    state.end_retrain()
    assert control.value == 7.0
    control.retrain_starts(True)  # as when the monitor remembers the weights
    assert control.remembered == 7.0
    control.value = 3.0
    control.swapped()
    assert (control.value, control.remembered) == (start, 3.0)
    plain = ThresholdControl(value=5.0, start=4.0)
    plain.retrain_starts(False)
    plain.swapped()  # nothing remembered: nothing to swap
    assert plain.value == 5.0 and plain.remembered is None


def test_a_retrain_under_the_control_learns_at_the_controls_rate(
    tmp_path: Path,
) -> None:
    """The control finds the new scene's threshold; its retrain learns slowly (and a
    resumed run goes on at that rate). Without the control a retrain is the only
    adaptation, and learns at the agent's own rate."""

    def rate(runtime: Runtime) -> float:
        return float(runtime.learner.optimizer.param_groups[0]["lr"])

    runtime = make_runtime(tmp_path / "on", CONTROLLED, [], policy=GradedSurvival())
    own = rate(runtime)
    wanted = CONTROLLED.control.retrain_learning_rate
    assert wanted is not None and wanted < own
    runtime.state.start_retrain(runtime.choice.retrain_learning_rate)
    assert rate(runtime) == wanted
    blob = runtime.learner.training_state()
    again = make_runtime(tmp_path / "again", CONTROLLED, [], policy=GradedSurvival())
    again.learner.load_training_state(dict(blob))
    assert rate(again) == wanted
    frozen = CONTROLLED.changed(threshold_control=False)
    off = make_runtime(tmp_path / "off", frozen, [], policy=GradedSurvival())
    off.state.start_retrain(off.choice.retrain_learning_rate)
    assert off.choice.retrain_learning_rate is None and rate(off) == own


# -- the answers' feedback and the fallback ----------------------------------------


def cheap_is_likeliest() -> GradedSurvival:
    """Action i survives with predicted probability sigmoid(3 - i): the likeliest
    is the cheapest."""
    return GradedSurvival(first=3.0, slope=-1.0)


def test_when_no_candidate_is_trusted_the_dearest_is_sent(tmp_path: Path) -> None:
    """A climbing threshold only adds safety: with nothing trusted the controlled
    agent sends its dearest candidate, not the (cheap) likeliest one."""
    paths = write_scene(tmp_path / "img", 1, 128.0, seed=7, shape=(96, 128))
    runtime = make_runtime(tmp_path, CONTROLLED, [], policy=cheap_is_likeliest())
    samples, _ = runtime.env.prepare(paths, progress=False)
    # sigmoid(3) = 0.95 < 0.99: nothing is trusted. The control sends the dearest
    # candidate (q75: dearer ones upload more than the reference), the frozen rule
    # the likeliest (q5).
    assert runtime.choice.choose(samples[0], runtime.state.control) == 7
    frozen = make_runtime(
        tmp_path / "frozen",
        CONTROLLED.changed(threshold_control=False),
        [],
        policy=cheap_is_likeliest(),
    )
    assert frozen.choice.choose(samples[0], frozen.state.control) == 0


FEEDBACK = {
    "answer_feedback": {"weights": [0.0, 0.0, 0.0], "rate": 0.4, "threshold": 0.99}
}
"""A model that says 0.5 of every answer: 0.1 above its resting rate (at the agent's
own threshold)."""


def test_every_answer_sent_alone_moves_the_threshold_by_its_feedback(
    tmp_path: Path,
) -> None:
    settings = CONTROLLED.changed(p_est_initial=0.0, p_est_min=0.0, p_est_max=0.0)
    paths = write_scene(tmp_path / "img", 10, 128.0, seed=8, shape=(96, 128))
    runtime = make_runtime(
        tmp_path, settings, [], policy=GradedSurvival(), agent_metadata=FEEDBACK
    )
    control = runtime.state.control
    start = control.value
    assert start is not None
    records = [runtime.process(p) for p in paths]
    # It started where the feedback rests (here the agent's own threshold).
    assert control.start == pytest.approx(logit(0.99))
    assert {r.kind for r in records} == {"inference"}
    step = settings.control.feedback_step * 0.1
    assert control.value == pytest.approx(start + step * len(paths))
    assert control.updates == 0  # no estimate: the ACI part has not moved
    # A rise stops rise_margin above the answered photo's best candidate.
    margin = settings.control.rise_margin
    top = control.value + 0.01
    control.nudge(1.0, settings.control, top - margin)
    assert control.value == pytest.approx(top)
    control.nudge(1.0, settings.control, top - margin - 1.0)  # above: stays
    assert control.value == pytest.approx(top)
    control.nudge(-1.0, settings.control, top - 5.0)  # falls freely
    assert control.value == pytest.approx(top - 1.0)
    # At --rise-margin 0 a rise stops at the best candidate itself.
    flush = settings.changed(rise_margin=0.0).control
    control.nudge(5.0, flush, top)
    assert control.value == pytest.approx(top)
    # Without a model (or with --feedback-step 0) only estimates move it.
    still = make_runtime(
        tmp_path / "still",
        settings.changed(feedback_step=0.0),
        [],
        policy=GradedSurvival(),
        agent_metadata=FEEDBACK,
    )
    for path in paths:
        still.process(path)
    assert still.state.control.value == pytest.approx(start)


@pytest.mark.parametrize(
    "raw",
    [
        {"weights": [1.0, 2.0], "rate": 0.1, "threshold": 0.9},
        {"weights": [1.0, 2.0, float("nan")], "rate": 0.1, "threshold": 0.9},
        {"weights": [1.0, 2.0, 1e9], "rate": 0.1, "threshold": 0.9},
        {"weights": [1.0, 2.0, "3"], "rate": 0.1, "threshold": 0.9},
        {"weights": [1.0, 2.0, True], "rate": 0.1, "threshold": 0.9},
        {"weights": [1.0, 2.0, 3.0], "rate": 1.0, "threshold": 0.9},
        {"weights": [1.0, 2.0, 3.0], "rate": 0.1, "threshold": 1.5},
        {"weights": [1.0, 2.0, 3.0], "rate": 0.1},
        {"weights": [1.0, 2.0, 3.0], "rate": 0.1, "threshold": 0.9, "code": "x"},
        "weights",
    ],
)
def test_a_crafted_answer_feedback_is_refused_in_one_line(
    tmp_path: Path, raw: object
) -> None:
    with pytest.raises(ValueError, match="answer_feedback") as err:
        make_runtime(
            tmp_path,
            CONTROLLED,
            [],
            policy=GradedSurvival(),
            agent_metadata={"answer_feedback": raw},
        )
    assert "\n" not in str(err.value)


def test_the_control_starts_where_the_answer_feedback_rests(tmp_path: Path) -> None:
    """An agent shipped at a safer, guaranteed threshold is steered from the one
    that meets the target on average, where its answer feedback was fitted."""
    resting = {"answer_feedback": {**FEEDBACK["answer_feedback"], "threshold": 0.95}}
    runtime = make_runtime(
        tmp_path, CONTROLLED, [], policy=GradedSurvival(), agent_metadata=resting
    )
    assert runtime.state.control.threshold == pytest.approx(0.95)
    summary = live_summary(runtime)["threshold"]
    assert summary["start"] == pytest.approx(0.95) and summary["answer_feedback"]
    frozen = make_runtime(
        tmp_path / "frozen",
        CONTROLLED.changed(threshold_control=False),
        [],
        policy=GradedSurvival(),
        agent_metadata=resting,
    )
    assert frozen.choice.controlled is None  # the frozen agent keeps its own

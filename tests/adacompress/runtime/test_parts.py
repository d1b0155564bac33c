"""The runtime's parts alone: the drift test, the scene memory, the drift monitor
and the retrain progress."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from adacompress.device.policies.q import DQNPolicy
from adacompress.device.policies.settings import PolicySettings
from adacompress.runtime.drift.monitor import DriftMonitor
from adacompress.runtime.drift.scene_memory import SceneMemory
from adacompress.runtime.drift.statistics import SceneDrift
from adacompress.runtime.retrain import RetrainProgress
from adacompress.runtime.settings import DriftSettings, RetrainSettings
from adacompress.runtime.wald import DriftTest

DRIFT = DriftSettings()  # SPRT 0.01 vs 0.05, alpha 0.05, beta 0.2
RETRAIN = RetrainSettings()


def test_drift_test_follows_wald() -> None:
    test = DriftTest()
    test.add(0.0, DRIFT)
    assert test.llr is None  # nothing runs before start()
    test.start()
    test.add(0.0, DRIFT)
    assert test.llr == math.log(5)  # a failure: log(e1 / e0)
    assert not test.rejects(DRIFT)
    test.add(0.0, DRIFT)  # 2 log 5 = 3.2 > log(0.8 / 0.05) = 2.77
    assert test.rejects(DRIFT)
    test.start()
    successes = 0
    while test.running:
        test.add(1.0, DRIFT)
        successes += 1
    # log(0.95 / 0.99) per success down to log(0.2 / 0.95)
    assert successes == math.ceil(math.log(0.2 / 0.95) / math.log(0.95 / 0.99))
    assert not test.rejects(DRIFT)


def scene(value: float, n: int = 30, seed: int = 0) -> SceneDrift:
    drift = SceneDrift(window=n)
    rng = np.random.default_rng(seed)
    for _ in range(n):
        drift.update(np.full(4, value) + rng.normal(0, 0.01, 4))
    return drift


def test_scene_memory_remembers_and_matches() -> None:
    memory = SceneMemory()
    day = scene(0.8).reference()
    memory.scene_left(day, enabled=True)
    assert not memory.match_pending  # nothing remembered yet
    assert memory.retrain_starts(enabled=True)  # remember the day agent
    assert memory.remembered_scene == day and memory.left_scene is None
    night = scene(0.2, seed=1)
    memory.scene_left(night.reference(), enabled=True)
    assert memory.match_pending
    assert not memory.matches(SceneDrift(window=30), threshold=8.0)  # not formed
    assert memory.match_pending
    assert memory.matches(scene(0.8, seed=2), threshold=8.0)  # the day is back
    assert not memory.match_pending
    memory.swapped()
    assert memory.remembered_scene == night.reference() and memory.swaps == 1
    assert not SceneMemory().retrain_starts(enabled=True)  # no scene left: nothing


def test_drift_monitor_swaps_the_remembered_weights_back() -> None:
    settings = DriftSettings(drift_window=10)
    monitor = DriftMonitor(settings)
    policy = DQNPolicy(PolicySettings(state_dim=4, n_actions=3, seed=0))
    day_weights = policy.weights()
    rng = np.random.default_rng(0)

    def feed(value: float, n: int) -> list[bool]:
        return [
            monitor.watch(np.full(4, value) + rng.normal(0, 0.01, 4), policy)
            for _ in range(n)
        ]

    feed(0.8, 12)
    feed(0.2, 5)
    assert monitor.testing  # the night was noticed
    monitor.retrain_starts(policy)
    policy.load_weights({k: v + 1 for k, v in day_weights.items()})  # "retrained"
    monitor.retrain_ends()
    assert not monitor.testing
    feed(0.2, 12)
    swaps = feed(0.8, 25)
    assert sum(swaps) == 1  # the day came back once
    for key, value in policy.weights().items():
        assert np.array_equal(value.numpy(), day_weights[key].numpy())
    state = monitor.state_dict()
    again = DriftMonitor(settings)
    again.load_state_dict(state, monitor.remembered)
    assert again.state_dict() == state


def test_retrain_progress_exit_rules() -> None:
    s = RetrainSettings(
        retrain_min_steps=3,
        exit_window=3,
        exit_accuracy=0.9,
        exit_epsilon=0.2,
        retrain_max_steps=10,
    )
    progress = RetrainProgress()
    for _ in range(2):
        progress.add(0.5, 1.0, s)
    assert not progress.done(0.0, s)  # before the minimum
    progress.add(0.5, 1.0, s)
    assert progress.done(0.1, s) and not progress.done(0.5, s)  # epsilon too high
    progress.add(0.5, 0.0, s)
    assert progress.retrain_accuracies == [1.0, 1.0, 0.0]  # the exit window
    assert not progress.done(0.1, s)
    while progress.retrain_steps < 10:
        progress.add(0.5, 0.0, s)
    assert progress.done(0.9, s)  # the maximum ends it whatever the rest says
    progress.restart()
    assert progress == RetrainProgress()


def test_a_retrain_image_teaches_what_its_answers_imply(tmp_path: Path) -> None:
    """q=5 lost implies nothing above; q=35 kept implies q=45..95 kept: one answer,
    seven outcomes learned; more questions only where they settle something."""
    from adacompress.core.objective import Objective
    from adacompress.device.actions import paper_actions
    from adacompress.runtime.retrain import retrain_lesson
    from tests.adacompress.fakes import make_env, write_photos

    env = make_env(tmp_path)
    sample = env.prepare(write_photos(tmp_path / "img", 1), progress=False)[0][0]
    policy = DQNPolicy(PolicySettings(state_dim=3, n_actions=10, seed=0))
    q35 = [a.quality for a in paper_actions()].index(35)
    first = env.step(sample, q35)
    assert first.accuracy == 1.0  # SizeCloud keeps uploads of 3 kB and more
    one, extra = retrain_lesson(env, policy, sample, q35, first, Objective(), RETRAIN)
    assert extra == 0 and one.observed.tolist() == [0.0] * 3 + [1.0] * 7
    sizes = env.sizes(sample)
    expected = 1.0 - sizes[q35:] / first.reference_bytes  # alpha 1, beta 0
    np.testing.assert_allclose(one.signals[q35:], expected, rtol=1e-5)
    paper = replace(RETRAIN, retrain_implied=False)
    alone, _ = retrain_lesson(env, policy, sample, q35, first, Objective(), paper)
    assert alone.observed.tolist() == [0.0] * 3 + [1.0] + [0.0] * 6
    asking = replace(RETRAIN, retrain_queries=3)
    more, extra = retrain_lesson(env, policy, sample, q35, first, Objective(), asking)
    assert more.observed.sum() > one.observed.sum() and extra > 0


def test_the_summary_counts_a_retried_failure_once_and_repeats_each_time() -> None:
    from adacompress.runtime.run import summarize
    from adacompress.runtime.store import Record

    def record(position: int, name: str, kind: str, calls: int = 1) -> Record:
        return Record(
            position,
            name,
            kind,
            "15",
            10,
            100,
            None,
            0.1,
            0.0,
            [],
            "503" if kind == "failed" else None,
            name,
            "d" + name,
            calls,
        )

    records = [
        record(0, "a", "failed", 0),
        record(1, "b", "inference"),
        record(2, "a", "estimate", 2),
        record(3, "b", "inference"),  # b again
    ]
    summary = summarize(records, "lite0")
    assert summary["images"] == 3 and summary["attempts"] == 4
    assert summary["states"] == {"inference": 2, "estimate": 1}
    assert summary["problems"] == [] and summary["calls"]["new"] == 4


def test_the_drift_test_reads_its_failure_rate_from_the_agents_target() -> None:
    from adacompress.core.objective import Objective
    from adacompress.runtime.settings import RuntimeSettings

    def rate(objective: Objective, **given: float) -> float:
        return RuntimeSettings.of(**given).for_agent(objective).drift.failure_rate

    assert rate(Objective(target=0.99)) == 0.01
    assert rate(Objective(target=0.95)) == 0.05
    assert rate(Objective()) == 0.01  # no target: the default
    assert rate(Objective(target=1.0)) == 0.001  # never to fail: still testable
    assert rate(Objective(target=0.95), drift_test_error=0.02) == 0.02  # as given

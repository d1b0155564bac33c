"""The drift monitor: notices a new scene, tests whether the agent still serves it,
and brings a remembered agent back when an old scene returns.

Three parts working together: the scene statistics' reference and moving average
(:class:`~adacompress.runtime.drift.statistics.SceneDrift`), the sequential test on the
estimates that follow a drift (:class:`~adacompress.runtime.wald.DriftTest`),
and the scene memory (:class:`~adacompress.runtime.drift.scene_memory.SceneMemory`) with
the weights it remembers.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from adacompress.exchange.environment import CompressionEnv, Sample
from adacompress.exchange.learner import Learner
from adacompress.runtime.drift.scene_memory import SceneMemory
from adacompress.runtime.drift.statistics import (
    STATISTICS_SIZE,
    SceneDrift,
    scene_statistics,
)
from adacompress.runtime.settings import DriftSettings
from adacompress.runtime.wald import DriftTest

SCENE_STATISTICS = "scene-statistics"
"""Cache name of the drift detector's per-image statistics."""


def cached_statistics(env: CompressionEnv, sample: Sample) -> np.ndarray:
    """The scene statistics of ``sample``, computed once and kept in the cache."""
    stats = env.cache.get_features(
        sample.digest, SCENE_STATISTICS, size=STATISTICS_SIZE
    )
    if stats is None:
        stats = scene_statistics(env.image(sample))
        env.cache.put_features(sample.digest, SCENE_STATISTICS, stats)
    return stats


class DriftMonitor:
    """Scene drift, the drift test and the scene memory of one run.

    Args:
        settings: the runtime's constants (``drift_*``, ``scene_memory``).
    """

    def __init__(self, settings: DriftSettings) -> None:
        self.settings = settings
        self.drift = SceneDrift(window=settings.drift_window)
        self.test = DriftTest()
        self.scenes = SceneMemory()
        self.remembered: dict[str, Any] | None = None
        """weights of the agent of ``scenes.remembered_scene``"""

    @property
    def enabled(self) -> bool:
        return self.settings.drift_window > 0

    @property
    def testing(self) -> bool:
        """A drift test is running (the runtime keeps ``p_est`` up meanwhile)."""
        return self.test.running

    @property
    def holding(self) -> bool:
        """``p_est`` is held up for the drift test: it runs, and no remembered scene
        may still be recognised (then the test would be stopped, its estimates
        wasted; and a retrain it calls for waits anyway)."""
        return self.test.running and not self.scenes.match_pending

    def watch(self, stats: np.ndarray, policy: Learner) -> bool:
        """One image's scene statistics. Starts the drift test when they leave
        their reference; swaps the remembered weights into ``policy`` when the
        scene returns to theirs. Returns whether the policy's weights changed."""
        s = self.settings
        if self.drift.update(stats) > s.drift_threshold:
            self.test.start()
            self.scenes.scene_left(self.drift.reference(), enabled=s.scene_memory)
            self.drift.reset()
            return False
        if self.scenes.matches(self.drift, s.drift_threshold) and self.remembered:
            current = policy.weights()
            policy.load_weights(self.remembered)
            self.remembered = current
            self.scenes.swapped()
            self.test.stop()  # the remembered agent knows this scene
            return True
        return False

    def add_estimate(self, accuracy: float) -> None:
        self.test.add(accuracy, self.settings)

    def calls_for_retrain(self) -> bool:
        """The drift test rejects, and no remembered scene may still come back (a
        swap is checked once the new scene's first ``drift_window`` images are in:
        a retrain before that would forget the scene instead)."""
        return self.test.rejects(self.settings) and not self.scenes.match_pending

    def retrain_starts(self, policy: Learner) -> None:
        """Remember the serving weights for the scene they belong to."""
        if self.scenes.retrain_starts(enabled=self.settings.scene_memory):
            self.remembered = policy.weights()

    def retrain_ends(self) -> None:
        """The retrained agent's scene is the norm from now on."""
        self.drift.reset()
        self.test.stop()

    def state_dict(self) -> dict[str, Any]:
        """JSON state (the remembered weights are kept apart, with the policy's)."""
        return {
            "drift": asdict(self.drift),
            "drift_llr": self.test.llr,
            **asdict(self.scenes),
        }

    def load_state_dict(
        self, state: dict[str, Any], remembered: dict[str, Any] | None
    ) -> None:
        """Inverse of :meth:`state_dict`."""
        if state.get("drift_hold", 0):  # a state folder from before the drift test
            state = {**state, "drift_llr": 0.0}
        self.drift = SceneDrift(**state["drift"])
        self.test = DriftTest(state["drift_llr"])
        self.scenes = SceneMemory(
            state["match_pending"],
            state["left_scene"],
            state["remembered_scene"],
            state["swaps"],
        )
        self.remembered = remembered

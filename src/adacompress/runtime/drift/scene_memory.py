"""Scene memory: the agent of the scene before a retrain, swapped back in when the
pictures return to that scene (day -> night -> day: no second retrain).

A drift leaves a scene (its reference statistics are kept as ``left_scene``). A
retrain that follows remembers the weights that served the left scene. When a later
drift leads to a scene whose statistics match the remembered one (the drift
detector's standard-error test, on the new scene's first ``drift_window`` images),
the remembered weights serve again and the current ones are remembered instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adacompress.runtime.drift.statistics import SceneDrift


@dataclass
class SceneMemory:
    """What is remembered (JSON-serialisable; the weights are kept apart)."""

    match_pending: bool = False
    """a drift happened: compare the new scene with the remembered one once its
    reference is formed"""
    left_scene: dict[str, Any] | None = None
    """drift reference of the scene left at the last detected drift"""
    remembered_scene: dict[str, Any] | None = None
    """drift reference of the scene whose weights are remembered"""
    swaps: int = 0
    """times remembered weights were swapped back in"""

    def scene_left(self, reference: dict[str, Any], *, enabled: bool) -> None:
        """A drift was detected: the scene of ``reference`` is left behind."""
        self.left_scene = reference
        self.match_pending = bool(enabled and self.remembered_scene)

    def retrain_starts(self, *, enabled: bool) -> bool:
        """A retrain starts; returns whether to remember the serving weights (they
        belong to the scene just left)."""
        self.match_pending = False  # this retrain decides what the new scene needs
        if not (enabled and self.left_scene is not None):
            return False
        self.remembered_scene, self.left_scene = self.left_scene, None
        return True

    def matches(self, drift: SceneDrift, threshold: float) -> bool:
        """Once the new scene's reference is formed (checked once per drift):
        is it the remembered scene?"""
        if not self.match_pending or drift.count < drift.window:
            return False
        self.match_pending = False
        if not (self.remembered_scene and self.left_scene):
            return False
        back = SceneDrift(window=drift.window, **self.remembered_scene)
        return drift.same_scene(back, threshold)

    def swapped(self) -> None:
        """The remembered weights serve again; the scene just left is remembered."""
        assert self.left_scene is not None
        self.remembered_scene, self.left_scene = self.left_scene, None
        self.swaps += 1

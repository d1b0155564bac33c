from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
from PIL import Image

from adacompress.runtime.drift.statistics import SceneDrift, scene_statistics
from tests.helpers import photo


def test_scene_statistics_see_brightness_and_colour() -> None:
    day = scene_statistics(photo(1))
    dark = scene_statistics(
        Image.fromarray((np.asarray(photo(1)) * 0.3).astype("uint8"))
    )
    assert day.shape == (4,) and np.all((0 <= day) & (day <= 1))
    assert np.all(dark[:3] < day[:3] * 0.35)


def test_drift_is_quiet_in_one_scene_and_fires_after_a_change() -> None:
    rng = np.random.default_rng(0)
    drift = SceneDrift(window=30)
    day = [rng.normal([0.45, 0.45, 0.4, 0.22], 0.08) for _ in range(600)]
    night = [rng.normal([0.12, 0.1, 0.06, 0.08], 0.04) for _ in range(60)]
    scores = [drift.update(x) for x in day]
    assert scores[:30] == [0.0] * 30  # the reference is forming
    assert max(scores[30:]) < 8.0
    after = [drift.update(x) for x in night]
    assert next(i for i, s in enumerate(after) if s > 8.0) < 15
    drift.reset()
    assert drift.count == 0 and drift.update(night[0]) == 0.0


def test_drift_state_round_trips_through_json() -> None:
    drift = SceneDrift(window=5)
    for x in np.linspace(0, 1, 12):
        drift.update(np.array([x, 1 - x]))
    copy = SceneDrift(**json.loads(json.dumps(asdict(drift))))
    x = np.array([0.3, 0.2])
    assert copy.update(x) == drift.update(x)

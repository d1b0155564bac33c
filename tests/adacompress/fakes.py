"""Stand-ins for AdaCompress tests: a cloud whose answer depends on the upload's
size, a cheap feature extractor, an environment built from them, and small policy
settings with a learner to fill."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from adacompress.core.labels import Answer, Label
from adacompress.core.limits import NO_LIMITS
from adacompress.device.actions import paper_actions
from adacompress.device.policies.settings import PolicySettings
from adacompress.exchange.cache import AnswerCache
from adacompress.exchange.environment import CompressionEnv
from adacompress.exchange.learner import Learner
from basekit.images import load_image
from tests.helpers import photo


class SizeCloud:
    """A loopback stand-in for a cloud: top-1 flips to class 1 below 3 kB uploads
    (or below ``threshold`` bytes).

    It decodes every upload like a real service, and counts its calls.
    """

    name = cache_name = "size-cloud"
    limits = NO_LIMITS

    def __init__(self, threshold: int = 3000) -> None:
        self.calls = 0
        self.threshold = threshold

    def classify(self, images: Sequence[bytes]) -> list[Answer]:
        self.calls += len(images)
        answers = []
        for data in images:
            load_image(data)
            top = 0 if len(data) >= self.threshold else 1
            answers.append([Label(top, str(top), 0.9), Label(5, "5", 0.1)])
        return answers


class MeanFeatures:
    name = cache_name = "mean"
    dim = 3

    def extract(self, images: list[Image.Image]) -> np.ndarray:
        return np.array(
            [np.asarray(im, dtype=np.float32).mean(axis=(0, 1)) for im in images]
        )


def make_env(tmp_path: Path, cloud: SizeCloud | None = None) -> CompressionEnv:
    return CompressionEnv(
        cloud or SizeCloud(),
        AnswerCache(tmp_path / "cache.sqlite"),
        actions=paper_actions(),
        extractor=MeanFeatures(),
    )


def write_photos(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"p{i}.png"
        photo(i, (200, 150)).save(path)
        paths.append(path)
    return paths


def small_settings(**overrides: object) -> PolicySettings:
    base = dict(
        state_dim=6,
        n_actions=4,
        batch_size=8,
        memory_size=50,
        warmup_steps=1000,
        seed=3,
    )
    base.update(overrides)
    return PolicySettings(**base)  # type: ignore[arg-type]


def fill(agent: Learner, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(n):
        agent.observe(
            rng.normal(size=agent.settings.state_dim).astype(np.float32),
            int(rng.integers(agent.settings.n_actions)),
            float(rng.normal()),
            rng.normal(size=agent.settings.state_dim).astype(np.float32),
        )

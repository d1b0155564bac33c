"""Scene-change detection from cheap image statistics, at no upload cost.

The paper's runtime notices a new kind of picture only through estimates, each of which
uploads the reference; at a low ``p_est`` the first failing estimate can take hundreds
of images. The device sees every image anyway: a night, a new camera or a new place
moves simple statistics of the picture (brightness, colour, contrast). This detector
learns their mean and spread over the first ``window`` images after a (re)start, then
tracks an exponential moving average; when the average strays more than ``threshold``
standard errors in any statistic, the runtime raises ``p_est`` and runs a sequential
test on the estimates that follow (``Runtime._drift_test``), which confirms or refutes
an accuracy drop. It never retrains by itself: only a measured accuracy drop does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

THUMBNAIL = 64
STATISTICS_SIZE = 4
"""Values of :func:`scene_statistics`: mean R, G, B and the luminance's spread."""


def scene_statistics(image: Image.Image) -> np.ndarray:
    """Mean R, G, B and luminance standard deviation of a 64x64 thumbnail (0-1)."""
    small = (
        np.asarray(
            image.resize((THUMBNAIL, THUMBNAIL), Image.Resampling.BILINEAR),
            dtype=np.float32,
        )
        / 255.0
    )
    luminance = small @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.array([*small.mean(axis=(0, 1)), luminance.std()], dtype=np.float32)


@dataclass
class SceneDrift:
    """Reference statistics (Welford) and a moving average; JSON-serialisable state.

    Args:
        window: images that form the reference, and the span of the moving average.
    """

    window: int = 30
    count: int = 0
    mean: list[float] = field(default_factory=list)
    m2: list[float] = field(default_factory=list)
    recent: list[float] = field(default_factory=list)

    def update(self, stats: np.ndarray) -> float:
        """Add one image; return the drift score (0 while the reference is forming).

        The score is ``max |ema - ref_mean| / standard error`` over the statistics; the
        standard error of an EMA with span ``window`` is
        ``ref_std * sqrt(beta / (2 - beta))`` with ``beta = 2 / (window + 1)``.
        """
        x = np.asarray(stats, dtype=np.float64)
        if self.count < self.window:
            self.count += 1
            mean = np.asarray(self.mean) if self.mean else np.zeros_like(x)
            m2 = np.asarray(self.m2) if self.m2 else np.zeros_like(x)
            delta = x - mean
            mean = mean + delta / self.count
            m2 = m2 + delta * (x - mean)
            self.mean, self.m2, self.recent = mean.tolist(), m2.tolist(), mean.tolist()
            return 0.0
        recent = (1 - self.beta) * np.asarray(self.recent) + self.beta * x
        self.recent = recent.tolist()
        return float(
            np.max(np.abs(recent - np.asarray(self.mean)) / self._standard_error())
        )

    @property
    def beta(self) -> float:
        """Weight of the newest image in the EMA of span ``window``."""
        return 2.0 / (self.window + 1)

    def _standard_error(self) -> np.ndarray:
        std = np.sqrt(np.asarray(self.m2) / max(self.count - 1, 1)) + 1e-3
        return std * np.sqrt(self.beta / (2 - self.beta))

    def reference(self) -> dict[str, Any]:
        """The reference statistics alone (JSON), to compare other scenes with."""
        return {"count": self.count, "mean": list(self.mean), "m2": list(self.m2)}

    def same_scene(self, other: SceneDrift, threshold: float) -> bool:
        """Whether two formed references describe one scene: no statistic's means
        differ by more than ``threshold`` standard errors of their difference."""
        if min(self.count, other.count) < 2:
            return False
        variances = [np.asarray(r.m2) / (r.count - 1) / r.count for r in (self, other)]
        gap = np.abs(np.asarray(self.mean) - np.asarray(other.mean))
        return bool(np.all(gap <= threshold * np.sqrt(sum(variances)) + 1e-3))

    def reset(self) -> None:
        """Start a new reference: the current look becomes the norm."""
        self.count = 0
        self.mean, self.m2, self.recent = [], [], []

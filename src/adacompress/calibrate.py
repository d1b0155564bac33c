"""Meet an accuracy target at the smallest size, calibrated on training images only.

A user thinks in "keep 99% of the answers", not in reward weights. The reward
``R = α·A − Δs`` trades accuracy against bytes: the larger ``α``, the more accuracy
the agent buys. k-fold cross-validation on the training images estimates, for one
``α``, the accuracy an agent trained on the other folds reaches on images it has never
seen; a binary search over a geometric grid of ``α`` then finds the smallest ``α``
whose cross-validated accuracy reaches the target -- the smallest uploads that keep it.
The held-out test images play no part.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from adacompress.environment import CompressionEnv, Sample

if TYPE_CHECKING:
    from adacompress.train import TrainSettings

ALPHA_GRID = tuple(float(a) for a in np.geomspace(0.5, 64.0, 15))
"""Candidate reward weights, a factor √2 apart."""
FOLD_SEED = 7


def check_target(target: float) -> None:
    """Raises ValueError (one line) unless ``target`` is an accuracy in (0, 1]."""
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target accuracy must be in (0, 1], got {target}")


@dataclass
class Calibration:
    """The chosen ``alpha`` and every cross-validation run behind it."""

    target_accuracy: float
    alpha: float
    reached: bool
    """False: even the largest alpha missed the target on cross-validation"""
    folds: int
    table: list[dict[str, float]] = field(default_factory=list)
    """alpha, cv_accuracy, cv_size_ratio per alpha tried, sorted by alpha"""


class AlphaSearch:
    """Cross-validated accuracy and size per ``alpha``, computed once each.

    Args:
        env: the training environment (its ``alpha`` is set per run and restored).
        samples: the training images.
        settings: training settings for every fold's agent (its seed is the fold).
        folds: number of cross-validation folds.
    """

    def __init__(
        self,
        env: CompressionEnv,
        samples: list[Sample],
        settings: TrainSettings,
        folds: int = 5,
    ) -> None:
        if not 2 <= folds <= len(samples) // 2:
            raise ValueError(
                f"need 2..{len(samples) // 2} folds for {len(samples)} images, "
                f"got {folds}"
            )
        self.env = env
        self.samples = samples
        self.settings = replace(settings, progress=False)
        self.folds = folds
        self.results: dict[float, dict[str, float]] = {}

    def cross_validate(self, alpha: float) -> dict[str, float]:
        """Accuracy and size ratio on every image, each scored by an agent that
        was trained on the other folds with this ``alpha``."""
        if alpha in self.results:
            return self.results[alpha]
        from adacompress.train import fit_agent

        order = np.random.default_rng(FOLD_SEED).permutation(len(self.samples))
        parts = np.array_split(order, self.folds)
        saved_alpha, self.env.alpha = self.env.alpha, alpha
        correct, kept, reference = 0.0, 0, 0
        try:
            for k, held in enumerate(parts):
                held_set = set(held.tolist())
                fit = [self.samples[i] for i in order if i not in held_set]
                settings = replace(
                    self.settings, dqn=replace(self.settings.dqn, seed=k)
                )
                agent, _ = fit_agent(self.env, fit, settings)
                for i in held:
                    sample = self.samples[i]
                    choice = agent.act(sample.features, explore=False)
                    result = self.env.step(sample, choice)
                    correct += result.accuracy
                    kept += result.nbytes
                    reference += result.reference_bytes
        finally:
            self.env.alpha = saved_alpha
        row = {
            "alpha": alpha,
            "cv_accuracy": correct / len(self.samples),
            "cv_size_ratio": kept / reference,
        }
        self.results[alpha] = row
        return row

    def for_target(
        self, target: float, grid: tuple[float, ...] = ALPHA_GRID
    ) -> Calibration:
        """The smallest ``alpha`` of ``grid`` whose cross-validated accuracy reaches
        ``target`` (binary search: accuracy grows with alpha)."""
        check_target(target)

        def meets(index: int) -> bool:
            return self.cross_validate(grid[index])["cv_accuracy"] >= target

        low, high = 0, len(grid) - 1
        if not meets(high):
            chosen, reached = high, False
        elif meets(low):
            chosen, reached = low, True
        else:
            while high - low > 1:
                middle = (low + high) // 2
                if meets(middle):
                    high = middle
                else:
                    low = middle
            chosen, reached = high, True
        return Calibration(
            target_accuracy=target,
            alpha=grid[chosen],
            reached=reached,
            folds=self.folds,
            table=[self.results[a] for a in sorted(self.results)],
        )


def calibrate_alpha(
    env: CompressionEnv,
    samples: list[Sample],
    settings: TrainSettings,
    target: float,
) -> Calibration:
    """The smallest reward weight that meets ``target`` on cross-validation."""
    search = AlphaSearch(env, samples, settings, settings.calibration_folds)
    return search.for_target(target)

"""A retrain in progress: its step count and the recent results it leaves on."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from adacompress.runtime.settings import RuntimeSettings


@dataclass
class RetrainProgress:
    """Steps since the retrain began, and the last ``exit_window`` rewards and
    accuracies (SPEC.md, "Retrain": leave when the recent mean reward passes
    ``r_th`` with recent accuracy and epsilon in bounds)."""

    retrain_steps: int = 0
    retrain_rewards: list[float] = field(default_factory=list)
    retrain_accuracies: list[float] = field(default_factory=list)

    def restart(self) -> None:
        self.retrain_steps = 0
        self.retrain_rewards, self.retrain_accuracies = [], []

    def add(self, reward: float, accuracy: float, s: RuntimeSettings) -> None:
        self.retrain_steps += 1
        self.retrain_rewards = [*self.retrain_rewards, reward][-s.exit_window :]
        self.retrain_accuracies = [*self.retrain_accuracies, accuracy][-s.exit_window :]

    def done(self, epsilon: float, s: RuntimeSettings) -> bool:
        """Whether to leave retraining after this step."""
        if self.retrain_steps >= s.retrain_max_steps:
            return True
        if self.retrain_steps < max(s.retrain_min_steps, 1):
            return False
        if len(self.retrain_accuracies) < min(s.exit_window, self.retrain_steps):
            return False
        accuracy = float(np.mean(self.retrain_accuracies))
        reward_ok = s.exit_reward is None or (
            float(np.mean(self.retrain_rewards)) > s.exit_reward
        )
        return reward_ok and accuracy >= s.exit_accuracy and epsilon < s.exit_epsilon

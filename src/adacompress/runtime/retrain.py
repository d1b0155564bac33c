"""A retrain in progress: its step count and the recent results it leaves on, and
what one retrain image teaches."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from adacompress.core.objective import Objective
from adacompress.device.policies.base import LearnedPolicy
from adacompress.exchange.environment import CompressionEnv, Sample, StepResult
from adacompress.exchange.monotone import dominance, next_query, propagate
from adacompress.runtime.settings import RetrainSettings
from adacompress.runtime.store import Transition


@dataclass
class RetrainProgress:
    """Steps since the retrain began, and the last ``exit_window`` rewards and
    accuracies (docs/formulas.md, "Inference, estimate, retrain": leave when the
    recent mean reward passes ``r_th`` with recent accuracy and epsilon in bounds)."""

    retrain_steps: int = 0
    retrain_rewards: list[float] = field(default_factory=list)
    retrain_accuracies: list[float] = field(default_factory=list)

    def restart(self) -> None:
        self.retrain_steps = 0
        self.retrain_rewards, self.retrain_accuracies = [], []

    def add(self, reward: float, accuracy: float, s: RetrainSettings) -> None:
        self.retrain_steps += 1
        self.retrain_rewards = [*self.retrain_rewards, reward][-s.exit_window :]
        self.retrain_accuracies = [*self.retrain_accuracies, accuracy][-s.exit_window :]

    def done(self, epsilon: float, s: RetrainSettings) -> bool:
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


def retrain_lesson(
    env: CompressionEnv,
    policy: LearnedPolicy,
    sample: Sample,
    index: int,
    first: StepResult,
    objective: Objective,
    settings: RetrainSettings,
) -> tuple[Transition, int]:
    """What one retrain image teaches, asking the cloud only what it needs.

    The explored action ``index`` was uploaded with the reference (``first``). Up to
    ``retrain_queries - 1`` more actions are asked about, each the one whose answer
    settles the most (:func:`~adacompress.exchange.monotone.next_query`, guided by
    the survival policy's belief); with ``retrain_implied``, what the answers imply
    about the other actions is learned too (sizes are known on the device).

    Returns the transition to learn from and the extra bytes uploaded.
    """
    n = len(env.actions)
    known = np.full(n, np.nan)
    known[index] = first.accuracy
    up = dominance(env.actions)
    belief = policy.belief(sample.features)[0]
    extra = 0
    for _ in range(settings.retrain_queries - 1):
        j = next_query(propagate(known, up), belief, up)
        if j is None:
            break
        result, _, _ = env.step_with_reference(sample, j)
        known[j] = result.accuracy
        extra += 0 if env.is_reference(sample, env.actions[j]) else result.nbytes
    if settings.retrain_implied:
        known = propagate(known, up)
    observed = ~np.isnan(known)
    outcome = np.nan_to_num(known)
    ratios = env.sizes(sample) / first.reference_bytes if policy.uses_sizes else 0.0
    signals = np.asarray(policy.signal(outcome, ratios, objective))
    return (
        Transition(
            sample.features, signals.astype(np.float32), observed.astype(np.float32)
        ),
        extra,
    )

"""Hyper-parameters of the learned policies; defaults are the authors' code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

POLICIES = ("q", "survival")


@dataclass
class PolicySettings:
    """Hyper-parameters of a learned policy; defaults: the authors' code
    (docs/formulas.md, "Agent")."""

    state_dim: int = 1280
    """length of the feature vector E(x)"""
    n_actions: int = 10
    """number of discrete actions"""
    per_action: int = 0
    """survival policy: the state ends with this many numbers for each action (in
    action order), which that action's survival reads alone (0: none)"""
    policy: str = "q"
    """q: a deep Q-network sends argmax Q (the paper); survival: predict per action
    whether the answer survives and send the cheapest action trusted at --threshold"""
    hidden: tuple[int, ...] = (64, 32, 32)
    """hidden layer widths of the network (an MLP)"""
    learning_rate: float = 0.002
    """Adam learning rate"""
    weight_decay: float = 0.0
    """decoupled weight decay (AdamW); 0 is the paper's plain Adam"""
    gamma: float = 0.95
    """q policy: discount of the TD target; 0 makes it a contextual bandit"""
    memory_size: int = 2000
    """replay memory capacity (transitions)"""
    batch_size: int = 256
    """minibatch size of one learning call"""
    epsilon_start: float = 1.0
    """exploration rate at the start"""
    epsilon_min: float = 0.02
    """floor of the exploration rate"""
    epsilon_decay: float = 0.99
    """multiplier of epsilon at every learning call"""
    warmup_steps: int = 128
    """steps of pure exploration before the first learning call"""
    learn_every: int = 5
    """one learning call every this many steps"""
    target_update: int = 0
    """q policy: copy the network into a target network every N learning calls (0:
    none)"""
    standardize: bool = False
    """standardise features with the training images' mean/std (kept in the policy)"""
    seed: int = 0
    """seed of the network init, exploration and minibatch sampling"""
    threshold: float = 0.99
    """survival policy: the predicted survival an action needs to be sent (set by
    train --target-accuracy)"""
    action_cost: tuple[float, ...] = ()
    """survival policy: each action's mean size ratio on the training images, the
    order in which actions are tried (set by train)"""

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(
                f"unknown policy {self.policy!r} (known: {', '.join(POLICIES)})"
            )
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")

    @property
    def predicts_survival(self) -> bool:
        """The policy predicts each action's survival: it learns from any subset of
        the actions' outcomes and sends at a calibrated threshold."""
        return self.policy == "survival"

    @property
    def sending_threshold(self) -> float | None:
        """The predicted survival an action needs to be sent (None: no threshold)."""
        return self.threshold if self.predicts_survival else None


@dataclass(frozen=True)
class TrainingProgress:
    """How far a policy's training went: its exploration rate and steps (what an
    agent file records, and where a learner that continues it starts)."""

    epsilon: float = 1.0
    steps: int = 0


def settings_from(raw: dict[str, Any]) -> PolicySettings:
    """PolicySettings from their saved dict (lists back to tuples)."""
    values = dict(raw)
    for key in ("hidden", "action_cost"):
        if key in values:
            values[key] = tuple(values[key])
    return PolicySettings(**values)

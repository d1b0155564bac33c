"""How a policy learns from the cloud's answers, top to bottom: the replay memory,
epsilon-greedy exploration, and the learning call (a minibatch, the policy's own
error, one optimiser step; a target network for the Q-network that keeps one).

The policy (:mod:`adacompress.device.policies`) is what ships and decides; a
:class:`Learner` wraps it while it learns: in training (:mod:`adacompress.learning`)
and in the running system's retrains (:mod:`adacompress.runtime`) alike.
docs/formulas.md, "Agent", has the paper's constants (2000 transitions, minibatches
of 256, epsilon 1 -> 0.02 by x0.99 every learning call, one call every 5 steps).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch

from adacompress.device.policies.base import Batch, LearnedPolicy
from adacompress.device.policies.settings import (
    PolicySettings,
    TrainingProgress,
    settings_from,
)


@dataclass
class ReplayMemory:
    """Ring buffer of transitions ``(s, r, s')``, learning signals kept per action.

    A normal DQN step observes one action; with full information every action's
    signal is known (the cloud answered every action) and all are stored at once.
    ``observed`` marks which actions of a row carry a signal.
    """

    capacity: int
    state_dim: int
    n_actions: int
    states: np.ndarray = field(init=False)
    signals: np.ndarray = field(init=False)
    observed: np.ndarray = field(init=False)
    next_states: np.ndarray = field(init=False)
    size: int = 0
    position: int = 0

    def __post_init__(self) -> None:
        self.states = np.zeros((self.capacity, self.state_dim), dtype=np.float32)
        self.signals = np.zeros((self.capacity, self.n_actions), dtype=np.float32)
        self.observed = np.zeros((self.capacity, self.n_actions), dtype=np.float32)
        self.next_states = np.zeros((self.capacity, self.state_dim), dtype=np.float32)

    def push(
        self,
        state: np.ndarray,
        signals: np.ndarray,
        observed: np.ndarray,
        next_state: np.ndarray,
    ) -> None:
        i = self.position
        self.states[i], self.next_states[i] = state, next_state
        self.signals[i], self.observed[i] = signals, observed
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def clear(self) -> None:
        self.size = self.position = 0


class Learner:
    """A policy while it learns: what it has seen, how much it still explores, and
    the optimiser; it continues the policy's training where it left off
    (``policy.progress``).

    Args:
        policy: the policy to train (its network is updated in place).

    Examples:
        >>> learner = Learner(DQNPolicy(PolicySettings(seed=1)))
        >>> action = learner.act(features, explore=True)
        >>> learner.observe(features, action, reward, next_features)
        >>> learner.policy.act(features)                     # greedy
    """

    def __init__(self, policy: LearnedPolicy) -> None:
        self.policy = policy
        s = policy.settings
        self.rng = np.random.default_rng(s.seed)
        self.target = policy.build_network(s)
        self.target.load_state_dict(policy.network.state_dict())
        params = policy.network.parameters()
        self.optimizer: torch.optim.Optimizer = (
            torch.optim.AdamW(params, lr=s.learning_rate, weight_decay=s.weight_decay)
            if s.weight_decay
            else torch.optim.Adam(params, lr=s.learning_rate)
        )
        self.memory = ReplayMemory(s.memory_size, s.state_dim, s.n_actions)
        self.epsilon = policy.progress.epsilon
        self.steps = policy.progress.steps
        self.learn_calls = 0

    @property
    def settings(self) -> PolicySettings:
        return self.policy.settings

    @property
    def progress(self) -> TrainingProgress:
        """How far the training went (what the agent file records)."""
        return TrainingProgress(self.epsilon, self.steps)

    # -- choosing while learning -----------------------------------------------

    def act(
        self,
        state: np.ndarray,
        *,
        explore: bool = False,
        candidates: Sequence[int] | None = None,
    ) -> int:
        """One image's action: greedy, or epsilon-greedy with ``explore=True``.
        ``candidates`` restricts both choices (default: all actions)."""
        if explore and self.rng.random() < self.epsilon:
            allowed = self.policy.allowed(candidates)
            return int(allowed[self.rng.integers(len(allowed))])
        return self.policy.act(state, candidates)

    # -- learning --------------------------------------------------------------

    def observe(
        self, state: np.ndarray, action: int, signal: float, next_state: np.ndarray
    ) -> float | None:
        """Store a transition; learn every ``learn_every`` steps after the warm-up.

        Returns the loss when a learning call happened.
        """
        signals = np.zeros(self.settings.n_actions, dtype=np.float32)
        observed = np.zeros(self.settings.n_actions, dtype=np.float32)
        signals[action], observed[action] = signal, 1.0
        self.memory.push(state, signals, observed, next_state)
        return self._after_step()

    def observe_all(
        self,
        state: np.ndarray,
        signals: np.ndarray,
        next_state: np.ndarray,
        observed: np.ndarray | None = None,
    ) -> float | None:
        """Store the signals of many actions for one image: every action's (full
        information) or those ``observed`` marks (answered or implied)."""
        if observed is None:
            observed = np.ones(self.settings.n_actions, dtype=np.float32)
        self.memory.push(state, signals, observed, next_state)
        return self._after_step()

    def _after_step(self) -> float | None:
        self.steps += 1
        s = self.settings
        if self.steps <= s.warmup_steps or self.steps % s.learn_every:
            return None
        loss = self.learn()
        self.epsilon = max(s.epsilon_min, self.epsilon * s.epsilon_decay)
        return loss

    def learn(self) -> float:
        """One optimiser step on a minibatch; the mean of the policy's ``errors``
        runs over every observed (state, action) pair."""
        s, memory, policy = self.settings, self.memory, self.policy
        idx = self.rng.choice(
            memory.size, size=min(memory.size, s.batch_size), replace=False
        )
        batch = Batch(
            states=policy.scaled(memory.states[idx]),
            next_states=policy.scaled(memory.next_states[idx]),
            signals=torch.from_numpy(memory.signals[idx]),
            observed=torch.from_numpy(memory.observed[idx]),
        )
        errors = policy.errors(batch, self.target)
        loss = (errors * batch.observed).sum() / batch.observed.sum()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.learn_calls += 1
        if s.target_update and self.learn_calls % s.target_update == 0:
            self.target.load_state_dict(policy.network.state_dict())
        return loss.item()

    # -- seams for the runtime -------------------------------------------------

    def remember(
        self, state: np.ndarray, signals: np.ndarray, observed: np.ndarray
    ) -> None:
        """Store a transition without learning from it (the runtime's buffer D; an
        image is its own next state)."""
        self.memory.push(state, signals, observed, state)

    def forget(self) -> None:
        """Empty the replay memory."""
        self.memory.clear()

    def weights(self) -> dict[str, Any]:
        """A copy of the policy's weights (plain tensors)."""
        return self.policy.weights()

    def load_weights(self, weights: dict[str, Any]) -> None:
        """Serve and learn from ``weights`` (from :meth:`weights`), target network
        included."""
        self.policy.load_weights(weights)
        self.target.load_state_dict(weights)

    def restart_exploration(
        self,
        *,
        warmup_steps: int,
        learn_every: int,
        epsilon_decay: float,
        learning_rate: float | None = None,
    ) -> None:
        """Explore again from ``epsilon_start`` with this schedule (a retrain), and
        learn at ``learning_rate`` from now on (None: as before)."""
        if learning_rate is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = learning_rate
        self.policy.settings = replace(
            self.settings,
            warmup_steps=warmup_steps,
            learn_every=learn_every,
            epsilon_decay=epsilon_decay,
        )
        self.steps = 0
        self.epsilon = self.settings.epsilon_start

    def stop_exploring(self) -> None:
        self.epsilon = 0.0

    def training_state(self) -> dict[str, object]:
        """Everything learning changes, except the replay memory (kept by the caller).

        Plain tensors and numbers: save with ``torch.save``, load with
        ``weights_only=True``. The exploration/minibatch RNG state is under "rng".
        """
        return {
            "network": self.policy.network.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epsilon": self.epsilon,
            "steps": self.steps,
            "learn_calls": self.learn_calls,
            "settings": asdict(self.settings),
            "rng": json.dumps(self.rng.bit_generator.state),
        }

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`training_state` (states saved before 0.3 keep the
        network under "q")."""
        self.policy.settings = settings_from(state["settings"])
        network = state["network" if "network" in state else "q"]
        self.policy.network.load_state_dict(network)
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epsilon = float(state["epsilon"])
        self.steps = int(state["steps"])
        self.learn_calls = int(state["learn_calls"])
        self.rng.bit_generator.state = json.loads(state["rng"])

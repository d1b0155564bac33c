"""What every learned policy shares: replay memory, epsilon-greedy exploration, the
learning loop, feature scaling, and the seams the runtime uses (docs/formulas.md,
"Agent").

Reads top to bottom: the protocol, the MLP, then :class:`LearnedPolicy`. A concrete
policy says what its network predicts (:meth:`LearnedPolicy.build_network`), what it
learns from (:meth:`~LearnedPolicy.signal`), the per-action error it minimises
(:meth:`~LearnedPolicy.errors`) and how it chooses (:meth:`~LearnedPolicy.greedy`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from adacompress.core.objective import Objective, Value
from adacompress.device.policies.replay import ReplayMemory
from adacompress.device.policies.settings import PolicySettings, settings_from


class Policy(Protocol):
    """What deploying a policy needs: a greedy choice per image, batched (a
    :class:`LearnedPolicy`, or an exported agent's policy graph)."""

    settings: PolicySettings

    def learner(self) -> LearnedPolicy:
        """The policy as a learner (raises ValueError where it only decides)."""
        ...

    def choose(
        self, states: np.ndarray, candidates: Sequence[int] | None = None
    ) -> np.ndarray:
        """Shape: (batch, state_dim) -> (batch,) action indices."""
        ...


def mlp(state_dim: int, hidden: tuple[int, ...], outputs: int) -> nn.Sequential:
    """docs/formulas.md, "Agent": MLP 1280 -> 64 -> 32 -> 32 -> 10 with ReLU."""
    layers: list[nn.Module] = []
    width = state_dim
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, outputs))
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class Batch:
    """A minibatch from the replay memory, inputs already scaled."""

    states: torch.Tensor
    next_states: torch.Tensor
    signals: torch.Tensor
    observed: torch.Tensor


class LearnedPolicy:
    """A network over image features that picks one action per image and learns from
    the cloud's answers; subclasses say what the network predicts.

    Args:
        settings: hyper-parameters (paper defaults).
    """

    def __init__(self, settings: PolicySettings | None = None) -> None:
        self.settings = s = settings or PolicySettings()
        torch.manual_seed(s.seed)
        self.rng = np.random.default_rng(s.seed)
        self.network = self.build_network(s)
        self.target = self.build_network(s)
        self.target.load_state_dict(self.network.state_dict())
        params = self.network.parameters()
        self.optimizer: torch.optim.Optimizer = (
            torch.optim.AdamW(params, lr=s.learning_rate, weight_decay=s.weight_decay)
            if s.weight_decay
            else torch.optim.Adam(params, lr=s.learning_rate)
        )
        self.memory = ReplayMemory(s.memory_size, s.state_dim, s.n_actions)
        self.epsilon = s.epsilon_start
        self.steps = 0
        self.learn_calls = 0
        self.feature_mean = np.zeros(s.state_dim, dtype=np.float32)
        self.feature_std = np.ones(s.state_dim, dtype=np.float32)

    # -- what a concrete policy defines ----------------------------------------

    def build_network(self, settings: PolicySettings) -> nn.Module:
        """Shape: (batch, state_dim) -> (batch, n_actions)."""
        raise NotImplementedError

    tunes: str = "alpha"
    """what a calibration for an accuracy target tunes: the objective's ``alpha``
    or the policy's ``threshold``"""
    loss_name: str = "loss"
    """the loss :meth:`errors` computes, as the training log names it"""
    orders_by_cost: bool = False
    """whether it needs ``PolicySettings.action_cost`` (each action's mean size)"""
    uses_sizes: bool = False
    """whether :meth:`signal` needs the uploads' size ratios (else any value does)"""

    def signal(self, accuracy: Value, ratio: Value, objective: Objective) -> Value:
        """What the policy learns from uploads of this accuracy and size ratio
        (one, or elementwise of arrays)."""
        raise NotImplementedError

    def belief(self, states: np.ndarray) -> np.ndarray:
        """How likely each action is to keep the answer, as far as the policy can
        tell (1/2 when it cannot). Shape: (batch, state_dim) -> (batch, n_actions)."""
        return np.full((len(np.atleast_2d(states)), self.settings.n_actions), 0.5)

    def errors(self, batch: Batch) -> torch.Tensor:
        """Per-(row, action) loss. Shape: (batch, n_actions)."""
        raise NotImplementedError

    def greedy(self, scores: np.ndarray, allowed: np.ndarray) -> np.ndarray:
        """Indices into ``allowed`` chosen per row of ``scores[:, allowed]``."""
        raise NotImplementedError

    def greedy_graph(self, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """:meth:`greedy` in torch operations over the actions ``mask`` allows (what
        an export traces). Shape: (batch, n_actions), (n_actions,) -> (batch,)."""
        raise NotImplementedError

    def runner_up(
        self, scores: np.ndarray, chosen: int, candidates: Sequence[int]
    ) -> int:
        """The candidate the policy would send if ``chosen`` were not there (what an
        explanation compares against), given one image's ``scores``."""
        raise NotImplementedError

    def learner(self) -> LearnedPolicy:
        return self

    # -- choosing --------------------------------------------------------------

    def _input(self, states: np.ndarray) -> torch.Tensor:
        return torch.from_numpy((states - self.feature_mean) / self.feature_std)

    def scores(self, states: np.ndarray) -> np.ndarray:
        """The network's outputs. Shape: (batch, state_dim) -> (batch, n_actions)."""
        with torch.no_grad():
            rows = np.atleast_2d(states).astype(np.float32)
            return self.network(self._input(rows)).numpy()

    def _allowed(self, candidates: Sequence[int] | None) -> np.ndarray:
        everything = range(self.settings.n_actions)
        return np.asarray(everything if candidates is None else candidates, np.int64)

    def choose(
        self, states: np.ndarray, candidates: Sequence[int] | None = None
    ) -> np.ndarray:
        """The greedy action per image, among ``candidates`` (default: all).

        Shape: (batch, state_dim) -> (batch,).
        """
        allowed = self._allowed(candidates)
        scores = self.scores(states)[:, allowed]
        return allowed[self.greedy(scores, allowed)]

    def act(
        self,
        state: np.ndarray,
        *,
        explore: bool = False,
        candidates: Sequence[int] | None = None,
    ) -> int:
        """One image's action: greedy, or epsilon-greedy with ``explore=True``
        (training). ``candidates`` restricts both choices (default: all actions)."""
        if explore and self.rng.random() < self.epsilon:
            allowed = self._allowed(candidates)
            return int(allowed[self.rng.integers(len(allowed))])
        return int(self.choose(state, candidates)[0])

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
        """One optimiser step on a minibatch; the mean of :meth:`errors` runs over
        every observed (state, action) pair."""
        s, memory = self.settings, self.memory
        idx = self.rng.choice(
            memory.size, size=min(memory.size, s.batch_size), replace=False
        )
        batch = Batch(
            states=self._input(memory.states[idx]),
            next_states=self._input(memory.next_states[idx]),
            signals=torch.from_numpy(memory.signals[idx]),
            observed=torch.from_numpy(memory.observed[idx]),
        )
        loss = (self.errors(batch) * batch.observed).sum() / batch.observed.sum()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.learn_calls += 1
        if s.target_update and self.learn_calls % s.target_update == 0:
            self.target.load_state_dict(self.network.state_dict())
        return loss.item()

    def fit_feature_scaling(self, features: np.ndarray) -> None:
        """Standardise inputs by the mean/std of ``features``. Shape: (n, state_dim)."""
        self.feature_mean = features.mean(axis=0).astype(np.float32)
        self.feature_std = (features.std(axis=0) + 1e-3).astype(np.float32)

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
        """A copy of the network's weights (plain tensors)."""
        return copy.deepcopy(self.network.state_dict())

    def load_weights(self, weights: dict[str, Any]) -> None:
        """Serve with ``weights`` (from :meth:`weights`), target network included."""
        self.network.load_state_dict(weights)
        self.target.load_state_dict(weights)

    def restart_exploration(
        self, *, warmup_steps: int, learn_every: int, epsilon_decay: float
    ) -> None:
        """Explore again from ``epsilon_start`` with this schedule (a retrain)."""
        self.settings = replace(
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
            "network": self.network.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epsilon": self.epsilon,
            "steps": self.steps,
            "learn_calls": self.learn_calls,
            "settings": asdict(self.settings),
            "rng": json.dumps(self.rng.bit_generator.state),
        }

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`training_state`."""
        self.settings = settings_from(state["settings"])
        self.network.load_state_dict(state["network" if "network" in state else "q"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epsilon = float(state["epsilon"])
        self.steps = int(state["steps"])
        self.learn_calls = int(state["learn_calls"])
        self.rng.bit_generator.state = json.loads(state["rng"])

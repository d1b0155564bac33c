"""The AdaCompress deep Q-network agent (SPEC.md, "Agent").

Reads top to bottom: settings, the Q-network, the replay memory, the epsilon schedule
and the TD update. The paper's values are the defaults; ``gamma=0`` turns it into the
contextual bandit the problem really is (the next image does not depend on the action),
and ``target_update`` adds a target network. Both are reported beside the paper's
setting in the benchmarks.

``policy="survival"`` (ours, for accuracy targets) keeps everything but what the
network predicts and how the agent chooses: one network over (state, action one-hot)
gives the probability that the cloud's answer survives the action, it learns from
the accuracy with cross-entropy, and the agent sends the cheapest action (by its mean
size on the training images) whose predicted survival reaches ``threshold``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from adacompress.storage import atomic_torch_save

AGENT_FORMAT = 1
POLICIES = ("q", "survival")


class Scored(Protocol):
    """What the agent learns from: an environment step's reward and accuracy."""

    @property
    def reward(self) -> float: ...

    @property
    def accuracy(self) -> float: ...


@dataclass
class DQNSettings:
    """Hyper-parameters of the agent; defaults are the authors' code (SPEC.md)."""

    state_dim: int = 1280
    """length of the feature vector E(x)"""
    n_actions: int = 10
    """number of discrete actions"""
    hidden: tuple[int, ...] = (64, 32, 32)
    """hidden layer widths of the Q-network MLP"""
    learning_rate: float = 0.002
    """Adam learning rate"""
    weight_decay: float = 0.0
    """decoupled weight decay of the Q-network (AdamW); 0 is the paper's plain Adam"""
    gamma: float = 0.95
    """discount of the TD target; 0 makes it a contextual bandit"""
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
    """copy the Q-network into a target network every N learning calls (0: none)"""
    standardize: bool = False
    """standardise features with the training images' mean/std (kept in the agent)"""
    seed: int = 0
    """seed of the network init, exploration and minibatch sampling"""
    policy: str = "q"
    """q: send argmax Q (the paper); survival: predict per action whether the answer
    survives and send the cheapest action trusted at --threshold (see module doc)"""
    threshold: float = 0.99
    """survival policy: the predicted survival an action needs to be sent (set by
    train --target-accuracy)"""
    action_cost: tuple[float, ...] = ()
    """survival policy: each action's mean size ratio on the training images, the
    order in which actions are tried (set by train)"""

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {self.policy!r}")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")


def q_network(state_dim: int, hidden: tuple[int, ...], n_actions: int) -> nn.Sequential:
    """SPEC.md: MLP 1280 -> 64 -> 32 -> 32 -> 10 with ReLU."""
    layers: list[nn.Module] = []
    width = state_dim
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, n_actions))
    return nn.Sequential(*layers)


class SurvivalNetwork(nn.Module):
    """One MLP over (state, action one-hot) -> survival logit, for every action.

    Sharing the network across actions is what makes it work on a few hundred
    images: with an output per action, rare failures of one action are learned from
    that action's column alone (``benchmarks/survival_targets.py --model per-action``).

    Shape: (batch, state_dim) -> (batch, n_actions) logits.
    """

    def __init__(self, state_dim: int, hidden: tuple[int, ...], n_actions: int) -> None:
        super().__init__()
        self.n_actions = n_actions
        self.mlp = q_network(state_dim + n_actions, hidden, 1)
        self.one_hot: torch.Tensor
        self.register_buffer("one_hot", torch.eye(n_actions), persistent=False)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        batch = states.shape[0]
        rows = torch.cat(
            [
                states.repeat_interleave(self.n_actions, dim=0),
                self.one_hot.repeat(batch, 1),
            ],
            dim=1,
        )
        return self.mlp(rows).view(batch, self.n_actions)


def cheapest_trusted(
    survival: np.ndarray, threshold: float, cost: np.ndarray
) -> np.ndarray:
    """The survival policy's choice per row: the lowest-``cost`` action whose
    predicted survival reaches ``threshold``, else the one most likely to survive.

    Shape: survival (n, actions), cost (actions,) -> (n,) action indices.
    """
    trusted = survival >= threshold
    cheapest = np.where(trusted, cost[None, :], np.inf).argmin(axis=1)
    return np.where(trusted.any(axis=1), cheapest, survival.argmax(axis=1))


def build_network(s: DQNSettings) -> nn.Module:
    if s.policy == "survival":
        return SurvivalNetwork(s.state_dim, s.hidden, s.n_actions)
    return q_network(s.state_dim, s.hidden, s.n_actions)


@dataclass
class ReplayMemory:
    """Ring buffer of transitions ``(s, r, s')``, rewards kept per observed action.

    A normal DQN step observes one action; with ``full_information`` every action's
    reward is known (the cloud answered every quality) and all are stored at once.
    """

    capacity: int
    state_dim: int
    n_actions: int
    states: np.ndarray = field(init=False)
    rewards: np.ndarray = field(init=False)
    observed: np.ndarray = field(init=False)
    next_states: np.ndarray = field(init=False)
    size: int = 0
    position: int = 0

    def __post_init__(self) -> None:
        self.states = np.zeros((self.capacity, self.state_dim), dtype=np.float32)
        self.rewards = np.zeros((self.capacity, self.n_actions), dtype=np.float32)
        self.observed = np.zeros((self.capacity, self.n_actions), dtype=np.float32)
        self.next_states = np.zeros((self.capacity, self.state_dim), dtype=np.float32)

    def push(
        self,
        state: np.ndarray,
        rewards: np.ndarray,
        observed: np.ndarray,
        next_state: np.ndarray,
    ) -> None:
        i = self.position
        self.states[i], self.next_states[i] = state, next_state
        self.rewards[i], self.observed[i] = rewards, observed
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def clear(self) -> None:
        self.size = self.position = 0


class DQNAgent:
    """Deep Q-network over image features; picks one action per image.

    Args:
        settings: hyper-parameters (paper defaults).

    Examples:
        >>> agent = DQNAgent(DQNSettings(seed=1))
        >>> action = agent.act(features)            # epsilon-greedy while training
        >>> agent.observe(features, action, reward, next_features)
        >>> best = agent.act(features, explore=False)
    """

    def __init__(self, settings: DQNSettings | None = None) -> None:
        self.settings = s = settings or DQNSettings()
        torch.manual_seed(s.seed)
        self.rng = np.random.default_rng(s.seed)
        self.q = build_network(s)
        self.target = build_network(s)
        self.target.load_state_dict(self.q.state_dict())
        self.optimizer: torch.optim.Optimizer = (
            torch.optim.AdamW(
                self.q.parameters(), lr=s.learning_rate, weight_decay=s.weight_decay
            )
            if s.weight_decay
            else torch.optim.Adam(self.q.parameters(), lr=s.learning_rate)
        )
        self.memory = ReplayMemory(s.memory_size, s.state_dim, s.n_actions)
        self.epsilon = s.epsilon_start
        self.steps = 0
        self.learn_calls = 0
        self.feature_mean = np.zeros(s.state_dim, dtype=np.float32)
        self.feature_std = np.ones(s.state_dim, dtype=np.float32)

    def _input(self, states: np.ndarray) -> torch.Tensor:
        return torch.from_numpy((states - self.feature_mean) / self.feature_std)

    def q_values(self, states: np.ndarray) -> np.ndarray:
        """Shape: (batch, state_dim) -> (batch, n_actions)."""
        with torch.no_grad():
            return self.q(self._input(np.atleast_2d(states).astype(np.float32))).numpy()

    def act(
        self,
        state: np.ndarray,
        *,
        explore: bool = True,
        candidates: Sequence[int] | None = None,
    ) -> int:
        """Epsilon-greedy in training; ``argmax_c Q(E(x), c)`` if ``explore=False``
        (survival policy: the cheapest action trusted at the threshold, else the
        one most likely to survive).

        ``candidates`` restricts both the random and the greedy choice to those
        action indices (default: all).
        """
        allowed = np.asarray(
            range(self.settings.n_actions) if candidates is None else candidates,
            dtype=np.int64,
        )
        if explore and self.rng.random() < self.epsilon:
            return int(allowed[self.rng.integers(len(allowed))])
        scores = self.q_values(state)[:, allowed]
        if self.settings.policy == "survival":
            s = self.settings
            cost = np.asarray(s.action_cost or range(s.n_actions), dtype=np.float64)
            survival = 1.0 / (1.0 + np.exp(-scores))
            return int(
                allowed[cheapest_trusted(survival, s.threshold, cost[allowed])[0]]
            )
        return int(allowed[scores[0].argmax()])

    def signal(self, result: Scored) -> float:
        """What the agent learns from a step: the reward (q) or the accuracy
        (survival)."""
        return result.accuracy if self.settings.policy == "survival" else result.reward

    def observe(
        self, state: np.ndarray, action: int, reward: float, next_state: np.ndarray
    ) -> float | None:
        """Store a transition; learn every ``learn_every`` steps after the warm-up.

        Returns the TD loss when a learning call happened.
        """
        rewards = np.zeros(self.settings.n_actions, dtype=np.float32)
        observed = np.zeros(self.settings.n_actions, dtype=np.float32)
        rewards[action], observed[action] = reward, 1.0
        self.memory.push(state, rewards, observed, next_state)
        return self._after_step()

    def observe_all(
        self, state: np.ndarray, rewards: np.ndarray, next_state: np.ndarray
    ) -> float | None:
        """Store the rewards of every action for one image (full information)."""
        observed = np.ones(self.settings.n_actions, dtype=np.float32)
        self.memory.push(state, rewards, observed, next_state)
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
        """One Adam step on MSE(Q(s, a), r + γ·max_a' Q_target(s', a')).

        The mean runs over every observed (state, action) pair of the minibatch.
        """
        s = self.settings
        n = self.memory.size
        idx = self.rng.choice(n, size=min(n, s.batch_size), replace=False)
        states = self._input(self.memory.states[idx])
        next_states = self._input(self.memory.next_states[idx])
        rewards = torch.from_numpy(self.memory.rewards[idx])
        observed = torch.from_numpy(self.memory.observed[idx])
        if s.policy == "survival":  # rewards hold accuracies: cross-entropy
            error = torch.nn.functional.binary_cross_entropy_with_logits(
                self.q(states), rewards, reduction="none"
            )
        else:
            with torch.no_grad():
                bootstrap = self.target if s.target_update else self.q
                best_next = bootstrap(next_states).max(dim=1, keepdim=True).values
                td_target = rewards + s.gamma * best_next
            error = (self.q(states) - td_target) ** 2
        loss = (error * observed).sum() / observed.sum()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.learn_calls += 1
        if s.target_update and self.learn_calls % s.target_update == 0:
            self.target.load_state_dict(self.q.state_dict())
        return loss.item()

    def fit_feature_scaling(self, features: np.ndarray) -> None:
        """Standardise inputs by the mean/std of ``features``. Shape: (n, state_dim)."""
        self.feature_mean = features.mean(axis=0).astype(np.float32)
        self.feature_std = (features.std(axis=0) + 1e-3).astype(np.float32)

    def training_state(self) -> dict[str, object]:
        """Everything learning changes, except the replay memory (kept by the caller).

        Plain tensors and numbers: save with ``torch.save``, load with
        ``weights_only=True``. The exploration/minibatch RNG state is under "rng".
        """
        return {
            "q": self.q.state_dict(),
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
        self.q.load_state_dict(state["q"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epsilon = float(state["epsilon"])
        self.steps = int(state["steps"])
        self.learn_calls = int(state["learn_calls"])
        self.rng.bit_generator.state = json.loads(state["rng"])

    def save(self, path: str | Path, **metadata: object) -> None:
        """Write weights, settings and ``metadata`` (plain values) atomically."""
        payload = {
            "format": AGENT_FORMAT,
            "settings": asdict(self.settings),
            "metadata": dict(metadata),
            "q": self.q.state_dict(),
            "feature_mean": torch.from_numpy(self.feature_mean),
            "feature_std": torch.from_numpy(self.feature_std),
            "epsilon": self.epsilon,
            "steps": self.steps,
        }
        atomic_torch_save(payload, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> tuple[DQNAgent, dict[str, object]]:
        """Read an agent written by :meth:`save` (no pickle: ``weights_only=True``).

        Returns the agent and its metadata.
        """
        try:
            payload = torch.load(Path(path), map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise ValueError(f"agent file not found: {path}") from None
        except Exception as err:  # torch raises many types for a bad file
            raise ValueError(
                f"not an agent file: {path} ({type(err).__name__})"
            ) from None
        if not isinstance(payload, dict) or payload.get("format") != AGENT_FORMAT:
            raise ValueError(f"not an agent file (format {AGENT_FORMAT}): {path}")
        agent = cls(settings_from(payload["settings"]))
        agent.q.load_state_dict(payload["q"])
        agent.target.load_state_dict(payload["q"])
        agent.feature_mean = payload["feature_mean"].numpy()
        agent.feature_std = payload["feature_std"].numpy()
        agent.epsilon = float(payload["epsilon"])
        agent.steps = int(payload["steps"])
        return agent, dict(payload["metadata"])


def settings_from(raw: dict[str, Any]) -> DQNSettings:
    """DQNSettings from their saved dict (lists back to tuples)."""
    values = dict(raw)
    for key in ("hidden", "action_cost"):
        if key in values:
            values[key] = tuple(values[key])
    return DQNSettings(**values)

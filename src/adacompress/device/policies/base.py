"""What every learned policy shares: a network over image features, feature
scaling, and the choice (docs/formulas.md, "Agent"). How it learns -- replay memory,
exploration, the optimiser -- is :class:`adacompress.exchange.learner.Learner`'s.

Reads top to bottom: the protocol, the MLP, then :class:`LearnedPolicy`. A concrete
policy says what its network predicts (:meth:`LearnedPolicy.build_network`), what it
learns from (:meth:`~LearnedPolicy.signal`), the per-action error it minimises
(:meth:`~LearnedPolicy.errors`) and how it chooses (:meth:`~LearnedPolicy.greedy`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from adacompress.core.objective import Objective, Value
from adacompress.device.policies.settings import PolicySettings, TrainingProgress


class Policy(Protocol):
    """What deploying a policy needs: a greedy choice per image, batched (a
    :class:`LearnedPolicy`, or an exported agent's policy graph)."""

    settings: PolicySettings

    def trainable(self) -> LearnedPolicy:
        """The policy as one that can learn (raises ValueError where it only
        decides)."""
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
    """A network over image features that picks one action per image; subclasses
    say what the network predicts, what it learns from and how it chooses.

    Args:
        settings: hyper-parameters (paper defaults).
    """

    def __init__(self, settings: PolicySettings | None = None) -> None:
        self.settings = s = settings or PolicySettings()
        torch.manual_seed(s.seed)
        self.network = self.build_network(s)
        self.feature_mean = np.zeros(s.state_dim, dtype=np.float32)
        self.feature_std = np.ones(s.state_dim, dtype=np.float32)
        self.progress = TrainingProgress(epsilon=s.epsilon_start)
        """how far its training went (what its agent file records)"""

    # -- what a concrete policy defines ----------------------------------------

    tunes: str = "alpha"
    """what a calibration for an accuracy target tunes: the objective's ``alpha``
    or the policy's ``threshold``"""
    loss_name: str = "loss"
    """the loss :meth:`errors` computes, as the training log names it"""
    orders_by_cost: bool = False
    """whether it needs ``PolicySettings.action_cost`` (each action's mean size)"""
    uses_sizes: bool = False
    """whether :meth:`signal` needs the uploads' size ratios (else any value does)"""

    def build_network(self, settings: PolicySettings) -> nn.Module:
        """Shape: (batch, state_dim) -> (batch, n_actions)."""
        raise NotImplementedError

    def signal(self, accuracy: Value, ratio: Value, objective: Objective) -> Value:
        """What the policy learns from uploads of this accuracy and size ratio
        (one, or elementwise of arrays)."""
        raise NotImplementedError

    def errors(self, batch: Batch, target: nn.Module) -> torch.Tensor:
        """Per-(row, action) loss, ``target`` the learner's target network.
        Shape: (batch, n_actions)."""
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

    def belief(self, states: np.ndarray) -> np.ndarray:
        """How likely each action is to keep the answer, as far as the policy can
        tell (1/2 when it cannot). Shape: (batch, state_dim) -> (batch, n_actions)."""
        return np.full((len(np.atleast_2d(states)), self.settings.n_actions), 0.5)

    def trainable(self) -> LearnedPolicy:
        return self

    # -- choosing --------------------------------------------------------------

    def scaled(self, states: np.ndarray) -> torch.Tensor:
        """Feature rows standardised as the policy was trained (float32 tensor)."""
        return torch.from_numpy((states - self.feature_mean) / self.feature_std)

    def scores(self, states: np.ndarray) -> np.ndarray:
        """The network's outputs. Shape: (batch, state_dim) -> (batch, n_actions)."""
        with torch.no_grad():
            rows = np.atleast_2d(states).astype(np.float32)
            return self.network(self.scaled(rows)).numpy()

    def allowed(self, candidates: Sequence[int] | None) -> np.ndarray:
        """``candidates`` as indices (default: every action)."""
        everything = range(self.settings.n_actions)
        return np.asarray(everything if candidates is None else candidates, np.int64)

    def choose(
        self, states: np.ndarray, candidates: Sequence[int] | None = None
    ) -> np.ndarray:
        """The greedy action per image, among ``candidates`` (default: all).

        Shape: (batch, state_dim) -> (batch,).
        """
        allowed = self.allowed(candidates)
        scores = self.scores(states)[:, allowed]
        return allowed[self.greedy(scores, allowed)]

    def act(self, state: np.ndarray, candidates: Sequence[int] | None = None) -> int:
        """One image's greedy action among ``candidates`` (default: all)."""
        return int(self.choose(state, candidates)[0])

    def fit_feature_scaling(self, features: np.ndarray) -> None:
        """Standardise inputs by the mean/std of ``features``. Shape: (n, state_dim)."""
        self.feature_mean = features.mean(axis=0).astype(np.float32)
        self.feature_std = (features.std(axis=0) + 1e-3).astype(np.float32)

    def weights(self) -> dict[str, Any]:
        """A copy of the network's weights (plain tensors)."""
        return copy.deepcopy(self.network.state_dict())

    def load_weights(self, weights: dict[str, Any]) -> None:
        """Serve with ``weights`` (from :meth:`weights`)."""
        self.network.load_state_dict(weights)

"""The survival policy (ours, for accuracy targets): predict, per action, whether the
cloud's answer survives it, and send the cheapest action trusted at a threshold.

One network over (state, action one-hot) gives the probability of survival; it learns
from the accuracy with cross-entropy. Actions are tried in the order of their mean
size on the training images (``action_cost``); ``train --target-accuracy`` calibrates
the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from adacompress.core.objective import Objective, Value
from adacompress.device.policies.base import Batch, LearnedPolicy, mlp
from adacompress.device.policies.settings import PolicySettings


class SurvivalNetwork(nn.Module):
    """One MLP over (state, action one-hot) -> survival logit, for every action.

    Sharing the network across actions is what makes it work on a few hundred
    images: with an output per action, rare failures of one action are learned from
    that action's column alone. A state that ends with ``per_action`` numbers for
    each action (the ``local-probes`` state) gives each action's row the shared part
    and its own numbers only.

    Shape: (batch, state_dim) -> (batch, n_actions) logits.
    """

    def __init__(
        self,
        state_dim: int,
        hidden: tuple[int, ...],
        n_actions: int,
        per_action: int = 0,
    ) -> None:
        super().__init__()
        self.n_actions, self.per_action = n_actions, per_action
        self.shared = state_dim - per_action * n_actions
        if self.shared < 0:
            raise ValueError(
                f"a state of {state_dim} cannot hold {per_action} numbers for each "
                f"of {n_actions} actions"
            )
        self.mlp = mlp(self.shared + n_actions + per_action, hidden, 1)
        self.one_hot: torch.Tensor
        self.register_buffer("one_hot", torch.eye(n_actions), persistent=False)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        batch = states.shape[0]
        parts = [
            states[:, : self.shared].repeat_interleave(self.n_actions, dim=0),
            self.one_hot.repeat(batch, 1),
        ]
        if self.per_action:
            own = states[:, self.shared :].reshape(batch * self.n_actions, -1)
            parts.append(own)
        return self.mlp(torch.cat(parts, dim=1)).view(batch, self.n_actions)


def cheapest_trusted(
    survival: np.ndarray, threshold: float, cost: np.ndarray
) -> np.ndarray:
    """The choice per row: the lowest-``cost`` action whose predicted survival
    reaches ``threshold``, else the one most likely to survive (survival and
    threshold may both be given as logits: the order is the same).

    Shape: survival (n, actions), cost (actions,) -> (n,) action indices.
    """
    trusted = survival >= threshold
    cheapest = np.where(trusted, cost[None, :], np.inf).argmin(axis=1)
    return np.where(trusted.any(axis=1), cheapest, survival.argmax(axis=1))


class SurvivalPolicy(LearnedPolicy):
    """Predicts whether each action keeps the answer; sends the cheapest trusted one.

    Examples:
        >>> policy = SurvivalPolicy(PolicySettings(policy="survival", threshold=0.95))
        >>> policy.survival(features)        # (batch, n_actions) probabilities
        >>> policy.act(features)             # the cheapest action trusted at 0.95
    """

    def build_network(self, settings: PolicySettings) -> nn.Module:
        return SurvivalNetwork(
            settings.state_dim,
            settings.hidden,
            settings.n_actions,
            settings.per_action,
        )

    loss_name = "survival_bce"
    orders_by_cost = True
    tunes = "threshold"

    def signal(self, accuracy: Value, ratio: Value, objective: Objective) -> Value:
        """Whether the answer survived."""
        return accuracy

    def errors(self, batch: Batch, target: nn.Module) -> torch.Tensor:
        """Cross-entropy of the predicted survival against the accuracy."""
        return nn.functional.binary_cross_entropy_with_logits(
            self.network(batch.states), batch.signals, reduction="none"
        )

    def survival(self, states: np.ndarray) -> np.ndarray:
        """Predicted survival. Shape: (batch, state_dim) -> (batch, n_actions)."""
        scores = self.scores(states)
        with np.errstate(over="ignore"):  # exp(-x) = inf for a very sure "lost": 0
            return 1.0 / (1.0 + np.exp(-scores))

    belief = survival

    def cost(self) -> list[float]:
        """Each action's cost, the order actions are tried in."""
        s = self.settings
        return list(s.action_cost or range(s.n_actions))

    def greedy(self, scores: np.ndarray, allowed: np.ndarray) -> np.ndarray:
        cost = np.asarray(self.cost(), dtype=np.float64)
        survival = 1.0 / (1.0 + np.exp(-scores))
        return cheapest_trusted(survival, self.settings.threshold, cost[allowed])

    def greedy_graph(self, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        cost = torch.tensor(self.cost(), dtype=torch.float32)
        out = torch.tensor(float("-inf"))
        survival = torch.sigmoid(scores)
        trusted = (survival >= float(self.settings.threshold)) & mask
        cheapest = torch.where(trusted, cost, -out).argmin(dim=1)
        likeliest = torch.where(mask, survival, out).argmax(dim=1)
        return torch.where(trusted.any(dim=1), cheapest, likeliest)

    def runner_up(
        self, scores: np.ndarray, chosen: int, candidates: Sequence[int]
    ) -> int:
        """The next cheaper candidate (else the next dearer one): its order, as in
        its greedy choice."""
        cost = self.cost()
        by_cost = sorted(candidates, key=lambda i: cost[i])
        position = by_cost.index(chosen)
        return by_cost[position - 1] if position > 0 else by_cost[position + 1]

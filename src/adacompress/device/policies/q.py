"""The AdaCompress deep Q-network: send ``argmax_c Q(E(x), c)`` (docs/formulas.md,
"Agent").

The paper's values are the defaults; ``gamma=0`` turns it into the contextual bandit
the problem really is (the next image does not depend on the action), and
``target_update`` adds a target network.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from adacompress.core.objective import Objective, Value
from adacompress.device.policies.base import Batch, LearnedPolicy, mlp
from adacompress.device.policies.settings import PolicySettings


class DQNPolicy(LearnedPolicy):
    """Deep Q-network over image features, learning the reward.

    Examples:
        >>> policy = DQNPolicy(PolicySettings(seed=1))
        >>> learner = Learner(policy)                          # exchange.learner
        >>> action = learner.act(features, explore=True)       # while training
        >>> learner.observe(features, action, reward, next_features)
        >>> best = policy.act(features)                        # greedy
    """

    def build_network(self, settings: PolicySettings) -> nn.Module:
        return mlp(settings.state_dim, settings.hidden, settings.n_actions)

    loss_name = "td_loss"
    uses_sizes = True

    def signal(self, accuracy: Value, ratio: Value, objective: Objective) -> Value:
        """The reward."""
        return objective.reward(accuracy, ratio)

    def errors(self, batch: Batch, target: nn.Module) -> torch.Tensor:
        """``(Q(s, a) - td_target)^2`` with ``td_target = r + γ·max_a' Q'(s', a')``
        (``Q'``: the ``target`` network when the settings keep one, else ``Q``)."""
        s = self.settings
        with torch.no_grad():
            bootstrap = target if s.target_update else self.network
            best_next = bootstrap(batch.next_states).max(dim=1, keepdim=True).values
            td_target = batch.signals + s.gamma * best_next
        return (self.network(batch.states) - td_target) ** 2

    def greedy(self, scores: np.ndarray, allowed: np.ndarray) -> np.ndarray:
        return scores.argmax(axis=1)

    def greedy_graph(self, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.where(mask, scores, torch.tensor(float("-inf"))).argmax(dim=1)

    def runner_up(
        self, scores: np.ndarray, chosen: int, candidates: Sequence[int]
    ) -> int:
        """The next best score."""
        order = sorted(candidates, key=lambda i: -scores[i])
        return next(i for i in order if i != chosen)

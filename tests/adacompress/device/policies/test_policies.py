from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from adacompress.core.objective import Objective
from adacompress.device.policies.base import mlp
from adacompress.device.policies.files import load_policy, save_policy
from adacompress.device.policies.q import DQNPolicy
from adacompress.device.policies.survival import (
    SurvivalNetwork,
    SurvivalPolicy,
    cheapest_trusted,
)
from adacompress.exchange.learner import Learner
from tests.adacompress.fakes import fill, small_settings


def test_q_network_shape_matches_spec() -> None:
    net = mlp(1280, (64, 32, 32), 10)
    widths = [
        (m.in_features, m.out_features) for m in net if isinstance(m, torch.nn.Linear)
    ]
    assert widths == [(1280, 64), (64, 32), (32, 32), (32, 10)]


def test_save_load_round_trip(tmp_path: Path) -> None:
    learner = Learner(DQNPolicy(small_settings(standardize=True)))
    fill(learner, 30)
    agent = learner.policy
    agent.fit_feature_scaling(learner.memory.states[:30])
    learner.learn()
    path = tmp_path / "agent.pt"
    save_policy(agent, path, backend="lite0", actions=["5", "15", "25", "35"])
    loaded, meta = load_policy(path)
    assert isinstance(loaded, DQNPolicy)
    assert meta == {"backend": "lite0", "actions": ["5", "15", "25", "35"]}
    states = learner.memory.states[:10]
    np.testing.assert_allclose(loaded.scores(states), agent.scores(states))
    assert loaded.settings == agent.settings


def test_load_rejects_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found"):
        load_policy(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable agent file"):
        load_policy(junk)


def test_survival_choice_is_the_cheapest_trusted_else_the_likeliest() -> None:
    survival = np.array(
        [
            [0.999, 0.95, 0.999, 1.0],  # 0 and 2 trusted at 0.99: 2 is cheaper
            [0.5, 0.9, 0.7, 0.98],  # none trusted: the likeliest, 3
        ]
    )
    cost = np.array([0.4, 0.1, 0.2, 1.0])
    assert cheapest_trusted(survival, 0.99, cost).tolist() == [2, 3]
    assert cheapest_trusted(survival, 0.9, cost).tolist() == [1, 1]  # 0.9 trusts 1


def test_a_very_sure_survival_is_0_or_1_without_a_warning() -> None:
    """Extreme logits (the probes agents' local classifier is sure) give 0 and 1,
    not an overflow warning on stderr."""

    class Sure(SurvivalPolicy):
        def scores(self, states: np.ndarray) -> np.ndarray:
            return np.array([[-1000.0, 1000.0]], dtype=np.float32)

    with np.errstate(over="raise"):
        survival = Sure().survival(np.zeros((1, 3)))
    assert survival.tolist() == [[0.0, 1.0]]


def test_survival_agent_learns_which_actions_survive(tmp_path: Path) -> None:
    """Action 0 (cheapest) survives only when the first feature is positive,
    action 1 always; the agent sends 0 when it can and 1 otherwise."""
    settings = small_settings(
        state_dim=2,
        n_actions=3,
        policy="survival",
        hidden=(16,),
        warmup_steps=0,
        learn_every=1,
        learning_rate=0.02,
        batch_size=64,
        memory_size=400,
        action_cost=(0.1, 0.5, 1.0),
        threshold=0.9,
    )
    agent = SurvivalPolicy(settings)
    learner = Learner(agent)
    rng = np.random.default_rng(0)
    for _ in range(400):
        state = rng.normal(size=2).astype(np.float32)
        survived = np.array([float(state[0] > 0), 1.0, 1.0], dtype=np.float32)
        learner.observe_all(state, survived, state)
    positive = np.array([1.5, 0.0], dtype=np.float32)
    negative = np.array([-1.5, 0.0], dtype=np.float32)
    assert agent.act(positive) == 0
    assert agent.act(negative) == 1
    assert agent.act(positive, candidates=[1, 2]) == 1
    # What it learns from: the accuracy, where the q policy learns the reward.
    objective = Objective(alpha=0.5)
    assert agent.signal(1.0, 0.8, objective) == 1.0
    assert DQNPolicy(small_settings()).signal(1.0, 0.8, objective) == pytest.approx(
        -0.3
    )
    # The policy, its threshold and costs travel with the agent file.
    save_policy(agent, tmp_path / "survival.pt")
    loaded, _ = load_policy(tmp_path / "survival.pt")
    assert isinstance(loaded, SurvivalPolicy) and loaded.settings == agent.settings
    assert loaded.act(positive) == 0
    with pytest.raises(ValueError, match="policy"):
        small_settings(policy="greedy")


def test_each_action_reads_its_own_numbers_of_a_per_action_state() -> None:
    """With ``per_action``, an action's survival sees the shared state and its own
    block only: changing action 2's numbers moves action 2's logit alone."""
    network = SurvivalNetwork(
        state_dim=4 + 3 * 5, hidden=(8,), n_actions=5, per_action=3
    )
    torch.manual_seed(0)
    states = torch.randn(2, 19)
    moved = states.clone()
    moved[:, 4 + 3 * 2 : 4 + 3 * 3] += 1.0
    with torch.no_grad():
        before, after = network(states), network(moved)
    changed = (before != after).any(dim=0)
    assert changed.tolist() == [False, False, True, False, False]
    with pytest.raises(ValueError, match="cannot hold"):
        SurvivalNetwork(state_dim=10, hidden=(8,), n_actions=5, per_action=3)

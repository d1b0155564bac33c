from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from adacompress.core.objective import Objective
from adacompress.device.policies.base import LearnedPolicy, mlp
from adacompress.device.policies.files import load_policy, save_policy
from adacompress.device.policies.q import DQNPolicy
from adacompress.device.policies.settings import PolicySettings
from adacompress.device.policies.survival import SurvivalPolicy, cheapest_trusted


def small_settings(**overrides: object) -> PolicySettings:
    base = dict(
        state_dim=6,
        n_actions=4,
        batch_size=8,
        memory_size=50,
        warmup_steps=1000,
        seed=3,
    )
    base.update(overrides)
    return PolicySettings(**base)  # type: ignore[arg-type]


def fill(agent: LearnedPolicy, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(n):
        agent.observe(
            rng.normal(size=agent.settings.state_dim).astype(np.float32),
            int(rng.integers(agent.settings.n_actions)),
            float(rng.normal()),
            rng.normal(size=agent.settings.state_dim).astype(np.float32),
        )


def test_q_network_shape_matches_spec() -> None:
    net = mlp(1280, (64, 32, 32), 10)
    widths = [
        (m.in_features, m.out_features) for m in net if isinstance(m, torch.nn.Linear)
    ]
    assert widths == [(1280, 64), (64, 32), (32, 32), (32, 10)]


@pytest.mark.parametrize("gamma,target_update", [(0.95, 0), (0.0, 0), (0.9, 2)])
def test_learn_matches_naive_td_update(gamma: float, target_update: int) -> None:
    agent = DQNPolicy(small_settings(gamma=gamma, target_update=target_update))
    fill(agent, 30)
    # Reproduce the minibatch the agent will draw.
    rng = copy.deepcopy(agent.rng)
    idx = rng.choice(agent.memory.size, size=8, replace=False)
    before = copy.deepcopy(agent.network)
    target_net = copy.deepcopy(agent.target if target_update else agent.network)

    # Naive loss, one transition at a time, straight from docs/formulas.md, "Agent".
    terms = []
    for i in idx:
        s = torch.from_numpy(agent.memory.states[i])
        s2 = torch.from_numpy(agent.memory.next_states[i])
        with torch.no_grad():
            best_next = max(float(v) for v in target_net(s2))
        action = int(agent.memory.observed[i].argmax())
        target = float(agent.memory.signals[i, action]) + gamma * best_next
        terms.append((before(s)[action] - target) ** 2)
    naive_loss = torch.stack(terms).mean()
    optimizer = torch.optim.Adam(before.parameters(), lr=agent.settings.learning_rate)
    optimizer.zero_grad()
    naive_loss.backward()
    optimizer.step()

    loss = agent.learn()
    assert loss == pytest.approx(naive_loss.item(), rel=1e-5)
    for p_agent, p_naive in zip(
        agent.network.parameters(), before.parameters(), strict=True
    ):
        torch.testing.assert_close(p_agent, p_naive, rtol=1e-5, atol=1e-6)


def test_full_information_update_averages_over_all_actions() -> None:
    agent = DQNPolicy(small_settings(gamma=0.0))
    rng = np.random.default_rng(5)
    for _ in range(20):
        agent.observe_all(
            rng.normal(size=6).astype(np.float32),
            rng.normal(size=4).astype(np.float32),
            rng.normal(size=6).astype(np.float32),
        )
    idx = copy.deepcopy(agent.rng).choice(20, size=8, replace=False)
    before = copy.deepcopy(agent.network)
    terms = []
    for i in idx:
        q = before(torch.from_numpy(agent.memory.states[i]))
        for c in range(4):
            terms.append((q[c] - float(agent.memory.signals[i, c])) ** 2)
    assert agent.learn() == pytest.approx(torch.stack(terms).mean().item(), rel=1e-5)


def test_epsilon_schedule_follows_spec() -> None:
    agent = DQNPolicy(small_settings(warmup_steps=128, memory_size=300))
    state = np.zeros(6, dtype=np.float32)
    epsilons = []
    for _ in range(200):
        agent.observe(state, 0, 0.0, state)
        epsilons.append(agent.epsilon)
    assert all(e == 1.0 for e in epsilons[:129])  # steps 1..129: no learning call yet
    assert agent.learn_calls == len([s for s in range(129, 201) if s % 5 == 0])
    assert agent.epsilon == pytest.approx(0.99**agent.learn_calls)
    agent.epsilon = 0.021
    for _ in range(50):
        agent.observe(state, 0, 0.0, state)
    assert agent.epsilon == 0.02


def test_greedy_action_is_argmax_and_exploration_is_seeded() -> None:
    a, b = DQNPolicy(small_settings()), DQNPolicy(small_settings())
    states = np.random.default_rng(1).normal(size=(20, 6)).astype(np.float32)
    assert [a.act(s, explore=True) for s in states] == [
        b.act(s, explore=True) for s in states
    ]
    for s in states:  # greedy unless asked to explore, whatever epsilon is
        assert a.act(s) == int(a.scores(s)[0].argmax())
    np.testing.assert_array_equal(a.choose(states), a.scores(states).argmax(axis=1))


def test_candidates_restrict_both_exploration_and_the_greedy_choice() -> None:
    agent = DQNPolicy(PolicySettings(state_dim=4, n_actions=10, seed=3))
    state = np.ones(4, dtype=np.float32)
    allowed = [0, 2, 7]
    agent.epsilon = 1.0
    explored = {agent.act(state, explore=True, candidates=allowed) for _ in range(200)}
    assert explored == set(allowed)
    agent.epsilon = 0.0
    q = agent.scores(state)[0]
    assert agent.act(state, candidates=allowed) == allowed[int(q[allowed].argmax())]
    assert agent.act(state) == int(q.argmax())


def test_save_load_round_trip(tmp_path: Path) -> None:
    agent = DQNPolicy(small_settings(standardize=True))
    fill(agent, 30)
    agent.fit_feature_scaling(agent.memory.states[:30])
    agent.learn()
    path = tmp_path / "agent.pt"
    save_policy(agent, path, backend="lite0", actions=["5", "15", "25", "35"])
    loaded, meta = load_policy(path)
    assert isinstance(loaded, DQNPolicy)
    assert meta == {"backend": "lite0", "actions": ["5", "15", "25", "35"]}
    states = agent.memory.states[:10]
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
    rng = np.random.default_rng(0)
    for _ in range(400):
        state = rng.normal(size=2).astype(np.float32)
        survived = np.array([float(state[0] > 0), 1.0, 1.0], dtype=np.float32)
        agent.observe_all(state, survived, state)
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


def test_runtime_seams_swap_weights_restart_and_stop_exploring() -> None:
    agent = DQNPolicy(small_settings(gamma=0.0, warmup_steps=0, learn_every=1))
    before = agent.weights()
    fill(agent, 30)
    assert agent.learn_calls > 0
    trained = agent.weights()
    states = agent.memory.states[:5]
    learned_scores = agent.scores(states)
    agent.load_weights(before)
    assert not np.allclose(agent.scores(states), learned_scores)
    agent.load_weights(trained)
    np.testing.assert_allclose(agent.scores(states), learned_scores)
    # weights() is a copy: learning afterwards does not change it
    fill(agent, 5, seed=9)
    agent.load_weights(trained)
    np.testing.assert_allclose(agent.scores(states), learned_scores)

    agent.restart_exploration(warmup_steps=3, learn_every=2, epsilon_decay=0.5)
    assert (agent.steps, agent.epsilon) == (0, agent.settings.epsilon_start)
    assert agent.settings.warmup_steps == 3 and agent.settings.learn_every == 2
    agent.stop_exploring()
    assert agent.epsilon == 0.0

    agent.forget()
    assert agent.memory.size == 0
    state = np.ones(6, dtype=np.float32)
    agent.remember(state, np.ones(4, np.float32), np.eye(4, dtype=np.float32)[1])
    assert agent.memory.size == 1 and agent.steps == 0  # stored, not learned from
    np.testing.assert_array_equal(agent.memory.next_states[0], state)

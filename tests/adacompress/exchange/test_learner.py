"""The learner: the TD update against a naive one, the exploration schedule, and
the seams the runtime uses."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from adacompress.device.policies.q import DQNPolicy
from adacompress.device.policies.settings import PolicySettings
from adacompress.exchange.learner import Learner
from tests.adacompress.fakes import fill, small_settings


@pytest.mark.parametrize("gamma,target_update", [(0.95, 0), (0.0, 0), (0.9, 2)])
def test_learn_matches_naive_td_update(gamma: float, target_update: int) -> None:
    agent = Learner(DQNPolicy(small_settings(gamma=gamma, target_update=target_update)))
    fill(agent, 30)
    # Reproduce the minibatch the agent will draw.
    rng = copy.deepcopy(agent.rng)
    idx = rng.choice(agent.memory.size, size=8, replace=False)
    before = copy.deepcopy(agent.policy.network)
    target_net = copy.deepcopy(agent.target if target_update else agent.policy.network)

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
        agent.policy.network.parameters(), before.parameters(), strict=True
    ):
        torch.testing.assert_close(p_agent, p_naive, rtol=1e-5, atol=1e-6)


def test_full_information_update_averages_over_all_actions() -> None:
    agent = Learner(DQNPolicy(small_settings(gamma=0.0)))
    rng = np.random.default_rng(5)
    for _ in range(20):
        agent.observe_all(
            rng.normal(size=6).astype(np.float32),
            rng.normal(size=4).astype(np.float32),
            rng.normal(size=6).astype(np.float32),
        )
    idx = copy.deepcopy(agent.rng).choice(20, size=8, replace=False)
    before = copy.deepcopy(agent.policy.network)
    terms = []
    for i in idx:
        q = before(torch.from_numpy(agent.memory.states[i]))
        for c in range(4):
            terms.append((q[c] - float(agent.memory.signals[i, c])) ** 2)
    assert agent.learn() == pytest.approx(torch.stack(terms).mean().item(), rel=1e-5)


def test_epsilon_schedule_follows_spec() -> None:
    agent = Learner(DQNPolicy(small_settings(warmup_steps=128, memory_size=300)))
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
    a = Learner(DQNPolicy(small_settings()))
    b = Learner(DQNPolicy(small_settings()))
    states = np.random.default_rng(1).normal(size=(20, 6)).astype(np.float32)
    assert [a.act(s, explore=True) for s in states] == [
        b.act(s, explore=True) for s in states
    ]
    for s in states:  # greedy unless asked to explore, whatever epsilon is
        assert a.act(s) == int(a.policy.scores(s)[0].argmax())
    greedy = a.policy.choose(states)
    np.testing.assert_array_equal(greedy, a.policy.scores(states).argmax(axis=1))


def test_candidates_restrict_both_exploration_and_the_greedy_choice() -> None:
    agent = Learner(DQNPolicy(PolicySettings(state_dim=4, n_actions=10, seed=3)))
    state = np.ones(4, dtype=np.float32)
    allowed = [0, 2, 7]
    agent.epsilon = 1.0
    explored = {agent.act(state, explore=True, candidates=allowed) for _ in range(200)}
    assert explored == set(allowed)
    agent.epsilon = 0.0
    q = agent.policy.scores(state)[0]
    assert agent.act(state, candidates=allowed) == allowed[int(q[allowed].argmax())]
    assert agent.act(state) == int(q.argmax())


def test_runtime_seams_swap_weights_restart_and_stop_exploring() -> None:
    agent = Learner(DQNPolicy(small_settings(gamma=0.0, warmup_steps=0, learn_every=1)))
    before = agent.weights()
    fill(agent, 30)
    assert agent.learn_calls > 0
    trained = agent.weights()
    states = agent.memory.states[:5]
    learned_scores = agent.policy.scores(states)
    agent.load_weights(before)
    assert not np.allclose(agent.policy.scores(states), learned_scores)
    agent.load_weights(trained)
    np.testing.assert_allclose(agent.policy.scores(states), learned_scores)
    # weights() is a copy: learning afterwards does not change it
    fill(agent, 5, seed=9)
    agent.load_weights(trained)
    np.testing.assert_allclose(agent.policy.scores(states), learned_scores)

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

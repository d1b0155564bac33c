"""The replay memory of a learned policy (docs/formulas.md, "Agent": 2000
transitions)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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

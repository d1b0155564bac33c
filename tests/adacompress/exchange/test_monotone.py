"""What one answer says about the others: propagation and the next question."""

from __future__ import annotations

import numpy as np

from adacompress.device.actions import Action, paper_actions, scale_quality_actions
from adacompress.exchange.monotone import dominance, next_query, propagate, violations

NAN = np.nan


def test_dominance_is_at_least_in_scale_and_quality() -> None:
    actions = [Action(5, 0.5), Action(35, 0.5), Action(5, 1.0), Action(35, 0.25)]
    up = dominance(actions)
    assert up[0].tolist() == [True, True, True, False]
    assert up[3].tolist() == [False, True, False, True]
    assert up.diagonal().all()
    mixed = dominance([Action(5, 0.5), Action(35, 1.0, "webp"), Action(35, 1.0)])
    assert mixed[0].tolist() == [True, False, True]  # no claim across formats


def test_propagation_fills_what_is_implied_and_keeps_what_was_seen() -> None:
    up = dominance(paper_actions())  # one chain: 5 < 15 < ... < 95
    row = np.full(10, NAN)
    row[3] = 1.0  # q=35 kept: everything above is kept
    row[1] = 0.0  # q=15 lost: everything below is lost
    out = propagate(row, up)
    assert out.tolist()[:2] == [0.0, 0.0] and np.isnan(out[2])
    assert out[3:].tolist() == [1.0] * 7
    # Conflicting observations leave the contested entries unknown.
    clash = np.full(10, NAN)
    clash[2], clash[6] = 1.0, 0.0
    out = propagate(clash, up)
    assert out[2] == 1.0 and out[6] == 0.0 and np.isnan(out[3:6]).all()


def test_the_next_question_is_bisection_without_a_belief() -> None:
    up = dominance(paper_actions())
    row = np.full(10, NAN)
    first = next_query(row, np.full(10, 0.5), up)
    assert first in (4, 5)  # the middle of the chain
    # A belief sure of all but q=35 asks about q=35.
    sure = np.array([0.01] * 3 + [0.5] + [0.99] * 6)
    assert next_query(row, sure, up) == 3
    assert next_query(np.ones(10), np.full(10, 0.5), up) is None


def test_few_questions_settle_a_monotone_grid() -> None:
    """On a truly monotone 5 x 5 grid, bisection settles every outcome in far
    fewer than 25 questions."""
    actions = scale_quality_actions()
    up = dominance(actions)
    rng = np.random.default_rng(0)
    asked = []
    for _ in range(50):
        # A random staircase: kept where quality and scale clear an image's bars.
        q_bar, s_bar = rng.integers(0, 6, size=2)
        q = np.array([[5, 15, 35, 55, 75].index(a.quality) for a in actions])
        s = np.array([[0.25, 0.35, 0.5, 0.75, 1.0].index(a.scale) for a in actions])
        truth = ((q >= q_bar) & (s >= s_bar)).astype(float)
        known, n = np.full(25, NAN), 0
        while (j := next_query(known, np.full(25, 0.5), up)) is not None:
            known[j] = truth[j]
            known = propagate(known, up)
            n += 1
        assert np.array_equal(known, truth)
        assert violations(truth[None], up)[0] == 0
        asked.append(n)
    assert max(asked) <= 10 and np.mean(asked) < 7


def test_violations_count_larger_uploads_that_lost_what_smaller_kept() -> None:
    up = dominance(paper_actions())
    kept = np.ones((2, 10))
    kept[1, 7] = 0.0  # q=75 lost while q=5..65 kept: 7 pairs
    assert violations(kept, up).tolist() == [0, 7]


def test_with_a_trust_level_the_would_be_choice_is_checked_first() -> None:
    up = dominance(paper_actions())
    row = np.full(10, NAN)
    belief = np.array([0.2, 0.6, 0.995, 0.999] + [1.0] * 6)
    cost = np.arange(10.0)  # q=5 cheapest
    assert next_query(row, belief, up, cost=cost, trust=0.99) == 2
    row[2] = 0.0  # it lost: the next trusted one
    assert next_query(propagate(row, up), belief, up, cost=cost, trust=0.99) == 3
    nothing_trusted = np.full(10, 0.5)  # falls back to bisection
    assert next_query(row * NAN, nothing_trusted, up, cost=cost, trust=0.99) in (4, 5)

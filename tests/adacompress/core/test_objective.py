from __future__ import annotations

import itertools

import numpy as np
import pytest

from adacompress.core import objective as metrics
from adacompress.core.labels import Label


def answer(*ids: int) -> list[Label]:
    return [Label(i, f"class {i}", 1.0 / (rank + 1)) for rank, i in enumerate(ids)]


def naive_accuracy(reference: list[Label], compressed: list[Label], k: int) -> float:
    """Straight from docs/formulas.md: 1 if top-1 of y_ref is among the top-k of y_c."""
    hits = 0
    for label in compressed[:k]:
        if label.class_id == reference[0].class_id:
            hits = 1
    return float(hits)


def test_accuracy_matches_naive_definition_for_every_rank_and_k() -> None:
    reference = answer(7, 1, 2)
    for position, k in itertools.product(range(10), range(1, 11)):
        ids = [100 + i for i in range(10)]
        ids[position] = 7
        compressed = answer(*ids)
        assert metrics.accuracy(reference, compressed, top_k=k) == naive_accuracy(
            reference, compressed, k
        )


def test_strict_accuracy_is_top1_equality() -> None:
    assert metrics.strict_accuracy(answer(3, 4), answer(3, 9)) == 1.0
    assert metrics.strict_accuracy(answer(3, 4), answer(4, 3)) == 0.0
    assert metrics.accuracy(answer(3, 4), answer(4, 3)) == 1.0


def test_empty_answers_count_as_wrong() -> None:
    assert metrics.accuracy([], answer(1)) == 0.0
    assert metrics.accuracy(answer(1), []) == 0.0


def test_size_ratio_and_reward() -> None:
    assert metrics.size_ratio(300, 1200) == pytest.approx(0.25)
    with pytest.raises(ValueError):
        metrics.size_ratio(1, 0)
    assert metrics.Objective().reward(1.0, 0.25) == pytest.approx(0.75)
    assert metrics.Objective().reward(0.0, 0.25) == pytest.approx(-0.25)
    weighted = metrics.Objective(alpha=2.0, beta=0.5)
    assert weighted.reward(1.0, 0.25) == pytest.approx(2.25)
    assert weighted.with_alpha(1.0) == metrics.Objective(beta=0.5)


def test_objective_rewards_arrays_like_single_uploads() -> None:
    objective = metrics.Objective(alpha=3.0, beta=0.1)
    acc, ratio = np.array([1.0, 0.0, 1.0]), np.array([0.2, 0.5, 1.0])
    expected = [objective.reward(a, r) for a, r in zip(acc, ratio, strict=True)]
    assert objective.reward(acc, ratio).tolist() == expected


def test_objective_refuses_a_target_outside_zero_one() -> None:
    with pytest.raises(ValueError, match="target accuracy"):
        metrics.Objective(target=1.5)

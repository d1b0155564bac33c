from __future__ import annotations

import itertools

import pytest

from adacompress.core.labels import Label
from adacompress.learning import metrics


def answer(*ids: int) -> list[Label]:
    return [Label(i, f"class {i}", 1.0 / (rank + 1)) for rank, i in enumerate(ids)]


def naive_accuracy(reference: list[Label], compressed: list[Label], k: int) -> float:
    """Straight from SPEC.md: 1 if top-1 of y_ref is among the top-k of y_c."""
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
    assert metrics.reward(1.0, 0.25) == pytest.approx(0.75)
    assert metrics.reward(0.0, 0.25) == pytest.approx(-0.25)
    assert metrics.reward(1.0, 0.25, alpha=2.0, beta=0.5) == pytest.approx(2.25)

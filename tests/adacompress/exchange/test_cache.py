"""A damaged answer cache: one line naming the file, or a cache miss; never a
traceback, never a wrong result (issue 31, MEDIUM 6)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adacompress.core.labels import Label
from adacompress.exchange.cache import AnswerCache, Outcome
from basekit.sqlite import StateError
from tests.adacompress.fakes import MeanFeatures, make_env, write_photos

GOOD = Outcome(1234, [Label(1, "cat", 0.9), Label(2, "dog", 0.1)])
INT64 = st.integers(-(2**63), 2**63 - 1)  # what SQLite stores
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def cache_with(path: Path, column: str, value: object) -> AnswerCache:
    """A cache holding one answer (and one 3-value feature vector) whose
    ``column`` was then overwritten with ``value``."""
    with AnswerCache(path) as cache:
        cache.put_answers("h", "svc", {"a": GOOD})
        cache.put_features("h", "mean", np.ones(3, np.float32))
    cache = AnswerCache(path)
    overwrite(cache, column, value)
    return cache


def test_a_good_answer_reads_back(tmp_path: Path) -> None:
    with cache_with(tmp_path / "c.sqlite", "nbytes", 1234) as cache:
        assert cache.get_answers("h", "svc", ["a"]) == {"a": GOOD}
        found = cache.get_features("h", "mean", size=3)
        assert found is not None and found.tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("labels", "[" * 100_000 + "]" * 100_000),  # RecursionError before
        ("labels", '[[1e400, "x", 0.5]]'),  # OverflowError before
        ("labels", '[[1, "x", 1e400]]'),  # an infinite score
        ("labels", '[[1, "x", NaN]]'),
        ("labels", "[[1, 2, 0.5]]"),
        ("labels", '[[1, "x"]]'),
        ("labels", '{"a": 1}'),
        ("labels", "[" + ",".join(['[1, "x", 0.5]'] * 1001) + "]"),
        ("labels", b"\xff\xfe"),
        ("labels", 5),
        ("nbytes", "x"),
        ("nbytes", -3),
        ("nbytes", 1e300),
    ],
)
def test_a_damaged_answer_is_one_line_naming_the_cache(
    tmp_path: Path, column: str, value: object
) -> None:
    path = tmp_path / "c.sqlite"
    with cache_with(path, column, value) as cache:
        with pytest.raises(StateError) as raised:
            cache.get_answers("h", "svc", ["a"])
    message = str(raised.value)
    assert str(path) in message and "damaged answer" in message
    assert "\n" not in message and len(message) < 400


@pytest.mark.parametrize(
    "value",
    [
        np.ones(1, np.float32).tobytes(),  # 4 bytes: was broadcast to every value
        np.ones(4, np.float32).tobytes(),
        np.array([1, np.nan, 1], np.float32).tobytes(),
        b"abcde",
        "text",
    ],
)
def test_a_damaged_feature_vector_is_a_cache_miss(
    tmp_path: Path, value: object
) -> None:
    with cache_with(tmp_path / "c.sqlite", "vector", value) as cache:
        assert cache.get_features("h", "mean", size=3) is None


def test_a_damaged_feature_vector_is_recomputed_not_broadcast(tmp_path: Path) -> None:
    """The state of a photo whose cached features are 4 bytes is computed again
    (and the cache repaired), not read as one value."""
    paths = write_photos(tmp_path / "img", 2)
    env = make_env(tmp_path)
    true, _ = env.prepare(paths, progress=False)
    name = MeanFeatures.cache_name
    env.cache.put_features(true[0].seen, name, np.ones(1, np.float32))
    again, _ = env.prepare(paths, progress=False)
    assert again[0].features.shape == (MeanFeatures.dim,)
    np.testing.assert_array_equal(again[0].features, true[0].features)
    repaired = env.cache.get_features(true[0].seen, name, size=MeanFeatures.dim)
    assert repaired is not None
    np.testing.assert_array_equal(repaired, true[0].features)
    env.cache.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnswerCache]:
    """One cache whose rows each example overwrites."""
    path = tmp_path_factory.mktemp("fuzz") / "c.sqlite"
    with cache_with(path, "nbytes", 1234) as cache:
        yield cache


def overwrite(cache: AnswerCache, column: str, value: object) -> None:
    table = "features" if column == "vector" else "answers"
    with closing(sqlite3.connect(cache.path)) as db:
        db.execute(f"UPDATE {table} SET {column} = ?", (value,))
        db.commit()


@FUZZ
@given(
    stored=st.one_of(
        st.binary(max_size=64),
        st.text(max_size=64),
        json_values.map(json.dumps),
        st.lists(st.tuples(INT64, st.text(max_size=4), st.floats()), max_size=3).map(
            json.dumps
        ),
        INT64,
        st.floats(allow_nan=False),  # SQLite stores NaN as NULL,
    ),
    nbytes=st.one_of(INT64, st.floats(allow_nan=False), st.text(max_size=4)),
)
def test_fuzz_answers_read_back_or_fail_in_one_line(
    fuzzed: AnswerCache, stored: object, nbytes: object
) -> None:
    """Any stored labels and size: the answer, or one line naming the file."""
    overwrite(fuzzed, "labels", stored)
    overwrite(fuzzed, "nbytes", nbytes)
    try:
        found = fuzzed.get_answers("h", "svc", ["a"])
    except StateError as err:
        assert str(fuzzed.path) in str(err) and "\n" not in str(err)
        return
    outcome = found["a"]
    assert isinstance(outcome.nbytes, int) and outcome.nbytes >= 0
    for label in outcome.answer:
        assert isinstance(label.class_id, int) and isinstance(label.name, str)
        assert np.isfinite(label.score)


@FUZZ
@given(
    stored=st.one_of(st.binary(max_size=40), st.text(max_size=8), INT64),
    size=st.integers(1, 8),
)
def test_fuzz_feature_vectors_are_right_or_missing(
    fuzzed: AnswerCache, stored: object, size: int
) -> None:
    """Any stored vector: ``size`` finite float32 values, or a cache miss."""
    overwrite(fuzzed, "vector", stored)
    found = fuzzed.get_features("h", "mean", size=size)
    if found is not None:
        assert found.dtype == np.float32 and found.shape == (size,)
        assert np.isfinite(found).all()

"""The store's columns are declared once, on :class:`Record` and
:class:`Transition`; a field may keep an older column name (``signals`` is stored
as ``rewards``), so a store written before reads and resumes as it is (issue 33)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from adacompress.runtime.loop import Runtime
from adacompress.runtime.store import RunStore
from tests.adacompress.fakes import write_photos
from tests.adacompress.runtime.test_saved_state import runtime

OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    position INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    state TEXT NOT NULL,
    action TEXT,
    bytes_uploaded INTEGER NOT NULL,
    reference_bytes INTEGER,
    accuracy REAL,
    p_est REAL NOT NULL,
    epsilon REAL NOT NULL,
    labels TEXT NOT NULL,
    error TEXT,
    source TEXT,
    digest TEXT,
    calls INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS runtime (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    state TEXT NOT NULL,
    agent BLOB NOT NULL,
    metadata TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    generation INTEGER NOT NULL,
    state BLOB NOT NULL,
    rewards BLOB NOT NULL,
    observed BLOB NOT NULL
);
"""
"""The schema of version 3 as the store wrote it before issue 33."""

TABLES = ("records", "runtime", "transitions")


def old_store(folder: Path) -> Path:
    """An empty store in ``folder`` created by the old schema."""
    folder.mkdir(parents=True)
    path = folder / "run.sqlite"
    with closing(sqlite3.connect(path)) as db:
        db.executescript(OLD_SCHEMA)
        db.execute("PRAGMA user_version = 3")
        db.commit()
    return path


def columns(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with closing(sqlite3.connect(path)) as db:
        return {t: db.execute(f"PRAGMA table_info({t})").fetchall() for t in TABLES}


def test_a_new_store_has_the_columns_of_the_old_schema(tmp_path: Path) -> None:
    old = old_store(tmp_path / "old")
    RunStore(tmp_path / "new").close()
    assert columns(tmp_path / "new" / "run.sqlite") == columns(old)


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_version_gains_the_columns_added_since(
    tmp_path: Path, version: int
) -> None:
    added = {1: ("source", "digest", "calls"), 2: ("calls",)}[version]
    lines = [
        line
        for line in OLD_SCHEMA.splitlines()
        if (line.split() or [""])[0] not in added
    ]
    schema = "\n".join(lines).replace("TEXT,\n);", "TEXT\n);", 1)
    folder = tmp_path / "older"
    folder.mkdir()
    with closing(sqlite3.connect(folder / "run.sqlite")) as db:
        db.executescript(schema)
        db.execute(f"PRAGMA user_version = {version}")
        db.commit()
    RunStore(folder).close()
    assert columns(folder / "run.sqlite") == columns(old_store(tmp_path / "old"))


def test_rows_written_by_the_old_schema_read_with_their_fields(tmp_path: Path) -> None:
    path = old_store(tmp_path / "old")
    features, rewards, observed = (np.full(3, v, np.float32) for v in (1, 2, 3))
    with closing(sqlite3.connect(path)) as db:
        db.execute(
            "INSERT INTO records (position, path, state, action, bytes_uploaded, "
            "reference_bytes, accuracy, p_est, epsilon, labels, error, source, "
            "digest, calls) VALUES (0, 'a.jpg', 'estimate', '5', 10, 20, 1.0, 0.5, "
            "0.1, '[[1, \"cat\", 0.9]]', NULL, '/a.jpg', 'abc', 2)"
        )
        db.execute(
            "INSERT INTO transitions (generation, state, rewards, observed) "
            "VALUES (0, ?, ?, ?)",
            (features.tobytes(), rewards.tobytes(), observed.tobytes()),
        )
        db.commit()
    with RunStore(tmp_path / "old") as store:
        [record] = store.records()
        [transition] = store.transitions(0)
    assert (record.kind, record.bytes_uploaded, record.calls) == ("estimate", 10, 2)
    assert record.labels == [(1, "cat", 0.9)] and record.identity == ("/a.jpg", "abc")
    np.testing.assert_array_equal(transition.features, features)
    np.testing.assert_array_equal(transition.signals, rewards)
    np.testing.assert_array_equal(transition.observed, observed)


def process(run: Runtime, paths: list[Path]) -> None:
    for path in paths:
        run.process(path)
    run.store.close()
    run.env.cache.close()


def stored(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with closing(sqlite3.connect(path)) as db:
        return {t: db.execute(f"SELECT * FROM {t}").fetchall() for t in TABLES}


def test_a_run_in_a_store_of_the_old_schema_resumes_as_one_run(tmp_path: Path) -> None:
    paths = write_photos(tmp_path / "img", 4)
    process(runtime(tmp_path / "whole"), paths)
    old_store(tmp_path / "halves" / "state")
    process(runtime(tmp_path / "halves"), paths[:2])
    process(runtime(tmp_path / "halves"), paths[2:])
    whole = stored(tmp_path / "whole" / "state" / "run.sqlite")
    assert stored(tmp_path / "halves" / "state" / "run.sqlite") == whole
    assert len(whole["transitions"]) == 4

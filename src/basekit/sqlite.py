"""SQLite files that hold state: created atomically, versioned, every error one line
naming the file.

A new file is built beside its final name and linked into place only when its schema
is complete, so a file that exists is one of ours or damaged -- never half made, and
never silently started over: an empty (0-byte), foreign or corrupt file is an error.
The busy timeout is set before anything else, so several processes can open the same
new file at once.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

BUSY_TIMEOUT_S = 30.0


class StateError(ValueError):
    """A state file that cannot be used; the message is one line and names it."""


class Database:
    """One SQLite file with a known schema.

    Args:
        path: the file; its folder is created.
        kind: what it is, for messages ("answer cache").
        schema: ``CREATE TABLE`` statements.
        version: stored as ``PRAGMA user_version``; a file at another version is
            refused, unless ``migrate`` brings it up from that version.
        migrate: ``(connection, old_version)`` updates an older file in place; a file
            of version 0 whose tables exist counts as made before versions.
        synchronous: ``NORMAL`` (a cache) or ``FULL`` (state that must survive a
            power cut).

    Raises:
        StateError: the file is empty, damaged, not ours or of another version.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        kind: str,
        schema: str,
        version: int,
        migrate: Callable[[sqlite3.Connection, int], None] | None = None,
        synchronous: str = "NORMAL",
    ) -> None:
        self.path, self.kind = Path(path), kind
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self._create(schema, version)
        if self.path.stat().st_size == 0:
            raise self.error("empty file (0 bytes); move it away to start over")
        with self.guard():
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
            self._db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self._check(schema, version, migrate)
            self._db.execute(f"PRAGMA synchronous = {synchronous}")

    def error(self, reason: str) -> StateError:
        return StateError(f"{self.kind} {self.path}: {reason}")

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Turn SQLite's errors into a :class:`StateError` naming the file."""
        try:
            yield
        except sqlite3.DatabaseError as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise self.error(reason) from None

    def _create(self, schema: str, version: int) -> None:
        fd, tmp = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".new"
        )
        os.close(fd)
        try:
            with contextlib.closing(sqlite3.connect(tmp)) as db:
                db.execute("PRAGMA journal_mode = WAL")
                db.executescript(schema)
                db.execute(f"PRAGMA user_version = {version}")
                db.commit()
            with contextlib.suppress(FileExistsError):  # another process was first
                os.link(tmp, self.path)
        finally:
            for leftover in (tmp, tmp + "-wal", tmp + "-shm"):
                Path(leftover).unlink(missing_ok=True)

    def _check(
        self,
        schema: str,
        version: int,
        migrate: Callable[[sqlite3.Connection, int], None] | None,
    ) -> None:
        found = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        tables = {
            row[0]
            for row in self._db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        }
        wanted = {
            line.split()[5] if "IF NOT EXISTS" in line else line.split()[2]
            for line in schema.splitlines()
            if line.strip().upper().startswith("CREATE TABLE")
        }
        if found == version and wanted <= tables:
            return
        if migrate is None or found > version or not wanted & tables:
            raise self.error(
                f"not an {self.kind} of this version (schema version {found}, "
                f"tables {sorted(tables) or 'none'}); move it away to start over"
            )
        with self._db:
            migrate(self._db, found)
            self._db.execute(f"PRAGMA user_version = {version}")

    def query(self, sql: str, parameters: Iterable[Any] = ()) -> list[Any]:
        """Every row of a ``SELECT``."""
        with self.guard():
            return self._db.execute(sql, tuple(parameters)).fetchall()

    def execute(self, sql: str, parameters: Iterable[Any] = ()) -> None:
        with self.guard():
            self._db.execute(sql, tuple(parameters))

    def executemany(self, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
        with self.guard():
            self._db.executemany(sql, rows)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything in the block commits together, or not at all."""
        with self.guard(), self._db:
            yield

    def close(self) -> None:
        self._db.close()

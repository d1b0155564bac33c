"""The runtime's crash-safe state: one SQLite file in the ``--state`` folder.

Everything needed to continue lives here and changes in one transaction per image:
the per-image record, the runtime's counters and random state, the agent's learning
state when it changed, and the memory buffer ``D``. After ``kill -9`` at any moment
the last committed image is the last one processed. An image is known by its resolved
path and the SHA-256 of its bytes: a rerun skips what is done, retries what failed and
processes what is new, wherever it sorts. The folder is locked while a run uses it.
"""

from __future__ import annotations

import io
import json
import sqlite3
import warnings
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

import numpy as np
import torch
from filelock import FileLock, Timeout

from adacompress.core.labels import Answer, read_labels
from basekit.json_text import fits, read_json
from basekit.safe_load import load_tensors
from basekit.sqlite import Database, StateError

STORE_VERSION = 3
STORE_FILE = "run.sqlite"
LOCK_FILE = "run.lock"
FINAL_KINDS = ("inference", "estimate", "retrain", "skipped")
"""A record of one of these kinds means the image is done; ``failed`` is retried."""

TOP_LABELS_RECORDED = 5
MAX_STATE_CHARS = 10_000_000
"""Longest runtime state or metadata JSON (a few kB in practice)."""
MAX_LABELS_CHARS = 100_000
"""Longest record's labels (TOP_LABELS_RECORDED of them)."""


def _column(sql: str, stored_as: str | None = None) -> dict[str, str]:
    """A field's column: its SQLite declaration, and its name in the file where that
    is not the field's (a name kept so that older stores read as they are)."""
    return {"sql": sql, "column": stored_as or ""}


@dataclass(frozen=True)
class Record:
    """What happened to one input image: one row of the ``records`` table, whose
    columns are these fields, in this order (:data:`RECORD_COLUMNS`)."""

    position: int = field(metadata=_column("INTEGER PRIMARY KEY"))
    path: str = field(metadata=_column("TEXT NOT NULL"))
    kind: str = field(metadata=_column("TEXT NOT NULL", stored_as="state"))
    """how it was handled: inference, estimate, retrain, skipped (bad image) or
    failed (service error)"""
    action: str | None = field(metadata=_column("TEXT"))
    bytes_uploaded: int = field(metadata=_column("INTEGER NOT NULL"))
    reference_bytes: int | None = field(metadata=_column("INTEGER"))
    accuracy: float | None = field(metadata=_column("REAL"))
    p_est: float = field(metadata=_column("REAL NOT NULL"))
    epsilon: float = field(metadata=_column("REAL NOT NULL"))
    labels: list[tuple[int, str, float]] = field(metadata=_column("TEXT NOT NULL"))
    """the top labels, stored as JSON"""
    error: str | None = field(default=None, metadata=_column("TEXT"))
    source: str | None = field(default=None, metadata=_column("TEXT"))
    """the resolved path (None in runs from before identities)"""
    digest: str | None = field(default=None, metadata=_column("TEXT"))
    """SHA-256 of the file's bytes (None when it could not be read)"""
    calls: int = field(default=0, metadata=_column("INTEGER NOT NULL DEFAULT 0"))
    """new (paid) calls to the service this image took"""

    @property
    def identity(self) -> tuple[str, str | None]:
        return (self.source or self.path, self.digest)

    def stored(self) -> dict[str, Any]:
        """The record by its column names (as reports have always shown it)."""
        return {column: getattr(self, f.name) for column, f in RECORD_COLUMNS.items()}


@dataclass(frozen=True)
class Step:
    """What happened to one image, before it becomes a :class:`Record` (the
    fields of the same name)."""

    action: str | None = None
    bytes_uploaded: int = 0
    reference_bytes: int | None = None
    accuracy: float | None = None
    labels: Answer = field(default_factory=list)
    error: str | None = None

    def record(
        self,
        position: int,
        path: Path,
        kind: str,
        *,
        p_est: float,
        epsilon: float,
        identity: tuple[str, str | None],
        calls: int,
    ) -> Record:
        """The image's record: this step, handled as ``kind``, with the run's
        ``p_est`` and ``epsilon`` after it (its top labels rounded, as stored)."""
        own = {f.name: getattr(self, f.name) for f in fields(self)}
        own["labels"] = [
            (label.class_id, label.name, round(label.score, 6))
            for label in self.labels[:TOP_LABELS_RECORDED]
        ]
        source, digest = identity
        return Record(
            position=position,
            path=str(path),
            kind=kind,
            p_est=p_est,
            epsilon=epsilon,
            source=source,
            digest=digest,
            calls=calls,
            **own,
        )


@dataclass(frozen=True)
class Transition:
    """One row of the memory buffer D (the next features are the same image's):
    one row of the ``transitions`` table, after its ``id`` and ``generation``."""

    features: np.ndarray = field(metadata=_column("BLOB NOT NULL", stored_as="state"))
    signals: np.ndarray = field(metadata=_column("BLOB NOT NULL", stored_as="rewards"))
    observed: np.ndarray = field(metadata=_column("BLOB NOT NULL"))

    @classmethod
    def one_action(
        cls, features: np.ndarray, index: int, signal: float, n_actions: int
    ) -> Transition:
        """What one upload taught: ``signal`` for action ``index`` alone."""
        signals = np.zeros(n_actions, dtype=np.float32)
        observed = np.zeros(n_actions, dtype=np.float32)
        signals[index], observed[index] = signal, 1.0
        return cls(features, signals, observed)


def _columns(cls: type) -> dict[str, Field[Any]]:
    """``cls``'s fields by the name of their column in the file."""
    return {f.metadata["column"] or f.name: f for f in fields(cls)}


RECORD_COLUMNS = _columns(Record)
TRANSITION_COLUMNS = _columns(Transition)


def _table(name: str, columns: dict[str, Field[Any]], *before: str) -> str:
    declared = [*before, *(f"{c} {f.metadata['sql']}" for c, f in columns.items())]
    body = ",\n    ".join(declared)
    return f"CREATE TABLE IF NOT EXISTS {name} (\n    {body}\n);\n"


_SCHEMA = (
    _table("records", RECORD_COLUMNS)
    + """CREATE TABLE IF NOT EXISTS runtime (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    state TEXT NOT NULL,
    agent BLOB NOT NULL,
    metadata TEXT NOT NULL
);
"""
    + _table(
        "transitions",
        TRANSITION_COLUMNS,
        "id INTEGER PRIMARY KEY AUTOINCREMENT",
        "generation INTEGER NOT NULL",
    )
)


def _migrate(db: sqlite3.Connection, old: int) -> None:
    """An older state file: its records gain the identity and the call count."""
    added = {2: ("source", "digest"), 3: ("calls",)}
    for version, names in added.items():
        for name in names if old < version else ():
            sql = RECORD_COLUMNS[name].metadata["sql"]
            db.execute(f"ALTER TABLE records ADD COLUMN {name} {sql}")


class RunStore:
    """SQLite store of one run, at ``folder/run.sqlite``; the folder stays locked
    until :meth:`close`.

    Raises:
        StateError: the folder is in use by another run, or its file is damaged.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.folder / LOCK_FILE))
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise StateError(
                f"state folder {self.folder} is in use by another run; wait for it "
                "or use another --state"
            ) from None
        try:
            self._db = Database(
                self.folder / STORE_FILE,
                kind="run state",
                schema=_SCHEMA,
                version=STORE_VERSION,
                migrate=_migrate,
                synchronous="FULL",
            )
        except BaseException:
            self._lock.release()
            raise

    def close(self) -> None:
        self._db.close()
        self._lock.release()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -------------------------------------------------------------

    def load(
        self, metadata: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """``(runtime state, agent training state)``; None for a new run.

        Raises:
            ValueError: the folder belongs to a run with another backend, features
                or actions than ``metadata`` says.
            StateError: the stored state is damaged.
        """
        rows = self._db.query("SELECT state, agent, metadata FROM runtime WHERE id = 1")
        if not rows:
            if self.next_position():
                raise self._db.error("records without a runtime state")
            return None
        state, blob, stored_text = rows[0]
        try:
            stored = read_json(stored_text, max_chars=MAX_STATE_CHARS)
            runtime = read_json(state, max_chars=MAX_STATE_CHARS)
        except ValueError as err:
            raise self.damaged(str(err)) from None
        if not isinstance(stored, dict) or not isinstance(runtime, dict):
            raise self.damaged("the state or its metadata is not an object")
        try:
            if not isinstance(blob, bytes):
                raise TypeError(type(blob).__name__)
            with warnings.catch_warnings():  # torch warns of junk it then refuses
                warnings.simplefilter("ignore")
                agent = load_tensors(blob, what="agent state")
        except Exception as err:  # torch raises many types for a damaged blob
            raise self.damaged(f"the agent's state ({type(err).__name__})") from None
        if not isinstance(agent, dict):
            raise self.damaged("the agent's state is not a dict")
        for key in ("backend", "features", "actions"):
            if stored.get(key) != metadata.get(key):
                raise ValueError(
                    f"state folder {self.folder} belongs to a run with {key}="
                    f"{stored.get(key)!r}, not {metadata.get(key)!r} (another "
                    "--state folder starts a new run)"
                )
        return runtime, agent

    def damaged(self, reason: str) -> StateError:
        """The error for a stored state that cannot be used: one line naming the
        file, saying what is wrong; nothing is written."""
        reason = reason.splitlines()[0][:200] if reason else "unreadable"
        return self._db.error(
            f"damaged runtime state: {reason}; move the folder away (or use another "
            "--state) to start a new run"
        )

    def next_position(self) -> int:
        row = self._db.query("SELECT MAX(position) FROM records")[0]
        return 0 if row[0] is None else int(row[0]) + 1

    def done(self) -> set[tuple[str, str | None]]:
        """Identities of the images whose latest record is final (not ``failed``)."""
        latest: dict[tuple[str, str | None], str] = {}
        for record in self.records():
            latest[record.identity] = record.kind
        return {key for key, kind in latest.items() if kind in FINAL_KINDS}

    def transitions(self, generation: int) -> list[Transition]:
        rows = self._db.query(
            f"SELECT {', '.join(TRANSITION_COLUMNS)} FROM transitions "
            "WHERE generation = ? ORDER BY id",
            (generation,),
        )
        if any(
            not isinstance(blob, bytes) or len(blob) % 4 for row in rows for blob in row
        ):
            raise self.damaged("a transition of D is not float32 values")
        return [
            Transition(*(np.frombuffer(blob, dtype=np.float32).copy() for blob in row))
            for row in rows
        ]

    def records(self) -> list[Record]:
        rows = self._db.query(
            f"SELECT {', '.join(RECORD_COLUMNS)} FROM records ORDER BY position"
        )
        try:
            return [_record(row) for row in rows]
        except ValueError as err:
            raise self._db.error(f"a damaged record ({err})") from None

    # -- writing -------------------------------------------------------------

    def start(
        self, state: dict[str, Any], agent: dict[str, Any], metadata: dict[str, Any]
    ) -> None:
        """Write the initial state of a new run."""
        with self._db.transaction():
            self._db.execute(
                "INSERT INTO runtime VALUES (1, ?, ?, ?)",
                (json.dumps(state), _tensor_blob(agent), json.dumps(metadata)),
            )

    def commit(
        self,
        record: Record,
        state: dict[str, Any],
        *,
        agent: dict[str, Any] | None = None,
        transition: tuple[int, Transition] | None = None,
    ) -> None:
        """Record one image and the state after it, atomically."""
        with self._db.transaction():
            self._db.execute(*_insert("records", RECORD_COLUMNS, record))
            self._db.execute(
                "UPDATE runtime SET state = ? WHERE id = 1", (json.dumps(state),)
            )
            if agent is not None:
                self._db.execute(
                    "UPDATE runtime SET agent = ? WHERE id = 1", (_tensor_blob(agent),)
                )
            if transition is not None:
                generation, t = transition
                self._db.execute(
                    *_insert(
                        "transitions", TRANSITION_COLUMNS, t, generation=generation
                    )
                )
            # Older generations of D are never read again.
            self._db.execute(
                "DELETE FROM transitions WHERE generation < ?",
                (state.get("generation", 0),),
            )


def _record(row: tuple[Any, ...]) -> Record:
    """A stored record, each column of its field's type.

    Raises:
        ValueError: the first column that is not (one line).
    """
    values = {
        f.name: value for f, value in zip(RECORD_COLUMNS.values(), row, strict=True)
    }
    values["labels"] = read_labels(
        values["labels"], max_labels=TOP_LABELS_RECORDED, max_chars=MAX_LABELS_CHARS
    )
    hints = get_type_hints(Record)
    for name, value in values.items():
        if name != "labels" and not fits(value, hints[name]):
            raise ValueError(f"{name} is not {hints[name]}")
    return Record(**values)


def _insert(
    table: str, columns: dict[str, Field[Any]], row: object, **more: object
) -> tuple[str, tuple[Any, ...]]:
    """The ``INSERT`` of ``row`` (a :class:`Record` or :class:`Transition`) into
    ``table``, with ``more`` columns before its own: labels as JSON, arrays as
    float32 bytes."""
    values = [*more.values()]
    for f in columns.values():
        value = getattr(row, f.name)
        if f.name == "labels":
            value = json.dumps(value)
        elif f.metadata["sql"].startswith("BLOB"):
            value = _array_blob(value)
        values.append(value)
    names = [*more, *columns]
    sql = (
        f"INSERT INTO {table} ({', '.join(names)}) "
        f"VALUES ({', '.join('?' * len(names))})"
    )
    return sql, tuple(values)


def _tensor_blob(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _array_blob(array: np.ndarray) -> bytes:
    return np.asarray(array, dtype=np.float32).tobytes()


__all__ = ["FINAL_KINDS", "Record", "RunStore", "StateError", "Transition"]

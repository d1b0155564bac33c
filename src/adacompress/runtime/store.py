"""The runtime's crash-safe state: one SQLite file in the ``--state`` folder.

Everything needed to continue lives here and changes in one transaction per image:
the per-image record (which is also the position in the input), the runtime's
counters and random state, the agent's learning state when it changed, and the
memory buffer ``D``. After ``kill -9`` at any moment the last committed image is the
last one processed; the next run resumes with the image after it.
"""

from __future__ import annotations

import io
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

_SCHEMA = """
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
    error TEXT
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


@dataclass(frozen=True)
class Record:
    """What happened to one input image."""

    position: int
    path: str
    state: str
    """inference, estimate, retrain, skipped (bad image) or failed (service error)"""
    action: str | None
    bytes_uploaded: int
    reference_bytes: int | None
    accuracy: float | None
    p_est: float
    epsilon: float
    labels: list[tuple[int, str, float]]
    error: str | None = None


@dataclass(frozen=True)
class Transition:
    """One row of the memory buffer D (the next state is the same image's)."""

    state: np.ndarray
    signals: np.ndarray
    observed: np.ndarray

    @classmethod
    def one_action(
        cls, state: np.ndarray, index: int, signal: float, n_actions: int
    ) -> Transition:
        """What one upload taught: ``signal`` for action ``index`` alone."""
        signals = np.zeros(n_actions, dtype=np.float32)
        observed = np.zeros(n_actions, dtype=np.float32)
        signals[index], observed[index] = signal, 1.0
        return cls(state, signals, observed)


class RunStore:
    """SQLite store of one run, at ``folder/run.sqlite``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.folder / "run.sqlite", timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

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
        """
        row = self._db.execute(
            "SELECT state, agent, metadata FROM runtime WHERE id = 1"
        ).fetchone()
        if row is None:
            return None
        stored = json.loads(row[2])
        for key in ("backend", "features", "actions"):
            if stored.get(key) != metadata.get(key):
                raise ValueError(
                    f"state folder {self.folder} belongs to a run with {key}="
                    f"{stored.get(key)!r}, not {metadata.get(key)!r}"
                )
        agent = torch.load(io.BytesIO(row[1]), map_location="cpu", weights_only=True)
        return json.loads(row[0]), agent

    def next_position(self) -> int:
        row = self._db.execute("SELECT MAX(position) FROM records").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def transitions(self, generation: int) -> list[Transition]:
        rows = self._db.execute(
            "SELECT state, rewards, observed FROM transitions WHERE generation = ? "
            "ORDER BY id",
            (generation,),
        ).fetchall()
        return [
            Transition(*(np.frombuffer(blob, dtype=np.float32).copy() for blob in row))
            for row in rows
        ]

    def records(self) -> list[Record]:
        rows = self._db.execute(
            "SELECT position, path, state, action, bytes_uploaded, reference_bytes, "
            "accuracy, p_est, epsilon, labels, error FROM records ORDER BY position"
        ).fetchall()
        return [
            Record(
                position=row[0],
                path=row[1],
                state=row[2],
                action=row[3],
                bytes_uploaded=row[4],
                reference_bytes=row[5],
                accuracy=row[6],
                p_est=row[7],
                epsilon=row[8],
                labels=[tuple(x) for x in json.loads(row[9])],
                error=row[10],
            )
            for row in rows
        ]

    # -- writing -------------------------------------------------------------

    def start(
        self, state: dict[str, Any], agent: dict[str, Any], metadata: dict[str, Any]
    ) -> None:
        """Write the initial state of a new run."""
        with self._db:
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
        with self._db:
            self._db.execute(
                "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.position, record.path, record.state, record.action,
                    record.bytes_uploaded, record.reference_bytes, record.accuracy,
                    record.p_est, record.epsilon, json.dumps(record.labels),
                    record.error,
                ),
            )  # fmt: skip
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
                    "INSERT INTO transitions (generation, state, rewards, observed) "
                    "VALUES (?, ?, ?, ?)",
                    (generation, _array_blob(t.state), _array_blob(t.signals),
                     _array_blob(t.observed)),
                )  # fmt: skip
            # Older generations of D are never read again.
            self._db.execute(
                "DELETE FROM transitions WHERE generation < ?",
                (state.get("generation", 0),),
            )


def _tensor_blob(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _array_blob(array: np.ndarray) -> bytes:
    return np.asarray(array, dtype=np.float32).tobytes()

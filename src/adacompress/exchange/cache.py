"""Crash-safe SQLite cache of cloud answers and image features.

docs/formulas.md, "Training environment": cloud answers are expensive, so every answer
is cached by (image, encoding) and reused. Keys are ``(image content hash, action key,
service)`` for answers and ``(image content hash, extractor)`` for features. Each write
is its own transaction in WAL mode, so a killed process loses at most the answer in
flight.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adacompress.core.labels import Answer, Label, read_labels
from basekit.sqlite import Database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    image_hash TEXT NOT NULL,
    action TEXT NOT NULL,
    service TEXT NOT NULL,
    nbytes INTEGER NOT NULL,
    labels TEXT NOT NULL,
    PRIMARY KEY (image_hash, action, service)
);
CREATE TABLE IF NOT EXISTS features (
    image_hash TEXT NOT NULL,
    extractor TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (image_hash, extractor)
);
"""


CACHE_VERSION = 1
CACHE_ENV = "ADACOMPRESS_CACHE"
MAX_LABELS = 1000
"""Labels kept of an answer (best first; metrics read the top few): a stored answer
with more is damaged."""
MAX_ANSWER_CHARS = 1_000_000
"""Longest stored answer: MAX_LABELS labels with long names fit easily."""


def default_cache_path() -> Path:
    """``$ADACOMPRESS_CACHE``, else ``answers.sqlite`` in the user's cache folder."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    from platformdirs import user_cache_path

    return user_cache_path("adacompress") / "answers.sqlite"


@dataclass(frozen=True)
class Outcome:
    """One upload: its size in bytes and the service's answer."""

    nbytes: int
    answer: Answer


class AnswerCache:
    """SQLite store for cloud answers and features; safe to share across runs.

    Args:
        path: database file; parent folders are created.

    Raises:
        basekit.sqlite.StateError: the file is empty, damaged or not a cache.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = Database(
            self.path,
            kind="answer cache",
            schema=_SCHEMA,
            version=CACHE_VERSION,
            migrate=lambda db, old: None,  # the unversioned cache has this schema
        )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> AnswerCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_answers(
        self, image_hash: str, service: str, actions: Iterable[str]
    ) -> dict[str, Outcome]:
        """Cached outcomes of ``image_hash`` on ``service`` for these action keys."""
        wanted = list(actions)
        marks = ",".join("?" * len(wanted))
        rows = self._db.query(
            f"SELECT action, nbytes, labels FROM answers WHERE image_hash = ? "
            f"AND service = ? AND action IN ({marks})",
            (image_hash, service, *wanted),
        )
        try:
            return {
                action: Outcome(_nbytes(nbytes), _decode(labels))
                for action, nbytes, labels in rows
            }
        except ValueError as err:
            reason = str(err).splitlines()[0][:200]
            raise self._db.error(
                f"a damaged answer ({reason}); move the cache away to start over"
            ) from None

    def put_answers(
        self, image_hash: str, service: str, outcomes: dict[str, Outcome]
    ) -> None:
        """Store outcomes (one transaction)."""
        with self._db.transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?)",
                [
                    (image_hash, action, service, o.nbytes, _encode(o.answer))
                    for action, o in outcomes.items()
                ],
            )

    def get_features(
        self, image_hash: str, extractor: str, *, size: int | None = None
    ) -> np.ndarray | None:
        """The cached float32 vector, or None when there is none or it is not one
        (``size`` values, all finite): features are the caller's to recompute, and
        :meth:`put_features` then replaces the damaged entry."""
        rows = self._db.query(
            "SELECT vector FROM features WHERE image_hash = ? AND extractor = ?",
            (image_hash, extractor),
        )
        if not rows:
            return None
        blob = rows[0][0]
        if not isinstance(blob, bytes) or len(blob) % 4:
            return None
        if size is not None and len(blob) != 4 * size:
            return None
        vector = np.frombuffer(blob, dtype=np.float32).copy()
        return vector if np.isfinite(vector).all() else None

    def put_features(self, image_hash: str, extractor: str, vector: np.ndarray) -> None:
        with self._db.transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO features VALUES (?, ?, ?)",
                (image_hash, extractor, np.asarray(vector, dtype=np.float32).tobytes()),
            )


def _encode(answer: Answer) -> str:
    return json.dumps(
        [[label.class_id, label.name, label.score] for label in answer[:MAX_LABELS]]
    )


def _decode(text: object) -> Answer:
    return [
        Label(*label)
        for label in read_labels(
            text, max_labels=MAX_LABELS, max_chars=MAX_ANSWER_CHARS
        )
    ]


def _nbytes(value: object) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"upload size {str(value)[:20]!r} is not a byte count")
    return value


REMEMBERED_IMAGES = 4096
"""Images whose answers stay in memory (more than any training set here)."""


class RecentAnswers:
    """One service's answers for the last :data:`REMEMBERED_IMAGES` images, in
    memory in front of the cache (training rereads them thousands of times; a long
    run must not grow).

    Args:
        cache: where every answer is kept.
        service: the service's name in the cache.
    """

    def __init__(self, cache: AnswerCache, service: str) -> None:
        self.cache, self.service = cache, service
        self._seen: OrderedDict[str, dict[str, Outcome]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def known(self, digest: str, keys: Sequence[str]) -> dict[str, Outcome]:
        """The answers for action ``keys`` already paid for (memory, then the
        cache)."""
        known = self._seen.setdefault(digest, {})
        self._seen.move_to_end(digest)
        if len(self._seen) > REMEMBERED_IMAGES:
            self._seen.popitem(last=False)
        found = {key: known[key] for key in keys if key in known}
        if len(found) < len(keys):
            missing = [key for key in keys if key not in found]
            found.update(self.cache.get_answers(digest, self.service, missing))
            known.update(found)
        return found

    def add(self, digest: str, fresh: dict[str, Outcome]) -> None:
        """New answers: into the cache, and into memory."""
        self.cache.put_answers(digest, self.service, fresh)
        self._seen.setdefault(digest, {}).update(fresh)

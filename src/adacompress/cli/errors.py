"""Which exceptions are expected (a one-line message, exit status 2) and which are
bugs (a traceback)."""

from __future__ import annotations

import sqlite3


def describe(err: BaseException) -> str | None:
    """The one-line message of an expected error, None for a bug."""
    from adacompress.cloud.service import ServiceError

    if isinstance(err, ValueError | ServiceError | OSError | sqlite3.DatabaseError):
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        return text
    return None

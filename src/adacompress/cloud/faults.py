"""Seeded fault injection for ``adacompress serve``: latency aside, a request may
get 429 with ``Retry-After``, 503, or a dropped connection, so the service is as
unreliable as a real one on demand."""

from __future__ import annotations

import logging
import random

from fastapi.responses import Response
from starlette.types import Receive, Scope, Send

from adacompress.cloud.settings import ServeSettings
from adacompress.cloud.wire import error_response


class DroppedConnection(Exception):
    """Raised after the response started, so the server closes the connection."""


class DropResponse(Response):
    """Starts a response it never finishes: the client sees a reset connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"1000")],
            }
        )
        raise DroppedConnection("fault injection: connection dropped")


class QuietDrops(logging.Filter):
    """Keep injected drops out of the server's error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


def inject_fault(
    settings: ServeSettings, rng: random.Random, counts: dict[str, int]
) -> Response | None:
    """The injected fault this request gets, if any (seeded draws)."""
    draw = rng.random()
    if draw < settings.dropped:
        counts["dropped"] += 1
        return DropResponse()
    draw -= settings.dropped
    if draw < settings.throttled:
        counts["throttled"] += 1
        return error_response(
            429,
            "quota exceeded (fault injection)",
            {"Retry-After": f"{settings.retry_after:g}"},
        )
    draw -= settings.throttled
    if draw < settings.unavailable:
        counts["unavailable"] += 1
        return error_response(503, "service unavailable (fault injection)")
    return None

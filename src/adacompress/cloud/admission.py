"""How ``adacompress serve`` takes request bodies in: bytes are reserved from a
budget as they arrive (in all, and per client address), never from the length a
client declares, and a body must keep up a minimum pace or get 408.

A client that declares 32 MB and sends one byte so holds one byte, for at most
the grace; only bytes that really arrive can fill the budget. What decoding
will hold is reserved the same way (:class:`DecodeBudget`), from image headers
before anything is decoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from starlette.requests import Request


class BadRequest(Exception):
    """A request-level problem; becomes an HTTP error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class BodyBudget:
    """Bytes of request bodies held at once, in all and per client address
    (used from the event loop only)."""

    def __init__(self, total: int, per_client: int) -> None:
        self.total, self.per_client = total, per_client
        self.used = 0
        self._clients: Counter[str] = Counter()

    def take(self, client: str, size: int) -> str | None:
        """Reserve ``size`` more bytes for ``client``; why not, when they do not
        fit."""
        if self._clients[client] + size > self.per_client:
            return "this address is sending too many request bodies at once"
        if self.used + size > self.total:
            return "too many request bodies arriving"
        self.used += size
        self._clients[client] += size
        return None

    def give(self, client: str, size: int) -> None:
        """Return ``size`` of ``client``'s bytes."""
        self.used -= size
        self._clients[client] -= size
        if self._clients[client] <= 0:
            del self._clients[client]


@dataclass(frozen=True)
class BodyPace:
    """How fast a body must arrive: its first bytes within ``grace`` seconds, then
    on average ``min_rate`` bytes a second more, all of it within ``limit``."""

    grace: float = 2.0
    min_rate: float = 256 * 1024
    limit: float = 30.0

    def due(self, received: int) -> float:
        """Seconds after the body's start by which more than ``received`` bytes
        must have come."""
        return min(self.limit, self.grace + received / self.min_rate)

    def too_slow(self, received: int, elapsed: float) -> str:
        return (
            f"request body too slow: {received:,} bytes in {elapsed:.1f} s (it must "
            f"start within {self.grace:g} s, then average {self.min_rate:,.0f} "
            f"bytes/s, and end within {self.limit:g} s)"
        )


async def read_body(
    request: Request, *, limit: int, budget: BodyBudget, pace: BodyPace
) -> bytes:
    """The request body, each chunk reserved from ``budget`` as it arrives and
    given back when the body is read or refused.

    Raises:
        BadRequest: 413 past ``limit`` bytes, 408 when it falls behind ``pace``,
            503 when ``budget`` has no room for the next chunk.
        starlette.requests.ClientDisconnect: the client closed the connection.
    """
    loop = asyncio.get_running_loop()
    client = request.client.host if request.client else ""
    started = loop.time()
    body = bytearray()
    chunks = request.stream().__aiter__()
    try:
        while True:
            try:
                async with asyncio.timeout_at(started + pace.due(len(body))):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return bytes(body)
            except TimeoutError:
                raise BadRequest(
                    408, pace.too_slow(len(body), loop.time() - started)
                ) from None
            if len(body) + len(chunk) > limit:
                raise BadRequest(413, f"request larger than {limit} bytes")
            refused = budget.take(client, len(chunk))
            if refused is not None:
                raise BadRequest(503, refused)
            body += chunk
    finally:
        budget.give(client, len(body))


class DecodeBudget:
    """Bytes of decoded pixels the service holds at once, across requests and
    worker threads: a request reserves what its images will cost
    (:func:`basekit.images.image_header`) before anything is decoded."""

    def __init__(self, total: int, wait: float = 30.0) -> None:
        self.total, self.used, self.wait = total, 0, wait
        self._free = threading.Condition()

    @contextlib.contextmanager
    def holding(self, size: int) -> Iterator[None]:
        """Hold ``size`` bytes while the block runs.

        Raises:
            BadRequest: 413 when ``size`` is over the whole budget, 503 when it
                does not come free within ``wait`` seconds.
        """
        if size > self.total:
            raise BadRequest(
                413,
                f"decoding needs {size / 1e6:,.0f} MB, more than the "
                f"{self.total / 1e6:,.0f} MB the service decodes at once",
            )
        with self._free:
            if not self._free.wait_for(
                lambda: self.used + size <= self.total, self.wait
            ):
                raise BadRequest(503, "decoding other requests")
            self.used += size
        try:
            yield
        finally:
            with self._free:
                self.used -= size
                self._free.notify_all()

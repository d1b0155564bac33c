"""The connections ``adacompress serve`` holds: how many at once, in all and per
client address, how long a client may take over a request's headers, and logs that
a flood of connections cannot grow.

uvicorn closes an idle connection only after a response (``timeout_keep_alive``)
and caps nothing before a request is complete (``limit_concurrency`` answers 503
only once the headers are in), so :class:`GuardedH11Protocol` adds both on top of
its HTTP/1.1 protocol.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import time
import weakref
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

ACCEPT_BACKLOG = 128
"""Connections waiting to be accepted, and accepted at most in one loop turn."""
FD_RESERVE = 256
"""Open files kept free beyond ``max_connections``: the accept backlog, the model's
files, logs, the worker threads."""
LOG_INTERVAL_S = 10.0
"""At most one line a message this often, however often it happens."""
FLOOD_MESSAGES = {
    "asyncio": (
        "socket.accept() out of system resource",
        "Exception in callback BaseSelectorEventLoop._start_serving",
    ),
    "uvicorn.error": (
        "Invalid HTTP request received.",
        "client closed its connection mid-body",
    ),
}
"""Messages a client can make the service log at will, by logger."""

_CLIENTS: weakref.WeakKeyDictionary[ServerState, Counter[str]] = (
    weakref.WeakKeyDictionary()
)
"""Open connections per client address, for each running server."""


@dataclass(frozen=True)
class ConnectionLimits:
    """What one client, and all of them, may hold open (per worker process)."""

    header_timeout: float = 10.0
    """seconds to send a request's headers, from connecting or the previous answer"""
    max_connections: int = 1000
    """open connections at once; more are answered 503 and closed"""
    max_client_connections: int = 100
    """open connections at once from one address; more are answered 503 and closed"""


DEFAULTS = ConnectionLimits()


class GuardedConfig(uvicorn.Config):
    """uvicorn's settings serving with :class:`GuardedH11Protocol` under ``limits``
    (pickled with the rest to ``--workers`` processes)."""

    def __init__(self, app: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(app, http=GuardedH11Protocol, backlog=ACCEPT_BACKLOG, **kwargs)
        self.limits = limits


class GuardedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with connection caps and a header deadline.

    A connection over ``max_connections``, or over ``max_client_connections`` from
    its address, is answered 503 and closed at once. Every request's headers must
    be in within ``header_timeout`` of connecting or of the previous answer
    (dripping bytes does not extend it); then the connection is closed, with a 408
    when part of a request had come.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits = getattr(self.config, "limits", None)
        self.limits = limits if isinstance(limits, ConnectionLimits) else DEFAULTS
        self._clients = _CLIENTS.setdefault(self.server_state, Counter())
        self._host = ""
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._host = self.client[0] if self.client else ""
        self._clients[self._host] += 1
        if len(self.connections) > self.limits.max_connections:
            self._close_with(503, "busy: too many connections")
        elif self._clients[self._host] > self.limits.max_client_connections:
            self._close_with(503, "busy: too many connections from this address")
        else:
            self._await_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        self._clients[self._host] -= 1
        if self._clients[self._host] <= 0:
            del self._clients[self._host]
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._header_timer is not None and self._in_request():
            self._stop_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self._in_request():
            self._await_request()

    def _in_request(self) -> bool:
        """Whether a request's headers are in and its answer not yet sent."""
        return self.cycle is not None and not self.cycle.response_complete

    def _await_request(self) -> None:
        self._stop_header_timer()
        self._header_timer = self.loop.call_later(
            self.limits.header_timeout, self._headers_timed_out
        )

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self._in_request():
            return
        partial, _ = self.conn.trailing_data
        if partial:
            self._close_with(408, "request headers not received in time")
        else:
            self.transport.close()

    def _close_with(self, status: int, message: str) -> None:
        self.transport.write(raw_error(status, message))
        self.transport.close()


def raw_error(status: int, message: str) -> bytes:
    """A whole HTTP/1.1 error answer in the service's JSON shape, written outside
    any request (``Connection: close``)."""
    reasons = {408: ("Request Timeout", "DEADLINE_EXCEEDED")}
    reason, name = reasons.get(status, ("Service Unavailable", "UNAVAILABLE"))
    error = {"code": status, "message": message, "status": name}
    body = json.dumps({"error": error}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nretry-after: 1\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def fit_open_file_limit(limits: ConnectionLimits) -> ConnectionLimits:
    """``limits`` this process can keep: the open-file limit is raised to hold
    ``max_connections`` plus :data:`FD_RESERVE` where the hard limit allows, else
    the caps are lowered to fit (one line on stderr), so the service never runs
    out of files to accept with."""
    try:
        import resource
    except ImportError:  # not Unix
        return limits
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = limits.max_connections + FD_RESERVE
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return limits
    raised = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        soft = raised
    except (ValueError, OSError):
        pass
    if soft >= needed:
        return limits
    fits = max(1, soft - FD_RESERVE)
    print(
        f"the open-file limit ({soft}) holds {fits} connections: "
        f"--max-connections lowered from {limits.max_connections}",
        file=sys.stderr,
        flush=True,
    )
    return replace(
        limits,
        max_connections=fits,
        max_client_connections=min(fits, limits.max_client_connections),
    )


class QuietRepeats(logging.Filter):
    """Lets through at most one record every ``interval`` seconds for each message
    starting with one of ``prefixes``, as one line (no traceback) that counts the
    ones held back since."""

    def __init__(self, prefixes: tuple[str, ...], interval: float = LOG_INTERVAL_S):
        super().__init__()
        self.prefixes, self.interval = prefixes, interval
        self._last: dict[str, float] = {}
        self._held: Counter[str] = Counter()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        prefix = next((p for p in self.prefixes if message.startswith(p)), None)
        if prefix is None:
            return True
        now = time.monotonic()
        with self._lock:
            last = self._last.get(prefix)
            if last is not None and now - last < self.interval:
                self._held[prefix] += 1
                return False
            self._last[prefix] = now
            held = self._held.pop(prefix, 0)
        line = message.splitlines()[0]
        if record.exc_info and record.exc_info[1] is not None:
            line += f": {record.exc_info[1]}"
        if held:
            line += f" (and {held} more since the last such line)"
        record.msg, record.args = line, ()
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def quiet_floods() -> None:
    """Rate-limit, as :class:`QuietRepeats`, the messages of
    :data:`FLOOD_MESSAGES` (once per process)."""
    for name, prefixes in FLOOD_MESSAGES.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, QuietRepeats) for f in logger.filters):
            logger.addFilter(QuietRepeats(prefixes))

"""Retries for HTTP clients: exponential backoff with full jitter, and a token bucket.

A transient failure (429, 5xx, timeout, reset connection) is retried after
``uniform(0, min(max_delay, base_delay * 2**attempt))`` seconds ("full jitter"), or
after the server's ``Retry-After`` when it sends one. Attempts and total time are both
bounded; when they run out the last failure is raised as a ``ServiceUnreachable`` the
caller sees -- never a silent empty answer.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TypeVar

from adacompress.cloud.service import ServiceUnreachable

T = TypeVar("T")


class Transient(Exception):
    """A failure worth retrying; ``retry_after`` is the server's hint in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None if unusable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


@dataclass
class RetryPolicy:
    """How often and how long to retry a transient failure.

    Examples:
        >>> policy = RetryPolicy(max_attempts=5, total_timeout=30.0)
        >>> policy.call(send_request, what="annotate")
    """

    max_attempts: int = 5
    """attempts in all, the first included"""
    base_delay: float = 0.2
    """backoff scale in seconds: the cap doubles from this at each attempt"""
    max_delay: float = 10.0
    """largest wait between two attempts, Retry-After included"""
    total_timeout: float = 60.0
    """give up when the next wait would end later than this after the first attempt"""
    seed: int | None = None
    """seed of the jitter (None: from the system)"""
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._rng = random.Random(self.seed)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (0-based)."""
        if retry_after is not None:
            return min(self.max_delay, retry_after)
        cap = min(self.max_delay, self.base_delay * 2**attempt)
        return self._rng.uniform(0.0, cap)

    def call(self, send: Callable[[], T], *, what: str) -> T:
        """``send()`` until it returns; ``Transient`` failures are retried.

        Raises:
            ServiceUnreachable: attempts or time ran out (the message names the
                last failure and the number of attempts).
        """
        start = self.clock()
        for attempt in range(self.max_attempts):
            try:
                return send()
            except Transient as err:
                failure = err
            wait = self.delay(attempt, failure.retry_after)
            out_of_time = self.clock() + wait - start > self.total_timeout
            if attempt + 1 == self.max_attempts or out_of_time:
                reason = "time limit" if out_of_time else "attempts"
                raise ServiceUnreachable(
                    f"{what} failed after {attempt + 1} attempt(s) "
                    f"(out of {reason}): {failure}"
                ) from None
            self.sleep(wait)
        raise AssertionError("unreachable")


class TokenBucket:
    """Client-side rate limit: ``rate`` requests a second, bursts of ``burst``.

    Thread-safe; ``acquire()`` blocks until a token is free.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate, self.burst = rate, burst
        self._sleep, self._clock = sleep, clock
        self._tokens = float(burst)
        self._stamp = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                elapsed = now - self._stamp
                self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
                self._stamp = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                wait = (1.0 - self._tokens) / self.rate
            self._sleep(wait)

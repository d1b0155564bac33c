"""Progress of a long loop: a bar on a terminal, a line every few seconds otherwise.

A piped or logged command still says how far it is (``evaluate: 120/300 images,
35 s``), without the bar's carriage returns filling a log file.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any, TypeVar

T = TypeVar("T")

LOG_EVERY_S = 5.0


class Progress:
    """Counts steps of a loop and shows them.

    Args:
        total: steps expected (None: unknown).
        desc: what is being done ("evaluate").
        enabled: False shows nothing.
        unit: what a step is ("img").
        stream: where to write (stderr); a terminal gets a bar.
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        *,
        enabled: bool = True,
        unit: str = "img",
        stream: IO[str] | None = None,
        initial: int = 0,
    ) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.stream = stream or sys.stderr
        self.count = initial
        self.enabled = enabled
        self._bar: Any = None
        self._start = self._last = time.monotonic()
        self._postfix = ""
        if enabled and self.stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, initial=initial, desc=desc, unit=unit, file=self.stream
            )

    def update(self, n: int = 1, **postfix: object) -> None:
        self.count += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix(**postfix)
            return
        if postfix:
            self._postfix = ", ".join(f"{k} {v}" for k, v in postfix.items())
        now = time.monotonic()
        if now - self._last >= LOG_EVERY_S:
            self._last = now
            self._line()

    def _line(self) -> None:
        of = f"/{self.total}" if self.total is not None else ""
        extra = f", {self._postfix}" if self._postfix else ""
        elapsed = time.monotonic() - self._start
        print(
            f"{self.desc}: {self.count}{of} {self.unit}{extra}, {elapsed:.0f} s",
            file=self.stream,
            flush=True,
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.enabled and time.monotonic() - self._start >= LOG_EVERY_S:
            self._line()  # the last count, for a long loop


def track(
    items: Iterable[T],
    desc: str,
    *,
    total: int | None = None,
    enabled: bool = True,
    unit: str = "img",
) -> Iterator[T]:
    """``items``, with their progress shown (see :class:`Progress`)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    progress = Progress(total, desc, enabled=enabled, unit=unit)
    try:
        for item in items:
            yield item
            progress.update()
    finally:
        progress.close()

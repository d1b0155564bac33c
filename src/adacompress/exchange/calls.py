"""How many paid calls a command will make, counted before it makes any.

A call is one upload the service answers; answers already in the cache cost none.
``--dry-run`` prints the count and stops; :func:`identify` reads and hashes the photos
for it without decoding them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adacompress.core.datasets import read_hashed
from adacompress.device.actions import REFERENCE_ACTION, Action
from adacompress.exchange.environment import CompressionEnv, Sample, Skipped
from basekit.images import ImageError
from basekit.progress import track


@dataclass(frozen=True)
class CallPlan:
    """The calls a command will make at most, and what the cache already holds;
    ``done``: images left out because an earlier run finished them (a rerun of
    ``run`` skips those)."""

    images: int
    new_at_most: int
    new_at_least: int
    cached: int
    done: int = 0

    def describe(self, command: str, *, dry_run: bool = True) -> str:
        span = (
            f"{self.new_at_most}"
            if self.new_at_least == self.new_at_most
            else f"{self.new_at_least} to {self.new_at_most}"
        )
        verb, tail = ("would make", "; nothing was sent") if dry_run else ("makes", "")
        if self.done and not self.images:
            return (
                f"{command} {verb} no new calls: all {self.done} images are done "
                f"already{tail}"
            )
        done = f"; {self.done} images done already" if self.done else ""
        return (
            f"{command} {verb} {span} new calls for {self.images} images "
            f"({self.cached} answers already cached{done}){tail}"
        )


def plan_calls(
    env: CompressionEnv,
    samples: Sequence[Sample],
    *,
    actions: Sequence[Action] | None = None,
    per_image: tuple[int, int] | None = None,
    budget: int | None = None,
) -> CallPlan:
    """Count the calls of asking about ``actions`` (default: every action) and the
    reference on every sample.

    Args:
        per_image: ``(at least, at most)`` calls an image needs when only some of
            the actions will be asked about (a run, a survey), else every missing one.
        budget: no more than this many new calls in all.
    """
    wanted = [REFERENCE_ACTION, *(env.actions if actions is None else actions)]
    low = high = cached = 0
    for sample in samples:
        missing = len(env.missing(sample, wanted))
        cached += len({env.upload_id(sample, a) for a in wanted}) - missing
        if per_image is None:
            low, high = low + missing, high + missing
        else:
            low += min(per_image[0], missing)
            high += min(per_image[1], missing)
    if budget is not None:
        low, high = min(low, budget), min(high, budget)
    return CallPlan(len(samples), high, low, cached)


def identify(
    env: CompressionEnv, paths: Iterable[Path], *, progress: bool = True
) -> tuple[list[Sample], list[Skipped]]:
    """Read and hash every image for ``env``, nothing decoded or computed: what
    counting calls needs (``--dry-run``). The samples' features are empty, never for
    deciding; unreadable files are skipped with a reason."""
    samples: list[Sample] = []
    skipped: list[Skipped] = []
    for path in track(list(paths), "reading", enabled=progress):
        try:
            data, digest = read_hashed(path)
        except ImageError as err:
            skipped.append(Skipped(str(path), str(err)))
            continue
        seen = env.seen_digest(data, digest)
        samples.append(Sample(path, digest, np.zeros(0, np.float32), seen))
    return samples, skipped

"""What a cloud vision service is to AdaCompress: a black box that labels uploads.

docs/formulas.md, "Symbols": the cloud model ``M`` returns a ranked list of labels with
scores. Every service takes encoded bytes -- exactly what would go over the wire --
and returns the top labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from adacompress.core.labels import Answer
from adacompress.core.limits import UploadLimits

TOP_LABELS = 10
"""Labels a service is asked for per image."""


class ServiceError(RuntimeError):
    """The service did not answer one call: it refused the upload, sent something
    unusable, or could not be reached. The caller records the image and goes on."""


class ServiceUnreachable(ServiceError):
    """The call failed on the way: no connection, timeouts or server errors until
    the retries or the call's deadline ran out."""


class CircuitOpen(Exception):
    """The service failed too many calls in a row: stop asking, leave the rest for
    the next run. Deliberately not a :class:`ServiceError`, so that no per-image
    handler swallows it."""


class Service(Protocol):
    """Anything that labels encoded images, what it accepts, and the name its
    answers are cached under."""

    name: str

    @property
    def limits(self) -> UploadLimits:
        """the smallest side, largest upload and formats it accepts (the encoder
        stays inside them; :data:`~adacompress.core.limits.NO_LIMITS`: any)"""
        ...

    @property
    def cache_name(self) -> str:
        """the name its answers are cached under (its ``name``, unless answers of
        services of one name may differ)"""
        ...

    def classify(self, images: Sequence[bytes]) -> list[Answer]:
        """Answer each encoded image with its ranked labels, in order."""
        ...


class CircuitBreaker:
    """Wraps a service; after ``max_failures`` consecutive calls that failed with
    :class:`ServiceUnreachable`, every call raises :class:`CircuitOpen`.

    A refused upload (a plain :class:`ServiceError`) is that image's problem, not the
    service's: it neither counts nor resets the count. A success resets it.

    Args:
        service: the service to guard (its ``name`` and ``limits`` show through).
        max_failures: consecutive unreachable calls that stop the run.
    """

    def __init__(self, service: Service, max_failures: int = 3) -> None:
        if max_failures < 1:
            raise ValueError(f"max_failures must be at least 1, got {max_failures}")
        self.service = service
        self.name = service.name
        self.max_failures = max_failures
        self.failures = 0
        self.last_error = ""

    @property
    def limits(self) -> UploadLimits:
        return self.service.limits

    @property
    def cache_name(self) -> str:
        return self.service.cache_name

    def classify(self, images: Sequence[bytes]) -> list[Answer]:
        if self.failures >= self.max_failures:
            raise CircuitOpen(self._message())
        try:
            answers = self.service.classify(images)
        except ServiceUnreachable as err:
            self.failures += 1
            self.last_error = str(err)
            if self.failures >= self.max_failures:
                raise CircuitOpen(self._message()) from None
            raise
        self.failures = 0
        return answers

    def _message(self) -> str:
        return (
            f"service unreachable: {self.name} failed {self.failures} calls in a row "
            f"(last: {self.last_error}); the rest is left for the next run"
        )

"""What a cloud vision service is to AdaCompress: a black box that labels uploads.

SPEC.md, "Symbols": the cloud model ``M`` returns a ranked list of labels with
scores. Every service takes encoded bytes -- exactly what would go over the wire --
and returns the top labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from adacompress.core.labels import Answer

TOP_LABELS = 10
"""Labels a service is asked for per image."""


class ServiceError(RuntimeError):
    """The service could not answer (unreachable, failing, or refused the upload)."""


class Service(Protocol):
    """Anything that labels encoded images.

    A service may also carry ``limits`` (:class:`adacompress.core.limits.UploadLimits`):
    the smallest side and largest upload it accepts; the encoder then stays inside
    them.
    """

    name: str

    def classify(self, images: Sequence[bytes]) -> list[Answer]:
        """Answer each encoded image with its ranked labels, in order."""
        ...

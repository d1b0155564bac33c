"""What a service accepts: the formats, the shortest side and the most bytes of one
upload.

Declared by the cloud side (each service knows its own), honoured by the device side
(the encoder never produces an upload the service would refuse).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

GOOGLE_VISION_FORMATS = frozenset({"jpeg", "png", "gif", "bmp", "webp", "tiff", "ico"})
"""The image formats Google Vision documents (RAW and PDF aside)."""

REKOGNITION_FORMATS = frozenset({"jpeg", "png"})


@dataclass(frozen=True)
class UploadLimits:
    """The formats, the shortest side and the most bytes of one upload a service
    accepts.

    Real services refuse images outside these (Rekognition: JPEG or PNG, 80 px,
    5 MiB inline). An action in a format the service does not take is never chosen
    or sent; the encoder raises a too-small downscale to the minimum side, refuses
    a photo already under it (never enlarged: it is skipped with that reason), and
    steps the quality (then the size) down until the bytes fit.
    """

    min_side: int = 1
    max_bytes: int | None = None
    formats: frozenset[str] | None = None
    """accepted formats (lower-case Pillow names); None: any"""

    def __post_init__(self) -> None:
        if self.min_side < 1:
            raise ValueError(f"min_side must be >= 1, got {self.min_side}")
        if self.max_bytes is not None and self.max_bytes < 1024:
            raise ValueError(f"max_bytes must be >= 1024, got {self.max_bytes}")

    def replace(
        self, *, min_side: int | None = None, max_bytes: int | None = None
    ) -> UploadLimits:
        """These limits with the given (not None) ones replaced."""
        return UploadLimits(
            self.min_side if min_side is None else min_side,
            self.max_bytes if max_bytes is None else max_bytes,
            self.formats,
        )

    def accepts(self, format_: str) -> bool:
        """Whether the service takes uploads in ``format_``."""
        return self.formats is None or format_ in self.formats

    def refused(self, formats: Iterable[str]) -> list[str]:
        """Those of ``formats`` the service does not take, sorted."""
        return sorted({f for f in formats if not self.accepts(f)})

    @property
    def key(self) -> str:
        """Cache-key suffix: ``""`` without limits, else ``"+min80+max5242880"``
        (the formats change no encoding, so they are not part of it)."""
        parts = [f"+min{self.min_side}"] if self.min_side > 1 else []
        if self.max_bytes is not None:
            parts.append(f"+max{self.max_bytes}")
        return "".join(parts)


NO_LIMITS = UploadLimits()

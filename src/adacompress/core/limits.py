"""What a service accepts: the shortest side and the most bytes of one upload.

Declared by the cloud side (each service knows its own), honoured by the device side
(the encoder never produces an upload the service would refuse).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UploadLimits:
    """The shortest side and the most bytes of one upload a service accepts.

    Real services refuse images outside these (Rekognition: 80 px, 5 MiB inline).
    The encoder raises a too-small downscale to the minimum side, and steps the
    quality (then the size) down until the bytes fit.
    """

    min_side: int = 1
    max_bytes: int | None = None

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
        )

    @property
    def key(self) -> str:
        """Cache-key suffix: ``""`` without limits, else ``"+min80+max5242880"``."""
        parts = [f"+min{self.min_side}"] if self.min_side > 1 else []
        if self.max_bytes is not None:
            parts.append(f"+max{self.max_bytes}")
        return "".join(parts)


NO_LIMITS = UploadLimits()

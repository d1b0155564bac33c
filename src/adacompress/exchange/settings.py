"""The cloud a command talks to, as settings: which service, what it accepts, how
long to wait for it, and where its answers are cached."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CloudSettings:
    """The cloud that answers the uploads, what it accepts, and where its answers
    are cached."""

    backend: str = "lite0"
    """cloud service: lite0, lite1, lite2 (emulated), rekognition (AWS), or the
    http(s):// URL of a Google Vision-shaped service"""
    min_side: int | None = None
    """never upload an image with a shorter side below this; an image already
    smaller is skipped, not enlarged (default: the backend's own limit, 80 for
    rekognition)"""
    max_bytes: int | None = None
    """never upload more bytes than this per image (default: the backend's limit)"""
    cache: str | None = None
    """SQLite cache of answers and features (default: $ADACOMPRESS_CACHE or the
    user's cache folder)"""
    timeout: float = 30.0
    """seconds one call to a remote service may take, its retries included"""
    max_failures: int = 3
    """stop (exit status 3) after this many calls in a row could not reach the
    service; a rerun continues"""

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.max_failures < 1:
            raise ValueError(
                f"--timeout must be positive and --max-failures at least 1, got "
                f"{self.timeout} and {self.max_failures}"
            )

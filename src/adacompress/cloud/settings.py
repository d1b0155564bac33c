"""Settings of ``adacompress serve`` (light to import: no torch, no FastAPI)."""

from __future__ import annotations

from dataclasses import dataclass

from basekit.images import DEFAULT_MAX_PIXELS


@dataclass
class ServeSettings:
    """Settings of ``adacompress serve``."""

    backend: str = "lite2"
    """emulated cloud that answers (a registered backend)"""
    host: str = "127.0.0.1"
    """address to bind (loopback by default)"""
    port: int = 8080
    """TCP port"""
    workers: int = 1
    """worker processes (each loads its own model)"""
    api_key: str | None = None
    """require this key (x-goog-api-key header or ?key=); default:
    $ADACOMPRESS_SERVE_KEY"""
    max_request_bytes: int = 32 * 1024 * 1024
    """larger request bodies get 413"""
    max_image_bytes: int = 10 * 1024 * 1024
    """larger decoded images get 400 INVALID_ARGUMENT"""
    min_pixels: int = 1024
    """images with fewer pixels (width x height) are refused"""
    max_pixels: int = DEFAULT_MAX_PIXELS
    """images with more pixels are refused"""
    latency: float = 0.0
    """fault injection: seconds added to every annotate request"""
    throttled: float = 0.0
    """fault injection: share of requests answered 429 RESOURCE_EXHAUSTED"""
    unavailable: float = 0.0
    """fault injection: share of requests answered 503 UNAVAILABLE"""
    dropped: float = 0.0
    """fault injection: share of connections dropped mid-response"""
    retry_after: float = 1.0
    """Retry-After seconds sent with injected 429s"""
    seed: int = 0
    """seed of the fault draws"""

    def __post_init__(self) -> None:
        shares = (self.throttled, self.unavailable, self.dropped)
        if any(not 0.0 <= p <= 1.0 for p in shares) or sum(shares) > 1.0:
            raise ValueError("fault shares must be in [0, 1] and sum to at most 1")
        if self.workers < 1 or not 0 <= self.port <= 65535:
            raise ValueError("--workers must be >= 1 and --port in 0..65535")
        if min(self.latency, self.retry_after) < 0:
            raise ValueError("--latency and --retry-after must not be negative")

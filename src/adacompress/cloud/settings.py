"""Settings of ``adacompress serve`` (light to import: no torch, no FastAPI)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ServeSettings:
    """Settings of ``adacompress serve``."""

    backend: str = "lite0"
    """emulated cloud that answers (a registered backend)"""
    host: str = "127.0.0.1"
    """address to bind (loopback by default)"""
    port: int = 8080
    """TCP port"""
    workers: int = 1
    """worker processes (each loads its own model)"""
    api_key_file: str | None = None
    """require the key written in this file (x-goog-api-key header or ?key=);
    default: the key in $ADACOMPRESS_SERVE_KEY, else none (never on the command
    line, where ps shows it)"""
    max_request_bytes: int = 32 * 1024 * 1024
    """larger request bodies get 413"""
    max_image_bytes: int = 10 * 1024 * 1024
    """larger decoded images get 400 INVALID_ARGUMENT"""
    min_pixels: int = 1024
    """images with fewer pixels (width x height) are refused"""
    max_pixels: int = 40_000_000
    """images with more pixels are refused (from their header, before decoding)"""
    max_request_pixels: int = 64_000_000
    """requests whose images hold more pixels in all get 413, before decoding"""
    decode_budget_mb: int = 512
    """megabytes of decoded pixels held at once across requests (reserved from each
    image's header before decoding); a request needing more gets 413"""
    max_concurrent: int = 4
    """requests decoded or classified at once; more get 503 with Retry-After"""
    body_timeout: float = 30.0
    """seconds a client may take to send its request body, at most; then 408"""
    body_grace: float = 2.0
    """seconds a client has to start its request body; then 408"""
    min_body_rate: int = 256 * 1024
    """bytes a second a request body must average after --body-grace; slower
    bodies get 408"""
    header_timeout: float = 10.0
    """seconds a client has to send a request's headers, from connecting or from
    the previous answer; then its connection is closed"""
    max_connections: int = 1000
    """open connections at once (per worker process; at most the open-file limit
    less a reserve); more are answered 503 and closed"""
    max_client_connections: int = 100
    """open connections at once from one client address; more are answered 503
    and closed"""
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
        if (
            min(
                self.max_concurrent,
                self.max_pixels,
                self.max_request_pixels,
                self.decode_budget_mb,
            )
            < 1
        ):
            raise ValueError(
                "--max-concurrent, --decode-budget-mb and the pixel limits must be "
                "positive"
            )
        if min(self.body_timeout, self.body_grace, self.header_timeout) <= 0:
            raise ValueError(
                "--body-timeout, --body-grace and --header-timeout must be positive"
            )
        if min(self.min_body_rate, self.max_connections) < 1:
            raise ValueError("--min-body-rate and --max-connections must be positive")
        if not 1 <= self.max_client_connections <= self.max_connections:
            raise ValueError("--max-client-connections must be in 1..--max-connections")

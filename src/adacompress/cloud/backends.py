"""Services by name: the emulated clouds, AWS Rekognition, or a Google Vision-shaped
URL. Adding a backend is one decorated factory (:func:`register_backend`)."""

from __future__ import annotations

from collections.abc import Callable

from adacompress.cloud.service import CircuitBreaker, Service
from adacompress.core.efficientnet import VARIANTS
from basekit.registry import Registry

BACKENDS: Registry[Service] = Registry("backend")
register_backend = BACKENDS.register
REMOTE = ("rekognition", "http(s)://URL")
"""Backends that are not registered names: AWS, and any Google Vision-shaped URL."""


def backend_names() -> list[str]:
    """Every backend a user can name: the registered ones, then the remote kinds."""
    return [*BACKENDS, *REMOTE]


def get_backend(name: str, *, timeout: float = 30.0, max_failures: int = 3) -> Service:
    """A registered backend, or a remote one: ``http(s)://...`` is a Google
    Vision-shaped REST endpoint (e.g. ``adacompress serve``), ``rekognition`` is AWS.

    A remote service gets ``timeout`` seconds per call, retries included, and a
    :class:`~adacompress.cloud.service.CircuitBreaker` that stops after
    ``max_failures`` calls in a row could not reach it.

    Raises:
        ValueError: unknown name (the message lists the choices).
    """
    check_backend(name)
    if name.startswith(("http://", "https://")):
        from adacompress.cloud.clients.google_rest import GoogleRestClient

        return CircuitBreaker(GoogleRestClient(name, timeout=timeout), max_failures)
    if name == "rekognition":
        from adacompress.cloud.clients.rekognition import RekognitionClient

        return CircuitBreaker(RekognitionClient(timeout=timeout), max_failures)
    return BACKENDS.build(name)


def check_backend(name: str) -> None:
    """Raises ValueError (one line, listing the known ones) for an unknown name."""
    if name in BACKENDS or name == "rekognition":
        return
    if name.startswith(("http://", "https://")):
        return
    raise ValueError(f"unknown backend {name!r} (known: {', '.join(backend_names())})")


def _lite_factory(variant: str) -> Callable[[], Service]:
    def build() -> Service:
        from adacompress.cloud.emulated import EfficientNetLiteCloud

        return EfficientNetLiteCloud(variant)

    return build


for _variant in VARIANTS:
    register_backend(_variant)(_lite_factory(_variant))

"""State features ``E(x)`` for the policy: a registry of frozen image extractors.

docs/formulas.md, "State": features from a small fixed pretrained CNN. ``lite`` (a local
EfficientNet-Lite0: pooled features or its confidence), ``stats`` (image statistics,
no network), ``pirl`` (an encoder from ``pirl export``). Two families take a path:
``pirl:PATH`` and ``random:PATH`` (the same architecture untrained, the control).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adacompress.device.features.base import EXTRACTORS, FeatureExtractor
from adacompress.device.features.lite import LiteFeatures, ScaleConfidenceFeatures
from adacompress.device.features.probes import LocalProbeFeatures
from adacompress.device.features.stats import StatsFeatures

if TYPE_CHECKING:  # imported when first used: it needs torch and pirl
    from adacompress.device.features.pirl import PirlFeatures

__all__ = [
    "EXTRACTORS",
    "FeatureExtractor",
    "LiteFeatures",
    "LocalProbeFeatures",
    "PirlFeatures",
    "ScaleConfidenceFeatures",
    "StatsFeatures",
    "get_extractor",
]

PIRL_PREFIX = "pirl:"
RANDOM_PREFIX = "random:"
"""``random:PATH``: the encoder of PATH's architecture and input size, untrained."""


def get_extractor(name: str) -> FeatureExtractor:
    """A registered extractor by name, ``pirl:PATH`` (the encoder exported there) or
    ``random:PATH`` (the same architecture, untrained).

    Raises:
        ValueError: unknown name or unusable encoder file (the message is one line).
    """
    if name.startswith(PIRL_PREFIX):
        return _pirl().from_file(name.removeprefix(PIRL_PREFIX))
    if name.startswith(RANDOM_PREFIX):
        return _pirl().from_random(like=name.removeprefix(RANDOM_PREFIX))
    if name not in EXTRACTORS:
        raise ValueError(
            f"unknown {EXTRACTORS.kind} {name!r} (known: {', '.join(EXTRACTORS)}, "
            f"{PIRL_PREFIX}PATH for a `pirl export` file, {RANDOM_PREFIX}PATH)"
        )
    return EXTRACTORS.build(name)


def _pirl() -> type[PirlFeatures]:
    from adacompress.device.features.pirl import PirlFeatures

    return PirlFeatures


EXTRACTORS.register("random")(lambda: _pirl().from_random())


def __getattr__(name: str) -> Any:
    if name == "PirlFeatures":
        return _pirl()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

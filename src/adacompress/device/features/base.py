"""State features ``E(x)``: the protocol and the registry of extractors.

docs/formulas.md, "State": features from a small fixed pretrained CNN, output of the
last conv block, average-pooled (the paper: MobileNetV2, 1280 numbers). Extractors
register under a name (``lite0``, ``confidence@160``, ``stats`` ...) in the module that
defines them.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from PIL import Image

from basekit.registry import Registry


class FeatureExtractor(Protocol):
    """Maps decoded images to fixed-length float32 vectors."""

    name: str
    """the extractor's registered name (what an agent file records)"""
    cache_name: str
    """the cache key of these features: differs between extractors and engines"""
    dim: int

    def extract(self, images: list[Image.Image]) -> np.ndarray:
        """Shape: (len(images), dim), float32."""
        ...


EXTRACTORS: Registry[FeatureExtractor] = Registry("feature extractor")
register_extractor = EXTRACTORS.register

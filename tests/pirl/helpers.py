"""Helpers for the PIRL tests."""

from __future__ import annotations

import numpy as np
from PIL import Image


def tiny_image(seed: int, size: int = 32) -> Image.Image:
    """A small textured RGB picture (not a flat colour)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    base = np.stack(
        [
            127 + 100 * np.sin(x / (2 + seed % 5) + rng.random() * 6),
            127 + 100 * np.cos(y / (3 + seed % 3)),
            127 + 80 * np.sin((x + y) / (4.0 + seed % 7)),
        ],
        axis=-1,
    )
    noisy = base + rng.normal(0, 10, base.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))

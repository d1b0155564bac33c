"""A documented low-light simulation: day photos made to look like night shots.

Order of operations, each a setting of :class:`NightSettings`:

1. exposure drop: linear intensities times ``exposure`` (0.35: 1.5 stops darker);
2. gamma: ``x ** gamma`` (> 1 crushes the shadows further, as a phone's tone curve does
   in the dark);
3. colour cast: per-channel gains (street-light orange by default);
4. sensor noise: shot noise with variance ``shot_noise * x`` plus Gaussian read noise
   of standard deviation ``read_noise`` (both on the 0-1 scale), seeded per image;
5. quantised to 8 bits and stored as a JPEG at quality 95, like a camera's output.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image

from basekit.atomic import atomic_write
from basekit.images import ImageError, load_image


@dataclass(frozen=True)
class NightSettings:
    """Strength of the simulated night."""

    exposure: float = 0.35
    """linear intensity multiplier (0.35: about 1.5 stops under)"""
    gamma: float = 1.2
    """tone curve exponent applied after the exposure drop"""
    cast: tuple[float, float, float] = (1.15, 0.95, 0.7)
    """per-channel RGB gains: a sodium-lamp orange cast"""
    shot_noise: float = 0.002
    """shot-noise variance per unit intensity (0-1 scale)"""
    read_noise: float = 0.008
    """read-noise standard deviation (0-1 scale)"""
    seed: int = 0
    """base seed; each image's noise also depends on its file name"""

    def tag(self) -> str:
        """Short hash naming a folder of images made with these settings."""
        return hashlib.sha256(repr(asdict(self)).encode()).hexdigest()[:10]


def simulate_night(
    image: Image.Image, settings: NightSettings, key: str
) -> Image.Image:
    """The night version of ``image``; ``key`` (e.g. the file name) seeds its noise."""
    seed = int.from_bytes(
        hashlib.sha256(f"{settings.seed}:{key}".encode()).digest()[:8]
    )
    rng = np.random.default_rng(seed)
    x = np.asarray(image, dtype=np.float64) / 255.0
    x = (x * settings.exposure) ** settings.gamma
    x = x * np.asarray(settings.cast)
    x = x + rng.normal(0.0, 1.0, x.shape) * np.sqrt(settings.shot_noise * x)
    x = x + rng.normal(0.0, settings.read_noise, x.shape)
    return Image.fromarray((np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))


def make_night_folder(
    day: list[Path], root: Path, settings: NightSettings | None = None
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Night versions of ``day`` under ``root/night-<tag>/`` (made once, reused),
    and the day images that could not be read, each with its reason."""
    settings = settings or NightSettings()
    folder = root / f"night-{settings.tag()}"
    out, skipped = [], []
    for path in day:
        target = folder / f"{path.stem}.jpg"
        if not target.exists():
            try:
                image = load_image(path)
            except ImageError as err:
                skipped.append((path, str(err)))
                continue
            night = simulate_night(image, settings, path.name)
            buffer = io.BytesIO()
            night.save(buffer, format="JPEG", quality=95)
            atomic_write(target, _writer(buffer.getvalue()))
        out.append(target)
    return out, skipped


def _writer(data: bytes) -> Callable[[IO[bytes]], object]:
    return lambda handle: handle.write(data)

"""Photos made unlike the training ones, from the photos themselves: streams on which
an accuracy promise made offline must still hold.

Each shift is a documented, seeded transform of one photo (its noise seeded by the
file name, so a photo gives the same pixels on every run), stored as a JPEG like a
camera's or an app's output:

- ``dark``: the low-light simulation of :mod:`~adacompress.experiments.night`;
- ``noisy``: Gaussian sensor noise (sd 0.05 on the 0-1 scale), JPEG q=95;
- ``blurred``: Gaussian blur of radius 1% of the shorter side (out of focus), q=95;
- ``small``: re-saved small and at low quality, as messaging apps do: shorter side
  160 px, JPEG q=40;
- ``grayscale``: luminance only (stored as RGB), q=95;
- ``mixed``: each photo one of the above or none, chosen by its name's hash.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageFilter

from adacompress.experiments.night import NightSettings, simulate_night
from basekit.atomic import atomic_write
from basekit.images import ImageError, load_image

Transform = Callable[[Image.Image, str], tuple[Image.Image, int]]
"""A shift: (photo, its key) -> (shifted photo, JPEG quality to store it at)."""


def _seed(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8])


def dark(image: Image.Image, key: str) -> tuple[Image.Image, int]:
    return simulate_night(image, NightSettings(), key), 95


def noisy(image: Image.Image, key: str) -> tuple[Image.Image, int]:
    rng = np.random.default_rng(_seed(f"noisy:{key}"))
    x = np.asarray(image, dtype=np.float64) / 255.0
    x = x + rng.normal(0.0, 0.05, x.shape)
    return Image.fromarray((np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)), 95


def blurred(image: Image.Image, key: str) -> tuple[Image.Image, int]:
    radius = 0.01 * min(image.size)
    return image.filter(ImageFilter.GaussianBlur(radius)), 95


def small(image: Image.Image, key: str) -> tuple[Image.Image, int]:
    scale = 160 / min(image.size)
    if scale < 1:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    return image, 40


def grayscale(image: Image.Image, key: str) -> tuple[Image.Image, int]:
    return image.convert("L").convert("RGB"), 95


def unchanged(image: Image.Image, key: str) -> tuple[Image.Image, int]:
    return image, 95


MIXED_FROM: tuple[Transform, ...] = (unchanged, dark, noisy, blurred, small, grayscale)


def mixed(image: Image.Image, key: str) -> tuple[Image.Image, int]:
    return MIXED_FROM[_seed(f"mixed:{key}") % len(MIXED_FROM)](image, key)


SHIFTS: dict[str, Transform] = {
    "dark": dark,
    "noisy": noisy,
    "blurred": blurred,
    "small": small,
    "grayscale": grayscale,
    "mixed": mixed,
}
"""Every shift by name."""
VERSION = 1
"""Part of the folder's name: a change to a transform must bump it."""


def make_shifted_folder(
    photos: list[Path], root: Path, shift: str
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """``shift``'s versions of ``photos`` under ``root/<shift>-v<VERSION>/``, named
    by each photo's content (made once, reused), and the photos that could not be
    read, each with its reason."""
    if shift not in SHIFTS:
        raise ValueError(f"unknown shift {shift!r}: one of {', '.join(SHIFTS)}")
    folder = root / f"{shift}-v{VERSION}"
    out, skipped = [], []
    for path in photos:
        try:
            data = path.read_bytes()
        except OSError as err:
            skipped.append((path, str(err)))
            continue
        target = folder / f"{path.stem}-{hashlib.sha256(data).hexdigest()[:12]}.jpg"
        if not target.exists():
            try:
                image = load_image(data)
            except ImageError as err:
                skipped.append((path, str(err)))
                continue
            shifted, quality = SHIFTS[shift](image, path.name)
            buffer = io.BytesIO()
            shifted.save(buffer, format="JPEG", quality=quality)
            atomic_write(target, _writer(buffer.getvalue()))
        out.append(target)
    return out, skipped


def _writer(data: bytes) -> Callable[[IO[bytes]], object]:
    return lambda handle: handle.write(data)

"""Image loading and JPEG encoding: what the device does before an upload.

An *action* is one encoding setting (SPEC.md, "Action": a JPEG quality ``c``). It is
plain data -- a quality plus an optional downscale -- so other action sets plug in
without touching the agent, which only ever sees action indices.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from adacompress.registry import Registry

REFERENCE_QUALITY = 75
"""SPEC.md, "Reference upload": ``x_ref = J(x, 75)``."""

DEFAULT_MAX_PIXELS = 100_000_000
"""Refuse images above this many pixels (a 100 MP photo is about 300 MB decoded)."""


class ImageError(ValueError):
    """An input that cannot be used as an image; the message is one line."""


@dataclass(frozen=True, order=True)
class Action:
    """One encoding setting: JPEG ``quality`` after an optional downscale."""

    quality: int
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.quality <= 100:
            raise ValueError(f"JPEG quality must be in 1..100, got {self.quality}")
        if not 0.0 < self.scale <= 1.0:
            raise ValueError(f"scale must be in (0, 1], got {self.scale}")

    @property
    def key(self) -> str:
        """Stable text key, used in caches and reports: ``"15"`` or ``"15@0.5"``."""
        return (
            str(self.quality) if self.scale == 1.0 else f"{self.quality}@{self.scale:g}"
        )

    @classmethod
    def from_key(cls, key: str) -> Action:
        """Inverse of :attr:`key`."""
        quality, _, scale = key.partition("@")
        return cls(int(quality), float(scale) if scale else 1.0)


REFERENCE_ACTION = Action(REFERENCE_QUALITY)

ACTION_SETS: Registry[tuple[Action, ...]] = Registry("action set")
register_action_set = ACTION_SETS.register
get_action_set = ACTION_SETS.build


@register_action_set("paper")
def paper_actions() -> tuple[Action, ...]:
    """SPEC.md, "Action": ``c in {5, 15, ..., 95}``, ten qualities."""
    return tuple(Action(q) for q in range(5, 100, 10))


def load_image(
    source: str | Path | bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Decode any image Pillow reads into an 8-bit RGB image.

    EXIF orientation is applied; grayscale, palette, CMYK, 16-bit and alpha images are
    converted (alpha is composited on white, as a viewer shows it).

    Raises:
        ImageError: empty, truncated, corrupt, unsupported or too large input.
    """
    if isinstance(source, bytes):
        data = source
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as err:
            raise ImageError(f"cannot read file: {err.strerror or err}") from None
    if not data:
        raise ImageError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(
                    f"image too large: {width}x{height} = {width * height:,} pixels "
                    f"(limit {max_pixels:,})"
                )
            image.load()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not an image Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(f"image too large: {err}") from None
    except (OSError, SyntaxError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ImageError(f"corrupt or truncated image: {reason}") from None
    return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """Apply EXIF orientation and convert any mode to 8-bit RGB."""
    image = ImageOps.exif_transpose(image)
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16/32-bit grayscale: scale the actual range to 8 bits instead of clipping.
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if array.max(initial=0) > 255 else 255.0
        array = np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(array).convert("RGB")
    if image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        low, high = float(array.min(initial=0)), float(array.max(initial=1))
        span = high - low or 1.0
        array = ((array - low) / span * 255.0 + 0.5).astype(np.uint8)
        return Image.fromarray(array).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def encode(image: Image.Image, action: Action) -> bytes:
    """Encode ``image`` with ``action``: ``J(x, c)`` of SPEC.md, plus a downscale.

    Chroma subsampling and tables follow libjpeg's defaults for the quality, as a
    phone's encoder would; no optimisation pass: sizes are what a plain encoder sends.
    """
    if action.scale != 1.0:
        width, height = image.size
        size = (
            max(1, round(width * action.scale)),
            max(1, round(height * action.scale)),
        )
        image = image.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=action.quality)
    return buffer.getvalue()

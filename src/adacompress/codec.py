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


SCALES = (1.0, 0.75, 0.5, 0.35, 0.25)
SCALE_QUALITIES = (5, 15, 35, 55, 75)


@register_action_set("scale-quality")
def scale_quality_actions() -> tuple[Action, ...]:
    """Downscale, then encode: five scales x five qualities (25 actions).

    Chosen on train images by ``benchmarks/action_grid.py``: on lite0 the per-image
    oracle of this grid uploads 0.056 of the q=75 bytes (the ten paper qualities:
    0.19; all 50 pairs of these scales with the paper's qualities: 0.051), with half
    the actions; qualities above 75 are never the smallest to keep an answer.
    """
    return tuple(Action(q, s) for s in SCALES for q in SCALE_QUALITIES)


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


@dataclass(frozen=True)
class UploadLimits:
    """What a service accepts: the shortest side and the most bytes of one upload.

    Real services refuse images outside these (Rekognition: 80 px, 5 MiB inline).
    :func:`encode` never produces such an image: it raises a too-small downscale to the
    minimum side, and steps the quality (then the size) down until the bytes fit.
    """

    min_side: int = 1
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.min_side < 1:
            raise ValueError(f"min_side must be >= 1, got {self.min_side}")
        if self.max_bytes is not None and self.max_bytes < 1024:
            raise ValueError(f"max_bytes must be >= 1024, got {self.max_bytes}")

    def replace(
        self, *, min_side: int | None = None, max_bytes: int | None = None
    ) -> UploadLimits:
        """These limits with the given (not None) ones replaced."""
        return UploadLimits(
            self.min_side if min_side is None else min_side,
            self.max_bytes if max_bytes is None else max_bytes,
        )

    @property
    def key(self) -> str:
        """Cache-key suffix: ``""`` without limits, else ``"+min80+max5242880"``."""
        parts = [f"+min{self.min_side}"] if self.min_side > 1 else []
        if self.max_bytes is not None:
            parts.append(f"+max{self.max_bytes}")
        return "".join(parts)


NO_LIMITS = UploadLimits()

_FALLBACK_QUALITIES = (50, 30, 15, 5)
"""Qualities tried, in order, when an upload is over the byte limit."""


def scaled_size(
    size: tuple[int, int], scale: float, min_side: int = 1
) -> tuple[int, int]:
    """``size`` times ``scale``, but the shorter side never below ``min_side``.

    An image already smaller than ``min_side`` is left at its size (never upscaled).
    """
    width, height = size
    shortest = min(width, height)
    floor = min(min_side, shortest) / shortest
    scale = min(1.0, max(scale, floor))
    if scale == 1.0:
        return size
    return max(1, round(width * scale)), max(1, round(height * scale))


def encode(
    image: Image.Image, action: Action, limits: UploadLimits = NO_LIMITS
) -> bytes:
    """Encode ``image`` with ``action``: ``J(x, c)`` of SPEC.md, plus a downscale.

    Chroma subsampling and tables follow libjpeg's defaults for the quality, as a
    phone's encoder would; no optimisation pass: sizes are what a plain encoder sends.
    ``limits`` are honoured (see :class:`UploadLimits`).

    Raises:
        ImageError: no setting fits the image under ``limits.max_bytes``.
    """
    size = scaled_size(image.size, action.scale, limits.min_side)
    data = _jpeg(image, size, action.quality)
    if limits.max_bytes is None or len(data) <= limits.max_bytes:
        return data
    for quality in (q for q in _FALLBACK_QUALITIES if q < action.quality):
        data = _jpeg(image, size, quality)
        if len(data) <= limits.max_bytes:
            return data
    while min(size) > limits.min_side:
        size = scaled_size(size, 0.75, limits.min_side)
        data = _jpeg(image, size, _FALLBACK_QUALITIES[-1])
        if len(data) <= limits.max_bytes:
            return data
    raise ImageError(
        f"cannot encode the image under {limits.max_bytes:,} bytes at a shorter side "
        f"of at least {limits.min_side} px"
    )


def _jpeg(image: Image.Image, size: tuple[int, int], quality: int) -> bytes:
    if size != image.size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()

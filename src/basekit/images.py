"""Decoding untrusted image files into 8-bit RGB, with one-line errors.

Shared by both systems: AdaCompress decodes photos and uploads, PIRL its datasets.
Whatever the input -- empty, truncated, corrupt, a decompression bomb, a FIFO, a
device, 16-bit, CMYK, palette, alpha, EXIF-rotated -- the result is an RGB image or
an :class:`ImageError` whose message is one line.
"""

from __future__ import annotations

import io
import math
import os
import stat
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageOps, UnidentifiedImageError

if TYPE_CHECKING:
    import numpy as np

DEFAULT_MAX_PIXELS = 100_000_000
"""Refuse images above this many pixels (a 100 MP photo is about 300 MB decoded)."""

DEFAULT_MAX_FILE_BYTES = 200 * 1024 * 1024
"""Refuse files above this size before reading them (no camera writes one)."""

ALPHA_BACKGROUND = (255, 255, 255)
"""What shows through transparent pixels: white, as a viewer shows them."""


class ImageError(ValueError):
    """An input that cannot be used as an image; the message is one line."""


def read_image_file(
    path: str | Path, *, max_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``.

    FIFOs, devices, sockets and folders are refused without being opened for reading
    (a FIFO would block, ``/dev/zero`` never ends), and so is a file over the limit.

    Raises:
        ImageError: not a readable regular file, or too large.
    """
    try:
        info = os.stat(path)
    except OSError as err:
        raise ImageError(f"cannot read file: {err.strerror or err}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "folder" if stat.S_ISDIR(info.st_mode) else "special file"
        raise ImageError(f"not a regular file ({kind})")
    if info.st_size > max_bytes:
        raise ImageError(
            f"file too large: {info.st_size:,} bytes (limit {max_bytes:,})"
        )
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as err:
        raise ImageError(f"cannot read file: {err.strerror or err}") from None
    if len(data) > max_bytes:  # it grew after the stat
        raise ImageError(f"file too large: over {max_bytes:,} bytes")
    return data


def load_image(
    source: str | Path | bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft: tuple[int, int] | None = None,
    min_short_side: int | None = None,
) -> Image.Image:
    """Decode any image Pillow reads into an 8-bit RGB image.

    EXIF orientation is applied; grayscale, palette, CMYK, 16-bit and alpha images are
    converted (alpha is composited on white, as a viewer shows it). The pixel count
    is checked from the header, before anything is decoded. A JPEG decodes at a
    reduced size by DCT scaling (1/2, 1/4 or 1/8: a fraction of the work) when
    ``draft`` asks for at most that size, or when its shorter side stays at least
    ``min_short_side`` at that scale.

    Raises:
        ImageError: unreadable, empty, truncated, corrupt, unsupported or too large.
    """
    data = source if isinstance(source, bytes) else read_image_file(source)
    follow_pillow_limit(max_pixels)
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
            if min_short_side is not None and draft is None:
                draft = _draft_size(width, height, min_short_side)
            if draft is not None and image.format == "JPEG":
                image.draft("RGB", draft)
            image.load()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not an image Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(f"image too large: {err}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ImageError(f"corrupt or truncated image: {reason}") from None
    return to_rgb(image)


_PILLOW_LIMIT = threading.Lock()


def follow_pillow_limit(max_pixels: int) -> None:
    """Raise Pillow's own decompression-bomb limit to at least ``max_pixels``, so
    the limit a caller asks for is the one that holds (Pillow's default would refuse
    a photo over 89.5 million pixels whatever was asked); below it, ours checks
    first. Never lowered: another caller's larger limit stays."""
    with _PILLOW_LIMIT:
        current = Image.MAX_IMAGE_PIXELS
        if current is not None and current < max_pixels:
            Image.MAX_IMAGE_PIXELS = max_pixels


def _draft_size(width: int, height: int, min_short_side: int) -> tuple[int, int]:
    """The size to ask Pillow's ``draft`` for so that the decoded shorter side stays
    at least ``min_short_side`` (draft keeps at least the size asked)."""
    scale = min(1.0, min_short_side / max(1, min(width, height)))
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def to_rgb(image: Image.Image) -> Image.Image:
    """Apply EXIF orientation and convert any mode to 8-bit RGB."""
    image = ImageOps.exif_transpose(image)
    if image.mode == "RGB":
        return image
    import numpy as np  # only for the rare high-bit-depth modes below

    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return Image.fromarray(_to_8_bit(np.asarray(image))).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


_DECODED_BYTES = {
    "1": 1,
    "L": 1,
    "P": 17,
    "I;16": 6,
    "I;16B": 6,
    "I;16L": 6,
    "I;16N": 6,
    "I": 10,
    "F": 10,
    "RGB": 4,
    "CMYK": 4,
    "YCbCr": 4,
    "LAB": 4,
    "HSV": 4,
    "RGBA": 16,
    "LA": 16,
    "PA": 16,
}
"""Bytes a pixel holds at the peak of decoding each mode, before the RGB result (4
bytes a pixel in Pillow): the decoded bands and :func:`to_rgb`'s working copies (a
palette may carry transparency, which goes through RGBA)."""


@dataclass(frozen=True)
class ImageHeader:
    """What an image's header says, nothing decoded."""

    width: int
    height: int
    decode_bytes: int
    """what :func:`load_image` will hold at its peak: what a service reserves"""


HEADER_MAX_PIXELS = 2 * 89_478_485
"""What :func:`image_header` refuses: Pillow's default bomb limit, held here so that
a larger ``max_pixels`` given to :func:`load_image` does not move it."""


def image_header(data: bytes) -> ImageHeader:
    """The size of ``data`` and what decoding it will cost, from its header alone.

    Raises:
        ImageError: not an image Pillow can read, or over
            :data:`HEADER_MAX_PIXELS`.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > HEADER_MAX_PIXELS:  # before getexif loads it
                    raise ImageError(
                        f"image too large: {width}x{height} = {width * height:,} "
                        f"pixels (limit {HEADER_MAX_PIXELS:,})"
                    )
                per_pixel = _DECODED_BYTES.get(image.mode, 20)
                rgb = 0 if image.mode == "RGB" else 4
                rotated = image.getexif().get(0x0112, 1) not in (1, None)
    except ImageError:
        raise
    except Image.DecompressionBombError as err:
        raise ImageError(f"image too large: {err}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ImageError("not an image Pillow can read") from None
    cost = width * height * (per_pixel + rgb + (4 if rotated else 0))
    return ImageHeader(width, height, cost)


CONVERSION_ROWS = 256
"""Rows converted at a time from high bit depths: temporaries stay small."""


def _to_8_bit(array: np.ndarray) -> np.ndarray:
    """A 16/32-bit integer or float grayscale array as uint8, a band of rows at a
    time. Integers: the range 0..255 kept, else 0..65535 scaled, rounded half up
    (values above clip); floats: their own range stretched to 0..255.
    """
    import numpy as np

    out = np.empty(array.shape, dtype=np.uint8)
    if array.dtype.kind == "f":
        low, high = float(array.min(initial=0)), float(array.max(initial=1))
        span = high - low or 1.0
        for top in range(0, array.shape[0], CONVERSION_ROWS):
            band = array[top : top + CONVERSION_ROWS].astype(np.float64)
            out[top : top + CONVERSION_ROWS] = (band - low) / span * 255.0 + 0.5
        return out
    peak = 65535 if array.max(initial=0) > 255 else 255
    for top in range(0, array.shape[0], CONVERSION_ROWS):
        band = np.clip(array[top : top + CONVERSION_ROWS].astype(np.int64), 0, peak)
        out[top : top + CONVERSION_ROWS] = (band * 510 + peak) // (2 * peak)
    return out

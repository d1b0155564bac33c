"""Decoding untrusted image files into 8-bit RGB, with one-line errors.

Shared by both systems: AdaCompress decodes photos and uploads, PIRL its datasets.
Whatever the input -- empty, truncated, corrupt, a decompression bomb, a FIFO, a
device, 16-bit, CMYK, palette, alpha, EXIF-rotated -- the result is an RGB image or
an :class:`ImageError` whose message is one line.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 100_000_000
"""Refuse images above this many pixels (a 100 MP photo is about 300 MB decoded)."""

DEFAULT_MAX_FILE_BYTES = 200 * 1024 * 1024
"""Refuse files above this size before reading them (no camera writes one)."""


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
    source: str | Path | bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Decode any image Pillow reads into an 8-bit RGB image.

    EXIF orientation is applied; grayscale, palette, CMYK, 16-bit and alpha images are
    converted (alpha is composited on white, as a viewer shows it). The pixel count
    is checked from the header, before anything is decoded.

    Raises:
        ImageError: unreadable, empty, truncated, corrupt, unsupported or too large.
    """
    data = source if isinstance(source, bytes) else read_image_file(source)
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
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ImageError(f"corrupt or truncated image: {reason}") from None
    return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """Apply EXIF orientation and convert any mode to 8-bit RGB."""
    image = ImageOps.exif_transpose(image)
    if image.mode == "RGB":
        return image
    import numpy as np  # only for the rare high-bit-depth modes below

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

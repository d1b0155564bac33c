"""Encoding: what the device does to an image before an upload.

``J(x, c)`` of docs/formulas.md, plus an optional downscale and a choice of format
(JPEG, the paper's, or WebP), inside the limits of the service
(:class:`adacompress.core.limits.UploadLimits`).
"""

from __future__ import annotations

import io

from PIL import Image

from adacompress.core.limits import NO_LIMITS, UploadLimits
from adacompress.device.actions import Action
from basekit.images import ImageError

Resized = dict[tuple[int, int], Image.Image]
"""Downscaled copies of one image by size, shared by its encodes."""

RESAMPLING = Image.Resampling.LANCZOS
"""How a photo is downscaled before it is encoded (and to the photo cap)."""
FALLBACK_QUALITIES = (50, 30, 15, 5)
"""Qualities tried, in order, when an upload is over the byte limit."""
FALLBACK_SCALE = 0.75
"""Then the size is stepped down by this factor at a time, at the lowest quality."""
WEBP_METHOD = 4
"""libwebp's speed/size trade-off (its default)."""


def scaled_size(
    size: tuple[int, int], scale: float, min_side: int = 1
) -> tuple[int, int]:
    """``size`` times ``scale``, but the shorter side never below ``min_side``.

    A size already smaller than ``min_side`` is left as it is (never enlarged:
    :func:`encode` refuses such an image).
    """
    width, height = size
    shortest = min(width, height)
    floor = min(min_side, shortest) / shortest
    scale = min(1.0, max(scale, floor))
    if scale == 1.0:
        return size
    return max(1, round(width * scale)), max(1, round(height * scale))


def encode(
    image: Image.Image,
    action: Action,
    limits: UploadLimits = NO_LIMITS,
    *,
    resized: Resized | None = None,
) -> bytes:
    """Encode ``image`` with ``action``: ``J(x, c)`` plus a downscale.

    JPEG: chroma subsampling and tables follow libjpeg's defaults for the quality,
    as a phone's encoder would; no optimisation pass: sizes are what a plain encoder
    sends. WebP: libwebp's lossy encoder at ``method=4``, its default speed.
    ``limits`` are honoured (see :class:`UploadLimits`). ``resized`` keeps each
    downscaled copy of ``image`` by size, for the next encodes of the same image.

    An image whose shorter side is already under ``limits.min_side`` is refused,
    not enlarged: enlarging adds no detail for the service to see, sends more bytes
    than the photo holds, and makes an upload the agent never learned about.

    Raises:
        ValueError: the service does not take the action's format (nothing is sent).
        ImageError: the image is smaller than ``limits.min_side``, or no setting
            fits it under ``limits.max_bytes``.
    """
    if not limits.accepts(action.format):
        raise ValueError(
            f"the service does not take {action.format} uploads "
            f"(it takes {', '.join(sorted(limits.formats or ()))})"
        )
    if min(image.size) < limits.min_side:
        raise ImageError(
            f"its shorter side is {min(image.size)} px, under the service's "
            f"minimum of {limits.min_side} px (photos are not enlarged)"
        )
    size = scaled_size(image.size, action.scale, limits.min_side)
    resized = {} if resized is None else resized
    data = _encode(image, size, action.quality, action.format, resized)
    if limits.max_bytes is None or len(data) <= limits.max_bytes:
        return data
    for quality in (q for q in FALLBACK_QUALITIES if q < action.quality):
        data = _encode(image, size, quality, action.format, resized)
        if len(data) <= limits.max_bytes:
            return data
    while min(size) > limits.min_side:
        size = scaled_size(size, FALLBACK_SCALE, limits.min_side)
        data = _encode(image, size, FALLBACK_QUALITIES[-1], action.format, resized)
        if len(data) <= limits.max_bytes:
            return data
    raise ImageError(
        f"cannot encode the image under {limits.max_bytes:,} bytes at a shorter side "
        f"of at least {limits.min_side} px"
    )


def _encode(
    image: Image.Image,
    size: tuple[int, int],
    quality: int,
    format_: str,
    resized: Resized,
) -> bytes:
    if size != image.size:
        if size not in resized:
            resized[size] = image.resize(size, RESAMPLING)
        image = resized[size]
    buffer = io.BytesIO()
    if format_ == "webp":
        image.save(buffer, format="WEBP", quality=quality, method=WEBP_METHOD)
    else:
        image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()

"""The photo cap: a photo larger than a service can use is first reduced to a size
the agent knows.

A cloud classifier looks at a few hundred pixels (the emulated ones at 224-260 px,
Google recommends about 640x480 for labels), so a 12 MP phone photo carries nothing
more for it than the same photo at a short side of a few hundred pixels. An agent
with a cap (``AgentCard.photo_cap``) decides for, and encodes, its photos reduced
to at most that short side: its state and its relative downscales then mean what
they meant on the photos it was trained on, at every resolution. Smaller photos are
left as they are. The reference upload, what the caller would send without the
agent, stays the whole photo at quality 75.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from PIL import Image

from adacompress.device.codec import RESAMPLING
from basekit.images import DEFAULT_MAX_PIXELS, load_image

DEFAULT_PHOTO_CAP = 448
"""Short side, in pixels, of the largest photo the default agents see: about the
90th percentile of their training photos' short sides (median 372), chosen by
train photos enlarged to 12 MP against caps of 320, 384 and 512 (docs/results.md,
"Phone-size photos")."""


def capped_size(size: tuple[int, int], cap: int | None) -> tuple[int, int]:
    """``size`` reduced so that its shorter side is at most ``cap`` (None: as is)."""
    width, height = size
    short = min(width, height)
    if cap is None or short <= cap:
        return size
    scale = cap / short
    return max(1, round(width * scale)), max(1, round(height * scale))


def cap_photo(image: Image.Image, cap: int | None) -> Image.Image:
    """``image`` reduced (Lanczos, as the encoder downscales) to :func:`capped_size`."""
    size = capped_size(image.size, cap)
    if size == image.size:
        return image
    return image.resize(size, RESAMPLING)


def load_capped(
    source: str | Path | bytes,
    cap: int | None,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """A photo decoded straight to its capped size: a JPEG at the smallest DCT scale
    that keeps the cap (a quarter of a 12 MP photo's pixels, or less), then reduced.

    Raises:
        ImageError: unusable input (one line).
    """
    image = load_image(source, max_pixels=max_pixels, min_short_side=cap)
    return cap_photo(image, cap)


def capped_digest(digest: str, size: tuple[int, int], cap: int | None) -> str:
    """The identity of what the agent sees of the photo ``digest`` of ``size``: the
    photo's own digest when the cap leaves it as it is, else one derived from the
    digest and the cap (its answers and features are the capped photo's)."""
    if capped_size(size, cap) == size:
        return digest
    return hashlib.sha256(f"{digest}:cap{cap}".encode()).hexdigest()

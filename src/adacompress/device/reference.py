"""The reference photos an export ships (docs/agent-card.md, "Reference vectors"):
small pictures made here, deterministically, each testing one step of preparing a
photo -- alpha, 16 bits, grayscale, an EXIF rotation, CMYK, a palette with a
transparent colour, a photo below any minimum side and one above the photo cap.

They are drawn with integer arithmetic only (no random generator, whose stream may
change between numpy versions), then encoded with Pillow; the card records each
file's SHA-256, so what a port checks against is the bytes shipped, whatever
library wrote them.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from adacompress.device.card_spec import REFERENCE_FOLDER, Reference
from basekit.images import ImageError

if TYPE_CHECKING:
    from adacompress.device.compressor import Compressor

EXIF_ORIENTATION = 0x0112
STATE_DECIMALS = 6
"""A reference state is rounded to this many decimals (a port compares within
1e-4: ONNX Runtime's results differ by about 1e-6 between machines)."""


@dataclass(frozen=True)
class ReferencePhoto:
    """One reference photo: its file name in ``reference/``, what it tests, its
    bytes."""

    name: str
    what: str
    data: bytes


def scene(width: int, height: int, seed: int, grain: int = 20) -> np.ndarray:
    """A picture with structure at several scales: soft gradients, a few discs
    and stripes, and hashed grain of up to ``grain`` levels either way.

    Shape: (height, width, 3), uint8.
    """
    y, x = np.mgrid[0:height, 0:width].astype(np.int64)
    u, v = x / max(1, width - 1), y / max(1, height - 1)
    red = 90 + 120 * u + 30 * np.sin(7 * v + seed)
    green = 60 + 100 * v + 40 * np.cos(5 * u * (seed + 1))
    blue = 140 + 60 * np.sin(3 * (u + v) + 2 * seed)
    for k in range(3 + seed % 3):
        cx, cy = (37 * (k + seed) % 90 + 5) / 100, (53 * (k + 2 * seed) % 90 + 5) / 100
        inside = (u - cx) ** 2 + ((v - cy) * height / width) ** 2 < (0.02 + 0.01 * k)
        red = np.where(inside, 230 - 40 * k, red)
        green = np.where(inside, 40 + 50 * k, green)
    stripes = ((x + 2 * y) // (6 + seed)) % 2 == 0
    blue = np.where(stripes & (u > 0.6), blue - 70, blue)
    hashed = (x * 73_856_093 ^ y * 19_349_663 ^ seed * 83_492_791) % (2 * grain + 1)
    rgb = np.stack([red, green, blue], axis=-1) + (hashed - grain)[..., None]
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _encoded(image: Image.Image, format_: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format_, **options)
    return buffer.getvalue()


def _picture(
    width: int,
    height: int,
    seed: int,
    grain: int = 20,
    mode: str = "RGB",
    colors: int | None = None,
) -> Callable[[], Image.Image]:
    """A :func:`scene` of that size as a picture in ``mode`` (a palette of
    ``colors``), drawn when asked."""

    def drawn() -> Image.Image:
        image = Image.fromarray(scene(width, height, seed, grain))
        if mode == "RGB":
            return image
        return (
            image.convert(mode)
            if colors is None
            else image.convert(mode, colors=colors)
        )

    return drawn


def _alpha() -> Image.Image:
    """An RGBA picture whose alpha ramps from 0 to 255, with a transparent corner."""
    alpha = Image.fromarray(scene(300, 200, 2, grain=4)).convert("RGBA")
    ramp = np.tile(np.linspace(0, 255, 300).astype(np.uint8), (200, 1))
    ramp[:60, :90] = 0  # a fully transparent corner
    alpha.putalpha(Image.fromarray(ramp))
    return alpha


def _sixteen_bits(full_range: bool) -> Callable[[], Image.Image]:
    """A 16-bit grayscale picture over 0..65535 (``full_range``), else one whose
    values stay under 256."""

    def drawn() -> Image.Image:
        gray = np.asarray(
            Image.fromarray(scene(256, 192, 3, 6)).convert("L"), np.uint16
        )
        return Image.fromarray(
            (gray * 257 if full_range else gray // 2).astype(np.uint16)
        )

    return drawn


def _orientation(value: int) -> bytes:
    """EXIF data holding only the orientation ``value``."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = value
    return exif.tobytes()


@dataclass(frozen=True)
class PhotoRecipe:
    """How one reference photo is made: its file name in ``reference/``, what it
    tests, the picture drawn, and the format and options it is saved with."""

    name: str
    what: str
    picture: Callable[[], Image.Image]
    format: str
    options: Mapping[str, object] = field(default_factory=dict)


RECIPES = (
    PhotoRecipe(
        "rgb.jpg", "an 8-bit RGB JPEG", _picture(320, 240, 1), "JPEG", {"quality": 90}
    ),
    PhotoRecipe(
        "alpha.png",
        "RGBA PNG, alpha from 0 to 255: composited onto white",
        _alpha,
        "PNG",
    ),
    PhotoRecipe(
        "gray16.png",
        "16-bit grayscale PNG over 0..65535: scaled to 8 bits",
        _sixteen_bits(full_range=True),
        "PNG",
    ),
    PhotoRecipe(
        "dark16.png",
        "16-bit grayscale PNG whose values stay under 256: kept as they are",
        _sixteen_bits(full_range=False),
        "PNG",
    ),
    PhotoRecipe(
        "gray.jpg",
        "8-bit grayscale JPEG, portrait",
        _picture(240, 320, 5, mode="L"),
        "JPEG",
        {"quality": 90},
    ),
    PhotoRecipe(
        "exif-rotated.jpg",
        "JPEG stored 320x180 with EXIF orientation 6: seen 180x320",
        _picture(320, 180, 4),
        "JPEG",
        # shown turned 90 degrees clockwise: 180 x 320
        {"quality": 90, "exif": _orientation(6)},
    ),
    PhotoRecipe(
        "cmyk.jpg",
        "CMYK JPEG (Adobe): converted to RGB as Pillow does",
        _picture(200, 200, 7, mode="CMYK"),
        "JPEG",
        {"quality": 90},
    ),
    PhotoRecipe(
        "palette.gif",
        "palette GIF with a transparent colour: composited onto white",
        _picture(160, 120, 6, mode="P", colors=64),
        "GIF",
        {"transparency": 0},
    ),
    PhotoRecipe(
        "tiny.png",
        "24x16 RGB PNG: under any service's minimum side",
        _picture(24, 16, 8),
        "PNG",
    ),
    PhotoRecipe(
        "large.jpg",
        "1280x1040 JPEG: over twice a 448 px photo cap, decoded at half size "
        "(DCT scaling), then reduced to the cap",
        _picture(1280, 1040, 9, grain=2),
        "JPEG",
        {"quality": 75},
    ),
)
"""The reference photos, in the card's order."""


def reference_photos() -> list[ReferencePhoto]:
    """The reference photos, in the card's order, made and encoded."""
    return [
        ReferencePhoto(r.name, r.what, _encoded(r.picture(), r.format, **r.options))
        for r in RECIPES
    ]


def reference_vectors(
    compressor: Compressor, photos: list[ReferencePhoto]
) -> tuple[Reference, ...]:
    """What ``compressor`` (the export, loaded back) makes of each photo: the size
    it sees, the state, the action and the upload, or why there is none."""
    vectors = []
    for photo in photos:
        image = compressor.decode(photo.data)
        state = compressor.features([image])[0]
        action = compressor.actions[int(compressor.choose(state)[0])]
        upload: tuple[int, int, int] | None = None
        skipped = None
        try:
            sent = compressor.encode(image, action)
            upload = (sent.width, sent.height, sent.nbytes)
        except ImageError as err:
            skipped = str(err)
        vectors.append(
            Reference(
                file=f"{REFERENCE_FOLDER}/{photo.name}",
                sha256=hashlib.sha256(photo.data).hexdigest(),
                what=photo.what,
                size=image.size,
                state=tuple(round(float(x), STATE_DECIMALS) for x in state),
                action=action.key,
                upload=upload,
                skipped=skipped,
            )
        )
    return tuple(vectors)

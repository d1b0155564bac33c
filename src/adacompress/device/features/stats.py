"""Cheap image statistics that hint how well a cloud's answer survives compression.

A picture with little fine detail, high contrast and a large subject loses little to a
low JPEG quality or a downscale; a busy, noisy, dark or low-contrast one loses more.
These numbers measure that directly, in a few milliseconds on one core, instead of
asking a CNN. All but the first two are computed on a working copy whose shorter side
is :data:`WORK_SIDE` pixels (never upscaled), so they do not depend on the camera's
resolution; the JPEG probes go through :func:`adacompress.device.codec.encode`, the same
encoder the uploads use.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from adacompress.device.actions import Action
from adacompress.device.codec import encode, scaled_size
from adacompress.device.features.base import register_extractor
from basekit.images import to_rgb

WORK_SIDE = 256
"""Shorter side of the working copy in pixels."""

PROBE = Action(35)
"""The JPEG probe: a low quality, where detail starts to be thrown away."""

PROBE_HEADER_BITS = 8 * len(encode(Image.new("RGB", (1, 1)), PROBE))
"""Bits of a probe encode that do not depend on the picture (markers, tables: about
630 bytes); left out, so that small images do not get a huge bits per pixel."""

SMALL_FACTOR = 3
"""The second probe and the colour statistics use the working copy box-reduced by this
factor (about 85 x 114 pixels): coarse structure, and plenty for global colour."""

HIGH_FREQUENCY = 8
"""DCT coefficients ``(u, v)`` with ``u + v >= 8`` count as high frequency (28 of 63 AC
coefficients; the ones JPEG's quantisation tables discard first)."""

STAT_NAMES: tuple[str, ...] = (
    "log_pixels",  # log(width * height) of the image as given
    "log_aspect",  # log(width / height)
    "bpp_probe",  # bits per pixel of the working copy at JPEG quality 35, no header
    "bpp_probe_small",  # the same after a 1/3 downscale, per working-copy pixel
    "gradient",  # mean luminance gradient magnitude (finite differences, 0..1 scale)
    "dct_high",  # share of 8x8-DCT AC energy of the luminance with u + v >= 8
    "brightness",  # mean luminance, 0..1
    "contrast",  # RMS contrast: standard deviation of the luminance, 0..1
    "colourfulness",  # Hasler & Suesstrunk (2003) colourfulness M, 0..1 scale (small)
    "saturation",  # mean HSV saturation (max - min) / max, 0..1 (small)
)
"""What :func:`image_statistics` returns, in order."""


def _dct_matrix(n: int = 8) -> np.ndarray:
    """Orthonormal DCT-II matrix ``D``: the coefficients of a block ``B`` are
    ``D @ B @ D.T``."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    d = np.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2 / n)
    d[0] /= math.sqrt(2)
    return d.astype(np.float32)


DCT8 = _dct_matrix()
_u, _v = np.mgrid[0:8, 0:8]
_HIGH = (_u + _v) >= HIGH_FREQUENCY
_AC = (_u + _v) > 0


def working_copy(image: Image.Image) -> Image.Image:
    """``image`` as 8-bit RGB, shorter side :data:`WORK_SIDE` (never upscaled).

    A box filter: area averaging is the right downscale and the fastest in Pillow.
    """
    if image.mode != "RGB":  # decoded images are RGB already; others are converted
        image = to_rgb(image)
    size = scaled_size(image.size, WORK_SIDE / min(image.size))
    if size == image.size:
        return image
    return image.resize(size, Image.Resampling.BOX, reducing_gap=2.0)


def probe_bits(image: Image.Image) -> int:
    """Bits of ``image`` encoded with :data:`PROBE`, less the fixed header."""
    return max(0, 8 * len(encode(image, PROBE)) - PROBE_HEADER_BITS)


def dct_high_share(luma: np.ndarray) -> float:
    """Share of the AC energy of 8x8 DCT blocks in high frequencies (0 if flat).

    Shape: luma (h, w), 0..255; the border beyond a multiple of 8 is left out.
    """
    h, w = (luma.shape[0] // 8) * 8, (luma.shape[1] // 8) * 8
    if h == 0 or w == 0:
        return 0.0
    blocks = luma[:h, :w].reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3)
    energy = np.square(DCT8 @ blocks @ DCT8.T).sum(axis=(0, 1))  # (8, 8)
    ac = float(energy[_AC].sum())
    flat = ac <= 1e-3 * blocks.shape[0] * blocks.shape[1]  # float32 rounding only
    return 0.0 if flat else float(energy[_HIGH].sum()) / ac


def image_statistics(image: Image.Image) -> np.ndarray:
    """The numbers of :data:`STAT_NAMES` for one image.

    Shape: returns (len(STAT_NAMES),), float32.

    Examples:
        >>> stats = image_statistics(Image.new("RGB", (64, 48), (128, 128, 128)))
        >>> round(float(stats[STAT_NAMES.index("brightness")]), 3)
        0.502
    """
    width, height = image.size
    work = working_copy(image)
    small = work.reduce(SMALL_FACTOR)
    pixels = work.width * work.height
    luma = np.asarray(work.convert("L"), dtype=np.float32)  # ITU-R 601 weights, 0..255
    dx = np.diff(luma, axis=1)[:-1, :]
    dy = np.diff(luma, axis=0)[:, :-1]
    gradient = float(np.sqrt(dx * dx + dy * dy).mean()) / 255.0 if dx.size else 0.0
    rgb = np.asarray(small, dtype=np.float32) / 255.0  # (h, w, 3)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg, yb = r - g, 0.5 * (r + g) - b
    colourfulness = math.hypot(float(rg.std()), float(yb.std())) + 0.3 * math.hypot(
        float(rg.mean()), float(yb.mean())
    )
    high, low = rgb.max(axis=2), rgb.min(axis=2)
    saturation = np.divide(high - low, high, out=np.zeros_like(high), where=high > 0)
    return np.array(
        [
            math.log(width * height),
            math.log(width / height),
            probe_bits(work) / pixels,
            probe_bits(small) / pixels,
            gradient,
            dct_high_share(luma),
            float(luma.mean()) / 255.0,
            float(luma.std()) / 255.0,
            colourfulness,
            float(saturation.mean()),
        ],
        dtype=np.float32,
    )


class StatsFeatures:
    """Cheap image statistics, no network: :data:`STAT_NAMES`.

    No network: a few milliseconds a photo on one core (benchmarks/decision_cost.py).
    """

    name = cache_name = "stats"
    dim = len(STAT_NAMES)

    def extract(self, images: list[Image.Image]) -> np.ndarray:
        out = np.empty((len(images), self.dim), dtype=np.float32)
        for i, image in enumerate(images):
            out[i] = image_statistics(image)
        return out


register_extractor("stats")(StatsFeatures)

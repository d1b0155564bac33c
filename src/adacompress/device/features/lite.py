"""State features from a frozen local EfficientNet-Lite0 on the uncompressed image.

``lite0``: the 1280 pooled features of the last stage (the paper's kind of state).
``confidence``: how sure the local ImageNet classifier is (its top-10 softmax scores
and the log pixel count: 11 numbers). ``confidence-scales``: the same, plus how sure
it stays when the image is downscaled as the encoder would (the downscale actions
hinge on that). ``confidence-probes``: the same state with its downscales blurred
from the network's own view instead of made from the whole photo (less resizing).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from adacompress.core.efficientnet import (
    CROP_PADDING,
    VIEW_RESAMPLING,
    LiteNetwork,
    model_input,
    model_view,
    preprocess_array,
)
from adacompress.core.engine import engine_tag
from adacompress.device.card import Preprocessing
from adacompress.device.codec import RESAMPLING, scaled_size
from adacompress.device.features.base import register_extractor

CONFIDENCE_TOP = 10
CLOUD_SIDE = 224
"""The input side of the cloud the probes stand in for (EfficientNet-Lite0's)."""


class LiteFeatures:
    """Frozen EfficientNet-Lite0 on the uncompressed image.

    Args:
        confidence: instead of the 1280 pooled features (the paper's kind of state),
            return how sure the local ImageNet classifier is: its ten highest softmax
            scores, sorted, plus the log pixel count of the image (11 numbers). On the
            train split these predict whether a cloud's answer survives compression
            better than the pooled features do (benchmarks/README.md), and an 11-number
            state does not overfit 700 training images.
        input_size: side of the square input; 224 is the network's native size.
        batch_size: images per forward pass.
    """

    def __init__(
        self, *, confidence: bool = False, input_size: int = 224, batch_size: int = 8
    ) -> None:
        self.name = "confidence" if confidence else "lite0"
        if input_size != 224:
            self.name += f"@{input_size}"
        self.cache_name = self.name + engine_tag()
        self.confidence = confidence
        self.dim = CONFIDENCE_TOP + 1 if confidence else 1280
        self.input_size = input_size
        self.batch_size = batch_size
        output = "probabilities" if confidence else "pooled"
        self.network = LiteNetwork("lite0", input_size, output)

    def extract(self, images: list[Image.Image]) -> np.ndarray:
        out = np.empty((len(images), self.dim), dtype=np.float32)
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            rows = self.network(preprocess_array(chunk, self.input_size))
            if self.confidence:
                out[start : start + len(chunk)] = np.concatenate(
                    [top_scores(rows), [[log_pixels(im)] for im in chunk]], axis=1
                )
            else:
                out[start : start + len(chunk)] = rows
        return out


def top_scores(probabilities: np.ndarray, k: int = CONFIDENCE_TOP) -> np.ndarray:
    """The ``k`` highest scores of each row, highest first. Shape: (n, c) -> (n, k)."""
    return -np.sort(-probabilities, axis=1)[:, :k]


def log_pixels(image: Image.Image) -> float:
    return math.log(image.width * image.height)


def probe_views(image: Image.Image, scales: tuple[float, ...]) -> list[Image.Image]:
    """``image`` and its copies downscaled by each of ``scales`` as the encoder
    downscales them (Lanczos, no JPEG)."""
    return [image] + [
        image.resize(scaled_size(image.size, s), RESAMPLING) for s in scales
    ]


def blurred_probes(
    view: Image.Image, photo_size: tuple[int, int], scales: tuple[float, ...]
) -> list[Image.Image]:
    """``view`` (the network's view of a photo of ``photo_size``) with only the detail
    a cloud's view keeps once the photo is downscaled by each of ``scales``.

    A cloud looks at the centre of the shorter side at its own input size
    (:data:`CLOUD_SIDE`, Lite0's); downscaled by ``s`` that centre spans
    ``s * side`` pixels, so its view keeps ``min(1, s * side / CLOUD_SIDE)`` of the
    detail. The probe shrinks ``view`` by that fraction (Lanczos, as the encoder) and
    enlarges it back (bicubic, as the cloud): two resizes of a small image instead of
    a downscale of the whole photo.
    """
    size = view.width
    side = min(photo_size) * CLOUD_SIDE / (CLOUD_SIDE + CROP_PADDING)
    probes = []
    for scale in scales:
        kept = max(1, round(size * min(1.0, scale * side / CLOUD_SIDE)))
        if kept >= size:
            probes.append(view)
            continue
        small = view.resize((kept, kept), RESAMPLING)
        probes.append(small.resize((size, size), VIEW_RESAMPLING))
    return probes


def state_views(image: Image.Image, prep: Preprocessing) -> list[Image.Image]:
    """The network's view of ``image`` and its probe views, as ``prep`` says."""
    if prep.probe_from == "photo":
        photos = probe_views(image, prep.probe_scales)
        return [
            model_view(photo, prep.input_size, prep.crop_padding) for photo in photos
        ]
    view = model_view(image, prep.input_size, prep.crop_padding)
    return [view, *blurred_probes(view, image.size, prep.probe_scales)]


class ScaleConfidenceFeatures:
    """How sure the local classifier stays when the image is downscaled.

    The ``confidence`` state (11 numbers) plus, for each of :data:`PROBE_SCALES`, the
    local EfficientNet-Lite0 on the image downscaled by that factor (no JPEG): the
    probability of the full-size top-1 class, the top-1 probability, and whether the
    top-1 class is unchanged (3 numbers a scale, 20 in all). The downscale actions
    hinge on what a cloud still recognises at a few hundred pixels, which the
    full-size confidence cannot see. One batched forward pass of 1 + 3 views a
    photo. On the ``lite0`` backend the local model *is* the cloud's, so there these
    probes are unusually informative.

    Args:
        probe_from: ``"photo"`` downscales the whole photo for each probe as the
            encoder would (the ``confidence-scales`` state); ``"view"`` blurs the
            network's 224 px view instead (:func:`blurred_probes`, the
            ``confidence-probes`` state): the same forward pass, a fraction of the
            resizing.
        input_size: the side of every view (the names gain ``@N`` when not 224).
    """

    PROBE_SCALES = (0.5, 0.35, 0.25)

    def __init__(self, probe_from: str = "photo", input_size: int = 224) -> None:
        by_view = probe_from == "view"
        self.name = "confidence-probes" if by_view else "confidence-scales"
        if input_size != 224:
            self.name += f"@{input_size}"
        self.cache_name = self.name + engine_tag()
        self.preprocessing = Preprocessing(
            input_size=input_size,
            probe_scales=self.PROBE_SCALES,
            probe_from=probe_from,
        )
        self.network = LiteNetwork("lite0", input_size, "probabilities")
        self.dim = CONFIDENCE_TOP + 1 + 3 * len(self.PROBE_SCALES)

    def extract(self, images: list[Image.Image]) -> np.ndarray:
        out = np.empty((len(images), self.dim), dtype=np.float32)
        for i, image in enumerate(images):
            views = state_views(image, self.preprocessing)
            probs = self.network(model_input(views))
            label = int(probs[0].argmax())
            probes = [
                [float(row[label]), float(row.max()), float(int(row.argmax()) == label)]
                for row in probs[1:]
            ]
            row_out = [*top_scores(probs[:1])[0], log_pixels(image), *sum(probes, [])]
            out[i] = np.array(row_out, dtype=np.float32)
        return out


register_extractor("lite0")(LiteFeatures)
register_extractor("confidence")(lambda: LiteFeatures(confidence=True))
# The same state from a smaller input: cheaper on a phone.
register_extractor("confidence@160")(
    lambda: LiteFeatures(confidence=True, input_size=160)
)
register_extractor("confidence@128")(
    lambda: LiteFeatures(confidence=True, input_size=128)
)
register_extractor("confidence-scales")(ScaleConfidenceFeatures)
register_extractor("confidence-probes")(
    lambda: ScaleConfidenceFeatures(probe_from="view")
)

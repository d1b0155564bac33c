"""State features ``E(x)`` for the agent: a registry of frozen image feature extractors.

SPEC.md, "State": features from a small fixed pretrained CNN, output of the last conv
block, average-pooled (the paper: MobileNetV2, 1280 numbers). Here the default is
EfficientNet-Lite0's last conv block, also 1280 numbers. Also: ``stats`` (cheap
image statistics, no network), ``pirl:PATH`` (an encoder from ``pirl export``) and
``random`` (the default PIRL encoder untrained: the control).
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image
from torch import nn

from adacompress.codec import scaled_size
from adacompress.efficientnet import load_lite, preprocess
from adacompress.image_stats import STAT_NAMES, image_statistics
from adacompress.pirl_features import PirlFeatures
from adacompress.registry import Registry


class FeatureExtractor(Protocol):
    """Maps decoded images to fixed-length float32 vectors."""

    name: str
    dim: int

    def extract(self, images: list[Image.Image]) -> np.ndarray:
        """Shape: (len(images), dim), float32."""
        ...


EXTRACTORS: Registry[FeatureExtractor] = Registry("feature extractor")
register_extractor = EXTRACTORS.register

PIRL_PREFIX = "pirl:"
RANDOM_PREFIX = "random:"
"""``random:PATH``: the encoder of PATH's architecture and input size, untrained."""


def get_extractor(name: str) -> FeatureExtractor:
    """A registered extractor by name, ``pirl:PATH`` (the encoder exported there) or
    ``random:PATH`` (the same architecture, untrained).

    Raises:
        ValueError: unknown name or unusable encoder file (the message is one line).
    """
    if name.startswith(PIRL_PREFIX):
        return PirlFeatures.from_file(name.removeprefix(PIRL_PREFIX))
    if name.startswith(RANDOM_PREFIX):
        return PirlFeatures.from_random(like=name.removeprefix(RANDOM_PREFIX))
    if name not in EXTRACTORS:
        raise ValueError(
            f"unknown {EXTRACTORS.kind} {name!r}; choose from "
            f"{', '.join(EXTRACTORS)}, {PIRL_PREFIX}PATH (a `pirl export` file) or "
            f"{RANDOM_PREFIX}PATH"
        )
    return EXTRACTORS.build(name)


CONFIDENCE_TOP = 10


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
        self.confidence = confidence
        self.dim = CONFIDENCE_TOP + 1 if confidence else 1280
        self.input_size = input_size
        self.batch_size = batch_size
        self.model: Any = load_lite("lite0")
        self.classifier: nn.Module = self.model._fc

    def extract(self, images: list[Image.Image]) -> np.ndarray:
        out = np.empty((len(images), self.dim), dtype=np.float32)
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            if self.confidence:
                top = self.probabilities(chunk).topk(CONFIDENCE_TOP, dim=1).values
                pixels = torch.tensor([[log_pixels(im)] for im in chunk])
                out[start : start + len(chunk)] = torch.cat([top, pixels], 1).numpy()
            else:
                out[start : start + len(chunk)] = self.pooled(chunk).numpy()
        return out

    def pooled(self, images: list[Image.Image]) -> torch.Tensor:
        """The 1280 pooled features of the last stage, one row an image."""
        with torch.inference_mode():
            maps = self.model.extract_features(preprocess(images, self.input_size))
            return maps.mean(dim=(2, 3))

    def probabilities(self, images: list[Image.Image]) -> torch.Tensor:
        """The local classifier's softmax over the 1000 classes, one row an image."""
        with torch.inference_mode():
            return torch.softmax(self.classifier(self.pooled(images)), dim=1)


def log_pixels(image: Image.Image) -> float:
    return math.log(image.width * image.height)


class ScaleConfidenceFeatures:
    """How sure the local classifier stays when the image is downscaled.

    The ``confidence`` state (11 numbers) plus, for each of :data:`PROBE_SCALES`, the
    local EfficientNet-Lite0 on the image downscaled by that factor (as the encoder
    downscales, no JPEG): the probability of the full-size top-1 class, the top-1
    probability, and whether the top-1 class is unchanged (3 numbers a scale, 20 in
    all). The downscale actions hinge on what a cloud still recognises at a few
    hundred pixels, which the full-size confidence cannot see. One batched forward
    pass of 1 + 3 images. On the ``lite0`` backend the local model *is* the cloud's,
    so there these probes are unusually informative.
    """

    PROBE_SCALES = (0.5, 0.35, 0.25)

    def __init__(self) -> None:
        self.name = "confidence-scales"
        self.base = LiteFeatures(confidence=True)
        self.dim = self.base.dim + 3 * len(self.PROBE_SCALES)

    def extract(self, images: list[Image.Image]) -> np.ndarray:
        out = np.empty((len(images), self.dim), dtype=np.float32)
        for i, image in enumerate(images):
            batch = [image] + [
                image.resize(scaled_size(image.size, s), Image.Resampling.LANCZOS)
                for s in self.PROBE_SCALES
            ]
            probs = self.base.probabilities(batch)
            top = probs[0].topk(CONFIDENCE_TOP).values
            label = int(probs[0].argmax())
            probes = [
                [float(row[label]), float(row.max()), float(int(row.argmax()) == label)]
                for row in probs[1:]
            ]
            row_out = [*top.tolist(), log_pixels(image), *sum(probes, [])]
            out[i] = np.array(row_out, dtype=np.float32)
        return out


class StatsFeatures:
    """Cheap image statistics, no network: :data:`adacompress.image_stats.STAT_NAMES`.

    About 2.8 ms per 500x375 photo on one core (timeit over 100 ImageNet samples,
    ``ADACOMPRESS_THREADS=1``, on a shared 2-core machine).
    """

    name = "stats"
    dim = len(STAT_NAMES)

    def extract(self, images: list[Image.Image]) -> np.ndarray:
        out = np.empty((len(images), self.dim), dtype=np.float32)
        for i, image in enumerate(images):
            out[i] = image_statistics(image)
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
register_extractor("stats")(StatsFeatures)
register_extractor("random")(PirlFeatures.from_random)

"""State features from a frozen local EfficientNet-Lite0 on the uncompressed image.

``lite0``: the 1280 pooled features of the last stage (the paper's kind of state).
``confidence``: how sure the local ImageNet classifier is (its top-10 softmax scores
and the log pixel count: 11 numbers). ``confidence-scales``: the same, plus how sure
it stays when the image is downscaled as the encoder would (the downscale actions
hinge on that).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from adacompress.core.efficientnet import load_lite, preprocess
from adacompress.device.codec import scaled_size
from adacompress.device.features.base import register_extractor

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

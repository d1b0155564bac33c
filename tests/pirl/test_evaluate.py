"""Frozen-feature extraction: the decoded cache and the files give the same view."""

from __future__ import annotations

from pathlib import Path

import torch

from pirl.data import ImageSource
from pirl.evaluate import extract_features
from pirl.resnet import resnet
from tests.helpers import write_odd_but_valid


def test_features_are_the_same_on_both_data_paths(image_folder: Path) -> None:
    write_odd_but_valid(image_folder / "odd")  # other sizes: centre square, resized
    source = ImageSource(image_folder)
    torch.manual_seed(0)
    encoder = resnet("resnet10", width=4, cifar_stem=True)
    features = {
        path: extract_features(
            encoder, source, image_size=24, batch_size=16, data_path=path
        )
        for path in ("files", "tensor")
    }
    assert features["files"].shape == (len(source), encoder.out_dim)
    assert torch.allclose(features["files"], features["tensor"], atol=1e-5)
    assert encoder.training  # the mode is given back

"""Frozen-feature extraction: the decoded cache and the files give the same view."""

from __future__ import annotations

from pathlib import Path

import pytest
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


def test_load_encoder_gives_eval_mode_and_eval_reports_progress(
    image_zip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pirl.cli import main
    from pirl.evaluate import load_encoder
    from pirl.train import TrainSettings, train

    out = tmp_path / "run"
    settings = TrainSettings(
        data=str(image_zip),
        under="train",
        out=str(out),
        arch="resnet10",
        width=4,
        batch_size=8,
        n_negatives=8,
        grid_size=30,
        patch_size=8,
        max_steps=1,
    )
    train(settings)
    encoder, meta = load_encoder(out / "checkpoint.pt")
    assert encoder.training is False and meta["steps"] == 1
    args = ["--checkpoint", str(out / "checkpoint.pt"), "--data", str(image_zip)]
    args += ["--test-under", "train", "--k", "5", "--linear-epochs", "2"]
    assert main(["eval", *args, "--device", "cpu", "--workers", "0"]) == 0
    err = capsys.readouterr().err
    assert "pirl: train: 40 images" in err and "pirl: kNN" in err
    assert "pirl: features: 40/40 images" in err and "linear probe" in err
    assert main(["eval", *args, "--quiet"]) == 0
    assert capsys.readouterr().err == ""

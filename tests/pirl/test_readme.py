"""src/pirl/README.md's ten-line example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.pirl.helpers import tiny_image

README = Path(__file__).resolve().parents[2] / "src" / "pirl" / "README.md"


def test_the_pirl_readme_example_trains_one_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[0]
    (tmp_path / "photos").mkdir()
    for i in range(48):
        tiny_image(i).save(tmp_path / "photos" / f"{i:02d}.png")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
    loss = namespace["loss"]
    assert float(loss.detach()) > 0  # type: ignore[attr-defined]
    bank = namespace["criterion"].memory_bank.bank  # type: ignore[attr-defined]
    assert bank.shape == (48, 128)


def test_the_feature_extraction_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from pirl.train import TrainSettings, train

    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    code = next(b for b in blocks if "extract_features" in b)
    (tmp_path / "photos").mkdir()
    for i in range(20):
        tiny_image(i).save(tmp_path / "photos" / f"{i:02d}.png")
    monkeypatch.chdir(tmp_path)
    train(
        TrainSettings(
            data="photos",
            out="out/pirl-cifar",
            arch="resnet10",
            width=4,
            batch_size=8,
            n_negatives=8,
            grid_size=30,
            patch_size=8,
            max_steps=1,
        )
    )
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
    encoder = namespace["encoder"]
    assert encoder.training is False  # type: ignore[attr-defined]
    features = namespace["features"]
    assert isinstance(features, torch.Tensor)
    assert features.shape == (20, encoder.out_dim)  # type: ignore[attr-defined]

"""Fixtures for the PIRL tests: tiny image folders and zips made on the fly."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def tiny_image(seed: int, size: int = 32) -> Image.Image:
    """A small textured RGB picture (not a flat colour)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    base = np.stack(
        [
            127 + 100 * np.sin(x / (2 + seed % 5) + rng.random() * 6),
            127 + 100 * np.cos(y / (3 + seed % 3)),
            127 + 80 * np.sin((x + y) / (4.0 + seed % 7)),
        ],
        axis=-1,
    )
    noisy = base + rng.normal(0, 10, base.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """40 images in two class folders ('a', 'b'), 32x32 JPEG/PNG."""
    root = tmp_path / "images"
    for i in range(40):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        suffix = "png" if i % 5 == 0 else "jpg"
        tiny_image(i).save(folder / f"{i:03d}.{suffix}")
    return root


@pytest.fixture
def image_zip(tmp_path: Path, image_folder: Path) -> Path:
    """The same images inside a zip, below 'train/'."""
    path = tmp_path / "images.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(image_folder.rglob("*.*")):
            archive.write(file, "train/" + file.relative_to(image_folder).as_posix())
    return path

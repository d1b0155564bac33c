"""Fixtures for the PIRL tests: tiny image folders and zips made on the fly."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.pirl.helpers import tiny_image


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: the tiny test models gain nothing from a second, and on a
    busy machine two spinning OpenMP threads slow a step down tenfold."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def decoded_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Decoded datasets of the tensor data path go to a temp folder, never to the
    user's cache."""
    folder = tmp_path / "decoded-cache"
    monkeypatch.setenv("PIRL_CACHE", str(folder))
    return folder


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

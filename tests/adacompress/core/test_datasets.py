from __future__ import annotations

from pathlib import Path

import pytest

from adacompress.core.datasets import (
    DatasetError,
    builtin_photos,
    imagenet_split,
    list_images,
    resolve_images,
)


def test_split_is_fixed_disjoint_and_complete(imagenet_dir: Path) -> None:
    train, test = imagenet_split("train"), imagenet_split("test")
    fit, val = imagenet_split("fit"), imagenet_split("val")
    assert (len(train), len(test), len(fit), len(val)) == (700, 300, 500, 200)
    assert not set(train) & set(test)
    assert set(fit) | set(val) == set(train) and not set(fit) & set(val)
    assert set(train) | set(test) == set(imagenet_split("all"))
    assert imagenet_split("test") == test  # deterministic
    # Pinned: changing the split silently would leak test images into training.
    assert [p.name for p in test[:3]] == [
        "n01443537_goldfish.JPEG",
        "n01518878_ostrich.JPEG",
        "n01532829_house_finch.JPEG",
    ]


def test_unknown_split_and_missing_data(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="unknown split"):
        imagenet_split("nope", tmp_path)
    with pytest.raises(DatasetError, match="ADACOMPRESS_DATA"):
        imagenet_split("test", tmp_path / "missing")


def test_folders(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no image files"):
        list_images(tmp_path)
    with pytest.raises(DatasetError, match="not a folder"):
        list_images(tmp_path / "missing")
    (tmp_path / "sub").mkdir()
    for name in ("b.JPG", "sub/a.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["b.JPG", "a.png"]


def test_list_file(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"x")
    listing = tmp_path / "list.txt"
    listing.write_text(f"# two images\na.jpg\n\n{tmp_path / 'b.png'}\n")
    assert resolve_images(str(listing), "test") == [
        tmp_path / "a.jpg",
        tmp_path / "b.png",
    ]
    listing.write_text("# nothing\n")
    with pytest.raises(DatasetError, match="no image paths"):
        resolve_images(str(listing), "test")


def test_builtin_photos_ship_with_the_install() -> None:
    photos = builtin_photos()
    assert len(photos) == 14 and all(p.is_file() for p in photos)
    assert resolve_images("builtin", "test") == photos

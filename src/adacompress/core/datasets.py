"""Where images come from: folders, the fixed imagenet-samples split, built-ins."""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

IMAGE_SUFFIXES = {
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
}

SPLIT_SEED = 20190918
"""Seed of the fixed train/test split (arXiv 1909.08148's submission date)."""
TEST_SIZE = 300
VAL_SIZE = 200
"""Train images held out for choosing settings (``val``); the rest is ``fit``."""

BUILTIN_PHOTOS = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "moon.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "retina.jpg",
    "rocket.jpg",
)
"""Photos that ship inside scikit-image's wheel; the default when no folder is given."""


class DatasetError(ValueError):
    """A folder or split that cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class ImageFile:
    """A file on disk and the SHA-256 of its bytes (the cache key)."""

    path: Path
    digest: str


def data_root() -> Path:
    """``$ADACOMPRESS_DATA`` or ``../shared/data`` relative to the working directory."""
    return Path(os.environ.get("ADACOMPRESS_DATA", "../shared/data"))


def imagenet_samples_dir() -> Path:
    return data_root() / "imagenet-samples"


def list_images(folder: str | Path) -> list[Path]:
    """Files under ``folder`` (recursively, sorted) whose suffix looks like an image.

    Files that only look like images are still listed; decoding decides later.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"not a folder: {root}")
    paths = sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not paths:
        raise DatasetError(f"no image files in {root}")
    return paths


def imagenet_split(split: str, folder: str | Path | None = None) -> list[Path]:
    """The fixed, seeded split of imagenet-samples.

    ``train`` (700) and ``test`` (300, held out: never trained on); ``train`` is further
    split into ``fit`` (500) and ``val`` (200) for choosing settings; ``all`` is every
    image. The split depends only on the sorted file names and :data:`SPLIT_SEED`.
    """
    folder = Path(folder) if folder is not None else imagenet_samples_dir()
    if not folder.is_dir():
        raise DatasetError(
            f"imagenet-samples not found at {folder} (set ADACOMPRESS_DATA to the "
            "folder "
            "that holds it)"
        )
    paths = sorted(folder.glob("*.JPEG"))
    if split == "all":
        return paths
    order = list(range(len(paths)))
    random.Random(SPLIT_SEED).shuffle(order)
    members = {
        "test": set(order[:TEST_SIZE]),
        "train": set(order[TEST_SIZE:]),
        "val": set(order[TEST_SIZE : TEST_SIZE + VAL_SIZE]),
        "fit": set(order[TEST_SIZE + VAL_SIZE :]),
    }
    if split not in members:
        raise DatasetError(
            f"unknown split {split!r}; choose from all, {', '.join(sorted(members))}"
        )
    return [p for i, p in enumerate(paths) if i in members[split]]


def builtin_photos() -> list[Path]:
    """The natural photos bundled with scikit-image (read as files; no import of it)."""
    base = resources.files("skimage").joinpath("data")
    return [Path(str(base.joinpath(name))) for name in BUILTIN_PHOTOS]


def read_list_file(path: str | Path) -> list[Path]:
    """Image paths, one per line (blank lines and ``#`` comments ignored); relative
    paths are taken from the list file's folder."""
    listing = Path(path)
    base = listing.parent
    paths = []
    for line in listing.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            entry = Path(line)
            paths.append(entry if entry.is_absolute() else base / entry)
    if not paths:
        raise DatasetError(f"no image paths in {listing}")
    return paths


def resolve_images(images: str | None, split: str) -> list[Path]:
    """``images`` is a folder, a ``.txt`` list of paths, ``builtin``, or None for the
    imagenet-samples ``split``."""
    if images is None:
        return imagenet_split(split)
    if images == "builtin":
        return builtin_photos()
    if images.endswith(".txt") and Path(images).is_file():
        return read_list_file(images)
    return list_images(images)


def file_digest(path: Path) -> str:
    """SHA-256 of the file's bytes (hex)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()

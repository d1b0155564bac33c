"""Where images come from: folders, the fixed imagenet-samples split, built-ins."""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from basekit.extras import require
from basekit.images import ImageError, read_image_file

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


DATA_ENV = "ADACOMPRESS_DATA"
SPLITS = ("train", "test", "fit", "val", "all")


def data_root(explicit: str | Path | None = None) -> Path:
    """Where the data sets are: ``explicit`` (``--data``), else ``$ADACOMPRESS_DATA``,
    else the ``shared/data`` folder beside this source checkout."""
    if explicit:
        return Path(explicit)
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    return Path(__file__).resolve().parents[4] / "shared" / "data"


def imagenet_samples_dir(data: str | Path | None = None) -> Path:
    return data_root(data) / "imagenet-samples"


def list_images(folder: str | Path) -> list[Path]:
    """Entries under ``folder`` (recursively, sorted; symlinked folders not followed)
    whose suffix looks like an image.

    What only looks like an image -- a FIFO, a device, a corrupt file -- is still
    listed: reading it decides, and skips it with a reason. So is a symbolic link
    that loops or leads nowhere, whatever its name.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"not a folder: {root}")
    paths = sorted(
        p
        for p in root.rglob("*")
        if (p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir()) or _loops(p)
    )
    if not paths:
        raise DatasetError(f"no image files in {root}")
    return paths


def _loops(path: Path) -> bool:
    """Whether ``path`` is a symbolic link that never reaches a file (listed
    whatever its name, so that it is reported, not dropped)."""
    if not path.is_symlink():
        return False
    try:
        path.resolve(strict=True)
    except (RuntimeError, OSError):  # a loop (RuntimeError before 3.13) or dangling
        return True
    return False


def check_split(split: str) -> None:
    """Raises DatasetError (one line) for an unknown split name."""
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r} (known: {', '.join(SPLITS)})")


def imagenet_split(
    split: str, folder: str | Path | None = None, *, data: str | Path | None = None
) -> list[Path]:
    """The fixed, seeded split of imagenet-samples (under ``data``, see
    :func:`data_root`).

    ``train`` (700) and ``test`` (300, held out: never trained on); ``train`` is further
    split into ``fit`` (500) and ``val`` (200) for choosing settings; ``all`` is every
    image. The split depends only on the sorted file names and :data:`SPLIT_SEED`.
    """
    check_split(split)
    folder = Path(folder) if folder is not None else imagenet_samples_dir(data)
    if not folder.is_dir():
        raise DatasetError(
            f"imagenet-samples not found at {folder} (pass --data or set "
            f"{DATA_ENV} to the folder that holds it)"
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
    return [p for i, p in enumerate(paths) if i in members[split]]


def builtin_photos() -> list[Path]:
    """The natural photos bundled with scikit-image (read as files; no import of it)."""
    require(
        "skimage", extra="demo", feature="the built-in photos", package="adacompress"
    )
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


def resolve_images(
    images: str | None, split: str, data: str | Path | None = None
) -> list[Path]:
    """``images`` is a folder, a ``.txt`` list of paths, ``builtin``, or None for the
    imagenet-samples ``split`` (under ``data``)."""
    if images is None:
        return imagenet_split(split, data=data)
    if images == "builtin":
        return builtin_photos()
    if images.endswith(".txt") and Path(images).is_file():
        return read_list_file(images)
    return list_images(images)


def read_hashed(path: Path) -> tuple[bytes, str]:
    """The file's bytes and their SHA-256 (hex).

    Raises:
        ImageError: not a regular file, unreadable or too large (one line).
    """
    data = read_image_file(Path(path))
    return data, hashlib.sha256(data).hexdigest()


def file_digest(path: Path) -> str:
    """SHA-256 of the file's bytes (hex).

    Raises:
        ImageError: not a regular file, unreadable or too large (one line).
    """
    return read_hashed(path)[1]


@dataclass(frozen=True)
class PhotoFile:
    """A photo as a run knows it, read once: its path, resolved path, the SHA-256
    of its bytes and the bytes (both None when the file cannot be read)."""

    path: Path
    source: str
    digest: str | None
    data: bytes | None = field(repr=False)

    @property
    def identity(self) -> tuple[str, str | None]:
        return self.source, self.digest


def photo_source(path: Path) -> str:
    """Where ``path`` leads (symlinks resolved): with its content's digest, what
    identifies a photo to a run."""
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError):  # a symlink loop
        return str(Path(path).absolute())


def read_photo(path: Path) -> PhotoFile:
    """``path`` read and hashed (an unreadable file gets no digest nor bytes)."""
    source = photo_source(path)
    try:
        data, digest = read_hashed(path)
    except ImageError:
        return PhotoFile(Path(path), source, None, None)
    return PhotoFile(Path(path), source, digest, data)

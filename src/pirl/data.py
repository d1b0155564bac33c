"""Image folders and zip archives as datasets that return ``(views, index)``.

The index is the image's position in a fixed, sorted list: the memory bank keeps one
entry per index (docs/formulas.md, "Memory bank"). Class subfolders are optional; when
every image sits in exactly one subfolder level the folder names are the labels (used
only by evaluation).

Opening a source reads every image's header, not its pixels (issue 36: decoding all of
ImageNet took 0.6 h per process, on every rank, start, resume and evaluation), and
caches that index once per dataset (``cache_index``): a file that is not a regular
file, over the size limit, empty, not an image Pillow identifies, or over the pixel
limit is listed in ``skipped`` with a one-line reason and left out. Pixels are
decoded when an image is used. An image whose header is sound but whose pixels are
not (a truncated or corrupt file) is found only then: a mid-grey image of its
header's size stands in for it, with one warning line on stderr naming the file
(once per process; loader workers are made again each epoch). So a long run goes on
and stays reproducible: the index, and with it the memory bank's size, stays that of
the open, and the same file gives the same grey image on every run and resume.
Stopping instead would leave the researcher no way on: removing the file changes the
index, which no checkpoint can resume from.

Randomness is keyed: a sample is drawn with the key ``(index, seed, epoch)`` and its
augmentation uses ``numpy.random.default_rng(key)``, so a batch is the same whichever
worker decodes it, and a resumed run sees exactly the images it would have seen.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import stat
import sys
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import PIL
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset, Sampler

from basekit.atomic import atomic_write
from basekit.images import (
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_PIXELS,
    ImageError,
    follow_pillow_limit,
    load_image,
    read_image_file,
)

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}
)

PLACEHOLDER_GREY = (128, 128, 128)
"""The colour of the image that stands in for one whose pixels cannot be decoded."""

CACHE_ENV = "PIRL_CACHE"
INDEX_VERSION = 1
"""Of the cached index's JSON (:class:`ImageSource`'s ``cache_index``)."""
IndexEntry = list[int] | str
"""An image's ``[width, height]``, or why it is skipped."""

Key = tuple[int, int, int]
"""``(index, seed, epoch)``: which image, and the seed of its augmentation."""


def key_generator(key: int | Key) -> tuple[int, np.random.Generator]:
    """The image index of a key and the generator its augmentation draws from (an
    ``int`` key is ``(index, 0, 0)``)."""
    index, seed, epoch = (key, 0, 0) if isinstance(key, int) else key
    return index, np.random.default_rng([index, seed, epoch])


class DataError(ValueError):
    """A dataset that cannot be used at all (missing, empty, wrong format)."""


@dataclass(frozen=True)
class Skipped:
    """A file left out, with a one-line reason."""

    name: str
    reason: str


class ImageSource:
    """The usable images of a folder or of a ``.zip`` of one, in sorted order.

    Args:
        path: a folder (searched recursively) or a zip archive.
        under: only files below this sub-folder (``"train"`` in the CIFAR-10 zip).
        limit: keep a seeded random subset of this many images (for quick runs).
        seed: seed of that subset.
        max_pixels: skip images with more pixels than this.
        max_bytes: skip files (or zip members) larger than this, unread.
        cache_index: keep the index (each image's size, or why it was skipped) in a
            JSON file in ``cache_dir`` (see :func:`cached_index`), so every later
            open -- other ranks, resumes, eval -- reads no image at all.
        cache_dir: where; ``$PIRL_CACHE``, else ``pirl`` in the user's cache folder.

    Raises:
        DataError: the path is missing, not a folder or zip, or holds no usable image.

    Examples:
        >>> train = ImageSource("cifar10/cifar10-jpeg.zip", under="train")
        >>> len(train), train.classes[:2]
        (50000, ['airplane', 'automobile'])
    """

    def __init__(
        self,
        path: str | Path,
        *,
        under: str | None = None,
        limit: int | None = None,
        seed: int = 0,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_bytes: int = DEFAULT_MAX_FILE_BYTES,
        cache_index: bool = True,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.path = Path(path)
        self.max_pixels = max_pixels
        self.max_bytes = max_bytes
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid = -1
        prefix = (under.strip("/") + "/") if under else ""
        self.is_zip, stamps, candidates = _candidates(self.path, prefix)
        names = [n for n in candidates if Path(n).suffix.lower() in IMAGE_SUFFIXES]
        self.ignored = len(candidates) - len(names)
        if limit is not None and limit < len(names):
            keep = np.random.default_rng(seed).choice(len(names), limit, replace=False)
            names = [names[i] for i in sorted(keep)]
        self.unreadable: dict[str, str] = {}
        """images met whose pixels could not be decoded, with the reason (this
        process's)"""
        entries = None
        if cache_index:
            entries = cached_index(self, names, stamps, cache_dir)
        if entries is None:
            entries = self._index(names)
        # sizes: each usable image's width and height, from its header
        self.skipped, self.names, self.sizes = _usable(names, entries)
        if not self.names:
            where = f"{self.path}" + (f" under {under!r}" if under else "")
            raise DataError(
                f"no usable image in {where} ({len(candidates)} files, "
                f"{len(self.skipped)} unreadable images)"
            )
        self.classes, self.labels = _labels_from_folders(self.names, prefix)

    def __len__(self) -> int:
        return len(self.names)

    def _index(self, names: Sequence[str]) -> list[IndexEntry]:
        """Each name's ``[width, height]`` from its header, or why it is skipped."""
        entries: list[IndexEntry] = []
        for name in names:
            try:
                entries.append(list(self.header(name)))
            except ImageError as err:
                entries.append(str(err))
        return entries

    def split(self, held: int, *, seed: int = 0) -> tuple[ImageSource, ImageSource]:
        """``(rest, held_out)``: a seeded random ``held`` images apart from the rest,
        e.g. a validation part of a training set for choosing settings."""
        if not 0 < held < len(self.names):
            raise DataError(f"cannot hold out {held} of {len(self.names)} images")
        chosen = set(np.random.default_rng(seed).choice(len(self), held, replace=False))
        parts = []
        for keep in (lambda i: i not in chosen, lambda i: i in chosen):
            part = copy.copy(self)
            indices = [i for i in range(len(self)) if keep(i)]
            part.names = [self.names[i] for i in indices]
            part.sizes = [self.sizes[i] for i in indices]
            if self.labels is not None:
                part.labels = [self.labels[i] for i in indices]
            parts.append(part)
        return parts[0], parts[1]

    def _archive(self) -> zipfile.ZipFile:
        if self._zip is None or self._zip_pid != os.getpid():
            self._zip = zipfile.ZipFile(self.path)  # one handle per worker process
            self._zip_pid = os.getpid()
        return self._zip

    def _checked_size(self, name: str) -> int:
        """The size in bytes of a file or zip member (declared), checked before
        anything is read.

        Raises:
            ImageError: not a regular file, or over the size limit.
        """
        if self.is_zip:
            declared = self._archive().getinfo(name).file_size
            return _checked_member_size(declared, self.max_bytes)
        return _checked_file_size(self.path / name, self.max_bytes)

    def read(self, name: str) -> bytes:
        """The bytes of one image; a zip member's declared size is checked before
        anything is inflated, a file's type and size before it is read.

        Raises:
            ImageError: unreadable, not a regular file, or over the size limit.
        """
        if not self.is_zip:
            return read_image_file(self.path / name, max_bytes=self.max_bytes)
        self._checked_size(name)
        return self._archive().read(name)

    def header(self, name: str) -> tuple[int, int]:
        """The width and height that ``name``'s header declares. Only the header
        is read (Pillow's ``Image.open``): no pixel is decoded.

        Raises:
            ImageError: not a regular file, empty, over the size or pixel limit,
                or not an image Pillow identifies (one line).
        """
        follow_pillow_limit(self.max_pixels)
        try:
            if self._checked_size(name) == 0:
                raise ImageError("empty file (0 bytes)")
            opened = (
                self._archive().open(name)
                if self.is_zip
                else open(self.path / name, "rb")  # noqa: SIM115 - closed below
            )
            with opened:
                width, height = _declared_size(opened)
        except ImageError:
            raise
        except (zipfile.BadZipFile, KeyError) as err:
            raise ImageError(f"cannot read: {err}") from None
        except (OSError, SyntaxError, ValueError, EOFError) as err:
            raise _corrupt_header(err) from None
        _check_pixels(width, height, self.max_pixels)
        return width, height

    def load_name(self, name: str) -> Image.Image:
        try:
            data = self.read(name)
        except (OSError, zipfile.BadZipFile, KeyError) as err:
            raise ImageError(f"cannot read: {err}") from None
        return load_image(data, max_pixels=self.max_pixels)

    def load(self, index: int) -> Image.Image:
        """The image at ``index`` as 8-bit RGB, decoded now.

        Raises:
            ImageError: its pixels cannot be decoded (truncated, corrupt), or the
                file changed since the source was opened.
        """
        return self.load_name(self.names[index])

    def where(self, name: str) -> str:
        """A file's path, or ``ZIP:member``, for messages."""
        return f"{self.path}:{name}" if self.is_zip else str(self.path / name)

    def load_or_grey(self, index: int) -> Image.Image:
        """:meth:`load`; for an image whose pixels cannot be decoded, a mid-grey
        image of its header's size instead, with one warning line on stderr naming
        the file (once per file and process; the reason kept in ``unreadable``)."""
        try:
            return self.load(index)
        except ImageError as err:
            name = self.names[index]
            if name not in self.unreadable:
                self.unreadable[name] = str(err)
                print(
                    f"pirl: warning: {self.where(name)}: {err}; a grey image stands "
                    f"in for it (index {index} of {len(self)} images); replace the "
                    "file, or remove it and start a new run",
                    file=sys.stderr,
                    flush=True,
                )
            return Image.new("RGB", self.sizes[index], PLACEHOLDER_GREY)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_zip"] = None  # zip handles do not cross process boundaries
        return state


def _usable(
    names: Sequence[str], entries: Sequence[IndexEntry]
) -> tuple[list[Skipped], list[str], list[tuple[int, int]]]:
    """The skipped files, and the usable images' names and sizes, of an index."""
    skipped, usable, sizes = [], [], []
    for name, entry in zip(names, entries, strict=True):
        if isinstance(entry, str):
            skipped.append(Skipped(name, entry))
        else:
            usable.append(name)
            sizes.append((entry[0], entry[1]))
    return skipped, usable, sizes


def _candidates(
    path: Path, prefix: str
) -> tuple[bool, dict[str, tuple[int, int]], list[str]]:
    """Whether ``path`` is a zip, the stamps that key its index cache (each file's
    size and modification time; a zip's own under ``""``), and its files below
    ``prefix`` in sorted order.

    Raises:
        DataError: missing, not a folder or zip, or no folder ``prefix`` in it.
    """
    if path.is_dir():
        base = path / prefix if prefix else path
        if not base.is_dir():
            raise DataError(f"no folder {base}")
        stamps = _listing(path, base)
        return False, stamps, sorted(stamps)
    if path.is_file() and zipfile.is_zipfile(path):
        info = path.stat()
        stamps = {"": (info.st_size, info.st_mtime_ns)}  # the zip's own
        with zipfile.ZipFile(path) as archive:
            candidates = sorted(
                info.filename
                for info in archive.infolist()
                if not info.is_dir() and info.filename.startswith(prefix)
            )
        return True, stamps, candidates
    if path.exists():
        raise DataError(f"{path} is neither a folder nor a zip archive")
    raise DataError(f"{path} does not exist")


# --- the index: each image's size from its header, or why it is skipped ----------


def index_key(
    source: ImageSource, names: Sequence[str], stamps: dict[str, tuple[int, int]]
) -> str:
    """What a cached index is found by: the names, sizes and modification times of
    the files (a zip's own), the limits and the Pillow version."""
    digest = hashlib.sha256(
        f"{INDEX_VERSION}\0{source.path.resolve()}\0{source.max_pixels}\0"
        f"{source.max_bytes}\0{PIL.__version__}\n".encode()
    )
    for name in [""] if source.is_zip else names:
        size, mtime = stamps.get(name, (-1, -1))
        digest.update(f"{name}\0{size}\0{mtime}\n".encode())
    if source.is_zip:
        digest.update("\n".join(names).encode())
    return digest.hexdigest()


def cached_index(
    source: ImageSource,
    names: Sequence[str],
    stamps: dict[str, tuple[int, int]],
    cache_dir: str | Path | None,
) -> list[IndexEntry] | None:
    """The index from the cache, made and stored first when it is not there;
    None when the cache folder cannot be used.

    It is found by :func:`index_key`, written atomically under a file lock (the
    first rank indexes, the others wait and read it) and read as untrusted input
    (anything malformed is indexed again, see :func:`read_index`)."""
    from filelock import FileLock

    key = index_key(source, names, stamps)
    folder = Path(cache_dir) if cache_dir else default_cache_dir()
    path = folder / f"index-{source.path.name}-{key[:20]}.json"
    n, max_pixels = len(names), source.max_pixels
    try:
        folder.mkdir(parents=True, exist_ok=True)
        entries = read_index(path, key, n, max_pixels)
        if entries is not None:
            return entries
        with FileLock(str(path) + ".lock"):
            entries = read_index(path, key, n, max_pixels)  # another rank's
            if entries is None:
                entries = source._index(names)
                text = json.dumps(
                    {"format": INDEX_VERSION, "key": key, "entries": entries},
                    separators=(",", ":"),
                )
                atomic_write(path, lambda handle: handle.write(text.encode()))
    except OSError:
        return None
    return entries


def read_index(
    path: Path, key: str, n: int, max_pixels: int
) -> list[IndexEntry] | None:
    """A cached index, checked as untrusted input: None unless it is a regular
    JSON file of a plausible size with this key and ``n`` entries, each a
    reason or a size within the pixel limit."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > 65_536 + 1024 * n:
            return None
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    entries = data.get("entries")
    if not isinstance(entries, list) or len(entries) != n:
        return None
    for entry in entries:
        if isinstance(entry, str):
            continue
        if not (
            isinstance(entry, list)
            and len(entry) == 2
            and all(type(v) is int and v > 0 for v in entry)
            and entry[0] * entry[1] <= max_pixels
        ):
            return None
    return entries


# --- the files ------------------------------------------------------------------


def _checked_member_size(size: int, max_bytes: int) -> int:
    """A zip member's declared ``size``; ImageError over ``max_bytes``."""
    if size > max_bytes:
        raise ImageError(
            f"zip member too large: {size:,} bytes declared (limit {max_bytes:,})"
        )
    return size


def _checked_file_size(path: Path, max_bytes: int) -> int:
    """The size of the file at ``path``, stat-ed, not read.

    Raises:
        ImageError: cannot be stat-ed, not a regular file, or over ``max_bytes``.
    """
    try:
        info = os.stat(path)
    except OSError as err:
        raise ImageError(f"cannot read file: {err.strerror or err}") from None
    if not stat.S_ISREG(info.st_mode):  # a FIFO would block the read
        kind = "folder" if stat.S_ISDIR(info.st_mode) else "special file"
        raise ImageError(f"not a regular file ({kind})")
    if info.st_size > max_bytes:
        raise ImageError(
            f"file too large: {info.st_size:,} bytes (limit {max_bytes:,})"
        )
    return info.st_size


def _declared_size(opened: Any) -> tuple[int, int]:
    """The width and height in the header of an open image file (Pillow's
    ``Image.open``: no pixel is decoded).

    Raises:
        ImageError: not an image Pillow identifies, or over Pillow's pixel limit.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(opened) as image:
                width, height = image.size
                return width, height
    except UnidentifiedImageError:
        raise ImageError("not an image Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(f"image too large: {err}") from None


def _corrupt_header(err: BaseException) -> ImageError:
    reason = str(err).splitlines()[0] if str(err) else type(err).__name__
    return ImageError(f"corrupt image header: {reason}")


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    """Raises ImageError for a size over ``max_pixels`` or without pixels."""
    if width * height > max_pixels:
        raise ImageError(
            f"image too large: {width}x{height} = {width * height:,} pixels "
            f"(limit {max_pixels:,})"
        )
    if width <= 0 or height <= 0:
        raise ImageError(f"image has no pixels: {width}x{height}")


def _listing(root: Path, base: Path) -> dict[str, tuple[int, int]]:
    """Every file below ``base`` (hidden ones left out) by its name relative to
    ``root``, with its size and modification time (``(-1, -1)`` if it cannot be
    stat-ed: a broken link, found unusable when indexed)."""
    stamps: dict[str, tuple[int, int]] = {}
    for file in base.rglob("*"):
        if file.name.startswith("."):
            continue
        try:
            info = file.stat()
        except OSError:
            stamps[file.relative_to(root).as_posix()] = (-1, -1)
            continue
        if not stat.S_ISDIR(info.st_mode):
            stamps[file.relative_to(root).as_posix()] = (info.st_size, info.st_mtime_ns)
    return stamps


def default_cache_dir() -> Path:
    """``$PIRL_CACHE``, else ``pirl`` in the user's cache folder."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    from platformdirs import user_cache_path

    return user_cache_path("pirl")


def _labels_from_folders(
    names: Sequence[str], prefix: str
) -> tuple[list[str], list[int] | None]:
    """Class names and labels when every image is exactly one folder below."""
    parts = [n[len(prefix) :].split("/") for n in names]
    if not all(len(p) == 2 for p in parts):
        return [], None
    classes = sorted({p[0] for p in parts})
    lookup = {c: i for i, c in enumerate(classes)}
    return classes, [lookup[p[0]] for p in parts]


class ImageDataset(Dataset[tuple[Any, int]]):
    """``dataset[key] -> (transform(image, rng), index)``.

    Args:
        source: the images.
        transform: ``(PIL image, numpy Generator) -> views``.

    A key is an ``int`` index (augmentation seeded by the index alone) or a
    :data:`Key` ``(index, seed, epoch)`` from :class:`EpochBatchSampler`. An
    image whose pixels cannot be decoded gives the views of a grey image with a
    warning (:meth:`ImageSource.load_or_grey`).
    """

    def __init__(
        self,
        source: ImageSource,
        transform: Callable[[Image.Image, np.random.Generator], Any],
    ) -> None:
        self.source = source
        self.transform = transform

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: int | Key) -> tuple[Any, int]:
        index, rng = key_generator(key)
        return self.transform(self.source.load_or_grey(index), rng), index


class EpochBatchSampler(Sampler[list[Key]]):
    """Seeded per-epoch shuffle, cut into global batches and then per-process slices.

    Global batch ``b`` is ``order[b*G : (b+1)*G]`` with ``G = batch_size * world``;
    process ``rank`` takes the ``rank``-th slice of it. So one process with the
    combined batch sees the same images, in the same order, as all processes together.
    The last incomplete global batch is dropped (every step has full batches).

    Args:
        n: dataset size.
        batch_size: per-process batch size.
        seed: shuffle seed.
        epoch: which epoch's order.
        rank: this process.
        world: number of processes.
        start: skip this many batches (resuming mid-epoch).
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        *,
        seed: int = 0,
        epoch: int = 0,
        rank: int = 0,
        world: int = 1,
        start: int = 0,
    ) -> None:
        self.n, self.batch_size, self.seed, self.epoch = n, batch_size, seed, epoch
        self.rank, self.world, self.start = rank, world, start

    @staticmethod
    def steps_per_epoch(n: int, batch_size: int, world: int = 1) -> int:
        return n // (batch_size * world)

    def __len__(self) -> int:
        return max(
            0, self.steps_per_epoch(self.n, self.batch_size, self.world) - self.start
        )

    def __iter__(self) -> Iterator[list[Key]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        size = self.batch_size * self.world
        for b in range(
            self.start, self.steps_per_epoch(self.n, self.batch_size, self.world)
        ):
            lo = b * size + self.rank * self.batch_size
            yield [
                (int(i), self.seed, self.epoch)
                for i in order[lo : lo + self.batch_size]
            ]

"""The tensor data path: a dataset decoded once into a memory-mapped uint8 file.

Decoding a JPEG and augmenting it in PIL for every sample bounds a CPU training step
on small images. Here every image is decoded once into one file of shape
``(n, side, side, 3)`` (uint8, channels last) in a cache folder, memory-mapped, and a
batch is one gather from it followed by the batched transforms of
:mod:`pirl.batch_transforms`. Images of another size are resized (shorter side) and
centre-cropped to ``side`` on the way in, so the random crops are drawn from that
square; CIFAR-10's 32-px images are stored as they are. An image whose pixels cannot
be decoded (its header could: :mod:`pirl.data`) is stored mid-grey, as the files path
shows it, with a warning line; the header counts them and each open of the file
repeats the count in one line.

The file is found by what it holds: the source's resolved path, its image names and
``side``. Its header records a signature of the source (a zip's size and
modification time; each file's for a folder) and a CRC-32 of the pixels. A file made
from an older source is rebuilt; a damaged one (cut short, wrong header, bad
checksum) is rebuilt with a one-line note on stderr. Writes are atomic (temp file,
fsync, rename) under a file lock, so a killed build leaves no half file (its temp
file is removed by the next open) and several processes (``torchrun``) build it
once.
"""

from __future__ import annotations

import hashlib
import json
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from filelock import FileLock
from torch.utils.data import Dataset
from tqdm import tqdm

from basekit.atomic import atomic_write
from pirl.batch_transforms import BatchViews
from pirl.data import CACHE_ENV, ImageSource, Key, default_cache_dir, key_generator
from pirl.transforms import center_square

__all__ = ["CACHE_ENV", "DecodedDataset", "DecodedImages", "default_cache_dir"]

DATA_PATHS = ("auto", "tensor", "files")
DEFAULT_MEMORY_LIMIT_GB = 4.0
MAGIC = b"pirl-decoded-images v1\n"
MAX_LISTED = 10
"""Unreadable images named in a decoded file's header (it holds 4 KiB)."""
HEADER_BYTES = 4096
"""The pixels start here (the header is JSON padded with spaces)."""


def decoded_bytes(n: int, side: int) -> int:
    """Size of ``n`` decoded ``side`` x ``side`` RGB images."""
    return n * side * side * 3


def takes_tensor_path(data_path: str, n: int, side: int, limit_gb: float) -> bool:
    """Whether ``data_path`` (``auto | tensor | files``) means the decoded cache for
    ``n`` images of ``side`` pixels: auto takes it when they fit in ``limit_gb``.

    Raises:
        ValueError: an unknown data path.
    """
    if data_path not in DATA_PATHS:
        raise ValueError(f"data_path must be one of {DATA_PATHS}, got {data_path!r}")
    if data_path == "auto":
        return decoded_bytes(n, side) <= limit_gb * 1e9
    return data_path == "tensor"


def source_signature(source: ImageSource) -> str:
    """What changes when the source's files change: the size and modification time
    of the zip, or of every image file of a folder."""
    digest = hashlib.sha256()
    files = [source.path] if source.is_zip else [source.path / n for n in source.names]
    for file in files:
        info = file.stat()
        digest.update(f"{file.name}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cache_file(source: ImageSource, side: int, folder: Path) -> Path:
    """Where the decoded ``source`` lives: named after its path, images and side."""
    digest = hashlib.sha256(f"{source.path.resolve()}\0{side}\0".encode())
    digest.update("\n".join(source.names).encode())
    name = f"{source.path.stem}-{len(source)}x{side}px-{digest.hexdigest()[:16]}.u8"
    return folder / name


def read_header(path: Path) -> dict[str, Any]:
    """The JSON header of a decoded-images file.

    Raises:
        ValueError: not such a file, or its header is damaged (one line).
    """
    with path.open("rb") as handle:
        head = handle.read(HEADER_BYTES)
    if len(head) < HEADER_BYTES or not head.startswith(MAGIC):
        raise ValueError("not a decoded-images file (damaged header)")
    try:
        header = json.loads(head[len(MAGIC) :].decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("damaged header") from None
    if not isinstance(header, dict):
        raise ValueError("damaged header")
    return header


def unreadable_in(path: Path) -> tuple[int, list[str]]:
    """How many images a decoded-images file holds grey, and the first names (its
    header is untrusted input: anything malformed reads as none)."""
    try:
        header = read_header(path)
    except (OSError, ValueError):
        return 0, []
    names, count = header.get("unreadable", []), header.get("n_unreadable", 0)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return 0, []
    return (count if isinstance(count, int) else len(names)), names


def pixels_crc(path: Path, chunk: int = 1 << 24) -> int:
    crc = 0
    with path.open("rb") as handle:
        handle.seek(HEADER_BYTES)
        while block := handle.read(chunk):
            crc = zlib.crc32(block, crc)
    return crc


def problem_with(path: Path, expected: dict[str, Any]) -> str | None:
    """Why the file at ``path`` cannot serve as ``expected``; None if it can."""
    if not path.exists():
        return "missing"
    if not path.is_file():  # a FIFO would block the read below
        return "not a regular file"
    try:
        header = read_header(path)
        if header.get("signature") != expected["signature"]:
            return "the source changed since it was decoded"
        if any(header.get(k) != v for k, v in expected.items()):
            return "made for other images or another size"
        size = HEADER_BYTES + decoded_bytes(expected["n"], expected["side"])
        if path.stat().st_size != size:
            return f"damaged ({path.stat().st_size:,} bytes, expected {size:,})"
        if pixels_crc(path) != header.get("crc32"):
            return "damaged (checksum mismatch)"
    except (OSError, ValueError) as err:
        return str(err).splitlines()[0] if str(err) else type(err).__name__
    return None


def header_bytes(header: dict[str, Any]) -> bytes:
    text = MAGIC + json.dumps(header).encode()
    if len(text) >= HEADER_BYTES:
        raise ValueError("decoded-images header too long")
    return text.ljust(HEADER_BYTES - 1) + b"\n"


def decode_into(
    path: Path, source: ImageSource, expected: dict[str, Any], progress: bool
) -> list[str]:
    """Decode every image of ``source`` into ``path`` (atomically). An image whose
    pixels cannot be decoded is stored grey, with a warning line
    (:meth:`~pirl.data.ImageSource.load_or_grey`); returns their names, the first
    :data:`MAX_LISTED` of them kept in the file's header with their count."""
    side = expected["side"]
    unreadable: list[str] = []

    def write(handle: IO[bytes]) -> None:
        handle.write(b"\0" * HEADER_BYTES)
        crc = 0
        names = tqdm(source.names, desc="decoding", disable=not progress)
        for index, name in enumerate(names):
            image = source.load_or_grey(index)
            if name in source.unreadable:
                unreadable.append(name)
            pixels = np.asarray(center_square(image, side), dtype=np.uint8).tobytes()
            crc = zlib.crc32(pixels, crc)
            handle.write(pixels)
        handle.seek(0)
        listed = {
            "unreadable": unreadable[:MAX_LISTED],
            "n_unreadable": len(unreadable),
        }
        handle.write(header_bytes({**expected, "crc32": crc, **listed}))

    atomic_write(path, write)
    return unreadable


class DecodedImages:
    """The images of a source, decoded once, as a memory-mapped uint8 array.

    Args:
        path: a file written by :meth:`open`.
        n: number of images.
        side: their side in pixels.

    Shape: ``batch(indices)`` returns (len(indices), side, side, 3) uint8.

    Examples:
        >>> images = DecodedImages.open(ImageSource("cifar10-jpeg.zip", under="test"),
        ...                             side=32, cache_dir="cache")
        >>> images.batch([0, 5]).shape
        torch.Size([2, 32, 32, 3])
    """

    def __init__(self, path: Path, n: int, side: int) -> None:
        self.path, self.n, self.side = path, n, side
        self._array: np.ndarray | None = None

    @classmethod
    def open(
        cls,
        source: ImageSource,
        *,
        side: int,
        cache_dir: str | Path | None = None,
        progress: bool = False,
    ) -> DecodedImages:
        """The decoded ``source`` from the cache folder, decoding it first when it is
        missing, made from an older source, or damaged.

        Raises:
            OSError: the cache folder cannot be written.
        """
        folder = Path(cache_dir) if cache_dir else default_cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = cache_file(source, side, folder)
        expected = {
            "n": len(source),
            "side": side,
            "source": str(source.path.resolve()),
            "signature": source_signature(source),
        }
        with FileLock(str(path) + ".lock"):
            # a build killed outright (SIGKILL) leaves its temp file; none is
            # being written now that we hold the lock
            for stale in folder.glob(f".{path.name}.*.tmp"):
                stale.unlink(missing_ok=True)
            problem = problem_with(path, expected)
            if problem is not None:
                if problem != "missing":
                    print(
                        f"pirl: decoded cache {path}: {problem}; decoding again",
                        file=sys.stderr,
                    )
                decode_into(path, source, expected, progress)
            else:
                count, names = unreadable_in(path)
                if count and names:
                    print(
                        f"pirl: warning: decoded cache {path}: {count} image(s) "
                        f"could not be decoded and are grey, the first "
                        f"{source.where(names[0])}",
                        file=sys.stderr,
                    )
        return cls(path, len(source), side)

    def __len__(self) -> int:
        return self.n

    @property
    def array(self) -> np.ndarray:
        """The pixels, memory-mapped read-only. Shape: (n, side, side, 3)."""
        if self._array is None:
            self._array = np.memmap(
                self.path,
                dtype=np.uint8,
                mode="r",
                offset=HEADER_BYTES,
                shape=(self.n, self.side, self.side, 3),
            )
        return self._array

    def batch(self, indices: Sequence[int]) -> torch.Tensor:
        """The images at ``indices``. Shape: (len(indices), side, side, 3) uint8."""
        pixels = np.ascontiguousarray(self.array[np.asarray(indices, dtype=np.int64)])
        return torch.from_numpy(pixels)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_array"] = None  # each worker maps the file itself
        return state


class DecodedDataset(Dataset[tuple[tuple[Any, ...], torch.Tensor]]):
    """``dataset[keys] -> (views, indices)`` for a whole batch of keys.

    Each image's augmentation draws from the generator of its key, as in
    :class:`~pirl.data.ImageDataset`; the views come out batched, shaped as the
    default collate of that dataset's samples. Use it with ``batch_size=None`` and
    :class:`~pirl.data.EpochBatchSampler` as the sampler.

    Args:
        images: the decoded images.
        transform: the batched views.
        device: augment there (e.g. ``cuda`` when loading in the training process).
    """

    def __init__(
        self,
        images: DecodedImages,
        transform: BatchViews,
        *,
        device: torch.device | None = None,
    ) -> None:
        self.images, self.transform, self.device = images, transform, device

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(
        self, keys: Sequence[int | Key]
    ) -> tuple[tuple[Any, ...], torch.Tensor]:
        indices, rngs = zip(*(key_generator(k) for k in keys), strict=True)
        pixels = self.images.batch(indices)
        if self.device is not None:
            pixels = pixels.to(self.device, non_blocking=True)
        return self.transform(pixels, rngs), torch.tensor(indices)

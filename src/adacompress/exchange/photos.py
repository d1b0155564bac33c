"""The photos a session is working on: each decoded once for every step on it
(features, uploads, sizes, scene statistics), kept within a pixel budget, and the
bytes of files the caller already read and hashed."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from PIL import Image

DECODED_PIXELS = 40_000_000
"""Pixels of decoded photos kept for the next steps on them (the latest photo is
kept whatever its size): 160 MB of Pillow's RGB, a chunk of 16 dataset photos
(larger ones are decoded again rather than held)."""


class PhotoMemory:
    """Decoded photos by content digest, the oldest dropped past ``budget`` pixels,
    and read files by path until a step takes them.

    Args:
        budget: pixels of decoded photos to keep at most (the latest is always kept).
    """

    def __init__(self, budget: int = DECODED_PIXELS) -> None:
        self.budget = budget
        self._decoded: OrderedDict[str, Image.Image] = OrderedDict()
        self._files: dict[Path, tuple[bytes, str]] = {}

    def remember_file(self, path: Path, data: bytes, digest: str) -> None:
        """``path``'s bytes and their SHA-256, already read by the caller."""
        self._files[path] = (data, digest)

    def take_file(self, path: Path) -> tuple[bytes, str] | None:
        """The bytes and digest remembered for ``path``, once (None if none)."""
        return self._files.pop(path, None)

    def get(self, digest: str) -> Image.Image | None:
        return self._decoded.get(digest)

    def keep(self, digest: str, image: Image.Image) -> None:
        """Keep ``image`` as the latest; drop the oldest past the budget."""
        self._decoded[digest] = image
        self._decoded.move_to_end(digest)
        pixels = sum(im.width * im.height for im in self._decoded.values())
        while len(self._decoded) > 1 and pixels > self.budget:
            _, dropped = self._decoded.popitem(last=False)
            pixels -= dropped.width * dropped.height

    def clear(self) -> None:
        """Forget every photo and file."""
        self._decoded.clear()
        self._files.clear()

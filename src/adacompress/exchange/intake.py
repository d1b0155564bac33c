"""Photo intake: each photo read and hashed once, decoded once (reduced to the
agent's photo cap), featurised once, its features kept in the cache; what comes out
is a :class:`Sample` per usable photo and a :class:`Skipped` per unusable one."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from adacompress.core.datasets import read_hashed
from adacompress.device.features import FeatureExtractor
from adacompress.device.resolution import capped_digest, load_capped
from adacompress.exchange.cache import AnswerCache
from adacompress.exchange.photos import PhotoMemory
from basekit.images import DEFAULT_MAX_PIXELS, ImageError, image_header, load_image
from basekit.progress import Progress
from basekit.threads import model_threads

FEATURE_CHUNK = 16


@dataclass
class Sample:
    """One usable image: where it is, its content hash and its state features.

    ``seen`` identifies what the agent sees of it: the photo itself (``digest``),
    or, above the agent's photo cap, the photo reduced to the cap
    (:mod:`adacompress.device.resolution`); its features and its actions' answers
    are kept under ``seen``, the reference's under ``digest``.
    """

    path: Path
    digest: str
    features: np.ndarray
    seen: str = ""

    def __post_init__(self) -> None:
        if not self.seen:
            object.__setattr__(self, "seen", self.digest)


@dataclass(frozen=True)
class Skipped:
    """An input that could not be used, with a one-line reason."""

    path: str
    error: str


class PhotoIntake:
    """Photos in, samples out: read, hash, decode and featurise each photo once, and
    keep the decoded photos while the work on them lasts.

    Args:
        cache: where feature vectors are kept.
        extractor: state features ``E``.
        max_pixels: larger images are skipped.
        photo_cap: the agent's photo cap: features and actions are taken on each
            photo reduced to this short side (None: the photo as it is).
    """

    def __init__(
        self,
        cache: AnswerCache,
        extractor: FeatureExtractor,
        *,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        photo_cap: int | None = None,
    ) -> None:
        self.cache = cache
        self.extractor = extractor
        self.max_pixels = max_pixels
        self.photo_cap = photo_cap
        self.photos = PhotoMemory()
        """the photos decoded last, and files the caller already read"""

    def remember_file(self, path: Path, data: bytes, digest: str) -> None:
        """``path``'s bytes and their SHA-256, already read: :meth:`prepare` uses
        them instead of reading and hashing the file again."""
        self.photos.remember_file(path, data, digest)

    def image(self, sample: Sample) -> Image.Image:
        """``sample``'s photo as RGB, decoded once for all the steps on it.

        Raises:
            ImageError: the file no longer decodes.
        """
        image = self.photos.get(sample.digest)
        if image is None:
            image = load_image(sample.path, max_pixels=self.max_pixels)
        self.photos.keep(sample.digest, image)
        return image

    def seen(self, sample: Sample) -> Image.Image:
        """What the agent sees of ``sample``: its photo, reduced to the photo cap
        as the device reduces it (decoded at the size needed).

        Raises:
            ImageError: the file no longer decodes.
        """
        if sample.seen == sample.digest:
            return self.image(sample)
        image = self.photos.get(sample.seen)
        if image is None:
            image = load_capped(sample.path, self.photo_cap, max_pixels=self.max_pixels)
        self.photos.keep(sample.seen, image)
        return image

    def release_photos(self) -> None:
        """Forget the decoded photos: the caller is done with them (a run after each
        photo, evaluate after each chunk), so memory holds only the work at hand."""
        self.photos.clear()

    def prepare(
        self, paths: Iterable[Path], *, progress: bool = True
    ) -> tuple[list[Sample], list[Skipped]]:
        """Hash and featurise every image; unusable ones are skipped with a reason.

        A chunk at a time: the files are read, hashed and (where the cache lacks
        their features) decoded in a thread pool, as hashing and Pillow release the
        GIL; then one batched feature pass over the chunk's new photos.
        """
        paths = list(paths)
        found: dict[Path, Sample] = {}
        skipped: list[tuple[int, Skipped]] = []  # by position, as the paths came
        bar = Progress(len(paths), "features", enabled=progress)
        with ThreadPoolExecutor(max_workers=model_threads()) as pool:
            for start in range(0, len(paths), FEATURE_CHUNK):
                chunk = paths[start : start + FEATURE_CHUNK]
                unseen = self._cached(pool, chunk, start, found, skipped)
                decoded = pool.map(self._decode, [data for *_, data in unseen])
                new: list[tuple[Path, str, str, Image.Image]] = []
                for (at, path, digest, seen, _), image in zip(
                    unseen, decoded, strict=True
                ):
                    if isinstance(image, ImageError):
                        skipped.append((at, Skipped(str(path), str(image))))
                        continue
                    self.photos.keep(seen, image)
                    new.append((path, digest, seen, image))
                if new:
                    rows = self.extractor.extract([image for *_, image in new])
                    for (path, digest, seen, _), row in zip(new, rows, strict=True):
                        self.cache.put_features(seen, self.extractor.cache_name, row)
                        found[path] = Sample(path, digest, row, seen)
                bar.update(len(chunk))
        bar.close()
        samples = [found[path] for path in paths if path in found]
        return samples, [reason for _, reason in sorted(skipped, key=lambda s: s[0])]

    def _cached(
        self,
        pool: ThreadPoolExecutor,
        chunk: list[Path],
        start: int,
        found: dict[Path, Sample],
        skipped: list[tuple[int, Skipped]],
    ) -> list[tuple[int, Path, str, str, bytes]]:
        """Reads and hashes ``chunk`` (at ``start`` in the paths), adds to ``found``
        the photos whose features are cached and to ``skipped`` the unreadable ones;
        returns the others: position, path, digest, what the agent sees of it
        (:attr:`Sample.seen`) and bytes."""
        unseen = []
        read = zip(chunk, self._read(pool, chunk), strict=True)
        for at, (path, hashed) in enumerate(read, start):
            if isinstance(hashed, ImageError):
                skipped.append((at, Skipped(str(path), str(hashed))))
                continue
            data, digest = hashed
            seen = self.seen_digest(data, digest)
            cached = self.cache.get_features(
                seen, self.extractor.cache_name, size=self.extractor.dim
            )
            if cached is None:
                unseen.append((at, path, digest, seen, data))
            else:
                found[path] = Sample(path, digest, cached, seen)
        return unseen

    def seen_digest(self, data: bytes, digest: str) -> str:
        """:attr:`Sample.seen` of the photo ``data`` (its header read only when
        capping)."""
        if self.photo_cap is None:
            return digest
        try:
            size = image_header(data)
        except ImageError:
            return digest  # decoding will say why it is skipped
        return capped_digest(digest, (size.width, size.height), self.photo_cap)

    def _read(
        self, pool: ThreadPoolExecutor, paths: list[Path]
    ) -> list[tuple[bytes, str] | ImageError]:
        """Each file's bytes and digest: those ``run`` already read, the others
        read and hashed in ``pool``."""
        known = [self.photos.take_file(path) for path in paths]
        unread = [path for path, file in zip(paths, known, strict=True) if not file]
        read = iter(pool.map(_read_hashed, unread))
        return [file if file is not None else next(read) for file in known]

    def _decode(self, data: bytes | Path) -> Image.Image | ImageError:
        """What the agent sees of a photo (reduced to the cap), or why not."""
        try:
            return load_capped(data, self.photo_cap, max_pixels=self.max_pixels)
        except ImageError as err:
            return err


def _read_hashed(path: Path) -> tuple[bytes, str] | ImageError:
    """:func:`read_hashed`, its error returned (one bad file must not stop a pool)."""
    try:
        return read_hashed(path)
    except ImageError as err:
        return err

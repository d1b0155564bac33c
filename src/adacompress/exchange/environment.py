"""The environment ``{X, M}``: a set of images and a cloud (docs/formulas.md,
"Training environment"), for training and for the running system alike.

Each image is shown to the agent as its feature vector; an action encodes it, the
environment uploads the compressed version and the reference, and scores the answer.
Every answer and every feature vector goes through the SQLite cache, so a rerun
makes no new service calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from adacompress.cloud.backends import check_backend, get_backend
from adacompress.cloud.service import Service, ServiceError
from adacompress.core.datasets import read_hashed
from adacompress.core.labels import Answer
from adacompress.core.limits import NO_LIMITS, UploadLimits
from adacompress.core.objective import accuracy, size_ratio, strict_accuracy
from adacompress.device.actions import REFERENCE_ACTION, Action
from adacompress.device.codec import Resized, encode
from adacompress.device.compressor import Compressor
from adacompress.device.features import FeatureExtractor
from adacompress.device.zoo import AgentChoice
from adacompress.exchange.cache import (
    AnswerCache,
    Outcome,
    RecentAnswers,
    default_cache_path,
)
from adacompress.exchange.photos import PhotoMemory
from adacompress.exchange.settings import CloudSettings
from basekit.images import DEFAULT_MAX_PIXELS, ImageError, load_image
from basekit.progress import Progress
from basekit.threads import model_threads

FEATURE_CHUNK = 16


@dataclass
class Sample:
    """One usable image: where it is, its content hash and its state features."""

    path: Path
    digest: str
    features: np.ndarray


@dataclass(frozen=True)
class Skipped:
    """An input that could not be used, with a one-line reason."""

    path: str
    error: str


@dataclass(frozen=True)
class StepResult:
    """Outcome of one action on one image."""

    accuracy: float
    strict_accuracy: float
    size_ratio: float
    nbytes: int
    reference_bytes: int


class CompressionEnv:
    """Images + a cloud + a cache: what each upload costs and whether it keeps the
    answer (the reward is the learner's: :mod:`adacompress.core.objective`).

    Args:
        service: the cloud that labels uploads.
        cache: answer and feature store.
        actions: the action set; the agent's action ``i`` is ``actions[i]``.
        extractor: state features ``E``.
        top_k: accuracy counts the reference top-1 within the compressed top-k.
        max_pixels: larger images are skipped.
        min_side, max_bytes: upload limits replacing the service's own ``limits``
            (:class:`UploadLimits`); answers are cached per service and limits.
    """

    def __init__(
        self,
        service: Service,
        cache: AnswerCache,
        *,
        actions: Sequence[Action],
        extractor: FeatureExtractor,
        top_k: int = 5,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        min_side: int | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self.service = service
        self.cache = cache
        self.actions = tuple(actions)
        self.extractor = extractor
        self.top_k = top_k
        self.max_pixels = max_pixels
        own: UploadLimits = getattr(service, "limits", NO_LIMITS)
        self.limits = own.replace(min_side=min_side, max_bytes=max_bytes)
        refused = self.limits.refused(a.format for a in self.actions)
        if refused:
            raise ValueError(
                f"{service.name} does not take {' or '.join(refused)} uploads; "
                "choose actions in a format it takes"
            )
        self.cache_name = getattr(service, "cache_name", service.name) + self.limits.key
        """the service's name in the answer cache"""
        self.answers = RecentAnswers(cache, self.cache_name)
        """answers already read or fetched, in memory for the latest images"""
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
                new: list[tuple[Path, str, Image.Image]] = []
                for (at, path, digest, _), image in zip(unseen, decoded, strict=True):
                    if isinstance(image, ImageError):
                        skipped.append((at, Skipped(str(path), str(image))))
                        continue
                    self.photos.keep(digest, image)
                    new.append((path, digest, image))
                if new:
                    rows = self.extractor.extract([image for *_, image in new])
                    for (path, digest, _), row in zip(new, rows, strict=True):
                        self.cache.put_features(digest, self.extractor.cache_name, row)
                        found[path] = Sample(path, digest, row)
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
    ) -> list[tuple[int, Path, str, bytes]]:
        """Reads and hashes ``chunk`` (at ``start`` in the paths), adds to ``found``
        the photos whose features are cached and to ``skipped`` the unreadable ones;
        returns the others: position, path, digest and bytes."""
        unseen = []
        read = zip(chunk, self._read(pool, chunk), strict=True)
        for at, (path, hashed) in enumerate(read, start):
            if isinstance(hashed, ImageError):
                skipped.append((at, Skipped(str(path), str(hashed))))
                continue
            data, digest = hashed
            cached = self.cache.get_features(digest, self.extractor.cache_name)
            if cached is None:
                unseen.append((at, path, digest, data))
            else:
                found[path] = Sample(path, digest, cached)
        return unseen

    def _read(
        self, pool: ThreadPoolExecutor, paths: list[Path]
    ) -> list[tuple[bytes, str] | ImageError]:
        """Each file's bytes and digest: those ``run`` already read, the others
        read and hashed in ``pool``."""
        known = [self.photos.take_file(path) for path in paths]
        unread = [path for path, file in zip(paths, known, strict=True) if not file]
        read = iter(pool.map(_read_hashed, unread))
        return [file if file is not None else next(read) for file in known]

    def _decode(self, data: bytes) -> Image.Image | ImageError:
        try:
            return load_image(data, max_pixels=self.max_pixels)
        except ImageError as err:
            return err

    def missing(self, sample: Sample, actions: Iterable[Action]) -> list[Action]:
        """Which of ``actions`` would cost a new call on ``sample`` (none is made)."""
        wanted = list(dict.fromkeys(actions))
        found = self.answers.known(sample.digest, [a.key for a in wanted])
        return [action for action in wanted if action.key not in found]

    def outcomes(
        self, sample: Sample, actions: Iterable[Action]
    ) -> dict[Action, Outcome]:
        """The service's answers for ``actions`` on ``sample``, from cache or fresh.

        Missing answers are fetched in one batch.

        Raises:
            ServiceError: the service failed or refused the upload.
            ImageError: the image no longer decodes.
        """
        wanted = list(dict.fromkeys(actions))
        found = self.answers.known(sample.digest, [a.key for a in wanted])
        missing = [action for action in wanted if action.key not in found]
        self.cache.stats.cached += len(wanted) - len(missing)
        if missing:
            image = self.image(sample)
            resized: Resized = {}
            uploads = [encode(image, a, self.limits, resized=resized) for a in missing]
            answers = self.service.classify(uploads)
            if len(answers) != len(uploads):
                raise ServiceError(
                    f"{self.service.name} answered {len(answers)} of "
                    f"{len(uploads)} images"
                )
            fresh = {
                action.key: Outcome(len(data), answer)
                for action, data, answer in zip(missing, uploads, answers, strict=True)
            }
            self.answers.add(sample.digest, fresh)
            self.cache.stats.new += len(missing)
            found.update(fresh)
        return {action: found[action.key] for action in wanted}

    def sizes(self, sample: Sample) -> np.ndarray:
        """Bytes of every action's upload, encoded on the device (nothing is sent;
        kept in the cache). Shape: (n_actions,)."""
        name = f"sizes:{','.join(a.key for a in self.actions)}{self.limits.key}"
        cached = self.cache.get_features(sample.digest, name)
        if cached is not None and len(cached) == len(self.actions):
            return cached
        image = self.image(sample)
        resized: Resized = {}
        sizes = np.array(
            [len(encode(image, a, self.limits, resized=resized)) for a in self.actions],
            np.float32,
        )
        self.cache.put_features(sample.digest, name, sizes)
        return sizes

    def score(self, reference: Outcome, compressed: Outcome) -> StepResult:
        """Accuracy and size ratio of ``compressed`` against ``reference``."""
        return StepResult(
            accuracy=accuracy(reference.answer, compressed.answer, top_k=self.top_k),
            strict_accuracy=strict_accuracy(reference.answer, compressed.answer),
            size_ratio=size_ratio(compressed.nbytes, reference.nbytes),
            nbytes=compressed.nbytes,
            reference_bytes=reference.nbytes,
        )

    def step_all(self, sample: Sample) -> list[StepResult]:
        """Every action's result on ``sample`` (ten uploads once, then cached)."""
        found = self.outcomes(sample, [REFERENCE_ACTION, *self.actions])
        return [self.score(found[REFERENCE_ACTION], found[a]) for a in self.actions]

    def step_with_reference(
        self, sample: Sample, action_index: int
    ) -> tuple[StepResult, Answer, int]:
        """An estimate's uploads: the step's result, the reference's labels (what
        the caller gets) and the bytes sent (the choice and the reference; once
        when they coincide)."""
        action = self.actions[action_index]
        found = self.outcomes(sample, [REFERENCE_ACTION, action])
        reference, compressed = found[REFERENCE_ACTION], found[action]
        uploaded = reference.nbytes + (
            compressed.nbytes if action != REFERENCE_ACTION else 0
        )
        return self.score(reference, compressed), reference.answer, uploaded

    def reference_bytes(self, sample: Sample) -> int:
        """Size of the reference upload, from the cache or encoded on the device
        (nothing is sent)."""
        cached = self.cache.get_answers(
            sample.digest, self.cache_name, [REFERENCE_ACTION.key]
        )
        if cached:
            return cached[REFERENCE_ACTION.key].nbytes
        image = self.image(sample)
        return len(encode(image, REFERENCE_ACTION, self.limits))

    def step(self, sample: Sample, action_index: int) -> StepResult:
        """Upload ``sample`` with action ``action_index`` and the reference; score."""
        action = self.actions[action_index]
        found = self.outcomes(sample, [REFERENCE_ACTION, action])
        return self.score(found[REFERENCE_ACTION], found[action])


@contextmanager
def open_env(
    cloud: CloudSettings,
    *,
    actions: Sequence[Action],
    extractor: FeatureExtractor,
    top_k: int = 5,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[CompressionEnv]:
    """The one place an environment is built from settings: the service, its answer
    cache (closed when the block ends) and the upload limits."""
    service = get_backend(
        cloud.backend, timeout=cloud.timeout, max_failures=cloud.max_failures
    )
    with AnswerCache(cloud.cache or default_cache_path()) as cache:
        yield CompressionEnv(
            service,
            cache,
            actions=actions,
            extractor=extractor,
            top_k=top_k,
            max_pixels=max_pixels,
            min_side=cloud.min_side,
            max_bytes=cloud.max_bytes,
        )


@contextmanager
def open_agent_env(
    cloud: CloudSettings,
    choice: AgentChoice,
    *,
    top_k: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[tuple[Compressor, CompressionEnv]]:
    """A chosen agent's compressor, and the environment that scores its actions
    with its features (``top_k`` defaults to the agent's own)."""
    check_backend(cloud.backend)  # before looking for the backend's shipped agent
    compressor = Compressor.load(
        choice.name(cloud.backend), actions=choice.actions, max_pixels=max_pixels
    )
    with open_env(
        cloud,
        actions=compressor.actions,
        extractor=compressor.extractor,
        top_k=compressor.card.top_k if top_k is None else top_k,
        max_pixels=max_pixels,
    ) as env:
        yield compressor, env


def _read_hashed(path: Path) -> tuple[bytes, str] | ImageError:
    """:func:`read_hashed`, its error returned (one bad file must not stop a pool)."""
    try:
        return read_hashed(path)
    except ImageError as err:
        return err

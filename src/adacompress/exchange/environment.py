"""The environment ``{X, M}``: a set of images and a cloud (docs/formulas.md,
"Training environment"), for training and for the running system alike.

Each image is shown to the agent as its feature vector; an action encodes it, the
environment uploads the compressed version and the reference, and scores the answer.
Every answer and every feature vector goes through the SQLite cache, so a rerun
makes no new service calls.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from adacompress.cloud.backends import check_backend, get_backend
from adacompress.cloud.service import Service, ServiceError
from adacompress.core.datasets import read_hashed
from adacompress.core.labels import Answer
from adacompress.core.limits import NO_LIMITS, UploadLimits
from adacompress.core.objective import accuracy, size_ratio, strict_accuracy
from adacompress.device.actions import REFERENCE_ACTION, Action, ReferenceUpload
from adacompress.device.codec import Resized, encode
from adacompress.device.compressor import Compressor
from adacompress.device.features import FeatureExtractor
from adacompress.device.resolution import capped_digest, load_capped
from adacompress.device.zoo import AgentChoice
from adacompress.exchange.cache import (
    AnswerCache,
    Outcome,
    RecentAnswers,
    default_cache_path,
)
from adacompress.exchange.photos import PhotoMemory
from adacompress.exchange.settings import CloudSettings
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
        photo_cap: the agent's photo cap: features and actions are taken on each
            photo reduced to this short side (None: the photo as it is).
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
        photo_cap: int | None = None,
    ) -> None:
        self.service = service
        self.photo_cap = photo_cap
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

    def upload_id(self, sample: Sample, action: Action) -> tuple[str, str]:
        """Which upload ``action`` is on ``sample``: the photo it encodes (the whole
        photo for the reference, else what the agent sees) and the action's key.
        Its answer is cached under both."""
        photo = sample.digest if isinstance(action, ReferenceUpload) else sample.seen
        return photo, action.key

    def is_reference(self, sample: Sample, action: Action) -> bool:
        """Whether ``action`` on ``sample`` uploads exactly the reference."""
        reference = self.upload_id(sample, REFERENCE_ACTION)
        return self.upload_id(sample, action) == reference

    def _known(
        self, uploads: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], Outcome]:
        """The answers known, from memory or the cache, for ``uploads``."""
        keys: dict[str, list[str]] = {}
        for photo, key in uploads:
            keys.setdefault(photo, []).append(key)
        return {
            (photo, key): outcome
            for photo, wanted in keys.items()
            for key, outcome in self.answers.known(photo, wanted).items()
        }

    def missing(self, sample: Sample, actions: Iterable[Action]) -> list[Action]:
        """Which of ``actions`` would cost a new call on ``sample`` (none is made),
        one action for each upload (:data:`REFERENCE_ACTION` is the reference)."""
        uploads = {a: self.upload_id(sample, a) for a in dict.fromkeys(actions)}
        return _unknown(uploads, self._known(uploads.values()))

    def outcomes(
        self, sample: Sample, actions: Iterable[Action]
    ) -> dict[Action, Outcome]:
        """The service's answers for ``actions`` on ``sample``, from cache or fresh
        (:data:`REFERENCE_ACTION` is the reference upload of the whole photo; the
        others encode what the agent sees of it).

        Missing answers are fetched in one batch.

        Raises:
            ServiceError: the service failed or refused the upload.
            ImageError: the image no longer decodes.
        """
        uploads = {a: self.upload_id(sample, a) for a in dict.fromkeys(actions)}
        unique = set(uploads.values())
        found = self._known(unique)
        missing = _unknown(uploads, found)
        self.cache.stats.cached += len(unique) - len(missing)
        if missing:
            encoded = self._encode(sample, missing)
            answers = self.service.classify(encoded)
            if len(answers) != len(encoded):
                raise ServiceError(
                    f"{self.service.name} answered {len(answers)} of "
                    f"{len(encoded)} images"
                )
            fresh: dict[str, dict[str, Outcome]] = {}
            for action, data, answer in zip(missing, encoded, answers, strict=True):
                photo, key = uploads[action]
                outcome = Outcome(len(data), answer)
                fresh.setdefault(photo, {})[key] = outcome
                found[photo, key] = outcome
            for photo, outcomes in fresh.items():
                self.answers.add(photo, outcomes)
            self.cache.stats.new += len(missing)
        return {action: found[upload] for action, upload in uploads.items()}

    def _encode(self, sample: Sample, actions: Sequence[Action]) -> list[bytes]:
        """Each action's upload: the reference from the whole photo, the others
        from what the agent sees of it."""
        resized: dict[str, Resized] = {}
        uploads = []
        for action in actions:
            photo, _ = self.upload_id(sample, action)
            image = self.image(sample) if photo == sample.digest else self.seen(sample)
            shared = resized.setdefault(photo, {})
            uploads.append(encode(image, action, self.limits, resized=shared))
        return uploads

    def sizes(self, sample: Sample) -> np.ndarray:
        """Bytes of every action's upload, encoded on the device (nothing is sent;
        kept in the cache). Shape: (n_actions,)."""
        name = f"sizes:{','.join(a.key for a in self.actions)}{self.limits.key}"
        cached = self.cache.get_features(sample.seen, name)
        if cached is not None and len(cached) == len(self.actions):
            return cached
        image = self.seen(sample)
        resized: Resized = {}
        sizes = np.array(
            [len(encode(image, a, self.limits, resized=resized)) for a in self.actions],
            np.float32,
        )
        self.cache.put_features(sample.seen, name, sizes)
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
            0 if self.is_reference(sample, action) else compressed.nbytes
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
    photo_cap: int | None = None,
) -> Iterator[CompressionEnv]:
    """The one place an environment is built from settings: the service, its answer
    cache (closed when the block ends), the upload limits and the agent's photo
    cap."""
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
            photo_cap=photo_cap,
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
    if choice.photo_cap is not None:
        compressor.card = replace(compressor.card, photo_cap=choice.photo_cap or None)
    with open_env(
        cloud,
        actions=compressor.actions,
        extractor=compressor.extractor,
        top_k=compressor.card.top_k if top_k is None else top_k,
        max_pixels=max_pixels,
        photo_cap=compressor.card.photo_cap,
    ) as env:
        yield compressor, env


def _unknown(
    uploads: dict[Action, tuple[str, str]], known: Container[tuple[str, str]]
) -> list[Action]:
    """The first action of each upload in ``uploads`` that is not ``known``."""
    missing: dict[tuple[str, str], Action] = {}
    for action, upload in uploads.items():
        if upload not in known:
            missing.setdefault(upload, action)
    return list(missing.values())


def _read_hashed(path: Path) -> tuple[bytes, str] | ImageError:
    """:func:`read_hashed`, its error returned (one bad file must not stop a pool)."""
    try:
        return read_hashed(path)
    except ImageError as err:
        return err

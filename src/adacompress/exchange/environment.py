"""The environment ``{X, M}``: a set of images and a cloud (docs/formulas.md,
"Training environment"), for training and for the running system alike.

Each image is shown to the agent as its feature vector; an action encodes it, the
environment uploads the compressed version and the reference, and the objective
scores the answer. The environment is its two jobs put together: photo intake
(:mod:`~adacompress.exchange.intake`: read, hash, decode once, featurise) and the
answer source (:mod:`~adacompress.exchange.answers`: answers, sizes, the call
count); scoring is the :class:`~adacompress.core.objective.Objective`'s. Every
answer and every feature vector goes through the SQLite cache, so a rerun makes no
new service calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from adacompress.cloud.backends import check_backend, get_backend
from adacompress.cloud.service import Service
from adacompress.core.labels import Answer
from adacompress.core.limits import UploadLimits
from adacompress.core.objective import Objective, StepResult
from adacompress.device.actions import REFERENCE_ACTION, Action
from adacompress.device.compressor import Compressor
from adacompress.device.features import FeatureExtractor
from adacompress.device.zoo import AgentChoice
from adacompress.exchange.answers import AnswerSource, CallCount
from adacompress.exchange.cache import AnswerCache, Outcome, default_cache_path
from adacompress.exchange.intake import FEATURE_CHUNK, PhotoIntake, Sample, Skipped
from adacompress.exchange.settings import CloudSettings
from basekit.images import DEFAULT_MAX_PIXELS

__all__ = [
    "FEATURE_CHUNK",
    "CompressionEnv",
    "Sample",
    "Skipped",
    "StepResult",
    "open_agent_env",
    "open_env",
]


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
        self.cache = cache
        self.actions = tuple(actions)
        self.objective = Objective(top_k=top_k)
        """scores each answer against the reference's"""
        self.intake = PhotoIntake(
            cache, extractor, max_pixels=max_pixels, photo_cap=photo_cap
        )
        self.answers = AnswerSource(
            service,
            cache,
            self.intake,
            actions=self.actions,
            min_side=min_side,
            max_bytes=max_bytes,
        )

    @property
    def service(self) -> Service:
        """The cloud that labels uploads."""
        return self.answers.service

    @service.setter
    def service(self, service: Service) -> None:
        self.answers.service = service  # a test swaps in one that is down

    @property
    def extractor(self) -> FeatureExtractor:
        return self.intake.extractor

    @property
    def top_k(self) -> int:
        return self.objective.top_k

    @property
    def limits(self) -> UploadLimits:
        return self.answers.limits

    @property
    def cache_name(self) -> str:
        """The service's name in the answer cache."""
        return self.answers.cache_name

    def calls(self) -> CallCount:
        """The answers asked so far: new calls to the service, and cached ones."""
        return self.answers.calls()

    # -- photo intake -----------------------------------------------------------

    def prepare(
        self, paths: Iterable[Path], *, progress: bool = True
    ) -> tuple[list[Sample], list[Skipped]]:
        """Hash and featurise every image; unusable ones are skipped with a reason."""
        return self.intake.prepare(paths, progress=progress)

    def remember_file(self, path: Path, data: bytes, digest: str) -> None:
        """``path``'s bytes and their SHA-256, already read (not read again)."""
        self.intake.remember_file(path, data, digest)

    def image(self, sample: Sample) -> Image.Image:
        """``sample``'s photo as RGB, decoded once for all the steps on it."""
        return self.intake.image(sample)

    def seen_digest(self, data: bytes, digest: str) -> str:
        """:attr:`Sample.seen` of the photo ``data``."""
        return self.intake.seen_digest(data, digest)

    def release_photos(self) -> None:
        """Forget the decoded photos: the caller is done with them."""
        self.intake.release_photos()

    # -- answers and sizes -------------------------------------------------------

    def upload_id(self, sample: Sample, action: Action) -> tuple[str, str]:
        """Which upload ``action`` is on ``sample``: photo digest and action key."""
        return self.answers.upload_id(sample, action)

    def is_reference(self, sample: Sample, action: Action) -> bool:
        """Whether ``action`` on ``sample`` uploads exactly the reference."""
        return self.answers.is_reference(sample, action)

    def missing(self, sample: Sample, actions: Iterable[Action]) -> list[Action]:
        """Which of ``actions`` would cost a new call on ``sample``."""
        return self.answers.missing(sample, actions)

    def outcomes(
        self, sample: Sample, actions: Iterable[Action]
    ) -> dict[Action, Outcome]:
        """The service's answers for ``actions`` on ``sample``, cached or fresh."""
        return self.answers.outcomes(sample, actions)

    def sizes(self, sample: Sample) -> np.ndarray:
        """Bytes of every action's upload (nothing is sent). Shape: (n_actions,)."""
        return self.answers.sizes(sample)

    def reference_bytes(self, sample: Sample) -> int:
        """Size of the reference upload (nothing is sent)."""
        return self.answers.reference_bytes(sample)

    # -- scoring -----------------------------------------------------------------

    def score(self, reference: Outcome, compressed: Outcome) -> StepResult:
        """Accuracy and size ratio of ``compressed`` against ``reference``."""
        return self.objective.score(
            reference.answer,
            compressed.answer,
            nbytes=compressed.nbytes,
            reference_bytes=reference.nbytes,
        )

    def step(self, sample: Sample, action_index: int) -> StepResult:
        """Upload ``sample`` with action ``action_index`` and the reference; score."""
        action = self.actions[action_index]
        found = self.outcomes(sample, [REFERENCE_ACTION, action])
        return self.score(found[REFERENCE_ACTION], found[action])

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

"""The cloud's answers, as learning and the runtime ask for them: each action's
answer on a photo (fetched once, then from memory or the cache), what each upload
weighs (encoded on the device, nothing sent), and how many calls that took."""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from adacompress.cloud.service import Service, ServiceError
from adacompress.device.actions import REFERENCE_ACTION, Action, ReferenceUpload
from adacompress.device.codec import Resized, encode
from adacompress.exchange.cache import AnswerCache, Outcome, RecentAnswers
from adacompress.exchange.intake import PhotoIntake, Sample


@dataclass
class CallCount:
    """How many answers came from the service (new calls) and how many from the
    cache."""

    new: int = 0
    cached: int = 0


class AnswerSource:
    """Each action's answer and size on a photo, from one cloud, its answers cached
    per service and upload limits.

    Args:
        service: the cloud that labels uploads.
        cache: answer and feature store.
        intake: decodes the photos to encode.
        actions: the action set; action ``i`` is ``actions[i]``.
        min_side, max_bytes: upload limits replacing the service's own ``limits``
            (:class:`~adacompress.core.limits.UploadLimits`).

    Raises:
        ValueError: the service does not take some action's format.
    """

    def __init__(
        self,
        service: Service,
        cache: AnswerCache,
        intake: PhotoIntake,
        *,
        actions: Sequence[Action],
        min_side: int | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self.service = service
        self.cache = cache
        self.intake = intake
        self.actions = tuple(actions)
        self.limits = service.limits.replace(min_side=min_side, max_bytes=max_bytes)
        refused = self.limits.refused(a.format for a in self.actions)
        if refused:
            raise ValueError(
                f"{service.name} does not take {' or '.join(refused)} uploads; "
                "choose actions in a format it takes"
            )
        self.cache_name = service.cache_name + self.limits.key
        """the service's name in the answer cache"""
        self.recent = RecentAnswers(cache, self.cache_name)
        """answers already read or fetched, in memory for the latest images"""
        self._count = CallCount()

    def calls(self) -> CallCount:
        """The answers asked so far: new calls to the service, and cached ones."""
        return replace(self._count)

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
            for key, outcome in self.recent.known(photo, wanted).items()
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
        self._count.cached += len(unique) - len(missing)
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
                self.recent.add(photo, outcomes)
            self._count.new += len(missing)
        return {action: found[upload] for action, upload in uploads.items()}

    def _encode(self, sample: Sample, actions: Sequence[Action]) -> list[bytes]:
        """Each action's upload: the reference from the whole photo, the others
        from what the agent sees of it."""
        resized: dict[str, Resized] = {}
        uploads = []
        for action in actions:
            photo, _ = self.upload_id(sample, action)
            image = (
                self.intake.image(sample)
                if photo == sample.digest
                else self.intake.seen(sample)
            )
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
        image = self.intake.seen(sample)
        resized: Resized = {}
        sizes = np.array(
            [len(encode(image, a, self.limits, resized=resized)) for a in self.actions],
            np.float32,
        )
        self.cache.put_features(sample.seen, name, sizes)
        return sizes

    def reference_bytes(self, sample: Sample) -> int:
        """Size of the reference upload, from the cache or encoded on the device
        (nothing is sent)."""
        cached = self.cache.get_answers(
            sample.digest, self.cache_name, [REFERENCE_ACTION.key]
        )
        if cached:
            return cached[REFERENCE_ACTION.key].nbytes
        image = self.intake.image(sample)
        return len(encode(image, REFERENCE_ACTION, self.limits))


def _unknown(
    uploads: dict[Action, tuple[str, str]], known: Container[tuple[str, str]]
) -> list[Action]:
    """The first action of each upload in ``uploads`` that is not ``known``."""
    missing: dict[tuple[str, str], Action] = {}
    for action, upload in uploads.items():
        if upload not in known:
            missing.setdefault(upload, action)
    return list(missing.values())

"""The device side in one object: image in, the upload the agent chooses out.

A :class:`Compressor` is a learned policy, the feature extractor it was trained on
and its action set. It decides greedily -- the same decision ``adacompress
evaluate`` scores and the runtime's inference state sends -- never a dominated
action (one that uploads more than the reference with nothing to gain), and never a
format the receiving service does not take.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from adacompress.core.limits import NO_LIMITS, UploadLimits
from adacompress.device.actions import Action
from adacompress.device.answer_feedback import AnswerFeedback
from adacompress.device.card import AgentCard
from adacompress.device.codec import encode
from adacompress.device.features.base import FeatureExtractor
from adacompress.device.resolution import cap_photo, load_capped
from adacompress.device.zoo import names_a_path, resolve_agent
from basekit.extras import require
from basekit.images import DEFAULT_MAX_PIXELS, ImageError, to_rgb
from basekit.threads import model_threads

if TYPE_CHECKING:
    from adacompress.device.policies.base import LearnedPolicy, Policy

ImageInput = str | Path | bytes | Image.Image
"""A path, encoded bytes, or a decoded PIL image."""


@dataclass(frozen=True)
class Upload:
    """What to send for one image, and why.

    Attributes:
        data: the encoded bytes to upload.
        action: the encoding the agent chose (format, quality, scale).
        mime: the media type of ``data``.
        width, height: the size of the uploaded picture.
        source_bytes: size of the input file (None for a decoded image).
    """

    data: bytes
    action: Action
    mime: str
    width: int
    height: int
    source_bytes: int | None = None

    @property
    def extension(self) -> str:
        """File extension for ``data`` (``.jpg``, ``.webp``)."""
        return self.action.extension

    @property
    def nbytes(self) -> int:
        return len(self.data)


class Compressor:
    """Chooses each image's encoding with a learned policy and encodes it.

    Args:
        policy: the trained policy.
        extractor: the state features it was trained on.
        actions: its action set (index ``i`` is ``actions[i]``).
        limits: what the receiving service accepts (formats, sides, bytes): the
            choice and the encoder stay inside.
        max_pixels: larger images are refused.
        batch_size: images per feature-extraction batch in :meth:`compress_many`.
        card: what the agent is (backend, features, actions, target); default:
            read from ``metadata``.
        metadata: what the agent file says about its training.
        source: where the agent came from (its file or export folder), for
            messages and reports.
        digest: the SHA-256 of what the agent is made of (its agent file's bytes,
            or its export's card, which holds the SHA-256 of every other file):
            with ``card.name``, what a manifest records of it.

    Examples:
        >>> compressor = Compressor.load("lite0")
        >>> upload = compressor.compress("cat.jpg")
        >>> upload.action.quality, upload.nbytes
    """

    def __init__(
        self,
        policy: Policy,
        extractor: FeatureExtractor,
        actions: Sequence[Action],
        *,
        limits: UploadLimits = NO_LIMITS,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        batch_size: int = 16,
        card: AgentCard | None = None,
        metadata: dict[str, Any] | None = None,
        source: str = "",
        digest: str = "",
    ) -> None:
        if len(actions) != policy.settings.n_actions:
            raise ValueError(
                f"the policy has {policy.settings.n_actions} actions, "
                f"the action set {len(actions)}"
            )
        self.policy = policy
        self.extractor = extractor
        self.actions = tuple(actions)
        self.limits = limits
        self.max_pixels = max_pixels
        self.batch_size = batch_size
        self.metadata = dict(metadata or {})
        self.source = source
        """where the agent came from: its agent file or its export folder"""
        self.digest = digest
        self.card = card or AgentCard.from_metadata(
            self.metadata,
            policy=policy.settings.policy,
            threshold=policy.settings.sending_threshold,
        )
        self.accepted = [
            i for i, a in enumerate(self.actions) if limits.accepts(a.format)
        ]
        """the actions the service takes: the only ones ever chosen"""
        if not self.accepted:
            formats = sorted({a.format for a in self.actions})
            raise ValueError(
                f"the service takes none of the agent's formats ({', '.join(formats)})"
            )
        self.candidates = [i for i in self.accepted if not self.actions[i].dominated]
        """the accepted actions that are not dominated"""

    @classmethod
    def load(
        cls,
        agent: str | Path = "lite0",
        *,
        actions: str | None = None,
        limits: UploadLimits = NO_LIMITS,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> Compressor:
        """A shipped agent by name (``"lite1-scale-quality"``; a backend's name
        alone, ``"lite0"``, is its default agent, ``actions="paper"`` its
        paper-action one), an agent file by path, or a folder that ``adacompress
        export`` wrote (ONNX Runtime only: no torch needed).

        Raises:
            ValueError: unknown name, unreadable file (one line).
        """
        return load_compressor(
            agent, actions=actions, limits=limits, max_pixels=max_pixels
        )

    @property
    def learned(self) -> LearnedPolicy:
        """The policy with its network, to train or retrain: an agent file's (an
        exported agent only decides).

        Raises:
            ValueError: an exported agent (one line).
        """
        return self.policy.trainable()

    # -- deciding --------------------------------------------------------------

    def choose(self, features: np.ndarray) -> np.ndarray:
        """Action indices for feature rows. Shape: (batch, dim) -> (batch,)."""
        return self.policy.choose(np.atleast_2d(features), self.candidates)

    def features(self, images: Sequence[Image.Image]) -> np.ndarray:
        """The policy's state for decoded images. Shape: (len(images), dim)."""
        out = [
            self.extractor.extract(list(images[i : i + self.batch_size]))
            for i in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.extractor.dim))

    # -- compressing -----------------------------------------------------------

    def decode(self, source: ImageInput) -> Image.Image:
        """Any input as 8-bit RGB, reduced to the agent's photo cap if larger
        (decoded at the size needed); never below the service's minimum side,
        which a reduced photo must still meet.

        Raises:
            ImageError: unusable input (one line).
        """
        cap = self.card.photo_cap
        if cap is not None:
            cap = max(cap, self.limits.min_side)
        if isinstance(source, Image.Image):
            return cap_photo(source if source.mode == "RGB" else to_rgb(source), cap)
        return load_capped(source, cap, max_pixels=self.max_pixels)

    def encode(
        self, image: Image.Image, action: Action, source: ImageInput | None = None
    ) -> Upload:
        """``image`` encoded with ``action`` inside the service's limits."""
        data = encode(image, action, self.limits)
        with Image.open(io.BytesIO(data)) as sent:
            width, height = sent.size
        return Upload(data, action, action.mime, width, height, _source_bytes(source))

    def compress(self, source: ImageInput) -> Upload:
        """The upload the agent chooses for one image.

        Raises:
            ImageError: unusable input, or no setting fits it under the service's
                limits (one line naming the input).
        """
        result = self.compress_many([source])[0]
        if isinstance(result, ImageError):
            raise ImageError(f"{_describe(source)}: {result}")
        return result

    def compress_many(self, sources: Iterable[ImageInput]) -> list[Upload | ImageError]:
        """:meth:`compress` for many images, one result an input, in order: its
        upload, or the :class:`ImageError` that says why it has none (unusable, or
        no setting fits it under the service's limits). One bad input never costs
        the others their uploads. Decoding and encoding run in a thread pool
        (Pillow releases the GIL), the features a batch at a time."""
        sources = list(sources)
        results: list[Upload | ImageError] = []
        with _mapper(len(sources)) as map_:
            for start in range(0, len(sources), self.batch_size):
                chunk = sources[start : start + self.batch_size]
                decoded = list(map_(self._try_decode, chunk))
                images = {
                    i: image
                    for i, image in enumerate(decoded)
                    if isinstance(image, Image.Image)
                }
                actions: list[Action | None] = [None] * len(chunk)
                if images:
                    chosen = self.choose(self.features(list(images.values())))
                    for i, index in zip(images, chosen.tolist(), strict=True):
                        actions[i] = self.actions[int(index)]
                results.extend(map_(self._try_encode, decoded, actions, chunk))
        return results

    def _try_decode(self, source: ImageInput) -> Image.Image | ImageError:
        try:
            return self.decode(source)
        except ImageError as err:
            return err

    def _try_encode(
        self, image: Image.Image | ImageError, action: Action | None, source: ImageInput
    ) -> Upload | ImageError:
        if isinstance(image, ImageError):
            return image
        assert action is not None, "every decoded image has its choice"
        try:
            return self.encode(image, action, source)
        except ImageError as err:
            return err


@contextmanager
def _mapper(count: int) -> Iterator[Callable[..., Iterator[Any]]]:
    """``map`` over a thread pool for many inputs; the plain one for a single
    input, which would only pay for the pool."""
    if count <= 1:
        yield map
        return
    with ThreadPoolExecutor(max_workers=model_threads()) as pool:
        yield pool.map


def _source_bytes(source: ImageInput | None) -> int | None:
    if isinstance(source, bytes):
        return len(source)
    if isinstance(source, str | Path):
        return Path(source).stat().st_size
    return None


def _describe(source: ImageInput) -> str:
    if isinstance(source, str | Path):
        return str(source)
    return "bytes input" if isinstance(source, bytes) else "image input"


def load_compressor(
    agent: str | Path = "lite0",
    *,
    actions: str | None = None,
    limits: UploadLimits = NO_LIMITS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Compressor:
    """:meth:`Compressor.load`: an exported folder (ONNX Runtime, no torch), else a
    shipped agent's name or an agent file (torch)."""
    from adacompress.device.exported import is_agent_folder

    if names_a_path(agent) and is_agent_folder(agent):
        return _load_export(agent, actions, limits, max_pixels)
    return _load_agent_file(agent, actions, limits, max_pixels)


def _load_export(
    folder: str | Path,
    actions: str | None,
    limits: UploadLimits,
    max_pixels: int,
) -> Compressor:
    """The agent ``adacompress export`` wrote to ``folder``, run by ONNX Runtime;
    the limits it was exported for unless others are given."""
    from adacompress.device.exported import load_exported

    card, extractor, exported = load_exported(folder)
    if limits == NO_LIMITS:
        limits = card.upload_limits()
    compressor = Compressor(
        exported,
        extractor,
        card.action_tuple(),
        limits=limits,
        max_pixels=max_pixels,
        card=card,
        source=str(folder),
        digest=card.digest(),
    )
    if compressor.candidates != exported.candidates:
        raise ValueError(
            f"agent {folder} was exported for other service limits; export "
            "it again with these"
        )
    return _trained_with(compressor, actions)


def _load_agent_file(
    agent: str | Path,
    actions: str | None,
    limits: UploadLimits,
    max_pixels: int,
) -> Compressor:
    """A shipped agent's name or an agent file, run by torch."""
    require(
        "torch",
        extra="train",
        package="adacompress",
        feature="an agent file (a device without torch loads what "
        "`adacompress export` writes)",
    )
    from adacompress.device.policies.files import load_policy

    path = resolve_agent(agent, actions)
    policy, metadata = load_policy(path)
    digest = file_digest(path)
    card, state = _agent_file_card(path, policy, metadata, digest)
    compressor = Compressor(
        policy,
        state,
        card.action_tuple(),
        limits=limits,
        max_pixels=max_pixels,
        card=card,
        metadata=metadata,
        source=str(path),
        digest=digest,
    )
    return _trained_with(compressor, actions)


def _trained_with(compressor: Compressor, actions: str | None) -> Compressor:
    """The loaded ``compressor``, if it was trained with the action set ``actions``
    (None: any).

    Raises:
        ValueError: another action set (one line).
    """
    card = compressor.card
    if actions is not None and card.action_set != actions:
        raise ValueError(
            f"agent {compressor.source} was trained with actions "
            f"{card.action_set!r}, not {actions!r}"
        )
    return compressor


def _agent_file_card(
    path: Path, policy: LearnedPolicy, metadata: dict[str, object], digest: str
) -> tuple[AgentCard, FeatureExtractor]:
    """The card an agent file's metadata describes and the feature extractor it
    names, checked against the policy's sizes.

    Raises:
        ValueError: the file is damaged (one line).
    """
    from adacompress.device.features import get_extractor

    try:
        card = AgentCard.from_metadata(
            metadata,
            policy=policy.settings.policy,
            threshold=policy.settings.sending_threshold,
            name=path.stem,
            source_sha256=digest,
        )
        state = get_extractor(card.features)
        if state.dim != policy.settings.state_dim:
            raise ValueError(
                f"its {card.features!r} state has {state.dim} numbers, its "
                f"policy reads {policy.settings.state_dim}"
            )
        if len(card.actions) != policy.settings.n_actions:
            raise ValueError(
                f"the policy has {policy.settings.n_actions} actions, the action "
                f"set {len(card.actions)}"
            )
        AnswerFeedback.from_metadata(metadata)  # the running system reads it
    except (TypeError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"damaged agent file: {path} ({reason})") from None
    return card, state


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes (an agent file: tens of kilobytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

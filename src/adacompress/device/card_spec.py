"""The parts of an agent card that make it a spec (docs/agent-card.md): the fixed
algorithm by name, the graphs' tensors, where the weights come from, what was
measured, and reference vectors a port checks itself against.

Each part is a small frozen dataclass that checks its fields (one line naming the
field) and reads itself from the card's JSON.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from adacompress.core.efficientnet import VIEW_RESAMPLING
from adacompress.device.card_fields import (
    MAX_TEXT,
    digest,
    integer,
    mapping,
    name_,
    number,
    sequence,
)
from adacompress.device.codec import (
    FALLBACK_QUALITIES,
    FALLBACK_SCALE,
    RESAMPLING,
    WEBP_METHOD,
)
from basekit.images import ALPHA_BACKGROUND

T = TypeVar("T")

MAX_REFERENCES = 16
MAX_METRICS = 16
MAX_STATE = 1 << 16
REFERENCE_FOLDER = "reference"
REFERENCE_NAME = re.compile(r"^reference/[a-z0-9][a-z0-9-]{0,40}\.(jpg|png|gif|tif)$")
"""A reference photo's path in an export: a plain name in ``reference/``."""


def _build(cls: type[T], data: Any, name: str, **converted: Any) -> T:
    """``cls`` from the JSON object ``data`` (its keys ``cls``'s fields), with
    ``converted`` values replacing the raw ones."""
    keys = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
    values = dict(mapping(name, data, keys))
    values.update(converted)
    try:
        return cls(**values)
    except TypeError as err:
        raise ValueError(f"{name}: {err}") from None


@dataclass(frozen=True)
class Algorithm:
    """The fixed steps around the graphs, by name (docs/agent-card.md writes each
    out): a port reads them here. A card naming other steps than the ones this
    package implements is refused.

    Attributes:
        view_resize: the filter that makes the network's view (Pillow's bicubic,
            antialiased when it reduces).
        photo_resize: the filter that reduces a photo to the photo cap and to an
            action's scale before encoding (Pillow's Lanczos, a = 3).
        rounding: how scaled sizes are rounded (Python's ``round``).
        alpha_background: the colour transparent pixels are composited onto.
        fallback_qualities: the qualities tried, in order, over ``max_bytes``.
        fallback_scale: then the size is stepped down by this at the lowest one.
        jpeg: the JPEG encoder's settings.
        webp_method: libwebp's ``method`` (speed/size trade-off).
    """

    view_resize: str = VIEW_RESAMPLING.name.lower()
    photo_resize: str = RESAMPLING.name.lower()
    rounding: str = "half-even"
    alpha_background: tuple[int, ...] = ALPHA_BACKGROUND
    fallback_qualities: tuple[int, ...] = FALLBACK_QUALITIES
    fallback_scale: float = FALLBACK_SCALE
    jpeg: str = (
        "libjpeg-turbo through Pillow at the action's quality: baseline, 4:2:0 "
        "chroma subsampling, the standard tables scaled to the quality, no "
        "optimisation pass, no metadata"
    )
    webp_method: int = WEBP_METHOD

    @classmethod
    def from_json(cls, data: Any) -> Algorithm:
        values = mapping("algorithm", data, None)
        lists = {
            key: tuple(sequence(f"algorithm.{key}", values[key], list, 8))
            for key in ("alpha_background", "fallback_qualities")
            if key in values
        }
        found = _build(cls, data, "algorithm", **lists)
        if found != cls():
            changed = [
                f.name
                for f in fields(cls)
                if getattr(found, f.name) != getattr(cls(), f.name)
            ]
            raise ValueError(
                f"algorithm.{changed[0]} is not what this adacompress implements "
                f"({getattr(cls(), changed[0])!r})"
            )
        return found


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of an exported graph; ``"batch"`` is the dynamic first
    axis."""

    graph: str
    kind: str
    name: str
    dtype: str
    shape: tuple[int | str, ...]

    @classmethod
    def from_json(cls, data: Any) -> TensorSpec:
        values = mapping("a tensor", data, None)
        shape = sequence("a tensor's shape", values.get("shape"), list, 8)
        for dim in shape:
            if dim != "batch":
                integer("a tensor's dimension", dim, 1, MAX_STATE)
        for key in ("graph", "kind", "name", "dtype"):
            name_(f"a tensor's {key}", values.get(key))
        return _build(cls, data, "a tensor", shape=tuple(shape))


def graph_tensors(input_size: int, views: int, dim: int) -> tuple[TensorSpec, ...]:
    """The tensors of an export whose state graph takes ``views`` views of
    ``input_size`` px a photo and makes ``dim`` numbers (what load checks the
    card's list against)."""
    return (
        TensorSpec(
            "state.onnx",
            "input",
            "pixels",
            "float32",
            ("batch", views, 3, input_size, input_size),
        ),
        TensorSpec("state.onnx", "input", "log_pixels", "float32", ("batch", 1)),
        TensorSpec("state.onnx", "output", "state", "float32", ("batch", dim)),
        TensorSpec("policy.onnx", "input", "state", "float32", ("batch", dim)),
        TensorSpec("policy.onnx", "output", "action", "int64", ("batch",)),
    )


@dataclass(frozen=True)
class Weights:
    """Where the frozen network inside the state graph comes from.

    Attributes:
        network: the architecture (``EfficientNet-Lite0``).
        file: the weights file it was exported from, and its ``sha256``.
        package: the registry package that ships that file, with its version.
        origin: who trained the weights and who converted them, with where.
        licence: the weights' licence (SPDX), and ``verified``: how it was checked.
    """

    network: str
    file: str
    sha256: str
    package: str
    origin: str
    licence: str
    verified: str

    def __post_init__(self) -> None:
        for key in ("network", "file", "package", "licence"):
            name_(f"weights.{key}", getattr(self, key))
        for key in ("origin", "verified"):
            name_(f"weights.{key}", getattr(self, key), MAX_TEXT)
        digest("weights.sha256", self.sha256)

    @classmethod
    def from_json(cls, data: Any) -> Weights:
        return _build(cls, data, "weights")


@dataclass(frozen=True)
class Metric:
    """What the agent did on a collection: ``size`` is the bytes it uploaded over
    the bytes of the reference uploads (JPEG q=75 of each whole photo),
    ``accuracy`` the share of photos whose reference top-1 label stayed in the
    top-k (the card's ``top_k``); ``command`` makes the numbers again."""

    data: str
    size: float
    accuracy: float
    command: str

    def __post_init__(self) -> None:
        name_("metrics.data", self.data, MAX_TEXT)
        name_("metrics.command", self.command, MAX_TEXT)
        number("metrics.size", self.size, 0.0, 100.0)
        number("metrics.accuracy", self.accuracy, 0.0, 1.0)

    @classmethod
    def from_json(cls, data: Any) -> Metric:
        return _build(cls, data, "a metric")


@dataclass(frozen=True)
class Reference:
    """One reference vector: a photo shipped in the export and what the agent makes
    of it, for a port to check itself against (docs/agent-card.md).

    Attributes:
        file: the photo, ``reference/<name>``, and its ``sha256``.
        what: what is odd about it (the preparation step it tests).
        size: width and height of what the agent sees (EXIF applied, capped).
        state: the state graph's output for it.
        action: the chosen action's key; None when the photo is skipped.
        upload: width, height and bytes of the upload (the bytes depend on the
            JPEG library: the card's ``versions`` say which made them).
        skipped: why no upload can be made, else None.
    """

    file: str
    sha256: str
    what: str
    size: tuple[int, int]
    state: tuple[float, ...]
    action: str | None
    upload: tuple[int, int, int] | None
    skipped: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.file, str) or not REFERENCE_NAME.match(self.file):
            raise ValueError("a reference file must be reference/<plain name>")
        digest("a reference's sha256", self.sha256)
        name_("a reference's what", self.what, MAX_TEXT)
        for value in self.size:
            integer("a reference's size", value, 1, 1 << 16)
        for number_ in self.state:
            number("a reference's state", number_)
        if self.action is not None:
            name_("a reference's action", self.action)
        for value in self.upload or ():
            integer("a reference's upload", value, 1, 1 << 40)
        if self.skipped is not None:
            name_("a reference's skipped", self.skipped, MAX_TEXT)
        if (self.upload is None) == (self.skipped is None):
            raise ValueError("a reference has an upload or a reason it has none")

    @classmethod
    def from_json(cls, data: Any) -> Reference:
        values = mapping("a reference", data, None)
        size = sequence("a reference's size", values.get("size"), list, 2)
        state = sequence("a reference's state", values.get("state"), list, MAX_STATE)
        upload = values.get("upload")
        if upload is not None:
            upload = tuple(sequence("a reference's upload", upload, list, 3))
            if len(upload) != 3:
                raise ValueError("a reference's upload is width, height, bytes")
        if len(size) != 2:
            raise ValueError("a reference's size is width, height")
        return _build(
            cls,
            data,
            "a reference",
            size=tuple(size),
            state=tuple(state),
            upload=upload,
        )


MAX_CALIBRATION_SETS = 8
MAX_PHOTOS = 1 << 30
GUARANTEE_METHODS = ("learn-then-test", "none")


@dataclass(frozen=True)
class CalibrationPhotos:
    """One collection of calibration photos behind a guarantee, and how many."""

    name: str
    photos: int

    def __post_init__(self) -> None:
        name_("guarantee.calibration's name", self.name)
        integer("guarantee.calibration's photos", self.photos, 1, MAX_PHOTOS)

    @classmethod
    def from_json(cls, data: Any) -> CalibrationPhotos:
        return _build(cls, data, "guarantee.calibration")


@dataclass(frozen=True)
class Guarantee:
    """The offline promise behind the threshold (docs/agent-card.md): with
    probability at least ``confidence`` over the calibration photos, the agent keeps
    at least ``target`` of the answers on photos drawn like them -- when ``holds``.
    ``method`` ``none``: no promise, and ``note`` says why.

    Attributes:
        method: ``learn-then-test`` or ``none``.
        holds: whether the method found a threshold it can promise.
        target: the accuracy promised (kept share of the answers).
        confidence: the probability the promise holds, over the calibration photos.
        calibration: the calibration photos, per collection.
        misses: the calibration photos the threshold lost.
        note: the promise, or why there is none, in words.
    """

    method: str
    holds: bool
    target: float | None = None
    confidence: float | None = None
    calibration: tuple[CalibrationPhotos, ...] = ()
    misses: int | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        if self.method not in GUARANTEE_METHODS:
            raise ValueError(
                f"guarantee.method must be one of {', '.join(GUARANTEE_METHODS)}"
            )
        if not isinstance(self.holds, bool):
            raise ValueError(
                f"guarantee.holds must be true or false, not {self.holds!r}"
            )
        sequence("guarantee.calibration", self.calibration, tuple, MAX_CALIBRATION_SETS)
        if not all(isinstance(c, CalibrationPhotos) for c in self.calibration):
            raise ValueError("guarantee.calibration must be a list of objects")
        if self.note is not None:
            name_("guarantee.note", self.note, MAX_TEXT)
        if self.method == "none":
            if self.holds or self.calibration or self.misses is not None:
                raise ValueError("guarantee.method none promises nothing")
            return
        number("guarantee.target", self.target, 0.0, 1.0)
        number("guarantee.confidence", self.confidence, 0.0, 1.0)
        if not self.calibration:
            raise ValueError("guarantee.calibration must name its photos")
        photos = sum(c.photos for c in self.calibration)
        integer("guarantee.misses", self.misses, 0, photos)

    @property
    def photos(self) -> int:
        """Calibration photos in all."""
        return sum(c.photos for c in self.calibration)

    @classmethod
    def from_json(cls, data: Any) -> Guarantee:
        values = mapping("guarantee", data, None)
        items = sequence(
            "guarantee.calibration",
            values.get("calibration", []),
            list,
            MAX_CALIBRATION_SETS,
        )
        return _build(
            cls,
            data,
            "guarantee",
            calibration=tuple(CalibrationPhotos.from_json(c) for c in items),
        )

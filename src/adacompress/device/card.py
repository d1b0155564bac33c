"""The agent card: what an agent is, typed, read once from its file or its export.

Everything a device needs to know besides the weights -- the actions (format, scale,
quality), the state it was trained on and how photos are prepared for it, the
trade-off it was trained for, the backend and the service limits -- in one frozen
dataclass with defaults stated once. An exported agent carries it as ``card.json``
beside its ONNX graph; an agent file's metadata is read into the same card.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from adacompress.core.efficientnet import CROP_PADDING, PIXEL_OFFSET, PIXEL_SCALE
from adacompress.core.limits import UploadLimits
from adacompress.core.objective import Objective
from adacompress.device.actions import Action, get_action_set
from adacompress.device.card_fields import MAX_ITEMS as MAX_ACTIONS
from adacompress.device.card_fields import MAX_TEXT
from adacompress.device.card_fields import digest as _digest
from adacompress.device.card_fields import integer as _integer
from adacompress.device.card_fields import mapping as _mapping
from adacompress.device.card_fields import name_ as _name
from adacompress.device.card_fields import number as _number
from adacompress.device.card_fields import sequence as _sequence
from adacompress.device.card_file import (
    CARD_FORMAT,
    FORMATS_READ,
    GRAPH_FILES,
    card_arguments,
    read_card_json,
)
from adacompress.device.card_spec import (
    MAX_METRICS,
    MAX_REFERENCES,
    Algorithm,
    Guarantee,
    Metric,
    Reference,
    TensorSpec,
    Weights,
)
from adacompress.device.policies.settings import POLICIES

MAX_PROBES = 8
INPUT_SIZES = (32, 512)
"""The smallest and largest side of the state graph's input."""

PROBE_SOURCES = ("photo", "view")
LIMIT_KEYS = ("formats", "min_side", "max_bytes", "candidates")
MIN_PHOTO_CAP, MAX_PHOTO_CAP = 32, 16384


@dataclass(frozen=True)
class Preprocessing:
    """How a photo becomes the state graph's input (``features.lite.state_views``):
    the centre ``input_size / (input_size + crop_padding)`` of the shorter side,
    resized bicubic to ``input_size``, scaled ``(x - offset) / scale``; then one probe
    view per ``probe_scales``. ``probe_from="photo"``: the photo downscaled (Lanczos)
    by the scale, then the same steps; ``"view"``: the view itself blurred to the
    detail a cloud's view would keep at that scale (cheap: small images only)."""

    input_size: int = 224
    crop_padding: int = CROP_PADDING
    offset: float = PIXEL_OFFSET
    scale: float = PIXEL_SCALE
    probe_scales: tuple[float, ...] = ()
    probe_from: str = "photo"

    def __post_init__(self) -> None:
        _integer("input_size", self.input_size, *INPUT_SIZES)
        _integer("crop_padding", self.crop_padding, 0, INPUT_SIZES[1])
        _number("offset", self.offset)
        if not 1e-6 <= abs(_number("scale", self.scale)) <= 1e6:
            raise ValueError(f"scale must be between 1e-6 and 1e6, not {self.scale}")
        _sequence("probe_scales", self.probe_scales, tuple, MAX_PROBES)
        for value in self.probe_scales:
            _number("a probe scale", value, 1 / 64, 1.0)
        if self.probe_from not in PROBE_SOURCES:
            raise ValueError(
                f"probe_from must be one of {', '.join(PROBE_SOURCES)}, "
                f"not {self.probe_from!r}"
            )

    @property
    def views(self) -> int:
        """Views a photo gives the state graph: its own and one per probe."""
        return 1 + len(self.probe_scales)


@dataclass(frozen=True)
class AgentCard:
    """An agent's description (see the module docstring; docs/agent-card.md).

    Attributes:
        name: the agent's name (a shipped agent's, or its file's stem).
        version: the adacompress version that made the card.
        source_sha256: the SHA-256 of the agent file it was exported from.
        intended_use: what it is for, and what not, in words.
        backend: the service it was trained against.
        features: the registered name of its state extractor.
        action_set: the name of its action set (``paper``, ``scale-quality``, ...).
        actions: the action keys; the policy's output ``i`` is ``actions[i]``.
        policy: ``survival`` or ``q``.
        threshold: the survival an action needs to be sent (survival policy).
        top_k, alpha, beta: the accuracy and reward it was trained with.
        target_accuracy: the accuracy its threshold was calibrated for, if any.
        guarantee: the offline promise behind its threshold (target, confidence,
            method, calibration photos, misses), or why there is none; None on
            cards made before it (they still load).
        preprocessing: how photos are prepared (exported agents).
        photo_cap: photos with a longer shorter side are first reduced to it, and
            the actions apply to the reduced photo
            (:mod:`adacompress.device.resolution`); None: every photo as it is.
        limits: the service limits the export's candidate mask was built for.
        versions: the versions that made the export.
        graphs: the SHA-256 of each graph file of the export (hex), which load
            checks before reading anything else of them.
        weights: where the frozen network inside the state graph comes from.
        metrics: what the agent did on held-out photos, with the commands.
        tensors: the graphs' inputs and outputs (checked against the graphs).
        algorithm: the fixed steps around the graphs, by name.
        reference: reference vectors (their photos' SHA-256 checked on load).

    Raises:
        ValueError: a field of the wrong type or out of range (one line): every
            check of a card, from a file or an export, is :func:`check_card`.
    """

    name: str = "agent"
    version: str = "unversioned"
    source_sha256: str | None = None
    intended_use: str | None = None
    backend: str = "lite0"
    features: str = "lite0"
    action_set: str = "paper"
    actions: tuple[str, ...] = ()
    policy: str = "q"
    threshold: float | None = None
    top_k: int = 5
    alpha: float = 1.0
    beta: float = 0.0
    target_accuracy: float | None = None
    guarantee: Guarantee | None = None
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    photo_cap: int | None = None
    limits: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    graphs: dict[str, str] = field(default_factory=dict)
    weights: Weights | None = None
    metrics: tuple[Metric, ...] = ()
    tensors: tuple[TensorSpec, ...] = ()
    algorithm: Algorithm = field(default_factory=Algorithm)
    reference: tuple[Reference, ...] = ()
    format: int = CARD_FORMAT

    def __post_init__(self) -> None:
        check_card(self)

    @classmethod
    def from_metadata(
        cls,
        metadata: Mapping[str, Any],
        *,
        policy: str = "q",
        threshold: float | None,
        name: str = "agent",
        source_sha256: str | None = None,
    ) -> AgentCard:
        """The card of an agent file: its saved metadata and policy settings, its
        name (the file's stem) and the SHA-256 of its bytes."""
        action_set = str(metadata.get("action_set", "paper"))
        keys = metadata.get("actions")
        actions = (
            tuple(str(k) for k in keys)
            if isinstance(keys, list | tuple)
            else tuple(a.key for a in get_action_set(action_set))
        )
        target = metadata.get("target_accuracy")
        cap = metadata.get("photo_cap")
        promise = metadata.get("guarantee")
        return cls(
            name=name,
            source_sha256=source_sha256,
            backend=str(metadata.get("backend", "lite0")),
            features=str(metadata.get("features", "lite0")),
            action_set=action_set,
            actions=actions,
            policy=policy,
            threshold=threshold,
            top_k=int(metadata.get("top_k", 5)),
            alpha=float(metadata.get("alpha", 1.0)),
            beta=float(metadata.get("beta", 0.0)),
            target_accuracy=None if target is None else float(target),
            guarantee=None if promise is None else Guarantee.from_json(promise),
            photo_cap=None if cap is None else int(cap),
        )

    @property
    def objective(self) -> Objective:
        """The trade-off it was trained for, its target included."""
        return Objective(self.alpha, self.beta, self.top_k, self.target_accuracy)

    def action_tuple(self) -> tuple[Action, ...]:
        """The actions, parsed."""
        return tuple(Action.from_key(key) for key in self.actions)

    def upload_limits(self) -> UploadLimits:
        """The limits the export was made for (none for an agent file)."""
        formats = self.limits.get("formats")
        return UploadLimits(
            formats=None if formats is None else frozenset(formats),
            min_side=int(self.limits.get("min_side") or 1),
            max_bytes=self.limits.get("max_bytes"),
        )

    def to_json(self) -> str:
        """The card as JSON, each action spelled out (format, scale, quality)."""
        data = asdict(self)
        data["actions"] = [
            {"key": a.key, "format": a.format, "scale": a.scale, "quality": a.quality}
            for a in self.action_tuple()
        ]
        return json.dumps(data, indent=2) + "\n"

    def digest(self) -> str:
        """The SHA-256 of the card as JSON: with the SHA-256 of every other file of
        the export inside, it names the whole export's content."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    @classmethod
    def read(cls, folder: str | Path) -> AgentCard:
        """The card of an exported agent.

        Raises:
            ValueError: missing, too large, not JSON or not a card (one line).
        """
        return cls.parse(*read_card_json(folder))

    @classmethod
    def parse(cls, data: dict[str, Any], path: str | Path) -> AgentCard:
        """The card the JSON object ``data`` read from ``path`` describes.

        Raises:
            ValueError: not a valid card (one line naming ``path``).
        """
        try:
            arguments, prep = card_arguments(data)
            return cls(**arguments, preprocessing=Preprocessing(**prep))
        except (KeyError, TypeError, ValueError, RecursionError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ValueError(f"damaged agent card {path}: {reason}") from None


def check_card(card: AgentCard) -> None:
    """Every check of a card, from a file or an export: each field's type and range
    (the card is read from untrusted files).

    Raises:
        ValueError: the first field that is wrong (one line).
    """
    if card.format not in FORMATS_READ or isinstance(card.format, bool):
        raise ValueError(f"format must be {CARD_FORMAT}, not {card.format!r}")
    for name in ("name", "version", "backend", "features", "action_set"):
        _name(name, getattr(card, name))
    if card.source_sha256 is not None:
        _digest("source_sha256", card.source_sha256)
    if card.intended_use is not None:
        _name("intended_use", card.intended_use, MAX_TEXT)
    if card.policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}")
    _sequence("actions", card.actions, tuple, MAX_ACTIONS)
    for key in card.actions:
        Action.from_key(_name("an action key", key))
    if card.threshold is not None:
        _number("threshold", card.threshold, 0.0, 1.0)
    _integer("top_k", card.top_k, 1, 1000)
    _number("alpha", card.alpha)
    _number("beta", card.beta)
    if card.target_accuracy is not None:
        _number("target_accuracy", card.target_accuracy, 0.0, 1.0)
    if card.guarantee is not None and not isinstance(card.guarantee, Guarantee):
        raise ValueError("guarantee must be an object")
    if not isinstance(card.preprocessing, Preprocessing):
        raise ValueError("preprocessing must be an object")
    cap = card.photo_cap
    if cap is not None and not (
        isinstance(cap, int) and MIN_PHOTO_CAP <= cap <= MAX_PHOTO_CAP
    ):
        raise ValueError(
            f"photo_cap must be a whole number of pixels in {MIN_PHOTO_CAP}.."
            f"{MAX_PHOTO_CAP}, not {cap!r}"
        )
    _check_export(card)


def _check_export(card: AgentCard) -> None:
    """What an export adds to an agent file's card: the service limits, the
    versions, the graphs' SHA-256 and the spec's parts."""
    _check_limits(card.limits, len(card.actions))
    _mapping("versions", card.versions, None)
    for value in card.versions.values():
        _name("a version", value)
    _mapping("graphs", card.graphs, GRAPH_FILES)
    for key, value in card.graphs.items():
        _digest(f"graphs[{key!r}]", value)
    parts = {
        "weights": (card.weights, Weights),
        "algorithm": (card.algorithm, Algorithm),
    }
    for name, (part, kind) in parts.items():
        if part is not None and not isinstance(part, kind):
            raise ValueError(f"{name} must be an object")
    lists = {
        "metrics": (card.metrics, Metric, MAX_METRICS),
        "tensors": (card.tensors, TensorSpec, 8),
        "reference": (card.reference, Reference, MAX_REFERENCES),
    }
    for name, (items, kind, most) in lists.items():
        _sequence(name, items, tuple, most)
        if not all(isinstance(item, kind) for item in items):
            raise ValueError(f"{name} must be a list of objects")
    files = [r.file for r in card.reference]
    if len(set(files)) != len(files):
        raise ValueError("reference lists a photo twice")


def _check_limits(limits: dict[str, Any], n_actions: int) -> None:
    """The service limits an export's candidate mask was built for."""
    limits = _mapping("limits", limits, LIMIT_KEYS)
    formats = limits.get("formats")
    if formats is not None:
        _sequence("limits.formats", formats, list, 16)
        for name in formats:
            _name("a format in limits.formats", name)
    if limits.get("min_side") is not None:
        _integer("limits.min_side", limits["min_side"], 1, 1 << 16)
    if limits.get("max_bytes") is not None:
        _integer("limits.max_bytes", limits["max_bytes"], 1024, 1 << 40)
    candidates = limits.get("candidates")
    if candidates is not None:
        _sequence("limits.candidates", candidates, list, MAX_ACTIONS)
        for index in candidates:
            _integer("a candidate", index, 0, n_actions - 1)
        if len(set(candidates)) != len(candidates):
            raise ValueError("limits.candidates lists an action twice")

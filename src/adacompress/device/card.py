"""The agent card: what an agent is, typed, read once from its file or its export.

Everything a device needs to know besides the weights -- the actions (format, scale,
quality), the state it was trained on and how photos are prepared for it, the
trade-off it was trained for, the backend and the service limits -- in one frozen
dataclass with defaults stated once. An exported agent carries it as ``card.json``
beside its ONNX graph; an agent file's metadata is read into the same card.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from adacompress.core.limits import UploadLimits
from adacompress.core.objective import Objective
from adacompress.device.actions import Action, get_action_set

CARD_FORMAT = 1
CARD_FILE = "card.json"
GRAPH_FILE = "agent.onnx"
MAX_CARD_BYTES = 1 << 20
"""A card is a few kilobytes; a larger file is refused before it is read."""


PROBE_SOURCES = ("photo", "view")
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
    crop_padding: int = 32
    offset: float = 127.0
    scale: float = 128.0
    probe_scales: tuple[float, ...] = ()
    probe_from: str = "photo"

    def __post_init__(self) -> None:
        if self.probe_from not in PROBE_SOURCES:
            raise ValueError(
                f"probe_from must be one of {', '.join(PROBE_SOURCES)}, "
                f"not {self.probe_from!r}"
            )


@dataclass(frozen=True)
class AgentCard:
    """An agent's description (see the module docstring).

    Attributes:
        backend: the service it was trained against.
        features: the registered name of its state extractor.
        action_set: the name of its action set (``paper``, ``scale-quality``, ...).
        actions: the action keys; the policy's output ``i`` is ``actions[i]``.
        policy: ``survival`` or ``q``.
        threshold: the survival an action needs to be sent (survival policy).
        top_k, alpha, beta: the accuracy and reward it was trained with.
        target_accuracy: the accuracy its threshold was calibrated for, if any.
        preprocessing: how photos are prepared (exported agents).
        photo_cap: photos with a longer shorter side are first reduced to it, and
            the actions apply to the reduced photo
            (:mod:`adacompress.device.resolution`); None: every photo as it is.
        limits: the service limits the export's candidate mask was built for.
        versions: the versions that made the export.
    """

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
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    photo_cap: int | None = None
    limits: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    format: int = CARD_FORMAT

    def __post_init__(self) -> None:
        cap = self.photo_cap
        if cap is not None and not (
            isinstance(cap, int) and MIN_PHOTO_CAP <= cap <= MAX_PHOTO_CAP
        ):
            raise ValueError(
                f"photo_cap must be a whole number of pixels in {MIN_PHOTO_CAP}.."
                f"{MAX_PHOTO_CAP}, not {cap!r}"
            )

    @classmethod
    def from_metadata(
        cls, metadata: Mapping[str, Any], *, policy: str = "q", threshold: float | None
    ) -> AgentCard:
        """The card of an agent file: its saved metadata and policy settings."""
        action_set = str(metadata.get("action_set", "paper"))
        keys = metadata.get("actions")
        actions = (
            tuple(str(k) for k in keys)
            if isinstance(keys, list | tuple)
            else tuple(a.key for a in get_action_set(action_set))
        )
        target = metadata.get("target_accuracy")
        cap = metadata.get("photo_cap")
        return cls(
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

    @classmethod
    def read(cls, folder: str | Path) -> AgentCard:
        """The card of an exported agent.

        Raises:
            ValueError: missing, too large, not JSON or not a card (one line).
        """
        path = Path(folder) / CARD_FILE
        try:
            if path.stat().st_size > MAX_CARD_BYTES:
                raise ValueError(f"agent card too large: {path}")
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise ValueError(f"cannot read agent card {path}: {err.strerror}") from None
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
            raise ValueError(f"damaged agent card {path}: {err}") from None
        if not isinstance(data, dict) or data.get("format") != CARD_FORMAT:
            raise ValueError(f"not an agent card (format {CARD_FORMAT}): {path}")
        try:
            prep = _preprocessing(data.pop("preprocessing"))
            keys = tuple(str(entry["key"]) for entry in data.pop("actions"))
            card = cls(**data, actions=keys, preprocessing=prep)
            card.action_tuple()
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"damaged agent card {path}: {err}") from None
        return card


def _preprocessing(data: Mapping[str, Any]) -> Preprocessing:
    return Preprocessing(
        **{**data, "probe_scales": tuple(float(s) for s in data["probe_scales"])}
    )

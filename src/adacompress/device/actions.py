"""Actions: how one image is encoded before upload (docs/formulas.md, "Action").

An action is plain data -- an image format, its quality and an optional downscale --
so other action sets plug in without touching the policies, which only ever see
indices.
"""

from __future__ import annotations

from dataclasses import dataclass

from basekit.registry import Registry

REFERENCE_QUALITY = 75
"""docs/formulas.md, "Reference upload": ``x_ref = J(x, 75)``."""

FORMATS: dict[str, tuple[str, str]] = {
    "jpeg": ("image/jpeg", ".jpg"),
    "webp": ("image/webp", ".webp"),
}
"""The formats the codec writes: name -> (media type, file extension)."""


@dataclass(frozen=True, order=True)
class Action:
    """One encoding setting: ``format`` at ``quality`` after an optional downscale."""

    quality: int
    scale: float = 1.0
    format: str = "jpeg"

    def __post_init__(self) -> None:
        if not 1 <= self.quality <= 100:
            raise ValueError(f"quality must be in 1..100, got {self.quality}")
        if not 0.0 < self.scale <= 1.0:
            raise ValueError(f"scale must be in (0, 1], got {self.scale}")
        if self.format not in FORMATS:
            raise ValueError(
                f"unknown format {self.format!r} (known: {', '.join(FORMATS)})"
            )

    @property
    def key(self) -> str:
        """Stable text key, used in caches, agents and reports: ``"15"``,
        ``"15@0.5"``, ``"webp:15@0.5"`` (JPEG, the paper's format, has no prefix)."""
        text = (
            str(self.quality) if self.scale == 1.0 else f"{self.quality}@{self.scale:g}"
        )
        return text if self.format == "jpeg" else f"{self.format}:{text}"

    @classmethod
    def from_key(cls, key: str) -> Action:
        """Inverse of :attr:`key`.

        Raises:
            ValueError: not an action key.
        """
        format_, _, rest = key.rpartition(":")
        quality, _, scale = rest.partition("@")
        try:
            return cls(int(quality), float(scale) if scale else 1.0, format_ or "jpeg")
        except ValueError:
            raise ValueError(f"not an action key: {key!r}") from None

    @property
    def mime(self) -> str:
        """Media type of the upload (``image/jpeg``)."""
        return FORMATS[self.format][0]

    @property
    def extension(self) -> str:
        """File extension of the upload (``.jpg``)."""
        return FORMATS[self.format][1]

    @property
    def dominated(self) -> bool:
        """A JPEG larger than the reference at full size: never more accurate (the
        reference's answer is the truth), always more bytes."""
        return (
            self.format == "jpeg"
            and self.scale == 1.0
            and self.quality > REFERENCE_QUALITY
        )


@dataclass(frozen=True, order=True)
class ReferenceUpload(Action):
    """The reference upload ``x_ref = J(x, 75)`` of the whole photo: what the caller
    sends without an agent, whose answer is the truth. It encodes as the action
    ``75`` does, but is never equal to it: once an agent caps a big photo
    (:mod:`adacompress.device.resolution`), its action ``75`` is the capped photo's
    upload, the reference still the whole photo's."""


REFERENCE_ACTION: Action = ReferenceUpload(REFERENCE_QUALITY)

ACTION_SETS: Registry[tuple[Action, ...]] = Registry("action set")
register_action_set = ACTION_SETS.register
get_action_set = ACTION_SETS.build


@register_action_set("paper")
def paper_actions() -> tuple[Action, ...]:
    """docs/formulas.md, "Action": ``c in {5, 15, ..., 95}``, ten qualities."""
    return tuple(Action(q) for q in range(5, 100, 10))


SCALES = (1.0, 0.75, 0.5, 0.35, 0.25)
SCALE_QUALITIES = (5, 15, 35, 55, 75)


@register_action_set("scale-quality")
def scale_quality_actions() -> tuple[Action, ...]:
    """Downscale, then encode: five scales x five qualities (25 actions), the grid
    chosen on train images by ``benchmarks/research/action_grid.py``."""
    return tuple(Action(q, s) for s in SCALES for q in SCALE_QUALITIES)


@register_action_set("webp-scale-quality")
def webp_scale_quality_actions() -> tuple[Action, ...]:
    """The scale-quality grid in WebP: a candidate for services that accept WebP
    (Google Vision does, Rekognition does not); no shipped agent uses it yet."""
    return tuple(Action(q, s, "webp") for s in SCALES for q in SCALE_QUALITIES)

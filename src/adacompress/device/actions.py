"""Actions: how one image is encoded before upload (SPEC.md, "Action").

An action is plain data -- a JPEG quality plus an optional downscale -- so other
action sets plug in without touching the policies, which only ever see indices.
"""

from __future__ import annotations

from dataclasses import dataclass

from adacompress.core.registry import Registry

REFERENCE_QUALITY = 75
"""SPEC.md, "Reference upload": ``x_ref = J(x, 75)``."""


@dataclass(frozen=True, order=True)
class Action:
    """One encoding setting: JPEG ``quality`` after an optional downscale."""

    quality: int
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.quality <= 100:
            raise ValueError(f"JPEG quality must be in 1..100, got {self.quality}")
        if not 0.0 < self.scale <= 1.0:
            raise ValueError(f"scale must be in (0, 1], got {self.scale}")

    @property
    def key(self) -> str:
        """Stable text key, used in caches and reports: ``"15"`` or ``"15@0.5"``."""
        return (
            str(self.quality) if self.scale == 1.0 else f"{self.quality}@{self.scale:g}"
        )

    @classmethod
    def from_key(cls, key: str) -> Action:
        """Inverse of :attr:`key`.

        Raises:
            ValueError: not an action key.
        """
        quality, _, scale = key.partition("@")
        try:
            return cls(int(quality), float(scale) if scale else 1.0)
        except ValueError:
            raise ValueError(f"not an action key: {key!r}") from None

    @property
    def dominated(self) -> bool:
        """Larger than the reference at full size: never more accurate (the
        reference's answer is the truth), always more bytes."""
        return self.scale == 1.0 and self.quality > REFERENCE_QUALITY


REFERENCE_ACTION = Action(REFERENCE_QUALITY)

ACTION_SETS: Registry[tuple[Action, ...]] = Registry("action set")
register_action_set = ACTION_SETS.register
get_action_set = ACTION_SETS.build


@register_action_set("paper")
def paper_actions() -> tuple[Action, ...]:
    """SPEC.md, "Action": ``c in {5, 15, ..., 95}``, ten qualities."""
    return tuple(Action(q) for q in range(5, 100, 10))


SCALES = (1.0, 0.75, 0.5, 0.35, 0.25)
SCALE_QUALITIES = (5, 15, 35, 55, 75)


@register_action_set("scale-quality")
def scale_quality_actions() -> tuple[Action, ...]:
    """Downscale, then encode: five scales x five qualities (25 actions), the grid
    chosen on train images by ``benchmarks/research/action_grid.py``."""
    return tuple(Action(q, s) for s in SCALES for q in SCALE_QUALITIES)

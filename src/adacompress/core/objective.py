"""What an upload is worth: its accuracy against the reference, its size against the
reference's, and the trade-off between the two (docs/formulas.md).

One :class:`Objective` holds the trade-off's constants; metrics, fitting,
calibration and the runtime's lessons all score through it, and nothing changes it
in place (a calibration tries other weights with :meth:`Objective.with_alpha`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np

from adacompress.core.labels import Answer

Value = TypeVar("Value", float, np.ndarray)


def accuracy(reference: Answer, compressed: Answer, *, top_k: int = 5) -> float:
    """``A_c``: 1 if the reference's top-1 label is among the compressed top-k, else 0.

    ``top_k=1`` is the strict form (the authors' code uses the top-5 form).
    """
    if not reference or not compressed:
        return 0.0
    truth = reference[0].class_id
    return float(any(label.class_id == truth for label in compressed[:top_k]))


def strict_accuracy(reference: Answer, compressed: Answer) -> float:
    """Top-1 of the compressed upload equals top-1 of the reference."""
    return accuracy(reference, compressed, top_k=1)


def size_ratio(compressed_bytes: int, reference_bytes: int) -> float:
    """``Δs = s_c / s_ref``."""
    if reference_bytes <= 0:
        raise ValueError("reference size must be positive")
    return compressed_bytes / reference_bytes


def check_target(target: float) -> None:
    """Raises ValueError (one line) unless ``target`` is an accuracy in (0, 1]."""
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target accuracy must be in (0, 1], got {target}")


@dataclass(frozen=True)
class StepResult:
    """What one upload is worth against its reference: accuracy, strict (top-1)
    accuracy, size ratio, and both sizes in bytes."""

    accuracy: float
    strict_accuracy: float
    size_ratio: float
    nbytes: int
    reference_bytes: int


@dataclass(frozen=True)
class Objective:
    """The trade-off an agent is trained for and judged by.

    Args:
        alpha: weight of accuracy in the reward ``R = α·A_c − Δs + β``.
        beta: the reward's offset (the authors' code: α = 1, β = 0).
        top_k: accuracy counts the reference's top-1 within the compressed top-k.
        target: the accuracy the agent was calibrated to keep, if any.
    """

    alpha: float = 1.0
    beta: float = 0.0
    top_k: int = 5
    target: float | None = None

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"--top-k must be at least 1, got {self.top_k}")
        if self.target is not None:
            check_target(self.target)

    def accuracy(self, reference: Answer, compressed: Answer) -> float:
        """``A_c`` at this objective's ``top_k``."""
        return accuracy(reference, compressed, top_k=self.top_k)

    def score(
        self,
        reference: Answer,
        compressed: Answer,
        *,
        nbytes: int,
        reference_bytes: int,
    ) -> StepResult:
        """What an upload of ``nbytes`` answered ``compressed`` is worth against the
        reference upload's answer and size."""
        return StepResult(
            accuracy=self.accuracy(reference, compressed),
            strict_accuracy=strict_accuracy(reference, compressed),
            size_ratio=size_ratio(nbytes, reference_bytes),
            nbytes=nbytes,
            reference_bytes=reference_bytes,
        )

    def reward(self, acc: Value, ratio: Value) -> Value:
        """``R = α·A_c − Δs + β`` of one upload, or elementwise of arrays."""
        return self.alpha * acc - ratio + self.beta

    def with_alpha(self, alpha: float) -> Objective:
        """The same objective weighing accuracy by ``alpha`` (a calibration's try)."""
        return replace(self, alpha=alpha)

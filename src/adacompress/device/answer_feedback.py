"""What the cloud's answer to an upload says about whether the upload lost the
reference's answer: free evidence on every photo the agent sends alone
(docs/formulas.md, "Threshold control").

A logistic model ``P(lost) = sigmoid(w_top1 · top1 + w_margin · margin + w_bias)`` of
the answer's top-1 score and its lead over the second label, fitted on every
(training photo, candidate upload) the agent was trained on, and ``rate``: its mean
over the agent's own uploads on those photos at ``threshold``, the one that meets the
accuracy target there on average (cross-validated; the running system's control
starts from it). An answer the cloud is less sure of than that says the stream is
harder than training; the threshold control climbs by the difference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from adacompress.core.labels import Label

METADATA_KEY = "answer_feedback"
"""Where an agent file's metadata keeps the model."""
MAX_WEIGHT = 1e3
"""The largest weight a model read from an (untrusted) agent file may have."""


def confidence(answer: Sequence[Label]) -> tuple[float, float]:
    """An answer's top-1 score and its margin over the second label's (0, 0 for an
    empty answer)."""
    if not answer:
        return 0.0, 0.0
    top1 = float(answer[0].score)
    return top1, top1 - (float(answer[1].score) if len(answer) > 1 else 0.0)


@dataclass(frozen=True)
class AnswerFeedback:
    """The model: ``weights`` (top-1, margin, bias), and the agent's resting
    ``rate`` at survival ``threshold``."""

    weights: tuple[float, float, float]
    rate: float
    threshold: float

    def __post_init__(self) -> None:
        if len(self.weights) != 3 or not all(
            isinstance(w, float) and math.isfinite(w) and abs(w) <= MAX_WEIGHT
            for w in self.weights
        ):
            raise ValueError(
                f"answer_feedback: weights must be 3 finite numbers within "
                f"±{MAX_WEIGHT:g}"
            )
        if not isinstance(self.rate, float) or not 0.0 < self.rate < 1.0:
            raise ValueError("answer_feedback: rate must be a number in (0, 1)")
        if not isinstance(self.threshold, float) or not 0.0 < self.threshold < 1.0:
            raise ValueError("answer_feedback: threshold must be a number in (0, 1)")

    def lost(self, top1: float | np.ndarray, margin: float | np.ndarray) -> Any:
        """The model's probability that an upload lost the answer."""
        w = self.weights
        return 1.0 / (1.0 + np.exp(-(w[0] * top1 + w[1] * margin + w[2])))

    def excess(self, answer: Sequence[Label]) -> float:
        """How much less sure the cloud is of ``answer`` than of the agent's uploads
        on the training photos (positive: harder)."""
        return float(self.lost(*confidence(answer))) - self.rate

    def to_metadata(self) -> dict[str, Any]:
        return {
            "weights": list(self.weights),
            "rate": self.rate,
            "threshold": self.threshold,
        }

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> AnswerFeedback | None:
        """The model an agent file's metadata holds (None: it has none).

        Raises:
            ValueError: a model that is not 3 bounded weights and a rate (one line).
        """
        raw = metadata.get(METADATA_KEY)
        if raw is None:
            return None
        if not isinstance(raw, dict) or set(raw) != {"weights", "rate", "threshold"}:
            raise ValueError(
                "answer_feedback must hold exactly weights, rate and threshold"
            )
        weights = raw["weights"]
        if not isinstance(weights, list | tuple) or len(weights) != 3:
            raise ValueError("answer_feedback: weights must be 3 numbers")
        numbers = [w for w in weights if type(w) in (int, float)]
        rate, threshold = raw["rate"], raw["threshold"]
        if len(numbers) != 3 or not {type(rate), type(threshold)} <= {int, float}:
            raise ValueError(
                "answer_feedback: weights, rate and threshold must be numbers"
            )
        w0, w1, w2 = (float(w) for w in numbers)
        return cls((w0, w1, w2), float(rate), float(threshold))


def fit_weights(
    top1: np.ndarray, margin: np.ndarray, lost: np.ndarray
) -> tuple[float, float, float]:
    """Logistic regression of ``lost`` on top-1 score and margin (Newton steps, a
    small ridge so that a separable table still gives finite weights)."""
    x = np.column_stack([top1.ravel(), margin.ravel(), np.ones(top1.size)])
    y = np.asarray(lost, dtype=np.float64).ravel()
    w = np.zeros(3)
    for _ in range(25):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        grad = x.T @ (p - y) + 1e-3 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + 1e-3 * np.eye(3)
        w -= np.linalg.solve(hess, grad)
    return float(w[0]), float(w[1]), float(w[2])

"""Accuracy, size ratio and reward of one upload (SPEC.md, AdaCompress section)."""

from __future__ import annotations

from adacompress.core.labels import Answer


def accuracy(reference: Answer, compressed: Answer, *, top_k: int = 5) -> float:
    """``A_c``: 1 if the reference's top-1 label is among the compressed top-k, else 0.

    SPEC.md, "Accuracy of one upload" (the authors' code); ``top_k=1`` is the strict
    form.
    """
    if not reference or not compressed:
        return 0.0
    truth = reference[0].class_id
    return float(any(label.class_id == truth for label in compressed[:top_k]))


def strict_accuracy(reference: Answer, compressed: Answer) -> float:
    """Top-1 of the compressed upload equals top-1 of the reference."""
    return accuracy(reference, compressed, top_k=1)


def size_ratio(compressed_bytes: int, reference_bytes: int) -> float:
    """``Δs = s_c / s_ref`` (SPEC.md, "Size ratio")."""
    if reference_bytes <= 0:
        raise ValueError("reference size must be positive")
    return compressed_bytes / reference_bytes


def reward(acc: float, ratio: float, *, alpha: float = 1.0, beta: float = 0.0) -> float:
    """``R = α·A_c − Δs + β`` (SPEC.md, "Reward"; the authors' code: α = 1, β = 0)."""
    return alpha * acc - ratio + beta

"""What a cloud answers: a ranked list of labels with scores, and the ImageNet names."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Label:
    """One entry of a cloud's ranked answer; ``score`` is in [0, 1]."""

    class_id: int
    name: str
    score: float


Answer = list[Label]
"""A cloud's answer for one image, best label first."""


@cache
def imagenet_classes() -> tuple[tuple[str, str], ...]:
    """The 1000 ImageNet-1k classes in index order, as ``(wnid, name)`` pairs."""
    text = resources.files("adacompress").joinpath("imagenet_classes.tsv").read_text()
    rows = [line.split("\t") for line in text.splitlines() if line]
    return tuple((wnid, name) for _, wnid, name in rows)

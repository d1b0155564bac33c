"""What a cloud answers: a ranked list of labels with scores, and the ImageNet names."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from basekit.json_text import fits, read_json


@dataclass(frozen=True)
class Label:
    """One entry of a cloud's ranked answer; ``score`` is in [0, 1]."""

    class_id: int
    name: str
    score: float


Answer = list[Label]
"""A cloud's answer for one image, best label first."""


def read_labels(
    text: object, *, max_labels: int, max_chars: int
) -> list[tuple[int, str, float]]:
    """Labels stored as JSON ``[[class id, name, score], ...]`` (a cache, a run's
    records), read back from a file that may be damaged.

    Raises:
        ValueError: not at most ``max_labels`` such triples with a finite score
            (one line).
    """
    value = read_json(text, max_chars=max_chars)
    if not isinstance(value, list) or len(value) > max_labels:
        raise ValueError(f"labels are not a list of at most {max_labels}")
    labels = []
    for item in value:
        if not isinstance(item, list) or len(item) != 3:
            raise ValueError("a label is not [class id, name, score]")
        class_id, name, score = item
        if not fits(class_id, int) or not fits(name, str) or not fits(score, float):
            raise ValueError("a label's class id, name or score has the wrong type")
        labels.append((class_id, name, float(score)))
    return labels


NAME_ID_OFFSET = 1_000_000
"""Ids derived from label names start here, far from the 1000 ImageNet ids."""


def name_class_id(name: str) -> int:
    """A stable id for a service label that has no ImageNet id (Google, Rekognition).

    The id is a hash of the lower-cased name, so metrics (which compare ``class_id``)
    then compare label names: "Cat" from one upload matches "cat" from another.
    """
    digest = hashlib.sha256(name.strip().lower().encode()).digest()
    return NAME_ID_OFFSET + int.from_bytes(digest[:6], "big")


@cache
def wnid_class_ids() -> dict[str, int]:
    """ImageNet wnid (``"n01440764"``) -> class index, for answers that carry wnids."""
    return {wnid: index for index, (wnid, _) in enumerate(imagenet_classes())}


@cache
def imagenet_classes() -> tuple[tuple[str, str], ...]:
    """The 1000 ImageNet-1k classes in index order, as ``(wnid, name)`` pairs."""
    text = (
        resources.files("adacompress.core").joinpath("imagenet_classes.tsv").read_text()
    )
    rows = [line.split("\t") for line in text.splitlines() if line]
    return tuple((wnid, name) for _, wnid, name in rows)

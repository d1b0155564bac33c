"""What a cloud answers: a ranked list of labels with scores, and the ImageNet names."""

from __future__ import annotations

import hashlib
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

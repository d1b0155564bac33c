"""The scenery's night photos for the research scripts that ask about them
(``night_oracle.py``, ``night_threshold.py``): the ``--day`` option and the night
versions of its photos (:mod:`adacompress.experiments.night`, cached)."""

from __future__ import annotations

import argparse
from pathlib import Path

from adacompress.core.datasets import imagenet_split, list_images
from adacompress.exchange.cache import default_cache_path
from adacompress.experiments.night import make_night_folder

TRAIN_DAY = 300
"""Training photos as the day with ``--day train`` (the scenery's own count)."""


def add_day(parser: argparse.ArgumentParser) -> None:
    """Add ``--day`` (default: the held-out test images; ``train``: training photos)."""
    parser.add_argument(
        "--day",
        default=None,
        help="folder of day photos (default: the held-out test images); 'train': "
        f"the first {TRAIN_DAY} training photos",
    )


def night_photos(day: str | None) -> tuple[list[Path], int]:
    """The night versions of ``--day``'s photos, and how many day photos were
    unreadable."""
    if day == "train":
        photos = imagenet_split("train")[:TRAIN_DAY]
    else:
        photos = list_images(day) if day else imagenet_split("test")
    night, unreadable = make_night_folder(photos, default_cache_path().parent / "night")
    return night, len(unreadable)

"""What the benchmarks share: the ``--smoke`` and ``--set`` options and the /proc
memory reader.

Not a benchmark. ``--smoke`` makes a benchmark run on a handful of images with one
repeat and tiny epochs, writing only to a temporary folder: it proves the script
still runs (CI runs every smoke, ``tests/test_benchmarks_smoke.py``); its numbers
mean nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

SMOKE_HELP = (
    "a few images, one repeat, tiny steps, output in a temporary folder: checks "
    "that the script runs (seconds); its numbers mean nothing"
)
SMOKE_IMAGES = 6
"""Images of each split that a smoke run sees."""


def add_smoke(parser: argparse.ArgumentParser) -> None:
    """Add ``--smoke`` (store_true) to ``parser``."""
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)


def add_settings(parser: argparse.ArgumentParser) -> None:
    """Add ``--set KEY=VALUE ...``: runtime constants by option name, JSON values
    (read back with :func:`settings_changes`)."""
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override runtime constants (JSON values: --set rise_margin=0)",
    )


def settings_changes(args: argparse.Namespace) -> dict[str, Any]:
    """What ``--set`` asked for, by option name."""
    items = (item.partition("=") for item in args.set)
    return {key: json.loads(value) for key, _, value in items}


def limit_splits(count: int = SMOKE_IMAGES) -> None:
    """Make ``imagenet_split`` return the first ``count`` images of each split,
    wherever it was imported (the library's settings and the calling script
    alike), for a smoke run. The split itself is unchanged: its first images."""
    from adacompress.core import datasets

    full: Callable[..., list[Path]] = getattr(
        datasets.imagenet_split, "__wrapped__", datasets.imagenet_split
    )

    def limited(*args: object, **kwargs: object) -> list[Path]:
        return full(*args, **kwargs)[:count]

    limited.__wrapped__ = full  # type: ignore[attr-defined]
    for module in list(sys.modules.values()):
        if getattr(module, "imagenet_split", None) is full:
            module.imagenet_split = limited  # type: ignore[attr-defined]


def memory_mb(pid: int | str = "self") -> dict[str, float]:
    """A process's resident memory now (``VmRSS``) and its peak (``VmHWM``) in MB,
    from ``/proc/PID/status`` (Linux); empty where it cannot be read (the process
    has gone, or not Linux)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        key: int(fields[key].split()[0]) / 1024
        for key in ("VmRSS", "VmHWM")
        if key in fields
    }


SMOKE_OUT = Path("out/smoke")
"""Where a smoke run writes what the full run writes under ``out/``."""


def smoke_path(path: str | Path) -> Path:
    """``path``'s name under :data:`SMOKE_OUT`: a smoke run never overwrites a
    real run's output."""
    return SMOKE_OUT / Path(path).name


SMOKE_OVERRIDES: dict[str, Any] = {"steps": 20, "calibration_folds": 2}
"""Training overrides of a smoke run: a few steps, cross-validation that fits
:data:`SMOKE_IMAGES` images."""

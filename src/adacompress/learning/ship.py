"""The one recipe that builds every shipped agent: ``adacompress ship [NAME...]``.

Each shipped agent (:data:`adacompress.device.zoo.ZOO`) is its recipe, a training
preset, on its backend's cloud: ``<backend>-scale-quality`` (each backend's default)
the ``shipped-scale-quality`` preset, ``<backend>-paper`` (the paper's ten qualities)
the ``shipped`` preset. Both train on the 700 training images of imagenet-samples
(calibration included) and never see the held-out test split. The JSON log beside
each agent records the command. Then the calibration-side fields are rewritten, weights
untouched (:mod:`adacompress.learning.recalibrate`, also ``adacompress ship
--recalibrate``): the survival threshold and its offline guarantee, and the survival
agents' answer feedback.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from adacompress.device.zoo import ZOO, agents_folder
from adacompress.learning.presets import TRAIN_PRESETS
from adacompress.learning.recalibrate import recalibrate
from adacompress.learning.train import TrainSettings, train
from basekit.settings_cli import unknown_choice


def recipe(
    name: str, out_dir: Path | None = None, cache: str | None = None
) -> TrainSettings:
    """The training settings of shipped agent ``name``.

    Raises:
        ValueError: no such shipped agent (one line).
    """
    if name not in ZOO:
        raise unknown_choice("shipped agent", name, ZOO)
    agent = ZOO[name]
    out = (out_dir or agents_folder()) / f"{name}.pt"
    return TRAIN_PRESETS.get(
        agent.recipe,
        {
            "cloud": {"backend": agent.backend, "cache": cache},
            "data": {"split": "train"},
            "out": str(out),
            "progress": False,
        },
    )


def ship(
    names: list[str], *, out_dir: Path | None = None, cache: str | None = None
) -> list[dict[str, Any]]:
    """Train the shipped agents ``names`` (default: all) into ``out_dir`` (default:
    the package's agents folder); returns their training logs."""
    logs = []
    for name in names or list(ZOO):
        command = shlex.join(["adacompress", "ship", name])
        logs.append(train(recipe(name, out_dir, cache), command=command))
        recalibrate([name], folder=out_dir, cache=cache)
    return logs

"""The one recipe that builds every shipped agent: ``adacompress ship [NAME...]``.

Each shipped agent (:data:`adacompress.device.zoo.ZOO`) is its recipe, a training
preset, on its backend's cloud: ``<backend>-scale-quality`` (each backend's default)
the ``shipped-scale-quality`` preset, ``<backend>-paper`` (the paper's ten qualities)
the ``shipped`` preset. Both train on the 700 training images of imagenet-samples
(calibration included) and never see the held-out test split. The JSON log beside
each agent records the command. Then the calibration-side fields are rewritten, weights
untouched (:mod:`adacompress.learning.recalibrate`, also ``adacompress ship
--recalibrate``): the survival threshold and its offline guarantee; and the survival
agents' answer feedback is fitted (``--answer-feedback``), its rate at the
cross-validated threshold.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from adacompress.core.datasets import imagenet_split
from adacompress.device.answer_feedback import METADATA_KEY, AnswerFeedback
from adacompress.device.policies.files import load_policy, save_policy
from adacompress.device.policies.survival import SurvivalPolicy
from adacompress.device.zoo import ZOO, AgentChoice, agents_folder
from adacompress.exchange.environment import open_agent_env
from adacompress.exchange.settings import CloudSettings
from adacompress.learning.answer_feedback import fit_answer_feedback
from adacompress.learning.presets import TRAIN_PRESETS
from adacompress.learning.recalibrate import recalibrate
from adacompress.learning.train import TrainSettings, train
from basekit.atomic import atomic_write_json
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
        add_answer_feedback(name, out_dir=out_dir, cache=cache)
    return logs


def add_answer_feedback(
    name: str, *, out_dir: Path | None = None, cache: str | None = None
) -> AnswerFeedback | None:
    """Fit shipped survival agent ``name``'s answer feedback on the training photos
    and write it into its agent file's metadata and its log, weights untouched
    (None: a Q-network agent, which has no threshold to steer). Its rate is taken
    at the cross-validated threshold, the one that meets the target on average,
    not at a safer guaranteed one (``ship --recalibrate``)."""
    if name not in ZOO:
        raise unknown_choice("shipped agent", name, ZOO)
    path = (out_dir or agents_folder()) / f"{name}.pt"
    cloud = CloudSettings(ZOO[name].backend, cache=cache)
    log_path = path.with_suffix(".json")
    log = json.loads(log_path.read_text())
    calibration = log.get("calibration") or {}
    at = calibration.get("cv_threshold")
    with open_agent_env(cloud, AgentChoice(str(path))) as (compressor, env):
        if not isinstance(compressor.learned, SurvivalPolicy):
            return None
        feedback = fit_answer_feedback(
            env, compressor, imagenet_split("train"), threshold=at
        )
    policy, metadata = load_policy(path)
    metadata[METADATA_KEY] = feedback.to_metadata()
    save_policy(policy, path, **metadata)
    log[METADATA_KEY] = {
        **feedback.to_metadata(),
        "command": shlex.join(["adacompress", "ship", "--answer-feedback", name]),
    }
    atomic_write_json(log_path, log)
    return feedback

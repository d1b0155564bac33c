"""Recalibrate shipped agents without retraining: ``adacompress ship --recalibrate``.

One pass over an agent file and its training log (``NAME.pt``, ``NAME.json``) that
rewrites the calibration-side fields and leaves the network's weights as they are.
Each field is a small function of the agent (:data:`FIELDS`): it reads the agent,
its log and the calibration photos' outcomes, and returns what changes -- entries of
the log's ``calibration``, entries of the agent file's metadata (which the agent's
card reads), and perhaps a new threshold. Another field is one more function.

``answer_feedback`` (:func:`answer_feedback_field`, also ``ship --answer-feedback``)
fits what the running system reads in the cloud's answers. ``guarantee``
(:func:`guarantee_field`) is Learn-then-Test
(:mod:`adacompress.learning.guarantee`) over the calibration photos, which are

- the 700 training photos, each scored out of fold: the rows of the log's
  calibration table (a network trained on the other four folds chose its upload);
- photos of other collections never in a test split (BSDS500 train and val, 300),
  each scored by the shipped agent itself: the emulated cloud is asked about every
  candidate upload once (the answer cache keeps them), and each threshold of the
  grid picks its upload from the agent's own predicted survival.

The survival agents' threshold becomes the guaranteed one; where none holds, the
cross-validated threshold stays and the record says no guarantee holds. The α-DQN
agents (``*-paper``) get no guarantee, and their record says why
(:data:`NO_GUARANTEE_Q`).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from adacompress.core.datasets import data_root, imagenet_split, list_images
from adacompress.device.answer_feedback import METADATA_KEY
from adacompress.device.policies.files import load_policy, save_policy
from adacompress.device.policies.survival import SurvivalPolicy
from adacompress.device.zoo import ZOO, AgentChoice, agents_folder
from adacompress.exchange.environment import open_agent_env
from adacompress.exchange.settings import CloudSettings
from adacompress.learning.answer_feedback import fit_answer_feedback
from adacompress.learning.candidates import candidate_table
from adacompress.learning.guarantee import (
    DEFAULT_DELTA,
    CalibrationSet,
    Guarantee,
    learn_then_test,
    misses_of,
)
from basekit.atomic import atomic_write_json
from basekit.settings_cli import unknown_choice

OUT_OF_FOLD = "imagenet-samples train, out of fold"
"""The training photos as calibration photos: each scored by a fold's network that
never saw it (the log's calibration table)."""
EXTRA_SETS = ("bsds500/train", "bsds500/val")
"""Other collections' photos never in any test split, under the data folder."""
NO_GUARANTEE_Q = (
    "none: this α-DQN agent's knob, alpha, is a training parameter -- each alpha is "
    "another network, and its calibration rows are the fold networks', not the "
    "shipped one's, so a test over them says nothing of the shipped network; the "
    "running system's certificate measures it live"
)


@dataclass(frozen=True)
class PhotoSet:
    """Calibration photos of one collection: their name and files."""

    name: str
    paths: tuple[Path, ...]


@dataclass
class Agent:
    """What a field function reads: the agent's name, file, policy, metadata and
    training log, and the pass's settings."""

    name: str
    file: Path
    policy: Any
    metadata: dict[str, Any]
    log: dict[str, Any]
    photo_sets: tuple[PhotoSet, ...]
    delta: float
    cache: str | None
    scored: dict[str, np.ndarray] = field(default_factory=dict)
    """misses per threshold of each extra photo set, once computed"""

    @property
    def calibration(self) -> dict[str, Any]:
        found = self.log.get("calibration")
        if not isinstance(found, dict):
            raise ValueError(f"{self.name}'s log has no calibration")
        return found


@dataclass
class Change:
    """What a field changes: the log's calibration entries, the agent file's
    metadata entries, and the survival threshold (None: unchanged)."""

    calibration: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    threshold: float | None = None


FieldFn = Callable[[Agent], Change]


def default_photo_sets(data: str | Path | None = None) -> tuple[PhotoSet, ...]:
    """BSDS500 train and val (300 photos, never in a test split), under the data
    folder (:func:`~adacompress.core.datasets.data_root`)."""
    root = data_root(data)
    return tuple(
        PhotoSet(f"BSDS500 {part.split('/')[1]}", tuple(list_images(root / part)))
        for part in EXTRA_SETS
    )


def threshold_misses(
    agent_file: Path,
    backend: str,
    thresholds: Sequence[float],
    photos: PhotoSet,
    *,
    cache: str | None = None,
) -> np.ndarray:
    """How many of ``photos`` the agent's upload loses at each threshold: the
    shipped agent's own survival, every candidate asked of the cloud once.

    Raises:
        ValueError: not a survival agent, or a photo that cannot be scored.
    """
    with open_agent_env(
        CloudSettings(backend, cache=cache), AgentChoice(agent=str(agent_file))
    ) as (compressor, env):
        table = candidate_table(env, compressor, list(photos.paths))
    if table.skipped:
        first = table.skipped[0]
        raise ValueError(f"cannot score {first.path}: {first.error}")
    if not np.isin(table.kept, (0.0, 1.0)).all():
        raise ValueError("an outcome that is neither kept nor lost")
    rows = np.arange(len(table.kept))
    lost = [len(rows) - table.kept[rows, table.chosen(t)].sum() for t in thresholds]
    return np.array([int(round(m)) for m in lost])


def cv_threshold(agent: Agent) -> float | None:
    """The cross-validated threshold (the one a guarantee replaces; kept apart in
    the log once replaced, so a rerun starts from it again)."""
    calibration = agent.calibration
    found = calibration.get("cv_threshold", calibration.get("threshold"))
    return None if found is None else float(found)


def ltt(agent: Agent) -> Guarantee:
    """Learn-then-Test on the out-of-fold training photos and the extra photo sets
    scored by the agent itself."""
    table = agent.calibration["table"]
    n_train = int(agent.log["n_images"])
    thresholds = [float(row["threshold"]) for row in table]
    misses = np.array([misses_of(row["cv_accuracy"], n_train) for row in table])
    sets = [CalibrationSet(OUT_OF_FOLD, n_train)]
    for photos in agent.photo_sets:
        if photos.name not in agent.scored:
            agent.scored[photos.name] = threshold_misses(
                agent.file,
                str(agent.metadata["backend"]),
                thresholds,
                photos,
                cache=agent.cache,
            )
        misses = misses + agent.scored[photos.name]
        sets.append(CalibrationSet(photos.name, len(photos.paths)))
    return learn_then_test(
        thresholds,
        [int(m) for m in misses],
        sum(s.photos for s in sets),
        target=float(agent.calibration["target_accuracy"]),
        delta=agent.delta,
        calibration=sets,
    )


def card_guarantee(found: Guarantee | None, note: str | None = None) -> dict[str, Any]:
    """The agent card's ``guarantee`` (docs/agent-card.md): the promise, or none
    and why."""
    if found is None:
        return {"method": "none", "holds": False, "note": note}
    return {
        "method": found.method,
        "holds": found.holds,
        "target": found.target,
        "confidence": found.confidence,
        "calibration": [
            {"name": c.name, "photos": c.photos} for c in found.calibration
        ],
        "misses": found.misses,
        "note": note or found.statement(),
    }


def guarantee_field(agent: Agent) -> Change:
    """The survival agent's threshold: Learn-then-Test's, else the cross-validated
    one kept (the record says no guarantee holds); the α-DQN's: none, and why."""
    if not isinstance(agent.policy, SurvivalPolicy):
        card = card_guarantee(None, NO_GUARANTEE_Q)
        return Change(calibration={"guarantee": card}, metadata={"guarantee": card})
    cv = cv_threshold(agent)
    found = ltt(agent)
    threshold = found.threshold if found.threshold is not None else cv
    record = {
        **found.to_json(),
        "statement": found.statement(),
        "replaces_cv_threshold": cv,
    }
    return Change(
        calibration={"threshold": threshold, "cv_threshold": cv, "guarantee": record},
        metadata={"guarantee": card_guarantee(found)},
        threshold=threshold,
    )


def answer_feedback_field(agent: Agent) -> Change:
    """The survival agent's answer feedback, fitted on the training photos, its rate
    at the cross-validated threshold (the one that meets the target on average:
    the running system steers to the target from there, not to a safer
    guarantee); none for an α-DQN agent, which has no threshold to steer."""
    if not isinstance(agent.policy, SurvivalPolicy):
        return Change()
    cloud = CloudSettings(str(agent.metadata["backend"]), cache=agent.cache)
    with open_agent_env(cloud, AgentChoice(agent=str(agent.file))) as (compressor, env):
        found = fit_answer_feedback(
            env, compressor, imagenet_split("train"), threshold=cv_threshold(agent)
        )
    record = found.to_metadata()
    return Change(calibration={METADATA_KEY: record}, metadata={METADATA_KEY: record})


FIELDS: dict[str, FieldFn] = {
    "guarantee": guarantee_field,
    "answer_feedback": answer_feedback_field,
}
"""The calibration-side fields a recalibration rewrites, in order."""


def recalibrate(
    names: Sequence[str],
    *,
    folder: Path | None = None,
    delta: float = DEFAULT_DELTA,
    photo_sets: tuple[PhotoSet, ...] | None = None,
    cache: str | None = None,
    fields: Sequence[str] = tuple(FIELDS),
) -> list[dict[str, Any]]:
    """Rewrite the calibration-side ``fields`` of the shipped agents ``names``
    (default: all) in ``folder`` (default: the package's agents folder), weights
    unchanged; returns each agent's new calibration record.

    Raises:
        ValueError: an unknown agent or field (one line).
    """
    folder = folder or agents_folder()
    sets = default_photo_sets() if photo_sets is None else photo_sets
    records = []
    for name in names or list(ZOO):
        if name not in ZOO:
            raise unknown_choice("shipped agent", name, ZOO)
        records.append(
            recalibrate_file(folder / f"{name}.pt", sets, delta, cache, fields)
        )
    return records


def recalibrate_file(
    file: Path,
    photo_sets: tuple[PhotoSet, ...],
    delta: float,
    cache: str | None,
    fields: Sequence[str],
) -> dict[str, Any]:
    """One agent file and its log, rewritten in one pass (see :func:`recalibrate`)."""
    import json

    for key in fields:
        if key not in FIELDS:
            raise unknown_choice("calibration field", key, FIELDS)
    policy, metadata = load_policy(file)
    log_path = file.with_suffix(".json")
    log = json.loads(log_path.read_text())
    agent = Agent(file.stem, file, policy, metadata, log, photo_sets, delta, cache)
    changes = [FIELDS[key](agent) for key in fields]
    for change in changes:
        log["calibration"].update(change.calibration)
        metadata.update(change.metadata)
        if change.threshold is not None:
            policy.settings = replace(policy.settings, threshold=change.threshold)
    command = ["adacompress", "ship", "--recalibrate", file.stem]
    log["recalibrated"] = {"command": shlex.join(command), "fields": list(fields)}
    save_policy(policy, file, **metadata)
    atomic_write_json(log_path, log)
    return {"name": file.stem, **log["calibration"], "table": None}

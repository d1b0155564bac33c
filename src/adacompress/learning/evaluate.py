"""Evaluate an agent beside every fixed action and the per-image oracle.

The report's keys are read by other tools (see README):
``backend, split, n_images, top_k, actions_set, target_accuracy, agent, fixed, oracle,
service_calls, skipped`` (and ``target_held`` when the agent has a target).
``size_ratio`` is aggregate traffic: total compressed bytes / total q=75 bytes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adacompress.cloud.service import ServiceError
from adacompress.device.actions import Action
from adacompress.exchange.cache import Outcome
from adacompress.exchange.calls import CallPlan, identify, plan_calls
from adacompress.exchange.environment import (
    FEATURE_CHUNK,
    CompressionEnv,
    Sample,
    Skipped,
    open_agent_env,
)
from adacompress.learning.settings import EvaluateSettings
from adacompress.learning.survey import Survey, answer_all
from basekit.atomic import atomic_write_json
from basekit.images import ImageError
from basekit.progress import Progress


@dataclass
class Collected:
    """Every action's outcome for every usable image."""

    samples: list[Sample]
    outcomes: list[dict[Action, Outcome]]
    skipped: list[Skipped]


def collect(
    env: CompressionEnv, paths: Sequence[Path], *, progress: bool = True
) -> Collected:
    """Features and the service's answer for every action (and the reference).

    A chunk of photos at a time, so each photo is decoded once for both.
    """
    kept: list[Sample] = []
    outcomes: list[dict[Action, Outcome]] = []
    skipped: list[Skipped] = []
    bar = Progress(len(paths), f"cloud {env.service.name}", enabled=progress)
    for start in range(0, len(paths), FEATURE_CHUNK):
        chunk = paths[start : start + FEATURE_CHUNK]
        samples, unusable = env.prepare(chunk, progress=False)
        skipped.extend(unusable)
        for sample in samples:
            try:
                outcomes.append(answer_all(env, sample))
                kept.append(sample)
            except (ServiceError, ImageError) as err:
                skipped.append(Skipped(str(sample.path), str(err)))
        env.release_photos()
        bar.update(len(chunk))
    bar.close()
    return Collected(kept, outcomes, skipped)


def summarize(
    env: CompressionEnv, collected: Collected, choices: Sequence[int] | None
) -> dict[str, Any]:
    """The report body: agent (if ``choices``), every fixed action, and the oracle."""
    table = Survey.full(env, collected.samples, collected.outcomes)
    reference_bytes = int(table.reference.sum())

    def scores(columns: Sequence[int]) -> dict[str, float]:
        accuracy, strict, nbytes = table.pick(columns)
        total = int(nbytes.sum())
        return {
            "size_ratio": total / reference_bytes if reference_bytes else float("nan"),
            "accuracy": float(np.mean(accuracy)),
            "strict_accuracy": float(np.mean(strict)),
        }

    n = len(collected.outcomes)
    report: dict[str, Any] = {"n_images": n, "reference_bytes": reference_bytes}
    if n == 0:
        return report
    if choices is not None:
        counts = Counter(env.actions[i].key for i in choices)
        report["agent"] = {
            **scores(choices),
            "actions": {a.key: counts.get(a.key, 0) for a in env.actions},
        }
        report["images"] = [
            per_image(table, row, env.actions[column], column)
            for row, column in enumerate(choices)
        ]
    report["fixed"] = {a.key: scores([j] * n) for j, a in enumerate(env.actions)}
    oracle_scores = scores(oracle_columns(table))
    report["oracle"] = {
        "size_ratio": oracle_scores["size_ratio"],
        "accuracy": oracle_scores["accuracy"],
    }
    return report


def per_image(table: Survey, row: int, action: Action, column: int) -> dict[str, Any]:
    """One image's row of the report: the agent's action and how it scored."""
    assert table.strict is not None
    return {
        "path": str(table.samples[row].path),
        "action": action.key,
        "bytes": int(table.sizes[row, column]),
        "reference_bytes": int(table.reference[row]),
        "accuracy": float(table.kept[row, column]),
        "strict_accuracy": float(table.strict[row, column]),
    }


def oracle_columns(table: Survey) -> list[int]:
    """Each image's smallest upload that keeps accuracy; the reference (-1) where
    none does."""
    keeping = table.kept == 1.0
    smallest = np.where(keeping, table.sizes, np.inf).argmin(axis=1)
    return [int(j) if keeping[i].any() else -1 for i, j in enumerate(smallest)]


def best_fixed(report: dict[str, Any], min_accuracy: float) -> tuple[str, dict] | None:
    """The smallest fixed action (by size ratio) at accuracy ≥ ``min_accuracy``."""
    eligible = [
        (key, row)
        for key, row in report["fixed"].items()
        if row["accuracy"] >= min_accuracy
    ]
    return min(eligible, key=lambda kv: kv[1]["size_ratio"]) if eligible else None


def target_report(target: object, body: dict[str, Any]) -> dict[str, Any]:
    """``target_accuracy`` (None when the agent was trained without one) and whether
    the agent's accuracy on these images reached it."""
    if not isinstance(target, int | float) or "agent" not in body:
        return {"target_accuracy": None}
    return {
        "target_accuracy": float(target),
        "target_held": body["agent"]["accuracy"] >= target,
    }


def plan_evaluation(settings: EvaluateSettings) -> CallPlan:
    """The calls :func:`evaluate` would make: every action and the reference of
    every image, less what is cached (nothing is sent)."""
    paths = settings.data.paths()
    with open_agent_env(
        settings.cloud,
        settings.choice,
        top_k=settings.top_k,
        max_pixels=settings.data.max_pixels,
    ) as (_, env):
        samples, _ = identify(env, paths, progress=settings.progress)
        return plan_calls(env, samples)


def evaluate(settings: EvaluateSettings) -> dict[str, Any]:
    """Run the evaluation; write the JSON report if asked and return it."""
    paths = settings.data.paths()
    with open_agent_env(
        settings.cloud,
        settings.choice,
        top_k=settings.top_k,
        max_pixels=settings.data.max_pixels,
    ) as (compressor, env):
        collected = collect(env, paths, progress=settings.progress)
        features = [s.features for s in collected.samples]
        choices = compressor.choose(np.stack(features)).tolist() if features else []
        body = summarize(env, collected, choices)
        report = {
            "backend": settings.cloud.backend,
            "split": (
                settings.data.split
                if settings.data.images is None
                else settings.data.images
            ),
            "n_images": body.pop("n_images"),
            "reference_bytes": body.pop("reference_bytes"),
            "top_k": settings.top_k,
            "actions_set": compressor.card.action_set,
            **target_report(compressor.card.target_accuracy, body),
            **body,
            "service_calls": asdict(env.calls()),
            "skipped": [asdict(s) for s in collected.skipped],
            "agent_file": compressor.source,
        }
    if settings.json:
        atomic_write_json(Path(settings.json), report)
    return report

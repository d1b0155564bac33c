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
from adacompress.device.actions import REFERENCE_ACTION, Action
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
    wanted = [REFERENCE_ACTION, *env.actions]
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
                outcomes.append(env.outcomes(sample, wanted))
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
    reference_bytes = sum(o[REFERENCE_ACTION].nbytes for o in collected.outcomes)

    def scores(picks: Sequence[Action]) -> dict[str, float]:
        results = [
            env.score(o[REFERENCE_ACTION], o[a])
            for o, a in zip(collected.outcomes, picks, strict=True)
        ]
        total = sum(r.nbytes for r in results)
        return {
            "size_ratio": total / reference_bytes if reference_bytes else float("nan"),
            "accuracy": float(np.mean([r.accuracy for r in results])),
            "strict_accuracy": float(np.mean([r.strict_accuracy for r in results])),
        }

    n = len(collected.outcomes)
    report: dict[str, Any] = {"n_images": n, "reference_bytes": reference_bytes}
    if n == 0:
        return report
    if choices is not None:
        picks = [env.actions[i] for i in choices]
        counts = Counter(action.key for action in picks)
        report["agent"] = {
            **scores(picks),
            "actions": {a.key: counts.get(a.key, 0) for a in env.actions},
        }
        report["images"] = [
            per_image(env, sample, outcome, action)
            for sample, outcome, action in zip(
                collected.samples, collected.outcomes, picks, strict=True
            )
        ]
    report["fixed"] = {a.key: scores([a] * n) for a in env.actions}
    oracle = [oracle_action(env, o) for o in collected.outcomes]
    oracle_scores = scores(oracle)
    report["oracle"] = {
        "size_ratio": oracle_scores["size_ratio"],
        "accuracy": oracle_scores["accuracy"],
    }
    return report


def per_image(
    env: CompressionEnv, sample: Sample, outcome: dict[Action, Outcome], action: Action
) -> dict[str, Any]:
    """One image's row of the report: the agent's action and how it scored."""
    result = env.score(outcome[REFERENCE_ACTION], outcome[action])
    return {
        "path": str(sample.path),
        "action": action.key,
        "bytes": result.nbytes,
        "reference_bytes": result.reference_bytes,
        "accuracy": result.accuracy,
        "strict_accuracy": result.strict_accuracy,
    }


def oracle_action(env: CompressionEnv, outcomes: dict[Action, Outcome]) -> Action:
    """The smallest upload that keeps accuracy; the reference where none does."""
    reference = outcomes[REFERENCE_ACTION]
    keeping = [
        a for a in env.actions if env.score(reference, outcomes[a]).accuracy == 1.0
    ]
    if not keeping:
        return REFERENCE_ACTION
    return min(keeping, key=lambda a: outcomes[a].nbytes)


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
            "service_calls": asdict(env.cache.stats),
            "skipped": [asdict(s) for s in collected.skipped],
            "agent_file": compressor.source,
        }
    if settings.json:
        atomic_write_json(Path(settings.json), report)
    return report

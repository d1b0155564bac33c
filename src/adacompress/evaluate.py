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
from tqdm import tqdm

from adacompress.agent import DQNAgent
from adacompress.backends import ServiceError, get_backend
from adacompress.cache import AnswerCache, Outcome, default_cache_path
from adacompress.codec import DEFAULT_MAX_PIXELS, REFERENCE_ACTION, Action, ImageError
from adacompress.datasets import resolve_images
from adacompress.environment import CompressionEnv, Sample, Skipped
from adacompress.features import get_extractor
from adacompress.shipped import agent_actions, choose_agent


@dataclass
class EvaluateSettings:
    """Settings of ``adacompress evaluate``."""

    backend: str = "lite0"
    """cloud service that answers the uploads"""
    agent: str | None = None
    """agent file; default: the agent shipped for the backend"""
    actions: str | None = None
    """action set of the shipped agent used when --agent is not given: paper or
    scale-quality (default: paper; with --agent, a check of its action set)"""
    images: str | None = None
    """folder of images, a .txt list of paths, or 'builtin'; default:
    imagenet-samples --split"""
    split: str = "test"
    """split of imagenet-samples when --images is not given: train, test or all"""
    json: str | None = None
    """write the report here"""
    plot: str | None = None
    """write the PNG plot here (default: beside --json)"""
    top_k: int = 5
    """accuracy: reference top-1 within the compressed top-k"""
    cache: str | None = None
    """SQLite cache of answers and features (default: $ADACOMPRESS_CACHE or .cache/)"""
    max_pixels: int = DEFAULT_MAX_PIXELS
    """skip images with more pixels than this"""
    min_side: int | None = None
    """never upload an image with a shorter side below this (default: the backend's
    own limit, 80 for rekognition)"""
    max_bytes: int | None = None
    """never upload more bytes than this per image (default: the backend's limit)"""
    progress: bool = True
    """show progress bars"""


@dataclass
class Collected:
    """Every action's outcome for every usable image."""

    samples: list[Sample]
    outcomes: list[dict[Action, Outcome]]
    skipped: list[Skipped]


def collect(
    env: CompressionEnv, paths: Sequence[Path], *, progress: bool = True
) -> Collected:
    """Features and the service's answer for every action (and the reference)."""
    samples, skipped = env.prepare(paths, progress=progress)
    wanted = [REFERENCE_ACTION, *env.actions]
    kept: list[Sample] = []
    outcomes: list[dict[Action, Outcome]] = []
    for sample in tqdm(
        samples, desc=f"cloud {env.service.name}", unit="img", disable=not progress
    ):
        try:
            outcomes.append(env.outcomes(sample, wanted))
            kept.append(sample)
        except (ServiceError, ImageError) as err:
            skipped.append(Skipped(str(sample.path), str(err)))
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
    report["fixed"] = {a.key: scores([a] * n) for a in env.actions}
    oracle = [oracle_action(env, o) for o in collected.outcomes]
    oracle_scores = scores(oracle)
    report["oracle"] = {
        "size_ratio": oracle_scores["size_ratio"],
        "accuracy": oracle_scores["accuracy"],
    }
    return report


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


def evaluate(settings: EvaluateSettings) -> dict[str, Any]:
    """Run the evaluation and write the JSON report and plot if asked."""
    from adacompress.plots import plot_evaluation
    from adacompress.storage import atomic_write_json

    agent_path = choose_agent(settings.backend, settings.agent, settings.actions)
    agent, meta = DQNAgent.load(agent_path)
    actions = agent_actions(meta)
    paths = resolve_images(settings.images, settings.split)
    with AnswerCache(settings.cache or default_cache_path()) as cache:
        env = CompressionEnv(
            get_backend(settings.backend),
            cache,
            actions=actions,
            extractor=get_extractor(str(meta.get("features", "lite0"))),
            top_k=settings.top_k,
            max_pixels=settings.max_pixels,
            min_side=settings.min_side,
            max_bytes=settings.max_bytes,
        )
        collected = collect(env, paths, progress=settings.progress)
        choices = [agent.act(s.features, explore=False) for s in collected.samples]
        body = summarize(env, collected, choices)
        report = {
            "backend": settings.backend,
            "split": settings.split if settings.images is None else settings.images,
            "n_images": body.pop("n_images"),
            "reference_bytes": body.pop("reference_bytes"),
            "top_k": settings.top_k,
            "actions_set": str(meta.get("action_set", "paper")),
            **target_report(meta.get("target_accuracy"), body),
            **body,
            "service_calls": asdict(cache.stats),
            "skipped": [asdict(s) for s in collected.skipped],
            "agent_file": str(agent_path),
        }
    if settings.json:
        atomic_write_json(Path(settings.json), report)
    plot_path = settings.plot or (
        str(Path(settings.json).with_suffix(".png")) if settings.json else None
    )
    if plot_path and report["n_images"]:
        plot_evaluation(report, Path(plot_path))
    return report

"""Train a policy on images against one cloud (SPEC.md, "Training environment").

Each step shows the next image (a seeded reshuffle every pass), the policy picks an
action, the environment uploads it and the reference and returns the result; with
full information every action's answer is learned from at once.
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from adacompress.core.datasets import DatasetError, resolve_images
from adacompress.device.actions import get_action_set
from adacompress.device.features import get_extractor
from adacompress.device.policies.base import LearnedPolicy
from adacompress.device.policies.files import save_policy
from adacompress.learning.calibrate import AlphaSearch, Calibration, ThresholdSearch
from adacompress.learning.environment import CompressionEnv, Sample, open_env
from adacompress.learning.fit import fit_policy
from adacompress.learning.settings import TrainSettings
from basekit.atomic import atomic_write_json


def train(
    settings: TrainSettings,
    calibration: Calibration | None = None,
    *,
    command: str | None = None,
) -> dict[str, Any]:
    """Train an agent; write it to ``settings.out`` and its log beside it.

    With ``settings.target_accuracy`` set, the reward weight (or the survival
    threshold) is first calibrated on the training images by k-fold
    cross-validation (:mod:`adacompress.learning.calibrate`), unless that
    ``calibration`` is given (benchmarks share one search between targets).
    ``command`` is recorded in the log: how to make this agent again.
    """
    if settings.data.images is None and settings.data.split == "test":
        raise DatasetError("refusing to train on the held-out test split")
    started = time.perf_counter()
    actions = get_action_set(settings.actions)
    extractor = get_extractor(settings.features)
    paths = resolve_images(
        settings.data.images, settings.data.split, settings.data.data
    )
    with open_env(
        settings.cloud, actions=actions, extractor=extractor, top_k=settings.top_k,
        alpha=settings.alpha, beta=settings.beta, max_pixels=settings.data.max_pixels,
    ) as env:  # fmt: skip
        samples, skipped = env.prepare(paths, progress=settings.progress)
        if settings.target_accuracy is not None:
            if calibration is None:
                calibration = calibrate(
                    env, samples, settings, settings.target_accuracy
                )
            settings = calibrated(settings, calibration)
            env.alpha = settings.alpha
        policy, history = fit_policy(
            env, samples, settings.agent, steps=settings.steps,
            full_information=settings.full_information, progress=settings.progress,
            skipped=skipped,
        )  # fmt: skip
        stats = asdict(env.cache.stats)
    out = Path(settings.out)
    save_policy(
        policy,
        out,
        backend=settings.cloud.backend,
        features=portable_features(settings.features),
        action_set=settings.actions,
        actions=[a.key for a in actions],
        top_k=settings.top_k,
        alpha=settings.alpha,
        beta=settings.beta,
        target_accuracy=settings.target_accuracy,
        train_images=len(samples),
        steps=settings.steps,
    )
    log: dict[str, Any] = {
        "command": command,
        "settings": asdict(settings),
        "agent_file": str(out),
        "n_images": len(samples),
        "history": history,
        "service_calls": stats,
        "skipped": [asdict(s) for s in skipped],
        "seconds": time.perf_counter() - started,
        "threads": torch.get_num_threads(),
    }
    if calibration is not None:
        log["calibration"] = asdict(calibration)
    atomic_write_json(out.with_suffix(".json"), log)
    return log


def calibrated(settings: TrainSettings, calibration: Calibration) -> TrainSettings:
    """``settings`` with what the calibration chose: alpha, and the survival
    threshold when it computed one."""
    agent = settings.agent
    if calibration.threshold is not None:
        agent = replace(agent, threshold=calibration.threshold)
    return replace(settings, alpha=calibration.alpha, agent=agent)


def portable_features(spec: str) -> str:
    """The extractor as the agent file records it: ``pirl:PATH`` / ``random:PATH``
    made absolute, so the agent rebuilds its extractor from any working directory."""
    kind, colon, path = spec.partition(":")
    return f"{kind}:{Path(path).resolve()}" if colon else spec


def search_for(
    env: CompressionEnv, samples: list[Sample], settings: TrainSettings
) -> AlphaSearch | ThresholdSearch:
    """The search of the policy: reward weight (q) or threshold (survival); one
    search answers any number of targets."""

    def fit(fold: list[Sample], seed: int) -> LearnedPolicy:
        agent = replace(settings.agent, seed=seed)
        policy, _ = fit_policy(
            env, fold, agent, steps=settings.steps,
            full_information=settings.full_information,
        )  # fmt: skip
        return policy

    if settings.agent.policy == "survival":
        return ThresholdSearch(
            env, samples, fit, settings.calibration_folds, alpha=settings.alpha
        )
    return AlphaSearch(env, samples, fit, settings.calibration_folds)


def calibrate(
    env: CompressionEnv, samples: list[Sample], settings: TrainSettings, target: float
) -> Calibration:
    """What meets ``target`` on cross-validation: the smallest reward weight (q
    policy) or the survival threshold of the smallest size (survival policy)."""
    return search_for(env, samples, settings).for_target(target)

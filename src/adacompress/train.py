"""Train the DQN agent on images against one cloud (SPEC.md, "Training environment").

Each step shows the next image (a seeded reshuffle every pass), the agent picks an
action, the environment uploads it and the reference and returns the reward.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from adacompress.agent import DQNAgent, DQNSettings
from adacompress.backends import ServiceError, get_backend
from adacompress.cache import AnswerCache, default_cache_path
from adacompress.codec import DEFAULT_MAX_PIXELS, ImageError, get_action_set
from adacompress.datasets import DatasetError, resolve_images
from adacompress.environment import CompressionEnv, Sample, Skipped
from adacompress.features import get_extractor
from adacompress.storage import atomic_write_json

if TYPE_CHECKING:
    from adacompress.calibrate import Calibration

LOG_EVERY = 100


@dataclass
class TrainSettings:
    """Settings of ``adacompress train`` (the agent's own are in DQNSettings)."""

    backend: str = "lite0"
    """cloud service that answers the uploads"""
    images: str | None = None
    """folder of training images, a .txt list of paths, or 'builtin'; default:
    imagenet-samples --split"""
    split: str = "train"
    """split of imagenet-samples when --images is not given (never 'test')"""
    out: str = "out/agent.pt"
    """where to write the trained agent; the JSON log goes beside it"""
    actions: str = "paper"
    """action set (registered name)"""
    features: str = "lite0"
    """state feature extractor: lite0, confidence, confidence-scales, stats, random,
    pirl:PATH (an encoder written by `pirl export`) or random:PATH (its untrained
    twin)"""
    steps: int = 7000
    """training steps (one image each)"""
    alpha: float = 1.0
    """reward weight of accuracy: R = alpha*A - size_ratio + beta"""
    beta: float = 0.0
    """reward offset"""
    top_k: int = 5
    """accuracy: reference top-1 within the compressed top-k"""
    target_accuracy: float | None = None
    """calibrate alpha on the training images (k-fold cross-validation) so the agent
    keeps this fraction of answers at the smallest size; replaces --alpha"""
    calibration_folds: int = 5
    """folds of the cross-validation behind --target-accuracy"""
    full_information: bool = False
    """learn from every action's reward on each image (each training image is uploaded
    at every action once, then cached) instead of the chosen action's only"""
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
    dqn: DQNSettings = field(default_factory=DQNSettings)
    """the agent's hyper-parameters"""


def train(
    settings: TrainSettings, calibration: Calibration | None = None
) -> dict[str, Any]:
    """Train an agent; write it to ``settings.out`` and its log beside it.

    With ``settings.target_accuracy`` set, alpha is first calibrated on the training
    images by k-fold cross-validation (:mod:`adacompress.calibrate`), unless that
    ``calibration`` is given (benchmarks share one search between targets).
    """
    from adacompress.calibrate import calibrate, check_target

    if settings.images is None and settings.split == "test":
        raise DatasetError("refusing to train on the held-out test split")
    if settings.target_accuracy is not None:
        check_target(settings.target_accuracy)  # before the costly preparation
    if settings.dqn.policy == "survival" and not settings.full_information:
        raise ValueError(
            "the survival policy learns from every action's answer on each image: "
            "add --full-information"
        )
    started = time.perf_counter()
    actions = get_action_set(settings.actions)
    extractor = get_extractor(settings.features)
    paths = resolve_images(settings.images, settings.split)
    with AnswerCache(settings.cache or default_cache_path()) as cache:
        env = CompressionEnv(
            get_backend(settings.backend),
            cache,
            actions=actions,
            extractor=extractor,
            top_k=settings.top_k,
            alpha=settings.alpha,
            beta=settings.beta,
            max_pixels=settings.max_pixels,
            min_side=settings.min_side,
            max_bytes=settings.max_bytes,
        )
        samples, skipped = env.prepare(paths, progress=settings.progress)
        if settings.target_accuracy is not None:
            if calibration is None:
                calibration = calibrate(
                    env, samples, settings, settings.target_accuracy
                )
            if calibration.threshold is not None:
                dqn = replace(settings.dqn, threshold=calibration.threshold)
                settings = replace(settings, dqn=dqn)
            settings = replace(settings, alpha=calibration.alpha)
            env.alpha = calibration.alpha
        agent, history = fit_agent(env, samples, settings, skipped)
        stats = asdict(cache.stats)
    out = Path(settings.out)
    agent.save(
        out,
        backend=settings.backend,
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
    log = {
        "settings": asdict(settings),
        "agent_file": str(out),
        "n_images": len(samples),
        "history": history,
        "service_calls": stats,
        "skipped": [asdict(s) for s in skipped],
        "seconds": time.perf_counter() - started,
    }
    if calibration is not None:
        log["calibration"] = asdict(calibration)
    atomic_write_json(out.with_suffix(".json"), log)
    return log


def portable_features(spec: str) -> str:
    """The extractor as the agent file records it: ``pirl:PATH`` / ``random:PATH``
    made absolute, so the agent rebuilds its extractor from any working directory."""
    kind, colon, path = spec.partition(":")
    return f"{kind}:{Path(path).resolve()}" if colon else spec


def fit_agent(
    env: CompressionEnv,
    samples: list[Sample],
    settings: TrainSettings,
    skipped: list[Skipped] | None = None,
) -> tuple[DQNAgent, list[dict[str, float]]]:
    """The training loop on prepared ``samples``; returns the agent and its log.

    Images the service fails on are dropped (and appended to ``skipped``).
    """
    if len(samples) < 2:
        raise DatasetError(f"need at least 2 usable images, found {len(samples)}")
    skipped = skipped if skipped is not None else []
    dqn = DQNSettings(
        **{
            **asdict(settings.dqn),
            "n_actions": len(env.actions),
            "state_dim": env.extractor.dim,
        }
    )
    if dqn.policy == "survival":
        dqn = replace(dqn, action_cost=action_cost(env, samples))
    agent = DQNAgent(dqn)
    rng = np.random.default_rng(dqn.seed)
    history: list[dict[str, float]] = []
    if dqn.standardize:
        agent.fit_feature_scaling(np.stack([s.features for s in samples]))
    order = list(rng.permutation(len(samples)))
    window: dict[str, list[float]] = {"reward": [], "accuracy": [], "size_ratio": []}
    losses: list[float] = []
    bar = tqdm(
        range(settings.steps), desc="train", unit="step", disable=not settings.progress
    )
    for step in bar:
        if len(order) < 2:
            order += list(rng.permutation(len(samples)))
        sample, next_sample = samples[order[0]], samples[order[1]]
        order.pop(0)
        action = agent.act(sample.features)
        try:
            if settings.full_information:
                results = env.step_all(sample)
                result = results[action]
            else:
                result = env.step(sample, action)
        except (ServiceError, ImageError) as err:
            skipped.append(Skipped(str(sample.path), str(err)))
            samples = [s for s in samples if s.path != sample.path]
            order = list(rng.permutation(len(samples)))
            if len(samples) < 2:
                raise DatasetError("too few usable images left") from None
            continue
        if settings.full_information:
            rewards = np.array([agent.signal(r) for r in results], dtype=np.float32)
            loss = agent.observe_all(sample.features, rewards, next_sample.features)
        else:
            loss = agent.observe(
                sample.features, action, agent.signal(result), next_sample.features
            )
        if loss is not None:
            losses.append(loss)
        window["reward"].append(result.reward)
        window["accuracy"].append(result.accuracy)
        window["size_ratio"].append(result.size_ratio)
        if (step + 1) % LOG_EVERY == 0 or step + 1 == settings.steps:
            row = {
                "step": step + 1,
                "charts/reward": float(np.mean(window["reward"])),
                "charts/accuracy": float(np.mean(window["accuracy"])),
                "charts/size_ratio": float(np.mean(window["size_ratio"])),
                "charts/epsilon": agent.epsilon,
                "losses/td_loss": float(np.mean(losses)) if losses else float("nan"),
            }
            history.append(row)
            bar.set_postfix(
                reward=f"{row['charts/reward']:.3f}",
                acc=f"{row['charts/accuracy']:.3f}",
                eps=f"{agent.epsilon:.3f}",
            )
            window = {key: [] for key in window}
            losses = []
    return agent, history


def action_cost(env: CompressionEnv, samples: list[Sample]) -> tuple[float, ...]:
    """Each action's mean size ratio over ``samples`` (every action's upload, cached).

    Raises:
        DatasetError: the service failed on every image.
    """
    ratios = []
    for sample in samples:
        try:
            ratios.append([r.size_ratio for r in env.step_all(sample)])
        except (ServiceError, ImageError):
            continue  # fit_agent drops this image when it meets it
    if not ratios:
        raise DatasetError("no image could be uploaded at every action")
    return tuple(round(float(c), 6) for c in np.mean(ratios, axis=0))

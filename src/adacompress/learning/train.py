"""Train a policy on images against one cloud (docs/formulas.md, "Training
environment").

:func:`train` reads top to bottom: prepare the images; survey them when a budget
limits the questions (else they are asked online as the policy learns); calibrate
for a target accuracy (:mod:`~adacompress.learning.calibrate`); fit
(:func:`~adacompress.learning.fit.fit`); save the agent and its log.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from adacompress.core.datasets import DatasetError
from adacompress.core.objective import Objective
from adacompress.device.actions import Action, get_action_set
from adacompress.device.answer_feedback import METADATA_KEY
from adacompress.device.features import FeatureExtractor, get_extractor
from adacompress.device.policies.base import LearnedPolicy
from adacompress.device.policies.files import POLICY_KINDS, load_policy, save_policy
from adacompress.device.zoo import AgentChoice
from adacompress.exchange.calls import CallPlan, identify, plan_calls
from adacompress.exchange.environment import (
    CompressionEnv,
    Sample,
    Skipped,
    open_agent_env,
    open_env,
)
from adacompress.learning.answer_feedback import fit_answer_feedback
from adacompress.learning.calibrate import Calibration, CalibrationSearch, FitFn
from adacompress.learning.fit import Online, fit
from adacompress.learning.settings import TrainSettings
from adacompress.learning.survey import Predictor, Survey, prior_belief, survey
from basekit.atomic import atomic_write_json

BELIEF_STEPS = 300
"""Training steps of the model that guides the survey's questions."""
BELIEF_MIN_IMAGES = 20
"""Images surveyed before a model guides the questions (before: bisection)."""


def train(
    settings: TrainSettings,
    calibration: Calibration | None = None,
    *,
    command: str | None = None,
) -> dict[str, Any]:
    """Train an agent; write it to ``settings.out`` and its log beside it.

    Top to bottom: prepare the images, survey them when a budget limits the
    questions, calibrate, fit, save. With ``settings.target_accuracy`` set, the
    reward weight (or the survival threshold) is first calibrated on the training
    images by k-fold cross-validation (:mod:`adacompress.learning.calibrate`),
    unless that ``calibration`` is given (benchmarks share one search between
    targets). ``command`` is recorded in the log: how to make this agent again.
    """
    started = time.perf_counter()
    settings, actions, extractor = prepare(settings)
    paths = settings.data.paths()
    with open_env(
        settings.cloud,
        actions=actions,
        extractor=extractor,
        top_k=settings.top_k,
        max_pixels=settings.data.max_pixels,
        photo_cap=settings.cap,
    ) as env:
        samples, skipped = env.prepare(paths, progress=settings.progress)
        data = training_data(env, samples, skipped, settings)
        settings, calibration = calibrate_for(data, settings, calibration)
        policy, history = fit(
            data,
            settings.agent,
            steps=settings.steps,
            objective=settings.objective,
            progress=settings.progress,
        )
        stats = asdict(env.calls())
    out = save_agent(policy, settings, actions, len(samples))
    feedback = attach_answer_feedback(out, settings, paths, calibration)
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
        if feedback is not None:
            log["calibration"][METADATA_KEY] = feedback
    if isinstance(data, Survey):
        log["survey"] = data.summary()
    atomic_write_json(out.with_suffix(".json"), portable_log(log, out))
    return log


def prepare(
    settings: TrainSettings,
) -> tuple[TrainSettings, Sequence[Action], FeatureExtractor]:
    """The action set and the feature extractor ``settings`` name, and the settings
    with the extractor's per-action block recorded in the agent's.

    Raises:
        DatasetError: the settings name the held-out test split.
    """
    if settings.data.images is None and settings.data.split == "test":
        raise DatasetError("refusing to train on the held-out test split")
    actions = get_action_set(settings.actions)
    extractor = get_extractor(settings.features)
    per_action = getattr(extractor, "per_action", 0)  # a state with a block an action
    settings = replace(settings, agent=replace(settings.agent, per_action=per_action))
    return settings, actions, extractor


def training_data(
    env: CompressionEnv,
    samples: list[Sample],
    skipped: list[Skipped],
    settings: TrainSettings,
) -> Survey | Online:
    """What the agent learns from: the survey of ``samples`` when a budget limits
    the questions (the images it skipped added to ``skipped``), else ``samples``
    asked online (the images the service fails on will be added there)."""
    if not settings.answers.budgeted:
        return Online(env, samples, settings.answers.full_information, skipped)
    found = survey_for(env, samples, settings)
    skipped += found.skipped
    return found


def calibrate_for(
    data: Survey | Online, settings: TrainSettings, calibration: Calibration | None
) -> tuple[TrainSettings, Calibration | None]:
    """``settings`` calibrated for their target accuracy, and the calibration: the
    one given, else searched on ``data`` (None: no target, none given). A given
    calibration without a target applies to a survey's training alone (the other
    is logged with it, as before)."""
    target = settings.target_accuracy
    if calibration is None and target is not None:
        calibration = search_for(data, settings).for_target(target)
    if calibration is not None and (isinstance(data, Survey) or target is not None):
        settings = calibrated(settings, calibration)
    return settings, calibration


def save_agent(
    policy: LearnedPolicy,
    settings: TrainSettings,
    actions: Sequence[Action],
    n_images: int,
) -> Path:
    """Write the agent to ``settings.out`` (its log goes beside it); its path."""
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
        photo_cap=settings.cap,
        train_images=n_images,
        steps=settings.steps,
    )
    return out


def attach_answer_feedback(
    out: Path,
    settings: TrainSettings,
    paths: Sequence[Path],
    calibration: Calibration | None,
) -> dict[str, Any] | None:
    """Fit the answer feedback that ``run``'s threshold control reads
    (:mod:`~adacompress.device.answer_feedback`) on the training photos and write it
    into the agent file ``out``, as the shipped agents carry theirs: for a survival
    agent calibrated for a target that knows every answer (full information: no new
    call). Returns what was written (None: nothing, the agent steers on estimates
    alone)."""
    knows_all = settings.answers.full_information and not settings.answers.budgeted
    if calibration is None or calibration.threshold is None or not knows_all:
        return None
    with open_agent_env(
        settings.cloud,
        AgentChoice(agent=str(out)),
        max_pixels=settings.data.max_pixels,
    ) as (compressor, env):
        found = fit_answer_feedback(
            env, compressor, paths, threshold=calibration.threshold
        )
    policy, metadata = load_policy(out)
    record = found.to_metadata()
    save_policy(policy, out, **{**metadata, METADATA_KEY: record})
    return record


def portable_log(log: dict[str, Any], out: Path) -> dict[str, Any]:
    """``log`` as written beside the agent ``out``: the agent named by its file name
    alone, so a log that ships in the package never carries the builder's checkout
    path (issue 32)."""
    settings = {**log["settings"], "out": out.name}
    return {**log, "settings": settings, "agent_file": out.name}


def plan_training(settings: TrainSettings) -> CallPlan:
    """The calls :func:`train` would make (nothing is sent): every action and the
    reference of every training image at most (an agent that explores may ask about
    each; calibration reuses the same answers), or what the survey affords."""
    extractor = get_extractor(settings.features)
    paths = settings.data.paths()
    with open_env(
        settings.cloud,
        actions=get_action_set(settings.actions),
        extractor=extractor,
        max_pixels=settings.data.max_pixels,
        photo_cap=settings.cap,
    ) as env:
        samples, _ = identify(env, paths, progress=settings.progress)
        answers = settings.answers
        if not answers.budgeted:
            return plan_calls(env, samples)
        queries = answers.queries_per_image or len(env.actions)
        return plan_calls(
            env, samples, per_image=(1, 1 + queries), budget=answers.call_budget
        )


def survey_for(
    env: CompressionEnv, samples: list[Sample], settings: TrainSettings
) -> Survey:
    """The survey of ``settings``: at most ``queries_per_image`` per image, or as
    many as ``call_budget`` affords over the images (a reference and a query at
    least), guided by the survival model fitted so far."""
    answers = settings.answers
    queries = answers.queries_per_image
    if queries is None:
        assert answers.call_budget is not None
        queries = max(1, answers.call_budget // max(1, len(samples)) - 1)
    fit = fitter(settings, steps=min(settings.steps, BELIEF_STEPS))

    def belief(so_far: Survey) -> Predictor:
        if len(so_far.samples) < BELIEF_MIN_IMAGES:
            return prior_belief(so_far)
        return fit(so_far, settings.agent.seed, settings.objective).belief

    return survey(
        env,
        samples,
        queries=queries,
        call_budget=answers.call_budget,
        belief=belief,
        seed=settings.agent.seed,
        count_cached=answers.budget_counts_cached,
        progress=settings.progress,
        trust=(
            (settings.target_accuracy or settings.agent.threshold)
            if answers.check_choice
            else None
        ),
    )


def fitter(settings: TrainSettings, steps: int | None = None) -> FitFn:
    """Fits ``settings``' policy to some training images -- a (sub-)survey, or
    images asked online -- with a given seed and objective."""

    def fit_part(
        part: Survey | Online, seed: int, objective: Objective
    ) -> LearnedPolicy:
        agent = replace(settings.agent, seed=seed)
        policy, _ = fit(part, agent, steps=steps or settings.steps, objective=objective)
        return policy

    return fit_part


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


def search_for(data: Survey | Online, settings: TrainSettings) -> CalibrationSearch:
    """The calibration search of the policy's knob (reward weight for q, threshold
    for survival) on ``data``; one search answers any number of targets."""
    return CalibrationSearch(
        data,
        fitter(settings),
        tunes=POLICY_KINDS[settings.agent.policy].tunes,
        folds=settings.calibration_folds,
        objective=settings.objective,
    )

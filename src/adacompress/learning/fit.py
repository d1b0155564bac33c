"""Fitting a policy to the cloud's answers on prepared images: :func:`fit`.

One loop (:func:`_learn`): each step shows the next image (a seeded reshuffle every
pass) and what is learned of it. What a step learns depends on the training data:
from a :class:`~adacompress.learning.survey.Survey` every known outcome of the image
(nothing is asked); from images asked :class:`Online` (the paper's DQN), the policy
picks an action (epsilon-greedy), the environment uploads it and the reference and
returns the result, and with full information every action's answer is learned from
at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from adacompress.cloud.service import ServiceError
from adacompress.core.datasets import DatasetError
from adacompress.core.objective import Objective
from adacompress.device.policies.base import LearnedPolicy
from adacompress.device.policies.files import POLICY_KINDS, make_policy
from adacompress.device.policies.settings import PolicySettings
from adacompress.exchange.environment import CompressionEnv, Sample, Skipped
from adacompress.exchange.learner import Learner
from adacompress.learning.survey import Survey
from basekit.images import ImageError
from basekit.progress import Progress

LOG_EVERY = 100

Observe = Callable[[int, int], tuple[float | None, dict[str, float]] | None]
"""One step on image ``i`` (``following`` shown next): the learning call's loss (None
when none happened) and the step's charts, or None when the image was dropped."""


@dataclass
class Online:
    """Training images the environment answers as the policy asks about them (the
    paper's online learning), rather than a survey's table: the chosen action's
    answer each step, or every action's with ``full_information``. Images the
    service fails on are dropped and listed in ``skipped``."""

    env: CompressionEnv
    samples: list[Sample]
    full_information: bool = False
    skipped: list[Skipped] = field(default_factory=list)

    def subset(self, rows: np.ndarray) -> Online:
        """The images at ``rows``, asked the same way (a fold's training images)."""
        return Online(self.env, [self.samples[i] for i in rows], self.full_information)


class _Shuffled:
    """Which image each step shows: a seeded reshuffle of ``n`` every pass."""

    def __init__(self, rng: np.random.Generator, n: int) -> None:
        self.rng = rng
        self.restart(n)

    def restart(self, n: int) -> None:
        """A fresh reshuffle of ``n`` images (one was dropped)."""
        self.n = n
        self.order = list(self.rng.permutation(n))

    def next(self) -> tuple[int, int]:
        """The image this step shows and the one shown after it."""
        if len(self.order) < 2:
            self.order += list(self.rng.permutation(self.n))
        shown, following = self.order[0], self.order[1]
        self.order.pop(0)
        return shown, following


def _set_up(
    agent: PolicySettings,
    features: np.ndarray,
    cost: Callable[[], tuple[float, ...]],
) -> tuple[LearnedPolicy, Learner]:
    """The policy of ``agent`` (sized by the caller), its action costs (each
    action's mean size ratio, from ``cost``) when it orders actions by cost, its
    features scaled to ``features`` when it standardises, and its learner."""
    if POLICY_KINDS[agent.policy].orders_by_cost:
        agent = replace(agent, action_cost=cost())
    policy = make_policy(agent)
    learner = Learner(policy)
    if agent.standardize:
        policy.fit_feature_scaling(features)
    return policy, learner


def _learn(
    policy: LearnedPolicy,
    learner: Learner,
    shuffled: _Shuffled,
    observe: Observe,
    *,
    steps: int,
    progress: bool = False,
) -> list[dict[str, float]]:
    """``steps`` steps of ``observe`` on the images ``shuffled`` shows; returns the
    log: every :data:`LOG_EVERY` steps, the mean of each chart, epsilon and the mean
    loss."""
    history: list[dict[str, float]] = []
    window: dict[str, list[float]] = {}
    losses: list[float] = []
    bar = Progress(steps, "train", enabled=progress, unit="steps")
    for step in range(steps):
        bar.update()
        seen = observe(*shuffled.next())
        if seen is None:
            continue
        loss, charts = seen
        if loss is not None:
            losses.append(loss)
        for key, value in charts.items():
            window.setdefault(key, []).append(value)
        if (step + 1) % LOG_EVERY == 0 or step + 1 == steps:
            row: dict[str, float] = {"step": step + 1}
            row |= {f"charts/{k}": float(np.mean(v)) for k, v in window.items()}
            row["charts/epsilon"] = learner.epsilon
            mean_loss = float(np.mean(losses)) if losses else float("nan")
            row[f"losses/{policy.loss_name}"] = mean_loss
            history.append(row)
            if window:
                reward, accuracy = row["charts/reward"], row["charts/accuracy"]
                eps = learner.epsilon
                bar.update(
                    0, reward=f"{reward:.3f}", acc=f"{accuracy:.3f}", eps=f"{eps:.3f}"
                )
            window, losses = {}, []
    bar.close()
    policy.progress = learner.progress
    return history


def _mean_cost(ratios: np.ndarray) -> tuple[float, ...]:
    """Each action's mean size ratio over images (``ratios``: (n, actions)), as
    ``PolicySettings.action_cost`` keeps it."""
    return tuple(round(float(c), 6) for c in np.mean(ratios, axis=0))


def fit(
    data: Survey | Online,
    agent: PolicySettings,
    *,
    steps: int,
    objective: Objective = Objective(),
    progress: bool = False,
) -> tuple[LearnedPolicy, list[dict[str, float]]]:
    """``steps`` training steps on ``data``, learning what ``objective`` asks;
    returns the policy and its log (namespaced metrics every :data:`LOG_EVERY`
    steps).

    Raises:
        DatasetError: fewer than 2 usable images (online: left after dropping those
            the service fails on, which are listed in ``data.skipped``).
    """
    if isinstance(data, Survey):
        lesson = _from_survey(data, agent, objective)
    else:
        lesson = _online(data, agent, objective)
    return lesson[0], _learn(*lesson, steps=steps, progress=progress)


_Lesson = tuple[LearnedPolicy, Learner, _Shuffled, Observe]
"""A policy, its learner, the order images are shown in and what a step learns."""


def _from_survey(
    survey: Survey, agent: PolicySettings, objective: Objective
) -> _Lesson:
    """Learning what ``survey`` knows, asking nothing more: each step's image with
    every known outcome (answered or implied); unknown ones are masked out of the
    loss. Each policy learns its own signal of the outcomes (sizes are known for
    every action)."""
    features, kept = survey.features, survey.kept
    n, n_actions = kept.shape
    if n < 2:
        raise DatasetError(f"need at least 2 surveyed images, found {n}")
    ratios = survey.ratios
    sized = replace(agent, n_actions=n_actions, state_dim=features.shape[1])
    policy, learner = _set_up(sized, features, lambda: _mean_cost(ratios))
    observed = (~np.isnan(kept)).astype(np.float32)
    outcome = np.nan_to_num(kept).astype(np.float32)
    signals = policy.signal(outcome, ratios, objective)

    def observe(shown: int, following: int) -> tuple[float | None, dict[str, float]]:
        loss = learner.observe_all(
            features[shown],
            signals[shown].astype(np.float32),
            features[following],
            observed[shown],
        )
        return loss, {}

    shuffled = _Shuffled(np.random.default_rng(agent.seed), n)
    return policy, learner, shuffled, observe


def _online(data: Online, agent: PolicySettings, objective: Objective) -> _Lesson:
    """Learning by asking the environment: each step's image at the action the
    policy picks (every action with full information). Images the service fails on
    are dropped (and listed in ``data.skipped``)."""
    env, skipped, samples = data.env, data.skipped, list(data.samples)
    if len(samples) < 2:
        raise DatasetError(f"need at least 2 usable images, found {len(samples)}")
    sized = replace(
        agent,
        n_actions=len(env.actions),
        state_dim=env.extractor.dim,
        per_action=getattr(env.extractor, "per_action", 0),
    )
    features = np.stack([s.features for s in samples])
    policy, learner = _set_up(sized, features, lambda: action_cost(env, samples))
    shuffled = _Shuffled(np.random.default_rng(agent.seed), len(samples))

    def observe(
        shown: int, following: int
    ) -> tuple[float | None, dict[str, float]] | None:
        sample, next_sample = samples[shown], samples[following]
        action = learner.act(sample.features, explore=True)
        try:
            accuracy, ratio, signals = _ask(
                env, sample, action, policy, objective, data.full_information
            )
        except (ServiceError, ImageError) as err:
            skipped.append(Skipped(str(sample.path), str(err)))
            samples[:] = [s for s in samples if s.path != sample.path]
            shuffled.restart(len(samples))
            if len(samples) < 2:
                raise DatasetError("too few usable images left") from None
            return None
        if signals is not None:
            loss = learner.observe_all(sample.features, signals, next_sample.features)
        else:
            signal = policy.signal(accuracy, ratio, objective)
            loss = learner.observe(
                sample.features, action, signal, next_sample.features
            )
        charts = {"reward": objective.reward(accuracy, ratio), "accuracy": accuracy}
        return loss, charts | {"size_ratio": ratio}

    return policy, learner, shuffled, observe


def _ask(
    env: CompressionEnv,
    sample: Sample,
    action: int,
    policy: LearnedPolicy,
    objective: Objective,
    full_information: bool,
) -> tuple[float, float, np.ndarray | None]:
    """The action's accuracy and size ratio on ``sample``, and with full
    information every action's signal (every answer, one lookup).

    Raises:
        ServiceError, ImageError: as the environment's lookups.
    """
    if not full_information:
        result = env.step(sample, action)
        return result.accuracy, result.size_ratio, None
    answered = Survey.full(env, [sample])
    kept, ratios = answered.kept[0], answered.ratios[0]
    signals = np.array(
        [
            policy.signal(float(a), float(r), objective)
            for a, r in zip(kept, ratios, strict=True)
        ],
        dtype=np.float32,
    )
    return float(kept[action]), float(ratios[action]), signals


def action_cost(env: CompressionEnv, samples: list[Sample]) -> tuple[float, ...]:
    """Each action's mean size ratio over ``samples`` (every action's upload, cached).

    Raises:
        DatasetError: the service failed on every image.
    """
    # an image the service fails on is left out: _online() drops it when it meets it
    table = Survey.full(env, samples, skipped=[])
    if not table.samples:
        raise DatasetError("no image could be uploaded at every action")
    return _mean_cost(table.ratios)

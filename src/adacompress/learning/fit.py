"""The training loop: a policy learns from a cloud's answers on prepared images.

Each step shows the next image (a seeded reshuffle every pass), the policy picks an
action (epsilon-greedy), the environment uploads it and the reference and returns the
result; with full information every action's answer is learned from at once.
"""

from __future__ import annotations

from dataclasses import replace

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


def fit_policy(
    env: CompressionEnv,
    samples: list[Sample],
    agent: PolicySettings,
    *,
    steps: int,
    objective: Objective = Objective(),
    full_information: bool = False,
    progress: bool = False,
    skipped: list[Skipped] | None = None,
) -> tuple[LearnedPolicy, list[dict[str, float]]]:
    """``steps`` training steps on prepared ``samples``, learning what ``objective``
    asks; returns the policy and its log (namespaced metrics every
    :data:`LOG_EVERY` steps).

    Images the service fails on are dropped (and appended to ``skipped``).
    """
    if len(samples) < 2:
        raise DatasetError(f"need at least 2 usable images, found {len(samples)}")
    skipped = skipped if skipped is not None else []
    agent = replace(
        agent,
        n_actions=len(env.actions),
        state_dim=env.extractor.dim,
        per_action=getattr(env.extractor, "per_action", 0),
    )
    if POLICY_KINDS[agent.policy].orders_by_cost:
        agent = replace(agent, action_cost=action_cost(env, samples))
    policy = make_policy(agent)
    learner = Learner(policy)
    rng = np.random.default_rng(agent.seed)
    history: list[dict[str, float]] = []
    if agent.standardize:
        policy.fit_feature_scaling(np.stack([s.features for s in samples]))
    order = list(rng.permutation(len(samples)))
    window: dict[str, list[float]] = {"reward": [], "accuracy": [], "size_ratio": []}
    losses: list[float] = []
    bar = Progress(steps, "train", enabled=progress, unit="steps")
    for step in range(steps):
        bar.update()
        if len(order) < 2:
            order += list(rng.permutation(len(samples)))
        sample, next_sample = samples[order[0]], samples[order[1]]
        order.pop(0)
        action = learner.act(sample.features, explore=True)
        try:
            if full_information:
                answered = Survey.full(env, [sample])
                kept, ratios = answered.kept[0], answered.ratios[0]
                accuracy, ratio = float(kept[action]), float(ratios[action])
            else:
                result = env.step(sample, action)
                accuracy, ratio = result.accuracy, result.size_ratio
        except (ServiceError, ImageError) as err:
            skipped.append(Skipped(str(sample.path), str(err)))
            samples = [s for s in samples if s.path != sample.path]
            order = list(rng.permutation(len(samples)))
            if len(samples) < 2:
                raise DatasetError("too few usable images left") from None
            continue
        if full_information:
            signals = np.array(
                [
                    policy.signal(float(a), float(r), objective)
                    for a, r in zip(kept, ratios, strict=True)
                ],
                dtype=np.float32,
            )
            loss = learner.observe_all(sample.features, signals, next_sample.features)
        else:
            signal = policy.signal(accuracy, ratio, objective)
            loss = learner.observe(
                sample.features, action, signal, next_sample.features
            )
        if loss is not None:
            losses.append(loss)
        window["reward"].append(objective.reward(accuracy, ratio))
        window["accuracy"].append(accuracy)
        window["size_ratio"].append(ratio)
        if (step + 1) % LOG_EVERY == 0 or step + 1 == steps:
            row = {
                "step": step + 1,
                "charts/reward": float(np.mean(window["reward"])),
                "charts/accuracy": float(np.mean(window["accuracy"])),
                "charts/size_ratio": float(np.mean(window["size_ratio"])),
                "charts/epsilon": learner.epsilon,
                f"losses/{policy.loss_name}": (
                    float(np.mean(losses)) if losses else float("nan")
                ),
            }
            history.append(row)
            bar.update(
                0,
                reward=f"{row['charts/reward']:.3f}",
                acc=f"{row['charts/accuracy']:.3f}",
                eps=f"{learner.epsilon:.3f}",
            )
            window = {key: [] for key in window}
            losses = []
    bar.close()
    policy.progress = learner.progress
    return policy, history


def action_cost(env: CompressionEnv, samples: list[Sample]) -> tuple[float, ...]:
    """Each action's mean size ratio over ``samples`` (every action's upload, cached).

    Raises:
        DatasetError: the service failed on every image.
    """
    # an image the service fails on is left out: fit_policy drops it when it meets it
    table = Survey.full(env, samples, skipped=[])
    if not table.samples:
        raise DatasetError("no image could be uploaded at every action")
    return tuple(round(float(c), 6) for c in np.mean(table.ratios, axis=0))


def fit_table(
    survey: Survey,
    agent: PolicySettings,
    *,
    steps: int,
    objective: Objective = Objective(),
    progress: bool = False,
) -> tuple[LearnedPolicy, list[dict[str, float]]]:
    """Train on what a survey knows, asking nothing more: each step shows the next
    image (a seeded reshuffle every pass) with every known outcome (answered or
    implied); unknown ones are masked out of the loss.

    Each policy learns its own signal of the outcomes (sizes are known for every
    action).
    """
    features, kept = survey.features, survey.kept
    n, n_actions = kept.shape
    if n < 2:
        raise DatasetError(f"need at least 2 surveyed images, found {n}")
    ratios = survey.ratios
    agent = replace(agent, n_actions=n_actions, state_dim=features.shape[1])
    if POLICY_KINDS[agent.policy].orders_by_cost:
        cost = tuple(round(float(c), 6) for c in ratios.mean(axis=0))
        agent = replace(agent, action_cost=cost)
    policy = make_policy(agent)
    learner = Learner(policy)
    if agent.standardize:
        policy.fit_feature_scaling(features)
    observed = (~np.isnan(kept)).astype(np.float32)
    outcome = np.nan_to_num(kept).astype(np.float32)
    signals = policy.signal(outcome, ratios, objective)
    rng = np.random.default_rng(agent.seed)
    order = list(rng.permutation(n))
    history: list[dict[str, float]] = []
    losses: list[float] = []
    bar = Progress(steps, "train", enabled=progress, unit="steps")
    for step in range(steps):
        bar.update()
        if len(order) < 2:
            order += list(rng.permutation(n))
        i, following = order[0], order[1]
        order.pop(0)
        loss = learner.observe_all(
            features[i],
            signals[i].astype(np.float32),
            features[following],
            observed[i],
        )
        if loss is not None:
            losses.append(loss)
        if (step + 1) % LOG_EVERY == 0 or step + 1 == steps:
            history.append(
                {
                    "step": step + 1,
                    "charts/epsilon": learner.epsilon,
                    f"losses/{policy.loss_name}": (
                        float(np.mean(losses)) if losses else float("nan")
                    ),
                }
            )
            losses = []
    bar.close()
    policy.progress = learner.progress
    return policy, history

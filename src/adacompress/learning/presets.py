"""Named training recipes: the shipped agents' (the default), the alpha-DQN's over
scale-quality, the paper's, and the survival policy's. Every choice in them was made
on training images only."""

from __future__ import annotations

from dataclasses import replace

from adacompress.device.policies.settings import PolicySettings
from adacompress.learning.settings import AnswerSettings, TrainSettings
from basekit.registry import Registry

SURVIVAL_POLICY = PolicySettings(
    policy="survival",
    gamma=0.0,
    standardize=True,
    hidden=(32,),
    learning_rate=0.01,
    weight_decay=0.01,
    learn_every=1,
)
"""The survival policy's network and training, shared by its recipes."""

SHIPPED_SCALE_QUALITY = TrainSettings(
    actions="scale-quality",
    features="confidence@160",
    target_accuracy=0.99,
    answers=AnswerSettings(full_information=True),
    steps=1000,
    agent=SURVIVAL_POLICY,
)
"""The default agents' recipe (the ``shipped-scale-quality`` preset)."""

TRAIN_PRESETS: Registry[TrainSettings] = Registry(
    "train preset",
    {
        # The shipped scale-quality agents, each backend's default: the survival
        # policy (one small network over state and action predicting whether the
        # answer survives) over downscale x quality, on the one-forward confidence
        # state from a 160 px input (as cross-validated on train as the downscale
        # probes, at a fraction of their cost: docs/results.md, "A cheaper state"),
        # learning from every action's answer on each training image; its
        # threshold calibrated by 5-fold cross-validation for 99% of the answers.
        "shipped-scale-quality": SHIPPED_SCALE_QUALITY,
        # The shipped paper-action agents: a contextual bandit (gamma 0: the next
        # image does not depend on the action), the 11-number confidence state
        # from a 160 px input, standardised, and alpha calibrated by 5-fold
        # cross-validation on the training images for 99% of the answers.
        "shipped": TrainSettings(
            features="confidence@160",
            target_accuracy=0.99,
            alpha=4.0,
            agent=PolicySettings(gamma=0.0, standardize=True),
        ),
        # The probes agents (<backend>-probes): the shipped scale-quality recipe
        # on the local classifier's verdict on every candidate upload (27 Lite0
        # forwards a decision): the fewest bytes, far above a phone's budget.
        "shipped-probes": replace(SHIPPED_SCALE_QUALITY, features="local-probes"),
        # The scale-quality agents shipped before: the alpha-DQN over the same
        # actions and state, alpha calibrated for 99% of the answers.
        "alpha-dqn-scale-quality": TrainSettings(
            actions="scale-quality",
            features="confidence-scales",
            target_accuracy=0.99,
            answers=AnswerSettings(full_information=True),
            alpha=4.0,
            agent=PolicySettings(gamma=0.0, standardize=True),
        ),
        # The paper's DQN exactly: gamma 0.95, alpha 1, EfficientNet-Lite0 features.
        "paper": TrainSettings(photo_cap=0),
        # The survival policy for accuracy targets: one small network over
        # (state, action) learning from every action's answer, about 300 passes
        # over 700 images.
        "survival": TrainSettings(
            features="confidence",
            answers=AnswerSettings(full_information=True),
            steps=1000,
            agent=SURVIVAL_POLICY,
        ),
    },
)

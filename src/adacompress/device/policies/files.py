"""Agent files: a policy's weights, settings and metadata, plain tensors only.

Written atomically, read with ``weights_only=True`` (nothing from the file is ever
executed); the settings name the policy class to rebuild.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from adacompress.device.policies.base import LearnedPolicy
from adacompress.device.policies.q import DQNPolicy
from adacompress.device.policies.settings import (
    PolicySettings,
    TrainingProgress,
    settings_from,
)
from adacompress.device.policies.survival import SurvivalPolicy
from basekit.atomic import atomic_torch_save
from basekit.safe_load import load_tensors

AGENT_FORMAT = 1


POLICY_KINDS: dict[str, type[LearnedPolicy]] = {
    "q": DQNPolicy,
    "survival": SurvivalPolicy,
}
"""The policy class of each ``PolicySettings.policy`` name."""


def make_policy(settings: PolicySettings) -> LearnedPolicy:
    """A fresh policy of the kind ``settings.policy`` names."""
    return POLICY_KINDS[settings.policy](settings)


def save_policy(policy: LearnedPolicy, path: str | Path, **metadata: object) -> None:
    """Write weights, settings and ``metadata`` (plain values) atomically."""
    payload = {
        "format": AGENT_FORMAT,
        "settings": asdict(policy.settings),
        "metadata": dict(metadata),
        "network": policy.network.state_dict(),
        "feature_mean": torch.from_numpy(policy.feature_mean),
        "feature_std": torch.from_numpy(policy.feature_std),
        "epsilon": policy.progress.epsilon,
        "steps": policy.progress.steps,
    }
    atomic_torch_save(payload, Path(path))


def load_policy(path: str | Path) -> tuple[LearnedPolicy, dict[str, object]]:
    """Read an agent written by :func:`save_policy`; returns the policy and its
    metadata.

    Raises:
        ValueError: missing, unreadable or not an agent file (one line).
    """
    payload = load_tensors(path, what="agent file")
    if not isinstance(payload, dict) or payload.get("format") != AGENT_FORMAT:
        raise ValueError(f"not an agent file (format {AGENT_FORMAT}): {path}")
    try:
        policy = make_policy(settings_from(payload["settings"]))
        # Files written before 0.3 keep the weights under "q", whatever the policy.
        policy.load_weights(payload["network" if "network" in payload else "q"])
        policy.feature_mean = payload["feature_mean"].numpy()
        policy.feature_std = payload["feature_std"].numpy()
        policy.progress = TrainingProgress(
            float(payload["epsilon"]), int(payload["steps"])
        )
        metadata = dict(payload["metadata"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"damaged agent file: {path} ({reason})") from None
    return policy, metadata

"""Agent files: a policy's weights, settings and metadata, plain tensors only.

Written atomically, read with ``weights_only=True`` (nothing from the file is ever
executed); the settings name the policy class to rebuild. An agent file from
elsewhere is untrusted: every dimension of its settings is bounded before a network
is built (:func:`checked_settings`), and its feature scaling must be a finite
float32 vector of the state's length, std above zero.
"""

from __future__ import annotations

import math
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
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
MAX_STATE_DIM = 1 << 14
MAX_ACTIONS = 256
MAX_WIDTH = 4096
MAX_LAYERS = 8
MAX_PARAMETERS = 1 << 22
"""The most weights a network read from a file may have (an agent has thousands)."""
MAX_MEMORY = 1 << 20
"""The largest replay memory (transitions) a file may ask for."""


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
    # the format is compared as an int: a tensor's != is a tensor, whose truth a
    # tensor of two values refuses with a RuntimeError (fuzz_untrusted.py)
    kind = payload.get("format") if isinstance(payload, dict) else None
    if type(kind) is not int or kind != AGENT_FORMAT:
        raise ValueError(f"not an agent file (format {AGENT_FORMAT}): {path}")
    try:
        settings = checked_settings(payload["settings"])
        mean = _scaling(payload["feature_mean"], settings.state_dim, "feature_mean")
        std = _scaling(payload["feature_std"], settings.state_dim, "feature_std")
        if not (std > 0).all():
            raise ValueError("feature_std must be above zero")
        epsilon, steps = payload["epsilon"], payload["steps"]
        if not isinstance(epsilon, float | int) or not 0 <= epsilon <= 1:
            raise ValueError("epsilon must be a number in [0, 1]")
        if not isinstance(steps, int) or steps < 0:
            raise ValueError("steps must be a count")
        metadata = payload["metadata"]
        if not isinstance(metadata, dict):
            raise ValueError("metadata must be a dict")
        policy = make_policy(settings)
        # Files written before 0.3 keep the weights under "q", whatever the policy.
        weights = payload["network" if "network" in payload else "q"]
        if not isinstance(weights, dict):
            raise ValueError("the network's weights must be a dict of tensors")
        policy.load_weights(weights)
        policy.feature_mean, policy.feature_std = mean, std
        policy.progress = TrainingProgress(float(epsilon), steps)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"damaged agent file: {path} ({reason})") from None
    return policy, dict(metadata)


def checked_settings(raw: Any) -> PolicySettings:
    """The settings saved in an agent file, each dimension bounded before anything
    is built from them.

    Raises:
        ValueError: a setting of the wrong type or out of range (one line).
    """
    if not isinstance(raw, dict) or not set(raw) <= {
        f.name for f in fields(PolicySettings)
    }:
        raise ValueError("settings must be a dict of PolicySettings fields")
    settings = settings_from(raw)
    dims = {
        "state_dim": (settings.state_dim, 1, MAX_STATE_DIM),
        "n_actions": (settings.n_actions, 1, MAX_ACTIONS),
        "per_action": (settings.per_action, 0, MAX_STATE_DIM),
        "memory_size": (settings.memory_size, 1, MAX_MEMORY),
        "batch_size": (settings.batch_size, 1, MAX_MEMORY),
    }
    for name, (value, low, high) in dims.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer")
        if not low <= value <= high:
            raise ValueError(f"{name} must be in {low}..{high}, not {value}")
    hidden = settings.hidden
    if not 1 <= len(hidden) <= MAX_LAYERS or any(
        isinstance(w, bool) or not isinstance(w, int) or not 1 <= w <= MAX_WIDTH
        for w in hidden
    ):
        raise ValueError(f"hidden must be 1..{MAX_LAYERS} widths in 1..{MAX_WIDTH}")
    inputs = settings.state_dim + settings.n_actions + settings.per_action
    widths = [inputs, *hidden, settings.n_actions]
    parameters = sum((a + 1) * b for a, b in zip(widths, widths[1:], strict=False))
    if parameters > MAX_PARAMETERS:
        raise ValueError(f"a network of {parameters:,} weights is too large")
    if len(settings.action_cost) not in (0, settings.n_actions) or not all(
        isinstance(c, float | int) and math.isfinite(c) for c in settings.action_cost
    ):
        raise ValueError("action_cost must be a finite number for each action")
    if not isinstance(settings.threshold, float | int) or math.isnan(
        settings.threshold
    ):
        raise ValueError("threshold must be a number")
    return settings


def _scaling(value: Any, dim: int, name: str) -> np.ndarray:
    """A feature-scaling vector: a float32 tensor of shape (dim,), finite, copied
    (a crafted strided view is never broadcast)."""
    if not isinstance(value, torch.Tensor) or value.dtype != torch.float32:
        raise ValueError(f"{name} must be a float32 tensor")
    if tuple(value.shape) != (dim,) or not value.is_contiguous():
        raise ValueError(f"{name} must be a vector of {dim} numbers")
    array = value.detach().clone().numpy()
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite")
    return array

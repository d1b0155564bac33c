"""The agents that ship inside the package, one per backend."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from adacompress.codec import Action, get_action_set


def shipped_agent_path(backend: str, actions: str = "paper") -> Path:
    """The agent shipped for ``backend`` and action set ``actions``
    (benchmarks/train_shipped_agents.py; scale-quality: benchmarks/targets.py)."""
    name = backend if actions == "paper" else f"{backend}-{actions}"
    path = Path(str(resources.files("adacompress").joinpath("agents", f"{name}.pt")))
    if not path.is_file():
        raise ValueError(
            f"no agent ships for backend {backend!r} with actions {actions!r}; pass "
            "--agent PATH (train one with `adacompress train`)"
        )
    return path


def choose_agent(backend: str, agent: str | None, actions: str | None) -> Path:
    """``agent`` if given (it must use ``actions`` when both are given), else the
    shipped agent for ``backend`` and ``actions`` (default ``paper``)."""
    if agent is None:
        return shipped_agent_path(backend, actions or "paper")
    if actions is not None:
        from adacompress.agent import DQNAgent

        _, meta = DQNAgent.load(agent)
        own = str(meta.get("action_set", "paper"))
        if own != actions:
            raise ValueError(
                f"agent {agent} was trained with actions {own!r}, not {actions!r}"
            )
    return Path(agent)


def agent_actions(metadata: Mapping[str, object]) -> tuple[Action, ...]:
    """The action set an agent was trained with, from its saved metadata."""
    keys = metadata.get("actions")
    if isinstance(keys, list | tuple):
        return tuple(Action.from_key(str(k)) for k in keys)
    return get_action_set(str(metadata.get("action_set", "paper")))

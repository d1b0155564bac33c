"""The agents that ship inside the package, one per backend."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from adacompress.codec import Action, get_action_set


def shipped_agent_path(backend: str) -> Path:
    """The agent shipped for ``backend`` (benchmarks/train_shipped_agents.py)."""
    path = Path(str(resources.files("adacompress").joinpath("agents", f"{backend}.pt")))
    if not path.is_file():
        raise ValueError(
            f"no agent ships for backend {backend!r}; pass --agent PATH "
            "(train one with `adacompress train`)"
        )
    return path


def agent_actions(metadata: Mapping[str, object]) -> tuple[Action, ...]:
    """The action set an agent was trained with, from its saved metadata."""
    keys = metadata.get("actions")
    if isinstance(keys, list | tuple):
        return tuple(Action.from_key(str(k)) for k in keys)
    return get_action_set(str(metadata.get("action_set", "paper")))

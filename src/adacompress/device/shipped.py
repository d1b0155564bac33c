"""The agents that ship inside the package (``adacompress/agents/*.pt``), by name.

A shipped agent is named after its backend and, unless it uses the paper's ten
qualities, its action set: ``lite0``, ``lite0-scale-quality``. The JSON beside each
file is its training log, with the command that made it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from adacompress.device.actions import Action, get_action_set
from basekit.settings_cli import unknown_choice


def agents_folder() -> Path:
    """Where the shipped agents are installed."""
    return Path(str(resources.files("adacompress").joinpath("agents")))


def shipped_agents() -> list[str]:
    """Names of the shipped agents, sorted."""
    return sorted(p.stem for p in agents_folder().glob("*.pt"))


def shipped_name(backend: str, actions: str = "paper") -> str:
    return backend if actions == "paper" else f"{backend}-{actions}"


def shipped_agent_path(backend: str, actions: str = "paper") -> Path:
    """The agent shipped for ``backend`` and action set ``actions``.

    Raises:
        ValueError: none ships under that name (one line, listing the names).
    """
    name = shipped_name(backend, actions)
    path = agents_folder() / f"{name}.pt"
    if not path.is_file():
        raise unknown_choice("shipped agent", name, shipped_agents())
    return path


def resolve_agent(name_or_path: str | Path, actions: str | None = None) -> Path:
    """A shipped agent's name (``lite0``, ``lite0-scale-quality``; with ``actions``
    the name is the backend) or the path of an agent file.

    Raises:
        ValueError: neither a shipped agent nor an existing file (one line).
    """
    text = str(name_or_path)
    looks_like_path = (
        isinstance(name_or_path, Path)
        or text.endswith(".pt")
        or ("/" in text or "\\" in text)
    )
    if looks_like_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise ValueError(f"agent file not found: {path}")
        return path
    return shipped_agent_path(text, actions or "paper")


def agent_actions(metadata: Mapping[str, object]) -> tuple[Action, ...]:
    """The action set an agent was trained with, from its saved metadata."""
    keys = metadata.get("actions")
    if isinstance(keys, list | tuple):
        return tuple(Action.from_key(str(k)) for k in keys)
    return get_action_set(str(metadata.get("action_set", "paper")))


@dataclass
class AgentChoice:
    """Which agent decides."""

    agent: str | None = None
    """a shipped agent's name (lite0, lite0-scale-quality, ...) or an agent file;
    default: the agent shipped for --backend"""
    actions: str | None = None
    """action set of the shipped agent for --backend: paper or scale-quality
    (default: paper; with an agent file, a check of its action set)"""

    def name(self, backend: str) -> str:
        """The agent to load: ``agent``, else the backend's shipped one."""
        return self.agent if self.agent is not None else backend

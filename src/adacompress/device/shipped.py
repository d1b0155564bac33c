"""The agents that ship inside the package (``adacompress/agents/*.pt``), by name.

A shipped agent is named after its backend and, unless it uses the paper's ten
qualities, its action set: ``lite0``, ``lite0-scale-quality``. A backend's default
agent -- what its name alone or no ``--agent`` at all selects -- is the best one it
ships, over :data:`DEFAULT_ACTIONS`. The JSON beside each file is its training log,
with the command that made it.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from basekit.settings_cli import unknown_choice

DEFAULT_ACTIONS = "scale-quality"
"""The action set of each backend's default agent (the survival policy over
downscale x quality: the smallest uploads at the 0.99 target, docs/results.md)."""


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
    """A shipped agent's name, the path of an agent file, or a backend with
    ``actions``. A backend's name alone (``lite0``) is its default agent
    (``lite0-scale-quality``); ``actions="paper"`` selects its paper-action agent.

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
    if actions is None:
        default = agents_folder() / f"{shipped_name(text, DEFAULT_ACTIONS)}.pt"
        return default if default.is_file() else shipped_agent_path(text)
    return shipped_agent_path(text, actions)


@dataclass
class AgentChoice:
    """Which agent decides."""

    agent: str | None = None
    """a shipped agent's name (lite0-scale-quality, lite0 = its default, ...) or an
    agent file; default: the agent shipped for --backend"""
    actions: str | None = None
    """action set of the shipped agent for --backend: paper or scale-quality
    (default: scale-quality, the best; with an agent file, a check of its action
    set)"""

    def name(self, backend: str) -> str:
        """The agent to load: ``agent``, else the backend's shipped one."""
        return self.agent if self.agent is not None else backend

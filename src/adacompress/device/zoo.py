"""The agents that ship inside the package: their names, files and recipes, in one
place.

Each emulated backend ships three agents, named after the backend and their kind:
``<backend>-scale-quality`` (its default: what the backend's name alone, or no
``--agent`` at all, selects), ``<backend>-paper`` (the paper's ten qualities) and
``<backend>-probes`` (the default's actions, deciding from the local classifier's
verdict on every candidate upload: the fewest bytes, at about twenty times the
default's decision time; chosen by name only).
Each is ``adacompress/agents/<name>.pt`` with its training log beside it
(``<name>.json``); ``adacompress ship NAME`` rebuilds it from its recipe, a training
preset (:data:`adacompress.learning.presets.TRAIN_PRESETS`) on its backend's cloud.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from adacompress.core.efficientnet import VARIANTS
from adacompress.device.card_spec import Metric
from basekit.settings_cli import unknown_choice

DEFAULT_ACTIONS = "scale-quality"
"""The action set of each backend's default agent (the survival policy over
downscale x quality: the smallest uploads at the 0.99 target, docs/results.md)."""


def agents_folder() -> Path:
    """Where the shipped agents are installed."""
    return Path(str(resources.files("adacompress").joinpath("agents")))


@dataclass(frozen=True)
class ShippedAgent:
    """One shipped agent: the backend it was trained against, its kind (its action
    set, or ``probes``) and the training preset that builds it."""

    backend: str
    kind: str
    recipe: str

    @property
    def name(self) -> str:
        return f"{self.backend}-{self.kind}"

    @property
    def file(self) -> Path:
        """The agent file (its training log is beside it, ``.json``)."""
        return agents_folder() / f"{self.name}.pt"


RECIPES = {
    "scale-quality": "shipped-scale-quality",
    "paper": "shipped",
    "probes": "shipped-probes",
}
"""The training preset of the shipped agents of each kind."""

ZOO: dict[str, ShippedAgent] = {
    agent.name: agent
    for agent in (
        ShippedAgent(backend, kind, recipe)
        for backend in VARIANTS
        for kind, recipe in RECIPES.items()
    )
}
"""Every shipped agent by name."""


TEST_SPLIT = "imagenet-samples test split (300 photos, never trained on)"
BSDS500_TEST = "BSDS500 test (200 scenes, another collection)"


def _measured(
    backend: str, actions: str, test: tuple[float, float], bsds: tuple[float, float]
) -> tuple[Metric, ...]:
    flag = "" if actions == DEFAULT_ACTIONS else f" --actions {actions}"
    command = f"adacompress evaluate --backend {backend}{flag}"
    return (
        Metric(TEST_SPLIT, *test, f"{command} --split test"),
        Metric(BSDS500_TEST, *bsds, f"{command} --images ../shared/data/bsds500/test"),
    )


MEASURED: dict[str, tuple[Metric, ...]] = {
    "lite0-scale-quality": _measured(
        "lite0", "scale-quality", (0.251, 0.997), (0.444, 0.980)
    ),
    "lite1-scale-quality": _measured(
        "lite1", "scale-quality", (0.242, 0.987), (0.410, 0.965)
    ),
    "lite2-scale-quality": _measured(
        "lite2", "scale-quality", (0.520, 0.997), (0.751, 1.000)
    ),
    "lite0-paper": _measured("lite0", "paper", (0.309, 0.990), (0.443, 0.980)),
    "lite1-paper": _measured("lite1", "paper", (0.326, 0.993), (0.460, 0.975)),
    "lite2-paper": _measured("lite2", "paper", (0.299, 0.990), (0.387, 0.970)),
}
"""What each exportable shipped agent uploads (bytes over the q=75 reference's)
and keeps (reference top-1 within the top-5) against its emulated backend, with
no upload limits; docs/agent-card.md lists them with where each was measured."""


def shipped_agents() -> list[str]:
    """Names of the shipped agents, sorted."""
    return sorted(ZOO)


def shipped(name: str, actions: str | None = None) -> ShippedAgent:
    """A shipped agent by name, or a backend's: its default, or the one over
    ``actions`` (``shipped("lite0", "paper")`` is ``lite0-paper``).

    Raises:
        ValueError: no shipped agent answers to that (one line, listing them).
    """
    if name in VARIANTS:
        name = f"{name}-{actions or DEFAULT_ACTIONS}"
    if name not in ZOO:
        raise unknown_choice("shipped agent", name, [*VARIANTS, *shipped_agents()])
    return ZOO[name]


def names_a_path(name_or_path: str | Path) -> bool:
    """Whether ``--agent`` names a file or folder rather than a shipped agent: a
    ``Path``, or text with a slash or ending in ``.pt``. A bare name is always a
    shipped agent's, so a folder ``lite0/`` beside the user never replaces the
    shipped ``lite0``; ``./lite0`` loads the folder."""
    text = str(name_or_path)
    return (
        isinstance(name_or_path, Path)
        or text.endswith(".pt")
        or ("/" in text or "\\" in text)
    )


def resolve_agent(name_or_path: str | Path, actions: str | None = None) -> Path:
    """The agent file of a shipped agent's name (see :func:`shipped`) or of a path.

    Raises:
        ValueError: neither a shipped agent nor an existing file (one line; a bare
            name that is a file or folder here says to give it as a path).
    """
    text = str(name_or_path)
    if not names_a_path(name_or_path):
        try:
            return shipped(text, actions).file
        except ValueError as err:
            if Path(text).exists():
                raise ValueError(
                    f"{err}; to load the file or folder {text!r}, give it as a "
                    f"path: ./{text}"
                ) from None
            raise
    path = Path(name_or_path)
    if not path.is_file():
        raise ValueError(f"agent file not found: {path}")
    return path


@dataclass
class AgentChoice:
    """Which agent decides."""

    agent: str | None = None
    """a shipped agent's name (lite0-scale-quality, lite0-paper, lite0 = its
    default, ...) or an agent file; default: the agent shipped for --backend"""
    actions: str | None = None
    """action set of the shipped agent for --backend: paper or scale-quality
    (default: scale-quality, the best; with an agent file, a check of its action
    set)"""
    photo_cap: int | None = None
    """override the agent's photo cap, in pixels of the short side (0: none), to
    measure another; default: the agent's own"""

    def name(self, backend: str) -> str:
        """The agent to load: ``agent``, else the backend's shipped one."""
        return self.agent if self.agent is not None else backend

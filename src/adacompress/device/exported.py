"""An exported agent on a device: ONNX Runtime, numpy and Pillow, no torch.

``adacompress export`` writes a folder with ``card.json`` (:class:`AgentCard`),
``state.onnx`` (preprocessed views of a photo -> the policy's state) and
``policy.onnx`` (state -> the chosen action, the candidate mask and the survival
threshold inside). :func:`load_exported` turns it into the two halves a
:class:`~adacompress.device.compressor.Compressor` puts together, so an exported
agent compresses through the same code, and makes the same choices, as the agent
file it came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from adacompress.core.efficientnet import model_input
from adacompress.core.engine import OnnxGraph
from adacompress.device.card import CARD_FILE, AgentCard
from adacompress.device.features.lite import log_pixels, state_views
from adacompress.device.policies.settings import PolicySettings

if TYPE_CHECKING:  # torch is not needed to decide
    from adacompress.device.policies.base import LearnedPolicy

STATE_GRAPH = "state.onnx"
POLICY_GRAPH = "policy.onnx"


def is_exported(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding an exported agent."""
    return Path(path, CARD_FILE).is_file()


class ExportedFeatures:
    """The state graph as a feature extractor: the card's preprocessing, then ONNX.

    Shape: ``extract`` returns (len(images), dim), float32.
    """

    def __init__(self, folder: Path, card: AgentCard, dim: int) -> None:
        self.name = card.features
        self.cache_name = f"{card.features}+onnx"
        self.prep = card.preprocessing
        self.graph = OnnxGraph(folder / STATE_GRAPH)
        self.dim = dim

    def extract(self, images: list[Image.Image]) -> np.ndarray:
        views = [view for im in images for view in state_views(im, self.prep)]
        pixels = model_input(views)
        pixels = pixels.reshape(len(images), -1, *pixels.shape[1:])
        sizes = np.array([[log_pixels(im)] for im in images], dtype=np.float32)
        return self.graph(pixels, sizes).astype(np.float32)


class ExportedPolicy:
    """The policy graph: state rows -> action indices among the exported candidates.

    Raises:
        ValueError: asked to choose among other candidates than those it was
            exported for (a service with other limits: export again).
    """

    def __init__(
        self, folder: Path, card: AgentCard, candidates: Sequence[int]
    ) -> None:
        self.graph = OnnxGraph(folder / POLICY_GRAPH)
        self.candidates = list(candidates)
        dim = int(self.graph.session.get_inputs()[0].shape[1])
        self.settings = PolicySettings(
            state_dim=dim, n_actions=len(card.actions), policy=card.policy
        )

    def trainable(self) -> LearnedPolicy:
        """Raises ValueError (one line): an exported agent only decides."""
        raise ValueError(
            "an exported agent only decides: training, evaluating, running and "
            "explaining need its agent file"
        )

    def choose(
        self, states: np.ndarray, candidates: Sequence[int] | None = None
    ) -> np.ndarray:
        """Shape: (batch, state_dim) -> (batch,)."""
        if candidates is not None and list(candidates) != self.candidates:
            raise ValueError(
                "the agent was exported for other service limits; export it again "
                "with those limits"
            )
        return self.graph(np.atleast_2d(states).astype(np.float32)).astype(np.int64)


def load_exported(
    folder: str | Path,
) -> tuple[AgentCard, ExportedFeatures, ExportedPolicy]:
    """The card, state and policy of the agent exported to ``folder``.

    Raises:
        ValueError: not an exported agent, or a damaged one (one line).
    """
    folder = Path(folder)
    card = AgentCard.read(folder)
    candidates = card.limits.get("candidates")
    if not isinstance(candidates, list):
        raise ValueError(f"damaged agent card {folder / CARD_FILE}: no candidates")
    policy = ExportedPolicy(folder, card, candidates)
    features = ExportedFeatures(folder, card, policy.settings.state_dim)
    return card, features, policy

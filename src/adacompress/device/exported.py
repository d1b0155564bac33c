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

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from adacompress.core.efficientnet import model_input
from adacompress.core.engine import OnnxGraph
from adacompress.device.card import AgentCard
from adacompress.device.card_file import CARD_FILE, GRAPH_FILES, read_small
from adacompress.device.card_spec import graph_tensors
from adacompress.device.features.lite import log_pixels, state_views
from adacompress.device.graph_check import (
    CHECK_BATCH,
    inspect_graph,
    output_shapes,
    read_graph,
)
from adacompress.device.policies.settings import PolicySettings

if TYPE_CHECKING:  # torch is not needed to decide
    from adacompress.device.policies.base import LearnedPolicy

STATE_GRAPH, POLICY_GRAPH = GRAPH_FILES
ACTIONS_KEY = "adacompress.actions"
"""The policy graph's metadata entry that lists its actions' keys, in order (JSON)."""
CANDIDATES_KEY = "adacompress.candidates"
"""The policy graph's metadata entry that lists the candidates it chooses among."""
FLOAT32, INT64 = 1, 7
"""ONNX element types of the state and of the chosen action."""
MAX_REFERENCE_BYTES = 4 << 20
"""The largest reference photo read (an export's are under 100 KB)."""


def is_agent_folder(path: str | Path) -> bool:
    """Whether ``path`` names a folder: an exported agent's, or one that
    :func:`load_exported` refuses naming what it lacks (a folder is never an agent
    file)."""
    return Path(path).is_dir()


class ExportedFeatures:
    """The state graph as a feature extractor: the card's preprocessing, then ONNX.

    Shape: ``extract`` returns (len(images), dim), float32.
    """

    def __init__(self, path: Path, data: bytes, card: AgentCard, dim: int) -> None:
        self.name = card.features
        self.cache_name = f"{card.features}+onnx"
        self.prep = card.preprocessing
        self.graph = OnnxGraph(path, data)
        self.dim = dim

    def extract(self, images: list[Image.Image]) -> np.ndarray:
        views = [view for im in images for view in state_views(im, self.prep)]
        pixels = model_input(views, self.prep.offset, self.prep.scale)
        pixels = pixels.reshape(len(images), -1, *pixels.shape[1:])
        sizes = np.array([[log_pixels(im)] for im in images], dtype=np.float32)
        given = {"pixels": pixels, "log_pixels": sizes}
        states = self.graph(*(given[name] for name in self.graph.input_names))
        if states.shape != (len(images), self.dim):
            raise ValueError(
                f"state graph {self.graph.path} gave {states.shape} states for "
                f"{len(images)} photos"
            )
        return states.astype(np.float32)


class ExportedPolicy:
    """The policy graph: state rows -> action indices among the exported candidates.

    Raises:
        ValueError: asked to choose among other candidates than those it was
            exported for (a service with other limits: export again).
    """

    def __init__(
        self,
        path: Path,
        data: bytes,
        card: AgentCard,
        candidates: Sequence[int],
        dim: int,
    ) -> None:
        self.graph = OnnxGraph(path, data)
        self.candidates = list(candidates)
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
        rows = np.atleast_2d(states).astype(np.float32)
        chosen = self.graph(rows)
        if (
            chosen.shape != (len(rows),)
            or chosen.dtype != np.int64
            or not np.isin(chosen, self.candidates).all()
        ):
            raise ValueError(
                f"policy graph {self.graph.path} chose no candidate action "
                f"({chosen.dtype} {chosen.shape}: {chosen.ravel()[:3].tolist()})"
            )
        return chosen


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
    if not candidates:
        raise ValueError(f"damaged agent card {folder / CARD_FILE}: no candidates")
    data = _vouched_graphs(folder, card)
    _check_references(folder, card)
    dim = _check_graphs(folder, card, data, candidates)
    prep = card.preprocessing
    if card.tensors and card.tensors != graph_tensors(prep.input_size, prep.views, dim):
        raise ValueError(
            f"damaged agent card {folder / CARD_FILE}: the tensors it lists are "
            "not its graphs'"
        )
    policy = ExportedPolicy(
        folder / POLICY_GRAPH, data[POLICY_GRAPH], card, candidates, dim
    )
    features = ExportedFeatures(folder / STATE_GRAPH, data[STATE_GRAPH], card, dim)
    return card, features, policy


def _vouched_graphs(folder: Path, card: AgentCard) -> dict[str, bytes]:
    """The bytes of each graph, read bounded (graph_check.read_graph) and checked
    against the SHA-256 the card holds before anything parses them. A card holds
    the hashes of every graph or, of format 1 (exported before cards held them),
    of none; then the graphs are judged by what they hold alone.

    Raises:
        ValueError: one line naming the card or the graph.
    """
    if (card.graphs or card.format > 1) and set(card.graphs) != set(GRAPH_FILES):
        listed = ", ".join(sorted(card.graphs)) or "no graph"
        raise ValueError(
            f"damaged agent card {folder / CARD_FILE}: it vouches for {listed}, "
            "not every graph"
        )
    data = {}
    for name in GRAPH_FILES:
        content = read_graph(folder / name)
        vouched = card.graphs.get(name)
        if vouched is not None and hashlib.sha256(content).hexdigest() != vouched:
            raise ValueError(
                f"graph {folder / name} is not the one its card describes (its "
                "SHA-256 differs): export the agent again"
            )
        data[name] = content
    return data


def _check_references(folder: Path, card: AgentCard) -> None:
    """Each reference photo the card lists is there, a bounded regular file, with
    the SHA-256 the card holds (the card's own checks keep each path a plain name
    under ``reference/``).

    Raises:
        ValueError: one line naming the photo.
    """
    for reference in card.reference:
        path = folder / reference.file
        try:
            content = read_small(path, MAX_REFERENCE_BYTES)
        except OSError as err:
            raise ValueError(
                f"cannot read reference photo {path}: {err.strerror or err}"
            ) from None
        except ValueError as err:
            raise ValueError(f"reference photo {path}: {err}") from None
        if hashlib.sha256(content).hexdigest() != reference.sha256:
            raise ValueError(
                f"reference photo {path} is not the one its card describes (its "
                "SHA-256 differs): export the agent again"
            )


def _check_graphs(
    folder: Path, card: AgentCard, data: dict[str, bytes], candidates: list[int]
) -> int:
    """The state's length, once both graphs are what an export writes for this
    card: the operators it uses, bounded static shapes, the card's views and input
    size, the card's actions (graph_check).

    Raises:
        ValueError: one line naming the graph.
    """
    state_path, policy_path = folder / STATE_GRAPH, folder / POLICY_GRAPH
    state = inspect_graph(data[STATE_GRAPH], state_path)
    policy = inspect_graph(data[POLICY_GRAPH], policy_path)
    prep, batch = card.preprocessing, CHECK_BATCH
    size = prep.input_size
    inputs = {"pixels": (batch, prep.views, 3, size, size), "log_pixels": (batch, 1)}
    shapes = output_shapes(state, inputs, state_path)
    if (
        [o.dtype for o in state.outputs] != [FLOAT32]
        or len(shapes) != 1
        or len(shapes[0]) != 2
        or shapes[0][0] != batch
        or not 0 < shapes[0][1] <= 1 << 16
    ):
        raise ValueError(f"graph {state_path} does not make one state per photo")
    dim = shapes[0][1]
    if output_shapes(policy, {"state": (batch, dim)}, policy_path) != [(batch,)] or [
        o.dtype for o in policy.outputs
    ] != [INT64]:
        raise ValueError(f"graph {policy_path} does not choose one action per photo")
    listed = {ACTIONS_KEY: list(card.actions), CANDIDATES_KEY: candidates}
    for key, expected in listed.items():
        text = policy.metadata.get(key)
        if text is None and not card.graphs:
            continue  # exported before graphs named their actions
        if text is None or _json(text) != expected:
            raise ValueError(
                f"graph {policy_path} was exported for other actions than its card "
                f"lists ({key}): export the agent again"
            )
    return dim


def _json(text: str) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None

"""``adacompress export``: an agent as files a device runs without the training stack.

Two ONNX graphs and a card (:mod:`adacompress.device.exported` reads them):
``state.onnx`` maps the preprocessed views of a batch of photos and their log pixel
counts to the policy's state, exactly as the agent's extractor computes it;
``policy.onnx`` maps states to the chosen action, the feature scaling, the candidate
mask (the service's formats, no dominated action) and the survival threshold inside.
Only EfficientNet-Lite states export: the others need torch or code on the device.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import PIL
import PIL.features
import torch
from torch import nn

from adacompress.core.efficientnet import LiteNetwork
from adacompress.core.engine import OPSET, export_graph
from adacompress.device.card import AgentCard, Preprocessing
from adacompress.device.card_file import CARD_FILE
from adacompress.device.card_spec import REFERENCE_FOLDER
from adacompress.device.compressor import load_compressor
from adacompress.device.export_card import (
    described,
    graph_metadata,
    policy_doc,
    state_doc,
)
from adacompress.device.exported import (
    ACTIONS_KEY,
    CANDIDATES_KEY,
    POLICY_GRAPH,
    STATE_GRAPH,
)
from adacompress.device.features.lite import (
    CONFIDENCE_TOP,
    LiteFeatures,
    ScaleConfidenceFeatures,
)
from adacompress.device.reference import reference_photos, reference_vectors
from basekit.atomic import atomic_write

if TYPE_CHECKING:
    from adacompress.device.compressor import Compressor


class LiteState(nn.Module):
    """The Lite0 states as one module. Shape: pixels (n, views, 3, s, s) and log
    pixel counts (n, 1) -> (n, dim): the pooled features; or the top-10
    probabilities and the log pixel count, then per probe view the probability of
    the full view's top-1 class, the top-1 probability and whether it is unchanged.
    """

    def __init__(self, network: nn.Module, pooled: bool) -> None:
        super().__init__()
        self.network, self.pooled = network, pooled

    def forward(self, pixels: torch.Tensor, log_pixels: torch.Tensor) -> torch.Tensor:
        n, views = pixels.shape[0], pixels.shape[1]
        rows = self.network(pixels.flatten(0, 1))
        if self.pooled:
            return rows
        probs = rows.view(n, views, -1)
        full, probes = probs[:, 0], probs[:, 1:]
        top = full.topk(CONFIDENCE_TOP, dim=1).values
        label = full.argmax(dim=1)
        at_label = probes.gather(2, label.view(n, 1, 1).expand(n, views - 1, 1))
        top1 = probes.max(dim=2, keepdim=True).values
        same = (probes.argmax(dim=2, keepdim=True) == label.view(n, 1, 1)).float()
        per_view = torch.cat([at_label, top1, same], dim=2).flatten(1)
        return torch.cat([top, log_pixels, per_view], dim=1)


class PolicyChoice(nn.Module):
    """State rows -> the greedy action among the candidates, as the policy chooses
    it (:meth:`~adacompress.device.policies.base.LearnedPolicy.greedy_graph`).

    Shape: (n, dim) -> (n,).
    """

    def __init__(self, compressor: Compressor) -> None:
        super().__init__()
        policy = compressor.learned
        s = policy.settings
        self.policy = policy
        self.network = policy.network
        mask = torch.zeros(s.n_actions, dtype=torch.bool)
        mask[list(compressor.candidates)] = True
        self.mask: torch.Tensor
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mask", mask)
        self.register_buffer("mean", torch.from_numpy(policy.feature_mean))
        self.register_buffer("std", torch.from_numpy(policy.feature_std))

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        scores = self.network((states - self.mean) / self.std)
        return self.policy.greedy_graph(scores, self.mask)


def _state_module(compressor: Compressor) -> tuple[LiteState, Preprocessing]:
    extractor = compressor.extractor
    if isinstance(extractor, ScaleConfidenceFeatures):
        prep, pooled = extractor.preprocessing, False
    elif isinstance(extractor, LiteFeatures):
        prep = Preprocessing(input_size=extractor.input_size)
        pooled = not extractor.confidence
    else:
        raise ValueError(
            f"agents with {extractor.name!r} features do not export (only the "
            "EfficientNet-Lite0 states: lite0, confidence, confidence@N, "
            "confidence-scales, confidence-scales@N)"
        )
    output = "pooled" if pooled else "probabilities"
    network = LiteNetwork("lite0", prep.input_size, output)
    return LiteState(network.module(), pooled), prep


def export_agent(compressor: Compressor, out: str | Path) -> AgentCard:
    """Write ``compressor``'s agent to the folder ``out`` (replaced if it holds an
    export): ``card.json``, ``state.onnx``, ``policy.onnx`` and the reference
    photos in ``reference/``, whose expected state, action and upload the card
    records, as the export loaded back makes them.

    Raises:
        ValueError: the agent's state does not export (one line).
    """
    out = Path(out)
    state, prep = _state_module(compressor)
    card = _export_card(compressor, prep)
    graphs = _graphs(compressor, state, prep, card)
    card = replace(
        card,
        graphs={
            name: hashlib.sha256(data).hexdigest() for name, data in graphs.items()
        },
    )
    return _write_export(out, card, graphs)


def _export_card(compressor: Compressor, prep: Preprocessing) -> AgentCard:
    """The agent's card as exported: its preprocessing, the limits and candidate
    formats it was exported for, and the versions that made it."""
    limits = compressor.limits
    return described(
        replace(
            compressor.card,
            preprocessing=prep,
            limits={
                "formats": None if limits.formats is None else sorted(limits.formats),
                "min_side": limits.min_side,
                "max_bytes": limits.max_bytes,
                "candidates": list(compressor.candidates),
            },
            versions={
                "adacompress": importlib.metadata.version("adacompress"),
                "torch": torch.__version__,
                "onnxruntime": importlib.metadata.version("onnxruntime"),
                "opset": str(OPSET),
                "pillow": PIL.__version__,
                "libjpeg-turbo": str(PIL.features.version("libjpeg_turbo")),
            },
        ),
        limits,
        compressor.policy.settings.state_dim,
    )


def _graphs(
    compressor: Compressor, state: LiteState, prep: Preprocessing, card: AgentCard
) -> dict[str, bytes]:
    """The state and policy ONNX graphs, each file's bytes with the card's
    metadata in them."""
    state_dim = compressor.policy.settings.state_dim
    pixels = np.zeros((1, prep.views, 3, prep.input_size, prep.input_size), np.float32)
    sizes = np.zeros((1, 1), np.float32)
    state_graph = export_graph(
        state, (pixels, sizes), (("pixels", "log_pixels"), ("state",))
    )
    policy_graph = export_graph(
        PolicyChoice(compressor).eval(),
        (np.zeros((1, state_dim), np.float32),),
        (("state",), ("action",)),
    )
    return {
        STATE_GRAPH: with_metadata(
            state_graph, graph_metadata(card, "state"), state_doc(card)
        ),
        POLICY_GRAPH: with_metadata(
            policy_graph,
            {
                ACTIONS_KEY: json.dumps([a.key for a in compressor.actions]),
                CANDIDATES_KEY: json.dumps(list(compressor.candidates)),
                **graph_metadata(card, "policy"),
            },
            policy_doc(card),
        ),
    }


def _write_export(out: Path, card: AgentCard, graphs: dict[str, bytes]) -> AgentCard:
    """Write the graphs, the reference photos and the card to ``out``; the card
    with the reference vectors the export loaded back makes."""
    if out.exists() and not (out / CARD_FILE).is_file() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty and holds no exported agent")
    (out / REFERENCE_FOLDER).mkdir(parents=True, exist_ok=True)
    photos = reference_photos()
    files = {
        **graphs,
        **{f"{REFERENCE_FOLDER}/{photo.name}": photo.data for photo in photos},
    }
    for name, data in files.items():
        atomic_write(out / name, lambda handle, data=data: handle.write(data))  # type: ignore[misc]
    _write_card(out, card)  # loaded back to make the reference vectors
    exported = load_compressor(out)
    card = replace(card, reference=reference_vectors(exported, photos))
    _write_card(out, card)
    return card


def _write_card(out: Path, card: AgentCard) -> None:
    text = card.to_json()
    atomic_write(out / CARD_FILE, lambda handle: handle.write(text.encode()))


def with_metadata(
    graph: bytes, entries: dict[str, str], doc_string: str | None = None
) -> bytes:
    """The ONNX model ``graph`` with ``entries`` added to its ``metadata_props``
    (field 14 of ``ModelProto``) and ``doc_string`` as its doc string (field 6): a
    repeated field may be appended to a serialized message, and a later value of a
    singular one replaces the earlier, so no ``onnx`` round trip is needed."""
    out = bytearray(graph)
    if doc_string is not None:
        out += _field(6, doc_string.encode())
    for key, value in entries.items():
        entry = _field(1, key.encode()) + _field(2, value.encode())
        out += _field(14, entry)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)

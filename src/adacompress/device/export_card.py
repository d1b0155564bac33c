"""What an export says about itself (docs/agent-card.md): the card's name and
version, the weights' origin and licence, the intended use, the measured metrics
and the tensors, and the doc strings and metadata of its two ONNX graphs."""

from __future__ import annotations

import importlib.metadata
import json
from dataclasses import asdict, replace
from pathlib import Path

from adacompress.core.efficientnet import (
    VARIANTS,
    WEIGHTS_LICENCE,
    WEIGHTS_ORIGIN,
    WEIGHTS_VERIFIED,
    weights_path,
)
from adacompress.core.engine import weights_digest
from adacompress.core.limits import NO_LIMITS, UploadLimits
from adacompress.device.card import AgentCard
from adacompress.device.card_spec import Weights, graph_tensors
from adacompress.device.zoo import MEASURED

STATE_NETWORK = "lite0"
"""Every exported state runs EfficientNet-Lite0, whatever the backend."""
SPEC = "docs/agent-card.md"
"""Where the algorithm around the graphs is written out, in adacompress."""
KEY = "adacompress."
"""The prefix of every metadata entry an export writes into its graphs."""


def described(card: AgentCard, limits: UploadLimits, dim: int) -> AgentCard:
    """``card`` (the agent's, with its preprocessing and limits) with what makes it
    a spec: version, weights, intended use, metrics (a shipped agent's, measured
    without upload limits; none otherwise) and tensors."""
    path = weights_path(STATE_NETWORK)
    package = VARIANTS[STATE_NETWORK].package
    weights = Weights(
        network=f"EfficientNet-{STATE_NETWORK.capitalize()}",
        file=Path(path).name,
        sha256=weights_digest(path),
        package=f"{package} {importlib.metadata.version(package)}",
        origin=WEIGHTS_ORIGIN,
        licence=WEIGHTS_LICENCE,
        verified=WEIGHTS_VERIFIED,
    )
    prep = card.preprocessing
    return replace(
        card,
        version=importlib.metadata.version("adacompress"),
        weights=weights,
        intended_use=intended_use(card),
        metrics=MEASURED.get(card.name, ()) if limits == NO_LIMITS else (),
        tensors=graph_tensors(prep.input_size, prep.views, dim),
    )


def intended_use(card: AgentCard) -> str:
    """What the agent is for, and what not, from its card."""
    target = card.target_accuracy
    keeps = (
        f"in about {target:.0%} of photos"
        if target is not None
        else "as often as" " its reward weighed it against the bytes"
    )
    return (
        f"Before a photo is uploaded to the {card.backend} image-labelling "
        f"service, choose how to encode it (format, downscale, quality) so that "
        f"the service's top-1 label for the photo at JPEG quality 75 stays among "
        f"its top-{card.top_k} labels for the upload {keeps}, with fewer bytes. "
        "Trained on that service's answers (the shipped agents: on the 700 photos "
        "of imagenet-samples' train split, short sides 188-509 px from the 5th to "
        "the 95th percentile; a photo with a longer short side is first reduced "
        "to photo_cap, so phone-size photos are decided as photos of that kind); "
        "for another service, or photos far "
        "from those, train again (adacompress train, or the running system's "
        "retraining). Not an image codec: it "
        "chooses among the card's actions only, and says nothing of what the "
        "photo shows."
    )


def state_doc(card: AgentCard) -> str:
    """The doc string of the state graph: its tensors and where the rest is."""
    prep = card.preprocessing
    size, views = prep.input_size, prep.views
    return (
        f"adacompress agent {card.name} {card.version}: the state of each photo. "
        f"Input pixels float32 [batch, {views}, 3, {size}, {size}]: the photo's "
        f"view(s), RGB, (x - {prep.offset}) / {prep.scale}; the view is the centre "
        f"{size}/{size + prep.crop_padding} of the shorter side resized "
        f"{card.algorithm.view_resize} to {size}x{size}. Input log_pixels float32 "
        "[batch, 1]: the natural log of width x height of the photo as the agent "
        "sees it (EXIF orientation applied, reduced to photo_cap). Output state "
        "float32 [batch, n]. Every step is written out in card.json (preprocessing, "
        f"algorithm, photo_cap) and in {SPEC} of adacompress."
    )


def policy_doc(card: AgentCard) -> str:
    """The doc string of the policy graph."""
    return (
        f"adacompress agent {card.name} {card.version}: the action for each state. "
        "Input state float32 [batch, n] (state.onnx's output); output action int64 "
        "[batch]: an index into card.json's actions, always one of "
        "limits.candidates. The feature scaling, the candidate mask and the "
        f"{card.policy} policy's decision are inside. How an action is applied: "
        f"card.json (algorithm, limits) and {SPEC} of adacompress."
    )


def graph_metadata(card: AgentCard, graph: str) -> dict[str, str]:
    """The metadata entries both graphs carry: the agent's name and version, where
    the spec is, and the state graph the preparation of a photo."""
    entries = {
        f"{KEY}name": card.name,
        f"{KEY}version": card.version,
        f"{KEY}spec": SPEC,
    }
    if graph == "state":
        entries[f"{KEY}preprocessing"] = json.dumps(asdict(card.preprocessing))
        entries[f"{KEY}photo_cap"] = json.dumps(card.photo_cap)
        entries[f"{KEY}algorithm"] = json.dumps(asdict(card.algorithm))
    else:
        entries[f"{KEY}policy"] = card.policy
        entries[f"{KEY}threshold"] = json.dumps(card.threshold)
    return entries

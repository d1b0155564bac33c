"""Property-based fuzzing of the untrusted agent inputs (issue 31): any card, any
agent file -> a result or one line (ValueError), never another exception."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adacompress.device.card import AgentCard
from adacompress.device.compressor import Compressor
from adacompress.device.onnx_reader import read_model
from adacompress.device.policies.files import load_policy
from adacompress.device.zoo import shipped

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=6)
    | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=30,
)

VALID_CARD: dict[str, Any] = json.loads(
    AgentCard.from_metadata(
        {"action_set": "paper"}, policy="q", threshold=None
    ).to_json()
)
CARD_PATHS = [
    ("backend",),
    ("actions",),
    ("policy",),
    ("threshold",),
    ("top_k",),
    ("alpha",),
    ("target_accuracy",),
    ("preprocessing",),
    ("preprocessing", "input_size"),
    ("preprocessing", "probe_scales"),
    ("preprocessing", "probe_from"),
    ("preprocessing", "scale"),
    ("limits",),
    ("limits", "formats"),
    ("limits", "max_bytes"),
    ("limits", "candidates"),
    ("versions",),
    ("graphs",),
    ("photo_cap",),
    ("name",),
    ("version",),
    ("source_sha256",),
    ("intended_use",),
    ("weights",),
    ("metrics",),
    ("tensors",),
    ("algorithm",),
    ("algorithm", "fallback_qualities"),
    ("reference",),
]


def _one_line(err: ValueError) -> None:
    assert str(err) and "\n" not in str(err)


def _parse(data: Any) -> None:
    try:
        card = AgentCard.parse(data, "card.json")
    except ValueError as err:
        _one_line(err)
    else:
        card.action_tuple()
        card.upload_limits()


@FUZZ
@given(st.dictionaries(st.text(max_size=12), json_values, max_size=8))
def test_any_json_object_is_a_card_or_one_line(data: dict[str, Any]) -> None:
    _parse(data)


@FUZZ
@given(st.sampled_from(CARD_PATHS), json_values)
def test_a_card_with_any_field_changed_is_a_card_or_one_line(
    path: tuple[str, ...], value: Any
) -> None:
    data = json.loads(json.dumps(VALID_CARD))
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    _parse(data)


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_card_file_is_a_card_or_one_line(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "card.json").write_bytes(content)
        try:
            AgentCard.read(folder)
        except ValueError as err:
            _one_line(err)


@FUZZ
@given(st.binary(max_size=600))
def test_any_bytes_are_a_graph_structure_or_one_line(content: bytes) -> None:
    try:
        read_model(content)
    except ValueError as err:
        _one_line(err)


PAYLOAD = torch.load(shipped("lite0-paper").file, weights_only=True)
SETTING_VALUES = (
    json_values
    | st.lists(st.integers(min_value=-5, max_value=10**6), max_size=4)
    | st.integers(min_value=-(10**9), max_value=10**9)
)
tensors = st.builds(
    lambda shape, dtype, fill: torch.full(shape, fill).to(dtype),
    st.lists(st.integers(min_value=0, max_value=12), max_size=2).map(tuple),
    st.sampled_from([torch.float32, torch.float64, torch.int64, torch.complex64]),
    st.sampled_from([0.0, 1.0, -1.0, float("nan"), float("inf")]),
)


@FUZZ
@given(
    st.sampled_from(sorted(PAYLOAD["settings"])),
    SETTING_VALUES,
    st.sampled_from(["feature_mean", "feature_std", "epsilon", "steps", "metadata"]),
    tensors | json_values,
    st.sampled_from(["top_k", "alpha", "actions", "features", "action_set"]),
    json_values,
)
def test_any_agent_file_is_an_agent_or_one_line(
    setting: str,
    setting_value: Any,
    key: str,
    value: Any,
    meta_key: str,
    meta_value: Any,
) -> None:
    payload = dict(PAYLOAD)
    payload["settings"] = {**PAYLOAD["settings"], setting: setting_value}
    payload[key] = value
    payload["metadata"] = {**PAYLOAD["metadata"], meta_key: meta_value}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "agent.pt")
        torch.save(payload, path)
        try:
            load_policy(path)
            Compressor.load(path)
        except ValueError as err:
            _one_line(err)


@FUZZ
@given(st.binary(max_size=400))
def test_any_bytes_are_an_agent_file_or_one_line(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "agent.pt")
        path.write_bytes(content)
        try:
            load_policy(path)
        except ValueError as err:
            _one_line(err)

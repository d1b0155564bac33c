"""An ONNX file's structure, read from the protobuf wire format without the ``onnx``
package (a device has ONNX Runtime only).

Only what :mod:`adacompress.device.graph_check` judges is kept: the opsets, the
graph's inputs and outputs, its nodes (operator, wiring, attributes), the shapes of
its initializers (the values of small integer ones) and the model's metadata. Weights
are skipped by their length, never decoded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_NESTING = 8
"""Messages nest this deep at most in an exported graph (model, graph, node,
attribute, tensor); deeper is refused."""
SMALL_VALUES = 4096
"""Integer tensors up to this many elements are decoded (shape arithmetic)."""

INT_TYPES = {6: np.int32, 7: np.int64, 9: np.bool_}
"""ONNX data types whose small values the shape check reads (int32, int64, bool)."""


class ProtoError(ValueError):
    """Not a well-formed ONNX model (one line)."""


@dataclass
class Tensor:
    """A tensor's type and shape, and its value when small and integer."""

    dtype: int = 0
    dims: tuple[int, ...] = ()
    value: np.ndarray | None = None
    external: bool = False


@dataclass
class Node:
    op: str = ""
    domain: str = ""
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    subgraph: bool = False
    """an attribute holds a graph (a Loop's or an If's body)"""


@dataclass
class ValueInfo:
    """A graph input or output: its element type and dims (str: symbolic)."""

    name: str = ""
    dtype: int = 0
    dims: tuple[int | str, ...] = ()


@dataclass
class Model:
    opsets: dict[str, int] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    initializers: dict[str, Tensor] = field(default_factory=dict)
    inputs: list[ValueInfo] = field(default_factory=list)
    outputs: list[ValueInfo] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    extras: bool = False
    """it holds functions, training info or sparse initializers"""


def read_model(data: bytes) -> Model:
    """The structure of the serialized ONNX ``ModelProto`` ``data``.

    Raises:
        ProtoError: not a well-formed model (one line).
    """
    model = Model()
    graph_seen = False
    for number, value in _fields(memoryview(data), 0):
        if number == 7:
            if graph_seen:
                raise ProtoError("more than one graph")
            graph_seen = True
            _read_graph(_bytes(value), model)
        elif number == 8:
            opset = dict(_fields(_bytes(value), 1))
            domain = _text(opset.get(1, memoryview(b"")))
            model.opsets[domain] = _int(opset.get(2, 0))
        elif number == 14:
            entry = dict(_fields(_bytes(value), 1))
            empty = memoryview(b"")
            model.metadata[_text(entry.get(1, empty))] = _text(entry.get(2, empty))
        elif number in (20, 25):
            model.extras = True
    if not graph_seen:
        raise ProtoError("no graph")
    return model


def _read_graph(data: memoryview, model: Model) -> None:
    for number, value in _fields(data, 1):
        if number == 1:
            model.nodes.append(_read_node(_bytes(value)))
        elif number == 5:
            name, tensor = _read_tensor(_bytes(value), 2)
            model.initializers[name] = tensor
        elif number == 11:
            model.inputs.append(_read_value_info(_bytes(value)))
        elif number == 12:
            model.outputs.append(_read_value_info(_bytes(value)))
        elif number == 15:
            model.extras = True


def _read_node(data: memoryview) -> Node:
    node = Node()
    for number, value in _fields(data, 2):
        if number == 1:
            node.inputs.append(_text(value))
        elif number == 2:
            node.outputs.append(_text(value))
        elif number == 4:
            node.op = _text(value)
        elif number == 7:
            node.domain = _text(value)
        elif number == 5:
            name, attribute, subgraph = _read_attribute(_bytes(value))
            node.attributes[name] = attribute
            node.subgraph |= subgraph
    return node


def _read_attribute(data: memoryview) -> tuple[str, Any, bool]:
    name, value, subgraph = "", None, False
    ints: list[int] = []
    for number, raw in _fields(data, 3):
        if number == 1:
            name = _text(raw)
        elif number == 2:
            value = struct.unpack("<f", struct.pack("<I", _int(raw)))[0]
        elif number == 3:
            value = _signed(_int(raw))
        elif number == 4:
            value = _text(raw)
        elif number == 5:
            value = _read_tensor(_bytes(raw), 4)[1]
        elif number in (6, 11):
            subgraph = True
        elif number == 8:
            ints.extend(_varints(raw))
    if ints:
        value = ints
    return name, value, subgraph


def _read_tensor(data: memoryview, depth: int) -> tuple[str, Tensor]:
    name, tensor = "", Tensor()
    dims: list[int] = []
    raw: memoryview | None = None
    listed: list[int] = []
    for number, value in _fields(data, depth):
        if number == 1:
            dims.extend(_varints(value))
        elif number == 2:
            tensor.dtype = _int(value)
        elif number == 8:
            name = _text(value)
        elif number == 9:
            raw = _bytes(value)
        elif number in (5, 7):
            listed.extend(_varints(value))
        elif number in (13, 14):
            tensor.external = tensor.external or number == 13 or _int(value) == 1
    if any(d < 0 or d > 1 << 40 for d in dims):
        raise ProtoError("a tensor with a negative or absurd dimension")
    tensor.dims = tuple(dims)
    count = int(np.prod(dims, dtype=np.float64)) if dims else 1
    if tensor.dtype in INT_TYPES and count <= SMALL_VALUES:
        tensor.value = _int_values(tensor.dtype, raw, listed, count).reshape(dims)
    return name, tensor


def _int_values(
    dtype: int, raw: memoryview | None, listed: list[int], count: int
) -> np.ndarray:
    kind = INT_TYPES[dtype]
    if raw is not None and len(raw):
        width = np.dtype(kind).itemsize
        if len(raw) != width * count:
            raise ProtoError("a tensor's data does not match its shape")
        return np.frombuffer(bytes(raw), kind).astype(np.int64)
    if len(listed) != count:
        raise ProtoError("a tensor's data does not match its shape")
    return np.array([_signed(v) for v in listed], np.int64)


def _read_value_info(data: memoryview) -> ValueInfo:
    info = ValueInfo()
    for number, value in _fields(data, 2):
        if number == 1:
            info.name = _text(value)
        elif number == 2:
            for kind, tensor_type in _fields(_bytes(value), 3):
                if kind != 1:
                    raise ProtoError(f"input or output {info.name!r} is not a tensor")
                for part, content in _fields(_bytes(tensor_type), 4):
                    if part == 1:
                        info.dtype = _int(content)
                    elif part == 2:
                        info.dims = tuple(_read_dims(_bytes(content)))
    return info


def _read_dims(data: memoryview) -> list[int | str]:
    dims: list[int | str] = []
    for number, value in _fields(data, 5):
        if number == 1:
            dim = dict(_fields(_bytes(value), 6))
            dims.append(_text(dim[2]) if 2 in dim else _signed(_int(dim.get(1, 0))))
    return dims


# -- the wire format -------------------------------------------------------------


def _fields(data: memoryview, depth: int) -> list[tuple[int, Any]]:
    """The (field number, value) pairs of one message: ints for varints and fixed
    widths, memoryviews for length-delimited fields."""
    if depth > MAX_NESTING:
        raise ProtoError("nested too deep")
    out: list[tuple[int, Any]] = []
    value: Any
    position, end = 0, len(data)
    while position < end:
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtoError("field number 0")
        if wire == 0:
            value, position = _varint(data, position)
        elif wire == 1:
            value, position = _fixed(data, position, 8)
        elif wire == 5:
            value, position = _fixed(data, position, 4)
        elif wire == 2:
            length, position = _varint(data, position)
            if position + length > end:
                raise ProtoError("truncated")
            value, position = data[position : position + length], position + length
        else:
            raise ProtoError(f"wire type {wire}")
        out.append((number, value))
    return out


def _varint(data: memoryview, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise ProtoError("truncated or overlong varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


def _fixed(data: memoryview, position: int, width: int) -> tuple[int, int]:
    if position + width > len(data):
        raise ProtoError("truncated")
    return int.from_bytes(data[position : position + width], "little"), position + width


def _varints(value: Any) -> list[int]:
    """A repeated integer field: one varint, or a packed run of them."""
    if isinstance(value, int):
        return [value]
    out, position = [], 0
    while position < len(value):
        number, position = _varint(value, position)
        out.append(number)
    return out


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _int(value: Any) -> int:
    if not isinstance(value, int):
        raise ProtoError("a number field holds bytes")
    return value


def _bytes(value: Any) -> memoryview:
    if not isinstance(value, memoryview):
        raise ProtoError("a message field holds a number")
    return value


def _text(value: Any) -> str:
    try:
        return bytes(_bytes(value)).decode("utf-8")
    except UnicodeDecodeError:
        raise ProtoError("a name is not UTF-8") from None

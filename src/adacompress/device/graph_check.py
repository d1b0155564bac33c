"""What an exported agent's graph may be: read safely, then judged before ONNX
Runtime sees it.

An agent folder from elsewhere is untrusted: a graph could be a FIFO, hold a loop
that never ends, or make tensors of any size (``ConstantOfShape [40000, 40000]``).
So a graph is read only if it is a regular file of bounded size, and is accepted only
if it uses the operators ``adacompress export`` writes (no loops, no subgraphs, no
custom domains, no external data) and if every tensor it computes, for a batch of
:data:`CHECK_BATCH` photos, has a static shape within bounds: the shapes are worked
out node by node here, the small integer tensors that carry shapes evaluated with
numpy (docs/security.md).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adacompress.device.onnx_reader import (
    SMALL_VALUES,
    Model,
    Node,
    ProtoError,
    Tensor,
    read_model,
)

MAX_GRAPH_BYTES = 64 << 20
"""The largest graph file read (an exported state graph is tens of megabytes)."""
MAX_NODES = 4000
CHECK_BATCH = 16
"""The batch the shapes are checked at: a compressor's batch of photos."""
MAX_ELEMENTS = 1 << 27
"""The most elements any one tensor may have at :data:`CHECK_BATCH`."""
MAX_TOTAL_ELEMENTS = 1 << 32
"""The most elements all tensors of one run may have together."""
MAX_MACS = 1 << 37
"""The most multiply-adds (convolutions and matrix products) of one run."""
MAX_OPSET = 21

ELEMENTWISE = {
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Equal": np.equal,
    "Greater": np.greater,
    "GreaterOrEqual": np.greater_equal,
    "And": np.logical_and,
}
SAME_SHAPE = {"Clip", "Relu", "Sigmoid", "Softmax", "Cast"}
REDUCE = {"ReduceMean", "ReduceMax", "ReduceSum"}
ALLOWED_OPS = frozenset(
    {*ELEMENTWISE, *SAME_SHAPE, *REDUCE}
    | {"Div", "Where", "Constant", "Shape", "Gather", "GatherElements", "Slice"}
    | {"Concat", "Reshape", "ConstantOfShape", "Transpose", "Pad", "Conv", "Gemm"}
    | {"TopK", "ArgMax", "ArgMin", "Expand", "Tile", "Unsqueeze", "Flatten"}
)
"""The operators ``adacompress export`` writes (the Lite0 states and both
policies' choices)."""


class GraphError(ValueError):
    """A graph refused (one line)."""


def read_graph(path: Path) -> bytes:
    """The bytes of the graph file ``path``: a regular file of bounded size, opened
    without blocking (a FIFO is refused, never waited on).

    Raises:
        GraphError: missing, not a regular file, too large, unreadable (one line).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise GraphError(f"graph not found: {path}") from None
    except OSError as err:
        raise GraphError(f"cannot read graph {path}: {err.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise GraphError(f"graph {path} is not a regular file")
        if info.st_size > MAX_GRAPH_BYTES:
            raise GraphError(f"graph {path} is over {MAX_GRAPH_BYTES >> 20} MiB")
        data = handle.read(MAX_GRAPH_BYTES + 1)
    if len(data) > MAX_GRAPH_BYTES:
        raise GraphError(f"graph {path} is over {MAX_GRAPH_BYTES >> 20} MiB")
    return data


def inspect_graph(data: bytes, path: Path) -> Model:
    """The structure of the graph ``data``, if it holds only what an export writes.

    Raises:
        GraphError: one line naming ``path``.
    """
    try:
        model = read_model(data)
    except (ProtoError, RecursionError, MemoryError) as err:
        raise GraphError(f"not an ONNX graph: {path} ({err})") from None
    unknown = {d for d in model.opsets if d not in ("", "ai.onnx")}
    if unknown or not 0 < model.opsets.get("", model.opsets.get("ai.onnx", 0)):
        raise GraphError(f"graph {path} uses other operator sets ({sorted(unknown)})")
    if max(model.opsets.values()) > MAX_OPSET or model.extras:
        raise GraphError(f"graph {path} holds more than an exported agent writes")
    if len(model.nodes) > MAX_NODES:
        raise GraphError(f"graph {path} has over {MAX_NODES} operators")
    for node in model.nodes:
        if node.op not in ALLOWED_OPS or node.domain not in ("", "ai.onnx"):
            raise GraphError(
                f"graph {path} uses the operator {node.op!r}, which an exported "
                "agent does not"
            )
        if node.subgraph:
            raise GraphError(f"graph {path} holds a subgraph ({node.op})")
    if any(t.external for t in model.initializers.values()):
        raise GraphError(f"graph {path} refers to external data")
    return model


@dataclass
class Value:
    """A tensor as the check sees it: its shape, and its value when small and
    integer (the shape arithmetic)."""

    shape: tuple[int, ...]
    value: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1


def output_shapes(
    model: Model, inputs: Mapping[str, tuple[int, ...]], path: Path
) -> list[tuple[int, ...]]:
    """The shapes of the graph's outputs when its inputs have the shapes
    ``inputs`` (a graph may leave out inputs it does not use), each tensor on the
    way bounded.

    Raises:
        GraphError: a declared input that disagrees, an unbounded or inconsistent
            shape (one line naming ``path``).
    """
    env: dict[str, Value] = {"": Value((0,))}
    for name, tensor in model.initializers.items():
        env[name] = _constant(tensor)
    for declared in model.inputs:
        if declared.name in env:
            continue
        shape = inputs.get(declared.name)
        if shape is None:
            raise GraphError(f"graph {path} has an unexpected input {declared.name!r}")
        static = [d for d in declared.dims[1:] if isinstance(d, int)]
        # the batch is symbolic, as an export writes it: a fixed one passes the
        # check at CHECK_BATCH and fails at ONNX Runtime on any other batch
        batch = declared.dims[0] if declared.dims else None
        if (
            len(declared.dims) != len(shape)
            or not isinstance(batch, str)
            or static != list(shape[1:])
        ):
            raise GraphError(
                f"graph {path}: input {declared.name!r} is "
                f"{list(declared.dims)}, not [batch, {', '.join(map(str, shape[1:]))}]"
            )
        env[declared.name] = Value(tuple(shape))
    total, macs = 0, 0
    for node in model.nodes:
        try:
            args = [env[name] for name in node.inputs]
        except KeyError as err:
            raise GraphError(
                f"graph {path}: {node.op} reads {err} before it is made"
            ) from None
        try:
            results, cost = _run(node, args)
        except (GraphError, ValueError, IndexError, TypeError, OverflowError) as err:
            raise GraphError(f"graph {path}: {node.op}: {err}") from None
        for name, result in zip(node.outputs, results, strict=False):
            if min(result.shape, default=1) < 0 or result.size > MAX_ELEMENTS:
                raise GraphError(
                    f"graph {path}: {node.op} makes a {result.shape} tensor"
                )
            total += result.size
            env[name] = result
        macs += cost
        if total > MAX_TOTAL_ELEMENTS or macs > MAX_MACS:
            raise GraphError(f"graph {path} computes more than an exported agent")
    try:
        return [env[out.name].shape for out in model.outputs]
    except KeyError as err:
        raise GraphError(f"graph {path}: output {err} is never made") from None


def _constant(tensor: Tensor) -> Value:
    return Value(tensor.dims, tensor.value)


def _run(node: Node, args: list[Value]) -> tuple[list[Value], int]:
    """The node's output shapes (values where small) and its multiply-adds."""
    op, attrs = node.op, node.attributes
    if op == "Conv":
        return _conv(args, attrs)
    if op == "Gemm":
        a, b = args[0].shape, args[1].shape
        m, k = (a[1], a[0]) if attrs.get("transA") else a
        k2, n = (b[1], b[0]) if attrs.get("transB") else b
        if k != k2:
            raise GraphError(f"{a} x {b}")
        return [Value((m, n))], m * n * k
    if op == "TopK":
        k = int(_known(args[1]).reshape(-1)[0])
        axis = _axis(attrs.get("axis", -1), args[0].shape)
        if not 0 <= k <= args[0].shape[axis]:
            raise GraphError(f"k={k}")
        shape = _replace(args[0].shape, axis, k)
        return [Value(shape), Value(shape)], 0
    return [_single(op, attrs, args)], 0


def _single(op: str, attrs: dict[str, Any], args: list[Value]) -> Value:
    shape = _SHAPE_RULES[op](attrs, args)
    value = None
    if int(np.prod(shape, dtype=np.int64)) <= SMALL_VALUES and op in _VALUE_RULES:
        present = [a for a in args if a.shape != (0,)]
        if op == "Shape" or all(a.value is not None for a in present):
            value = _VALUE_RULES[op]({**attrs, "__op__": op}, args)
            if value is not None and value.shape != shape:
                raise GraphError(f"values {value.shape} for shape {shape}")
    return Value(shape, value)


def _conv(args: list[Value], attrs: dict[str, Any]) -> tuple[list[Value], int]:
    x, w = args[0].shape, args[1].shape
    if len(x) != len(w) or len(x) < 3 or attrs.get("auto_pad", "NOTSET") != "NOTSET":
        raise GraphError(f"input {x}, weights {w}")
    spatial = len(x) - 2
    group = int(attrs.get("group", 1))
    strides = attrs.get("strides", [1] * spatial)
    dilations = attrs.get("dilations", [1] * spatial)
    pads = attrs.get("pads", [0] * 2 * spatial)
    if group < 1 or x[1] != w[1] * group or w[0] % group:
        raise GraphError(f"input {x}, weights {w}, groups {group}")
    out = [x[0], w[0]]
    for i in range(spatial):
        reach = (w[2 + i] - 1) * dilations[i] + 1
        padded = x[2 + i] + pads[i] + pads[i + spatial]
        if strides[i] < 1 or padded < reach:
            raise GraphError(f"input {x}, weights {w}")
        out.append((padded - reach) // strides[i] + 1)
    per_output = w[1] * int(np.prod(w[2:], dtype=np.int64))
    return [Value(tuple(out))], int(np.prod(out, dtype=np.int64)) * per_output


def _known(arg: Value) -> np.ndarray:
    if arg.value is None:
        raise GraphError("a shape that is not static")
    return arg.value


def _axis(axis: int, shape: tuple[int, ...], extra: int = 0) -> int:
    rank = len(shape) + extra
    if not -rank <= axis < rank:
        raise GraphError(f"axis {axis} of {shape}")
    return axis % rank


def _replace(shape: tuple[int, ...], axis: int, size: int) -> tuple[int, ...]:
    return (*shape[:axis], size, *shape[axis + 1 :])


def _broadcast(attrs: dict[str, Any], args: list[Value]) -> tuple[int, ...]:
    return tuple(np.broadcast_shapes(*(a.shape for a in args)))


def _reduce(attrs: dict[str, Any], args: list[Value]) -> tuple[int, ...]:
    shape = args[0].shape
    axes = attrs.get("axes")
    if len(args) > 1 and args[1].shape != (0,):
        axes = _known(args[1]).tolist()
    if axes is None:
        if attrs.get("noop_with_empty_axes"):
            return shape
        axes = list(range(len(shape)))
    axes = {_axis(int(a), shape) for a in axes}
    if attrs.get("keepdims", 1):
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _arg_reduce(attrs: dict[str, Any], args: list[Value]) -> tuple[int, ...]:
    shape = args[0].shape
    axis = _axis(attrs.get("axis", 0), shape)
    if attrs.get("keepdims", 1):
        return _replace(shape, axis, 1)
    return shape[:axis] + shape[axis + 1 :]


def _gather(attrs: dict[str, Any], args: list[Value]) -> tuple[int, ...]:
    data, indices = args[0].shape, args[1].shape
    axis = _axis(attrs.get("axis", 0), data)
    return (*data[:axis], *indices, *data[axis + 1 :])


def _slices(attrs: dict[str, Any], args: list[Value]) -> tuple[slice, ...]:
    shape = args[0].shape
    starts, ends = _known(args[1]).tolist(), _known(args[2]).tolist()
    axes = list(range(len(starts)))
    if len(args) > 3 and args[3].shape != (0,):
        axes = _known(args[3]).tolist()
    steps = [1] * len(starts)
    if len(args) > 4 and args[4].shape != (0,):
        steps = _known(args[4]).tolist()
    if not len(starts) == len(ends) == len(axes) == len(steps) or 0 in steps:
        raise GraphError("inconsistent slice")
    index = [slice(None)] * len(shape)
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        index[_axis(axis, shape)] = slice(start, end, step)
    return tuple(index)


def _slice(attrs: dict[str, Any], args: list[Value]) -> tuple[int, ...]:
    index = _slices(attrs, args)
    return tuple(
        len(range(*s.indices(d))) for s, d in zip(index, args[0].shape, strict=False)
    )


def _concat(attrs: dict[str, Any], args: list[Value]) -> tuple[int, ...]:
    first = args[0].shape
    axis = _axis(attrs.get("axis", 0), first)
    for other in args[1:]:
        if len(other.shape) != len(first) or any(
            a != b
            for i, (a, b) in enumerate(zip(first, other.shape, strict=False))
            if i != axis
        ):
            raise GraphError(f"{first} and {other.shape}")
    return _replace(first, axis, sum(a.shape[axis] for a in args))


def _reshape(attrs: dict[str, Any], args: list[Value]) -> tuple[int, ...]:
    source = args[0].shape
    target = [
        source[i] if d == 0 and not attrs.get("allowzero") else d
        for i, d in enumerate(_known(args[1]).tolist())
    ]
    size = int(np.prod(source, dtype=np.int64))
    if target.count(-1) == 1:
        rest = int(np.prod([d for d in target if d != -1], dtype=np.int64))
        if rest <= 0 or size % rest:
            raise GraphError(f"{source} to {target}")
        target[target.index(-1)] = size // rest
    if min(target, default=0) < 0 or int(np.prod(target, dtype=np.int64)) != size:
        raise GraphError(f"{source} to {target}")
    return tuple(target)


def _transpose(attrs: dict[str, Any], args: list[Value]) -> tuple[int, ...]:
    shape = args[0].shape
    perm = attrs.get("perm", list(reversed(range(len(shape)))))
    if sorted(perm) != list(range(len(shape))):
        raise GraphError(f"perm {perm} of {shape}")
    return tuple(shape[p] for p in perm)


def _pad(attrs: dict[str, Any], args: list[Value]) -> tuple[int, ...]:
    shape, pads = args[0].shape, _known(args[1]).tolist()
    if len(args) > 3 or len(pads) != 2 * len(shape):
        raise GraphError(f"pads {pads} of {shape}")
    rank = len(shape)
    return tuple(d + pads[i] + pads[i + rank] for i, d in enumerate(shape))


def _unsqueeze(attrs: dict[str, Any], args: list[Value]) -> tuple[int, ...]:
    shape = list(args[0].shape)
    axes = sorted(
        _axis(a, args[0].shape, len(_known(args[1]).reshape(-1)))
        for a in _known(args[1]).reshape(-1).tolist()
    )
    for axis in axes:
        shape.insert(axis, 1)
    return tuple(shape)


def _flatten(attrs: dict[str, Any], args: list[Value]) -> tuple[int, ...]:
    shape = args[0].shape
    axis = _axis(attrs.get("axis", 1), shape, 1)
    return (
        int(np.prod(shape[:axis], dtype=np.int64)),
        int(np.prod(shape[axis:], dtype=np.int64)),
    )


def _expand(attrs: dict[str, Any], args: list[Value]) -> tuple[int, ...]:
    target = _known(args[1]).tolist()
    if min(target, default=1) < 0:
        raise GraphError(f"expand to {target}")
    return tuple(np.broadcast_shapes(args[0].shape, tuple(target)))


def _tile(attrs: dict[str, Any], args: list[Value]) -> tuple[int, ...]:
    repeats = _known(args[1]).tolist()
    if len(repeats) != len(args[0].shape) or min(repeats, default=0) < 0:
        raise GraphError(f"repeats {repeats} of {args[0].shape}")
    return tuple(d * r for d, r in zip(args[0].shape, repeats, strict=True))


def _constant_of_shape(attrs: dict[str, Any], args: list[Value]) -> tuple[int, ...]:
    target = _known(args[0]).tolist()
    if min(target, default=0) < 0 or np.prod(target, dtype=np.float64) > MAX_ELEMENTS:
        raise GraphError(f"shape {target}")
    return tuple(target)


def _constant_node(attrs: dict[str, Any], args: list[Value]) -> tuple[int, ...]:
    tensor = attrs.get("value")
    if not isinstance(tensor, Tensor) or len(attrs) != 1:
        raise GraphError("only tensor constants")
    return tensor.dims


def _shape(attrs: dict[str, Any], args: list[Value]) -> tuple[int, ...]:
    return (len(_shape_value(attrs, args)),)


def _shape_value(attrs: dict[str, Any], args: list[Value]) -> np.ndarray:
    dims = args[0].shape
    start, end = attrs.get("start", 0), attrs.get("end", len(dims))
    return np.array(dims[slice(start, end)], np.int64)


def _div_value(attrs: dict[str, Any], args: list[Value]) -> np.ndarray:
    a, b = args[0].value, args[1].value
    assert a is not None and b is not None
    if not np.all(b):
        raise GraphError("division by zero")
    return np.trunc(a / b).astype(np.int64)


_Rule = Callable[[dict[str, Any], list[Value]], tuple[int, ...]]
_SHAPE_RULES: dict[str, _Rule] = {
    **{op: _broadcast for op in (*ELEMENTWISE, "Div", "Where")},
    **{op: (lambda attrs, args: args[0].shape) for op in SAME_SHAPE},
    **{op: _reduce for op in REDUCE},
    "ArgMax": _arg_reduce,
    "ArgMin": _arg_reduce,
    "Gather": _gather,
    "GatherElements": lambda attrs, args: args[1].shape,
    "Slice": _slice,
    "Concat": _concat,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Pad": _pad,
    "Unsqueeze": _unsqueeze,
    "Flatten": _flatten,
    "Expand": _expand,
    "Tile": _tile,
    "ConstantOfShape": _constant_of_shape,
    "Constant": _constant_node,
    "Shape": _shape,
}


def _values(args: list[Value]) -> list[np.ndarray]:
    return [a.value for a in args if a.value is not None]


def _elementwise(attrs: dict[str, Any], args: list[Value]) -> np.ndarray:
    function = ELEMENTWISE[attrs["__op__"]]
    return np.asarray(function(*_values(args))).astype(np.int64)


_ValueRule = Callable[[dict[str, Any], list[Value]], np.ndarray | None]
_VALUE_RULES: dict[str, _ValueRule] = {
    **{op: _elementwise for op in ELEMENTWISE},
    "Div": _div_value,
    "Where": lambda attrs, args: np.where(*_values(args)).astype(np.int64),
    "Gather": lambda attrs, args: np.take(
        _values(args)[0], _values(args)[1], axis=attrs.get("axis", 0)
    ),
    "Slice": lambda attrs, args: _values(args)[0][_slices(attrs, args)],
    "Concat": lambda attrs, args: np.concatenate(
        _values(args), axis=attrs.get("axis", 0)
    ),
    "Reshape": lambda attrs, args: _values(args)[0].reshape(_reshape(attrs, args)),
    "Unsqueeze": lambda attrs, args: _values(args)[0].reshape(_unsqueeze(attrs, args)),
    "Transpose": lambda attrs, args: np.transpose(_values(args)[0], attrs.get("perm")),
    "Cast": lambda attrs, args: (
        _values(args)[0] if attrs.get("to") in (6, 7, 9) else None
    ),
    "ConstantOfShape": lambda attrs, args: _fill(attrs, args),
    "Constant": lambda attrs, args: attrs["value"].value,
    "Shape": _shape_value,
}


def _fill(attrs: dict[str, Any], args: list[Value]) -> np.ndarray | None:
    tensor = attrs.get("value")
    fill = 0 if tensor is None else tensor.value
    if fill is None:
        return None
    shape = _constant_of_shape(attrs, args)
    return np.full(shape, int(np.asarray(fill).reshape(-1)[0]), np.int64)

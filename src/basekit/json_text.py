"""JSON read back from a file that may be damaged: bounded size, finite numbers.

A cache or a state file on a shared disk is untrusted input. ``json.loads`` alone lets
deep nesting end in a ``RecursionError``, ``1e400`` become ``inf`` and ``NaN`` pass;
here each of them is a ``ValueError`` with a one-line reason, and the caller checks
the shape it expects (which bounds the depth).
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, fields
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:20]}")
    return value


def _constant(name: str) -> float:
    raise ValueError(f"not a finite number: {name}")


def read_json(text: object, *, max_chars: int) -> Any:
    """The JSON value of ``text`` (str, or UTF-8 bytes as SQLite may return them).

    Raises:
        ValueError: not text, longer than ``max_chars``, not JSON, nested too deep,
            or a number that is not finite; the message is one line.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8")  # UnicodeDecodeError is a ValueError
    if not isinstance(text, str):
        raise ValueError(f"not JSON text ({type(text).__name__})")
    if len(text) > max_chars:
        raise ValueError(f"{len(text)} characters, more than {max_chars}")
    try:
        return json.loads(text, parse_float=_finite, parse_constant=_constant)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"not JSON ({err.msg} at {err.pos})") from None


MAX_INT = 2**63
"""Largest integer a state field holds (SQLite's and numpy's int64)."""
MAX_FLOAT = 1e300
"""Largest magnitude of a number field: arithmetic on it stays finite."""


def fits(value: object, hint: Any) -> bool:
    """Whether the JSON ``value`` has the type ``hint`` names: ``int``, ``float``
    (an int counts), ``bool``, ``str``, ``None``, ``Any``, ``list[X]``,
    ``dict[str, X]`` or a union of them; numbers within MAX_INT / MAX_FLOAT."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return True
    if hint is None or hint is type(None):
        return value is None
    if origin in (Union, UnionType):
        return any(fits(value, arg) for arg in args)
    if origin is list:
        return isinstance(value, list) and all(fits(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            isinstance(k, str) and fits(v, args[1]) for k, v in value.items()
        )
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return type(value) is int and abs(value) < MAX_INT
    if hint is float:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return number and abs(value) <= MAX_FLOAT  # type: ignore[arg-type]
    if hint is str:
        return isinstance(value, str)
    raise TypeError(f"no JSON check for {hint!r}")


def check_fields(
    data: object, cls: type, *, optional: bool = False, what: str = ""
) -> dict[str, Any]:
    """``data`` as the keyword arguments of the dataclass ``cls``: a dict whose
    keys are its fields, each of its annotated type (:func:`fits`). Fields with
    defaults may be missing when ``optional``.

    Raises:
        ValueError: naming the first field that does not fit (one line).
    """
    where = f"{what}: " if what else ""
    if not isinstance(data, dict):
        raise ValueError(f"{where}not an object ({type(data).__name__})")
    hints = get_type_hints(cls)
    names = {f.name: f for f in fields(cls)}
    for key in data:
        if key not in names:
            raise ValueError(f"{where}unknown field {str(key)[:40]!r}")
    for name, spec in names.items():
        if name not in data:
            has_default = spec.default is not MISSING or (
                spec.default_factory is not MISSING
            )
            if optional and has_default:
                continue
            raise ValueError(f"{where}{name} is missing")
        if not fits(data[name], hints[name]):
            raise ValueError(f"{where}{name} is not {_describe(hints[name])}")
    return dict(data)


def _describe(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")

"""The checks every field of an agent card goes through: an untrusted card is read
into typed values or refused with one line naming the field."""

from __future__ import annotations

import math
from typing import Any

MAX_ITEMS = 256
"""The longest list a card holds (its actions)."""
MAX_NAME = 100
"""The longest name (backend, features, action set, version) a card holds."""
MAX_TEXT = 2000
"""The longest free text (intended use, origin) a card holds."""
HEX = frozenset("0123456789abcdef")


def integer(name: str, value: Any, low: int, high: int) -> int:
    """``value`` if it is a whole number in ``low..high``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, not {show(value)}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in {low}..{high}, not {value}")
    return value


def number(
    name: str, value: Any, low: float = -math.inf, high: float = math.inf
) -> float:
    """``value`` as a float if it is a finite number in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {show(value)}")
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} must be a finite number in [{low}, {high}]")
    return float(value)


def name_(name: str, value: Any, most: int = MAX_NAME) -> str:
    """``value`` if it is a non-empty string of at most ``most`` characters."""
    if not isinstance(value, str) or not 0 < len(value) <= most:
        raise ValueError(f"{name} must be a name, not {show(value)}")
    return value


def digest(name: str, value: Any) -> str:
    """``value`` if it is a SHA-256 in lower-case hex."""
    if not (isinstance(value, str) and len(value) == 64 and set(value) <= HEX):
        raise ValueError(f"{name} must be a SHA-256 (64 hex digits)")
    return value


def sequence(name: str, value: Any, kind: type, most: int = MAX_ITEMS) -> Any:
    """``value`` if it is a ``kind`` (list or tuple) of at most ``most`` items."""
    if not isinstance(value, kind) or len(value) > most:  # type: ignore[arg-type]
        raise ValueError(f"{name} must be a list of at most {most}, not {show(value)}")
    return value


def mapping(name: str, value: Any, keys: tuple[str, ...] | None) -> dict[str, Any]:
    """``value`` if it is an object of at most 64 entries, all among ``keys``."""
    if not isinstance(value, dict) or len(value) > 64:
        raise ValueError(f"{name} must be an object, not {show(value)}")
    unknown = [k for k in value if keys is not None and k not in keys]
    if unknown:
        raise ValueError(f"{name} has unknown keys {unknown[:3]}")
    return value


def show(value: Any) -> str:
    """``value`` as an error message shows it: short, one line."""
    text = repr(value)
    return text if len(text) <= 40 else f"a {type(value).__name__}"

"""The agent card as an export holds it: ``card.json``, an untrusted file.

Its bytes are read only from a regular file of bounded size, its JSON must be an
object of a format this version reads, and its nested objects become the card's typed
parts (:mod:`~adacompress.device.card_spec`); the card's own checks then run on the
whole (:class:`~adacompress.device.card.AgentCard`). Each refusal is one line.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from adacompress.device.card_fields import MAX_ITEMS as MAX_ACTIONS
from adacompress.device.card_fields import mapping as _mapping
from adacompress.device.card_fields import name_ as _name
from adacompress.device.card_fields import sequence as _sequence
from adacompress.device.card_spec import (
    MAX_METRICS,
    MAX_REFERENCES,
    Algorithm,
    Guarantee,
    Metric,
    Reference,
    TensorSpec,
    Weights,
)

CARD_FORMAT = 2
FORMATS_READ = (1, 2)
"""Format 1 (adacompress 0.4.0's exports) has no name, version, origin, metrics,
tensors, algorithm or reference vectors; it still loads."""
CARD_FILE = "card.json"
GRAPH_FILES = ("state.onnx", "policy.onnx")
"""The graphs an export writes beside its card (the card holds their SHA-256)."""
MAX_CARD_BYTES = 1 << 20
"""A card is a few kilobytes; a larger file is refused before it is read."""


def read_card_json(folder: str | Path) -> tuple[dict[str, Any], Path]:
    """The JSON object of the card in the export ``folder``, and the file's path.

    Raises:
        ValueError: missing, too large, not JSON or not a card (one line).
    """
    path = Path(folder) / CARD_FILE
    try:
        data = json.loads(read_small(path, MAX_CARD_BYTES).decode("utf-8"))
    except FileNotFoundError:
        raise ValueError(
            f"{folder} is not an exported agent: it holds no {CARD_FILE} "
            f"(`adacompress export` writes {CARD_FILE}, "
            f"{' and '.join(GRAPH_FILES)} there)"
        ) from None
    except OSError as err:
        raise ValueError(f"cannot read agent card {path}: {err.strerror}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"damaged agent card {path}: {reason}") from None
    if not isinstance(data, dict) or data.get("format") not in FORMATS_READ:
        raise ValueError(f"not an agent card (format {CARD_FORMAT}): {path}")
    return data, path


def card_arguments(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The card's JSON object ``data`` as the card's keyword arguments, its nested
    parts parsed, and the preprocessing's own keyword arguments apart.

    Raises:
        KeyError, TypeError, ValueError, RecursionError: a part that is not valid.
    """
    data = dict(data)
    prep = _mapping("preprocessing", data.pop("preprocessing", {}), None)
    prep = dict(prep)
    scales = _sequence("probe_scales", prep.get("probe_scales", []), list)
    prep["probe_scales"] = tuple(scales)
    entries = _sequence("actions", data.pop("actions", []), list, MAX_ACTIONS)
    keys = tuple(
        _name("an action key", _mapping("an action", entry, None).get("key"))
        for entry in entries
    )
    parts: dict[str, Any] = {}
    if data.get("weights") is not None:
        parts["weights"] = Weights.from_json(data.pop("weights"))
    if data.get("guarantee") is not None:
        parts["guarantee"] = Guarantee.from_json(data.pop("guarantee"))
    if "algorithm" in data:
        parts["algorithm"] = Algorithm.from_json(data.pop("algorithm"))
    lists: dict[str, tuple[Any, int]] = {
        "metrics": (Metric, MAX_METRICS),
        "tensors": (TensorSpec, 8),
        "reference": (Reference, MAX_REFERENCES),
    }
    for name, (kind, most) in lists.items():
        items = _sequence(name, data.pop(name, []), list, most)
        parts[name] = tuple(kind.from_json(item) for item in items)
    return {**data, **parts, "actions": keys}, prep


def read_small(path: Path, limit: int) -> bytes:
    """A regular file's bytes, refused unread when larger than ``limit`` (opened
    without blocking: a FIFO is refused, never waited on).

    Raises:
        OSError: cannot be opened. ValueError: not a regular file, or too large.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"over {limit >> 10} KiB")
    return data

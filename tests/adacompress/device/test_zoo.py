"""What ships inside the package: every shipped agent loads by name, and nothing
shipped carries the path of the checkout it was built in."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from adacompress.device.zoo import ZOO, agents_folder

ABSOLUTE = re.compile(r"^(/|~|[A-Za-z]:[\\/]|\\\\)")
"""A POSIX, home, Windows drive or UNC path."""


def strings(value: Any) -> Iterator[str]:
    """Every string in a decoded JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def test_no_shipped_json_holds_an_absolute_path() -> None:
    """6 of the 9 training logs in the wheel carried the builder's checkout path
    (issue 32)."""
    logs = sorted(agents_folder().glob("*.json"))
    assert {p.stem for p in logs} == set(ZOO)
    found = {
        p.name: text
        for p in logs
        for text in strings(json.loads(p.read_text()))
        if ABSOLUTE.match(text)
    }
    assert found == {}


def test_each_log_names_its_agent_file_beside_it() -> None:
    for path in agents_folder().glob("*.json"):
        log = json.loads(path.read_text())
        assert log["agent_file"] == path.with_suffix(".pt").name
        assert Path(agents_folder(), log["agent_file"]).is_file()

"""Named settings: one mechanism for every command that has presets.

A preset is a complete settings instance under a name; a run takes a preset and
overrides the fields the user gave (:func:`basekit.settings_cli.merged`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

from basekit.settings_cli import merged, unknown_choice

T = TypeVar("T")


class Presets(Generic[T]):
    """Settings instances by name; the first one is the default.

    Examples:
        >>> RUNTIME = Presets("runtime preset", {"default": RuntimeSettings()})
        >>> RUNTIME.get("default", {"omega": 2.0}).omega
        2.0
    """

    def __init__(self, kind: str, presets: Mapping[str, T]) -> None:
        if not presets:
            raise ValueError("at least one preset is needed")
        self.kind = kind
        self._presets = dict(presets)

    @property
    def default(self) -> str:
        return next(iter(self._presets))

    def get(self, name: str | None = None, overrides: Mapping[str, Any] = {}) -> T:
        """Preset ``name`` (default: the first) with ``overrides`` applied.

        Raises:
            ValueError: no such preset (one line, listing the known ones).
        """
        name = self.default if name is None else name
        if name not in self._presets:
            raise unknown_choice(self.kind, name, self._presets)
        return merged(self._presets[name], overrides)

    def __iter__(self) -> Iterator[str]:
        return iter(self._presets)

    def __contains__(self, name: object) -> bool:
        return name in self._presets

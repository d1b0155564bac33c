"""Things of one kind by name: one mechanism for every named choice.

Backends, feature extractors and action sets register factories with a decorator
(adding one is one decorated function); settings presets are registered as ready
values, and a run takes one and overrides the fields the user gave
(:func:`basekit.settings_cli.merged`). The first registered is the default; the
command line's choices are the names, in the order they were registered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from basekit.settings_cli import merged, unknown_choice

T = TypeVar("T")


class Registry(Generic[T]):
    """Named factories (or values) of one kind.

    Args:
        kind: what is registered, for error messages ("backend").
        values: ready values to register at once (presets), in order.

    Examples:
        >>> BACKENDS: Registry[Service] = Registry("backend")
        >>> @BACKENDS.register("echo")
        ... def echo() -> Service: ...
        >>> BACKENDS.build("echo")
        >>> RUNTIME = Registry("runtime preset", {"default": RuntimeSettings()})
        >>> RUNTIME.get("default", {"omega": 2.0}).omega
        2.0
    """

    def __init__(self, kind: str, values: Mapping[str, T] | None = None) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[[], T]] = {}
        for name, value in (values or {}).items():
            self._factories[name] = lambda value=value: value  # type: ignore[misc]

    def register(self, name: str) -> Callable[[Callable[[], T]], Callable[[], T]]:
        """Decorator: register ``factory`` under ``name``."""

        def decorator(factory: Callable[[], T]) -> Callable[[], T]:
            self._factories[name] = factory
            return factory

        return decorator

    def build(self, name: str) -> T:
        """What is registered as ``name`` (a factory's result).

        Raises:
            ValueError: no such name (the message lists the choices).
        """
        try:
            factory = self._factories[name]
        except KeyError:
            raise unknown_choice(self.kind, name, self) from None
        return factory()

    def get(self, name: str | None = None, overrides: Mapping[str, Any] = {}) -> T:
        """``name`` (default: :attr:`default`) with ``overrides`` applied to its
        fields, groups merged field by field.

        Raises:
            ValueError: no such name (one line, listing the known ones).
        """
        return merged(self.build(self.default if name is None else name), overrides)

    @property
    def default(self) -> str:
        """The name registered first."""
        if not self._factories:
            raise ValueError(f"no {self.kind} is registered")
        return next(iter(self._factories))

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

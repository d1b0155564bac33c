"""Name -> implementation registries; the CLI's choices are their keys.

Adding a backend, a feature extractor or an action set is one decorated factory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from basekit.settings_cli import unknown_choice

T = TypeVar("T")


class Registry(Generic[T]):
    """Zero-argument factories registered under names.

    Args:
        kind: what is registered, for error messages ("backend").

    Examples:
        >>> BACKENDS: Registry[Service] = Registry("backend")
        >>> @BACKENDS.register("echo")
        ... def echo() -> Service: ...
        >>> BACKENDS.build("echo")
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[[], T]] = {}

    def register(self, name: str) -> Callable[[Callable[[], T]], Callable[[], T]]:
        """Decorator: register ``factory`` under ``name``."""

        def decorator(factory: Callable[[], T]) -> Callable[[], T]:
            self._factories[name] = factory
            return factory

        return decorator

    def build(self, name: str) -> T:
        """Call the factory registered as ``name``.

        Raises:
            ValueError: no such name (the message lists the choices).
        """
        try:
            factory = self._factories[name]
        except KeyError:
            raise unknown_choice(self.kind, name, self) from None
        return factory()

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._factories))

    def __contains__(self, name: object) -> bool:
        return name in self._factories

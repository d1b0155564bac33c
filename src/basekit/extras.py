"""Optional parts of the install (extras): a clear message when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtra(ValueError):
    """A feature needs an optional dependency that is not installed (one line)."""


def require(module: str, *, extra: str, feature: str, package: str) -> ModuleType:
    """``import module``, or a one-line error naming the extra that installs it.

    Raises:
        MissingExtra: the module is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(
            f"{feature} needs {module}: pip install '{package}[{extra}]'"
        ) from None

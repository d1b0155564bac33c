"""Atomic file writes: a crash leaves either the old file or the new one, never half."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write through ``write`` into a temp file beside ``path``, fsync, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 is not what the user expects
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    """``data`` as indented JSON through :func:`atomic_write`."""
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    atomic_write(path, lambda handle: handle.write(text.encode()))


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` through :func:`atomic_write` (read it back with
    ``weights_only=True``)."""
    import torch

    atomic_write(path, lambda handle: torch.save(obj, handle))

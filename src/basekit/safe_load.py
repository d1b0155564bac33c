"""Reading torch files from anywhere without running what they hold.

``torch.load(weights_only=True)`` unpickles tensors and plain containers only; a file
that asks for anything else (a crafted pickle's ``os.system``, a class) is refused
with one line instead of being executed.
"""

from __future__ import annotations

import io
import pickle
import stat
import zipfile
from pathlib import Path
from typing import Any

MAX_FILE_BYTES = 2 << 30
"""A torch file's largest size, on disk or declared inside (an agent or an encoder
is megabytes)."""
MAX_INFLATION = 100
"""A member of the zip that torch writes (stored, not deflated) may not declare more
than this many times its compressed size (above a megabyte): a decompression bomb."""


def load_tensors(source: str | Path | bytes, *, what: str = "file") -> Any:
    """The plain data and tensors saved in ``source`` (a path or the bytes).

    Raises:
        ValueError: missing, unreadable, damaged, or holding more than plain data
            (one line; nothing from the file is executed).
    """
    import torch

    name = "stored data" if isinstance(source, bytes) else str(source)
    handle: Any = io.BytesIO(source) if isinstance(source, bytes) else Path(source)
    _check_sizes(handle, name, what)
    try:
        return torch.load(handle, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"{what} not found: {name}") from None
    except pickle.UnpicklingError as err:
        if "unsupported global" in str(err).lower():
            raise ValueError(
                f"refused {what} {name}: it asks to run code or build objects, not "
                "only tensors and plain data"
            ) from None
        raise ValueError(
            f"not a readable {what}: {name} (not plain tensors and data)"
        ) from None
    except Exception as err:  # torch raises many types for a bad file
        raise ValueError(
            f"not a readable {what}: {name} ({type(err).__name__})"
        ) from None


def _check_sizes(handle: io.BytesIO | Path, name: str, what: str) -> None:
    """Refuse, before reading, what is not a regular file or declares too much.

    Raises:
        ValueError: one line.
    """
    if isinstance(handle, Path):
        try:
            info = handle.stat()
        except FileNotFoundError:
            raise ValueError(f"{what} not found: {name}") from None
        except OSError as err:
            raise ValueError(f"cannot read {what} {name}: {err.strerror}") from None
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{what} {name} is not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise ValueError(f"{what} {name} is over {MAX_FILE_BYTES >> 30} GiB")
    try:
        with zipfile.ZipFile(handle) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # not a zip: torch decides
    finally:
        if isinstance(handle, io.BytesIO):
            handle.seek(0)
    declared = sum(m.file_size for m in members)
    bomb = next(
        (
            m
            for m in members
            if m.file_size > max(1 << 20, MAX_INFLATION * m.compress_size)
        ),
        None,
    )
    if declared > MAX_FILE_BYTES or bomb is not None:
        raise ValueError(
            f"refused {what} {name}: it declares {declared / 1e6:,.0f} MB "
            f"unpacked (a decompression bomb)"
        )

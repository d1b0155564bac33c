"""Reading torch files from anywhere without running what they hold.

``torch.load(weights_only=True)`` unpickles tensors and plain containers only; a file
that asks for anything else (a crafted pickle's ``os.system``, a class) is refused
with one line instead of being executed.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any


def load_tensors(source: str | Path | bytes, *, what: str = "file") -> Any:
    """The plain data and tensors saved in ``source`` (a path or the bytes).

    Raises:
        ValueError: missing, unreadable, damaged, or holding more than plain data
            (one line; nothing from the file is executed).
    """
    import torch

    name = "stored data" if isinstance(source, bytes) else str(source)
    handle: Any = io.BytesIO(source) if isinstance(source, bytes) else Path(source)
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

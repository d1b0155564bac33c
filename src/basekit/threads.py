"""One deliberate place that sets how many CPU threads torch uses."""

from __future__ import annotations

import os


def configure_threads(threads: int | None = None, *, env: str | None = None) -> int:
    """Use ``threads`` intra-op threads (default: the variable ``env`` if set, else
    every core) and one inter-op thread: the models here are small sequential graphs.

    Returns the number of threads torch now uses.
    """
    import torch

    if threads is None and env and os.environ.get(env):
        threads = int(os.environ[env])
    if threads is None:
        threads = os.cpu_count() or 1
    torch.set_num_threads(max(1, threads))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process
        pass
    return torch.get_num_threads()

"""One deliberate place that sets how many CPU threads torch uses."""

from __future__ import annotations

import os

import torch


def configure_threads(threads: int | None = None) -> int:
    """Use ``threads`` intra-op threads (default ``$ADACOMPRESS_THREADS``, else all).

    Inter-op parallelism is set to 1: the models here are small sequential graphs.
    """
    if threads is None:
        threads = int(os.environ.get("ADACOMPRESS_THREADS", os.cpu_count() or 1))
    torch.set_num_threads(max(1, threads))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process
        pass
    return torch.get_num_threads()

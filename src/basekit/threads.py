"""One deliberate place that sets how many CPU threads the models use.

torch (training, the eager engine) and ONNX Runtime (inference) both read it; torch is
touched only where it is installed, so a device install without torch works.
"""

from __future__ import annotations

import os

_threads: int | None = None


def configure_threads(
    threads: int | None = None, *, env: str | None = None, torch: bool = True
) -> int:
    """Use ``threads`` intra-op threads (default: the variable ``env`` if set, else
    every core) and one inter-op thread: the models here are small sequential graphs.

    This claims the process's models: ONNX Runtime sessions made afterwards share
    one process-wide pool (sessions that ONNX Runtime makes with their own pool
    then fail in this process; without this call each session keeps its own pool,
    a little slower). Call it first, as the command line does. ``torch=False``: a
    process that runs ONNX Runtime only (a service) does not load torch for it.

    Returns the number of threads the models now use.
    """
    global _threads
    if threads is None and env and os.environ.get(env):
        threads = int(os.environ[env])
    if threads is None:
        threads = os.cpu_count() or 1
    _threads = max(1, threads)
    if not torch:
        return _threads
    try:
        import torch as torch_module
    except ImportError:  # a device install: ONNX Runtime only
        return _threads
    torch_module.set_num_threads(_threads)
    try:
        torch_module.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process
        pass
    return _threads


def threads_configured() -> bool:
    """Whether :func:`configure_threads` was called in this process."""
    return _threads is not None


def model_threads() -> int:
    """The intra-op threads set by :func:`configure_threads` (default: every core)."""
    return _threads or os.cpu_count() or 1

"""Give large freed buffers back to the operating system at once.

glibc serves a buffer over its mmap threshold with its own mapping, returned on
free; but it raises that threshold each time such a buffer is freed, after which
decoded images land in the heaps of the threads that made them and stay there. A
service decoding large images on several threads then keeps its peak for good.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter (malloc.h)."""
LARGE_BUFFER = 1 << 20


def return_large_buffers(threshold: int = LARGE_BUFFER) -> bool:
    """Map every buffer of ``threshold`` bytes or more on its own (a fixed
    threshold, so freeing one gives its memory back). Returns whether it took
    effect (glibc on Linux only; elsewhere nothing changes)."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False

"""What optbench asks of glibc's malloc (Linux with glibc; elsewhere, or where the user set it, nothing).

- :func:`one_arena`: the console script's one malloc arena for every thread.
- :func:`large_blocks_kept`: during a stacked loop on the CPU, freed blocks of any size stay in the
  heap for the next step instead of going back to the kernel.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

# from glibc's malloc.h
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
_DYNAMIC_MAX = 32 << 20  # glibc's ceiling for the mmap threshold it adjusts itself (64-bit)
_KEEP = 1 << 30

_lock = threading.Lock()
_loops = 0  # stacked loops inside large_blocks_kept, across threads


def _libc() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def one_arena() -> None:
    """glibc gives a thread its own malloc arena, and memory freed in one arena is not reused by
    another: a sweep builds its tables in the main thread and writes them in the parts writer's, so
    its peak memory moved by about 30 MB from run to run (422-464 MB for 1,000 linreg runs; with one
    arena 422-424 MB, and no slower). Not where MALLOC_ARENA_MAX is set."""
    libc = _libc()
    if libc is not None and "MALLOC_ARENA_MAX" not in os.environ:
        libc.mallopt(M_ARENA_MAX, 1)


@contextlib.contextmanager
def large_blocks_kept() -> Iterator[None]:
    """Inside, freed blocks stay in the heap for reuse; after, glibc's usual ceiling and a trim.

    glibc serves each allocation above its mmap threshold (which it raises to at most 32 MB) with a
    fresh mapping and unmaps it when freed. 1,000 stacked MLP runs have 38 MB activations, so every
    step faulted in each of them page by page again: ``t * t`` on one took 25 ms, of which the
    arithmetic 4 ms, and the stacked loop ran 1.75x slower. Afterwards the thresholds are set to the
    values glibc's own adjustment ends at for such blocks and ``malloc_trim`` returns the free heap.
    Not where MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_ is set.
    """
    global _loops
    libc = _libc()
    if libc is None or {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"} & os.environ.keys():
        yield
        return
    with _lock:
        _loops += 1
        libc.mallopt(M_MMAP_THRESHOLD, _KEEP)
        libc.mallopt(M_TRIM_THRESHOLD, _KEEP)
    try:
        yield
    finally:
        with _lock:
            _loops -= 1
            if _loops == 0:
                libc.mallopt(M_MMAP_THRESHOLD, _DYNAMIC_MAX)
                libc.mallopt(M_TRIM_THRESHOLD, 2 * _DYNAMIC_MAX)
                libc.malloc_trim(0)

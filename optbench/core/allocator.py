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


def _user_set(*names: str) -> bool:
    """Whether the user chose one of these glibc settings: an environment variable (upper case) or a
    ``glibc.malloc.NAME`` entry of GLIBC_TUNABLES."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    return any(n in os.environ if n.isupper() else f"glibc.malloc.{n}" in tunables for n in names)


def one_arena() -> None:
    """glibc gives a thread its own malloc arena, and memory freed in one arena is not reused by
    another: a sweep builds its tables in the main thread and writes them in the parts writer's, so
    its peak memory moved by about 30 MB from run to run (422-464 MB for 1,000 linreg runs; with one
    arena 422-424 MB, and no slower). Not where the user set the number of arenas."""
    libc = _libc()
    if libc is not None and not _user_set("MALLOC_ARENA_MAX", "arena_max"):
        libc.mallopt(M_ARENA_MAX, 1)


@contextlib.contextmanager
def large_blocks_kept() -> Iterator[None]:
    """Inside, freed blocks stay in the heap for reuse; after, glibc's usual ceiling and a trim.

    glibc serves each allocation above its mmap threshold (which it raises to at most 32 MB) with a
    fresh mapping and unmaps it when freed. 1,000 stacked MLP runs have 38 MB activations, so every
    step faulted in each of them page by page again: ``t * t`` on one took 25 ms, of which the
    arithmetic 4 ms, and the stacked loop ran 1.75x slower. Afterwards the thresholds are the
    ceilings of glibc's own adjustment (mmap above 32 MB, trim above 64 MB free; like any mallopt,
    this ends that adjustment for the process) and ``malloc_trim`` returns the free heap. Not where
    the user set either threshold (environment or GLIBC_TUNABLES).
    """
    global _loops
    libc = _libc()
    if libc is None or _user_set(
        "MALLOC_MMAP_THRESHOLD_", "mmap_threshold", "MALLOC_TRIM_THRESHOLD_", "trim_threshold"
    ):
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

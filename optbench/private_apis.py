"""Every use of another library's private or platform-specific API, in one place, each with its reason.

A private API can change in any release of its owner without notice, so each one here is wrapped in
a function that says why optbench needs it and what happens where it is missing. When torch, CPython
or glibc moves one, this is the one file to fix. Imports nothing heavy (torch is imported by the
callers that pass its tensors in).

- glibc's malloc (:func:`one_arena`, :func:`large_blocks_kept`): Linux with glibc only; elsewhere,
  or where the user set the same knob, they do nothing.
- CPython's exit sequence (:func:`run_exit_handlers`): ``threading._shutdown`` and
  ``atexit._run_exitfuncs``, so the console script can leave without the module teardown.
- torch (:func:`version`, :func:`add_param_group_unguarded`): ``Tensor._version`` and
  ``Optimizer.add_param_group.__wrapped__``.
- joblib (:func:`loky_executor`): ``LokyBackend._prepare_worker_env`` and ``joblib.executor``, the
  worker pool its ``Parallel(backend="loky")`` uses, for threads that submit to it at once.

Not here, because they are public and documented: ``Tensor.data_ptr``, ``untyped_storage``,
``storage_offset`` and ``as_strided``, which :mod:`optbench.optimizers.rows` uses to find the stacked
tensor a sweep's row views make up, and :func:`os._exit`. optbench uses no private matplotlib API.
Measured effects of these choices are in ``benchmarks/README.md`` ("Why the private APIs").
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

# --- glibc's malloc (its mallopt/malloc_trim, through ctypes)

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # from glibc's malloc.h
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
    """One malloc arena for every thread of the console script.

    glibc gives a thread its own arena, and memory freed in one arena is not reused by another: a
    sweep builds its tables in the main thread and writes them in the parts writer's, so its peak
    memory moved from run to run; with one arena it holds still, and is no slower. Not where the
    user set the number of arenas."""
    libc = _libc()
    if libc is not None and not _user_set("MALLOC_ARENA_MAX", "arena_max"):
        libc.mallopt(M_ARENA_MAX, 1)


@contextlib.contextmanager
def large_blocks_kept() -> Iterator[None]:
    """Inside (a stacked loop on the CPU), freed blocks stay in the heap for reuse; after, glibc's usual
    ceiling and a trim.

    glibc serves each allocation above its mmap threshold (which it raises to at most 32 MB) with a
    fresh mapping and unmaps it when freed. A stack of many runs has activations above that, so every
    step would fault each of them in page by page again. Afterwards the thresholds are the ceilings of
    glibc's own adjustment (mmap above 32 MB, trim above 64 MB free; like any mallopt, this ends that
    adjustment for the process) and ``malloc_trim`` returns the free heap. Not where the user set
    either threshold (environment or GLIBC_TUNABLES).
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


# --- CPython's exit sequence


def run_exit_handlers() -> None:
    """What the interpreter does at exit that matters, minus the module teardown: wait for non-daemon
    threads (``threading._shutdown``), then run the ``atexit`` callbacks (``atexit._run_exitfuncs``:
    joblib's and Dask's shutdowns, temporary folders' clean-up).

    A process that imported torch spends a long time tearing its modules down at exit, and nothing a
    command did needs that; the console script calls this and then :func:`os._exit`. Where a Python
    lacks ``threading._shutdown``, threads are not waited for (the callbacks still run)."""
    shutdown_threads = getattr(threading, "_shutdown", None)
    if shutdown_threads is not None:
        shutdown_threads()
    atexit._run_exitfuncs()


# --- torch


def version(tensor: Any) -> int:
    """``tensor._version``: autograd's counter of in-place changes to a tensor.

    The training loop compares these before and after a step to tell that an optimizer changed its
    parameters (or their gradients) in place, without keeping copies; torch has no public way to ask."""
    return tensor._version


def add_param_group_unguarded(optimizer: Any, param_group: dict[str, Any]) -> None:
    """``torch.optim.Optimizer.add_param_group`` without the dynamo guard torch wraps it in.

    The guard's first call imports ``torch._dynamo``, which takes long enough to delay the lesson's
    optimizer; the wrapped function (``__wrapped__``, set by :func:`functools.wraps`) is torch's own
    method. Where a torch has no wrapper, the method itself is called."""
    import torch

    method = torch.optim.Optimizer.add_param_group
    getattr(method, "__wrapped__", method)(optimizer, param_group)


# --- joblib's pool of worker processes


def loky_executor(n: int) -> Any:
    """joblib's reusable pool of ``n`` loky worker processes, started as ``Parallel(n_jobs=n,
    backend="loky")`` starts it (each worker's OpenMP/BLAS threads limited to its share of the cores,
    ``LokyBackend._prepare_worker_env``), to submit to from several threads at once. A ``Parallel`` call
    per thread would not do: each manages the one executor they share, and an error in one terminates
    it under the others. Never loky's own ``get_reusable_executor``: joblib would then reuse that pool
    (one per process) without the attributes it adds (``_temp_folder_manager``), an internal error."""
    from joblib._parallel_backends import LokyBackend
    from joblib.executor import get_memmapping_executor

    return get_memmapping_executor(n, env=LokyBackend()._prepare_worker_env(n_jobs=n))

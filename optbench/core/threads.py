"""How many intra-op threads torch uses for a group of runs, and how a run's seconds are measured.

torch's default (one intra-op thread per core) suits one large tensor program. optbench mostly runs
many small ones: a stacked group of a few thousand elements, or several sweep processes side by side
(``--jobs``). There, extra threads only spin: on a 2-core machine shared with other work a stacked
MLP sweep took 1.66x the wall time it takes on one thread, with identical losses. So the engine
chooses per group (:func:`for_work`): **one thread** for work below :data:`LARGE` elements (the
group's parameters and data, stacked), **every core this process may use** above it. A user
overrides the choice with ``--threads N`` or ``OPTBENCH_THREADS=N`` (``--jobs`` stays the way a
sweep uses several cores: a process per job). The count a run was timed under is its ``threads``
column; threads never enter the run key (they change how fast, not what: at most the last bits of
a reduction).

``time_s`` is an estimate, said so wherever it is shown: the run's optimizer steps (evaluation
excluded) are cut into :data:`WINDOWS` timed windows after the first few steps (allocation, lazy
initialisation), and the median window's seconds per step times the step count gives each record's
time. One slow window (another process took the core) does not move it.
"""

from __future__ import annotations

import contextlib
import os
import statistics
from collections.abc import Iterator, Sequence

from optbench.errors import InvalidValueError

ENV = "OPTBENCH_THREADS"
LARGE = 1 << 20  # elements of a group's tensors from which more than one thread pays
WINDOWS = 5  # timed windows of a run's steps; time_s uses the median window's rate
WARM_UP_STEPS = 5  # first steps left out of the rate (allocation, lazy initialisation)


def requested() -> int | None:
    """The user's thread count (``OPTBENCH_THREADS``, which ``--threads`` sets), or None for the policy."""
    text = os.environ.get(ENV, "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise InvalidValueError(f"{ENV}={text!r} is not valid; expected a whole number of threads >= 1")
    return int(text)


SHARE_ENV = "OPTBENCH_CORE_SHARE"  # set in a sweep's worker process: the cores each of its --jobs may use


def cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's count), or its share of
    them in one of several worker processes (:data:`SHARE_ENV`): two workers each on every core would
    oversubscribe them."""
    try:
        mine = max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not Linux
        mine = max(os.cpu_count() or 1, 1)
    share = os.environ.get(SHARE_ENV, "")
    return min(mine, int(share)) if share.isdigit() and int(share) >= 1 else mine


def for_work(elements: int) -> int:
    """Threads for a group whose tensors hold ``elements`` values: the user's count, else one thread
    below :data:`LARGE` and every usable core above it.

    >>> for_work(10_000) if requested() is None else 1
    1
    """
    return requested() or (cores() if elements >= LARGE else 1)


@contextlib.contextmanager
def intra_op(count: int) -> Iterator[int]:
    """torch's intra-op threads set to ``count`` inside the block, the caller's count restored after."""
    import torch

    before = torch.get_num_threads()
    if count != before:
        torch.set_num_threads(count)
    try:
        yield count
    finally:
        if count != before:
            torch.set_num_threads(before)


def seconds_per_step(step_times: Sequence[float]) -> float:
    """The median over :data:`WINDOWS` windows of the mean step time, the first steps left out
    (all steps when there are too few); 0.0 when nothing was timed.

    >>> seconds_per_step([9.0] + [1.0] * 10 + [50.0] * 2)  # a slow first step, one slow window
    1.0
    """
    if not step_times:
        return 0.0
    skip = min(WARM_UP_STEPS, len(step_times) - 1) if len(step_times) > WINDOWS else 0
    timed = list(step_times[skip:])
    count = min(WINDOWS, len(timed))
    size = len(timed) // count
    windows = [timed[i * size : (i + 1) * size] for i in range(count - 1)] + [timed[(count - 1) * size :]]
    return statistics.median(sum(w) / len(w) for w in windows)

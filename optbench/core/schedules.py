"""Learning-rate schedules, through ``torch.optim.lr_scheduler.LambdaLR``: one factor per step.

The factor multiplies each param group's own learning rate (so runs of different lrs batched into
one optimizer keep theirs). With ``T`` optimizer steps in the run and ``w`` warm-up steps, step
``t`` (0-based) uses ``lr * warmup(t) * shape(t)``:

- warm-up: ``(t + 1) / w`` for ``t < w``, then 1 (none when ``w = 0``);
- ``constant``: 1;
- ``cosine``: ``(1 + cos(pi * s)) / 2`` with ``s = (t - w) / (T - w)``, the progress after warm-up;
- ``linear``: ``1 - s``;
- ``step``: 1, then 0.1 from half of the steps and 0.01 from three quarters.

>>> [round(factor("cosine", t, total=6, warmup=2), 3) for t in range(6)]
[0.5, 1.0, 1.0, 0.854, 0.5, 0.146]
"""

from __future__ import annotations

import math
from typing import Any

from optbench.errors import InvalidValueError
from optbench.settings.declared import SCHEDULES as SCHEDULES  # the names, declared with the run settings


def factor(name: str, t: int, *, total: int, warmup: int = 0) -> float:
    """The multiplier of the learning rate at step ``t`` of ``total``."""
    warm = (t + 1) / warmup if t < warmup else 1.0
    progress = min(max(t - warmup, 0) / max(total - warmup, 1), 1.0)
    if name == "cosine":
        shape = (1 + math.cos(math.pi * progress)) / 2
    elif name == "linear":
        shape = 1 - progress
    elif name == "step":
        shape = 1.0 if progress < 0.5 else 0.1 if progress < 0.75 else 0.01
    else:
        shape = 1.0
    return warm * shape


def make_scheduler(opt: Any, spec: Any, steps_per_epoch: int) -> Any:
    """A LambdaLR for the run's schedule, or None for a constant lr without warm-up (nothing to do)."""
    if spec.schedule == "constant" and not spec.warmup_steps:
        return None
    from torch.optim.lr_scheduler import LambdaLR

    if not all("lr" in group for group in opt.param_groups):
        raise InvalidValueError(
            f"--schedule {spec.schedule}: optimizer {spec.optimizer.name!r} has no lr in its param groups to schedule"
        )
    total = spec.epochs * steps_per_epoch
    return LambdaLR(opt, lambda t: factor(spec.schedule, t, total=total, warmup=spec.warmup_steps))

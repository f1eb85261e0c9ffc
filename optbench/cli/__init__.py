"""The ``optbench`` command: a thin click layer over the Python API.

Only click and torch-free modules are imported at the top, so ``optbench --help`` is instant;
torch, pandas and the registries load inside the commands. The library raises typed exceptions
(:mod:`optbench.errors`); :class:`~optbench.cli.app.OptbenchGroup` turns them into one line and an
exit code. Each module below registers its commands on the group.
"""

from optbench.cli import bench, quality, reports, run, sweeps  # noqa: F401  (registers the commands)
from optbench.cli.app import (
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    EXIT_WRITE,
    OptbenchGroup,
    cli,
    main,
)

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "EXIT_WRITE",
    "OptbenchGroup",
    "cli",
    "main",
]

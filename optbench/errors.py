"""Typed exceptions. The library raises these; only the CLI turns them into one-line messages."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

EXIT_USAGE = 2  # bad input
EXIT_WRITE = 74  # results could not be written (disk full, a read-only file system): EX_IOERR


class OptbenchError(Exception):
    """Base class for every error optbench reports to a user; ``exit_code`` is the CLI's exit code."""

    exit_code = EXIT_USAGE


class UnknownNameError(OptbenchError, KeyError):
    """A problem or optimizer name that no registry entry has."""

    def __init__(self, kind: str, name: str, choices: Iterable[str]):
        self.kind, self.name, self.choices = kind, name, sorted(choices)
        super().__init__(self.message())

    def message(self) -> str:
        hint = did_you_mean(self.name, self.choices)
        return f"unknown {self.kind} {self.name!r}{hint}; valid {self.kind}s: {', '.join(self.choices)}"

    __str__ = message  # KeyError would otherwise repr() the message


class InvalidValueError(OptbenchError, ValueError):
    """A setting whose value is out of range or of the wrong type."""


class DuplicateNameError(OptbenchError):
    """A name registered twice without ``override=True``."""


class ResultsFileError(OptbenchError):
    """A results file that is missing, corrupt or not an optbench table."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' for a near miss, else ''."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class PluginError(OptbenchError):
    """A plugin that cannot be imported, has the wrong shape, or fails to build."""


class WriteError(OptbenchError):
    """A file that could not be written after the work (disk full, the file system went read-only)."""

    exit_code = EXIT_WRITE

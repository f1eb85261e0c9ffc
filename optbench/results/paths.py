"""The files a command reads and writes, checked before any work (and before torch is imported).

A results file must end in .parquet or .csv, an animation in .gif, .mp4 or .html, and either must
land in a folder that exists and can be written; a file a command reads must exist. Each check is
one line naming the flag and the path, in milliseconds: this module imports nothing heavy.

>>> results_file("r.xlsx")
Traceback (most recent call last):
...
optbench.errors.InvalidValueError: --out 'r.xlsx': expected a file ending in .parquet or .csv
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from optbench.errors import InvalidValueError, OptbenchError

RESULTS_SUFFIXES = (".parquet", ".csv")
ANIMATION_SUFFIXES = (".gif", ".mp4", ".html")


def writable_file(path: str | os.PathLike[str], flag: str = "--out") -> Path:
    """``path`` as a Path, or one line saying why it cannot be written: its folder is missing or
    read-only, or the path is a folder or a read-only file."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        if not parent.is_dir():
            raise InvalidValueError(f"{flag} {str(path)!r}: folder {str(parent)!r} does not exist")
        if path.is_dir() or not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise InvalidValueError(f"{flag} {str(path)!r} cannot be written; choose a writable file path")
    except OSError:  # a name the file system refuses (too long...): the write check proper says which
        pass
    return path


def results_file(path: str | os.PathLike[str], flag: str = "--out") -> Path:
    """A results table to write: ``.parquet`` or ``.csv``, writable."""
    if Path(path).suffix.lower() not in RESULTS_SUFFIXES:
        raise InvalidValueError(f"{flag} {str(path)!r}: expected a file ending in .parquet or .csv")
    return writable_file(path, flag)


def animation_file(path: str | os.PathLike[str], flag: str = "--out") -> Path:
    """An animation to write: ``.gif``, ``.html``, or ``.mp4`` where ffmpeg is installed; writable."""
    suffix = Path(path).suffix.lower()
    if suffix not in ANIMATION_SUFFIXES:
        raise InvalidValueError(f"{flag} {str(path)!r}: expected a file ending in {', '.join(ANIMATION_SUFFIXES)}")
    path = writable_file(path, flag)
    if suffix == ".mp4" and shutil.which("ffmpeg") is None:
        raise OptbenchError(
            "writing .mp4 needs ffmpeg, which is not installed: install it (apt-get install ffmpeg, "
            "brew install ffmpeg or conda install ffmpeg) or write a .gif or .html instead"
        )
    return path


def existing_file(path: str | os.PathLike[str], flag: str) -> Path:
    """A file to read: it must exist (what is in it is checked where it is read)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidValueError(f"{flag} {str(path)!r} does not exist")
    return path

"""Writing files safely: checked before the work, written atomically, with the umask's mode.

Every file optbench writes (results, parts of a sweep, baselines, JUnit and JSON reports, report
pages and figures) goes through :func:`atomic_write`: the content goes to a temporary file in the
same folder, named independently of the target (``.optbench-PID-RANDOM.tmp``, so a long target
name cannot overflow), created with mode 0666 minus the umask, then renamed over the target. A
reader never sees half a file, and a symlink at the target is replaced, never followed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from optbench.errors import InvalidValueError, WriteError

TEMP_PREFIX = ".optbench-"
TEMP_SUFFIX = ".tmp"
STALE_AFTER_S = 60.0  # a temporary file of a dead process older than this is removed by cleanups


def temp_path(folder: Path) -> Path:
    return folder / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}"


def _create(folder: Path) -> Path:
    tmp = temp_path(folder)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for any new file
    os.close(fd)
    return tmp


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """``write(tmp)`` fills a temporary file that then replaces ``path``; an OSError is a :class:`WriteError`."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        tmp = _create(folder)
    except OSError as exc:
        raise WriteError(f"cannot write {str(path)!r}: {_reason(exc)}") from None
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        _unlink(tmp)
        raise WriteError(f"cannot write {str(path)!r}: {_reason(exc)}") from None
    except BaseException:
        _unlink(tmp)
        raise
    return path


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def check_writable(
    path: str | os.PathLike[str],
    *,
    suffixes: Sequence[str] = (),
    flag: str = "--out",
    also: Sequence[str] = (),
) -> Path:
    """Fail before any work when ``path`` could not be written: a wrong suffix, a missing or unwritable
    folder (tried for real, with a temporary file), a folder at its place, or a name too long here
    once ``also`` (names made from it, e.g. ``NAME.parts``) are added."""
    path = Path(path)
    shown = str(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise InvalidValueError(f"{flag} {shown!r}: expected a file ending in {' or '.join(suffixes)}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InvalidValueError(f"{flag} {shown!r}: folder {str(folder)!r} does not exist")
    longest = max([len(path.name.encode())] + [len(a.encode()) for a in also])
    limit = name_max(folder)
    if longest > limit:
        raise InvalidValueError(
            f"{flag} {shown!r}: the name is too long here ({longest} bytes with what optbench adds; at most {limit})"
        )
    if path.is_dir():
        raise InvalidValueError(f"{flag} {shown!r} is a folder; expected a file path")
    if path.exists() and not path.is_symlink() and not os.access(path, os.W_OK):
        raise InvalidValueError(f"{flag} {shown!r} cannot be written; choose a writable file path")
    try:
        _unlink(_create(folder))
    except OSError as exc:
        raise InvalidValueError(f"{flag} {shown!r} cannot be written: {_reason(exc)}") from None
    return path


def name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def remove_stale_temps(folder: Path) -> None:
    """Remove temporary files left in ``folder`` by processes that died (SIGKILL) a while ago."""
    with contextlib.suppress(OSError):
        for tmp in folder.glob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
            pid = tmp.name[len(TEMP_PREFIX) :].split("-")[0]
            if pid.isdigit() and not _alive(int(pid)) and time.time() - tmp.stat().st_mtime > STALE_AFTER_S:
                _unlink(tmp)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, owned by someone else
    return True


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _reason(exc: OSError) -> str:
    text = exc.strerror or str(exc) or type(exc).__name__
    code = errno.errorcode.get(exc.errno or 0)
    return f"{text} ({code})" if code else text

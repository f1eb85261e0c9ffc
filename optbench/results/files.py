"""Writing files safely: every path a command reads or writes checked before the work, written atomically.

Torch-free and light (the CLI checks its paths here before it imports anything heavy), so a bad path
is one line naming the flag and the path, in milliseconds:

- **Checked before the work.** A results file must end in .parquet or .csv, an animation in .gif,
  .mp4 or .html, and either must land in a folder that exists and can be written
  (:func:`results_file`, :func:`animation_file`, judged by permissions alone, nothing created);
  :func:`check_writable` then tries the folder for real with a temporary file; a file a command
  reads must exist (:func:`existing_file`).
- **Written atomically.** Every file optbench writes (results, parts of a sweep, baselines, JUnit
  and JSON reports, report pages and figures) goes through :func:`atomic_write`: the content goes to
  a temporary file in the same folder, named independently of the target (``.optbench-PID-RANDOM.tmp``,
  so a long target name cannot overflow), created with mode 0666 minus the umask, then renamed over
  the target. A reader never sees half a file, and a symlink at the target is replaced, never followed.

>>> results_file("r.xlsx")
Traceback (most recent call last):
...
optbench.errors.InvalidValueError: --out 'r.xlsx': expected a file ending in .parquet or .csv
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from optbench.errors import InvalidValueError, OptbenchError, WriteError

TEMP_PREFIX = ".optbench-"
TEMP_SUFFIX = ".tmp"
STALE_AFTER_S = 60.0  # a temporary file of a dead process older than this is removed by cleanups
RESULTS_SUFFIXES = (".parquet", ".csv")
ANIMATION_SUFFIXES = (".gif", ".mp4", ".html")


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
    _refuse_special(path, flag)
    if path.exists() and not path.is_symlink() and not os.access(path, os.W_OK):
        raise InvalidValueError(f"{flag} {shown!r} cannot be written; choose a writable file path")
    try:
        _unlink(_create(folder))
    except OSError as exc:
        raise InvalidValueError(f"{flag} {shown!r} cannot be written: {_reason(exc)}") from None
    return path


# --- checked before the work, by permissions alone (nothing is created)


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
        _refuse_special(path, flag)
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


def check_places(
    folder: str | os.PathLike[str], *, folders: Sequence[str] = (), files: Sequence[str] = (), flag: str = "--out"
) -> None:
    """Refuse, before any work, a path optbench will make in ``folder`` that something else occupies:
    one of ``folders`` that is not a folder, one of ``files`` that is a folder, a FIFO or a device
    (a stale ``OUT.parts`` file, a folder where a lock file or ``leaderboard.md`` goes)."""
    for name in folders:
        place = Path(folder) / name
        if os.path.lexists(place) and not place.is_dir():
            raise InvalidValueError(
                f"{flag}: {str(place)!r} is {_kind(place)} where optbench keeps a folder; move it away or choose "
                "another --out"
            )
    for name in files:
        place = Path(folder) / name
        if os.path.lexists(place) and not place.is_symlink() and not place.is_file():
            raise InvalidValueError(
                f"{flag}: {str(place)!r} is {_kind(place)} where optbench writes a file; move it away or choose "
                "another --out"
            )


def _refuse_special(path: Path, flag: str) -> None:
    """A FIFO, socket or device is not a results file: writing one would block or go elsewhere."""
    if os.path.lexists(path) and not path.is_symlink() and not path.is_file() and not path.is_dir():
        raise InvalidValueError(f"{flag} {str(path)!r} is {_kind(path)}, not a file; expected a file path")


def _kind(path: Path) -> str:
    import stat

    mode = path.lstat().st_mode
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a file"


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

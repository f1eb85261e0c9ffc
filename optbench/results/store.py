"""A sweep's OUT file as a store of runs keyed by ``run_key``.

The rules (the README's "Sweeps: OUT is a store of runs"):

- **Parts.** Finished runs go to ``OUT.parts/part-TIME-PID-N.parquet``, each written atomically
  under a name no other process uses, within moments of finishing: a crash or SIGKILL loses
  only the runs in flight. Concurrent sweeps to one OUT never overwrite each other's parts.
- **Merge.** ``OUT`` is rewritten from itself and the parts under a lock (``.OUT.lock``), so two
  merges never race; only the parts read are removed, after ``OUT`` is written. The newest
  result of a run wins (parts are ordered by time).
- **Keep.** A sweep adds the runs of its grid and keeps every run already stored, from any grid.
- **Force.** ``--force`` writes its parts to a staging folder (``OUT.parts/force-PID-N/``) that is
  merged, replacing the old results of those runs, only once every run of the grid has finished;
  an interrupted forced sweep leaves ``OUT`` as it was.
- **Errors.** A run whose stored status is ``error`` does not count as finished (it is retried)
  unless ``retry_errors=False``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from optbench.errors import InvalidValueError, ResultsFileError, WriteError
from optbench.results import files, schema
from optbench.results.io import load_results, save_results, write_parquet

_SEQUENCE = itertools.count()


class Store:
    def __init__(self, out: str | os.PathLike[str]):
        self.out = Path(out)
        self.parts = self.out.with_name(self.out.name + ".parts")
        self.lock_path = self.out.with_name(f".{self.out.name}.lock")

    @staticmethod
    def added_names(out: str | os.PathLike[str]) -> tuple[str, ...]:
        """Names the store makes next to OUT (checked for length before any work)."""
        name = Path(out).name
        return (name + ".parts", f".{name}.lock")

    @staticmethod
    def check_places(out: str | os.PathLike[str]) -> None:
        """Refuse, before any work, a file at ``OUT.parts`` or a folder at the lock file's place."""
        parts, lock = Store.added_names(out)
        folder = Path(out).parent
        files.check_places(folder, folders=[parts], files=[lock])

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        from filelock import FileLock

        with FileLock(str(self.lock_path)):
            yield

    # --- what is stored

    def _part_files(self) -> list[Path]:
        return sorted(self.parts.glob("part-*.parquet")) if self.parts.is_dir() else []

    def index(self) -> dict[str, str]:
        """run_key -> status of every stored run (OUT and parts; the newest result of each).

        Read under the lock: a concurrent merge would otherwise remove a part between listing and reading it.
        """
        statuses: dict[str, str] = {}
        with self.locked():
            sources = ([self.out] if self.out.exists() else []) + self._part_files()
            for path in sources:
                statuses |= _keys(path, self.out)
        return statuses

    def counts(self) -> tuple[int, int, int]:
        """Runs merged into OUT, runs only its part files hold (the next sweep to OUT merges them), and
        how many part files there are: what an interrupted command left, said truly."""
        with self.locked():
            merged = set(_keys(self.out, self.out)) if self.out.exists() else set()
            parts = self._part_files()
            waiting = _all_keys(parts, self.out) - merged
        return len(merged), len(waiting), len(parts)

    def check(self) -> None:
        """OUT, if it exists, must be a sweep's table (with run_key)."""
        if self.out.exists():
            _keys(self.out, self.out)

    # --- writing

    def staging(self) -> Path:
        return self.parts / f"force-{os.getpid()}-{secrets.token_hex(3)}"

    def write_part(self, frame: pd.DataFrame, folder: Path | None = None) -> Path:
        """One part file of finished runs, atomically, under a name no other writer uses."""
        folder = folder or self.parts
        name = f"part-{time.time_ns():020d}-{os.getpid()}-{next(_SEQUENCE):06d}.parquet"
        for attempt in range(3):  # a concurrent merge may remove an empty parts folder in between
            folder.mkdir(parents=True, exist_ok=True)
            try:
                return files.atomic_write(folder / name, lambda tmp: write_parquet(frame, tmp))
            except WriteError:
                if folder.is_dir() or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def merge(self, staged: Path | None = None) -> pd.DataFrame | None:
        """Fold the parts (and a finished forced sweep's ``staged`` folder, which wins) into OUT.

        Returns the merged table, or None when there was nothing to merge (OUT is left untouched).
        """
        with self.locked():
            parts = self._part_files()
            staged_parts = sorted(staged.glob("part-*.parquet")) if staged is not None and staged.is_dir() else []
            self._clean()
            if not parts and not staged_parts:
                return None
            newer = parts + staged_parts
            if self.out.exists() and not _keys(self.out, self.out).keys() <= _all_keys(newer, self.out):
                newer = [self.out, *newer]  # OUT holds runs the parts do not replace: read it too
            if len(newer) == 1 and newer[0] != self.out and self.out.suffix.lower() == ".parquet":
                os.replace(newer[0], self.out)  # one part replaces everything: it is OUT already
                table = load_results(self.out)
            else:
                table = self._combine(newer)
                save_results(table, self.out)
            for path in parts + staged_parts:
                path.unlink(missing_ok=True)
            if staged is not None:
                shutil.rmtree(staged, ignore_errors=True)
            with contextlib.suppress(OSError):
                self.parts.rmdir()  # only when empty: another sweep may be writing
            return table

    @staticmethod
    def _combine(sources: list[Path]) -> pd.DataFrame:
        """One table of ``sources`` (oldest first): of each run, the rows of its newest source."""
        frames = []
        for i, path in enumerate(sources):
            frame = load_results(path)
            frames.append(schema.with_roles(frame.assign(_source=i), {"_source": schema.IDENTITY}))
        table = schema.concat(frames)
        newest = table.groupby("run_key", sort=False)["_source"].transform("max")
        table = table[table["_source"] == newest].drop(columns="_source").reset_index(drop=True)
        table.attrs[schema.ATTRS_KEY]["roles"].pop("_source", None)
        return schema.tidy(table)

    def discard(self, staged: Path) -> None:
        shutil.rmtree(staged, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.parts.rmdir()

    def pending(self) -> int:
        """Part files not merged into OUT yet."""
        return len(self._part_files())

    def _clean(self) -> None:
        """Temporary files and staging folders left by processes that died (SIGKILL)."""
        files.remove_stale_temps(self.out.parent)
        if not self.parts.is_dir():
            return
        files.remove_stale_temps(self.parts)
        for folder in self.parts.glob("force-*"):
            pid = folder.name.split("-")[1]
            old = time.time() - folder.stat().st_mtime > files.STALE_AFTER_S
            if pid.isdigit() and not files._alive(int(pid)) and old:
                shutil.rmtree(folder, ignore_errors=True)


def _all_keys(paths: list[Path], out: Path) -> set[str]:
    return {key for path in paths for key in _keys(path, out)}


def _keys(path: Path, out: Path) -> dict[str, str]:
    """run_key -> status (the last row of each run) of one stored file, reading those two columns."""
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
            if "run_key" in names and "status" in names:
                frame = pd.read_parquet(path, columns=["run_key", "status"])
            else:
                frame = None
        else:
            header = pd.read_csv(path, nrows=0).columns
            usable = "run_key" in header and "status" in header
            frame = pd.read_csv(path, usecols=["run_key", "status"], keep_default_na=False) if usable else None
    except Exception as exc:  # pyarrow and pandas raise many types for a damaged file
        raise ResultsFileError(f"--out {str(out)!r}: {str(path)!r} cannot be read: {exc}") from None
    if frame is None:
        raise InvalidValueError(
            f"--out {str(out)!r} holds results that are not from a sweep (no run_key column); choose another file"
        )
    last = frame.drop_duplicates("run_key", keep="last")  # a run's status is the same on all its rows
    keys = last["run_key"].to_numpy(dtype=object, na_value="")
    statuses = last["status"].to_numpy(dtype=object, na_value="")
    return dict(zip(map(str, keys), map(str, statuses), strict=True))

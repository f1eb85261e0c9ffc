"""Writing finished runs to a store's part files as they arrive, without holding up the runs.

A background thread writes what the sweep hands it: one part file per write, holding every frame
that arrived while the previous write was going on. Runs are on disk moments after they finish
(a write of a small part takes milliseconds); many quick runs make few files, not many.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from optbench.results import schema

if TYPE_CHECKING:
    from optbench.results.store import Store

_STOP = object()


class PartWriter:
    def __init__(self, store: Store, folder: Path | None = None):
        self.store, self.folder = store, folder
        self.runs = 0  # runs written so far
        self.error: BaseException | None = None
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="optbench-parts", daemon=True)
        self._thread.start()

    def put(self, frame: pd.DataFrame) -> None:
        """Hand over a frame of finished runs; raises the error of an earlier write that failed."""
        if self.error is not None:
            raise self.error
        self._queue.put(frame)

    def close(self, raise_errors: bool = True) -> None:
        """Write everything handed over, then stop; raise a write's error (unless told not to)."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        if raise_errors and self.error is not None:
            raise self.error

    def _loop(self) -> None:
        stop = False
        while not stop:
            batch: list[pd.DataFrame] = []
            item = self._queue.get()
            while True:
                if item is _STOP:
                    stop = True
                else:
                    batch.append(item)  # type: ignore[arg-type]
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch and self.error is None:
                try:
                    self.store.write_part(schema.tidy(schema.concat(batch)), self.folder)
                    self.runs += sum(int(f["run_key"].nunique()) for f in batch)
                except BaseException as exc:  # reported to the sweep by put() or close()
                    self.error = exc
            batch = item = None  # type: ignore[assignment]  # hold no frame while waiting for the next

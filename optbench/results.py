"""The results table on disk: parquet or CSV, written atomically, read back identical."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from optbench.errors import InvalidValueError, ResultsFileError

SUFFIXES = (".parquet", ".csv")
# Columns every results table has, with the dtype a CSV must be read back as.
CORE_COLUMNS = {
    "problem": "str",
    "optimizer": "str",
    "seed": "int64",
    "lr": "float64",
    "batch_size": "int64",
    "epoch": "float64",
    "step": "int64",
    "loss": "float64",
    "optimum": "float64",
    "time_s": "float64",
    "status": "str",
    "message": "str",
}
STATUSES = ("ok", "diverged", "error")
# Columns that are measured along a run; every other column except `seed` is a setting of the run.
MEASURED = ("epoch", "step", "loss", "optimum", "test_loss", "test_accuracy", "time_s", "status", "message")
DEFAULT_TARGET = 0.1  # the default target: the objective down to 10% of its starting value


def table_value(value: Any) -> Any:
    """A setting as a table cell: numbers, bools and text stay; tuples become ``"0.9,0.999"``; None is NaN.

    None is "not set", the same as the missing cell of a setting another run does not have.
    """
    if value is None:
        return float("nan")
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    return str(value)  # anything else: its text, the same in parquet and CSV


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Fail early, before any work, when results could not be saved to ``path``."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise InvalidValueError(f"--out {str(path)!r}: expected a file ending in .parquet or .csv")
    if "\x00" in str(path):
        raise InvalidValueError(f"--out {str(path)!r}: a path cannot hold a NUL character")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InvalidValueError(f"--out {str(path)!r}: folder {str(parent)!r} does not exist")
    if path.is_dir() or not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InvalidValueError(f"--out {str(path)!r} cannot be written; choose a writable file path")
    return path


def save_results(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` to ``path`` (.parquet or .csv) through a temporary file and an atomic rename."""
    path = check_writable(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if path.suffix.lower() == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_results(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a table written by :func:`save_results` (or ``optbench run --out``) back, identical."""
    path = Path(path)
    if not path.is_file():
        raise ResultsFileError(f"results file {str(path)!r} does not exist")
    if path.suffix.lower() not in SUFFIXES:
        raise ResultsFileError(f"results file {str(path)!r}: expected a .parquet or .csv file")
    try:
        if path.suffix.lower() == ".parquet":
            df = pd.read_parquet(path)
        else:
            # Only empty cells are missing: "None" and "nan" are values a setting can have.
            df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except Exception as exc:  # pyarrow and pandas raise many types for a damaged file
        raise ResultsFileError(f"results file {str(path)!r} cannot be read: {first_line(exc)}") from None
    for column in [c for c in df.columns if pd.api.types.is_object_dtype(df[c])]:  # bool settings with holes
        df[column] = df[column].where(df[column].notna(), math.nan)
    missing = [c for c in CORE_COLUMNS if c not in df.columns]
    if missing:
        raise ResultsFileError(f"results file {str(path)!r} is not an optbench table: no column {', '.join(missing)}")
    for column, dtype in CORE_COLUMNS.items():
        if dtype == "str":
            df[column] = df[column].astype(object).where(df[column].notna(), "").astype(dtype)
        elif df[column].dtype != dtype:
            try:
                df[column] = df[column].astype(dtype)
            except (TypeError, ValueError):
                raise ResultsFileError(f"results file {str(path)!r}: column {column!r} is not {dtype}") from None
    return df


def objective(df: pd.DataFrame) -> pd.Series:
    """What optbench compares: suboptimality ``loss - f*`` where f* is known, else the loss."""
    return df["loss"] - df["optimum"].fillna(0.0)


def reach(run: pd.DataFrame, target: float | None = None) -> tuple[float, float]:
    """Steps and seconds at which one run's objective first gets down to ``target``.

    ``target`` is a value of :func:`objective`; None means :data:`DEFAULT_TARGET` times the run's
    starting value. Returns ``(inf, inf)`` for a run that never reaches it (a diverged one included).
    """
    values = objective(run)
    threshold = DEFAULT_TARGET * values.iloc[0] if target is None else target
    hit = values <= threshold
    if not hit.any():
        return math.inf, math.inf
    first = hit.to_numpy().argmax()
    return float(run["step"].iloc[first]), float(run["time_s"].iloc[first])


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def summarize(df: pd.DataFrame) -> str:
    """A few readable lines about a single run's table."""
    last = df.iloc[-1]
    finite = df[df["loss"].map(math.isfinite)]
    final = finite.iloc[-1] if len(finite) else last
    lines = [f"{last['optimizer']} on {last['problem']}: {int(last['step'])} steps, seed {int(last['seed'])}"]
    lines.append(f"  final loss   {final['loss']:.6g}")
    if not math.isnan(last["optimum"]):
        lines.append(f"  optimum f*   {last['optimum']:.6g}")
        lines.append(f"  gap          {final['loss'] - last['optimum']:.3g}")
    if "test_accuracy" in df.columns:
        lines.append(f"  test acc.    {final['test_accuracy']:.1%}  (test loss {final['test_loss']:.4g})")
    lines.append(f"  time         {last['time_s']:.3f} s (optimizer steps, evaluation excluded)")
    lines.append(f"  status       {last['status']}" + (f": {last['message']}" if last["message"] else ""))
    return "\n".join(lines)

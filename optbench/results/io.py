"""The results table on disk: parquet or CSV, written atomically, read back identical."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd

from optbench.errors import ResultsFileError
from optbench.results import files, outcomes, schema
from optbench.settings import declared

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
# Columns newer tables have, with their dtypes (files from before them still load).
OPTIONAL_COLUMNS = {
    **{s.name: s.dtype for s in declared.SETTINGS if s.dtype == "int64" and s.name not in CORE_COLUMNS},
    "batch_runs": "int64",
    "threads": "int64",
    "tokens": "float64",  # a language model's (NaN beside problems that count no tokens)
}


def check_writable(path: str | os.PathLike[str], also: tuple[str, ...] = ()) -> Path:
    """Fail early, before any work, when results could not be saved to ``path``."""
    return files.check_writable(path, suffixes=SUFFIXES, also=also)


def save_results(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` to ``path`` (.parquet or .csv) atomically, with every column's role.

    Parquet keeps the roles in its metadata (key ``optbench``); a CSV file keeps them by its
    column order (:func:`optbench.results.schema.rule_roles`).
    """
    path = check_writable(path)
    if path.suffix.lower() == ".parquet":
        return files.atomic_write(path, lambda tmp: write_parquet(df, tmp))
    ordered = schema.in_rule_order(df)
    return files.atomic_write(path, lambda tmp: ordered.to_csv(tmp, index=False))


def write_parquet(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """A parquet file of ``df`` with its roles in the metadata (no atomicity: see :func:`save_results`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    clean = df.copy(deep=False)
    clean.attrs = {}  # the roles go under their own key, not pandas' copy of attrs
    for column in [c for c in clean.columns if clean[c].dtype == object]:  # a setting that is text for one optimizer
        values = clean[column]  # and a number for another (Adafactor's eps "nan,0.001", Adam's 1e-08):
        given = values[values.notna()]  # the column is text, as a CSV file would read it
        if given.map(lambda v: isinstance(v, str)).any() and not given.map(lambda v: isinstance(v, str)).all():
            clean[column] = values.map(lambda v: v if isinstance(v, str) or pd.isna(v) else str(v))
    table = pa.Table.from_pandas(clean, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"optbench": schema.metadata(df)})
    pq.write_table(table, path)


def read_roles(path: str | os.PathLike[str]) -> dict[str, str]:
    """The roles stored in a parquet file's metadata ({} for a CSV file or a file without them)."""
    import pyarrow.parquet as pq

    if Path(path).suffix.lower() != ".parquet":
        return {}
    return schema.from_metadata((pq.read_schema(path).metadata or {}).get(b"optbench"))


def load_results(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a table written by :func:`save_results` (or ``optbench run --out``) back, identical, roles included."""
    path = Path(path)
    if not path.is_file():
        raise ResultsFileError(f"results file {str(path)!r} does not exist")
    if path.suffix.lower() not in SUFFIXES:
        raise ResultsFileError(f"results file {str(path)!r}: expected a .parquet or .csv file")
    try:
        if path.suffix.lower() == ".parquet":
            df = pd.read_parquet(path)
            stored = read_roles(path)
        else:
            # Only empty cells are missing: "None" and "nan" are values a setting can have.
            df = pd.read_csv(path, keep_default_na=False, na_values=[""])
            stored = {}
    except Exception as exc:  # pyarrow and pandas raise many types for a damaged file
        raise ResultsFileError(f"results file {str(path)!r} cannot be read: {first_line(exc)}") from None
    df.attrs = {}
    for column in [c for c in df.columns if pd.api.types.is_object_dtype(df[c])]:  # bool settings with holes
        df[column] = df[column].where(df[column].notna(), math.nan)
    missing = [c for c in CORE_COLUMNS if c not in df.columns]
    if missing:
        raise ResultsFileError(f"results file {str(path)!r} is not an optbench table: no column {', '.join(missing)}")
    dtypes = CORE_COLUMNS | {c: t for c, t in OPTIONAL_COLUMNS.items() if c in df.columns}
    for column, dtype in dtypes.items():
        if dtype == "str":
            if df[column].dtype != dtype or df[column].hasnans:  # a CSV reads empty text as missing
                df[column] = df[column].astype(object).where(df[column].notna(), "").astype(dtype)
        elif df[column].dtype != dtype:
            try:
                df[column] = df[column].astype(dtype)
            except (TypeError, ValueError):
                raise ResultsFileError(f"results file {str(path)!r}: column {column!r} is not {dtype}") from None
    return schema.with_roles(df, stored)


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
        gap = outcomes.shown(outcomes.final(df), outcomes.resolution(df))  # never a negative noise value
        measured = outcomes.final(df, floor=False)
        if measured < -outcomes.resolution(df):  # beyond rounding: a loss estimated on sampled data (fresh batches)
            gap = f"{measured:.4g} (below f*: the loss is measured on one sampled batch)"
        lines.append(f"  gap          {gap}")
    if "val_loss" in df.columns and math.isfinite(final["val_loss"]):  # held-out data: a language model's
        gap = f"  (gap to f* {final['val_gap']:.4g})" if "val_gap" in df.columns else ""
        lines.append(f"  val. loss    {final['val_loss']:.6g}{gap}")
    if "tokens" in df.columns and math.isfinite(final["tokens"]):
        lines.append(f"  tokens       {int(final['tokens']):,} (batches of {int(last['batch_size'])})")
    if "test_accuracy" in df.columns:
        lines.append(f"  test acc.    {final['test_accuracy']:.1%}  (test loss {final['test_loss']:.4g})")
    lines.append(f"  time         {last['time_s']:.3f} s (optimizer steps, evaluation excluded)")
    lines.append(f"  status       {last['status']}" + (f": {last['message']}" if last["message"] else ""))
    return "\n".join(lines)

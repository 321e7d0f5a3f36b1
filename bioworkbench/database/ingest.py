"""Files into a store: instrument exports, wide exports through a column map, batch records, LIMS results.

:func:`ingest_files` reads each file the way its content says (or as a wide export when a column
map is given) and adds what is new to a :class:`~bioworkbench.database.Store`; a file whose
sha256 the store's ingest log already holds is skipped, and the result says when and by whom it
was ingested. :func:`read_quality` reads a LIMS quality export, :func:`read_batch_records` batch
records (batch, start, ...; CSV or Excel).
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from bioworkbench.database.store import IngestResult, Store
from bioworkbench.errors import ArgumentError, BioWorkbenchWarning, DataReadError, Issue, SchemaError
from bioworkbench.store import sha256_file

__all__ = ["ingest_files", "read_batch_records", "read_quality"]

#: columns of read_instrument's frame that the store does not keep (see _read_one)
_INSTRUMENT_ONLY = ("measured_at", "sampled_at", "vessel", "quantity", "dilution")
_TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xlsm", ".xls")
_BATCH_NAMES = ("batch_id", "batch", "lot", "batch id", "lot number", "batch_no")
#: ``titer (g/L)`` or ``titer [g/L]``: an attribute and its unit in a wide LIMS header
_HEADER_UNIT = re.compile(r"^\s*(?P<name>.+?)\s*[\(\[](?P<unit>[^\)\]]+)[\)\]]\s*$")


def _read_table(path: Path) -> pl.DataFrame:
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
            return pl.read_excel(path, infer_schema_length=0)
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
        return pl.read_csv(path, separator=sep, infer_schema_length=0, encoding="utf8-lossy")
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise DataReadError(f"{path}: cannot be read as a table: {exc}") from exc


def _looks_like_quality(path: Path) -> bool:
    try:
        head = _read_table(path).head(0)
    except DataReadError:
        return False
    names = {c.strip().lower() for c in head.columns}
    return bool(names & set(_BATCH_NAMES)) and len(names) >= 2


def _batch_column(columns: Iterable[str]) -> str | None:
    lower = {c.strip().lower(): c for c in columns}
    return next((lower[n] for n in _BATCH_NAMES if n in lower), None)


def _looks_like_batch_records(path: Path) -> bool:
    try:
        head = _read_table(path).head(0)
    except DataReadError:
        return False
    names = {c.strip().lower() for c in head.columns}
    return _batch_column(head.columns) is not None and "start" in names and "attribute" not in names


def read_batch_records(path: str | os.PathLike) -> pl.DataFrame:
    """Read batch records (an MES or batch-record export, CSV or Excel) into a ``batches`` frame.

    Parameters
    ----------
    path
        A table with a batch column (``batch_id``, ``batch``, ``lot``; any case), a ``start``
        column (ISO 8601 date-times; without an offset taken as UTC), and optionally the other
        columns of the batches frame (``product``, ``cell_line``, ``scale_l``, ``process``,
        ``status``, ``initial_volume_ml``) and columns of its own (kept, e.g. ``cpp_ph``).

    Returns
    -------
    polars.DataFrame
        The batches frame, columns cast to the data model's types.

    Raises
    ------
    DataReadError
        The file cannot be read as a table.
    SchemaError
        A start that is not a date-time, a number that is not a number (file, line and column of
        each, all collected).

    Notes
    -----
    The start is what gives instrument readings their culture time: an instrument file names a
    batch and a measurement time, and ``time_h`` is the hours since that batch's start.
    """
    from bioworkbench.schema import coerce_frame

    path = Path(path)
    raw = _read_table(path)
    batch_col = _batch_column(raw.columns)
    lower = {c: c.strip().lower() for c in raw.columns}
    raw = raw.rename({c: ("batch_id" if c == batch_col else lower[c]) for c in raw.columns})
    raw = raw.with_columns(pl.col(c).str.strip_chars() for c in raw.columns)
    frame, issues = coerce_frame("batches", raw, file=str(path), first_line=2)
    if issues:
        raise SchemaError(issues)
    return frame


def read_quality(path: str | os.PathLike) -> pl.DataFrame:
    """Read a LIMS quality export (CSV or Excel) into a ``quality`` frame.

    Parameters
    ----------
    path
        A table with a batch column (``batch_id``, ``batch``, ``lot``; any case) and either long
        columns ``attribute``, ``value`` (and optionally ``unit``, ``method``), or one column per
        attribute, its unit in the header (``titer (g/L)``, ``aggregates [%]``).

    Returns
    -------
    polars.DataFrame
        The columns of the ``quality`` frame (:data:`bioworkbench.schema.FRAMES`): one row per
        batch and attribute; empty cells of a wide table are left out.

    Raises
    ------
    DataReadError
        The file cannot be read as a table.
    SchemaError
        No batch column, or a value that is not a number (file, line and column of each, all
        collected).
    """
    path = Path(path)
    raw = _read_table(path)
    lower = {c.strip().lower(): c for c in raw.columns}
    batch_col = next((lower[n] for n in _BATCH_NAMES if n in lower), None)
    if batch_col is None:
        raise SchemaError(
            [
                Issue(
                    "no batch column.",
                    file=str(path),
                    line=1,
                    hint=f"name it one of {', '.join(_BATCH_NAMES)}; found: {', '.join(raw.columns)}.",
                )
            ]
        )
    raw = raw.with_row_index("_line", offset=2)  # line 1 is the header
    if "attribute" in lower and "value" in lower:
        long = raw.select(
            "_line",
            pl.col(batch_col).str.strip_chars().alias("batch_id"),
            pl.col(lower["attribute"]).str.strip_chars().alias("attribute"),
            pl.col(lower["value"]).str.strip_chars().alias("value"),
            (pl.col(lower["unit"]) if "unit" in lower else pl.lit(None, pl.String)).alias("unit"),
            (pl.col(lower["method"]) if "method" in lower else pl.lit(None, pl.String)).alias("method"),
            pl.lit(lower["value"]).alias("_column"),
        )
    else:
        parts = []
        for col in raw.columns:
            if col in ("_line", batch_col):
                continue
            m = _HEADER_UNIT.match(col)
            name, unit = (m["name"], m["unit"].strip()) if m else (col.strip(), None)
            parts.append(
                raw.select(
                    "_line",
                    pl.col(batch_col).str.strip_chars().alias("batch_id"),
                    pl.lit(name).alias("attribute"),
                    pl.col(col).str.strip_chars().alias("value"),
                    pl.lit(unit, pl.String).alias("unit"),
                    pl.lit(None, pl.String).alias("method"),
                    pl.lit(col).alias("_column"),
                )
            )
        if not parts:
            raise SchemaError([Issue("no attribute columns besides the batch column.", file=str(path), line=1)])
        long = pl.concat(parts).filter(pl.col("value").is_not_null() & (pl.col("value") != ""))
    long = long.with_columns(number=pl.col("value").str.replace(",", ".", literal=True).cast(pl.Float64, strict=False))
    bad = long.filter(pl.col("value").is_not_null() & (pl.col("value") != "") & pl.col("number").is_null())
    if bad.height:
        raise SchemaError(
            [
                Issue(
                    f"expected a number, found {r['value']!r}.",
                    file=str(path),
                    line=r["_line"],
                    column=r["_column"],
                    batch=r["batch_id"],
                    hint="write the number alone (a result below the limit of quantitation as an empty cell "
                    "and a note in 'method').",
                )
                for r in bad.iter_rows(named=True)
            ]
        )
    return long.sort("_line").select("batch_id", "attribute", pl.col("number").alias("value"), "unit", "method")


def _folder_sha256(folder: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(folder)}\0{sha256_file(file)}\n".encode())
    return digest.hexdigest()


def _read_one(
    path: Path,
    store: Store,
    *,
    batch_from: str | None,
    column_map: str | Mapping[str, Any] | None,
    timezone: str | None,
) -> tuple[str, Any]:
    """(kind, data for Store.add)."""
    if path.is_dir():
        from bioworkbench.io import read_campaign

        return "campaign", read_campaign(path)
    if column_map is not None:
        from bioworkbench.io.wide import read_wide

        return "wide", read_wide(path, column_map, timezone=timezone)
    from bioworkbench.instruments import detect_instrument, read_instrument

    try:
        instrument = detect_instrument(path)
    except DataReadError:
        if path.suffix.lower() in _TABLE_SUFFIXES and _looks_like_batch_records(path):
            return "batches", {"batches": read_batch_records(path)}
        if path.suffix.lower() in _TABLE_SUFFIXES and _looks_like_quality(path):
            return "quality", {"quality": read_quality(path)}
        raise DataReadError(
            f"{path}: neither an instrument export that bioworkbench recognises, nor batch records (a batch "
            "column and 'start'), nor a LIMS quality table (a batch column and attributes). Hint: for a wide "
            "bioreactor export give its column map (bioworkbench ingest FILE --map NAME)."
        ) from None
    tz = timezone or "UTC"
    obs = read_instrument(path, instrument=instrument, batch_from=batch_from, timezone=tz)
    untimed = obs.filter(pl.col("time_h").is_null() & pl.col("batch_id").is_not_null())["batch_id"].unique()
    if untimed.len():
        # culture time from the batches' start, where the store knows every batch of the file
        starts = store.batch_starts()
        named = set(obs["batch_id"].drop_nulls().to_list())
        if named <= set(starts["batch_id"].to_list()):
            obs = read_instrument(path, instrument=instrument, batch_from=batch_from, time_from=starts, timezone=tz)
    placed = obs.filter(pl.col("batch_id").is_not_null() & pl.col("time_h").is_not_null())
    if placed.height == 0:
        raise DataReadError(
            f"{path}: none of its {obs.height:,} values could be given a batch and a culture time. "
            "Hint: give a pattern for the sample IDs, e.g. --batch-from '(?P<batch_id>B\\d+)-D(?P<day>\\d+)'."
        )
    if placed.height < obs.height:
        warnings.warn(
            f"{path}: {obs.height - placed.height:,} of {obs.height:,} values have no batch or no culture time "
            "and were not stored (give --batch-from with a batch_id and day/hour group to place them).",
            BioWorkbenchWarning,
            stacklevel=3,
        )
    # what the store does not keep of an instrument's rows, because it follows from what it keeps:
    # measured_at / sampled_at (time_h counts the hours from the batch's start), vessel (the batch),
    # quantity (the variable), dilution (already applied; raw_value holds the value as written)
    placed = placed.drop([c for c in _INSTRUMENT_ONLY if c in placed.columns])
    return f"instrument:{instrument}", {"observations": placed}


def ingest_files(
    store: Store,
    paths: Iterable[str | os.PathLike],
    *,
    batch_from: str | None = None,
    column_map: str | Mapping[str, Any] | None = None,
    timezone: str | None = None,
) -> list[IngestResult]:
    """Add what is new in files to a store; files ingested before (same sha256) are skipped.

    Parameters
    ----------
    store
        An open store (:func:`~bioworkbench.database.open_store`).
    paths
        Instrument exports (read with :func:`bioworkbench.read_instrument`, the instrument
        recognised from the content; culture time from the pattern's day or hour, else from
        the batch's ``start`` in the store when the store knows every batch the file names),
        batch records (a batch column and ``start``: :func:`read_batch_records`; give them
        before the instrument files of those batches), LIMS quality tables
        (:func:`read_quality`), campaign folders
        (:func:`bioworkbench.read_campaign`), or, with ``column_map``, wide bioreactor exports
        (:func:`bioworkbench.read_wide`).
    batch_from
        For instrument files: the pattern mapping a sample ID to batch and day (see
        :func:`bioworkbench.read_instrument`).
    column_map
        Read every file as a wide export with this map (a bundled map name, a YAML file or a
        dict).
    timezone
        The IANA zone of timestamps written without an offset.

    Returns
    -------
    list[IngestResult]
        One per file, in order: rows added, superseded and unchanged, or ``skipped`` with the
        earlier ingest that holds the same bytes.

    Raises
    ------
    ArgumentError
        ``store`` is not a Store.
    DataReadError, SchemaError
        A file that cannot be read (the files before it are already in the store, each in its
        own transaction).

    Notes
    -----
    Of an instrument file's rows the store keeps the observation columns and the lineage
    (``sample_id``, ``instrument``, ``replicate``, ``raw_value``, ``raw_unit``,
    ``source_file``, ``source_line``, ``source_cell``); ``measured_at`` and ``sampled_at``
    (``time_h`` is the hours since the batch's start), ``vessel`` (the batch), ``quantity``
    (the variable) and ``dilution`` (applied; ``raw_value`` is the value as written) are not
    stored.
    """
    if not isinstance(store, Store):
        raise ArgumentError(f"ingest_files: store must be a Store (bw.open_store(url)); got {type(store).__name__}.")
    results = []
    for p in paths:
        path = Path(p)
        if not path.exists():
            raise DataReadError(f"{path}: no such file or folder.")
        digest = _folder_sha256(path) if path.is_dir() else sha256_file(path)
        earlier = store.seen(digest)
        if earlier.height:
            first = earlier.row(0, named=True)
            results.append(
                IngestResult(
                    source=str(path),
                    sha256=digest,
                    skipped=True,
                    reason="already ingested: "
                    + ("" if first["source"] == str(path) else f"same sha256 as {first['source']}, ")
                    + f"ingest {first['ingest_id']} on {first['ingested_at']:%Y-%m-%d %H:%M} UTC by {first['who']}",
                )
            )
            continue
        kind, data = _read_one(path, store, batch_from=batch_from, column_map=column_map, timezone=timezone)
        results.append(store.add(data, source=str(path), sha256=digest, kind=kind))
    return results

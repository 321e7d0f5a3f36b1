"""Wide bioreactor exports: one row per sample time, one column per variable, read via a column map.

:func:`read_wide` reads CSV or Excel exports with a column map (:mod:`bioworkbench.io.column_map`)
into a :class:`~bioworkbench.Campaign`. Every cell keeps its lineage: ``source_file`` and
``source_line`` (the line of a CSV file, or the row number of a spreadsheet, header = row 1; for
a polars frame, the name the caller gives and the frame's row index).

What lab exports need besides a plain map (each a map key and a keyword of :func:`read_wide`):
rows out of time order sorted (``time: {sort: true}``), repeated measurements of one sample kept
as replicates or averaged (``replicates: keep | mean``), batch and culture day taken from a
sample ID by a pattern (``batch: {column: "Sample ID", pattern: "(?P<batch_id>B\\d+)-D(?P<day>\\d+)"}``),
and a tolerance for text in number columns (``read: {max_junk: 0.05}``: such cells are kept,
flagged ``unreadable``, up to that fraction of a file's measurement cells).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl

from bioworkbench.campaign import Campaign
from bioworkbench.errors import ConfigError, Issue, SchemaError, suggest
from bioworkbench.io._wide_inputs import (
    FLAG_UNREADABLE,
    Options,
    Source,
    options,
    replicates_of,
    sources_of,
    warn_junk,
    with_batch_from,
)
from bioworkbench.io.column_map import ColumnMap, _check_timezone, column_map
from bioworkbench.io.tidy import read_table
from bioworkbench.io.timestamps import parse_timestamps, zone_issues
from bioworkbench.schema import FRAMES, flag_values
from bioworkbench.store import sha256_file
from bioworkbench.units import conversion
from bioworkbench.variables import to_canonical

__all__ = ["ColumnMap", "column_map", "read_wide"]

#: ``column_map`` as a function, inside :func:`read_wide` whose argument has that name
column_map_fn = column_map


def read_wide(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    column_map: str | os.PathLike | Mapping[str, Any] | ColumnMap,
    *,
    batches: pl.DataFrame | str | os.PathLike | None = None,
    media: pl.DataFrame | None = None,
    on_invalid: Literal["raise", "flag"] = "raise",
    timezone: str | None = None,
    name: str | None = None,
    description: str | None = None,
    sort: bool | None = None,
    replicates: Literal["error", "keep", "mean"] | None = None,
    batch_from: Mapping[str, str] | None = None,
    max_junk: float | None = None,
    source_name: str | None = None,
) -> Campaign:
    """Read wide bioreactor exports (CSV or Excel, or polars frames) into a :class:`~bioworkbench.Campaign`.

    Parameters
    ----------
    paths
        One file per batch or one file per campaign (or several of either), or a polars frame
        holding such a table (then ``source_name`` names it), or a list of files and frames.
    column_map
        A bundled map name, a YAML file or a dict: see :class:`ColumnMap`.
    batches
        Batch metadata (a frame or a file); by default taken from the map's ``batches`` section,
        else one row per batch id found, with nothing else known.
    media
        Media compositions (a frame in any convertible unit); by default the map's ``media``.
    on_invalid
        ``"raise"`` (default) or ``"flag"``: what to do with physically impossible values.
    timezone
        The time zone of timestamps written without a UTC offset (an IANA name such as
        ``"Europe/Berlin"``, or ``"UTC"``); overrides ``time: {timezone: ...}`` in the map. It is
        required when the time column holds such timestamps: read as UTC, local clock times are
        off by the UTC offset and by one hour across a daylight-saving change. Local times that do
        not exist or occur twice at a change are errors naming their line. Dates of the
        ``batches`` metadata (``format:``) are read in this zone too, else as UTC.
    name, description
        Of the campaign (default: the map's).
    sort
        Accept rows out of time order within a batch and sort them (each keeps its line in
        ``source_line``); default: the map's ``time: {sort: ...}``, else ``False``, where time
        going backwards is an error.
    replicates
        Repeated measurements of one batch, time, variable and source: ``"error"`` (each repeat
        is reported as a duplicate), ``"keep"`` (every one a row, numbered 1, 2, ... in a
        ``replicate`` column in the order of the file) or ``"mean"`` (one row: the mean of the
        readable, unflagged repeats, with ``n_replicates``, ``replicate_sd`` and the line of the
        first in ``source_line``). Default: the map's ``replicates:``, else ``"error"``.
    batch_from
        ``{"column": "Sample ID", "pattern": r"(?P<batch_id>B\\d+)-D(?P<day>\\d+)"}``: the batch
        id is the pattern's ``batch_id`` group searched in that column, and its ``day`` or
        ``hour`` group, where present, is the culture time (over the map's time column). Replaces
        the map's ``batch`` section; the map may say the same as ``batch: {column:, pattern:}``.
    max_junk
        The largest fraction (0-1) of a file's non-empty measurement cells that may hold text
        that is not a number (``10.00%``, ``n/a``, ``#DIV/0!``): up to it, such a cell is kept
        without a value, flagged ``unreadable`` with the text in ``flag_reason``, and counted in a
        warning; above it, every such cell is an error as before. Default: the map's
        ``read: {max_junk: ...}``, else 0 (none tolerated).
    source_name
        The name a polars frame is known by in the lineage (``source_file``) and the errors,
        e.g. the LIMS query or export it came from; required for a frame.

    Returns
    -------
    Campaign

    Raises
    ------
    DataReadError
        A file that cannot be read.
    SchemaError
        Every problem in every file: mapped columns missing, unmapped columns, unreadable numbers,
        units that cannot be converted, time going backwards within a batch, duplicate
        (batch, time, variable) rows, impossible values, timestamps without a time zone, with
        file, line, column and batch. Spreadsheet cells are checked as CSV cells are: ``n/a``,
        ``#DIV/0!`` or a formula without a saved result in a number column is an error at its row.
    ConfigError
        A ``timezone`` that is not a known IANA time zone name; a ``batch_from`` without a
        column or a ``batch_id`` group.
    ArgumentError
        A frame without ``source_name``, an unknown ``replicates``, a ``max_junk`` outside 0-1.

    Warns
    -----
    BioWorkbenchWarning
        Cells flagged ``unreadable`` under ``max_junk``: how many, and the first few with their
        line and column.

    Notes
    -----
    Cumulative volume columns (``cumulative: true``, e.g. total feed added so far) become one
    event per sampling interval at the interval's midpoint, with the increment as its volume: the
    mass balance over an interval only needs what entered between its two samples. Samples
    are taken before additions at the same time (the campaign convention).

    ``source_line`` is the line of a CSV file or the spreadsheet's own row number (for a frame,
    its row index, from 0); empty rows (every cell blank) hold no data and are skipped, without
    shifting the rows after them.

    With ``replicates="mean"``: ``value = sum(x_i) / n`` and ``replicate_sd = sqrt(sum((x_i -
    value)^2) / (n - 1))`` over the ``n`` readable, unflagged repeats ``x_i`` (canonical unit of
    the variable; ``replicate_sd`` is null for one).
    """
    cmap = column_map_fn(column_map)
    if batch_from is not None:
        cmap = with_batch_from(cmap, batch_from)
    tz = timezone if timezone is not None else cmap.time.get("timezone")
    if timezone is not None:
        problems: list[Issue] = []
        _check_timezone(timezone, lambda msg, hint=None: problems.append(Issue(msg, column="timezone", hint=hint)))
        if problems:
            raise ConfigError(SchemaError(problems, context="read_wide: timezone").args[0])
    opts = options(cmap, tz, sort=sort, max_junk=max_junk, replicates=replicates)
    sources = sources_of(paths, source_name)
    paths = [src.path or Path(src.name) for src in sources]
    issues: list[Issue] = []
    obs_parts, ev_parts, rows_parts = [], [], []
    for src in sources:
        part = _read_file(src, cmap, opts)
        issues.extend(part.issues)
        if part.rows is not None:
            obs_parts.append(part.observations)
            ev_parts.append(part.events)
            rows_parts.append(part.rows)
    if issues:
        raise SchemaError(issues, context=str(paths[0]) if len(paths) == 1 else None)
    obs, found = to_canonical(pl.concat(obs_parts, how="vertical_relaxed"), line_col="source_line")
    issues.extend(found)
    warn_junk(obs)
    obs = replicates_of(obs, opts.replicates)
    obs, found = flag_values(obs, on_invalid=on_invalid)
    issues.extend(found)
    events = pl.concat(ev_parts, how="vertical_relaxed") if ev_parts else None
    if media is None and cmap.media:
        media = pl.DataFrame(cmap.media)
    if media is not None:
        media = media.with_columns(pl.col("concentration").cast(pl.Float64))
        media, found = to_canonical(media, value_col="concentration", file=cmap.path)
        issues.extend(found)
    batch_frame, found = _batches(
        pl.concat(rows_parts, how="diagonal_relaxed"), cmap, batches, paths[0], timezone=tz or "UTC"
    )
    issues.extend(found)
    if issues:
        raise SchemaError(issues)
    return Campaign(
        batches=batch_frame,
        observations=obs,
        events=events,
        media=media,
        name=name or cmap.name,
        description=description if description is not None else cmap.description,
        sources=_sources(sources, cmap),
    )


@dataclass(frozen=True, slots=True)
class _FilePart:
    """What one file gave: its issues, observations, events and rows (``None`` when it could not be read)."""

    issues: list[Issue]
    observations: pl.DataFrame | None = None
    events: pl.DataFrame | None = None
    rows: pl.DataFrame | None = None


def _read_file(src: Source, cmap: ColumnMap, opts: Options) -> _FilePart:
    """Read one export: its columns checked, batch and time read, values melted, events found."""
    if src.frame is not None:
        df, first_line = src.frame, 0
    else:
        df, first_line = read_table(
            src.path,
            separator=cmap.read.get("separator", ","),
            decimal_comma=bool(cmap.read.get("decimal_comma", False)),
            sheet=cmap.read.get("sheet"),
            encoding=cmap.read.get("encoding", "utf8"),
        )
    path = Path(src.name)
    df = df.rename({c: str(c).strip() for c in df.columns})
    found = _check_columns(df, cmap, path)
    if found:
        return _FilePart(found)
    df = df.with_row_index("_line", offset=first_line)
    # rows with every cell empty hold nothing (their line numbers are not reused)
    cells = [c for c in df.columns if c != "_line"]
    blank = pl.all_horizontal(pl.col(c).is_null() | (pl.col(c).cast(pl.String).str.strip_chars() == "") for c in cells)
    df, found = _batch_and_time(df.filter(~blank), cmap, path, timezone=opts.timezone, sort=opts.sort)
    if found:
        return _FilePart(found)
    obs, found_obs = _melt(df, cmap, path, max_junk=opts.max_junk)
    ev, found_ev = _events(df, cmap, path)
    return _FilePart(found_obs + found_ev, obs, ev, df)


def _sources(inputs: list[Source], cmap: ColumnMap) -> dict[str, str]:
    """The lineage of a campaign: every file read (data, map, batches) and its sha256; a frame's
    sha256 is that of its CSV text."""
    sources = {
        s.name: sha256_file(s.path) if s.path is not None else hashlib.sha256(s.frame.write_csv().encode()).hexdigest()
        for s in inputs
    }
    if cmap.path:
        sources[cmap.path] = sha256_file(cmap.path)
    files = [s.path for s in inputs if s.path is not None]
    if isinstance(cmap.batches, Mapping) and cmap.batches.get("file") and files:
        meta_path = files[0].parent / cmap.batches["file"]
        if meta_path.exists():
            sources[str(meta_path)] = sha256_file(meta_path)
    return sources


def _check_columns(df: pl.DataFrame, cmap: ColumnMap, path: Path) -> list[Issue]:
    issues = []
    used = cmap.used_columns() - {""}
    for col in sorted(used - set(df.columns)):
        issues.append(
            Issue(
                f"column {col!r} named in the column map {cmap.name!r} is not in the file.",
                file=str(path),
                line=1,
                column=col,
                hint=suggest(col, df.columns, what="Columns in the file"),
            )
        )
    for col in df.columns:
        if col not in used and not cmap.is_ignored(col):
            issues.append(
                Issue(
                    f"column {col!r} is not in the column map {cmap.name!r}.",
                    file=str(path),
                    line=1,
                    column=col,
                    hint="map it to a variable under 'columns:' or list it under 'ignore:'.",
                )
            )
    return issues


def _batch_and_time(
    df: pl.DataFrame, cmap: ColumnMap, path: Path, *, timezone: str | None = None, sort: bool = False
) -> tuple[pl.DataFrame, list[Issue]]:
    issues: list[Issue] = []
    b = cmap.batch
    prefix = str(b.get("prefix", ""))
    pattern_hours = pl.lit(None, dtype=pl.Float64)
    if "pattern" in b:
        text = pl.col(b["column"]).cast(pl.String).str.strip_chars()
        groups = re.compile(str(b["pattern"])).groupindex
        key = "batch_id" if "batch_id" in groups else "batch"
        found = text.str.extract_groups(str(b["pattern"]))
        bid = found.struct.field(key)
        if "day" in groups:
            pattern_hours = found.struct.field("day").cast(pl.Float64, strict=False) * 24.0
        elif "hour" in groups:
            pattern_hours = found.struct.field("hour").cast(pl.Float64, strict=False)
        unmatched = df.filter(bid.is_null() & text.is_not_null() & (text != ""))
        for line, value in unmatched.select("_line", b["column"]).head(20).iter_rows():
            issues.append(
                Issue(
                    f"{value!r} does not match the batch pattern {b['pattern']!r}.",
                    file=str(path),
                    line=line,
                    column=b["column"],
                    hint="correct the sample ID, or widen the pattern.",
                )
            )
    elif "column" in b:
        bid = pl.col(b["column"]).cast(pl.String).str.strip_chars()
    elif "template" in b:
        parts = re.split(r"({[^{}]+})", b["template"])
        bid = pl.concat_str(
            [pl.col(p[1:-1]).cast(pl.String).str.strip_chars() if p.startswith("{") else pl.lit(p) for p in parts if p]
        )
    elif "from_filename" in b:
        m = re.search(b["from_filename"], path.name)
        if not m or "batch" not in m.groupdict():
            return df, [
                Issue(
                    f"cannot find the batch id in the file name with pattern {b['from_filename']!r}"
                    " (it needs a group named 'batch').",
                    file=str(path),
                )
            ]
        bid = pl.lit(m.group("batch"))
    else:
        bid = pl.lit(str(b["value"]))
    df = df.with_columns((pl.lit(prefix) + bid).alias("_batch"), _hours=pattern_hours)
    for row in df.filter(pl.col("_batch").is_null()).head(20).iter_rows(named=True):
        issues.append(
            Issue(
                "no batch id on this row.",
                file=str(path),
                line=row["_line"],
                column=b.get("column"),
            )
        )
    t = cmap.time
    if "column" not in t:  # the culture time is the pattern's day or hour
        df = df.with_columns(_time_h=pl.col("_hours")).drop("_hours")
        for row in df.filter(pl.col("_time_h").is_null()).head(20).iter_rows(named=True):
            issues.append(
                Issue(
                    f"no day or hour in {row[b['column']]!r} by the batch pattern {b['pattern']!r}.",
                    file=str(path),
                    line=row["_line"],
                    column=b["column"],
                    batch=row["_batch"],
                )
            )
        return _in_time_order(df, path, b["column"], sort, issues)
    col, unit = t["column"], t.get("unit", "h")
    raw = df[col]
    if unit == "timestamp":
        ts, naive = parse_timestamps(raw, t.get("format"), timezone)
        zone_problems = zone_issues(df, raw, ts, naive, timezone, path, col)
        if zone_problems:
            return df, zone_problems
        inoc = t.get("inoculation", "first")
        if inoc == "first":
            tmp = df.with_columns(_ts=ts).with_columns(_t0=pl.col("_ts").min().over("_batch"))
        elif isinstance(inoc, Mapping) and "column" in inoc:
            t0, _ = parse_timestamps(df[inoc["column"]], t.get("format"), timezone)
            tmp = df.with_columns(_ts=ts, _t0=t0)
        else:
            t0, _ = parse_timestamps(pl.Series([str(inoc)] * df.height, dtype=pl.String), None, timezone or "UTC")
            tmp = df.with_columns(_ts=ts, _t0=t0)
        hours = (pl.col("_ts") - pl.col("_t0")).dt.total_microseconds() / 3.6e9
        df = tmp.with_columns(_time_h=hours).drop("_ts", "_t0")
        bad = df["_time_h"].is_null() & raw.is_not_null() & df["_hours"].is_null()
    else:
        num, _ = _numbers(raw)
        scale, _ = conversion(unit, "h")
        df = df.with_columns(_time_h=num * scale)
        bad = df["_time_h"].is_null() & raw.is_not_null() & df["_hours"].is_null()
    for row in df.filter(bad).head(20).iter_rows(named=True):
        issues.append(
            Issue(
                f"time {row[col]!r} is not readable as "
                f"{'a timestamp' if unit == 'timestamp' else 'a number of ' + unit}.",
                file=str(path),
                line=row["_line"],
                column=col,
                batch=row["_batch"],
            )
        )
    missing_t = df.filter(pl.col("_time_h").is_null() & raw.is_null() & pl.col("_hours").is_null())
    for row in missing_t.head(20).iter_rows(named=True):
        issues.append(Issue("time is empty.", file=str(path), line=row["_line"], column=col, batch=row["_batch"]))
    # the pattern's day or hour, where it matched, over the time column
    df = df.with_columns(_time_h=pl.coalesce("_hours", "_time_h")).drop("_hours")
    return _in_time_order(df, path, col, sort, issues)


def _in_time_order(
    df: pl.DataFrame, path: Path, col: str, sort: bool, issues: list[Issue]
) -> tuple[pl.DataFrame, list[Issue]]:
    """Rows sorted by batch and time (``sort``), or each time going backwards within a batch reported."""
    if sort:
        return df.sort("_batch", "_time_h", maintain_order=True, nulls_last=True), issues
    back = df.with_columns(_prev=pl.col("_time_h").shift(1).over("_batch")).filter(pl.col("_time_h") < pl.col("_prev"))
    for row in back.head(20).iter_rows(named=True):
        issues.append(
            Issue(
                f"time goes backwards: {row['_time_h']:g} h after {row['_prev']:g} h in the row before for this batch.",
                file=str(path),
                line=row["_line"],
                column=col,
                batch=row["_batch"],
                hint="rows of a batch must be in time order; check for a pasted or mis-typed time, "
                "or read with sort=True (map: time: {sort: true}) if the export is simply not sorted.",
            )
        )
    return df, issues


def _numbers(s: pl.Series) -> tuple[pl.Series, pl.Series]:
    """A column's cells as numbers (text stripped first), and where a cell holds something that is not one.

    An empty or blank cell is missing, not unreadable.
    """
    if s.dtype == pl.String:
        text = s.str.strip_chars()
        values = text.cast(pl.Float64, strict=False)
        return values, text.is_not_null() & (text != "") & values.is_null()
    values = s.cast(pl.Float64, strict=False)
    return values, s.is_not_null() & values.is_null()


def _melt(df: pl.DataFrame, cmap: ColumnMap, path: Path, *, max_junk: float = 0.0) -> tuple[pl.DataFrame, list[Issue]]:
    issues: list[Issue] = []
    parts = []
    read = {spec.header: _numbers(df[spec.header]) for spec in cmap.columns}
    n_junk = sum(int(bad.sum()) for _, bad in read.values())
    n_cells = sum(
        int((df[h].is_not_null() & (df[h].cast(pl.String).str.strip_chars() != "").fill_null(False)).sum())
        for h in read
    )
    tolerated = n_junk > 0 and n_junk <= max_junk * n_cells
    for spec in cmap.columns:
        s = df[spec.header]
        val, bad = read[spec.header]
        if bad.any() and not tolerated:
            for row in df.filter(bad).head(20).iter_rows(named=True):
                v = str(row[spec.header])
                hint = None
                if re.fullmatch(r"-?\d+,\d+", v.strip()):
                    hint = "the file uses decimal commas; set read: {decimal_comma: true} in the map."
                elif v.startswith("="):
                    hint = (
                        "the cell holds a formula without a saved result (the program that wrote the file "
                        "did not compute it); open the file in Excel or LibreOffice and save it."
                    )
                elif v.startswith("#"):
                    hint = "the spreadsheet shows an error in this cell; correct the formula or leave the cell empty."
                elif v.strip().lower() in ("n/a", "na", "nan", "-", "--", "nd", "n.d.", "none"):
                    hint = "leave the cell empty for a missing value."
                if hint is None and n_junk:
                    hint = (
                        f"{n_junk} of {n_cells} measurement cells in this file hold text; pass max_junk= "
                        "(map: read: {max_junk: ...}) to keep such cells flagged 'unreadable'."
                    )
                issues.append(
                    Issue(
                        f"expected a number for {spec.variable}, found {v!r}.",
                        file=str(path),
                        line=row["_line"],
                        column=spec.header,
                        batch=row["_batch"],
                        hint=hint,
                    )
                )
        parts.append(
            pl.DataFrame(
                {
                    "batch_id": df["_batch"],
                    "time_h": df["_time_h"],
                    "variable": pl.Series([spec.variable] * df.height, dtype=pl.String),
                    "value": val,
                    "unit": pl.Series([spec.unit] * df.height, dtype=pl.String),
                    "source": pl.Series([spec.source] * df.height, dtype=pl.String),
                    "source_line": df["_line"].cast(pl.Int64),
                    "_present": s.is_not_null() & ~(s.cast(pl.String).str.strip_chars() == "").fill_null(False),
                    "_bad": bad,
                    "_header": pl.Series([spec.header] * df.height, dtype=pl.String),
                    "_text": s.cast(pl.String).str.strip_chars(),
                }
            )
        )
    obs = (
        pl.concat(parts)
        .filter(pl.col("_present"))
        .with_columns(
            flag=pl.when("_bad").then(pl.lit(FLAG_UNREADABLE)),
            flag_reason=pl.when("_bad").then(
                pl.format("column '{}': expected a number for {}, found '{}'", "_header", "variable", "_text")
            ),
            source_file=pl.lit(str(path)),
        )
        .select([c.name for c in FRAMES["observations"]])
    )
    return obs, issues


def _events(df: pl.DataFrame, cmap: ColumnMap, path: Path) -> tuple[pl.DataFrame, list[Issue]]:
    issues: list[Issue] = []
    parts = []
    for spec in cmap.events:
        s = df[spec.column]
        val, unreadable = _numbers(s)
        text = s.cast(pl.String).str.strip_chars()
        for row in df.with_columns(_text=text).filter(unreadable).head(20).iter_rows(named=True):
            issues.append(
                Issue(
                    f"expected a number for the {spec.event} volume, found {row['_text']!r}.",
                    file=str(path),
                    line=row["_line"],
                    column=spec.column,
                    batch=row["_batch"],
                    hint="leave the cell empty when nothing was added or removed.",
                )
            )
        try:
            scale, _ = conversion(spec.unit, "mL")
        except ConfigError as exc:
            issues.append(Issue(f"volume unit: {exc}", file=str(path), column=spec.column))
            continue
        x = df.select("_batch", "_time_h", "_line").with_columns(_v=val * scale).filter(pl.col("_v").is_not_null())
        if spec.cumulative:
            x = x.sort("_batch", "_time_h", maintain_order=True).with_columns(
                _prev_v=pl.col("_v").shift(1, fill_value=0.0).over("_batch"),
                _prev_t=pl.col("_time_h").shift(1, fill_value=0.0).over("_batch"),
            )
            for row in x.filter(pl.col("_v") < pl.col("_prev_v") - 1e-9).head(20).iter_rows(named=True):
                issues.append(
                    Issue(
                        f"cumulative {spec.event} volume decreases ({row['_prev_v']:g} -> {row['_v']:g} mL).",
                        file=str(path),
                        line=row["_line"],
                        column=spec.column,
                        batch=row["_batch"],
                    )
                )
            ev = x.filter(pl.col("_v") > pl.col("_prev_v")).select(
                batch_id="_batch",
                time_h=(pl.col("_prev_t") + pl.col("_time_h")) / 2,
                event=pl.lit(spec.event),
                volume_ml=pl.col("_v") - pl.col("_prev_v"),
                medium=pl.lit(spec.medium, dtype=pl.String),
                note=pl.format(
                    "{} added between {} h and {} h (from cumulative column '{}', {} line {})",
                    pl.lit(spec.event),
                    pl.col("_prev_t").round(3),
                    pl.col("_time_h").round(3),
                    pl.lit(spec.column),
                    pl.lit(path.name),
                    pl.col("_line"),
                ),
            )
        else:
            bad = x.filter(pl.col("_v") < 0)
            for row in bad.head(20).iter_rows(named=True):
                issues.append(
                    Issue(
                        f"{spec.event} volume {row['_v']:g} mL is negative.",
                        file=str(path),
                        line=row["_line"],
                        column=spec.column,
                        batch=row["_batch"],
                    )
                )
            ev = x.filter(pl.col("_v") > 0).select(
                batch_id="_batch",
                time_h="_time_h",
                event=pl.lit(spec.event),
                volume_ml="_v",
                medium=pl.lit(spec.medium, dtype=pl.String),
                note=pl.format("{} line {}", pl.lit(path.name), pl.col("_line")),
            )
        parts.append(ev)
    if not parts:
        return pl.DataFrame(schema={c.name: c.dtype for c in FRAMES["events"]}), issues
    return pl.concat(parts, how="vertical_relaxed"), issues


def _batches(
    rows: pl.DataFrame, cmap: ColumnMap, batches: Any, first_path: Path, *, timezone: str = "UTC"
) -> tuple[pl.DataFrame, list[Issue]]:
    ids = rows.select(batch_id="_batch").unique(maintain_order=True)
    if isinstance(batches, pl.DataFrame):
        return batches, []
    if batches is not None:
        df, _ = read_table(batches)
        return df, []
    spec = cmap.batches
    if not spec:
        return ids, []
    issues: list[Issue] = []
    src_name = spec.get("file")
    if src_name:
        meta_path = first_path.parent / src_name
        meta, _ = read_table(meta_path, sheet=spec.get("sheet"))
        key = spec.get("key")
        if key not in meta.columns:
            return ids, [
                Issue(
                    f"batches key column {key!r} not in {meta_path}.",
                    file=str(meta_path),
                    line=1,
                    hint=suggest(key, meta.columns, what="Columns"),
                )
            ]
        prefix = str(cmap.batch.get("prefix", ""))
        meta = meta.with_columns((pl.lit(prefix) + pl.col(key).cast(pl.String).str.strip_chars()).alias("_batch"))
        missing = ids.filter(~pl.col("batch_id").is_in(meta["_batch"].implode()))
        for b in missing["batch_id"].to_list():
            issues.append(
                Issue(
                    f"batch {b!r} has data but no row in {meta_path.name}.",
                    file=str(meta_path),
                    column=key,
                    batch=b,
                )
            )
        base = meta
    else:
        # metadata from the data rows themselves: first row of each batch
        base = rows.sort("_batch", "_time_h").unique("_batch", keep="first", maintain_order=True)
    exprs = [pl.col("_batch").alias("batch_id")]
    for target, src in (spec.get("columns") or {}).items():
        if isinstance(src, str):
            src = {"column": src}
        if "value" in src:
            exprs.append(pl.lit(src["value"]).alias(target))
            continue
        col = src.get("column")
        if col not in base.columns:
            issues.append(
                Issue(
                    f"batches column {col!r} (for {target}) not found.",
                    file=src_name or str(first_path),
                    line=1,
                    hint=suggest(col, base.columns, what="Columns"),
                )
            )
            continue
        e = pl.col(col)
        if "format" in src:
            e = e.cast(pl.String).str.to_datetime(format=src["format"], strict=False, time_unit="us")
            if "%z" not in src["format"]:
                e = e.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")
            e = e.dt.convert_time_zone("UTC")
        elif "unit" in src and target == "initial_volume_ml":
            scale, _ = conversion(src["unit"], "mL")
            e = e.cast(pl.Float64) * scale
        exprs.append(e.alias(target))
    if issues:
        return ids, issues
    try:
        out = base.select(exprs)
    except pl.exceptions.PolarsError as exc:  # e.g. a volume column holding text
        where = src_name or str(first_path)
        return ids, [
            Issue(
                f"the batches metadata cannot be read as the map says ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0]}).",
                file=str(first_path.parent / src_name) if src_name else where,
                hint="check the columns named under batches: columns: in the map (numbers, dates and their format).",
            )
        ]
    return ids.join(out, on="batch_id", how="left", maintain_order="left"), []

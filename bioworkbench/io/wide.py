"""Wide bioreactor exports: one row per sample time, one column per variable, read via a column map.

:func:`read_wide` reads CSV or Excel exports with a column map (:mod:`bioworkbench.io.column_map`)
into a :class:`~bioworkbench.Campaign`. Every cell keeps its lineage: ``source_file`` and
``source_line`` (the line of a CSV file, or the row number of a spreadsheet, header = row 1).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl

from bioworkbench.campaign import Campaign
from bioworkbench.errors import ConfigError, DataReadError, Issue, SchemaError, suggest
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
) -> Campaign:
    """Read wide bioreactor exports (CSV or Excel) into a :class:`~bioworkbench.Campaign`.

    Parameters
    ----------
    paths
        One file per batch or one file per campaign (or several of either).
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
        A ``timezone`` that is not a known IANA time zone name.

    Notes
    -----
    Cumulative volume columns (``cumulative: true``, e.g. total feed added so far) become one
    event per sampling interval at the interval's midpoint, with the increment as its volume: the
    mass balance over an interval only needs what entered between its two samples. Samples
    are taken before additions at the same time (the campaign convention).

    ``source_line`` is the line of a CSV file or the spreadsheet's own row number; empty rows
    (every cell blank) hold no data and are skipped, without shifting the rows after them.
    """
    cmap = column_map_fn(column_map)
    tz = timezone if timezone is not None else cmap.time.get("timezone")
    if timezone is not None:
        problems: list[Issue] = []
        _check_timezone(timezone, lambda msg, hint=None: problems.append(Issue(msg, column="timezone", hint=hint)))
        if problems:
            raise ConfigError(SchemaError(problems, context="read_wide: timezone").args[0])
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise DataReadError("read_wide: no files given.")
    issues: list[Issue] = []
    obs_parts, ev_parts, rows_parts = [], [], []
    for path in paths:
        part = _read_file(path, cmap, timezone=tz)
        issues.extend(part.issues)
        if part.rows is not None:
            obs_parts.append(part.observations)
            ev_parts.append(part.events)
            rows_parts.append(part.rows)
    if issues:
        raise SchemaError(issues, context=str(paths[0]) if len(paths) == 1 else None)
    obs, found = to_canonical(pl.concat(obs_parts, how="vertical_relaxed"), line_col="source_line")
    issues.extend(found)
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
        sources=_sources(paths, cmap),
    )


@dataclass(frozen=True, slots=True)
class _FilePart:
    """What one file gave: its issues, observations, events and rows (``None`` when it could not be read)."""

    issues: list[Issue]
    observations: pl.DataFrame | None = None
    events: pl.DataFrame | None = None
    rows: pl.DataFrame | None = None


def _read_file(path: Path, cmap: ColumnMap, *, timezone: str | None) -> _FilePart:
    """Read one export: its columns checked, batch and time read, values melted, events found."""
    df, first_line = read_table(
        path,
        separator=cmap.read.get("separator", ","),
        decimal_comma=bool(cmap.read.get("decimal_comma", False)),
        sheet=cmap.read.get("sheet"),
        encoding=cmap.read.get("encoding", "utf8"),
    )
    df = df.rename({c: str(c).strip() for c in df.columns})
    found = _check_columns(df, cmap, path)
    if found:
        return _FilePart(found)
    df = df.with_row_index("_line", offset=first_line)
    # rows with every cell empty hold nothing (their line numbers are not reused)
    cells = [c for c in df.columns if c != "_line"]
    blank = pl.all_horizontal(pl.col(c).is_null() | (pl.col(c).cast(pl.String).str.strip_chars() == "") for c in cells)
    df, found = _batch_and_time(df.filter(~blank), cmap, path, timezone=timezone)
    if found:
        return _FilePart(found)
    obs, found_obs = _melt(df, cmap, path)
    ev, found_ev = _events(df, cmap, path)
    return _FilePart(found_obs + found_ev, obs, ev, df)


def _sources(paths: list[Path], cmap: ColumnMap) -> dict[str, str]:
    """The lineage of a campaign read from ``paths``: every file read (data, map, batches) and its sha256."""
    sources = {str(p): sha256_file(p) for p in paths}
    if cmap.path:
        sources[cmap.path] = sha256_file(cmap.path)
    if isinstance(cmap.batches, Mapping) and cmap.batches.get("file"):
        meta_path = paths[0].parent / cmap.batches["file"]
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
    df: pl.DataFrame, cmap: ColumnMap, path: Path, *, timezone: str | None = None
) -> tuple[pl.DataFrame, list[Issue]]:
    issues: list[Issue] = []
    b = cmap.batch
    prefix = str(b.get("prefix", ""))
    if "column" in b:
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
    df = df.with_columns((pl.lit(prefix) + bid).alias("_batch"))
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
        bad = df["_time_h"].is_null() & raw.is_not_null()
    else:
        num, _ = _numbers(raw)
        scale, _ = conversion(unit, "h")
        df = df.with_columns(_time_h=num * scale)
        bad = df["_time_h"].is_null() & raw.is_not_null()
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
    missing_t = df.filter(pl.col("_time_h").is_null() & raw.is_null())
    for row in missing_t.head(20).iter_rows(named=True):
        issues.append(Issue("time is empty.", file=str(path), line=row["_line"], column=col, batch=row["_batch"]))
    # time going backwards within a batch, in file order
    back = df.with_columns(_prev=pl.col("_time_h").shift(1).over("_batch")).filter(pl.col("_time_h") < pl.col("_prev"))
    for row in back.head(20).iter_rows(named=True):
        issues.append(
            Issue(
                f"time goes backwards: {row['_time_h']:g} h after {row['_prev']:g} h in the row before for this batch.",
                file=str(path),
                line=row["_line"],
                column=col,
                batch=row["_batch"],
                hint="rows of a batch must be in time order; check for a pasted or mis-typed time.",
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


def _melt(df: pl.DataFrame, cmap: ColumnMap, path: Path) -> tuple[pl.DataFrame, list[Issue]]:
    issues: list[Issue] = []
    parts = []
    for spec in cmap.columns:
        s = df[spec.header]
        val, bad = _numbers(s)
        if bad.any():
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
                }
            )
        )
    obs = (
        pl.concat(parts)
        .filter(pl.col("_present"))
        .drop("_present")
        .with_columns(
            flag=pl.lit(None, dtype=pl.String),
            flag_reason=pl.lit(None, dtype=pl.String),
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

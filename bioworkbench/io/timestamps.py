"""Timestamps in wide exports: instants in UTC from text or spreadsheet date-times, and their time zone.

Text with a UTC offset (``2026-03-01T08:00:00Z``, ``…+01:00``) is an instant; text and spreadsheet
date-times without one are local clock times in the time zone the reader is given. Local times that
do not exist or occur twice at a daylight-saving change are errors at their line, never a guess.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import polars as pl

from bioworkbench.errors import Issue
from bioworkbench.schema import parse_iso_datetimes

__all__ = ["Timestamps", "parse_timestamps", "zone_issues"]


class Timestamps(NamedTuple):
    """A timestamp column read as instants (UTC) and as the naive values it held."""

    #: instants in UTC (null where unreadable, or naive without a time zone)
    instant: pl.Series
    #: the naive values (null for cells with a UTC offset)
    naive: pl.Series


def parse_timestamps(s: pl.Series, fmt: str | None, timezone: str | None) -> Timestamps:
    """Read a timestamp column as instants in UTC.

    Parameters
    ----------
    s
        The column: text, or spreadsheet date-times or dates.
    fmt
        A strftime format that every cell follows (default: every ISO 8601 spelling, cell by cell).
    timezone
        The IANA zone of values without a UTC offset (``None``: their instant is left null).

    Returns
    -------
    Timestamps
        ``instant`` and ``naive`` series; the naive values let callers tell which cells needed
        the time zone and which local times do not exist or are ambiguous there.
    """

    def localise(naive: pl.Expr) -> pl.Expr:
        if timezone is None:
            return pl.lit(None, dtype=pl.Datetime("us", "UTC"))
        return naive.dt.replace_time_zone(timezone, ambiguous="null", non_existent="null").dt.convert_time_zone("UTC")

    frame = pl.DataFrame({"x": s})
    if isinstance(s.dtype, pl.Datetime):
        if s.dtype.time_zone is not None:
            aware = pl.col("x").dt.convert_time_zone("UTC").dt.cast_time_unit("us")
            return Timestamps(
                frame.select(aware).to_series(), pl.Series(s.name, [None] * s.len(), dtype=pl.Datetime("us"))
            )
        naive = pl.col("x").dt.cast_time_unit("us")
        out = frame.select(ts=localise(naive), naive=naive)
        return Timestamps(out["ts"], out["naive"])
    if s.dtype == pl.Date:
        naive = pl.col("x").cast(pl.Datetime("us"))
        out = frame.select(ts=localise(naive), naive=naive)
        return Timestamps(out["ts"], out["naive"])
    text = pl.col("x").cast(pl.String).str.strip_chars()
    if fmt:
        if "%z" in fmt or "%Z" in fmt:
            aware = text.str.to_datetime(format=fmt, time_zone="UTC", strict=False, time_unit="us")
            out = frame.select(ts=aware, naive=pl.lit(None, dtype=pl.Datetime("us")))
        else:
            naive = text.str.to_datetime(format=fmt, strict=False, time_unit="us")
            out = frame.select(ts=localise(naive), naive=naive)
        return Timestamps(out["ts"], out["naive"])
    aware, naive = parse_iso_datetimes(text, time_zone=None)
    out = frame.select(ts=pl.coalesce(aware, localise(naive)), naive=pl.when(aware.is_null()).then(naive))
    return Timestamps(out["ts"], out["naive"])


def zone_issues(
    df: pl.DataFrame,
    raw: pl.Series,
    ts: pl.Series,
    naive: pl.Series,
    timezone: str | None,
    path: Path,
    col: str,
) -> list[Issue]:
    """Timestamps that need a time zone and have none, or local times that do not exist or repeat.

    Parameters
    ----------
    df
        The rows read, with ``_line`` and ``_batch``.
    raw, ts, naive
        The column as read, and its :func:`parse_timestamps` result.
    timezone
        The zone the reader was given, if any.
    path, col
        The file and the column, to locate the issues.

    Returns
    -------
    list[Issue]
        One issue naming the first row when no zone was given; else one per local time that does
        not exist or is ambiguous (the first 20).
    """
    needs = naive.is_not_null() & ts.is_null()
    if not needs.any():
        return []
    rows = df.select("_line", "_batch").with_columns(_raw=raw.cast(pl.String), _naive=naive).filter(needs)
    first = rows.row(0, named=True)
    if timezone is None:
        return [
            Issue(
                f"timestamps without a time zone ({rows.height} rows, e.g. {first['_raw']!r}); their UTC "
                "time is not known.",
                file=str(path),
                line=first["_line"],
                column=col,
                batch=first["_batch"],
                hint="pass timezone='Europe/Berlin' (the zone of the clock that wrote them) or timezone='UTC' "
                "to read_wide, or set time: {timezone: ...} in the column map.",
            )
        ]
    issues = []
    for row in rows.head(20).iter_rows(named=True):
        issues.append(
            Issue(
                f"local time {row['_raw']!r} is ambiguous or does not exist in {timezone} (a daylight-saving "
                "change), so its UTC time is not known.",
                file=str(path),
                line=row["_line"],
                column=col,
                batch=row["_batch"],
                hint="give this timestamp with its UTC offset (e.g. '2026-10-25T02:30+01:00'), or correct it.",
            )
        )
    return issues

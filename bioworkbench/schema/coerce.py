"""Column checks and casts of a campaign frame (:func:`coerce_frame`), and ISO 8601 date-times."""

from __future__ import annotations

from typing import Any, NamedTuple

import polars as pl

from bioworkbench.checks import missing_columns
from bioworkbench.errors import CheckedFrame
from bioworkbench.schema.frames import _OPTIONAL_ON_READ, FRAMES, UTC
from bioworkbench.schema.report import Context, report_rows

__all__ = ["ParsedDatetimes", "coerce_frame", "parse_iso_datetimes"]


def coerce_frame(
    name: str, df: pl.DataFrame, *, file: str | None = None, first_line: int | None = None
) -> CheckedFrame:
    """Check that frame ``name`` has its columns and cast them to its types, collecting every problem.

    Parameters
    ----------
    name
        The frame (a key of :data:`~bioworkbench.schema.FRAMES`).
    df
        The frame as built or read (text columns from a CSV file are cast here).
    file, first_line
        The file the rows were read from and the line of its first row, to locate problems.

    Returns
    -------
    CheckedFrame
        ``frame``: the frame with every column of the specification, cast to its type (columns a
        file may leave out are added as nulls; extra columns are kept; values are not changed);
        ``issues``: missing required columns, or cells that cannot be cast, each located. A cell
        that cannot be cast is reported, never nulled silently: the caller raises the issues.
    """
    ctx = Context(name, file, first_line)
    spec = FRAMES[name]
    missing = missing_columns(df, [c.name for c in spec if c.required and c.name not in _OPTIONAL_ON_READ[name]])
    for col in missing:
        ctx.add(
            f"missing column {col!r} in the {name} table.",
            column=col,
            hint=f"{name} needs columns: {', '.join(c.name for c in spec if c.required)}; "
            f"found: {', '.join(df.columns) or 'none'}.",
        )
    if missing:
        return CheckedFrame(df, ctx.issues)
    exprs = []
    for c in spec:
        if c.name not in df.columns:
            exprs.append(pl.lit(None, dtype=c.dtype).alias(c.name))
            continue
        src = df.schema[c.name]
        if src == c.dtype:
            continue
        if c.dtype == UTC:
            exprs.append(_to_utc(pl.col(c.name), src).alias(c.name))
        elif src == pl.String and c.dtype in (pl.Float64, pl.Int64):
            exprs.append(pl.col(c.name).str.strip_chars().cast(c.dtype, strict=False))
        else:
            exprs.append(pl.col(c.name).cast(c.dtype, strict=False))
    out = df.with_columns(exprs) if exprs else df
    # a value present before the cast and null after it could not be read
    for c in spec:
        if c.name not in df.columns or df.schema[c.name] == c.dtype:
            continue
        bad = df[c.name].is_not_null() & out[c.name].is_null()
        if src_is_str := df.schema[c.name] == pl.String:
            bad = bad & (df[c.name].str.strip_chars() != "")
        if bad.any():
            kind = {pl.Float64: "a number", pl.Int64: "an integer"}.get(c.dtype, str(c.dtype))
            if c.dtype == UTC:
                kind = "a date-time (ISO 8601, e.g. 2026-03-01T08:00:00Z)"
            tmp = df.with_columns(_bad=bad)

            def hint(row, col=c.name, is_str=src_is_str, dtype=c.dtype):
                v = str(row[col])
                if (
                    is_str
                    and dtype == pl.Float64
                    and "," in v
                    and v.replace(",", "", 1).replace(".", "", 1).lstrip("-").isdigit()
                ):
                    return "the file uses decimal commas; pass decimal_comma=True."
                return None

            report_rows(
                tmp,
                pl.col("_bad"),
                ctx,
                c.name,
                lambda row, col=c.name, kind=kind: f"expected {kind}, found {row[col]!r}.",
                hint=hint,
            )
    return CheckedFrame(out, ctx.issues)


#: ISO 8601 spellings read from text, with a UTC offset (``Z`` is read as ``+00:00``) ...
_ISO_AWARE = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%d %H:%M%z")
#: ... and without one
_ISO_NAIVE = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d")


class ParsedDatetimes(NamedTuple):
    """What :func:`parse_iso_datetimes` gives: two expressions over the same text column."""

    #: the instants, in UTC (null where the cell is not a date-time, or is naive and no zone was given)
    instant: pl.Expr
    #: the naive values (null where the cell had a UTC offset or is not a date-time)
    naive: pl.Expr


def parse_iso_datetimes(text: pl.Expr, *, time_zone: str | None = "UTC") -> ParsedDatetimes:
    """Parse ISO 8601 text cell by cell.

    Parameters
    ----------
    text
        An expression of text cells.
    time_zone
        The IANA zone of cells written without a UTC offset; ``None`` leaves their instant null.

    Returns
    -------
    ParsedDatetimes
        ``instant`` (UTC) and ``naive`` expressions; callers tell naive cells apart by ``naive``.

    Notes
    -----
    Every cell is tried against each ISO spelling (``2026-03-01T08:00:00Z``,
    ``2026-03-01 08:00+01:00``, ``2026-03-01 08:00``, ``2026-03-01`` …), so that a column mixing
    spellings is read whole (polars infers one format from the first value and rejects the others).
    Text with a UTC offset gives the instant; text without one is local time in ``time_zone``.
    Local times that do not exist or occur twice at a daylight-saving change are left null.
    """
    t = text.str.strip_chars().str.replace(r"(?i)z$", "+00:00")
    aware = pl.coalesce([t.str.to_datetime(f, time_zone="UTC", strict=False, time_unit="us") for f in _ISO_AWARE])
    naive = pl.coalesce([t.str.to_datetime(f, strict=False, time_unit="us") for f in _ISO_NAIVE])
    if time_zone is None:
        return ParsedDatetimes(aware, naive)
    local = naive.dt.replace_time_zone(time_zone, ambiguous="null", non_existent="null").dt.convert_time_zone("UTC")
    return ParsedDatetimes(pl.coalesce(aware, local), naive)


def _to_utc(expr: pl.Expr, src: Any) -> pl.Expr:
    if isinstance(src, pl.Datetime):
        if src.time_zone is None:
            return expr.dt.replace_time_zone("UTC").dt.cast_time_unit("us")
        return expr.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    if src == pl.Date:
        return expr.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if src == pl.String:
        return parse_iso_datetimes(expr, time_zone="UTC").instant
    return expr.cast(UTC, strict=False)

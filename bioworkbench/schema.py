"""The canonical variable registry and the specification of every campaign frame.

The registry is data (``variables.yaml`` shipped with the package) and can be extended at run time
with :func:`register_variable`. Frame specifications say which columns each frame has, their types,
and which may be null; :func:`validate_frame` checks a frame against them and returns every
:class:`~bioworkbench.errors.Issue` found (it never raises, never changes the data).
"""

from __future__ import annotations

import difflib
import functools
import math
import operator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import polars as pl

from bioworkbench.errors import Issue, SchemaError

__all__ = [
    "EVENT_KINDS",
    "FRAMES",
    "SCHEMA_VERSION",
    "SOURCES",
    "SPEC_KINDS",
    "STATUSES",
    "Column",
    "Variable",
    "empty_frame",
    "get_variable",
    "register_variable",
    "suggest",
    "validate_frame",
    "variables",
]

SCHEMA_VERSION = 1

EVENT_KINDS = ("inoculation", "sample", "feed", "bolus", "base", "shift", "harvest", "note")
#: events whose ``volume_ml`` leaves the reactor / enters it
REMOVALS = ("sample", "harvest")
ADDITIONS = ("feed", "bolus", "base")
#: additions whose medium must be named (so that kinetics count what they brought)
MEDIUM_EVENTS = ("feed", "bolus")
SOURCES = ("online", "offline", "atline")
SPEC_KINDS = ("spec", "alarm", "PAR")
STATUSES = ("planned", "running", "completed", "aborted", "failed")
FLAG_INVALID = "invalid"
FLAG_SUSPECT = "suspect"


# ---------------------------------------------------------------------------------------------
# the variable registry
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Variable:
    """A canonical variable: its name, canonical unit, possible and plausible ranges.

    ``min``/``max`` bound what is physically possible (outside: an error, or with
    ``on_invalid="flag"`` a row flagged ``invalid``); ``typical`` bounds what is plausible
    (outside: kept and flagged ``suspect``). ``molar_mass`` (g/mol) enables g/L <-> mmol/L.
    """

    name: str
    unit: str
    min: float = -math.inf
    max: float = math.inf
    typical: tuple[float, float] | None = None
    molar_mass: float | None = None
    kind: str = "other"
    description: str = ""


_REGISTRY: dict[str, Variable] = {}


def _load_default_registry() -> None:
    import yaml

    text = resources.files("bioworkbench").joinpath("variables.yaml").read_text()
    for name, spec in yaml.safe_load(text).items():
        register_variable(name, **spec)


def register_variable(
    name: str,
    unit: str,
    *,
    min: float | None = None,
    max: float | None = None,
    typical: tuple[float, float] | list[float] | None = None,
    molar_mass: float | None = None,
    kind: str = "other",
    description: str = "",
    replace: bool = False,
) -> Variable:
    """Add a canonical variable to the registry (or replace one with ``replace=True``).

    Parameters
    ----------
    name
        Lower-case identifier used in ``observations.variable``.
    unit
        Canonical unit, a pint-parsable string (``"mmol/L"``, ``"1e6 cells/mL"``) or one of the
        aliases :mod:`bioworkbench.units` knows (``"pH"``, ``"AU"``).
    min, max
        Physically possible range (inclusive).
    typical
        Plausible range; values outside are flagged ``suspect`` by readers.
    molar_mass
        g/mol; enables conversion between mass and molar concentrations.

    Raises
    ------
    ConfigError
        If the name exists and ``replace`` is false, or the unit is not understood.
    """
    from bioworkbench.errors import ConfigError
    from bioworkbench.units import parse_unit

    if not name or name != name.strip() or name.lower() != name:
        raise ConfigError(f"variable name {name!r} must be a non-empty lower-case identifier")
    if name in _REGISTRY and not replace and _REGISTRY:
        existing = _REGISTRY[name]
        raise ConfigError(
            f"variable {name!r} is already registered (unit {existing.unit}); pass replace=True to redefine it"
        )
    parse_unit(unit)  # raises ConfigError when not understood
    var = Variable(
        name=name,
        unit=unit,
        min=-math.inf if min is None else float(min),
        max=math.inf if max is None else float(max),
        typical=None if typical is None else (float(typical[0]), float(typical[1])),
        molar_mass=None if molar_mass is None else float(molar_mass),
        kind=kind,
        description=description,
    )
    _REGISTRY[name] = var
    return var


def variables() -> pl.DataFrame:
    """The registry as a frame (one row per variable) for people to read."""
    _ensure_registry()
    return pl.DataFrame(
        [
            {
                "variable": v.name,
                "unit": v.unit,
                "min": v.min,
                "max": v.max,
                "typical_low": v.typical[0] if v.typical else None,
                "typical_high": v.typical[1] if v.typical else None,
                "molar_mass": v.molar_mass,
                "kind": v.kind,
                "description": v.description,
            }
            for v in _REGISTRY.values()
        ]
    )


def _ensure_registry() -> None:
    if not _REGISTRY:
        _load_default_registry()


def get_variable(name: str) -> Variable:
    """Look a variable up; an unknown name raises :class:`SchemaError` with suggestions."""
    _ensure_registry()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SchemaError([Issue(f"unknown variable {name!r}.", hint=suggest(name, _REGISTRY))]) from None


def registry() -> dict[str, Variable]:
    """The live registry (name -> :class:`Variable`)."""
    _ensure_registry()
    return _REGISTRY


def suggest(found: str, valid: Any, *, what: str = "Valid") -> str:
    """``"Did you mean 'x'? Valid: a, b, c."`` for an unknown name."""
    valid = sorted(str(v) for v in valid)
    close = difflib.get_close_matches(str(found), valid, n=1, cutoff=0.6)
    text = f"Did you mean {close[0]!r}? " if close else ""
    shown = ", ".join(valid[:30]) + (" …" if len(valid) > 30 else "")
    return f"{text}{what}: {shown}."


# ---------------------------------------------------------------------------------------------
# frame specifications
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Column:
    name: str
    dtype: Any
    nullable: bool = True
    required: bool = True


UTC = pl.Datetime("us", "UTC")

FRAMES: dict[str, tuple[Column, ...]] = {
    "batches": (
        Column("batch_id", pl.String, nullable=False),
        Column("product", pl.String),
        Column("cell_line", pl.String),
        Column("scale_l", pl.Float64),
        Column("process", pl.String),
        Column("status", pl.String),
        Column("start", UTC),
        Column("initial_volume_ml", pl.Float64),
    ),
    "observations": (
        Column("batch_id", pl.String, nullable=False),
        Column("time_h", pl.Float64, nullable=False),
        Column("variable", pl.String, nullable=False),
        Column("value", pl.Float64),
        Column("unit", pl.String, nullable=False),
        Column("source", pl.String, nullable=False),
        Column("flag", pl.String),
        Column("flag_reason", pl.String),
        Column("source_file", pl.String),
        Column("source_line", pl.Int64),
    ),
    "events": (
        Column("batch_id", pl.String, nullable=False),
        Column("time_h", pl.Float64, nullable=False),
        Column("event", pl.String, nullable=False),
        Column("volume_ml", pl.Float64),
        Column("medium", pl.String),
        Column("note", pl.String),
    ),
    "media": (
        Column("medium", pl.String, nullable=False),
        Column("variable", pl.String, nullable=False),
        Column("concentration", pl.Float64, nullable=False),
        Column("unit", pl.String, nullable=False),
    ),
    "quality": (
        Column("batch_id", pl.String, nullable=False),
        Column("attribute", pl.String, nullable=False),
        Column("value", pl.Float64),
        Column("unit", pl.String),
        Column("method", pl.String),
    ),
    "specs": (
        Column("name", pl.String, nullable=False),
        Column("lower", pl.Float64),
        Column("upper", pl.Float64),
        Column("kind", pl.String, nullable=False),
        Column("unit", pl.String, required=False),
    ),
}

#: columns a user may leave out of a file; they are added as nulls
_OPTIONAL_ON_READ: dict[str, set[str]] = {
    "batches": {
        "product",
        "cell_line",
        "scale_l",
        "process",
        "status",
        "start",
        "initial_volume_ml",
    },
    "observations": {"source", "flag", "flag_reason", "source_file", "source_line"},
    "events": {"volume_ml", "medium", "note"},
    "media": set(),
    "quality": {"unit", "method"},
    "specs": {"unit"},
}


def schema_of(name: str) -> dict[str, Any]:
    return {c.name: c.dtype for c in FRAMES[name]}


def empty_frame(name: str) -> pl.DataFrame:
    """An empty frame with the columns and types of frame ``name``."""
    return pl.DataFrame(schema=schema_of(name))


@dataclass(slots=True)
class _Ctx:
    """Where the rows being checked come from: the frame, the file read (if any) and its first line."""

    frame: str
    file: str | None
    first_line: int | None
    issues: list[Issue] = field(default_factory=list)

    def add(self, message: str, *, line=None, column=None, batch=None, hint=None, file=None):
        self.issues.append(Issue(message, file=file or self.file, line=line, column=column, batch=batch, hint=hint))


#: rows whose messages are read to group them (the rest of the rows with the problem are counted)
_SCAN_ROWS = 1000
#: distinct messages reported per rule and column
_MAX_GROUPS = 20
#: rows named in a grouped message
_FIRST_ROWS = 5


def _lines(df: pl.DataFrame, ctx: _Ctx) -> pl.Expr:
    """Each row's line: in the file being read when there is one, else the observation's lineage.

    A frame read from a file (``ctx.first_line`` set) is located in that file even when its rows
    carry lineage columns (``source_file``/``source_line`` of an earlier export): the problem is in
    the file being read. Frames built in code have no lines (``None``); their rows are named by
    position instead.
    """
    if ctx.first_line is not None:
        return pl.int_range(pl.len(), dtype=pl.Int64) + ctx.first_line
    if ctx.frame == "observations" and "source_line" in df.columns:
        return pl.col("source_line").cast(pl.Int64)
    return pl.lit(None, dtype=pl.Int64)


def _row_file(row: dict, ctx: _Ctx) -> str | None:
    if ctx.file is not None:
        return ctx.file
    if ctx.frame == "observations":
        return row.get("source_file")
    return None


def _where_rows(members: list[dict], count: int) -> str:
    """``"lines 2, 3, 4, 5, 6"`` or ``"rows 0, 1, 2 (counted from 0)"`` for the first rows of a group."""
    lines = [r["_line"] for r in members if r.get("_line") is not None]
    if lines:
        shown = list(dict.fromkeys(lines))[:_FIRST_ROWS]
        noun = "line" if len(shown) == 1 else "lines"
        text = f"{noun} {', '.join(str(x) for x in shown)}"
    else:
        shown = [r["_row"] for r in members][:_FIRST_ROWS]
        noun = "row" if len(shown) == 1 else "rows"
        more = " …" if count > len(shown) else ""
        return f"{noun} {', '.join(str(x) for x in shown)}{more}, counted from 0"
    return text + (" …" if count > len(shown) else "")


def _report_rows(df: pl.DataFrame, mask: pl.Expr, ctx: _Ctx, column: str, message, hint=None) -> int:
    """Report the rows matching ``mask``: one issue per distinct problem, with a count and the first rows.

    ``message`` (a string or a function of the row) says what is wrong; rows with the same message
    (and file) are one issue, located at the first of them and naming the first
    :data:`_FIRST_ROWS` lines (or row positions). Rows beyond the :data:`_MAX_GROUPS` distinct
    messages are counted in a last line. Returns the number of rows matching ``mask``.
    """
    rows = (
        df.lazy()
        .with_columns(_line=_lines(df, ctx), _row=pl.int_range(pl.len(), dtype=pl.Int64))
        .filter(mask)
        .collect()
    )
    n = rows.height
    if not n:
        return 0
    constant = not callable(message)
    groups: dict[tuple[str, str | None], list[dict]] = {}
    for row in rows.head(_SCAN_ROWS).iter_rows(named=True):
        text = message if constant else message(row)
        groups.setdefault((text, _row_file(row, ctx)), []).append(row)
    lineage = ctx.file is not None and ctx.frame == "observations" and "source_file" in df.columns
    listed = 0
    for (text, file), members in list(groups.items())[:_MAX_GROUPS]:
        count = n if constant and len(groups) == 1 else len(members)
        listed += count
        first = members[0]
        batches = list(dict.fromkeys(r["batch_id"] for r in members if r.get("batch_id") is not None))
        where = [] if count == 1 and first["_line"] is not None else [_where_rows(members, count)]
        if count > 1:
            where.insert(0, f"{count:,} rows")
        if len(batches) > 1:
            where.append(f"batches {', '.join(batches[:_FIRST_ROWS])}{' …' if len(batches) > _FIRST_ROWS else ''}")
        if lineage and first.get("source_file") and first["source_file"] != ctx.file:
            where.append(f"first recorded from {first['source_file']} line {first.get('source_line')}")
        suffix = f" ({'; '.join(where)})" if where else ""
        ctx.add(
            text.rstrip(".") + suffix + ".",
            line=first["_line"],
            column=column,
            batch=batches[0] if len(batches) == 1 else None,
            hint=hint(first) if callable(hint) else hint,
            file=file,
        )
    if n > listed:
        ctx.add(f"... and {n - listed:,} more rows with problems in column {column!r}.", column=column)
    return n


def _check_rules(df: pl.DataFrame, ctx: _Ctx, rules: list[tuple]) -> None:
    """Evaluate every rule's mask in one pass over ``df``; report only the rules some row breaks.

    Each rule is ``(column, mask, message, hint)`` as for :func:`_report_rows`.
    """
    if df.is_empty() or not rules:
        return
    hits = df.lazy().select([r[1].fill_null(False).any().alias(f"r{i}") for i, r in enumerate(rules)]).collect()
    for i, (column, mask, message, hint) in enumerate(rules):
        if hits[f"r{i}"][0]:
            _report_rows(df, mask.fill_null(False), ctx, column, message, hint)


def _report_duplicates(
    df: pl.DataFrame,
    ctx: _Ctx,
    keys: list[str],
    column: str,
    message,
    *,
    free: pl.Expr | None = None,
    hint: str | None = None,
) -> None:
    """Report every repeat of a key (the second and later rows), naming the line of the first.

    Large frames are checked through a hash of the key first (distinct hashes mean distinct keys);
    rows are compared exactly only when the hashes do not rule duplicates out.
    """
    if df.is_empty():
        return
    free = pl.lit(True) if free is None else free
    key = pl.struct(keys)
    # one 64-bit hash per row (each column hashed with its own seed, combined by xor)
    hashed = functools.reduce(operator.xor, [pl.col(k).hash(11 + i) for i, k in enumerate(keys)])
    rows = df.lazy()
    if df.select((~free).any()).item():  # filtering costs a copy: only when some rows are left out
        rows = rows.filter(free)
    counts = rows.select(n=pl.len(), distinct=hashed.n_unique()).collect()
    if counts["distinct"][0] == counts["n"][0]:
        return
    lines = _lines(df, ctx)
    marked = (
        df.lazy()
        .with_columns(_free=free, _at_line=lines, _at_row=pl.int_range(pl.len(), dtype=pl.Int64))
        .with_columns(
            _later=pl.col("_free") & ~key.is_first_distinct().over("_free"),
            _first_line=pl.col("_at_line").first().over([*keys, "_free"]),
            _first_row=pl.col("_at_row").first().over([*keys, "_free"]),
        )
        .collect()
    )
    if not marked["_later"].any():
        return

    def text(row):
        first = f"line {row['_first_line']}" if row["_first_line"] is not None else f"row {row['_first_row']}"
        return f"{message(row)} (first at {first})"

    _report_rows(marked, pl.col("_later"), ctx, column, text, hint)


def coerce_frame(
    name: str, df: pl.DataFrame, *, file: str | None = None, first_line: int | None = None
) -> tuple[pl.DataFrame, list[Issue]]:
    """Check columns and cast them to the frame's types, collecting every problem.

    Returns the cast frame (unchanged values; a cell that cannot be cast is reported, not nulled
    silently: the caller must raise when issues are returned) and the issues.
    """
    ctx = _Ctx(name, file, first_line)
    spec = FRAMES[name]
    missing = [
        c.name for c in spec if c.required and c.name not in df.columns and c.name not in _OPTIONAL_ON_READ[name]
    ]
    for col in missing:
        ctx.add(
            f"missing column {col!r} in the {name} table.",
            column=col,
            hint=f"{name} needs columns: {', '.join(c.name for c in spec if c.required)}; "
            f"found: {', '.join(df.columns) or 'none'}.",
        )
    if missing:
        return df, ctx.issues
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

            _report_rows(
                tmp,
                pl.col("_bad"),
                ctx,
                c.name,
                lambda row, col=c.name, kind=kind: f"expected {kind}, found {row[col]!r}.",
                hint=hint,
            )
    return out, ctx.issues


#: ISO 8601 spellings read from text, with a UTC offset (``Z`` is read as ``+00:00``) ...
_ISO_AWARE = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%d %H:%M%z")
#: ... and without one
_ISO_NAIVE = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d")


def parse_iso_datetimes(text: pl.Expr, *, time_zone: str | None = "UTC") -> tuple[pl.Expr, pl.Expr]:
    """Parse ISO 8601 text cell by cell; return ``(instants in UTC, naive)`` expressions.

    Every cell is tried against each ISO spelling (``2026-03-01T08:00:00Z``,
    ``2026-03-01 08:00+01:00``, ``2026-03-01 08:00``, ``2026-03-01`` …), so that a column mixing
    spellings is read whole (polars infers one format from the first value and rejects the others).
    Text with a UTC offset gives the instant; text without one is read as local time in
    ``time_zone`` (``None``: left null). The second expression is the parsed naive value (``None``
    where the cell had an offset or is not a date-time), so callers can tell naive cells apart.
    """
    t = text.str.strip_chars().str.replace(r"(?i)z$", "+00:00")
    aware = pl.coalesce([t.str.to_datetime(f, time_zone="UTC", strict=False, time_unit="us") for f in _ISO_AWARE])
    naive = pl.coalesce([t.str.to_datetime(f, strict=False, time_unit="us") for f in _ISO_NAIVE])
    if time_zone is None:
        return aware, naive
    local = naive.dt.replace_time_zone(time_zone, ambiguous="null", non_existent="null").dt.convert_time_zone("UTC")
    return pl.coalesce(aware, local), naive


def _to_utc(expr: pl.Expr, src: Any) -> pl.Expr:
    if isinstance(src, pl.Datetime):
        if src.time_zone is None:
            return expr.dt.replace_time_zone("UTC").dt.cast_time_unit("us")
        return expr.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    if src == pl.Date:
        return expr.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if src == pl.String:
        return parse_iso_datetimes(expr, time_zone="UTC")[0]
    return expr.cast(UTC, strict=False)


# ---------------------------------------------------------------------------------------------
# content rules
# ---------------------------------------------------------------------------------------------
def validate_frame(
    name: str,
    df: pl.DataFrame,
    *,
    file: str | None = None,
    first_line: int | None = None,
    batch_ids: pl.Series | None = None,
    media: pl.DataFrame | None = None,
) -> list[Issue]:
    """Check the content rules of frame ``name`` (already coerced); return every issue found.

    ``batch_ids`` (the batches frame's ids) enables the "unknown batch" check; ``media`` enables
    the "unknown medium" check for events.

    Notes
    -----
    Every frame is held to the same standard: required values present; numbers finite (NaN and
    ±inf are errors; an empty cell is how a value is left out); physically impossible values
    (outside the registry's ``min``/``max``, a negative volume, a percentage outside 0–100) are
    errors; keys unique; references known (batches, media, variables). The rules run as one
    vectorised pass per frame, and rows are listed only for the rules that some row breaks, so
    validating the 16 M observations of a 1,000-batch campaign takes seconds, not minutes.
    """
    _ensure_registry()
    ctx = _Ctx(name, file, first_line)
    rule = _RULES[name]
    rule(df, ctx, batch_ids=batch_ids, media=media)
    return ctx.issues


def _check_nulls(df: pl.DataFrame, ctx: _Ctx) -> None:
    for c in FRAMES[ctx.frame]:
        if not c.nullable and c.name in df.columns and df[c.name].null_count():
            _report_rows(
                df,
                pl.col(c.name).is_null(),
                ctx,
                c.name,
                f"{c.name} is empty; a value is required.",
            )


def _check_batches_known(df, ctx, batch_ids) -> None:
    if batch_ids is None or df.is_empty():
        return
    known = batch_ids.unique()
    unknown_mask = ~pl.col("batch_id").is_in(known.implode()) & pl.col("batch_id").is_not_null()
    if not df.select(unknown_mask.any()).item():
        return
    lines = _lines(df, ctx)
    unknown = (
        df.lazy()
        .with_columns(_line=lines, _row=pl.int_range(pl.len(), dtype=pl.Int64))
        .filter(unknown_mask)
        .group_by("batch_id", maintain_order=True)
        .agg(pl.len(), pl.col("_line").first(), pl.col("_row").first(), *_first_of(df, ctx))
        .collect()
    )
    for row in unknown.head(_MAX_GROUPS).iter_rows(named=True):
        b, n = row["batch_id"], row["len"]
        where = "" if row["_line"] is not None else f"; first at row {row['_row']}, counted from 0"
        ctx.add(
            f"batch {b!r} is not in the batches table ({n} row{'s' if n != 1 else ''}{where}).",
            line=row["_line"],
            column="batch_id",
            batch=b,
            hint=suggest(b, known.to_list(), what="Known batches"),
            file=_row_file(row, ctx),
        )
    if unknown.height > _MAX_GROUPS:
        ctx.add(f"... and {unknown.height - _MAX_GROUPS} more unknown batches.", column="batch_id")


def _first_of(df, ctx) -> list[pl.Expr]:
    return [pl.col("source_file").first()] if ctx.frame == "observations" and "source_file" in df.columns else []


def _finite_rule(column: str, *, minimum: float | None = None, strict: bool = False, what: str = "") -> tuple:
    """A rule: ``column`` (when given) must be a finite number, ``> minimum`` (strict) or ``>= minimum``."""
    x = pl.col(column)
    ok = x.is_finite()
    if minimum is not None:
        ok = ok & ((x > minimum) if strict else (x >= minimum))
    bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum:g}"
    return (
        column,
        x.is_not_null() & ~ok,
        lambda r: f"{column} must be a finite number{bound}{what}; found {r[column]}.",
        "leave the cell empty when the value is not known." if minimum is None else None,
    )


def _check_time(df, ctx) -> None:
    _check_rules(
        df,
        ctx,
        [
            (
                "time_h",
                ~pl.col("time_h").is_finite() | (pl.col("time_h") < 0),
                lambda r: f"time_h must be a finite number of hours since inoculation (>= 0); found {r['time_h']}.",
                None,
            )
        ],
    )


def _rules_batches(df, ctx, **_):
    _check_nulls(df, ctx)
    _report_duplicates(
        df,
        ctx,
        ["batch_id"],
        "batch_id",
        lambda r: f"batch_id {r['batch_id']!r} appears more than once; ids must be unique",
        free=pl.col("batch_id").is_not_null(),
    )
    rules = [_finite_rule(col, minimum=0, strict=True) for col in ("scale_l", "initial_volume_ml")]
    rules.append(
        (
            "status",
            pl.col("status").is_not_null() & ~pl.col("status").is_in(STATUSES),
            lambda r: f"unknown status {r['status']!r}.",
            lambda r: suggest(r["status"], STATUSES),
        )
    )
    for col in df.columns:
        if col.startswith("cpp_") and df.schema[col] in (pl.Float64, pl.Float32):
            rules.append(_finite_rule(col, what=" (a set point)"))
    _check_rules(df, ctx, rules)


def _rules_observations(df, ctx, batch_ids=None, **_):
    from bioworkbench.units import canonical_unit_label

    _check_nulls(df, ctx)
    _check_batches_known(df, ctx, batch_ids)
    _check_time(df, ctx)
    if df.is_empty():
        return
    reg = registry()
    known = list(reg)
    free = pl.col("flag").is_null()
    value = pl.col("value")
    finite = free & value.is_finite()
    # one pass: what each (variable, unit, source) group holds; rows are listed only for broken groups
    groups = (
        df.lazy()
        .with_columns(_v=pl.when(finite).then(value))
        .group_by("variable", "unit")  # two keys: a third makes polars' group_by several times slower
        .agg(
            lo=pl.col("_v").min(),
            hi=pl.col("_v").max(),
            n_nan=(free & value.is_nan()).sum(),
            n_inf=(free & value.is_infinite()).sum(),
        )
        .collect()
    )
    variables = set(groups["variable"].drop_nulls().to_list())
    canon = {v: canonical_unit_label(reg[v].unit) for v in variables if v in reg}
    lows = {v: reg[v].min for v in variables if v in reg}
    highs = {v: reg[v].max for v in variables if v in reg}
    rules = []
    if variables - set(reg):
        rules.append(
            (
                "variable",
                ~pl.col("variable").is_in(known) & pl.col("variable").is_not_null(),
                lambda r: f"unknown variable {r['variable']!r}.",
                lambda r: suggest(r["variable"], known) + " Register new ones with bw.register_variable().",
            )
        )
    if set(df["source"].drop_nulls().unique().to_list()) - set(SOURCES):
        rules.append(
            (
                "source",
                pl.col("source").is_not_null() & ~pl.col("source").is_in(SOURCES),
                lambda r: f"unknown source {r['source']!r}; expected one of {', '.join(SOURCES)}.",
                None,
            )
        )
    # units must be canonical inside a Campaign (readers and the constructor convert)
    wrong_unit = [
        r for r in groups.iter_rows(named=True) if r["variable"] in canon and r["unit"] != canon[r["variable"]]
    ]
    if wrong_unit:
        canon_of = pl.col("variable").replace_strict(canon, default=None, return_dtype=pl.String)
        rules.append(
            (
                "unit",
                canon_of.is_not_null() & (pl.col("unit") != canon_of),
                lambda r: (
                    f"{r['variable']} in {r['unit']!r}; a Campaign holds canonical units ({canon[r['variable']]!r})."
                ),
                "convert with bw.units.to_canonical() or give a unit the constructor converts "
                "(it names those it cannot).",
            )
        )
    if (groups["n_nan"] > 0).any():
        rules.append(("value", free & value.is_nan(), "value is NaN; leave it empty or flag the row.", None))
    if (groups["n_inf"] > 0).any():
        rules.append(
            (
                "value",
                free & value.is_infinite(),
                lambda r: f"{r['variable']} = {r['value']} is not a finite number.",
                "leave the cell empty when there is no value, or flag the row with a reason.",
            )
        )
    # physically impossible values must be flagged, never silently kept
    out_of_range = [
        r
        for r in groups.iter_rows(named=True)
        if r["variable"] in lows
        and r["lo"] is not None
        and (r["lo"] < lows[r["variable"]] or r["hi"] > highs[r["variable"]])
    ]
    if out_of_range:
        lo_of = pl.col("variable").replace_strict(lows, default=None, return_dtype=pl.Float64)
        hi_of = pl.col("variable").replace_strict(highs, default=None, return_dtype=pl.Float64)
        rules.append(
            (
                "value",
                finite & ((value < lo_of) | (value > hi_of)),
                lambda r: (
                    f"{r['variable']} = {r['value']} {r['unit']} is impossible; expected "
                    f"{_range_text(lows[r['variable']], highs[r['variable']])}."
                ),
                "fix the source, or read with on_invalid='flag' to keep the row flagged 'invalid'.",
            )
        )
    _check_rules(df, ctx, rules)
    _report_duplicates(
        df,
        ctx,
        ["batch_id", "time_h", "variable", "source"],
        "time_h",
        lambda r: f"duplicate {r['variable']} at time_h={r['time_h']} ({r['source']})",
        free=free,
        hint="each (batch, time, variable, source) must appear once: remove the repeat in the source, "
        "or flag one of the rows 'excluded' with a reason.",
    )


def _range_text(lo: float, hi: float) -> str:
    if math.isinf(lo) and math.isinf(hi):
        return "any number"
    if math.isinf(hi):
        return f">= {lo:g}"
    if math.isinf(lo):
        return f"<= {hi:g}"
    return f"between {lo:g} and {hi:g}"


def _rules_events(df, ctx, batch_ids=None, media=None, **_):
    _check_nulls(df, ctx)
    _check_batches_known(df, ctx, batch_ids)
    _check_time(df, ctx)
    rules = [
        (
            "event",
            pl.col("event").is_not_null() & ~pl.col("event").is_in(EVENT_KINDS),
            lambda r: f"unknown event {r['event']!r}.",
            lambda r: suggest(r["event"], EVENT_KINDS),
        ),
        _finite_rule("volume_ml", minimum=0, what=" (the event kind gives the direction)"),
        (
            "medium",
            pl.col("event").is_in(MEDIUM_EVENTS) & pl.col("medium").is_null(),
            lambda r: f"{r['event']} at time_h={r['time_h']} has no medium.",
            "name the medium it added (its composition goes in the media table), so that the "
            "kinetics count what it brought; a medium without tracked components needs one row "
            "in media with concentration 0.",
        ),
    ]
    if media is not None:
        known = media["medium"].unique().to_list()
        rules.append(
            (
                "medium",
                pl.col("medium").is_not_null() & ~pl.col("medium").is_in(known),
                lambda r: f"medium {r['medium']!r} is not in the media table.",
                lambda r: (
                    suggest(r["medium"], known, what="Known media")
                    if known
                    else "the media table is empty; add the medium's composition."
                ),
            )
        )
    _check_rules(df, ctx, rules)
    _report_duplicates(
        df,
        ctx,
        [c.name for c in FRAMES["events"] if c.name in df.columns],
        "event",
        lambda r: f"{r['event']} at time_h={r['time_h']} appears twice (the same row repeated)",
        hint="remove the repeat; two additions at the same time are two rows that differ in volume, medium or note.",
    )


def _rules_media(df, ctx, **_):
    from bioworkbench.units import canonical_unit_label

    _check_nulls(df, ctx)
    reg = registry()
    canon = {v: canonical_unit_label(spec.unit) for v, spec in reg.items()}
    canon_of = pl.col("variable").replace_strict(canon, default=None, return_dtype=pl.String)
    _check_rules(
        df,
        ctx,
        [
            (
                "variable",
                ~pl.col("variable").is_in(list(reg)) & pl.col("variable").is_not_null(),
                lambda r: f"unknown variable {r['variable']!r}.",
                lambda r: suggest(r["variable"], reg),
            ),
            _finite_rule("concentration", minimum=0),
            (
                "unit",
                canon_of.is_not_null() & (pl.col("unit") != canon_of),
                lambda r: (
                    f"{r['variable']} in {r['unit']!r}; a Campaign holds canonical units ({canon[r['variable']]!r})."
                ),
                None,
            ),
        ],
    )
    _report_duplicates(
        df,
        ctx,
        ["medium", "variable"],
        "variable",
        lambda r: f"{r['variable']} appears more than once for medium {r['medium']!r}",
    )


#: spellings of a percentage in ``quality.unit``
_PERCENT_UNITS = ("%", "percent", "pct", "% (w/w)", "% w/w", "area %", "area%")


def _rules_quality(df, ctx, batch_ids=None, **_):
    from bioworkbench.units import canonical_unit_label

    _check_nulls(df, ctx)
    _check_batches_known(df, ctx, batch_ids)
    reg = registry()
    value = pl.col("value")
    percent = pl.col("unit").str.strip_chars().str.to_lowercase().is_in(_PERCENT_UNITS)
    # an attribute that is a registered variable, in its canonical unit, has the variable's limits
    attrs = [a for a in df["attribute"].drop_nulls().unique().to_list() if a in reg]
    canon = {a: canonical_unit_label(reg[a].unit) for a in attrs}
    lows = {a: reg[a].min for a in attrs}
    highs = {a: reg[a].max for a in attrs}
    in_canon = pl.col("unit") == pl.col("attribute").replace_strict(canon, default=None, return_dtype=pl.String)
    lo_of = pl.col("attribute").replace_strict(lows, default=None, return_dtype=pl.Float64)
    hi_of = pl.col("attribute").replace_strict(highs, default=None, return_dtype=pl.Float64)
    rules = [
        _finite_rule("value"),
        (
            "value",
            value.is_finite() & percent & ((value < 0) | (value > 100)),
            lambda r: (
                f"{r['attribute']} = {r['value']} {r['unit']} is impossible; a percentage lies between 0 and 100."
            ),
            None,
        ),
    ]
    if attrs:
        rules.append(
            (
                "value",
                value.is_finite() & in_canon.fill_null(False) & ((value < lo_of) | (value > hi_of)),
                lambda r: (
                    f"{r['attribute']} = {r['value']} {r['unit']} is impossible; expected "
                    f"{_range_text(lows[r['attribute']], highs[r['attribute']])}."
                ),
                None,
            )
        )
    _check_rules(df, ctx, rules)
    _report_duplicates(
        df,
        ctx,
        ["batch_id", "attribute"],
        "attribute",
        lambda r: f"{r['attribute']} reported more than once for batch {r['batch_id']}",
    )


def _rules_specs(df, ctx, **_):
    _check_nulls(df, ctx)
    rules = [
        (
            "kind",
            pl.col("kind").is_not_null() & ~pl.col("kind").is_in(SPEC_KINDS),
            lambda r: f"unknown spec kind {r['kind']!r}.",
            lambda r: suggest(r["kind"], SPEC_KINDS),
        ),
        *(
            (
                col,
                pl.col(col).is_not_null() & ~pl.col(col).is_finite(),
                lambda r, col=col: f"spec {r['name']!r}: {col} must be a finite number; found {r[col]}.",
                "leave the limit empty when there is none.",
            )
            for col in ("lower", "upper")
        ),
        (
            "lower",
            pl.col("lower").is_null() & pl.col("upper").is_null(),
            lambda r: f"spec {r['name']!r} has neither a lower nor an upper limit.",
            None,
        ),
        (
            "lower",
            pl.col("lower").is_finite() & pl.col("upper").is_finite() & (pl.col("lower") > pl.col("upper")),
            lambda r: f"spec {r['name']!r}: lower {r['lower']} is above upper {r['upper']}.",
            None,
        ),
    ]
    _check_rules(df, ctx, rules)
    _report_duplicates(
        df,
        ctx,
        ["name", "kind"],
        "name",
        lambda r: f"spec {r['name']!r} ({r['kind']}) is defined more than once",
    )


_RULES = {
    "batches": _rules_batches,
    "observations": _rules_observations,
    "events": _rules_events,
    "media": _rules_media,
    "quality": _rules_quality,
    "specs": _rules_specs,
}

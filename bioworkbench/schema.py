"""The canonical variable registry and the specification of every campaign frame.

The registry is data (``variables.yaml`` shipped with the package) and can be extended at run time
with :func:`register_variable`. Frame specifications say which columns each frame has, their types,
and which may be null; :func:`validate_frame` checks a frame against them and returns every
:class:`~bioworkbench.errors.Issue` found (it never raises, never changes the data).
"""

from __future__ import annotations

import difflib
import math
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
    frame: str
    file: str | None
    first_line: int | None
    issues: list[Issue] = field(default_factory=list)

    def add(self, message: str, *, line=None, column=None, batch=None, hint=None, file=None):
        self.issues.append(Issue(message, file=file or self.file, line=line, column=column, batch=batch, hint=hint))


def _lines(df: pl.DataFrame, ctx: _Ctx) -> pl.Expr:
    """Expression giving each row's line in its source (or ``None`` when not from a file)."""
    if "source_line" in df.columns and ctx.frame == "observations":
        return pl.col("source_line")
    if ctx.first_line is None:
        return pl.lit(None, dtype=pl.Int64)
    return pl.int_range(pl.len(), dtype=pl.Int64) + ctx.first_line


def _report_rows(df: pl.DataFrame, mask: pl.Expr, ctx: _Ctx, column: str, message, hint=None, limit=50) -> int:
    """Add one issue per row matching ``mask`` (at most ``limit`` rows listed, the rest counted)."""
    cols = [c for c in ("batch_id", column, "source_file") if c in df.columns]
    rows = (
        df.with_columns(_line=_lines(df, ctx))
        .filter(mask)
        .select(*dict.fromkeys([*cols, "_line"]), *(c for c in df.columns if c not in cols))
    )
    n = rows.height
    for row in rows.head(limit).iter_rows(named=True):
        ctx.add(
            message(row) if callable(message) else message,
            line=row["_line"],
            column=column,
            batch=row.get("batch_id"),
            hint=hint(row) if callable(hint) else hint,
            file=row.get("source_file") if ctx.frame == "observations" else None,
        )
    if n > limit:
        ctx.add(f"... {n - limit} more rows with the same problem in column {column!r}")
    return n


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


def _to_utc(expr: pl.Expr, src: Any) -> pl.Expr:
    if isinstance(src, pl.Datetime):
        if src.time_zone is None:
            return expr.dt.replace_time_zone("UTC").dt.cast_time_unit("us")
        return expr.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    if src == pl.Date:
        return expr.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if src == pl.String:
        return expr.str.strip_chars().str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
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
    unknown = df.filter(~pl.col("batch_id").is_in(known.implode()) & pl.col("batch_id").is_not_null())
    if unknown.height:
        for b in unknown["batch_id"].unique(maintain_order=True).head(20).to_list():
            first = df.with_columns(_line=_lines(df, ctx)).filter(pl.col("batch_id") == b)
            n = first.height
            row = first.row(0, named=True)
            ctx.add(
                f"batch {b!r} is not in the batches table ({n} row{'s' if n != 1 else ''}).",
                line=row["_line"],
                column="batch_id",
                batch=b,
                hint=suggest(b, known.to_list(), what="Known batches"),
                file=row.get("source_file") if ctx.frame == "observations" else None,
            )


def _check_time(df, ctx) -> None:
    _report_rows(
        df,
        ~pl.col("time_h").is_finite() | (pl.col("time_h") < 0),
        ctx,
        "time_h",
        lambda r: f"time_h must be a finite number of hours since inoculation (>= 0); found {r['time_h']}.",
    )


def _rules_batches(df, ctx, **_):
    _check_nulls(df, ctx)
    dup = pl.col("batch_id").is_duplicated() & pl.col("batch_id").is_not_null()
    _report_rows(
        df,
        dup,
        ctx,
        "batch_id",
        lambda r: f"batch_id {r['batch_id']!r} appears more than once; ids must be unique.",
    )
    for col in ("scale_l", "initial_volume_ml"):
        _report_rows(
            df,
            pl.col(col).is_not_null() & ~(pl.col(col) > 0),
            ctx,
            col,
            lambda r, col=col: f"{col} must be > 0; found {r[col]}.",
        )
    _report_rows(
        df,
        pl.col("status").is_not_null() & ~pl.col("status").is_in(STATUSES),
        ctx,
        "status",
        lambda r: f"unknown status {r['status']!r}.",
        hint=lambda r: suggest(r["status"], STATUSES),
    )


def _rules_observations(df, ctx, batch_ids=None, **_):
    from bioworkbench.units import canonical_unit_label

    _check_nulls(df, ctx)
    _check_batches_known(df, ctx, batch_ids)
    _check_time(df, ctx)
    reg = registry()
    known = list(reg)
    _report_rows(
        df,
        ~pl.col("variable").is_in(known) & pl.col("variable").is_not_null(),
        ctx,
        "variable",
        lambda r: f"unknown variable {r['variable']!r}.",
        hint=lambda r: suggest(r["variable"], known) + " Register new ones with bw.register_variable().",
    )
    _report_rows(
        df,
        pl.col("source").is_not_null() & ~pl.col("source").is_in(SOURCES),
        ctx,
        "source",
        lambda r: f"unknown source {r['source']!r}; expected one of {', '.join(SOURCES)}.",
    )
    # units must be canonical inside a Campaign (readers convert)
    canon = pl.DataFrame({"variable": known, "_canon": [canonical_unit_label(reg[v].unit) for v in known]})
    chk = df.join(canon, on="variable", how="left")
    _report_rows(
        chk,
        pl.col("_canon").is_not_null() & (pl.col("unit") != pl.col("_canon")),
        ctx,
        "unit",
        lambda r: f"{r['variable']} in {r['unit']!r}; a Campaign holds canonical units ({r['_canon']!r}).",
        hint="read files with bw.read_campaign / bw.io readers, which convert units, or convert "
        "with bw.units.to_canonical().",
    )
    _report_rows(
        df,
        pl.col("flag").is_null() & pl.col("value").is_nan(),
        ctx,
        "value",
        "value is NaN; leave it empty or flag the row.",
    )
    # physically impossible values must be flagged, never silently kept
    lim = pl.DataFrame(
        {
            "variable": known,
            "_min": [reg[v].min for v in known],
            "_max": [reg[v].max for v in known],
        }
    )
    chk = df.join(lim, on="variable", how="left")
    _report_rows(
        chk,
        pl.col("flag").is_null()
        & pl.col("value").is_not_null()
        & ((pl.col("value") < pl.col("_min")) | (pl.col("value") > pl.col("_max"))),
        ctx,
        "value",
        lambda r: (
            f"{r['variable']} = {r['value']} {r['unit']} is impossible; expected {_range_text(r['_min'], r['_max'])}."
        ),
        hint="fix the source, or read with on_invalid='flag' to keep the row flagged 'invalid'.",
    )
    dup = pl.struct("batch_id", "time_h", "variable", "source").is_duplicated() & pl.col("flag").is_null()
    flagged_free = df.filter(pl.col("flag").is_null())
    if flagged_free.select(pl.struct("batch_id", "time_h", "variable", "source").is_duplicated().any()).item():
        _report_rows(
            df.with_columns(_dup=dup),
            pl.col("_dup"),
            ctx,
            "time_h",
            lambda r: (
                f"duplicate {r['variable']} at time_h={r['time_h']} ({r['source']}); "
                "each (batch, time, variable, source) must appear once."
            ),
            hint="remove the repeat in the source, or flag one of the rows 'excluded' with a reason.",
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
    _report_rows(
        df,
        pl.col("event").is_not_null() & ~pl.col("event").is_in(EVENT_KINDS),
        ctx,
        "event",
        lambda r: f"unknown event {r['event']!r}.",
        hint=lambda r: suggest(r["event"], EVENT_KINDS),
    )
    _report_rows(
        df,
        pl.col("volume_ml").is_not_null() & ~(pl.col("volume_ml") >= 0),
        ctx,
        "volume_ml",
        lambda r: f"volume_ml must be >= 0 (the event kind gives the direction); found {r['volume_ml']}.",
    )
    if media is not None:
        known = media["medium"].unique().to_list()
        _report_rows(
            df,
            pl.col("medium").is_not_null() & ~pl.col("medium").is_in(known),
            ctx,
            "medium",
            lambda r: f"medium {r['medium']!r} is not in the media table.",
            hint=lambda r: (
                suggest(r["medium"], known, what="Known media")
                if known
                else "the media table is empty; add the medium's composition."
            ),
        )


def _rules_media(df, ctx, **_):
    from bioworkbench.units import canonical_unit_label

    _check_nulls(df, ctx)
    reg = registry()
    _report_rows(
        df,
        ~pl.col("variable").is_in(list(reg)) & pl.col("variable").is_not_null(),
        ctx,
        "variable",
        lambda r: f"unknown variable {r['variable']!r}.",
        hint=lambda r: suggest(r["variable"], reg),
    )
    _report_rows(
        df,
        pl.col("concentration").is_not_null() & ~(pl.col("concentration") >= 0),
        ctx,
        "concentration",
        lambda r: f"concentration must be >= 0; found {r['concentration']}.",
    )
    canon = pl.DataFrame({"variable": list(reg), "_canon": [canonical_unit_label(v.unit) for v in reg.values()]})
    _report_rows(
        df.join(canon, on="variable", how="left"),
        pl.col("_canon").is_not_null() & (pl.col("unit") != pl.col("_canon")),
        ctx,
        "unit",
        lambda r: f"{r['variable']} in {r['unit']!r}; a Campaign holds canonical units ({r['_canon']!r}).",
    )
    _report_rows(
        df,
        pl.struct("medium", "variable").is_duplicated(),
        ctx,
        "variable",
        lambda r: f"{r['variable']} appears more than once for medium {r['medium']!r}.",
    )


def _rules_quality(df, ctx, batch_ids=None, **_):
    _check_nulls(df, ctx)
    _check_batches_known(df, ctx, batch_ids)
    _report_rows(
        df,
        pl.struct("batch_id", "attribute").is_duplicated(),
        ctx,
        "attribute",
        lambda r: f"{r['attribute']} reported more than once for batch {r['batch_id']}.",
    )


def _rules_specs(df, ctx, **_):
    _check_nulls(df, ctx)
    _report_rows(
        df,
        pl.col("kind").is_not_null() & ~pl.col("kind").is_in(SPEC_KINDS),
        ctx,
        "kind",
        lambda r: f"unknown spec kind {r['kind']!r}.",
        hint=lambda r: suggest(r["kind"], SPEC_KINDS),
    )
    _report_rows(
        df,
        pl.col("lower").is_null() & pl.col("upper").is_null(),
        ctx,
        "lower",
        lambda r: f"spec {r['name']!r} has neither a lower nor an upper limit.",
    )
    _report_rows(
        df,
        pl.col("lower").is_not_null() & pl.col("upper").is_not_null() & (pl.col("lower") > pl.col("upper")),
        ctx,
        "lower",
        lambda r: f"spec {r['name']!r}: lower {r['lower']} is above upper {r['upper']}.",
    )
    _report_rows(
        df,
        pl.struct("name", "kind").is_duplicated(),
        ctx,
        "name",
        lambda r: f"spec {r['name']!r} ({r['kind']}) is defined more than once.",
    )


_RULES = {
    "batches": _rules_batches,
    "observations": _rules_observations,
    "events": _rules_events,
    "media": _rules_media,
    "quality": _rules_quality,
    "specs": _rules_specs,
}

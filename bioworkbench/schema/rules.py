"""The content rules of every campaign frame, checked by :func:`validate_frame`."""

from __future__ import annotations

import polars as pl

from bioworkbench.errors import Issue, suggest
from bioworkbench.schema.frames import (
    BATCH_ID_CHARACTERS,
    BATCH_ID_MAX_LENGTH,
    BATCH_ID_PATTERN,
    EVENT_KINDS,
    FRAMES,
    MEDIUM_EVENTS,
    SOURCES,
    SPEC_KINDS,
    STATUSES,
)
from bioworkbench.schema.report import (
    MAX_GROUPS,
    Context,
    check_rules,
    range_text,
    report_duplicates,
    report_rows,
    row_file,
    row_lines,
)
from bioworkbench.units import canonical_unit_label
from bioworkbench.variables import registry

__all__ = ["validate_frame"]


def validate_frame(
    name: str,
    df: pl.DataFrame,
    *,
    file: str | None = None,
    first_line: int | None = None,
    batch_ids: pl.Series | None = None,
    media: pl.DataFrame | None = None,
) -> list[Issue]:
    """Check the content rules of frame ``name``; never raises, never changes the data.

    Parameters
    ----------
    name
        The frame (a key of :data:`~bioworkbench.schema.FRAMES`).
    df
        The frame, already coerced (:func:`~bioworkbench.schema.coerce_frame`).
    file, first_line
        The file the rows were read from and the line of its first row, to locate problems
        (without them, rows are named by their lineage or by position, counted from 0).
    batch_ids
        The batches frame's ids: enables the "unknown batch" check.
    media
        The media frame: enables the "unknown medium" check of events.

    Returns
    -------
    list[Issue]
        Every problem found, each once, with the number of rows it affects and the first of them.

    Notes
    -----
    Every frame is held to the same standard: required values present; numbers finite (NaN and
    ±inf are errors; an empty cell is how a value is left out); physically impossible values
    (outside the registry's ``min``/``max``, a negative volume, a percentage outside 0–100) are
    errors; keys unique; references known (batches, media, variables). The rules run as one
    vectorised pass per frame, and rows are listed only for the rules that some row breaks.
    """
    registry()  # loaded before the rules read it
    ctx = Context(name, file, first_line)
    rule = _RULES[name]
    rule(df, ctx, batch_ids=batch_ids, media=media)
    return ctx.issues


def _check_nulls(df: pl.DataFrame, ctx: Context) -> None:
    for c in FRAMES[ctx.frame]:
        if not c.nullable and c.name in df.columns and df[c.name].null_count():
            report_rows(
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
    lines = row_lines(df, ctx)
    unknown = (
        df.lazy()
        .with_columns(_line=lines, _row=pl.int_range(pl.len(), dtype=pl.Int64))
        .filter(unknown_mask)
        .group_by("batch_id", maintain_order=True)
        .agg(pl.len(), pl.col("_line").first(), pl.col("_row").first(), *_first_of(df, ctx))
        .collect()
    )
    for row in unknown.head(MAX_GROUPS).iter_rows(named=True):
        b, n = row["batch_id"], row["len"]
        where = "" if row["_line"] is not None else f"; first at row {row['_row']}, counted from 0"
        ctx.add(
            f"batch {b!r} is not in the batches table ({n} row{'s' if n != 1 else ''}{where}).",
            line=row["_line"],
            column="batch_id",
            batch=b,
            hint=suggest(b, known.to_list(), what="Known batches"),
            file=row_file(row, ctx),
        )
    if unknown.height > MAX_GROUPS:
        ctx.add(f"... and {unknown.height - MAX_GROUPS} more unknown batches.", column="batch_id")


def _batch_id_problem(batch_id: str) -> str:
    """What puts ``batch_id`` outside the safe set, in words (unsafe characters each once, shown as repr)."""
    if len(batch_id) > BATCH_ID_MAX_LENGTH:
        return f"has {len(batch_id)} characters (at most {BATCH_ID_MAX_LENGTH})"
    safe = set(BATCH_ID_CHARACTERS) | {" "}
    if bad := dict.fromkeys(ch for ch in batch_id if not (ch.isalpha() or ch.isdecimal() or ch in safe)):
        return "holds " + ", ".join(repr(ch) for ch in bad)
    if batch_id != batch_id.strip(" "):
        return "starts or ends with a space"
    return "has two spaces in a row"


def _check_batch_id_text(df, ctx) -> None:
    """Batch ids of the safe set (:data:`~bioworkbench.schema.frames.BATCH_ID_PATTERN`), or an issue per id."""
    if "batch_id" not in df.columns or df.schema["batch_id"] != pl.String:
        return
    ids = pl.col("batch_id")
    check_rules(
        df,
        ctx,
        [
            (
                "batch_id",
                ids.is_not_null() & (~ids.str.contains(BATCH_ID_PATTERN) | (ids.str.len_chars() > BATCH_ID_MAX_LENGTH)),
                lambda r: (
                    f"batch_id {r['batch_id']!r} {_batch_id_problem(r['batch_id'])}; a batch id is letters, "
                    f"digits, single inner spaces and {' '.join(BATCH_ID_CHARACTERS)}, at most {BATCH_ID_MAX_LENGTH} "
                    "characters."
                ),
                "rename the batch in the source (ids reach plots, reports and file names, where markup characters "
                "would be read as markup).",
            )
        ],
    )


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
    check_rules(
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
    _check_batch_id_text(df, ctx)
    report_duplicates(
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
    check_rules(df, ctx, rules)


def _rules_observations(df, ctx, batch_ids=None, **_):
    _check_nulls(df, ctx)
    _check_batches_known(df, ctx, batch_ids)
    if batch_ids is None:
        _check_batch_id_text(df, ctx)
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
                "convert with bioworkbench.variables.to_canonical() or give a unit the constructor converts "
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
                    f"{range_text(lows[r['variable']], highs[r['variable']])}."
                ),
                "fix the source, or read with on_invalid='flag' to keep the row flagged 'invalid'.",
            )
        )
    check_rules(df, ctx, rules)
    report_duplicates(
        df,
        ctx,
        # numbered replicates (read_wide(replicates="keep")) are repeats by design, not duplicates
        ["batch_id", "time_h", "variable", "source", *(["replicate"] if "replicate" in df.columns else [])],
        "time_h",
        lambda r: f"duplicate {r['variable']} at time_h={r['time_h']} ({r['source']})",
        free=free,
        hint="each (batch, time, variable, source) must appear once: remove the repeat in the source, "
        "or flag one of the rows 'excluded' with a reason.",
    )


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
    check_rules(df, ctx, rules)
    report_duplicates(
        df,
        ctx,
        [c.name for c in FRAMES["events"] if c.name in df.columns],
        "event",
        lambda r: f"{r['event']} at time_h={r['time_h']} appears twice (the same row repeated)",
        hint="remove the repeat; two additions at the same time are two rows that differ in volume, medium or note.",
    )


def _rules_media(df, ctx, **_):
    _check_nulls(df, ctx)
    reg = registry()
    canon = {v: canonical_unit_label(spec.unit) for v, spec in reg.items()}
    canon_of = pl.col("variable").replace_strict(canon, default=None, return_dtype=pl.String)
    check_rules(
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
    report_duplicates(
        df,
        ctx,
        ["medium", "variable"],
        "variable",
        lambda r: f"{r['variable']} appears more than once for medium {r['medium']!r}",
    )


#: spellings of a percentage in ``quality.unit``
_PERCENT_UNITS = ("%", "percent", "pct", "% (w/w)", "% w/w", "area %", "area%")


def _rules_quality(df, ctx, batch_ids=None, **_):
    _check_nulls(df, ctx)
    _check_batches_known(df, ctx, batch_ids)
    if batch_ids is None:
        _check_batch_id_text(df, ctx)
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
                    f"{range_text(lows[r['attribute']], highs[r['attribute']])}."
                ),
                None,
            )
        )
    check_rules(df, ctx, rules)
    report_duplicates(
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
    check_rules(df, ctx, rules)
    report_duplicates(
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

"""The stability study frame: one row per measurement of one attribute of one lot at one time and condition.

A stability study is its own tidy frame (not part of a :class:`~bioworkbench.Campaign`):

=================  ========  ================================================================================
column             type      meaning
=================  ========  ================================================================================
``batch_id``       Utf8      the lot
``condition``      Utf8      storage condition label, e.g. ``"25 °C/60 % RH"`` or ``"5 °C"``; built from
                             ``temperature_c``/``rh`` when absent, ``"unspecified"`` when nothing is known
``temperature_c``  Float64   storage temperature in °C; null only when the study has one unnamed condition
``rh``             Float64   relative humidity in % RH (nullable)
``time``           Float64   time on stability (≥ 0) in ``time_unit``
``time_unit``      Utf8      one of ``day``, ``week``, ``month`` (default), ``year``; one unit per study
``attribute``      Utf8      potency, purity, aggregates, related substances, moisture, ...
``value``          Float64   the result, never changed by the package
``unit``           Utf8      the attribute's unit (nullable; one unit per attribute)
``flag``           Utf8      null = usable; anything else (``"excluded"``, ``"<LOQ"``, ``"invalid"``) = not used
``flag_reason``    Utf8      why the row is flagged
``source_file``    Utf8      the file the row came from (lineage)
``source_line``    Int64     its 1-based line in that file (header = line 1; the spreadsheet row for Excel)
=================  ========  ================================================================================

Replicates (several rows of one lot, condition, attribute and time) are legitimate in stability data and
are kept; the same source line read twice is not, and is an error. Time conversions follow pint's
calendar: a year is the Julian year of 365.25 d and a month is 1/12 of it, 30.4375 d; a week is 7 d.

This module defines the frame and checks it (:func:`validate_study`); reading a table from a file is
:func:`bioworkbench.stability.read_study` (:mod:`bioworkbench.stability.study`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Literal

import polars as pl

from bioworkbench.errors import ConfigError, Issue, SchemaError

__all__ = ["STUDY_COLUMNS", "TIME_UNITS", "require_study", "to_time_unit", "unflagged", "validate_study"]

STUDY_COLUMNS: dict[str, pl.DataType] = {
    "batch_id": pl.String(),
    "condition": pl.String(),
    "temperature_c": pl.Float64(),
    "rh": pl.Float64(),
    "time": pl.Float64(),
    "time_unit": pl.String(),
    "attribute": pl.String(),
    "value": pl.Float64(),
    "unit": pl.String(),
    "flag": pl.String(),
    "flag_reason": pl.String(),
    "source_file": pl.String(),
    "source_line": pl.Int64(),
}
"""The study frame's columns, in order, with their polars types (iterate for the names)."""

REQUIRED = ("batch_id", "time", "attribute", "value")

TIME_UNITS = ("day", "week", "month", "year")
"""Accepted time units (canonical spelling); days per unit: 1, 7, 30.4375, 365.25."""

_DAYS = {"day": 1.0, "week": 7.0, "month": 365.25 / 12.0, "year": 365.25}
_TIME_ALIASES = {
    alias: unit
    for unit, aliases in {
        "day": ("d", "day", "days"),
        "week": ("w", "wk", "wks", "week", "weeks"),
        "month": ("m", "mo", "mon", "month", "months"),
        "year": ("y", "yr", "yrs", "year", "years"),
    }.items()
    for alias in aliases
}
_LABEL_T = re.compile(r"(-?\d+(?:\.\d+)?)\s*(?:°|º|deg)?\s*C\b", re.I)
_LABEL_RH = re.compile(r"(\d+(?:\.\d+)?)\s*%\s*RH\b", re.I)
_TEXT_COLUMNS = ("batch_id", "condition", "time_unit", "attribute", "unit", "flag", "flag_reason", "source_file")
_STUDY_HINT = "Read one with bw.stability.read_study(path) or check a frame with bw.stability.validate_study(frame)."


def _time_unit_of(text: str | None) -> str | None:
    return None if text is None else _TIME_ALIASES.get(text.strip().lower())


def _suggest(found: str, valid: Iterable[str], what: str = "Valid") -> str:
    from bioworkbench.schema import suggest

    return suggest(found, valid, what=what)


def require_study(
    study: object, function: str, columns: Iterable[str] = ("batch_id", "time", "attribute")
) -> pl.DataFrame:
    """``study`` as a stability study frame holding ``columns``, or an error that says how to make one.

    Parameters
    ----------
    study
        The object a function was given as its study.
    function
        The function's name, for the message.
    columns
        The columns the function needs.

    Returns
    -------
    polars.DataFrame
        ``study`` (a LazyFrame collected).

    Raises
    ------
    ArgumentError
        ``study`` is not a frame (a Campaign, a path...), with how to read a study.
    SchemaError
        A column of ``columns`` is missing (all are named, with the columns found).
    """
    from bioworkbench.checks import require_columns, require_frame

    frame = require_frame(study, function=function, argument="study", hint=_STUDY_HINT)
    require_columns(frame, tuple(columns), what=f"{function}: study", hint=_STUDY_HINT)
    return frame


def unflagged() -> pl.Expr:
    """The rows a stability analysis uses: ``flag`` is null (a flagged result is kept, and counted, but
    never used).

    Returns
    -------
    polars.Expr
        ``pl.col("flag").is_null()``; negate it for the flagged rows.
    """
    return pl.col("flag").is_null()


# ---------------------------------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------------------------------
def validate_study(
    frame: pl.DataFrame,
    *,
    source: str | os.PathLike | None = None,
    on_invalid: Literal["raise", "flag"] = "raise",
) -> pl.DataFrame:
    """Check and coerce a stability study frame; raise one :class:`SchemaError` with every problem.

    Parameters
    ----------
    frame
        At least ``batch_id``, ``time``, ``attribute`` and ``value``; any other column of
        :data:`STUDY_COLUMNS` is optional. Columns outside the study schema are kept, after the study columns.
    source
        The file the frame came from, used for ``source_file`` where that is empty and in messages.
    on_invalid
        What to do with an impossible value (below): ``"raise"`` (default) reports it as an error;
        ``"flag"`` keeps it flagged ``"invalid"`` with the reason, so that analyses exclude and count it.

    Returns
    -------
    pl.DataFrame
        The study frame: :data:`STUDY_COLUMNS` in order and typed, then any extra columns; rows in input order.

    Raises
    ------
    ArgumentError
        ``frame`` is not a frame (a Campaign, say).
    ConfigError
        ``on_invalid`` is neither ``"raise"`` nor ``"flag"``.
    SchemaError
        Every problem, each with file, line, column and lot: a missing required column, a missing lot,
        attribute or time, a number that cannot be read (value, time, temperature, rh), a negative time,
        an empty value on an unflagged row, mixed time units in the study, an unknown time unit, mixed units
        within one attribute, a relative humidity outside 0-100 %, a temperature below absolute zero, a
        condition label that contradicts ``temperature_c``/``rh``, several conditions without temperatures,
        the same source line present twice, and an impossible value.

    Notes
    -----
    Defaults filled (never a change of a given value): ``time_unit`` = ``"month"``; ``temperature_c`` and
    ``rh`` read from the condition label when null (``"25 °C/60 % RH"`` gives 25 and 60); ``condition``
    built from them when null (``"25 °C/60 % RH"``, ``"5 °C"``), or ``"unspecified"`` when neither is known.
    Time-unit spellings (``months``, ``mo``, ``d``, ``weeks``...) are written in their canonical form.

    *Impossible values.* A negative result in a percent unit (``%``, ``% LC``, ``% w/w``...) or in a
    concentration or content unit (``mg/mL``, ``mg/kg``, ``ppm``) cannot be a true amount. It is an error by
    default rather than a flag because it usually means a sign or transcription slip that must be fixed at the
    source; a value known to be an artefact (e.g. a blank-corrected result just below zero) can be kept by
    flagging the row in the data, or by ``on_invalid="flag"``. Percent values above 100 are *not* impossible
    (potency is often above 100 % of label claim) and are not checked. Flagged rows are not checked.
    """
    return _validate(frame, source=source, on_invalid=on_invalid, headers={})


class _Issues:
    """The problems of one study frame, collected row by row (file, line, column, lot) before raising."""

    def __init__(self, file: str | None, headers: Mapping[str, str]) -> None:
        self.file, self.headers, self.items = file, headers, []

    def report(
        self,
        df: pl.DataFrame,
        mask: pl.Series | pl.Expr,
        column: str | None,
        message: str | Callable[[dict], str],
        hint: str | Callable[[dict], str | None] | None = None,
        limit: int = 50,
    ) -> None:
        """One :class:`Issue` per row of ``df`` where ``mask`` holds (the first ``limit``, then a count)."""
        rows = df.filter(mask)
        for row in rows.head(limit).iter_rows(named=True):
            msg = message(row) if callable(message) else message
            if row["source_line"] is None:
                msg = f"row {row['_row']}: {msg}"
            wide_value = column == "value" and "_value_column" in row
            self.items.append(
                Issue(
                    msg,
                    file=row["source_file"] or self.file,
                    line=row["source_line"],
                    column=row["_value_column"] if wide_value else self.headers.get(column, column),
                    batch=row["batch_id"],
                    hint=hint(row) if callable(hint) else hint,
                )
            )
        if rows.height > limit:
            self.items.append(
                Issue(f"... {rows.height - limit} more rows with the same problem", file=self.file, column=column)
            )


def _validate(
    frame: pl.DataFrame,
    *,
    source: str | os.PathLike | None,
    on_invalid: str,
    headers: Mapping[str, str],
) -> pl.DataFrame:
    """:func:`validate_study`; ``headers`` gives the file header of a study column, for messages.

    A private ``_value_column`` column (wide tables) names each row's value header; it is dropped.
    """
    if on_invalid not in ("raise", "flag"):
        raise ConfigError(f"on_invalid must be 'raise' or 'flag'; got {on_invalid!r}.")
    from bioworkbench.checks import require_frame

    frame = require_frame(
        frame,
        function="validate_study",
        argument="frame",
        hint="A stability study is a table of results (batch_id, time, attribute, value); read a file with "
        "bw.stability.read_study(path).",
    )
    file = str(source) if source is not None else None
    _check_required(frame, file)
    extras = [c for c in frame.columns if c not in STUDY_COLUMNS and c != "_value_column"]
    issues = _Issues(file, headers)
    df = _with_all_columns(frame, file)
    df, unreadable = _read_numbers(df, issues)
    _check_rows(df, issues, unreadable)
    df = _time_units(df, issues)
    df = _conditions(df, issues)
    _check_units(df, issues)
    _check_repeated_lines(df, issues)
    df = _impossible_values(df, issues, on_invalid)
    if issues.items:
        # a wide table gives one row per attribute from each line: report a line's time problem once
        raise SchemaError(list(dict.fromkeys(issues.items)), context=file)
    return df.select(*(pl.col(c).cast(t) for c, t in STUDY_COLUMNS.items()), *extras)


def _check_required(frame: pl.DataFrame, file: str | None) -> None:
    """The columns no study can do without, each missing one located in the file's header line."""
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise SchemaError(
            [
                Issue(
                    f"missing column {c!r} in the stability study.",
                    file=file,
                    line=1 if file else None,
                    column=c,
                    hint=f"a study needs columns {', '.join(REQUIRED)}; found: {', '.join(frame.columns) or 'none'}.",
                )
                for c in missing
            ],
            context=file,
        )


def _with_all_columns(frame: pl.DataFrame, file: str | None) -> pl.DataFrame:
    """Every study column present (text stripped, empty text null; missing optional columns null), lineage
    filled from ``file``, and a private row number ``_row``."""
    df = frame.with_columns(
        pl.col(c).cast(pl.String).str.strip_chars().replace("", None).alias(c)
        if c in frame.columns
        else pl.lit(None, dtype=pl.String).alias(c)
        for c in _TEXT_COLUMNS
    )
    for c in ("temperature_c", "rh"):
        if c not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=pl.Float64).alias(c))
    if "source_line" not in df.columns:
        lines = pl.int_range(pl.len(), dtype=pl.Int64) + 2 if file else pl.lit(None, dtype=pl.Int64)
        df = df.with_columns(lines.alias("source_line"))
    else:
        df = df.with_columns(pl.col("source_line").cast(pl.Int64, strict=False))
    if file:
        df = df.with_columns(pl.col("source_file").fill_null(pl.lit(file)))
    return df.with_columns(_row=pl.int_range(pl.len(), dtype=pl.Int64))


def _number_hint(column: str) -> Callable[[dict], str | None]:
    """How to fix a cell of ``column`` that is not a number (decimal comma, censored result)."""

    def hint(row: dict) -> str | None:
        v = str(row[column]).strip()
        if re.fullmatch(r"-?\d+,\d+", v):
            return "the file uses decimal commas; pass decimal_comma=True."
        if column == "value" and re.match(r"^[<>]", v):
            return (
                f"a censored result such as {v!r} is not a number: leave the value empty and put it "
                "in the flag column (e.g. flag='<LOQ'), or give the number."
            )
        return None

    return hint


def _read_numbers(df: pl.DataFrame, issues: _Issues) -> tuple[pl.DataFrame, dict[str, pl.Series]]:
    """``time``, ``value``, ``temperature_c`` and ``rh`` as numbers; each cell that is not one reported.

    Returns the frame and, per column, the mask of unreadable cells (so that they are not reported
    again as empty)."""
    unreadable: dict[str, pl.Series] = {}
    what = {"time": "a time", "value": "a number", "temperature_c": "a temperature in °C", "rh": "% RH"}
    for c in ("time", "value", "temperature_c", "rh"):
        raw = df[c]
        if raw.dtype == pl.String:
            txt = raw.str.strip_chars()
            num = txt.str.replace(r"^\+", "").cast(pl.Float64, strict=False)
            bad = txt.is_not_null() & (txt != "") & num.is_null()
        else:
            num = raw.cast(pl.Float64, strict=False)
            bad = raw.is_not_null() & num.is_null()
        if bad.any():
            issues.report(df, bad, c, lambda row, c=c: f"expected {what[c]}, found {row[c]!r}.", hint=_number_hint(c))
        df = df.with_columns(num.alias(c))
        unreadable[c] = bad
    return df, unreadable


def _check_rows(df: pl.DataFrame, issues: _Issues, unreadable: dict[str, pl.Series]) -> None:
    """Rows without a lot, attribute or time; negative or infinite times; unflagged rows without a value."""
    issues.report(df, pl.col("batch_id").is_null(), "batch_id", "no lot (batch_id) on this row.")
    issues.report(df, pl.col("attribute").is_null(), "attribute", "no attribute on this row.")
    issues.report(
        df, pl.col("time").is_null() & pl.col("batch_id").is_not_null() & ~unreadable["time"], "time", "time is empty."
    )
    issues.report(
        df, pl.col("time") < 0, "time", lambda r: f"time {r['time']:g} is negative; expected a time on stability ≥ 0."
    )
    issues.report(
        df,
        pl.col("value").is_null() & unflagged() & ~unreadable["value"],
        "value",
        "value is empty on a row without a flag.",
        hint="give the result, or flag the row (e.g. flag='<LOQ', flag_reason='below the quantitation limit').",
    )
    issues.report(
        df,
        ~pl.col("value").is_finite() & unflagged(),
        "value",
        lambda r: f"value is {r['value']} on a row without a flag; expected a finite number.",
        hint="give the result, or flag the row with a reason.",
    )
    issues.report(
        df, ~pl.col("time").is_finite(), "time", lambda r: f"time is {r['time']}; expected a finite time ≥ 0."
    )


def _time_units(df: pl.DataFrame, issues: _Issues) -> pl.DataFrame:
    """Time units in their canonical spelling (``"month"`` when empty); unknown units and a second unit in
    one study reported."""
    canon = df["time_unit"].str.to_lowercase().replace_strict(_TIME_ALIASES, default=None, return_dtype=pl.String)
    bad_unit = df["time_unit"].is_not_null() & canon.is_null()
    issues.report(
        df,
        bad_unit,
        "time_unit",
        lambda r: f"time unit {r['time_unit']!r} is not known.",
        hint=lambda r: _suggest(r["time_unit"], TIME_UNITS),
        limit=5,
    )
    df = df.with_columns(time_unit=canon.fill_null("month"))
    used = df.filter(~bad_unit)["time_unit"]
    if used.n_unique() > 1:
        main = used.value_counts(sort=True)["time_unit"][0]
        issues.report(
            df,
            (pl.col("time_unit") != main) & ~pl.Series(bad_unit),
            "time_unit",
            lambda r: f"time unit {r['time_unit']!r} differs from the study's {main!r}; a study has one time unit.",
            hint="convert the times to one unit before combining tables (bw.stability.study.to_time_unit).",
            limit=5,
        )
    return df


def _conditions(df: pl.DataFrame, issues: _Issues) -> pl.DataFrame:
    """Humidity and temperature checked against their ranges and the condition label; missing ones read from
    the label, missing labels built from them; several conditions without temperatures reported."""
    issues.report(
        df,
        pl.col("rh").is_finite() & ((pl.col("rh") < 0) | (pl.col("rh") > 100)),
        "rh",
        lambda r: f"relative humidity {r['rh']:g} % is impossible; expected 0-100 % RH.",
    )
    issues.report(
        df,
        pl.col("temperature_c") < -273.15,
        "temperature_c",
        lambda r: f"temperature {r['temperature_c']:g} °C is below absolute zero.",
    )
    lab = df["condition"]
    df = df.with_columns(
        _lab_t=lab.str.extract(_LABEL_T.pattern, 1).cast(pl.Float64, strict=False),
        _lab_rh=lab.str.extract(_LABEL_RH.pattern, 1).cast(pl.Float64, strict=False),
    )
    issues.report(
        df,
        (pl.col("_lab_t") - pl.col("temperature_c")).abs() > 1e-9,
        "temperature_c",
        lambda r: f"temperature {r['temperature_c']:g} °C contradicts the condition label {r['condition']!r}.",
    )
    issues.report(
        df,
        (pl.col("_lab_rh") - pl.col("rh")).abs() > 1e-9,
        "rh",
        lambda r: f"relative humidity {r['rh']:g} % contradicts the condition label {r['condition']!r}.",
    )
    df = df.with_columns(
        temperature_c=pl.col("temperature_c").fill_null(pl.col("_lab_t")),
        rh=pl.col("rh").fill_null(pl.col("_lab_rh")),
    )
    t_txt = pl.col("temperature_c").round(3).cast(pl.String).str.replace(r"\.0+$", "")
    rh_txt = pl.col("rh").round(3).cast(pl.String).str.replace(r"\.0+$", "")
    built = (
        pl.when(pl.col("temperature_c").is_not_null() & pl.col("rh").is_not_null())
        .then(pl.format("{} °C/{} % RH", t_txt, rh_txt))
        .when(pl.col("temperature_c").is_not_null())
        .then(pl.format("{} °C", t_txt))
        .when(pl.col("rh").is_not_null())
        .then(pl.format("{} % RH", rh_txt))
        .otherwise(pl.lit("unspecified"))
    )
    df = df.with_columns(condition=pl.col("condition").fill_null(built))
    conds = df["condition"].unique()
    if conds.len() > 1:
        issues.report(
            df,
            pl.col("temperature_c").is_null(),
            "temperature_c",
            lambda r: f"no storage temperature for condition {r['condition']!r}.",
            hint=f"the study has {conds.len()} conditions ({', '.join(sorted(conds.drop_nulls()))}); "
            "give temperature_c for each (a column, or a label such as '25 °C/60 % RH').",
            limit=5,
        )
    return df


def _check_units(df: pl.DataFrame, issues: _Issues) -> None:
    """One unit per attribute: rows whose unit differs from the attribute's first row are reported."""
    per_attr = df.filter(pl.col("attribute").is_not_null()).group_by("attribute").agg(pl.col("unit").unique())
    for attr, units in per_attr.iter_rows():
        if len(units) > 1:
            first = df.filter(pl.col("attribute") == attr)["unit"][0]
            shown = ", ".join(repr(u) for u in units)
            issues.report(
                df,
                (pl.col("attribute") == attr) & (pl.col("unit").ne_missing(pl.lit(first, dtype=pl.String))),
                "unit",
                lambda r, attr=attr, first=first, shown=shown: (
                    f"unit {r['unit']!r} for {attr!r} differs from {first!r} in the first row of this attribute "
                    f"(units found: {shown}); one attribute has one unit."
                ),
                hint="convert the results to one unit before combining tables.",
                limit=5,
            )


def _check_repeated_lines(df: pl.DataFrame, issues: _Issues) -> None:
    """The same source line twice is a repeated read, not a replicate."""
    if df["source_line"].is_not_null().any():
        dup = (
            pl.struct("source_file", "source_line", "attribute", "condition").is_duplicated()
            & pl.col("source_line").is_not_null()
        )
        issues.report(
            df,
            dup,
            "source_line",
            lambda r: f"{r['attribute']} from this line appears more than once; the same measurement was read twice.",
            hint="replicates are separate lines of the file; drop the repeated copy of the table.",
            limit=10,
        )


def _impossible_values(df: pl.DataFrame, issues: _Issues, on_invalid: str) -> pl.DataFrame:
    """Negative amounts in percent or concentration units: reported, or flagged ``"invalid"``."""
    neg_units = [u for u in df["unit"].drop_nulls().unique().to_list() if _is_amount_unit(u)]
    impossible = (unflagged() & (pl.col("value") < 0) & pl.col("unit").is_in(neg_units)) if neg_units else pl.lit(False)
    if on_invalid == "raise":
        issues.report(
            df,
            impossible,
            "value",
            lambda r: f"{r['attribute']} = {r['value']:g} {r['unit']} is impossible; expected a value ≥ 0.",
            hint="correct the source; a known artefact can be kept by flagging the row, or read with "
            "on_invalid='flag'.",
        )
        return df
    return df.with_columns(
        flag=pl.when(impossible).then(pl.lit("invalid")).otherwise(pl.col("flag")),
        flag_reason=pl.when(impossible)
        .then(pl.format("impossible value: negative {}", pl.col("unit")))
        .otherwise(pl.col("flag_reason")),
    )


def _is_amount_unit(unit: str) -> bool:
    """True for percent and concentration/content units, whose values cannot be negative."""
    u = unit.strip().lower()
    if "%" in u or "percent" in u or u in ("ppm", "ppb"):
        return True
    from bioworkbench.units import ureg

    try:
        q = ureg()(u.replace("µ", "u").replace("μ", "u"))
    except Exception:
        return False
    dims = dict(getattr(q, "dimensionality", {}) or {})
    conc = {"[mass]": 1, "[length]": -3}, {"[substance]": 1, "[length]": -3}
    return dims in conc or (
        not dims and re.fullmatch(r"\s*[munp]?g\s*/\s*[munk]?g\s*", u) is not None  # mg/kg, µg/g: mass fraction
    )


def to_time_unit(study: pl.DataFrame, unit: str) -> pl.DataFrame:
    """The study with ``time`` expressed in ``unit`` (``day``, ``week``, ``month``, ``year``).

    Parameters
    ----------
    study
        A validated study frame (one time unit).
    unit
        The unit wanted, in any accepted spelling (``"days"``, ``"mo"``...).

    Returns
    -------
    polars.DataFrame
        ``study`` with ``time`` converted and ``time_unit`` set to the canonical ``unit``.

    Raises
    ------
    ArgumentError, SchemaError
        ``study`` is not a frame, or lacks ``time`` or ``time_unit``.
    ConfigError
        An unknown ``unit`` (with the closest valid one).
    SchemaError
        The study mixes time units.

    Notes
    -----
    Factors from pint's calendar: 1 year = 365.25 d (Julian year), 1 month = 1/12 year = 30.4375 d,
    1 week = 7 d. Converting ``month`` to ``day`` multiplies by 30.4375.
    """
    from bioworkbench.checks import require_columns, require_frame

    study = require_frame(study, function="to_time_unit", argument="study")
    require_columns(study, ("time", "time_unit"), what="to_time_unit: study", hint="validate it with validate_study.")
    if not isinstance(unit, str):
        raise ConfigError(f"to_time_unit: unit must be a time unit name ({', '.join(TIME_UNITS)}); got {unit!r}.")
    to = _time_unit_of(unit)
    if to is None:
        raise ConfigError(f"time unit {unit!r} is not known. {_suggest(unit, TIME_UNITS)}")
    from bioworkbench.units import ureg

    frm = study["time_unit"].unique().to_list()
    if len(frm) != 1:
        raise SchemaError(f"the study mixes time units {frm}; validate it first (validate_study).")
    scale = float(ureg()(frm[0]).to(to).magnitude)
    return study.with_columns(time=pl.col("time") * scale, time_unit=pl.lit(to))

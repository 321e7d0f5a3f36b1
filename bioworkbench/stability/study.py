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
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import polars as pl

from bioworkbench.errors import ConfigError, DataReadError, Issue, SchemaError

__all__ = ["STUDY_COLUMNS", "TIME_UNITS", "read_study", "to_time_unit", "validate_study"]

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
    "d": "day",
    "day": "day",
    "days": "day",
    "w": "week",
    "wk": "week",
    "wks": "week",
    "week": "week",
    "weeks": "week",
    "m": "month",
    "mo": "month",
    "mon": "month",
    "month": "month",
    "months": "month",
    "y": "year",
    "yr": "year",
    "yrs": "year",
    "year": "year",
    "years": "year",
}

# header spellings recognised by read_study (compared lower-cased, with spaces, '-' and '_' removed)
_HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "batch_id": ("batch", "batchid", "lot", "lotid", "lotno", "lotnumber", "batchno", "batchnumber"),
    "time": ("time", "timepoint", "month", "months", "week", "weeks", "day", "days", "year", "years", "t"),
    "condition": ("condition", "storage", "storagecondition", "conditions"),
    "temperature_c": ("temperature", "temp", "temperaturec", "tempc", "temperature°c", "temp°c"),
    "rh": ("rh", "%rh", "humidity", "relativehumidity"),
    "time_unit": ("timeunit", "timeunits"),
    "attribute": ("attribute", "test", "parameter", "analyte", "qualityattribute", "cqa"),
    "value": ("value", "result", "measurement"),
    "unit": ("unit", "units"),
    "flag": ("flag",),
    "flag_reason": ("flagreason", "reason"),
    "source_file": ("sourcefile",),
    "source_line": ("sourceline",),
}
_HEADER_UNIT = re.compile(r"^(?P<name>.*?)\s*[\[(](?P<unit>[^\[\]()]+)[\])]\s*$")
_LABEL_T = re.compile(r"(-?\d+(?:\.\d+)?)\s*(?:°|º|deg)?\s*C\b", re.I)
_LABEL_RH = re.compile(r"(\d+(?:\.\d+)?)\s*%\s*RH\b", re.I)


def _key(header: str) -> str:
    return re.sub(r"[\s_\-./]+", "", header.strip().lower())


def _time_unit_of(text: str | None) -> str | None:
    return None if text is None else _TIME_ALIASES.get(text.strip().lower())


def _suggest(found: str, valid, what: str = "Valid") -> str:
    from bioworkbench.schema import suggest

    return suggest(found, valid, what=what)


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

    df = frame
    extras = [c for c in df.columns if c not in STUDY_COLUMNS and c != "_value_column"]
    # text columns: cast and strip; empty strings are missing
    text_cols = ("batch_id", "condition", "time_unit", "attribute", "unit", "flag", "flag_reason", "source_file")
    df = df.with_columns(
        pl.col(c).cast(pl.String).str.strip_chars().replace("", None).alias(c)
        if c in df.columns
        # a missing optional column is null
        else pl.lit(None, dtype=pl.String).alias(c)
        for c in text_cols
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
    df = df.with_columns(_row=pl.int_range(pl.len(), dtype=pl.Int64))
    issues: list[Issue] = []

    def report(mask: pl.Series | pl.Expr, column: str | None, message, hint=None, limit: int = 50) -> None:
        rows = df.filter(mask)
        for row in rows.head(limit).iter_rows(named=True):
            msg = message(row) if callable(message) else message
            if row["source_line"] is None:
                msg = f"row {row['_row']}: {msg}"
            issues.append(
                Issue(
                    msg,
                    file=row["source_file"] or file,
                    line=row["source_line"],
                    column=row["_value_column"]
                    if column == "value" and "_value_column" in row
                    else headers.get(column, column),
                    batch=row["batch_id"],
                    hint=hint(row) if callable(hint) else hint,
                )
            )
        if rows.height > limit:
            issues.append(Issue(f"... {rows.height - limit} more rows with the same problem", file=file, column=column))

    # numbers
    unreadable: dict[str, pl.Series] = {}
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
            what = {"time": "a time", "value": "a number", "temperature_c": "a temperature in °C", "rh": "% RH"}[c]

            def hint(row, c=c):
                v = str(row[c]).strip()
                if re.fullmatch(r"-?\d+,\d+", v):
                    return "the file uses decimal commas; pass decimal_comma=True."
                if c == "value" and re.match(r"^[<>]", v):
                    return (
                        f"a censored result such as {v!r} is not a number: leave the value empty and put it "
                        "in the flag column (e.g. flag='<LOQ'), or give the number."
                    )
                return None

            report(bad, c, lambda row, c=c, what=what: f"expected {what}, found {row[c]!r}.", hint=hint)
        df = df.with_columns(num.alias(c))
        unreadable[c] = bad

    report(pl.col("batch_id").is_null(), "batch_id", "no lot (batch_id) on this row.")
    report(pl.col("attribute").is_null(), "attribute", "no attribute on this row.")
    report(pl.col("time").is_null() & pl.col("batch_id").is_not_null() & ~unreadable["time"], "time", "time is empty.")
    report(
        pl.col("time") < 0,
        "time",
        lambda r: f"time {r['time']:g} is negative; expected a time on stability ≥ 0.",
    )
    report(
        pl.col("value").is_null() & pl.col("flag").is_null() & ~unreadable["value"],
        "value",
        "value is empty on a row without a flag.",
        hint="give the result, or flag the row (e.g. flag='<LOQ', flag_reason='below the quantitation limit').",
    )
    report(
        ~pl.col("value").is_finite() & pl.col("flag").is_null(),
        "value",
        lambda r: f"value is {r['value']} on a row without a flag; expected a finite number.",
        hint="give the result, or flag the row with a reason.",
    )
    report(
        ~pl.col("time").is_finite(),
        "time",
        lambda r: f"time is {r['time']}; expected a finite time ≥ 0.",
    )

    # time units: canonical spelling, one per study
    canon = df["time_unit"].str.to_lowercase().replace_strict(_TIME_ALIASES, default=None, return_dtype=pl.String)
    bad_unit = df["time_unit"].is_not_null() & canon.is_null()
    report(
        bad_unit,
        "time_unit",
        lambda r: f"time unit {r['time_unit']!r} is not known.",
        hint=lambda r: _suggest(r["time_unit"], TIME_UNITS),
        limit=5,
    )
    df = df.with_columns(time_unit=canon.fill_null("month"))
    used = df.filter(~bad_unit)["time_unit"]
    if used.n_unique() > 1:
        counts = used.value_counts(sort=True)
        main = counts["time_unit"][0]
        report(
            (pl.col("time_unit") != main) & ~pl.Series(bad_unit),
            "time_unit",
            lambda r: f"time unit {r['time_unit']!r} differs from the study's {main!r}; a study has one time unit.",
            hint="convert the times to one unit before combining tables (bw.stability.study.to_time_unit).",
            limit=5,
        )

    # condition labels, temperatures and humidities
    report(
        pl.col("rh").is_finite() & ((pl.col("rh") < 0) | (pl.col("rh") > 100)),
        "rh",
        lambda r: f"relative humidity {r['rh']:g} % is impossible; expected 0-100 % RH.",
    )
    report(
        pl.col("temperature_c") < -273.15,
        "temperature_c",
        lambda r: f"temperature {r['temperature_c']:g} °C is below absolute zero.",
    )
    lab = df["condition"]
    lab_t = lab.str.extract(_LABEL_T.pattern, 1).cast(pl.Float64, strict=False)
    lab_rh = lab.str.extract(_LABEL_RH.pattern, 1).cast(pl.Float64, strict=False)
    df = df.with_columns(_lab_t=lab_t, _lab_rh=lab_rh)
    report(
        (pl.col("_lab_t") - pl.col("temperature_c")).abs() > 1e-9,
        "temperature_c",
        lambda r: f"temperature {r['temperature_c']:g} °C contradicts the condition label {r['condition']!r}.",
    )
    report(
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
        report(
            pl.col("temperature_c").is_null(),
            "temperature_c",
            lambda r: f"no storage temperature for condition {r['condition']!r}.",
            hint=f"the study has {conds.len()} conditions ({', '.join(sorted(conds.drop_nulls()))}); "
            "give temperature_c for each (a column, or a label such as '25 °C/60 % RH').",
            limit=5,
        )

    # one unit per attribute
    per_attr = df.filter(pl.col("attribute").is_not_null()).group_by("attribute").agg(pl.col("unit").unique())
    for attr, units in per_attr.iter_rows():
        if len(units) > 1:
            first = df.filter(pl.col("attribute") == attr)["unit"][0]
            shown = ", ".join(repr(u) for u in units)
            report(
                (pl.col("attribute") == attr) & (pl.col("unit").ne_missing(pl.lit(first, dtype=pl.String))),
                "unit",
                lambda r, attr=attr, first=first, shown=shown: (
                    f"unit {r['unit']!r} for {attr!r} differs from {first!r} in the first row of this attribute "
                    f"(units found: {shown}); one attribute has one unit."
                ),
                hint="convert the results to one unit before combining tables.",
                limit=5,
            )

    # the same source line twice is a repeated read, not a replicate
    if df["source_line"].is_not_null().any():
        dup = (
            pl.struct("source_file", "source_line", "attribute", "condition").is_duplicated()
            & pl.col("source_line").is_not_null()
        )
        report(
            dup,
            "source_line",
            lambda r: f"{r['attribute']} from this line appears more than once; the same measurement was read twice.",
            hint="replicates are separate lines of the file; drop the repeated copy of the table.",
            limit=10,
        )

    # impossible values: negative amounts in percent or concentration units
    neg_units = [u for u in df["unit"].drop_nulls().unique().to_list() if _is_amount_unit(u)]
    impossible = (
        pl.col("flag").is_null() & (pl.col("value") < 0) & pl.col("unit").is_in(neg_units)
        if neg_units
        else pl.lit(False)
    )
    if on_invalid == "raise":
        report(
            impossible,
            "value",
            lambda r: f"{r['attribute']} = {r['value']:g} {r['unit']} is impossible; expected a value ≥ 0.",
            hint="correct the source; a known artefact can be kept by flagging the row, or read with "
            "on_invalid='flag'.",
        )
    else:
        df = df.with_columns(
            flag=pl.when(impossible).then(pl.lit("invalid")).otherwise(pl.col("flag")),
            flag_reason=pl.when(impossible)
            .then(pl.format("impossible value: negative {}", pl.col("unit")))
            .otherwise(pl.col("flag_reason")),
        )
    if issues:
        # a wide table gives one row per attribute from each line: report a line's time problem once
        raise SchemaError(list(dict.fromkeys(issues)), context=file)
    return df.select(*(pl.col(c).cast(t) for c, t in STUDY_COLUMNS.items()), *extras)


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


# ---------------------------------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------------------------------
def read_study(
    path: str | os.PathLike,
    *,
    columns: Mapping[str, str] | None = None,
    attribute: str | None = None,
    unit: str | None = None,
    units: Mapping[str, str] | None = None,
    condition: str | None = None,
    temperature_c: float | None = None,
    rh: float | None = None,
    time_unit: str = "month",
    sheet: str | int | None = None,
    separator: str | None = None,
    decimal_comma: bool = False,
    on_invalid: Literal["raise", "flag"] = "raise",
) -> pl.DataFrame:
    """Read a stability table (CSV or Excel, tidy or wide) into the validated study frame.

    Parameters
    ----------
    path
        A ``.csv``/``.tsv``/``.txt`` or ``.xlsx`` file.
    columns
        File header -> study column (one of :data:`STUDY_COLUMNS`), for headers the auto-detection does not
        recognise, e.g. ``{"Batch": "batch_id", "Month": "time"}``.
    attribute
        The attribute name for a table with a single measured column (a wide table with one value column, or
        a ``value`` column without an ``attribute`` column); by default the column header, lower-cased.
    unit, units
        The unit of every attribute, or a mapping attribute -> unit, for tables without a unit column. A unit
        in a wide header (``"Potency (% LC)"``) is read from the header.
    condition, temperature_c, rh
        The storage condition of the whole file, for tables without such columns.
    time_unit
        Unit of the time column: ``day``, ``week``, ``month`` (default) or ``year``. A time header that names
        another unit (``Day``, ``Weeks``, ``Time [d]``) is an error unless ``time_unit`` says the same or the
        column was mapped explicitly in ``columns``.
    sheet
        Excel sheet name or 0-based index (default: the first).
    separator
        CSV separator; by default the one of ``,``, ``;`` and tab most frequent in the header line.
    decimal_comma
        Numbers written with a decimal comma (``98,5``).
    on_invalid
        Passed to :func:`validate_study`.

    Returns
    -------
    pl.DataFrame
        The study frame (:data:`STUDY_COLUMNS`), one row per measurement, in file order (per attribute for a
        wide table), with ``source_file`` and ``source_line``.

    Raises
    ------
    DataReadError
        The file is missing or not readable as a table.
    ConfigError
        ``columns`` maps to an unknown study column; an argument contradicts a column of the file.
    SchemaError
        An unrecognised layout (the columns found and expected are listed) and every problem of
        :func:`validate_study`, with file, line, column and lot.

    Notes
    -----
    Layout detection. Headers are matched case-insensitively, ignoring spaces, ``_`` and ``-``: ``Batch``,
    ``Lot``, ``Batch ID`` -> ``batch_id``; ``Time``, ``Month(s)``, ``Week(s)``, ``Day(s)``, ``Year(s)``,
    ``Time point`` -> ``time``; ``Condition``/``Storage``, ``Temperature``/``Temp``, ``RH``/``Humidity``,
    ``Attribute``/``Test``/``Parameter``, ``Value``/``Result``, ``Unit``, ``Flag``, ``Flag reason``. A header
    may carry a unit in brackets (``Time [months]``, ``Temperature (°C)``). A table with ``attribute`` and
    ``value`` columns is *tidy* and read row by row; otherwise it is *wide*: every other column is one
    attribute (name lower-cased, unit from the header or ``units``/``unit``), and each non-empty cell one
    measurement (an empty cell is a result not measured, so no row).
    """
    if isinstance(path, pl.DataFrame | pl.LazyFrame):
        from bioworkbench.errors import ArgumentError

        raise ArgumentError(
            "read_study: path must be a file path (str or Path) to a CSV or Excel table; got a polars frame. "
            "Check a frame that is already in memory with bw.stability.validate_study(frame)."
        )
    if not isinstance(path, str | os.PathLike):
        from bioworkbench.checks import describe_type
        from bioworkbench.errors import ArgumentError

        raise ArgumentError(f"read_study: path must be a file path (str or Path); got {describe_type(path)}.")
    path = Path(path)
    file = str(path)
    if not path.exists():
        raise DataReadError(f"{path}: file not found.")
    df = _read_raw(path, sheet=sheet, separator=separator, decimal_comma=decimal_comma)
    headers = [str(c) for c in df.columns]
    columns = dict(columns or {})
    for target in columns.values():
        if target not in STUDY_COLUMNS:
            raise ConfigError(f"columns maps to {target!r}, not a study column. {_suggest(target, STUDY_COLUMNS)}")
    unknown_src = [h for h in columns if h not in headers]
    if unknown_src:
        raise SchemaError(
            [
                Issue(
                    f"column {h!r} named in columns= is not in the file.",
                    file=file,
                    line=1,
                    column=h,
                    hint=_suggest(h, headers, what="Columns in the file") if headers else None,
                )
                for h in unknown_src
            ],
            context=file,
        )
    # which header is which study column
    role: dict[str, str] = {}  # header -> study column
    header_unit: dict[str, str | None] = {}
    for h in headers:
        name, hu = _split_header(h)
        header_unit[h] = hu
        if h in columns:
            role[h] = columns[h]
            continue
        k = _key(name)
        for target, aliases in _HEADER_ALIASES.items():
            if k == target.replace("_", "") or k in aliases:
                role.setdefault(h, target)
                break
    by_target: dict[str, list[str]] = {}
    for h, t in role.items():
        by_target.setdefault(t, []).append(h)
    layout_issues = []
    for t, hs in by_target.items():
        if len(hs) > 1:
            layout_issues.append(
                Issue(
                    f"columns {', '.join(repr(h) for h in hs)} all look like {t!r}.",
                    file=file,
                    line=1,
                    column=hs[1],
                    hint=f"map the right one with columns={{{hs[0]!r}: {t!r}}} and rename the others.",
                )
            )
    tidy = "value" in by_target
    expected = "batch/lot, time (or month, week, day, year) and either attribute + value columns or one column "
    expected += "per attribute"
    for t in ("batch_id", "time"):
        if t not in by_target:
            layout_issues.append(
                Issue(
                    f"no {t} column recognised.",
                    file=file,
                    line=1,
                    column=t,
                    hint=f"found columns: {', '.join(headers) or 'none'}; expected {expected}. "
                    f"Map yours with columns={{'<header>': {t!r}}}.",
                )
            )
    value_cols = [h for h in headers if h not in role]
    if not tidy and not value_cols and "batch_id" in by_target and "time" in by_target:
        layout_issues.append(
            Issue(
                "no measured attribute found: no value column and no other column.",
                file=file,
                line=1,
                hint=f"found columns: {', '.join(headers)}; expected {expected}.",
            )
        )
    if layout_issues:
        raise SchemaError(layout_issues, context=file)

    # the time unit named by the header must agree with time_unit
    t_header = by_target["time"][0]
    canonical_tu = _time_unit_of(time_unit)
    if canonical_tu is None:
        raise ConfigError(f"time_unit {time_unit!r} is not known. {_suggest(time_unit, TIME_UNITS)}")
    named_tu = _time_unit_of(header_unit[t_header]) or _time_unit_of(_split_header(t_header)[0])
    if named_tu and named_tu != canonical_tu and t_header not in columns and "time_unit" not in by_target:
        raise SchemaError(
            [
                Issue(
                    f"the time header {t_header!r} says {named_tu}s, but time_unit={time_unit!r}.",
                    file=file,
                    line=1,
                    column=t_header,
                    hint=f"pass time_unit={named_tu!r}.",
                )
            ],
            context=file,
        )

    constants = {"condition": condition, "temperature_c": temperature_c, "rh": rh}
    for name, val in constants.items():
        if val is not None and name in by_target:
            raise ConfigError(
                f"{file}: {name}={val!r} given, but the file has a {name} column ({by_target[name][0]!r})."
            )
    df = df.with_row_index("_line", offset=2)
    keep = {h: t for h, t in role.items()}
    base = df.select(
        *(pl.col(h).alias(t) for h, t in keep.items() if t not in ("attribute", "value", "unit") or tidy),
        source_line=pl.col("_line").cast(pl.Int64),
    )
    for name, val in constants.items():
        if val is not None:
            base = base.with_columns(pl.lit(val).alias(name))
    if "time_unit" not in base.columns:
        base = base.with_columns(time_unit=pl.lit(canonical_tu))
    if tidy:
        if "attribute" not in base.columns:
            if attribute is None:
                raise SchemaError(
                    [
                        Issue(
                            "a value column but no attribute column.",
                            file=file,
                            line=1,
                            hint="name the measured attribute with attribute='potency' (or add an attribute column).",
                        )
                    ],
                    context=file,
                )
            base = base.with_columns(attribute=pl.lit(attribute))
        if "unit" not in base.columns:
            vh = by_target["value"][0]
            base = base.with_columns(unit=_unit_expr(unit, units, header_unit[vh], file))
        elif unit is not None or units:
            raise ConfigError(f"{file}: unit/units given, but the file has a unit column ({by_target['unit'][0]!r}).")
        extra = [h for h in value_cols]
        frame = pl.concat([base, df.select(extra)], how="horizontal") if extra else base
    else:
        if attribute is not None and len(value_cols) > 1:
            raise ConfigError(
                f"{file}: attribute={attribute!r} names a single measured column, but the table has "
                f"{len(value_cols)}: {', '.join(value_cols)}. Drop attribute= to use the headers as names."
            )
        for h in value_cols:
            name, hu = _split_header(h)
            if unit is not None or units:
                given = (units or {}).get(attribute or name.lower(), unit)
                if hu is not None and given is not None and given != hu:
                    raise ConfigError(f"{file}: column {h!r} states unit {hu!r} in its header, but {given!r} given.")
        parts = []
        for h in value_cols:
            name, hu = _split_header(h)
            attr = attribute if attribute is not None else name.strip().lower()
            s = df[h]
            present = s.is_not_null()
            if s.dtype == pl.String:
                present = present & (s.str.strip_chars() != "")
            part = base.with_columns(
                _value_column=pl.lit(h),
                attribute=pl.lit(attr),
                value=s,
                unit=_unit_expr(unit, units, hu, file, attr=attr),
            ).filter(present)
            parts.append(part)
        frame = pl.concat(parts, how="diagonal_relaxed")
        unused_units = set(units or {}) - {
            (attribute if attribute is not None else _split_header(h)[0].strip().lower()) for h in value_cols
        }
        if unused_units:
            raise ConfigError(
                f"{file}: units= names {', '.join(sorted(unused_units))}, not attributes of this table. "
                f"Attributes: {', '.join(_split_header(h)[0].strip().lower() for h in value_cols)}."
            )
    frame = frame.with_columns(source_file=pl.lit(file))
    return _validate(frame, source=file, on_invalid=on_invalid, headers={t: h for h, t in role.items()})


def _unit_expr(
    unit: str | None, units: Mapping[str, str] | None, header_unit: str | None, file: str, attr: str | None = None
) -> pl.Expr:
    if units and attr is None:
        raise ConfigError(f"{file}: units= maps attributes to units; a tidy table without a unit column takes unit=.")
    u = (units or {}).get(attr, unit) if attr is not None else unit
    return pl.lit(u if u is not None else header_unit, dtype=pl.String)


def _split_header(header: str) -> tuple[str, str | None]:
    m = _HEADER_UNIT.match(header.strip())
    if m:
        return m.group("name").strip(), m.group("unit").strip()
    return header.strip(), None


def _read_raw(path: Path, *, sheet: str | int | None, separator: str | None, decimal_comma: bool) -> pl.DataFrame:
    from bioworkbench.io.tidy import read_table

    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt") and separator is None:
        with path.open(encoding="utf-8-sig", errors="replace") as fh:
            first = fh.readline()
        counts = {s: first.count(s) for s in (",", ";", "\t")}
        separator = max(counts, key=counts.get) if any(counts.values()) else ","
    df, _ = read_table(path, separator=separator or ",", decimal_comma=decimal_comma, sheet=sheet)
    return df.rename({c: str(c).strip().strip('"') for c in df.columns})

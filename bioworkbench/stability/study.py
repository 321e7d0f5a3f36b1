"""Reading a stability table (CSV or Excel, tidy or wide) into the study frame.

The frame itself (its columns, units of time, and the checks every study passes) is defined in
:mod:`bioworkbench.stability.frame`; its names are re-exported here, where they have always been
importable from.

Layout detection. Headers are matched case-insensitively, ignoring spaces, ``_`` and ``-``: ``Batch``,
``Lot``, ``Batch ID`` -> ``batch_id``; ``Time``, ``Month(s)``, ``Week(s)``, ``Day(s)``, ``Year(s)``,
``Time point`` -> ``time``; ``Condition``/``Storage``, ``Temperature``/``Temp``, ``RH``/``Humidity``,
``Attribute``/``Test``/``Parameter``, ``Value``/``Result``, ``Unit``, ``Flag``, ``Flag reason``. A header
may carry a unit in brackets (``Time [months]``, ``Temperature (°C)``). A table with ``attribute`` and
``value`` columns is *tidy* and read row by row; otherwise it is *wide*: every other column is one
attribute (name lower-cased, unit from the header or ``units``/``unit``), and each non-empty cell one
measurement (an empty cell is a result not measured, so no row).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl

from bioworkbench.errors import ConfigError, DataReadError, Issue, SchemaError
from bioworkbench.stability.frame import (
    STUDY_COLUMNS,
    TIME_UNITS,
    _suggest,
    _time_unit_of,
    _validate,
    to_time_unit,
    validate_study,
)

__all__ = ["STUDY_COLUMNS", "TIME_UNITS", "read_study", "to_time_unit", "validate_study"]

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
_EXPECTED = (
    "batch/lot, time (or month, week, day, year) and either attribute + value columns or one column per attribute"
)


def _key(header: str) -> str:
    return re.sub(r"[\s_\-./]+", "", header.strip().lower())


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
    ArgumentError
        ``path`` is not a path (a frame already in memory, say).
    DataReadError
        The file is missing or not readable as a table.
    ConfigError
        ``columns`` maps to an unknown study column; an argument contradicts a column of the file.
    SchemaError
        An unrecognised layout (the columns found and expected are listed) and every problem of
        :func:`validate_study`, with file, line, column and lot.

    Notes
    -----
    The layout is detected from the headers as the module docstring describes.
    """
    path = _check_path(path)
    file = str(path)
    df = _read_raw(path, sheet=sheet, separator=separator, decimal_comma=decimal_comma)
    layout = _layout(df, columns=dict(columns or {}), file=file)
    canonical_tu = _check_time_header(layout, time_unit, file)
    constants = {"condition": condition, "temperature_c": temperature_c, "rh": rh}
    for name, val in constants.items():
        if val is not None and name in layout.by_target:
            raise ConfigError(
                f"{file}: {name}={val!r} given, but the file has a {name} column ({layout.by_target[name][0]!r})."
            )
    df = df.with_row_index("_line", offset=2)
    base = df.select(
        *(pl.col(h).alias(t) for h, t in layout.role.items() if t not in ("attribute", "value", "unit") or layout.tidy),
        source_line=pl.col("_line").cast(pl.Int64),
    )
    for name, val in constants.items():
        if val is not None:
            base = base.with_columns(pl.lit(val).alias(name))
    if "time_unit" not in base.columns:
        base = base.with_columns(time_unit=pl.lit(canonical_tu))
    if layout.tidy:
        frame = _tidy_rows(base, df, layout, attribute=attribute, unit=unit, units=units, file=file)
    else:
        frame = _wide_rows(base, df, layout, attribute=attribute, unit=unit, units=units, file=file)
    frame = frame.with_columns(source_file=pl.lit(file))
    return _validate(frame, source=file, on_invalid=on_invalid, headers={t: h for h, t in layout.role.items()})


def _check_path(path: object) -> Path:
    """``path`` as an existing :class:`~pathlib.Path`, or the error that says what was given instead."""
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
    if not path.exists():
        raise DataReadError(f"{path}: file not found.")
    return path


@dataclass
class _Layout:
    """Which header of the file is which study column, and whether the table is tidy or wide."""

    headers: list[str]
    role: dict[str, str]  # header -> study column
    header_unit: dict[str, str | None]  # header -> unit written in it
    by_target: dict[str, list[str]]  # study column -> headers
    columns: dict[str, str]  # the mapping given by the user
    tidy: bool
    value_cols: list[str]  # headers of a wide table's attributes (the unmapped ones)


def _layout(df: pl.DataFrame, *, columns: dict[str, str], file: str) -> _Layout:
    """Match the headers to study columns (``columns`` first, then the aliases) and check the layout."""
    headers = [str(c) for c in df.columns]
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
    role: dict[str, str] = {}
    header_unit: dict[str, str | None] = {}
    for h in headers:
        name, header_unit[h] = _split_header(h)
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
    layout = _Layout(
        headers=headers,
        role=role,
        header_unit=header_unit,
        by_target=by_target,
        columns=columns,
        tidy="value" in by_target,
        value_cols=[h for h in headers if h not in role],
    )
    _check_layout(layout, file)
    return layout


def _check_layout(layout: _Layout, file: str) -> None:
    """Two headers for one study column, no lot or time column, or nothing measured: one error with all."""
    issues = [
        Issue(
            f"columns {', '.join(repr(h) for h in hs)} all look like {t!r}.",
            file=file,
            line=1,
            column=hs[1],
            hint=f"map the right one with columns={{{hs[0]!r}: {t!r}}} and rename the others.",
        )
        for t, hs in layout.by_target.items()
        if len(hs) > 1
    ]
    found = ", ".join(layout.headers) or "none"
    for t in ("batch_id", "time"):
        if t not in layout.by_target:
            issues.append(
                Issue(
                    f"no {t} column recognised.",
                    file=file,
                    line=1,
                    column=t,
                    hint=f"found columns: {found}; expected {_EXPECTED}. Map yours with columns={{'<header>': {t!r}}}.",
                )
            )
    has_keys = "batch_id" in layout.by_target and "time" in layout.by_target
    if not layout.tidy and not layout.value_cols and has_keys:
        issues.append(
            Issue(
                "no measured attribute found: no value column and no other column.",
                file=file,
                line=1,
                hint=f"found columns: {', '.join(layout.headers)}; expected {_EXPECTED}.",
            )
        )
    if issues:
        raise SchemaError(issues, context=file)


def _check_time_header(layout: _Layout, time_unit: str, file: str) -> str:
    """The canonical ``time_unit``; an error when the time header names another unit."""
    t_header = layout.by_target["time"][0]
    canonical_tu = _time_unit_of(time_unit)
    if canonical_tu is None:
        raise ConfigError(f"time_unit {time_unit!r} is not known. {_suggest(time_unit, TIME_UNITS)}")
    named_tu = _time_unit_of(layout.header_unit[t_header]) or _time_unit_of(_split_header(t_header)[0])
    if named_tu and named_tu != canonical_tu and t_header not in layout.columns and "time_unit" not in layout.by_target:
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
    return canonical_tu


def _tidy_rows(
    base: pl.DataFrame,
    df: pl.DataFrame,
    layout: _Layout,
    *,
    attribute: str | None,
    unit: str | None,
    units: Mapping[str, str] | None,
    file: str,
) -> pl.DataFrame:
    """A tidy table: one row per line, the attribute and unit from their columns or the arguments."""
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
        vh = layout.by_target["value"][0]
        base = base.with_columns(unit=_unit_expr(unit, units, layout.header_unit[vh], file))
    elif unit is not None or units:
        unit_col = layout.by_target["unit"][0]
        raise ConfigError(f"{file}: unit/units given, but the file has a unit column ({unit_col!r}).")
    extra = list(layout.value_cols)
    return pl.concat([base, df.select(extra)], how="horizontal") if extra else base


def _wide_rows(
    base: pl.DataFrame,
    df: pl.DataFrame,
    layout: _Layout,
    *,
    attribute: str | None,
    unit: str | None,
    units: Mapping[str, str] | None,
    file: str,
) -> pl.DataFrame:
    """A wide table: one row per non-empty cell of each attribute column (``_value_column`` names it)."""
    value_cols = layout.value_cols
    if attribute is not None and len(value_cols) > 1:
        raise ConfigError(
            f"{file}: attribute={attribute!r} names a single measured column, but the table has "
            f"{len(value_cols)}: {', '.join(value_cols)}. Drop attribute= to use the headers as names."
        )
    names = {h: (attribute if attribute is not None else _split_header(h)[0].strip().lower()) for h in value_cols}
    if unit is not None or units:
        for h in value_cols:
            name, hu = _split_header(h)
            given = (units or {}).get(attribute or name.lower(), unit)
            if hu is not None and given is not None and given != hu:
                raise ConfigError(f"{file}: column {h!r} states unit {hu!r} in its header, but {given!r} given.")
    parts = []
    for h in value_cols:
        s = df[h]
        present = s.is_not_null()
        if s.dtype == pl.String:
            present = present & (s.str.strip_chars() != "")
        parts.append(
            base.with_columns(
                _value_column=pl.lit(h),
                attribute=pl.lit(names[h]),
                value=s,
                unit=_unit_expr(unit, units, _split_header(h)[1], file, attr=names[h]),
            ).filter(present)
        )
    unused_units = set(units or {}) - set(names.values())
    if unused_units:
        raise ConfigError(
            f"{file}: units= names {', '.join(sorted(unused_units))}, not attributes of this table. "
            f"Attributes: {', '.join(_split_header(h)[0].strip().lower() for h in value_cols)}."
        )
    return pl.concat(parts, how="diagonal_relaxed")


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

"""Unit parsing and conversion to canonical units, with pint.

Conversion is applied per ``(variable, unit)`` group, never per row: pint computes one scale (and,
for temperatures, an offset) per group and polars applies it to the whole column. Mass and molar
concentrations convert through the variable's molar mass from the registry (``g/L`` of glucose ->
``mmol/L`` with 180.16 g/mol). A unit that cannot be converted is an error, never a guess.

Unit spellings found in instrument and bioreactor exports are normalised first: ``10^6 cells/mL``,
``E6 cells/mL``, ``x10^6/mL``, ``°C``, ``µm``, ``mM``, ``% air sat``, ``pH units``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import polars as pl

from bioworkbench.errors import ConfigError, Issue

__all__ = ["canonical_unit_label", "conversion", "conversions", "parse_unit", "to_canonical"]

# Units pint does not have, or that are labels rather than physical units.
_DIMENSIONLESS_LABELS = {
    "ph": "pH",
    "ph units": "pH",
    "ph unit": "pH",
    "au": "AU",
    "a.u.": "AU",
    "od": "AU",
    "od600": "AU",
    "-": "1",
    "": "1",
    "1": "1",
    "fraction": "1",
}


@functools.cache
def ureg():
    """The package's pint registry (cells and osmoles added as base dimensions)."""
    import pint

    reg = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
    reg.define("cell = [cell_count] = cells")
    reg.define("osmole = [osmolarity] = Osm = osm")
    reg.define("air_saturation = percent = air_sat")
    return reg


def _normalise(unit: str) -> str:
    u = unit.strip()
    u = u.replace("µ", "u").replace("μ", "u").replace("°", "deg").replace("·", "*")
    u = u.replace("×", "x").replace("⁶", "^6").replace("³", "^3")
    u = re.sub(r"\s+", " ", u)
    # 10^6 cells/mL, 10E6, x10^6, E6, 1E+06 -> 1e6
    u = re.sub(r"^(?:x\s*)?10\s*(?:\^|\*\*|E)\s*\+?(\d+)", r"1e\1", u, flags=re.I)
    u = re.sub(r"^1?E\+?0*(\d+)\b", r"1e\1", u, flags=re.I)
    u = re.sub(r"^1e\+?0*(\d+)", r"1e\1", u, flags=re.I)
    # "1e6/mL" means cells
    u = re.sub(r"^(1e\d+)\s*/", r"\1 cells/", u)
    u = re.sub(r"\bdegC\b|\bdeg C\b|\bC\b(?=$)", "degC", u)
    u = re.sub(r"%\s*(air\s*sat(uration)?|sat(uration)?|DO|as)\b\.?", "percent", u, flags=re.I)
    u = u.replace("%", "percent")
    u = re.sub(r"\bmM\b", "mmol/L", u)
    u = re.sub(r"\buM\b", "umol/L", u)
    u = re.sub(r"\bmOsm/kg\s*H2O\b", "mOsm/kg", u, flags=re.I)
    u = re.sub(r"\bmOsmol\b", "mOsm", u, flags=re.I)
    u = re.sub(r"\bvv?d\b", "1/d", u)
    return u


@dataclass(frozen=True, slots=True)
class ParsedUnit:
    """A unit string resolved to a pint quantity (the magnitude carries scale prefixes like 1e6)."""

    text: str
    label: str | None  # for dimensionless labels such as pH or AU
    quantity: object | None  # pint Quantity of magnitude 1 x scale


@functools.cache
def parse_unit(unit: str) -> ParsedUnit:
    """Parse a unit string; raise :class:`ConfigError` if pint does not understand it."""
    if unit is None:
        raise ConfigError("a unit is required; found an empty unit.")
    key = unit.strip().lower()
    if key in _DIMENSIONLESS_LABELS:
        label = _DIMENSIONLESS_LABELS[key]
        return ParsedUnit(unit, label, None if label != "1" else ureg().Quantity(1, ""))
    text = _normalise(unit)
    try:
        q = ureg().Quantity(text)
    except Exception as exc:  # pint raises several kinds here
        raise ConfigError(
            f"unit {unit!r} is not understood ({type(exc).__name__}: {exc}).",
        ) from None
    return ParsedUnit(unit, None, q)


@functools.cache
def canonical_unit_label(unit: str) -> str:
    """The string stored in ``observations.unit`` for a canonical unit (as in the registry)."""
    return unit


@functools.cache
def conversion(unit: str, target: str, molar_mass: float | None = None) -> tuple[float, float]:
    """``(scale, offset)`` with ``value_in_target = value * scale + offset``.

    Raises
    ------
    ConfigError
        If ``unit`` cannot be converted to ``target`` (different dimensions and no molar mass that
        bridges mass and amount of substance).
    """
    src, dst = parse_unit(unit), parse_unit(target)
    if src.quantity is None or dst.quantity is None:
        if src.label == dst.label:
            return 1.0, 0.0
        raise ConfigError(f"cannot convert {unit!r} to {target!r}.")
    reg = ureg()
    qs, qd = src.quantity, dst.quantity
    if qs.dimensionality == qd.dimensionality:
        if _is_offset(qs) or _is_offset(qd):
            u_src, u_dst = qs.units, qd.units
            zero = reg.Quantity(0.0, u_src).to(u_dst).magnitude
            one = reg.Quantity(1.0, u_src).to(u_dst).magnitude
            return float(one - zero), float(zero)
        return float((qs / qd).to("").magnitude), 0.0
    if molar_mass is not None:
        mass, substance = reg.Quantity("g/L").dimensionality, reg.Quantity("mol/L").dimensionality
        mm = reg.Quantity(molar_mass, "g/mol")
        if qs.dimensionality == mass and qd.dimensionality == substance:
            return float((qs / mm / qd).to("").magnitude), 0.0
        if qs.dimensionality == substance and qd.dimensionality == mass:
            return float((qs * mm / qd).to("").magnitude), 0.0
    raise ConfigError(f"cannot convert {unit!r} ({qs.dimensionality}) to {target!r} ({qd.dimensionality}).")


def _is_offset(q) -> bool:
    return (
        not q.units._ok_for_muldiv()
        if hasattr(q.units, "_ok_for_muldiv")
        else ("degree_Celsius" in str(q.units) or "degree_Fahrenheit" in str(q.units))
    )


def to_canonical(
    df: pl.DataFrame,
    *,
    variable_col: str = "variable",
    value_col: str = "value",
    unit_col: str = "unit",
    file: str | None = None,
    line_col: str | None = None,
    keep_raw: bool = False,
) -> tuple[pl.DataFrame, list[Issue]]:
    """Convert ``value_col`` to each variable's canonical unit and set ``unit_col`` to it.

    Parameters
    ----------
    df
        A frame with a variable, a value and a unit column.
    variable_col, value_col, unit_col
        Their names.
    file, line_col
        Where the rows come from, for the issues: the file, and a column holding each row's line
        (without it, rows are named by position, counted from 0).
    keep_raw
        Record every converted row's original value and unit in ``raw_<value_col>`` and
        ``raw_unit`` (null for rows left as they were; values already there are kept). Use it
        where the rows have no file to point back to (frames built in code).

    Returns
    -------
    tuple[polars.DataFrame, list[Issue]]
        The converted frame (the same object when every unit is already canonical) and the issues
        (units that cannot be converted, missing units: one per variable and unit, with the number
        of rows and the first of them), which the caller raises.

    Notes
    -----
    Works per ``(variable, unit)`` group: one pint conversion per group, one vectorised
    multiply-add per row (``value_canonical = value * scale + offset``). Rows whose variable is
    unknown are left as they are (the schema check reports them).
    """
    from bioworkbench.schema import registry

    reg = registry()
    # (a group_by of two columns is several times faster than .unique() on large frames)
    groups = df.group_by(variable_col, unit_col).len().drop("len")
    rows = []
    issues: list[Issue] = []
    for var, unit in groups.iter_rows():
        if var not in reg:
            continue
        v = reg[var]
        if unit is not None and str(unit) == v.unit:
            continue
        if unit is None or str(unit).strip() == "":
            bad = _rows_of(df, variable_col, unit_col, var, unit, line_col)
            _unit_issue(
                issues,
                bad,
                var,
                unit,
                f"no unit for {var}; expected {v.unit} or a unit convertible to it.",
                file,
            )
            continue
        try:
            scale, offset = conversion(str(unit), v.unit, v.molar_mass)
        except ConfigError as exc:
            bad = _rows_of(df, variable_col, unit_col, var, unit, line_col)
            examples = _examples(v)
            _unit_issue(
                issues,
                bad,
                var,
                unit,
                f"found {unit!r} for {var}; expected a unit convertible to {v.unit}"
                f"{' (' + examples + ')' if examples else ''}. ({exc})",
                file,
            )
            continue
        rows.append((var, unit, scale, offset, v.unit))
    if not rows:
        return df, issues
    table = pl.DataFrame(
        rows,
        schema={
            variable_col: pl.String,
            "_unit_in": pl.String,
            "_scale": pl.Float64,
            "_offset": pl.Float64,
            "_canon": pl.String,
        },
        orient="row",
    )
    if df.schema[variable_col] != pl.String:
        table = table.with_columns(pl.col(variable_col).cast(df.schema[variable_col]))
    converted = pl.col("_scale").is_not_null()
    raw_value, raw_unit = f"raw_{value_col}", "raw_unit"
    keep = []
    if keep_raw:
        old_value = pl.col(raw_value) if raw_value in df.columns else pl.lit(None, dtype=pl.Float64)
        old_unit = pl.col(raw_unit) if raw_unit in df.columns else pl.lit(None, dtype=pl.String)
        keep = [
            pl.when(converted).then(pl.col(value_col)).otherwise(old_value).cast(pl.Float64).alias(raw_value),
            pl.when(converted).then(pl.col(unit_col).cast(pl.String)).otherwise(old_unit).alias(raw_unit),
        ]
    out = (
        df.with_columns(pl.col(unit_col).cast(pl.String).alias("_unit_in"))
        .join(table, on=[variable_col, "_unit_in"], how="left", maintain_order="left")
        .with_columns(*keep)
        .with_columns(
            pl.when(converted)
            .then(pl.col(value_col) * pl.col("_scale") + pl.col("_offset"))
            .otherwise(pl.col(value_col))
            .alias(value_col),
            pl.coalesce("_canon", pl.col(unit_col).cast(pl.String)).alias(unit_col),
        )
        .drop("_unit_in", "_scale", "_offset", "_canon")
    )
    return out, issues


def conversions(df: pl.DataFrame, *, variable_col: str = "variable", unit_col: str = "unit") -> pl.DataFrame:
    """The ``(variable, unit)`` groups of ``df`` that :func:`to_canonical` would convert, with
    their row counts, canonical unit, ``scale`` and ``offset`` (groups that cannot be converted are
    left out: :func:`to_canonical` reports them)."""
    from bioworkbench.schema import registry

    reg = registry()
    rows = []
    counts = df.group_by(variable_col, unit_col).len()
    for var, unit, n in counts.iter_rows():
        if var not in reg or unit is None or str(unit) == reg[var].unit or not str(unit).strip():
            continue
        try:
            scale, offset = conversion(str(unit), reg[var].unit, reg[var].molar_mass)
        except ConfigError:
            continue
        rows.append((var, unit, n, reg[var].unit, scale, offset))
    return pl.DataFrame(
        rows,
        schema={
            "variable": pl.String,
            "unit": pl.String,
            "rows": pl.Int64,
            "canonical": pl.String,
            "scale": pl.Float64,
            "offset": pl.Float64,
        },
        orient="row",
    ).sort("variable", "unit")


def _rows_of(df, variable_col, unit_col, var, unit, line_col) -> pl.DataFrame:
    """The rows of one ``(variable, unit)`` group, with their position (``_row``) and line (``_line``)."""
    unit_match = pl.col(unit_col).is_null() if unit is None else (pl.col(unit_col) == unit)
    line = pl.col(line_col).cast(pl.Int64) if line_col and line_col in df.columns else pl.lit(None, dtype=pl.Int64)
    return (
        df.lazy()
        .with_columns(_row=pl.int_range(pl.len(), dtype=pl.Int64), _line=line)
        .filter((pl.col(variable_col) == var) & unit_match)
        .collect()
    )


def _examples(v) -> str:
    if v.molar_mass is not None:
        return "g/L, mg/L, mg/dL, mmol/L, mM, umol/L"
    examples = {
        "1e6 cells/mL": "1e6 cells/mL, 10^6 cells/mL, cells/mL, 1e5 cells/mL",
        "%": "%, fraction as 1",
        "mg/L": "mg/L, g/L, ug/mL",
        "mL": "mL, L, uL",
        "degC": "degC, °C, degF, K",
        "mmHg": "mmHg, kPa, atm",
        "mOsm/kg": "mOsm/kg",
        "g/L": "g/L, mg/L, mg/mL",
    }
    return examples.get(v.unit, "")


def _unit_issue(issues, bad, var, unit, message, file):
    """One issue per ``(variable, unit)`` group: located at its first row, with the count and first rows."""
    n = bad.height
    first = bad.row(0, named=True) if n else {}
    batches = bad["batch_id"].unique(maintain_order=True).to_list() if "batch_id" in bad.columns else []
    src_file = file or first.get("source_file")
    line = first.get("_line")
    where = []
    if n > 1:
        where.append(f"{n:,} rows")
    if line is not None:
        lines = bad["_line"].head(5).to_list()
        if n > 1:
            where.append(f"lines {', '.join(map(str, lines))}{' …' if n > 5 else ''}")
    elif n:
        where.append(
            f"row{'s' if n > 1 else ''} {', '.join(map(str, bad['_row'].head(5).to_list()))}"
            f"{' …' if n > 5 else ''}, counted from 0"
        )
    if len(batches) > 1:
        where.append(f"batches {', '.join(map(str, batches[:5]))}{' …' if len(batches) > 5 else ''}")
    more = f" ({'; '.join(where)})" if where else ""
    issues.append(
        Issue(
            message + more,
            file=src_file,
            line=line,
            column="unit",
            batch=batches[0] if len(batches) == 1 else None,
        )
    )

"""The canonical variable registry, and conversion of observations to each variable's canonical unit.

The registry is data (``variables.yaml`` shipped with the package), loaded on first use and
extended at run time with :func:`register_variable`. Each :class:`Variable` has a canonical unit
(the unit a :class:`~bioworkbench.Campaign` stores), a possible and a plausible range, a kind and,
for molar concentrations, a molar mass. :func:`to_canonical` converts a long frame of values to
those units, one pint conversion per ``(variable, unit)`` group (:mod:`bioworkbench.units`).

Layer: imports :mod:`bioworkbench.errors` and :mod:`bioworkbench.units` only; the frame
specifications and validation (:mod:`bioworkbench.schema`) build on it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

import polars as pl

from bioworkbench.errors import CheckedFrame, ConfigError, Issue, SchemaError, suggest
from bioworkbench.units import conversion, parse_unit

__all__ = [
    "BIOMASS_ORDER",
    "BIOMASS_UNITS",
    "Variable",
    "biomass_choices",
    "choose_biomass",
    "choose_product",
    "conversions",
    "get_variable",
    "register_variable",
    "registry",
    "to_canonical",
    "variables",
]


@dataclass(frozen=True, slots=True)
class Variable:
    """A canonical variable: its name, canonical unit, possible and plausible ranges.

    ``min``/``max`` bound what is physically possible (outside: an error, or with
    ``on_invalid="flag"`` a row flagged ``invalid``); ``typical`` bounds what is plausible
    (outside: kept and flagged ``suspect``). ``molar_mass`` (g/mol) enables g/L <-> mmol/L.
    ``kind`` is one of ``concentration``, ``cell_density``, ``percent``, ``volume``, ``online``,
    ``product``, ``other``.
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


def _ensure_registry() -> None:
    """Load ``variables.yaml`` into the registry, once (before any variable registered in code)."""
    if _REGISTRY:
        return
    import yaml

    text = resources.files("bioworkbench").joinpath("variables.yaml").read_text()
    for name, spec in yaml.safe_load(text).items():
        _add(name, **spec)


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
    kind
        ``concentration``, ``cell_density``, ``percent``, ``volume``, ``online``, ``product`` or
        ``other``; analyses choose variables by kind (e.g. the biomass is a ``cell_density``).
    description
        What the variable is, in words (used as its label in tables).
    replace
        Redefine a variable that is already registered.

    Returns
    -------
    Variable
        The registered variable.

    Raises
    ------
    ConfigError
        If the name is not a lower-case identifier, exists and ``replace`` is false, or the unit
        is not understood.
    """
    _ensure_registry()  # the shipped variables first, so that a name registered here is checked against them
    return _add(
        name,
        unit,
        min=min,
        max=max,
        typical=typical,
        molar_mass=molar_mass,
        kind=kind,
        description=description,
        replace=replace,
    )


def _add(
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
    if not name or name != name.strip() or name.lower() != name:
        raise ConfigError(f"variable name {name!r} must be a non-empty lower-case identifier")
    if name in _REGISTRY and not replace:
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
    """The registry as a frame for people to read.

    Returns
    -------
    polars.DataFrame
        One row per variable: ``variable, unit, min, max, typical_low, typical_high, molar_mass,
        kind, description``.
    """
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


def get_variable(name: str) -> Variable:
    """Look a variable up by name.

    Parameters
    ----------
    name
        A registered variable name (``"glucose"``).

    Returns
    -------
    Variable

    Raises
    ------
    SchemaError
        An unknown name; the message suggests the closest registered one.
    """
    _ensure_registry()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SchemaError([Issue(f"unknown variable {name!r}.", hint=suggest(name, _REGISTRY))]) from None


def registry() -> dict[str, Variable]:
    """The live registry.

    Returns
    -------
    dict[str, Variable]
        Name -> :class:`Variable`, loaded from ``variables.yaml`` on first use (the same object
        every time: variables registered later appear in it).
    """
    _ensure_registry()
    return _REGISTRY


# ---------------------------------------------------------------------------------------------
# which variables are biomass and product
# ---------------------------------------------------------------------------------------------
#: biomass variables in order of preference (then any other registered ``cell_density``)
BIOMASS_ORDER = ("vcd", "cdw", "od600")

#: canonical units a biomass variable may have (cell counts, dry mass, optical density)
BIOMASS_UNITS = ("1e6 cells/mL", "g/L", "AU")


def biomass_choices() -> list[str]:
    """The registered variables that can serve as biomass.

    Returns
    -------
    list[str]
        :data:`BIOMASS_ORDER`, then every other registered ``cell_density`` variable whose
        canonical unit is one of :data:`BIOMASS_UNITS`, by name.
    """
    reg = registry()
    others = sorted(
        v
        for v, spec in reg.items()
        if spec.kind == "cell_density" and spec.unit in BIOMASS_UNITS and v not in BIOMASS_ORDER
    )
    return [v for v in BIOMASS_ORDER if v in reg] + others


def choose_biomass(measured: Iterable[str]) -> str | None:
    """The biomass among the ``measured`` variables: the first of :func:`biomass_choices` measured.

    Parameters
    ----------
    measured
        Names of the variables that have (unflagged) values.

    Returns
    -------
    str or None
        ``None`` when no biomass variable is measured.
    """
    measured = set(measured)
    return next((v for v in biomass_choices() if v in measured), None)


def choose_product(measured: Iterable[str], declared: Iterable[str] = ()) -> str | None:
    """The product among the ``measured`` variables.

    Parameters
    ----------
    measured
        Names of the variables that have (unflagged) values.
    declared
        Products named in the batches' ``product`` column (``"L-tryptophan"``).

    Returns
    -------
    str or None
        ``titer`` when measured; else the first (by name) measured variable of registry kind
        ``product``; else a measured variable *declared* as the product: the name itself, the
        name without an ``L-``/``D-`` prefix (``L-tryptophan`` -> ``tryptophan``) or a variable
        whose registry description starts with it; else ``None``.
    """
    measured = set(measured)
    reg = registry()
    if "titer" in measured:
        return "titer"
    kind_product = sorted(v for v in measured if v in reg and reg[v].kind == "product")
    if kind_product:
        return kind_product[0]
    for name in declared:
        text = str(name).strip().lower()
        bare = text[2:] if text[:2] in ("l-", "d-") else text
        for v in sorted(measured):
            if v in (text, bare) or (v in reg and reg[v].description.lower().startswith(text)):
                return v
    return None


# ---------------------------------------------------------------------------------------------
# conversion to canonical units
# ---------------------------------------------------------------------------------------------
def to_canonical(
    df: pl.DataFrame,
    *,
    variable_col: str = "variable",
    value_col: str = "value",
    unit_col: str = "unit",
    file: str | None = None,
    line_col: str | None = None,
    keep_raw: bool = False,
) -> CheckedFrame:
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
    CheckedFrame
        ``frame``: the converted frame (the same object when every unit is already canonical);
        ``issues``: units that cannot be converted and missing units, one per variable and unit
        with the number of rows and the first of them, for the caller to raise.

    Notes
    -----
    Works per ``(variable, unit)`` group: one pint conversion per group, one vectorised
    multiply-add per row (``value_canonical = value * scale + offset``, see
    :func:`bioworkbench.units.conversion`). Rows whose variable is unknown are left as they are
    (the schema check reports them).
    """
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
            message = f"no unit for {var}; expected {v.unit} or a unit convertible to it."
            issues.append(_unit_issue(_rows_of(df, variable_col, unit_col, var, unit, line_col), message, file))
            continue
        try:
            scale, offset = conversion(str(unit), v.unit, v.molar_mass)
        except ConfigError as exc:
            examples = _examples(v)
            message = (
                f"found {unit!r} for {var}; expected a unit convertible to {v.unit}"
                f"{' (' + examples + ')' if examples else ''}. ({exc})"
            )
            issues.append(_unit_issue(_rows_of(df, variable_col, unit_col, var, unit, line_col), message, file))
            continue
        rows.append((var, unit, scale, offset, v.unit))
    if not rows:
        return CheckedFrame(df, issues)
    return CheckedFrame(_apply(df, rows, variable_col, value_col, unit_col, keep_raw=keep_raw), issues)


def _apply(
    df: pl.DataFrame, rows: list[tuple], variable_col: str, value_col: str, unit_col: str, *, keep_raw: bool
) -> pl.DataFrame:
    """Apply the ``(variable, unit, scale, offset, canonical)`` conversions of ``rows`` to ``df``."""
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
    return (
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


def conversions(df: pl.DataFrame, *, variable_col: str = "variable", unit_col: str = "unit") -> pl.DataFrame:
    """The conversions :func:`to_canonical` would apply to ``df``.

    Parameters
    ----------
    df
        A frame with a variable and a unit column.
    variable_col, unit_col
        Their names.

    Returns
    -------
    polars.DataFrame
        ``variable, unit, rows, canonical, scale, offset``: one row per ``(variable, unit)``
        group that would be converted, sorted by variable and unit. Groups that cannot be
        converted are left out (:func:`to_canonical` reports them).
    """
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


def _examples(v: Variable) -> str:
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


def _unit_issue(bad: pl.DataFrame, message: str, file: str | None) -> Issue:
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
    return Issue(
        message + more,
        file=src_file,
        line=line,
        column="unit",
        batch=batches[0] if len(batches) == 1 else None,
    )

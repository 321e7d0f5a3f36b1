"""Unit parsing and conversion, with pint.

:func:`conversion` gives one scale (and, for temperatures, an offset) per pair of units, cached, so
that callers convert whole columns per ``(variable, unit)`` group, never per row. Mass and molar
concentrations convert through a molar mass (``g/L`` of glucose -> ``mmol/L`` with 180.16 g/mol).
A unit that cannot be converted is an error, never a guess.

Unit spellings found in instrument and bioreactor exports are normalised first: ``10^6 cells/mL``,
``E6 cells/mL``, ``x10^6/mL``, ``°C``, ``µm``, ``mM``, ``% air sat``, ``pH units``.

Layer: imports :mod:`bioworkbench.errors` only (pint when first needed). Converting a frame to each
variable's canonical unit needs the variable registry and lives one layer up, in
:func:`bioworkbench.variables.to_canonical`; ``bioworkbench.units.to_canonical`` and
``bioworkbench.units.conversions`` still resolve to it, for code written before the move.
"""

from __future__ import annotations

import functools
import importlib
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from bioworkbench.errors import ConfigError

__all__ = ["Conversion", "ParsedUnit", "canonical_unit_label", "conversion", "parse_unit", "split_header", "ureg"]

#: names that moved to :mod:`bioworkbench.variables` (resolved lazily, see :func:`__getattr__`)
_MOVED = {"to_canonical": "bioworkbench.variables", "conversions": "bioworkbench.variables"}


def __getattr__(name: str) -> Any:
    """``bioworkbench.units.to_canonical`` and ``.conversions``: moved to :mod:`bioworkbench.variables`.

    Kept for compatibility only; resolved when first used, so that this module never imports the
    layer above it.
    """
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
def ureg() -> Any:
    """The package's pint registry, made on first use.

    Returns
    -------
    pint.UnitRegistry
        With ``cell`` and ``osmole`` added as base dimensions and ``air_saturation`` as a percent;
        offset units (°C) convert to base units automatically.
    """
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

    #: the unit as given
    text: str
    #: for labels that are not physical units (``"pH"``, ``"AU"``); ``None`` otherwise
    label: str | None
    #: pint Quantity of magnitude 1 x scale (``None`` for labels other than dimensionless ``"1"``)
    quantity: object | None


class Conversion(NamedTuple):
    """``value_in_target = value * scale + offset``.

    Attributes
    ----------
    scale
        Factor applied to the value.
    offset
        Added after scaling (non-zero for temperature scales only).
    """

    scale: float
    offset: float


_HEADER_UNIT = re.compile(r"^(?P<name>.*?)\s*[\[(](?P<unit>[^\[\]()]+)[\])]\s*$")


def split_header(header: str) -> tuple[str, str | None]:
    """A column header and the unit written in it: ``"Glucose [g/L]"`` -> ``("Glucose", "g/L")``.

    Parameters
    ----------
    header
        A column header; the unit, when there is one, is in square brackets or parentheses at its
        end (``"Time (h)"``, ``"Titer [mg/L]"``).

    Returns
    -------
    tuple[str, str | None]
        The name and the unit, both stripped; the unit is ``None`` when the header has none. The
        bracket need not hold a unit (``"Glucose (YSI)"`` gives ``"YSI"``): callers check it with
        :func:`parse_unit`.
    """
    m = _HEADER_UNIT.match(header.strip())
    if m:
        return m.group("name").strip(), m.group("unit").strip()
    return header.strip(), None


@functools.cache
def parse_unit(unit: str) -> ParsedUnit:
    """Parse a unit string as written in an export (normalised first, see the module docstring).

    Parameters
    ----------
    unit
        ``"10^6 cells/mL"``, ``"g/L"``, ``"°C"``, ``"pH"``...

    Returns
    -------
    ParsedUnit

    Raises
    ------
    ConfigError
        The unit is missing or pint does not understand it (the message names it and pint's reason).
    """
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
    """The string stored in ``observations.unit`` for a canonical unit.

    Parameters
    ----------
    unit
        A variable's canonical unit, as in the registry.

    Returns
    -------
    str
        The same string: a campaign stores canonical units as the registry spells them.
    """
    return unit


@functools.cache
def conversion(unit: str, target: str, molar_mass: float | None = None) -> Conversion:
    """How to convert values in ``unit`` to ``target``.

    Parameters
    ----------
    unit, target
        Unit strings (:func:`parse_unit`).
    molar_mass
        g/mol, to convert between mass and molar concentrations (``g/L`` <-> ``mmol/L``).

    Returns
    -------
    Conversion
        ``(scale, offset)`` with ``value_in_target = value * scale + offset`` (the offset is
        non-zero only between offset units such as °C and K).

    Raises
    ------
    ConfigError
        If ``unit`` cannot be converted to ``target`` (different dimensions and no molar mass that
        bridges mass and amount of substance).
    """
    src, dst = parse_unit(unit), parse_unit(target)
    if src.quantity is None or dst.quantity is None:
        if src.label == dst.label:
            return Conversion(1.0, 0.0)
        raise ConfigError(f"cannot convert {unit!r} to {target!r}.")
    reg = ureg()
    qs, qd = src.quantity, dst.quantity
    if qs.dimensionality == qd.dimensionality:
        if _is_offset(qs) or _is_offset(qd):
            u_src, u_dst = qs.units, qd.units
            zero = reg.Quantity(0.0, u_src).to(u_dst).magnitude
            one = reg.Quantity(1.0, u_src).to(u_dst).magnitude
            return Conversion(float(one - zero), float(zero))
        return Conversion(float((qs / qd).to("").magnitude), 0.0)
    if molar_mass is not None:
        mass, substance = reg.Quantity("g/L").dimensionality, reg.Quantity("mol/L").dimensionality
        mm = reg.Quantity(molar_mass, "g/mol")
        if qs.dimensionality == mass and qd.dimensionality == substance:
            return Conversion(float((qs / mm / qd).to("").magnitude), 0.0)
        if qs.dimensionality == substance and qd.dimensionality == mass:
            return Conversion(float((qs * mm / qd).to("").magnitude), 0.0)
    raise ConfigError(f"cannot convert {unit!r} ({qs.dimensionality}) to {target!r} ({qd.dimensionality}).")


def _is_offset(q) -> bool:
    return (
        not q.units._ok_for_muldiv()
        if hasattr(q.units, "_ok_for_muldiv")
        else ("degree_Celsius" in str(q.units) or "degree_Fahrenheit" in str(q.units))
    )

"""What every kinetics computation shares: units, option checks, the observations used, the warning.

The units of every quantity follow from the biomass variable's canonical unit and the time unit
(:func:`units`); the observations are the campaign's offline ones (:meth:`bioworkbench.Campaign.offline`),
flagged rows left out on request and counted in the one warning a computation gives.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import polars as pl

from bioworkbench.checks import describe_type, require_choice
from bioworkbench.errors import ArgumentError, BioWorkbenchWarning, suggest
from bioworkbench.variables import biomass_choices, registry

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = ["OUTPUT_SCHEMA", "RATE_VARIABLES", "TIME_UNITS", "units"]

#: analytes whose specific rates are computed when measured (any registered molar
#: concentration is included too)
RATE_VARIABLES = ("glucose", "lactate", "glutamine", "glutamate", "ammonium", "titer")

#: hours per unit of the rates' time axis
TIME_UNITS = {"h": 1.0, "d": 24.0}

OUTPUT_SCHEMA = {
    "batch_id": pl.String,
    "time_h": pl.Float64,
    "variable": pl.String,
    "value": pl.Float64,
    "unit": pl.String,
    "method": pl.String,
}

# biomass canonical unit -> integral, q (molar analyte), q (mass analyte), Y_X/S; {t} = time unit.
# Amounts: X [unit] x V [mL] = 1e6 cells | mg dry weight | AU*mL.
_BIOMASS_UNITS = {
    "1e6 cells/mL": ("1e6 cells*{t}/mL", "pmol/cell/{t}", "pg/cell/{t}", "1e9 cells/g"),
    "g/L": ("g*{t}/L", "mmol/g/{t}", "mg/g/{t}", "g/g"),
    "AU": ("AU*{t}", "mmol/(AU*L)/{t}", "mg/(AU*L)/{t}", "AU*L/g"),
}
# analyte canonical unit -> (molar?, amount in µmol or µg per (unit x mL))
_ANALYTE_UNITS = {"mmol/L": (True, 1.0), "mg/L": (False, 1.0), "g/L": (False, 1000.0)}


def units(biomass: str, *, time_unit: str | None = None) -> dict[str, str]:
    """The units :func:`compute` gives on a biomass variable.

    Parameters
    ----------
    biomass
        A biomass variable (:func:`bioworkbench.variables.biomass_choices`).
    time_unit
        ``"h"`` or ``"d"`` (default: ``"d"`` for cell counts, ``"h"`` otherwise).

    Returns
    -------
    dict
        ``time_unit``, ``integral``, ``mu``, ``doubling_time``, ``q_molar`` (rates of analytes
        in mmol/L), ``q_mass`` (analytes in mg/L or g/L), ``yield_xs``, ``yield_ps``,
        e.g. ``{"integral": "g*h/L", "mu": "1/h", "q_molar": "mmol/g/h", "yield_xs": "g/g", ...}``.

    Raises
    ------
    ArgumentError
        ``biomass`` is not a biomass variable, or ``time_unit`` not ``"h"``/``"d"``.
    """
    biomass = require_choice(biomass, biomass_choices(), function="kinetics.units", argument="biomass")
    unit = registry()[biomass].unit
    if time_unit is None:
        time_unit = "d" if unit == "1e6 cells/mL" else "h"
    time_unit = require_choice(time_unit, TIME_UNITS, function="kinetics.units", argument="time_unit")
    integral, q_molar, q_mass, y_xs = (u.format(t=time_unit) for u in _BIOMASS_UNITS[unit])
    return {
        "time_unit": time_unit,
        "integral": integral,
        "mu": f"1/{time_unit}",
        "doubling_time": "h",
        "q_molar": q_molar,
        "q_mass": q_mass,
        "yield_xs": y_xs,
        "yield_ps": "g/g",
    }


def _offline(campaign: Campaign, *, exclude_flagged: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Offline observations with a value (flagged ones left out on request), and the flagged
    offline observations left out (empty when ``exclude_flagged`` is false)."""
    keep = ("batch_id", "time_h", "variable", "value")
    obs = campaign.offline(include_flagged=not exclude_flagged).select(keep)
    flagged = campaign.flagged(online=False) if exclude_flagged else campaign.observations.clear()
    return obs, flagged.select(keep)


def _flag_note(flagged: pl.DataFrame, used: set[str] | None = None) -> list[str]:
    """The note counting the flagged observations left out, of the variables ``used`` (all: None)."""
    if used is not None:
        flagged = flagged.filter(pl.col("variable").is_in(sorted(used)))
    if flagged.is_empty():
        return []
    by = flagged.group_by("variable").len().sort("variable").iter_rows()
    return [f"{flagged.height} flagged offline observation(s) excluded ({', '.join(f'{v}: {n}' for v, n in by)})."]


def _warn(notes: list[str], *, stacklevel: int = 3) -> None:
    """One :class:`BioWorkbenchWarning` for everything a computation left out or could not do."""
    if notes:
        warnings.warn("kinetics: " + " ".join(notes), BioWorkbenchWarning, stacklevel=stacklevel)


def _require_bool(value: Any, *, function: str, argument: str) -> bool:
    if not isinstance(value, bool):
        raise ArgumentError(f"{function}: {argument} must be True or False; got {describe_type(value)}.")
    return value


def _require_names(value: Any, *, function: str, argument: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise ArgumentError(
            f"{function}: {argument} must be a list of variable names; got {describe_type(value)}. "
            f"Write {argument}=[{value!r}]."
        )
    if not isinstance(value, list | tuple | set | frozenset) or not all(isinstance(v, str) for v in value):
        raise ArgumentError(f"{function}: {argument} must be a list of variable names; got {describe_type(value)}.")
    return list(dict.fromkeys(value))


def _require_analyte(value: Any, *, function: str, argument: str) -> str:
    reg = registry()
    if not isinstance(value, str) or value not in reg:
        raise ArgumentError(
            f"{function}: {argument} must be a registered variable name; got {describe_type(value)}. "
            + suggest(str(value), sorted(reg), what="Variables")
        )
    if reg[value].unit not in _ANALYTE_UNITS:
        raise ArgumentError(
            f"{function}: {argument} {value!r} is stored in {reg[value].unit}; mass balances need a "
            f"concentration in {', '.join(_ANALYTE_UNITS)}."
        )
    return value


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=OUTPUT_SCHEMA)

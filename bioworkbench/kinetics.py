"""Bioprocess kinetics with fed-batch volume bookkeeping: integral of biomass, μ, doubling time,
specific rates and yields — on viable cells (VCD), dry cell weight (CDW) or optical density (OD).

All computations are vectorised polars over ``(batch_id, variable)`` groups; there is no Python
loop over rows or batches. Conventions (stated once, used everywhere):

* ``X`` is the *biomass* concentration: by default the campaign's
  :func:`~bioworkbench.outcomes.biomass_variable` (``vcd``, else ``cdw``, else ``od600``, else
  another registered cell density); ``compute(..., biomass="cdw")`` chooses. Its canonical unit
  sets the units: cell counts (1e6 cells/mL) give rates per cell, dry weight (g/L) per gram of dry
  weight, OD (AU) per OD unit and litre.
* Time is ``time_h`` (hours since inoculation); rates are per day or per hour
  (``time_unit="d"|"h"``; default: days for cell counts, as CHO practice; hours for dry weight
  and OD, as microbial practice). ``Δt = Δt_h / 24`` or ``Δt_h``. Every row's ``unit`` says which.
* ``V_i`` is the working volume *just before* the sample at ``t_i``: the ``volume`` observation
  when there is one, else ``initial_volume_ml`` plus every addition (feed, bolus, base) minus
  every removal (sample, harvest) strictly before ``t_i``. Samples are taken before additions at
  the same time, so an addition at ``t_i`` counts for the next interval.
* ``s_i`` is the volume removed by the sample at ``t_i`` (sum of ``sample`` and ``harvest``
  events at exactly that time; 0 when there is none).
* Specific rates are *net* and signed: positive = produced, negative = consumed.

References
----------
.. [1] Klein T., Heinzel N., Kroll P., et al. (2015). Quantification of cell lysis during CHO
   bioprocesses: impact on cell count, growth kinetics and productivity. J. Biotechnol. 207,
   67–76 (cell-number based μ and q for fed-batch with sampling).
.. [2] Sidoli F.R., Mantalaris A., Asprey S.P. (2004). Modelling of mammalian cells and cell
   culture processes. Cytotechnology 44, 27–46 (specific rates from mass balances).
.. [3] Villadsen J., Nielsen J., Lidén G. (2011). Bioreaction Engineering Principles, 3rd ed.
   Springer, New York (yield coefficients as ratios of rates, ``Y_sx = r_x / (−r_s)``, and the
   mass balances of a fed-batch reactor: what is consumed = what was fed − what accumulated −
   what left the reactor).
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import polars as pl

from bioworkbench.checks import describe_type, require_campaign, require_choice, require_frame, require_number
from bioworkbench.errors import ArgumentError, BioWorkbenchWarning, SchemaError
from bioworkbench.outcomes import _choose_biomass, _choose_product, _declared_products, biomass_choices
from bioworkbench.schema import ADDITIONS, REMOVALS, registry, suggest

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = ["RATE_VARIABLES", "TIME_UNITS", "compute", "qp_regression", "units", "volumes", "wide"]

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
        A biomass variable (:func:`bioworkbench.outcomes.biomass_choices`).
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
    obs = campaign.observations.filter(pl.col("source") != "online")
    flagged = obs.filter(pl.col("flag").is_not_null()) if exclude_flagged else obs.clear()
    if exclude_flagged:
        obs = obs.filter(pl.col("flag").is_null())
    keep = ("batch_id", "time_h", "variable", "value")
    return obs.filter(pl.col("value").is_not_null()).select(keep), flagged.select(keep)


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


def _events(campaign: Campaign) -> pl.DataFrame:
    return campaign.events.select("batch_id", "time_h", "event", pl.col("volume_ml").fill_null(0.0), "medium")


def _cum_at(
    points: pl.DataFrame,
    steps: pl.DataFrame,
    value: str,
    *,
    by: list[str],
    inclusive: bool,
    name: str,
) -> pl.DataFrame:
    """Add ``name`` = sum of ``steps[value]`` before (``inclusive``: up to) each point's time.

    ``steps`` has ``by`` + ``time_h`` + ``value``; the cumulative sum is taken per ``by`` group and
    looked up with an as-of join, so no Python loop is needed.
    """
    if steps.is_empty():
        return points.with_columns(pl.lit(0.0).alias(name))
    cum = (
        steps.group_by([*by, "time_h"])
        .agg(pl.col(value).sum())
        .sort("time_h")
        .with_columns(pl.col(value).cum_sum().over(by).alias(name))
        .select(*by, pl.col("time_h").alias("_t_step"), name)
        .sort("_t_step")
    )
    out = (
        points.with_row_index("_ord")
        .sort("time_h")
        .join_asof(
            cum,
            left_on="time_h",
            right_on="_t_step",
            by=by,
            strategy="backward",
            allow_exact_matches=inclusive,
            check_sortedness=False,
        )
        .sort("_ord")
        .drop("_ord", "_t_step")
        .with_columns(pl.col(name).fill_null(0.0))
    )
    return out


def volumes(campaign: Campaign, times: pl.DataFrame | None = None) -> pl.DataFrame:
    """Working volume just before each sample time, and the volume the sample removed.

    Parameters
    ----------
    campaign
        A :class:`~bioworkbench.Campaign`.
    times
        ``batch_id, time_h`` at which to evaluate (default: every offline sample time; flagged
        observations excluded, with one :class:`BioWorkbenchWarning` saying how many).

    Returns
    -------
    polars.DataFrame
        ``batch_id, time_h, volume_ml, sample_ml, volume_source`` where ``volume_source`` is
        ``observed`` (a ``volume`` observation), ``events`` (``initial_volume_ml`` + additions −
        removals strictly before ``time_h``) or ``unknown`` (no initial volume: concentrations
        are then treated as if the volume were constant).

    Raises
    ------
    ArgumentError
        ``campaign`` is not a Campaign or ``times`` not a frame.
    SchemaError
        ``times`` lacks ``batch_id`` or ``time_h``.

    Notes
    -----
    ``V(t) = V0 + Σ_{t_e < t} v_add − Σ_{t_e < t} v_removed`` (mL); events at ``t`` itself happen
    after the sample (additions) or are the sample (removals).
    """
    campaign = require_campaign(campaign, function="kinetics.volumes")
    if times is None:
        obs, flagged = _offline(campaign, exclude_flagged=True)
        _warn(_flag_note(flagged))
        times = obs.select("batch_id", "time_h").unique()
    else:
        times = require_frame(times, function="kinetics.volumes", argument="times", columns=("batch_id", "time_h"))
    return _volumes(campaign, times)


def _volumes(campaign: Campaign, times: pl.DataFrame) -> pl.DataFrame:
    times = times.select("batch_id", "time_h").unique().sort("batch_id", "time_h")
    ev = _events(campaign)
    signed = ev.filter(pl.col("event").is_in(ADDITIONS + REMOVALS)).select(
        "batch_id",
        "time_h",
        _dv=pl.when(pl.col("event").is_in(ADDITIONS)).then(pl.col("volume_ml")).otherwise(-pl.col("volume_ml")),
    )
    out = _cum_at(times, signed, "_dv", by=["batch_id"], inclusive=False, name="_net")
    samples = (
        ev.filter(pl.col("event").is_in(REMOVALS))
        .group_by("batch_id", "time_h")
        .agg(sample_ml=pl.col("volume_ml").sum())
    )
    v_obs = (
        campaign.observations.filter(
            (pl.col("variable") == "volume") & pl.col("flag").is_null() & pl.col("value").is_not_null()
        )
        .group_by("batch_id", "time_h")
        .agg(_v_obs=pl.col("value").first())
    )
    v0 = campaign.batches.select("batch_id", _v0=pl.col("initial_volume_ml"))
    return (
        out.join(v0, on="batch_id", how="left")
        .join(samples, on=["batch_id", "time_h"], how="left")
        .join(v_obs, on=["batch_id", "time_h"], how="left")
        .with_columns(
            sample_ml=pl.col("sample_ml").fill_null(0.0),
            volume_ml=pl.coalesce("_v_obs", pl.col("_v0") + pl.col("_net")),
            volume_source=pl.when(pl.col("_v_obs").is_not_null())
            .then(pl.lit("observed"))
            .when(pl.col("_v0").is_not_null())
            .then(pl.lit("events"))
            .otherwise(pl.lit("unknown")),
        )
        .select("batch_id", "time_h", "volume_ml", "sample_ml", "volume_source")
        .sort("batch_id", "time_h")
    )


# ---------------------------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# kinetics
# ---------------------------------------------------------------------------------------------
def compute(
    campaign: Campaign,
    *,
    variables: list[str] | None = None,
    exclude_flagged: bool = True,
    biomass: str | None = None,
    time_unit: str | None = None,
    substrate: str | None = None,
    product: str | None = None,
) -> pl.DataFrame:
    """Kinetics of every batch: integral of biomass, μ, doubling time, specific rates, cumulative
    amounts and (for microbial biomass, or on request) yields.

    Parameters
    ----------
    campaign
        A :class:`~bioworkbench.Campaign` with offline biomass observations.
    variables
        Analytes for specific rates (default: every measured registry variable of kind
        ``product`` and every measured molar concentration of the registry).
    exclude_flagged
        Leave flagged observations out (default; the warning says how many).
    biomass
        The biomass variable ``X`` (default: :func:`bioworkbench.outcomes.biomass_variable`:
        ``vcd``, else ``cdw``, else ``od600``, else another registered cell density). The
        choice is stated in every row's ``method`` and in the names ``i<biomass>``.
    time_unit
        ``"d"`` or ``"h"`` for rates and integrals (default: ``"d"`` for cell counts, ``"h"`` for
        dry weight and OD).
    substrate
        The substrate of the yields (default: ``glucose`` when measured and the biomass is dry
        weight or OD; none for cell counts, whose outputs stay as they were). Pass
        ``substrate="glucose"`` to get yields of a CHO campaign.
    product
        The product of ``Y_P/S`` (default: :func:`bioworkbench.outcomes.product_variable`).

    Returns
    -------
    polars.DataFrame
        Long frame ``batch_id, time_h, variable, value, unit, method``, one row per batch, sample
        interval and quantity, at the *end* time of the interval (``t`` = the time unit, ``X`` the
        biomass; units shown for VCD | CDW | OD):

        ========================  ========================================  ======================================
        variable                  unit                                      definition
        ========================  ========================================  ======================================
        ``i<biomass>``            1e6 cells·t/mL | g·t/L | AU·t             Σ (X_{i-1} + X_i)/2 · Δt (trapezoid;
                                                                            0 at the first sample); ``ivcd``
        ``mu``                    1/t                                       ln((X_i·V_i + removed_i) / (X_{i-1}·
                                                                            (V_{i-1} − s_{i-1}))) / Δt
        ``doubling_time``         h                                         ln 2 / μ (in hours), for μ > 0 only
        ``q_<analyte>``           pmol/cell/t | mmol/g/t | mmol/(AU·L)/t    net_i / IXN_i (molar analytes)
        ``qp``, ``q_<analyte>``   pg/cell/t | mg/g/t | mg/(AU·L)/t          net_i / IXN_i (titer: ``qp``; other
                                                                            analytes in mg/L or g/L)
        ``cum_<analyte>``         mmol (mass analytes: mg)                  Σ net over the intervals so far
        ``yield_xs``              1e9 cells/g | g/g | AU·L/g                ΔX_i / consumed_i (interval)
        ``cum_yield_xs``          as ``yield_xs``                           Σ ΔX / Σ consumed since the first
                                                                            sample with both
        ``yield_ps``              g/g                                       formed_P,i / consumed_i (interval)
        ``cum_yield_ps``          g/g                                       Σ formed_P / Σ consumed
        ========================  ========================================  ======================================

        with ``removed_i`` the biomass taken by samples strictly inside the interval (at linearly
        interpolated X), ``net_i = C_i·V_i − C_{i-1}·(V_{i-1} − s_{i-1}) − Σ_feeds v·c_medium +
        removed_i`` (amount before this sample, minus amount after the previous sample, minus what
        feeds and boluses in ``[t_{i-1}, t_i)`` brought, plus what samples in between removed) and
        ``IXN_i`` the trapezoid integral of the biomass *amount* X·V over the interval
        (after-sample amount at its start, before-sample amount at its end).

        Units: X·V is 1e6 cells (1e6 cells/mL × mL), mg dry weight (g/L × mL) or AU·mL; C·V is
        µmol (mmol/L × mL) or µg (mg/L × mL). Hence µmol / (1e6 cells·t) = pmol/cell/t,
        µmol / (mg·t) = mmol/g/t, µg / (mg·t) = mg/g/t, µmol / (AU·mL·t) = mmol/(AU·L)/t.

        Yields follow Villadsen, Nielsen & Lidén [3] with fed-batch mass balances: biomass formed
        ``ΔX_i = X_i·V_i + removed_i − X_{i-1}·(V_{i-1} − s_{i-1})``; substrate consumed
        ``consumed_i = fed_i − accumulated_i − removed by samples_i = −net_i(S)``; product formed
        ``net_i(P)``; masses in mg (molar amounts × molar mass), so ``yield_xs`` on dry weight is
        g/g, on cells 1e6 cells/mg = 1e9 cells/g. An interval is one between consecutive samples
        with X, S (and P) all measured; intervals with zero consumption give no yield.

    Raises
    ------
    ArgumentError
        ``campaign`` is not a Campaign, or an option is of the wrong kind (``variables="glucose"``,
        ``biomass="biomass"``, ``time_unit="hours"``...): the message lists the valid choices.
    SchemaError
        When a variable, biomass, substrate or product asked for is not measured.

    Notes
    -----
    An interval needs the analyte *and* X at both of its ends; a missing sample merges two
    intervals. Where a batch has no ``initial_volume_ml`` and no ``volume`` observations, volumes
    are unknown and treated as constant (``method`` says so); feeds then cannot be credited.
    Additions without a medium (e.g. base of unknown composition) change the volume but bring
    nothing into the balances; ``method`` gives their volume. Everything left out (flagged rows,
    batches without biomass, an empty result and why) is said in ONE
    :class:`~bioworkbench.BioWorkbenchWarning`; silence it locally with
    ``warnings.catch_warnings()`` and ``warnings.simplefilter("ignore", bw.BioWorkbenchWarning)``.
    """
    kin, notes = _compute(
        campaign,
        variables=variables,
        exclude_flagged=exclude_flagged,
        biomass=biomass,
        time_unit=time_unit,
        substrate=substrate,
        product=product,
        function="kinetics.compute",
    )
    _warn(notes)
    return kin


def _compute(
    campaign: Campaign,
    *,
    variables: list[str] | None,
    exclude_flagged: bool,
    biomass: str | None,
    time_unit: str | None,
    substrate: str | None,
    product: str | None,
    function: str,
) -> tuple[pl.DataFrame, list[str]]:
    """:func:`compute` without the warning: the frame and the notes of what was left out."""
    campaign = require_campaign(campaign, function=function)
    exclude_flagged = _require_bool(exclude_flagged, function=function, argument="exclude_flagged")
    variables = _require_names(variables, function=function, argument="variables")
    if biomass is not None:
        biomass = require_choice(biomass, biomass_choices(), function=function, argument="biomass")
    if time_unit is not None:
        time_unit = require_choice(time_unit, TIME_UNITS, function=function, argument="time_unit")
    if substrate is not None:
        substrate = _require_analyte(substrate, function=function, argument="substrate")
    if product is not None:
        product = _require_analyte(product, function=function, argument="product")

    obs, flagged = _offline(campaign, exclude_flagged=exclude_flagged)
    notes: list[str] = []
    reg = registry()
    measured = set(obs["variable"].unique().to_list())
    unflagged = " unflagged" if exclude_flagged else ""

    def not_measured(what: str, names: list[str]) -> SchemaError:
        return SchemaError(
            f"kinetics: no{unflagged} offline observations of {', '.join(names)} ({what}). "
            f"Measured: {', '.join(sorted(measured)) or 'nothing'}."
        )

    # ---- the biomass ---------------------------------------------------------------------------
    if biomass is None:
        biomass = _choose_biomass(measured)
        if biomass is None:
            found = ", ".join(sorted(measured)) or "nothing"
            after = " (after excluding flagged rows)" if flagged.height else ""
            notes.append(
                f"nothing computed: no biomass variable is measured offline{after} "
                f"(looked for {', '.join(biomass_choices())}; found {found}). Pass biomass=... or register the "
                "variable with kind='cell_density'."
            )
            return _empty(), _flag_note(flagged) + notes
    elif biomass not in measured:
        raise not_measured("the biomass asked for", [biomass])
    u = units(biomass, time_unit=time_unit)
    time_unit = u["time_unit"]
    per = TIME_UNITS[time_unit]
    is_count = reg[biomass].unit == "1e6 cells/mL"

    # ---- analytes, substrate and product ------------------------------------------------------
    if variables is None:
        variables = [
            v
            for v in reg
            if v in measured
            and v != biomass
            and reg[v].unit in _ANALYTE_UNITS
            and (reg[v].kind == "product" or (reg[v].kind == "concentration" and reg[v].molar_mass))
        ]
    else:
        missing = [v for v in variables if v not in measured]
        if missing:
            raise not_measured("variables asked for", missing)
        for v in variables:
            _require_analyte(v, function=function, argument="variables")
    if substrate is None:
        substrate = "glucose" if not is_count and "glucose" in measured and "glucose" != biomass else None
    elif substrate not in measured:
        raise not_measured("the substrate asked for", [substrate])
    if product is None:
        product = _choose_product(measured - {biomass}, _declared_products(campaign))
        if product is not None and reg[product].unit not in _ANALYTE_UNITS:
            product = None
    elif product not in measured:
        raise not_measured("the product asked for", [product])
    yields_p = substrate is not None and product is not None and product != substrate
    balance = list(dict.fromkeys([*variables, *([substrate] if substrate else []), *([product] if yields_p else [])]))
    notes = _flag_note(flagged, {biomass, "volume", *balance}) + notes

    xb = obs.filter(pl.col("variable") == biomass).select("batch_id", "time_h", x="value")
    no_x = sorted(set(obs["batch_id"].unique().to_list()) - set(xb["batch_id"].unique().to_list()))
    if no_x:
        notes.append(
            f"{len(no_x)} batch(es) with offline data but no{unflagged} {biomass} sample have no kinetics: "
            f"{', '.join(no_x[:10])}{' …' if len(no_x) > 10 else ''}."
        )

    vol = _volumes(campaign, obs.select("batch_id", "time_h"))
    vol = vol.with_columns(
        volume_ml=pl.when(pl.col("volume_source") == "unknown").then(1.0).otherwise(pl.col("volume_ml")),
        sample_ml=pl.when(pl.col("volume_source") == "unknown").then(0.0).otherwise(pl.col("sample_ml")),
    )
    ev = _events(campaign)
    removals = ev.filter(pl.col("event").is_in(REMOVALS)).select(
        "batch_id", "time_h", _s0="volume_ml", _s1=pl.col("volume_ml") * pl.col("time_h")
    )

    # ---- biomass: integral, μ, cumulative biomass formed, integral of biomass amounts ----------
    cells = (
        xb.join(vol, on=["batch_id", "time_h"], how="left")
        .sort("batch_id", "time_h")
        .with_columns(
            n_before=pl.col("x") * pl.col("volume_ml"),
            n_after=pl.col("x") * (pl.col("volume_ml") - pl.col("sample_ml")),
        )
    )
    cells = _interval_removed(cells, removals, value="x")
    cells = (
        cells.with_columns(
            _dt=(pl.col("time_h") - pl.col("time_h").shift(1).over("batch_id")) / per,
            _x_prev=pl.col("x").shift(1).over("batch_id"),
            _n_after_prev=pl.col("n_after").shift(1).over("batch_id"),
        )
        .with_columns(
            _i_step=((pl.col("_x_prev") + pl.col("x")) / 2 * pl.col("_dt")).fill_null(0.0),
            _in_step=((pl.col("_n_after_prev") + pl.col("n_before")) / 2 * pl.col("_dt")).fill_null(0.0),
            _dx=(pl.col("n_before") + pl.col("_removed") - pl.col("_n_after_prev")).fill_null(0.0),
        )
        .with_columns(
            integral=pl.col("_i_step").cum_sum().over("batch_id"),
            ixn=pl.col("_in_step").cum_sum().over("batch_id"),
            x_formed=pl.col("_dx").cum_sum().over("batch_id"),
            mu=((pl.col("n_before") + pl.col("_removed")) / pl.col("_n_after_prev")).log() / pl.col("_dt"),
        )
    )
    vsrc = (
        pl.lit("volume: ")
        + pl.col("volume_source")
        + pl.when(pl.col("volume_source") == "unknown").then(pl.lit(" (treated as constant)")).otherwise(pl.lit(""))
    )
    unknown_add = (
        ev.filter(pl.col("event").is_in(ADDITIONS) & pl.col("medium").is_null() & (pl.col("volume_ml") > 0))
        .group_by("batch_id")
        .agg(_unk_ml=pl.col("volume_ml").sum())
    )
    not_credited = (
        pl.when(pl.col("_unk_ml").is_not_null())
        .then(pl.format("; {} mL added without a medium composition, not credited", pl.col("_unk_ml").round(1)))
        .otherwise(pl.lit(""))
    )
    first = pl.col("_dt").is_null()
    x_is = f"X = {biomass}"
    out = [
        cells.select(
            "batch_id",
            "time_h",
            variable=pl.lit(f"i{biomass}"),
            value="integral",
            unit=pl.lit(u["integral"]),
            method=pl.lit(f"trapezoid of X over time, {x_is}"),
        ),
        cells.filter(~first & pl.col("mu").is_finite()).select(
            "batch_id",
            "time_h",
            variable=pl.lit("mu"),
            value="mu",
            unit=pl.lit(u["mu"]),
            method=pl.lit(f"ln((X_i V_i + X sampled inside) / (X_(i-1) V_(i-1) after sampling)) / dt, {x_is}; ") + vsrc,
        ),
        cells.filter(~first & (pl.col("mu") > 0) & pl.col("mu").is_finite()).select(
            "batch_id",
            "time_h",
            variable=pl.lit("doubling_time"),
            value=per * math.log(2) / pl.col("mu"),
            unit=pl.lit("h"),
            method=pl.lit("ln2 / mu, in hours"),
        ),
    ]

    # ---- mass balances of analytes (all variables at once, long format) -----------------------
    if balance:
        info = pl.DataFrame(
            {
                "variable": balance,
                "_f": [_ANALYTE_UNITS[reg[v].unit][1] for v in balance],
                "_molar": [_ANALYTE_UNITS[reg[v].unit][0] for v in balance],
                "_mg": [_mg_per(v) for v in balance],
            },
            schema={"variable": pl.String, "_f": pl.Float64, "_molar": pl.Boolean, "_mg": pl.Float64},
        )
        ana = (
            obs.filter(pl.col("variable").is_in(balance))
            .join(info, on="variable")
            .select("batch_id", "time_h", "variable", "_molar", "_mg", c=pl.col("value") * pl.col("_f"))
            .join(cells.select("batch_id", "time_h", "ixn", "x_formed"), on=["batch_id", "time_h"], how="inner")
            .join(vol, on=["batch_id", "time_h"], how="left")
            .join(unknown_add, on="batch_id", how="left")
            .sort("batch_id", "variable", "time_h")
        )
        media = campaign.media.select("medium", "variable", _conc="concentration")
        added = (
            ev.filter(pl.col("event").is_in(ADDITIONS) & pl.col("medium").is_not_null())
            .join(media, on="medium", how="inner")
            .join(info.select("variable", "_f"), on="variable", how="inner")
            .select("batch_id", "variable", "time_h", _amt=pl.col("volume_ml") * pl.col("_conc") * pl.col("_f"))
        )
        ana = _cum_at(ana, added, "_amt", by=["batch_id", "variable"], inclusive=False, name="_added_cum")
        ana = _interval_removed(ana, removals, value="c", by=["batch_id", "variable"])
        g = ["batch_id", "variable"]
        ana = (
            ana.with_columns(
                _first=pl.col("time_h").shift(1).over(g).is_null(),
                _start_amt=(pl.col("c") * (pl.col("volume_ml") - pl.col("sample_ml"))).shift(1).over(g),
                _added=pl.col("_added_cum") - pl.col("_added_cum").shift(1).over(g),
                _ixn=pl.col("ixn") - pl.col("ixn").shift(1).over(g),
            )
            .with_columns(
                _net=pl.col("c") * pl.col("volume_ml") + pl.col("_removed") - pl.col("_start_amt") - pl.col("_added"),
            )
            .with_columns(_cum_net=pl.col("_net").fill_null(0.0).cum_sum().over(g))
        )
        rates = ana.filter(~pl.col("_first") & pl.col("variable").is_in(variables))
        is_titer = pl.col("variable") == "titer"
        balance_method = pl.lit(f"net mass balance / integral of X*V, {x_is}; ") + vsrc + not_credited
        out += [
            rates.filter(pl.col("_ixn") > 0).select(
                "batch_id",
                "time_h",
                variable=pl.when(is_titer).then(pl.lit("qp")).otherwise(pl.lit("q_") + pl.col("variable")),
                value=pl.col("_net") / pl.col("_ixn"),
                unit=pl.when(pl.col("_molar")).then(pl.lit(u["q_molar"])).otherwise(pl.lit(u["q_mass"])),
                method=balance_method,
            ),
            rates.select(
                "batch_id",
                "time_h",
                variable=pl.lit("cum_") + pl.col("variable"),
                value=pl.col("_cum_net") / 1000.0,
                unit=pl.when(pl.col("_molar")).then(pl.lit("mmol")).otherwise(pl.lit("mg")),
                method=pl.lit("cumulative net amount (positive = produced); ") + vsrc + not_credited,
            ),
        ]
        if substrate is not None:
            no_mass = [v for v in (substrate, product if yields_p else None) if v and math.isnan(_mg_per(v))]
            if no_mass:
                notes.append(f"no yields: {', '.join(no_mass)} has no molar mass in the registry to convert to mass.")
            else:
                out += _yields(ana, substrate=substrate, product=product if yields_p else None, u=u, vsrc=vsrc)
    frame = (
        pl.concat(out, how="vertical_relaxed")
        .sort("batch_id", "variable", "time_h")
        .select([pl.col(k).cast(v) for k, v in OUTPUT_SCHEMA.items()])
    )
    return frame, notes


def _mg_per(variable: str) -> float:
    """mg per amount unit of a balance (µmol of a molar analyte: M / 1000; µg: 1 / 1000); NaN when a
    molar analyte has no molar mass."""
    spec = registry()[variable]
    if _ANALYTE_UNITS[spec.unit][0]:
        return spec.molar_mass / 1000 if spec.molar_mass else math.nan
    return 1 / 1000


def _yields(ana: pl.DataFrame, *, substrate: str, product: str | None, u: dict[str, str], vsrc: pl.Expr) -> list:
    """Interval and cumulative ``Y_X/S`` (and ``Y_P/S``) from the cumulative balances of ``ana``."""
    cite = "Villadsen, Nielsen & Liden 2011"
    s = ana.filter(pl.col("variable") == substrate).select(
        "batch_id",
        "time_h",
        "x_formed",
        "volume_source",
        "_unk_ml",
        _s=pl.col("_cum_net") * pl.col("_mg"),  # mg of substrate, net (negative = consumed)
    )
    consumed = f"{substrate} consumed (fed - accumulated - removed by samples)"
    not_credited = (
        pl.when(pl.col("_unk_ml").is_not_null())
        .then(pl.format("; {} mL added without a medium composition, not credited", pl.col("_unk_ml").round(1)))
        .otherwise(pl.lit(""))
    )

    def ratio(frame: pl.DataFrame, num: str, name: str, unit: str, what: str) -> list[pl.DataFrame]:
        b = "batch_id"
        f = frame.sort(b, "time_h").with_columns(
            _dn=pl.col(num) - pl.col(num).shift(1).over(b),
            _ds=-(pl.col("_s") - pl.col("_s").shift(1).over(b)),
            _n0=pl.col(num) - pl.col(num).first().over(b),
            _s0=-(pl.col("_s") - pl.col("_s").first().over(b)),
        )
        f = f.filter(pl.col("_ds").is_not_null())
        tail = pl.lit(f"; {cite}; ") + vsrc + not_credited
        return [
            f.filter((pl.col("_dn") / pl.col("_ds")).is_finite()).select(
                "batch_id",
                "time_h",
                variable=pl.lit(name),
                value=pl.col("_dn") / pl.col("_ds"),
                unit=pl.lit(unit),
                method=pl.lit(f"{what} / {consumed}, over the interval") + tail,
            ),
            f.filter((pl.col("_n0") / pl.col("_s0")).is_finite()).select(
                "batch_id",
                "time_h",
                variable=pl.lit(f"cum_{name}"),
                value=pl.col("_n0") / pl.col("_s0"),
                unit=pl.lit(unit),
                method=pl.lit(f"{what} / {consumed}, since the first sample") + tail,
            ),
        ]

    out = ratio(s, "x_formed", "yield_xs", u["yield_xs"], "biomass formed")
    if product is not None:
        p = ana.filter(pl.col("variable") == product).select(
            "batch_id", "time_h", _p=pl.col("_cum_net") * pl.col("_mg")
        )
        out += ratio(
            s.join(p, on=["batch_id", "time_h"], how="inner"), "_p", "yield_ps", u["yield_ps"], f"{product} formed"
        )
    return out


def _interval_removed(
    df: pl.DataFrame, removals: pl.DataFrame, *, value: str, by: list[str] | None = None
) -> pl.DataFrame:
    """Add ``_removed``: amount taken by samples strictly between consecutive rows of a group.

    Concentration at an intermediate sample is interpolated linearly between the interval's ends:
    ``Σ s_j (C_{i-1} + (C_i − C_{i-1}) (t_j − t_{i-1}) / Δt)`` = ``S0·C_{i-1} + (C_i − C_{i-1})
    (S1 − t_{i-1} S0) / Δt`` with ``S0 = Σ s_j`` and ``S1 = Σ s_j t_j`` over the open interval.
    """
    by = by or ["batch_id"]
    for col in ("_s0", "_s1"):  # Σ s_j and Σ s_j t_j, before (lt) and up to (le) each row's time
        for inclusive, suffix in ((False, "_lt"), (True, "_le")):
            df = _cum_at(
                df,
                removals.select("batch_id", "time_h", col),
                col,
                by=["batch_id"],
                inclusive=inclusive,
                name=col + suffix,
            )
    t_prev = pl.col("time_h").shift(1).over(by)
    c_prev = pl.col(value).shift(1).over(by)
    s0 = pl.col("_s0_lt") - pl.col("_s0_le").shift(1).over(by)
    s1 = pl.col("_s1_lt") - pl.col("_s1_le").shift(1).over(by)
    removed = s0 * c_prev + (pl.col(value) - c_prev) * (s1 - t_prev * s0) / (pl.col("time_h") - t_prev)
    return (
        df.sort([*by, "time_h"])
        .with_columns(_removed=removed.fill_null(0.0))
        .drop("_s0_lt", "_s0_le", "_s1_lt", "_s1_le")
    )


def qp_regression(
    campaign: Campaign,
    *,
    start_h: float | None = None,
    end_h: float | None = None,
    exclude_flagged: bool = True,
) -> pl.DataFrame:
    """Specific productivity as the slope of titer against IVCD over a window, per batch.

    Parameters
    ----------
    campaign
        A :class:`~bioworkbench.Campaign` with offline ``vcd`` and ``titer``.
    start_h, end_h
        The window, hours since inoculation (default: every sample).
    exclude_flagged
        Leave flagged observations out (default; one warning says how many).

    Returns
    -------
    polars.DataFrame
        ``batch_id, qp, qp_se, r2, n, start_h, end_h`` with ``qp`` in pg/cell/d (the slope of
        titer [mg/L] on IVCD [1e6 cells·d/mL]: 1 mg/L per 1e6 cells·d/mL = 1 pg/cell/d), its
        standard error ``sqrt(SSE / (n − 2) / Sxx)`` and the coefficient of determination.

    Raises
    ------
    ArgumentError
        ``campaign`` is not a Campaign, or a window bound is not a number of hours.

    Notes
    -----
    Ordinary least squares ``titer = a + qp · IVCD`` on the samples with both values inside
    ``[start_h, end_h]``. Like the concentration-based literature method, it ignores dilution by
    feeds; use :func:`compute` (``qp``) for the mass-balance rate. Batches with fewer than 3
    points get nulls; a campaign without ``vcd`` or ``titer`` gets nulls for every batch and a
    warning saying which is missing.
    """
    fn = "kinetics.qp_regression"
    campaign = require_campaign(campaign, function=fn)
    start_h = require_number(start_h, function=fn, argument="start_h", allow_none=True, unit="h")
    end_h = require_number(end_h, function=fn, argument="end_h", allow_none=True, unit="h")
    exclude_flagged = _require_bool(exclude_flagged, function=fn, argument="exclude_flagged")
    obs, flagged = _offline(campaign, exclude_flagged=exclude_flagged)
    notes = _flag_note(flagged, {"vcd", "titer", "volume"})
    measured = set(obs["variable"].unique().to_list())
    missing = [v for v in ("vcd", "titer") if v not in measured]
    if missing:
        notes.append(f"qp_regression: no offline {' or '.join(missing)}; qp is null for every batch.")
        kin = _empty()
    else:
        kin, _ = _compute(
            campaign,
            variables=[],
            exclude_flagged=exclude_flagged,
            biomass="vcd",
            time_unit="d",
            substrate=None,
            product=None,
            function=fn,
        )
    _warn(notes)
    ivcd = kin.filter(pl.col("variable") == "ivcd").select("batch_id", "time_h", ivcd="value")
    titer = obs.filter(pl.col("variable") == "titer")
    d = titer.select("batch_id", "time_h", y="value").join(ivcd, on=["batch_id", "time_h"], how="inner")
    if start_h is not None:
        d = d.filter(pl.col("time_h") >= start_h)
    if end_h is not None:
        d = d.filter(pl.col("time_h") <= end_h)
    x, y = pl.col("ivcd"), pl.col("y")
    sxx = ((x - x.mean()) ** 2).sum()
    sxy = ((x - x.mean()) * (y - y.mean())).sum()
    syy = ((y - y.mean()) ** 2).sum()
    res = (
        d.group_by("batch_id")
        .agg(
            n=pl.len(),
            _sxx=sxx,
            _sxy=sxy,
            _syy=syy,
            start_h=pl.col("time_h").min(),
            end_h=pl.col("time_h").max(),
        )
        .with_columns(qp=pl.col("_sxy") / pl.col("_sxx"))
        .with_columns(
            _sse=pl.col("_syy") - pl.col("qp") * pl.col("_sxy"),
        )
        .with_columns(
            qp_se=pl.when(pl.col("n") > 2)
            .then((pl.col("_sse").clip(lower_bound=0) / (pl.col("n") - 2) / pl.col("_sxx")).sqrt())
            .otherwise(None),
            r2=1 - pl.col("_sse") / pl.col("_syy"),
        )
        .with_columns(pl.when(pl.col("n") >= 3).then(pl.col(c)).otherwise(None).alias(c) for c in ("qp", "qp_se", "r2"))
    )
    return (
        campaign.batches.select("batch_id")
        .join(
            res.select("batch_id", "qp", "qp_se", "r2", "n", "start_h", "end_h"),
            on="batch_id",
            how="left",
        )
        .with_columns(pl.col("n").fill_null(0))
    )


def wide(kinetics: pl.DataFrame, *, batch_id: str) -> pl.DataFrame:
    """One batch's kinetics as a table for people: one row per sample time (days), one column per
    quantity with its unit in the name.

    Parameters
    ----------
    kinetics
        The frame :func:`compute` returns.
    batch_id
        The batch to show.

    Returns
    -------
    polars.DataFrame
        ``day`` (time_h / 24, rounded to 0.01), then ``"<variable> (<unit>)"`` columns.

    Raises
    ------
    ArgumentError
        ``kinetics`` is not a frame (e.g. a Campaign) or ``batch_id`` not a text.
    SchemaError
        ``kinetics`` lacks the kinetics columns, or has no rows for ``batch_id`` (the batches it
        has are listed).
    """
    fn = "kinetics.wide"
    kinetics = require_frame(
        kinetics,
        function=fn,
        argument="kinetics",
        columns=("batch_id", "time_h", "variable", "value", "unit"),
        hint="Pass the frame bw.kinetics.compute(campaign) returns.",
    )
    if not isinstance(batch_id, str):
        raise ArgumentError(f"{fn}: batch_id must be a batch id (text); got {describe_type(batch_id)}.")
    k = kinetics.filter(pl.col("batch_id") == batch_id)
    if k.is_empty():
        raise SchemaError(
            f"no kinetics rows for batch {batch_id!r}. "
            + suggest(batch_id, kinetics["batch_id"].unique().to_list(), what="Batches with kinetics")
        )
    k = k.with_columns(name=pl.col("variable") + " (" + pl.col("unit") + ")")
    return (
        k.pivot(on="name", index="time_h", values="value", aggregate_function="first")
        .sort("time_h")
        .with_columns(day=(pl.col("time_h") / 24).round(2))
        .drop("time_h")
        .select("day", pl.exclude("day"))
    )

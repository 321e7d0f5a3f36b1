"""Kinetics of every batch (:func:`compute`): integral of biomass, μ, doubling time, specific rates,
cumulative amounts and yields, from fed-batch mass balances. Conventions and references:
:mod:`bioworkbench.kinetics`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from bioworkbench.checks import require_campaign, require_choice
from bioworkbench.errors import SchemaError
from bioworkbench.kinetics.basis import (
    _ANALYTE_UNITS,
    OUTPUT_SCHEMA,
    TIME_UNITS,
    _empty,
    _flag_note,
    _offline,
    _require_analyte,
    _require_bool,
    _require_names,
    _warn,
    units,
)
from bioworkbench.kinetics.volume import _cum_at, _events, _interval_removed, _volumes
from bioworkbench.schema import ADDITIONS, REMOVALS
from bioworkbench.variables import biomass_choices, choose_biomass, choose_product, registry

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = ["compute"]

#: how each row's volumes were known (a ``method`` suffix)
_VSRC = (
    pl.lit("volume: ")
    + pl.col("volume_source")
    + pl.when(pl.col("volume_source") == "unknown").then(pl.lit(" (treated as constant)")).otherwise(pl.lit(""))
)
#: the additions without a medium composition, which balances cannot credit (a ``method`` suffix)
_NOT_CREDITED = (
    pl.when(pl.col("_unk_ml").is_not_null())
    .then(pl.format("; {} mL added without a medium composition, not credited", pl.col("_unk_ml").round(1)))
    .otherwise(pl.lit(""))
)


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


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a kinetics computation works on, once the options are checked and the defaults chosen."""

    obs: pl.DataFrame  # offline observations used: batch_id, time_h, variable, value
    biomass: str
    u: dict[str, str]  # units(biomass, time_unit)
    per: float  # hours per time unit
    variables: list[str]  # analytes whose specific rates are reported
    substrate: str | None  # substrate of the yields
    product: str | None  # product of Y_P/S (None: no Y_P/S)
    balance: list[str]  # every analyte balanced: variables, substrate, product
    notes: list[str]


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
    plan = _plan(
        campaign,
        variables=variables,
        exclude_flagged=exclude_flagged,
        biomass=biomass,
        time_unit=time_unit,
        substrate=substrate,
        product=product,
        function=function,
    )
    if isinstance(plan, list):  # nothing to compute: the notes say why
        return _empty(), plan
    notes = list(plan.notes)
    vol = _volumes(campaign, plan.obs.select("batch_id", "time_h"))
    vol = vol.with_columns(
        volume_ml=pl.when(pl.col("volume_source") == "unknown").then(1.0).otherwise(pl.col("volume_ml")),
        sample_ml=pl.when(pl.col("volume_source") == "unknown").then(0.0).otherwise(pl.col("sample_ml")),
    )
    ev = _events(campaign)
    removals = ev.filter(pl.col("event").is_in(REMOVALS)).select(
        "batch_id", "time_h", _s0="volume_ml", _s1=pl.col("volume_ml") * pl.col("time_h")
    )
    cells = _biomass_table(plan, vol, removals)
    out = _biomass_rows(cells, plan)
    if plan.balance:
        ana = _balances(campaign, plan, cells, vol, ev, removals)
        out += _rate_rows(ana, plan)
        if plan.substrate is not None:
            no_mass = [v for v in (plan.substrate, plan.product) if v and math.isnan(_mg_per(v))]
            if no_mass:
                notes.append(f"no yields: {', '.join(no_mass)} has no molar mass in the registry to convert to mass.")
            else:
                out += _yields(ana, substrate=plan.substrate, product=plan.product, u=plan.u)
    frame = (
        pl.concat(out, how="vertical_relaxed")
        .sort("batch_id", "variable", "time_h")
        .select([pl.col(k).cast(v) for k, v in OUTPUT_SCHEMA.items()])
    )
    return frame, notes


def _plan(
    campaign: Campaign,
    *,
    variables: list[str] | None,
    exclude_flagged: bool,
    biomass: str | None,
    time_unit: str | None,
    substrate: str | None,
    product: str | None,
    function: str,
) -> _Plan | list[str]:
    """Check the options and choose the defaults; the notes alone when no biomass is measured."""
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
    reg = registry()
    measured = set(obs["variable"].unique().to_list())
    unflagged = " unflagged" if exclude_flagged else ""

    def not_measured(what: str, names: list[str]) -> SchemaError:
        return SchemaError(
            f"kinetics: no{unflagged} offline observations of {', '.join(names)} ({what}). "
            f"Measured: {', '.join(sorted(measured)) or 'nothing'}."
        )

    if biomass is None:
        biomass = choose_biomass(measured)
        if biomass is None:
            found = ", ".join(sorted(measured)) or "nothing"
            after = " (after excluding flagged rows)" if flagged.height else ""
            why = (
                f"nothing computed: no biomass variable is measured offline{after} "
                f"(looked for {', '.join(biomass_choices())}; found {found}). Pass biomass=... or register the "
                "variable with kind='cell_density'."
            )
            return [*_flag_note(flagged), why]
    elif biomass not in measured:
        raise not_measured("the biomass asked for", [biomass])
    u = units(biomass, time_unit=time_unit)
    is_count = reg[biomass].unit == "1e6 cells/mL"
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
        product = choose_product(measured - {biomass}, campaign.products)
        if product is not None and reg[product].unit not in _ANALYTE_UNITS:
            product = None
    elif product not in measured:
        raise not_measured("the product asked for", [product])
    yields_p = substrate is not None and product is not None and product != substrate
    balance = list(dict.fromkeys([*variables, *([substrate] if substrate else []), *([product] if yields_p else [])]))
    notes = _flag_note(flagged, {biomass, "volume", *balance})
    with_x = set(obs.filter(pl.col("variable") == biomass)["batch_id"].unique().to_list())
    no_x = sorted(set(obs["batch_id"].unique().to_list()) - with_x)
    if no_x:
        notes.append(
            f"{len(no_x)} batch(es) with offline data but no{unflagged} {biomass} sample have no kinetics: "
            f"{', '.join(no_x[:10])}{' …' if len(no_x) > 10 else ''}."
        )
    return _Plan(
        obs=obs,
        biomass=biomass,
        u=u,
        per=TIME_UNITS[u["time_unit"]],
        variables=variables,
        substrate=substrate,
        product=product if yields_p else None,
        balance=balance,
        notes=notes,
    )


def _biomass_table(plan: _Plan, vol: pl.DataFrame, removals: pl.DataFrame) -> pl.DataFrame:
    """Per biomass sample: volume, amounts before and after sampling, the integral, IXN, X formed and μ."""
    per = plan.per
    xb = plan.obs.filter(pl.col("variable") == plan.biomass).select("batch_id", "time_h", x="value")
    cells = (
        xb.join(vol, on=["batch_id", "time_h"], how="left")
        .sort("batch_id", "time_h")
        .with_columns(
            n_before=pl.col("x") * pl.col("volume_ml"),
            n_after=pl.col("x") * (pl.col("volume_ml") - pl.col("sample_ml")),
        )
    )
    cells = _interval_removed(cells, removals, value="x")
    return (
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


def _biomass_rows(cells: pl.DataFrame, plan: _Plan) -> list[pl.DataFrame]:
    """The ``i<biomass>``, ``mu`` and ``doubling_time`` rows."""
    u, biomass = plan.u, plan.biomass
    first = pl.col("_dt").is_null()
    x_is = f"X = {biomass}"
    return [
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
            method=pl.lit(f"ln((X_i V_i + X sampled inside) / (X_(i-1) V_(i-1) after sampling)) / dt, {x_is}; ")
            + _VSRC,
        ),
        cells.filter(~first & (pl.col("mu") > 0) & pl.col("mu").is_finite()).select(
            "batch_id",
            "time_h",
            variable=pl.lit("doubling_time"),
            value=plan.per * math.log(2) / pl.col("mu"),
            unit=pl.lit("h"),
            method=pl.lit("ln2 / mu, in hours"),
        ),
    ]


def _balances(
    campaign: Campaign,
    plan: _Plan,
    cells: pl.DataFrame,
    vol: pl.DataFrame,
    ev: pl.DataFrame,
    removals: pl.DataFrame,
) -> pl.DataFrame:
    """The mass balance of every analyte of ``plan.balance`` at every sample (long format): the net
    amount formed over each interval (``_net``), since the first sample (``_cum_net``), and IXN."""
    reg = registry()
    balance = plan.balance
    info = pl.DataFrame(
        {
            "variable": balance,
            "_f": [_ANALYTE_UNITS[reg[v].unit][1] for v in balance],
            "_molar": [_ANALYTE_UNITS[reg[v].unit][0] for v in balance],
            "_mg": [_mg_per(v) for v in balance],
        },
        schema={"variable": pl.String, "_f": pl.Float64, "_molar": pl.Boolean, "_mg": pl.Float64},
    )
    unknown_add = (
        ev.filter(pl.col("event").is_in(ADDITIONS) & pl.col("medium").is_null() & (pl.col("volume_ml") > 0))
        .group_by("batch_id")
        .agg(_unk_ml=pl.col("volume_ml").sum())
    )
    ana = (
        plan.obs.filter(pl.col("variable").is_in(balance))
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
    return (
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


def _rate_rows(ana: pl.DataFrame, plan: _Plan) -> list[pl.DataFrame]:
    """The ``q_<analyte>``/``qp`` and ``cum_<analyte>`` rows of the analytes asked for."""
    u = plan.u
    rates = ana.filter(~pl.col("_first") & pl.col("variable").is_in(plan.variables))
    is_titer = pl.col("variable") == "titer"
    balance_method = pl.lit(f"net mass balance / integral of X*V, X = {plan.biomass}; ") + _VSRC + _NOT_CREDITED
    return [
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
            method=pl.lit("cumulative net amount (positive = produced); ") + _VSRC + _NOT_CREDITED,
        ),
    ]


def _mg_per(variable: str) -> float:
    """mg per amount unit of a balance (µmol of a molar analyte: M / 1000; µg: 1 / 1000); NaN when a
    molar analyte has no molar mass."""
    spec = registry()[variable]
    if _ANALYTE_UNITS[spec.unit][0]:
        return spec.molar_mass / 1000 if spec.molar_mass else math.nan
    return 1 / 1000


def _yields(ana: pl.DataFrame, *, substrate: str, product: str | None, u: dict[str, str]) -> list[pl.DataFrame]:
    """Interval and cumulative ``Y_X/S`` (and ``Y_P/S``) from the cumulative balances of ``ana``."""
    cite = "Villadsen, Nielsen & Liden 2011"
    vsrc = _VSRC
    s = ana.filter(pl.col("variable") == substrate).select(
        "batch_id",
        "time_h",
        "x_formed",
        "volume_source",
        "_unk_ml",
        _s=pl.col("_cum_net") * pl.col("_mg"),  # mg of substrate, net (negative = consumed)
    )
    consumed = f"{substrate} consumed (fed - accumulated - removed by samples)"

    def ratio(frame: pl.DataFrame, num: str, name: str, unit: str, what: str) -> list[pl.DataFrame]:
        b = "batch_id"
        f = frame.sort(b, "time_h").with_columns(
            _dn=pl.col(num) - pl.col(num).shift(1).over(b),
            _ds=-(pl.col("_s") - pl.col("_s").shift(1).over(b)),
            _n0=pl.col(num) - pl.col(num).first().over(b),
            _s0=-(pl.col("_s") - pl.col("_s").first().over(b)),
        )
        f = f.filter(pl.col("_ds").is_not_null())
        tail = pl.lit(f"; {cite}; ") + vsrc + _NOT_CREDITED
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

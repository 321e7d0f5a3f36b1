"""Per-batch outcome tables: what a report or ``Campaign.summary()`` states about each batch.

* :func:`biomass_variable` and :func:`product_variable` say which measured variables are the
  campaign's biomass and product (documented rules below), so the same tables serve a CHO
  campaign (VCD, titer), a microbial one (dry cell weight, a product such as L-tryptophan) and one
  without any product (NISTCHO growth data).
* :func:`batch_outcomes`: peak biomass and its day, final viability, final integral of biomass,
  mean μ in the growth phase, mean specific productivity, final product, last sample day.
* :func:`batch_summary`: status, sample and flag counts, peak biomass, final product, duration
  (defined in :mod:`bioworkbench.campaign.summary`, beside ``Campaign.summary()`` which shows it).
* :func:`outcome_units`: the unit and a label of each column, for tables people read.

Flagged observations never count as outcomes (they are counted in ``n_flagged``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from bioworkbench.campaign.summary import (
    batch_summary,
    last_per_batch,
    measured_variables,
    outcome_variables,
    peak_per_batch,
)
from bioworkbench.checks import require_campaign, require_frame
from bioworkbench.errors import ArgumentError
from bioworkbench.kinetics import compute
from bioworkbench.kinetics import units as kinetics_units
from bioworkbench.variables import (
    BIOMASS_ORDER,
    BIOMASS_UNITS,
    biomass_choices,
    choose_biomass,
    choose_product,
    registry,
)

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = [
    "BIOMASS_ORDER",
    "BIOMASS_UNITS",
    "batch_outcomes",
    "batch_summary",
    "biomass_choices",
    "biomass_variable",
    "campaign_table",
    "outcome_units",
    "product_variable",
]


def biomass_variable(campaign: Campaign) -> str | None:
    """The campaign's biomass variable: what kinetics and outcome tables grow on.

    Rule: the first of ``vcd``, ``cdw``, ``od600`` with offline, unflagged values; else the first
    (by name) other registered ``cell_density`` variable measured (e.g. ``tcd``); else ``None``.

    Parameters
    ----------
    campaign
        A :class:`~bioworkbench.Campaign`.

    Returns
    -------
    str or None

    Raises
    ------
    ArgumentError
        ``campaign`` is not a Campaign.
    """
    campaign = require_campaign(campaign, function="biomass_variable")
    return choose_biomass(measured_variables(campaign))


def product_variable(campaign: Campaign) -> str | None:
    """The campaign's product variable: whose final value and specific rate the tables report.

    Rule: ``titer`` when measured offline (unflagged); else the first (by name) measured variable
    of registry kind ``product``; else a measured variable *declared* as the product in the
    batches' ``product`` column — the name itself, the name without an ``L-``/``D-`` prefix
    (``L-tryptophan`` -> ``tryptophan``) or a variable whose registry description starts with it;
    else ``None`` (e.g. NISTCHO, where only cells were counted).

    Parameters
    ----------
    campaign
        A :class:`~bioworkbench.Campaign`.

    Returns
    -------
    str or None

    Raises
    ------
    ArgumentError
        ``campaign`` is not a Campaign.
    """
    campaign = require_campaign(campaign, function="product_variable")
    return choose_product(measured_variables(campaign), campaign.products)


def _rate_name(product: str) -> str:
    return "qp" if product == "titer" else f"q_{product}"


def batch_outcomes(
    campaign: Campaign,
    kinetics: pl.DataFrame | None = None,
    *,
    biomass: str | None = None,
    product: str | None = None,
) -> pl.DataFrame:
    """One row per batch: status, CPPs and the outcomes a report states.

    Parameters
    ----------
    campaign
        A :class:`~bioworkbench.Campaign`.
    kinetics
        The output of :func:`bioworkbench.kinetics.compute` for this campaign (default: computed
        here with the same ``biomass``; pass it when you have it, to compute it once).
    biomass, product
        Variable names (default: :func:`biomass_variable` and :func:`product_variable`).

    Returns
    -------
    polars.DataFrame
        ``batch_id``, ``status``, the ``cpp_*`` columns, then (``<b>`` the biomass, ``<p>`` the
        product):

        ==========================  ==============================================================
        column                      definition
        ==========================  ==============================================================
        ``peak_<b>``                largest offline value of the biomass (its canonical unit)
        ``peak_<b>_day``            culture day (time_h / 24) of its first occurrence
        ``final_viability``         last offline viability, % (only when viability is measured)
        ``final_i<b>``              integral of the biomass at the last sample (``final_ivcd``:
                                    1e6 cells·d/mL; ``final_icdw``: g·h/L)
        ``mu_growth``               mean μ over the intervals that end at or before the peak and
                                    have μ > 0 (the growth phase), in the kinetics' unit (1/d for
                                    cell counts, 1/h for dry weight and OD by default)
        ``qp`` / ``q_<p>``          mean specific production rate over the batch's intervals
                                    (``qp`` for titer, pg/cell/d; ``q_tryptophan``, mmol/g/h)
        ``final_<p>``               last offline product concentration (``final_titer``, mg/L)
        ``last_day``                culture day of the last offline unflagged sample, so a report
                                    can say "so far (day N)" for a running batch
        ==========================  ==============================================================

        Biomass columns are absent when the campaign measures no biomass, product columns when it
        has no product (:func:`product_variable` is ``None``). CHO campaigns keep the names
        ``peak_vcd, peak_vcd_day, final_viability, final_ivcd, mu_growth, qp, final_titer``.

    Raises
    ------
    ArgumentError
        ``campaign`` is not a Campaign, ``biomass`` is not a biomass variable, ``product`` is not
        registered, or ``kinetics`` was computed on another biomass.
    SchemaError
        ``kinetics`` lacks the kinetics columns.

    Notes
    -----
    Units of every column: :func:`outcome_units`. Flagged observations are left out.
    """
    fn = "batch_outcomes"
    campaign = require_campaign(campaign, function=fn)
    biomass, product = outcome_variables(campaign, biomass, product, function=fn)
    if kinetics is None and biomass is not None:
        kinetics = compute(campaign, biomass=biomass, variables=[product] if product else [])
    elif kinetics is not None:
        kinetics = require_frame(
            kinetics,
            function=fn,
            argument="kinetics",
            columns=("batch_id", "time_h", "variable", "value"),
            hint="Pass the frame bw.kinetics.compute(campaign) returns.",
        )
        _check_kinetics_biomass(kinetics, biomass, function=fn)
    good = campaign.offline()
    measured = set(good["variable"].unique().to_list())
    base = campaign.batches.select(
        "batch_id", *[c for c in ("status",) if c in campaign.batches.columns], *campaign.cpps
    )
    parts: list[pl.DataFrame] = []
    if biomass is not None:
        k = kinetics
        peak = peak_per_batch(good, biomass, f"peak_{biomass}")
        parts.append(peak)
        if "viability" in measured:
            parts.append(last_per_batch(good, "viability", "final_viability"))
        parts.append(
            k.filter(pl.col("variable") == f"i{biomass}")
            .sort("batch_id", "time_h")
            .group_by("batch_id", maintain_order=True)
            .agg(pl.col("value").last().alias(f"final_i{biomass}"))
        )
        parts.append(
            k.filter(pl.col("variable") == "mu")
            .join(peak.select("batch_id", _peak_h=pl.col(f"peak_{biomass}_day") * 24), on="batch_id")
            .filter((pl.col("time_h") <= pl.col("_peak_h") + 1e-9) & (pl.col("value") > 0))
            .group_by("batch_id")
            .agg(mu_growth=pl.col("value").mean())
        )
        if product is not None:
            rate = _rate_name(product)
            parts.append(
                k.filter(pl.col("variable") == rate).group_by("batch_id").agg(pl.col("value").mean().alias(rate))
            )
    if product is not None:
        parts.append(last_per_batch(good, product, f"final_{product}"))
    parts.append(good.group_by("batch_id").agg(last_day=pl.col("time_h").max() / 24))
    out = base
    for part in parts:
        out = out.join(part, on="batch_id", how="left")
    return out


def _check_kinetics_biomass(kinetics: pl.DataFrame, biomass: str | None, *, function: str) -> None:
    integrals = {f"i{b}": b for b in biomass_choices()}
    found = sorted({integrals[v] for v in kinetics["variable"].unique().to_list() if v in integrals})
    if found and biomass not in found:
        raise ArgumentError(
            f"{function}: kinetics were computed on biomass {', '.join(found)}, but the outcomes use "
            f"{biomass!r}. Pass biomass={found[0]!r}, or recompute with "
            f"bw.kinetics.compute(campaign, biomass={biomass!r})."
        )


def outcome_units(
    campaign: Campaign,
    kinetics: pl.DataFrame | None = None,
    *,
    biomass: str | None = None,
    product: str | None = None,
) -> pl.DataFrame:
    """The unit and a readable label of every outcome column of :func:`batch_outcomes` and
    :func:`batch_summary` for this campaign.

    Parameters
    ----------
    campaign
        A :class:`~bioworkbench.Campaign`.
    kinetics
        The kinetics the outcomes were computed from (their ``unit`` column is used); default:
        the units :func:`bioworkbench.kinetics.compute` gives by default for this biomass.
    biomass, product
        As for :func:`batch_outcomes`.

    Returns
    -------
    polars.DataFrame
        ``column, quantity, unit``, e.g. ``("mu_growth", "mean μ (growth phase)", "1/h")``.

    Raises
    ------
    ArgumentError
        As :func:`batch_outcomes`.
    """
    fn = "outcome_units"
    campaign = require_campaign(campaign, function=fn)
    biomass, product = outcome_variables(campaign, biomass, product, function=fn)
    reg = registry()
    rows: list[tuple[str, str, str]] = []
    if biomass is not None:
        ku = kinetics_units(biomass)
        if kinetics is not None:
            kinetics = require_frame(kinetics, function=fn, argument="kinetics", columns=("variable", "unit"))
            _check_kinetics_biomass(kinetics, biomass, function=fn)
            seen = dict(kinetics.select("variable", "unit").unique("variable").iter_rows())
            ku = {**ku, **{k: seen[v] for k, v in (("integral", f"i{biomass}"), ("mu", "mu")) if v in seen}}
            if product is not None and _rate_name(product) in seen:
                ku["q_" + product] = seen[_rate_name(product)]
        label = reg[biomass].description
        rows += [
            (f"peak_{biomass}", f"peak {label}", reg[biomass].unit),
            (f"peak_{biomass}_day", f"day of peak {label}", "d"),
        ]
        if "viability" in measured_variables(campaign):
            rows.append(("final_viability", "final viability", "%"))
        rows += [
            (f"final_i{biomass}", f"final integral of {label}", ku["integral"]),
            ("mu_growth", "mean μ (growth phase)", ku["mu"]),
        ]
        if product is not None:
            unit = ku.get("q_" + product) or ku["q_molar" if reg[product].unit == "mmol/L" else "q_mass"]
            rows.append((_rate_name(product), f"mean specific rate of {product} (mass balance)", unit))
    if product is not None:
        rows.append((f"final_{product}", f"final {product}", reg[product].unit))
    rows.append(("last_day", "last sample day", "d"))
    return pl.DataFrame(rows, schema=["column", "quantity", "unit"], orient="row")


def campaign_table(
    campaign: Campaign,
    kinetics: pl.DataFrame | None = None,
    *,
    biomass: str | None = None,
    product: str | None = None,
) -> pl.DataFrame:
    """One row per batch: :func:`batch_outcomes`, then one column per quality attribute (its
    harvest result) and ``cqas_out_of_spec``, the number of results outside their spec.

    Parameters
    ----------
    campaign
        A :class:`~bioworkbench.Campaign`.
    kinetics
        Its kinetics, when already computed.
    biomass, product
        As for :func:`batch_outcomes`.

    Returns
    -------
    polars.DataFrame
        The outcome columns, the CQA columns (a CQA named like an outcome column gets the suffix
        ``_cqa``) and ``cqas_out_of_spec`` (0 for a batch without results).
    """
    from bioworkbench.monitoring.checks import cqa_table

    out = batch_outcomes(campaign, kinetics, biomass=biomass, product=product)
    cq = cqa_table(campaign)
    if not cq.is_empty():
        wide = cq.pivot(on="attribute", index="batch_id", values="value")
        fails = cq.group_by("batch_id").agg(cqas_out_of_spec=(pl.col("status") == "out of spec").sum())
        out = out.join(wide, on="batch_id", how="left", suffix="_cqa").join(fails, on="batch_id", how="left")
    if "cqas_out_of_spec" in out.columns:
        return out.with_columns(pl.col("cqas_out_of_spec").fill_null(0))
    return out.with_columns(cqas_out_of_spec=pl.lit(0, pl.UInt32))

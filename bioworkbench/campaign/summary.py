"""One row per batch of what a campaign holds (:func:`batch_summary`, ``Campaign.summary()``), and
which of its variables are the biomass and the product.

The biomass and product follow the rules of :func:`bioworkbench.variables.choose_biomass` and
:func:`bioworkbench.variables.choose_product`, applied to the variables the campaign measured
offline without a flag. :mod:`bioworkbench.outcomes` builds its tables on these functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import polars as pl

from bioworkbench.checks import require_campaign, require_choice
from bioworkbench.errors import ArgumentError, suggest
from bioworkbench.variables import biomass_choices, choose_biomass, choose_product, registry

if TYPE_CHECKING:
    from bioworkbench.campaign.model import Campaign

__all__ = [
    "OutcomeVariables",
    "batch_summary",
    "last_per_batch",
    "measured_variables",
    "outcome_variables",
    "peak_per_batch",
]


class OutcomeVariables(NamedTuple):
    """The biomass and the product variable of a campaign (either ``None`` when there is none).

    Attributes
    ----------
    biomass
        The biomass variable (:func:`bioworkbench.variables.choose_biomass`), or ``None``.
    product
        The product variable (:func:`bioworkbench.variables.choose_product`), or ``None``.
    """

    biomass: str | None
    product: str | None


def measured_variables(campaign: Campaign, *, offline_only: bool = True) -> set[str]:
    """The variables a campaign measured: those with unflagged values.

    Parameters
    ----------
    campaign
        A :class:`~bioworkbench.Campaign`.
    offline_only
        Count sampled observations only (default), not online records.

    Returns
    -------
    set[str]
    """
    obs = campaign.offline() if offline_only else campaign.measurements()
    return set(obs["variable"].unique().to_list())


def outcome_variables(
    campaign: Campaign, biomass: str | None = None, product: str | None = None, *, function: str
) -> OutcomeVariables:
    """The biomass and product an outcome table uses: the ones given, checked, or the campaign's.

    Parameters
    ----------
    campaign
        A :class:`~bioworkbench.Campaign`.
    biomass, product
        Variable names, or ``None`` for the campaign's own (see the module docstring).
    function
        The function named in the errors.

    Returns
    -------
    OutcomeVariables

    Raises
    ------
    ArgumentError
        ``biomass`` is not a biomass variable, or ``product`` not a registered variable.
    """
    measured = measured_variables(campaign)
    if biomass is None:
        biomass = choose_biomass(measured)
    else:
        biomass = require_choice(biomass, biomass_choices(), function=function, argument="biomass")
    if product is None:
        product = choose_product(measured, campaign.products)
    else:
        reg = registry()
        if not isinstance(product, str) or product not in reg:
            raise ArgumentError(
                f"{function}: product must be a registered variable name; got {product!r}. "
                + suggest(str(product), sorted(reg), what="Variables")
            )
    return OutcomeVariables(biomass, product)


def peak_per_batch(observations: pl.DataFrame, variable: str, name: str) -> pl.DataFrame:
    """Per batch: the largest value of ``variable`` and the day of its first occurrence.

    Parameters
    ----------
    observations
        Long observations (``batch_id, time_h, variable, value``), e.g. :meth:`Campaign.offline`.
    variable
        The variable.
    name
        The name of the value column; the day is ``<name>_day``.

    Returns
    -------
    polars.DataFrame
        ``batch_id, <name>, <name>_day`` (day = ``time_h / 24``), for batches with the variable.
    """
    return (
        observations.filter(pl.col("variable") == variable)
        .sort(["batch_id", "value", "time_h"], descending=[False, True, False])
        .group_by("batch_id", maintain_order=True)
        .agg(pl.col("value").first().alias(name), (pl.col("time_h").first() / 24).alias(f"{name}_day"))
    )


def last_per_batch(observations: pl.DataFrame, variable: str, name: str) -> pl.DataFrame:
    """Per batch: the last value of ``variable`` in time.

    Parameters
    ----------
    observations
        Long observations (``batch_id, time_h, variable, value``).
    variable
        The variable.
    name
        The name of the value column.

    Returns
    -------
    polars.DataFrame
        ``batch_id, <name>``, for batches with the variable.
    """
    return (
        observations.filter(pl.col("variable") == variable)
        .sort("batch_id", "time_h")
        .group_by("batch_id", maintain_order=True)
        .agg(pl.col("value").last().alias(name))
    )


def batch_summary(
    campaign: Campaign,
    *,
    biomass: str | None = None,
    product: str | None = None,
) -> pl.DataFrame:
    """One row per batch: status, process, scale, sample and flag counts, peak biomass, final
    product, duration (what ``Campaign.summary()`` shows).

    Parameters
    ----------
    campaign
        A :class:`~bioworkbench.Campaign`.
    biomass, product
        Variable names (default: :func:`bioworkbench.outcomes.biomass_variable` and
        :func:`bioworkbench.outcomes.product_variable`).

    Returns
    -------
    polars.DataFrame
        ``batch_id``, ``status``, ``process``, ``scale_l`` (those the batches have),
        ``n_offline``, ``n_online``, ``n_flagged`` (observation counts, flagged included in the
        first two), ``peak_<b>`` and ``peak_<b>_day`` (largest unflagged value of the biomass, any
        source, and its day), ``final_<p>`` (last unflagged product value), ``duration_d`` (last
        observation time / 24). Biomass and product columns are absent when the campaign has
        none; a demo (CHO) campaign gives ``peak_vcd``, ``peak_vcd_day`` and ``final_titer``.

    Raises
    ------
    ArgumentError
        ``campaign`` is not a Campaign, or an unknown ``biomass``/``product``.
    """
    fn = "batch_summary"
    campaign = require_campaign(campaign, function=fn)
    biomass, product = outcome_variables(campaign, biomass, product, function=fn)
    obs = campaign.observations
    good = campaign.measurements()
    per = obs.group_by("batch_id").agg(
        n_offline=(pl.col("source") != "online").sum(),
        n_online=(pl.col("source") == "online").sum(),
        n_flagged=pl.col("flag").is_not_null().sum(),
        _last_h=pl.col("time_h").max(),
    )
    cols = [c for c in ("batch_id", "status", "process", "scale_l") if c in campaign.batches.columns]
    out = campaign.batches.select(cols).join(per, on="batch_id", how="left")
    if biomass is not None:
        out = out.join(peak_per_batch(good, biomass, f"peak_{biomass}"), on="batch_id", how="left")
    if product is not None:
        out = out.join(last_per_batch(good, product, f"final_{product}"), on="batch_id", how="left")
    return out.with_columns(
        duration_d=pl.col("_last_h") / 24,
        n_offline=pl.col("n_offline").fill_null(0),
        n_online=pl.col("n_online").fill_null(0),
        n_flagged=pl.col("n_flagged").fill_null(0),
    ).drop("_last_h")

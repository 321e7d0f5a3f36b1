"""Per-batch outcome tables of the reports (to be served by :mod:`bioworkbench.outcomes`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from bioworkbench.monitoring.checks import cqa_table

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign


def outcomes(campaign: Campaign, kinetics: pl.DataFrame | None = None) -> pl.DataFrame:
    """Per batch: peak VCD and its day, final viability, final IVCD, mean μ in the growth phase,
    qp (mean of the mass-balance qp over the batch), final titer, last sample day.

    The growth phase is every interval ending at or before the peak VCD (μ > 0 intervals only).
    For a batch that is still running, "final" means the latest value so far (see ``last_day``).
    """
    from bioworkbench import kinetics as kin_mod

    if kinetics is None:
        kinetics = kin_mod.compute(campaign)
    good = campaign.observations.filter(pl.col("flag").is_null() & (pl.col("source") != "online"))
    vcd = good.filter(pl.col("variable") == "vcd")
    peak = (
        vcd.sort("value", descending=True)
        .group_by("batch_id")
        .agg(peak_vcd=pl.col("value").first(), peak_h=pl.col("time_h").first())
    )

    def last(v: str, name: str) -> pl.DataFrame:
        return (
            good.filter(pl.col("variable") == v)
            .sort("time_h")
            .group_by("batch_id")
            .agg(pl.col("value").last().alias(name))
        )

    k = kinetics
    mu = (
        k.filter(pl.col("variable") == "mu")
        .join(peak, on="batch_id")
        .filter((pl.col("time_h") <= pl.col("peak_h")) & (pl.col("value") > 0))
        .group_by("batch_id")
        .agg(mu_growth=pl.col("value").mean())
    )
    ivcd = (
        k.filter(pl.col("variable") == "ivcd")
        .sort("time_h")
        .group_by("batch_id")
        .agg(final_ivcd=pl.col("value").last())
    )
    qp = k.filter(pl.col("variable") == "qp").group_by("batch_id").agg(qp=pl.col("value").mean())
    last_day = good.group_by("batch_id").agg(last_day=pl.col("time_h").max() / 24)
    base = campaign.batches.select(
        "batch_id", *[c for c in ("status",) if c in campaign.batches.columns], *campaign.cpps
    )
    return (
        base.join(peak.with_columns(peak_vcd_day=pl.col("peak_h") / 24).drop("peak_h"), on="batch_id", how="left")
        .join(last("viability", "final_viability"), on="batch_id", how="left")
        .join(ivcd, on="batch_id", how="left")
        .join(mu, on="batch_id", how="left")
        .join(qp, on="batch_id", how="left")
        .join(last("titer", "final_titer"), on="batch_id", how="left")
        .join(last_day, on="batch_id", how="left")
    )


def campaign_table(campaign: Campaign, kinetics: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per batch: status, CPPs, kinetic outcomes, CQAs (one column each) and the number of
    CQAs out of spec."""
    out = outcomes(campaign, kinetics)
    cq = cqa_table(campaign)
    if not cq.is_empty():
        wide = cq.pivot(on="attribute", index="batch_id", values="value")
        fails = cq.group_by("batch_id").agg(cqas_out_of_spec=(pl.col("status") == "out of spec").sum())
        out = out.join(wide, on="batch_id", how="left", suffix="_cqa").join(fails, on="batch_id", how="left")
    return out.with_columns(
        pl.col("cqas_out_of_spec").fill_null(0)
        if "cqas_out_of_spec" in out.columns
        else pl.lit(0).alias("cqas_out_of_spec")
    )

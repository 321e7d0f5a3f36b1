"""Which batches a model can learn from, and why the others are left out."""

from __future__ import annotations

import polars as pl

__all__ = ["usable_batches"]


def usable_batches(
    campaign, *, completed_only: bool = True, min_vcd: int = 4, min_titer: int = 0
) -> tuple[list[str], pl.DataFrame]:
    """Batches with enough data for the growth (and titer) model, and why the others are left out.

    Parameters
    ----------
    campaign
        The campaign.
    completed_only
        Leave out batches whose status is set and is not ``completed`` (running, aborted).
    min_vcd, min_titer
        Fewest unflagged offline VCD (> 0) and titer samples. ``min_titer=0`` (default) asks for no
        titer, so a campaign without titer (VCD only, e.g. NISTCHO) gives its growth batches.

    Returns
    -------
    (list of str, polars.DataFrame)
        The usable batch ids (in the campaign's order) and ``batch_id, reason`` of the batches left
        out (e.g. ``"3 VCD points (needs 4)"``, ``"status aborted"``).

    Raises
    ------
    ArgumentError
        ``campaign`` is not a Campaign; a count that is not a whole number ≥ 0.
    """
    from bioworkbench.checks import require_campaign, require_number

    campaign = require_campaign(campaign, function="usable_batches")
    min_vcd = int(require_number(min_vcd, function="usable_batches", argument="min_vcd", minimum=0, integer=True))
    min_titer = int(require_number(min_titer, function="usable_batches", argument="min_titer", minimum=0, integer=True))
    if not isinstance(completed_only, bool):
        from bioworkbench.errors import ArgumentError

        raise ArgumentError(f"usable_batches: completed_only must be True or False; got {completed_only!r}.")
    obs = campaign.observations.filter(
        pl.col("flag").is_null() & (pl.col("source") != "online") & pl.col("value").is_not_null()
    )
    counts = (
        campaign.batches.select(
            "batch_id", "status" if "status" in campaign.batches.columns else pl.lit(None).alias("status")
        )
        .join(
            obs.filter((pl.col("variable") == "vcd") & (pl.col("value") > 0)).group_by("batch_id").agg(n_vcd=pl.len()),
            on="batch_id",
            how="left",
        )
        .join(
            obs.filter(pl.col("variable") == "titer").group_by("batch_id").agg(n_titer=pl.len()),
            on="batch_id",
            how="left",
        )
        .with_columns(pl.col("n_vcd", "n_titer").fill_null(0))
    )
    reason = (
        pl.when(pl.lit(completed_only) & pl.col("status").is_not_null() & (pl.col("status") != "completed"))
        .then(pl.format("status {}", "status"))
        .when(pl.col("n_vcd") < min_vcd)
        .then(pl.format("{} VCD points (needs {})", "n_vcd", pl.lit(min_vcd)))
        .when(pl.col("n_titer") < min_titer)
        .then(pl.format("{} titer points (needs {})", "n_titer", pl.lit(min_titer)))
    )
    c = counts.with_columns(reason=reason)
    return c.filter(pl.col("reason").is_null())["batch_id"].to_list(), c.filter(pl.col("reason").is_not_null()).select(
        "batch_id", "reason"
    )

"""Which batches a model can learn from, and why the others are left out."""

from __future__ import annotations

import polars as pl

__all__ = ["usable_batches"]


def usable_batches(
    campaign, *, completed_only: bool = True, min_vcd: int = 4, min_titer: int = 0
) -> tuple[list[str], pl.DataFrame]:
    """Batches with at least ``min_vcd`` VCD and ``min_titer`` titer points (unflagged, offline),
    and — with ``completed_only`` — status ``completed`` (or unknown).

    Returns the ids and a frame ``batch_id, reason`` of the batches left out.
    """
    obs = campaign.observations.filter(
        pl.col("flag").is_null() & (pl.col("source") != "online") & pl.col("value").is_not_null()
    )
    counts = (
        campaign.batches.select(
            "batch_id", "status" if "status" in campaign.batches.columns else pl.lit(None).alias("status")
        )
        .join(
            obs.filter(pl.col("variable") == "vcd").group_by("batch_id").agg(n_vcd=pl.len()), on="batch_id", how="left"
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

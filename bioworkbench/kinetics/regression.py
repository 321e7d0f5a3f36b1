"""Specific productivity by regression of titer on IVCD (:func:`qp_regression`), and one batch's
kinetics as a table for people (:func:`wide`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from bioworkbench.checks import describe_type, require_campaign, require_frame, require_number
from bioworkbench.errors import ArgumentError, SchemaError, suggest
from bioworkbench.kinetics.basis import _empty, _flag_note, _offline, _require_bool, _warn
from bioworkbench.kinetics.rates import _compute

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = ["qp_regression", "wide"]


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

"""Working volumes of fed-batch reactors, and the amounts samples remove between two samples.

``V_i`` is the working volume just before the sample at ``t_i``: the ``volume`` observation when
there is one, else ``initial_volume_ml`` plus every addition minus every removal strictly before
``t_i`` (see :mod:`bioworkbench.kinetics`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from bioworkbench.checks import require_campaign, require_frame
from bioworkbench.kinetics.basis import _flag_note, _offline, _warn
from bioworkbench.schema import ADDITIONS, REMOVALS

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = ["volumes"]


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
    v_obs = campaign.measurements(variables="volume").group_by("batch_id", "time_h").agg(_v_obs=pl.col("value").first())
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

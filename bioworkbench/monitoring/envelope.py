"""Envelopes of normal batches: the band a variable's values span across batches, by culture day or along
maturity, and how many of a batch's points lie outside it.

One implementation (:func:`band`) serves both envelopes of the package:

* :func:`envelope` — the campaign band of offline variables by culture time (quantiles across batches,
  from the raw observations; the review's envelope);
* :func:`~bioworkbench.monitoring.golden_batch` — the golden-batch band of aligned variables along
  maturity (mean ± k·SD or quantiles across the reference batches).

Both return one column vocabulary: ``variable`` and the axis (``time_h`` or ``maturity``), then
``center`` (the band's centre: the median for a quantile band, the mean for mean ± k·SD), ``median``,
``sd`` (divisor n − 1), ``lower``, ``upper`` and ``n_batches``. :func:`envelope_points` and
:func:`envelope_summary` compare a batch's points with the band and count them against chance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import polars as pl

from bioworkbench.checks import require_frame, require_prob
from bioworkbench.monitoring.observations import batch_list, good_observations

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = ["BAND_COLUMNS", "band", "envelope", "envelope_points", "envelope_summary"]

BAND_COLUMNS = ("center", "median", "sd", "lower", "upper", "n_batches")
"""The statistics columns of every envelope, after ``variable`` and the axis."""


def band(
    values: pl.DataFrame,
    *,
    by: Sequence[str],
    method: str = "quantile",
    k: float = 3.0,
    prob: float = 0.90,
    min_batches: int = 3,
    sort: Sequence[str] | None = None,
) -> pl.DataFrame:
    """The band of ``value`` across batches for each group of ``by`` (the one envelope implementation).

    Parameters
    ----------
    values
        Rows ``batch_id, value`` and the ``by`` columns (already filtered to the usable values).
    by
        The grouping columns, e.g. ``("variable", "unit", "time_h")`` or ``("variable", "maturity")``.
    method
        ``"quantile"``: the central ``prob`` band around the median; ``"sd"``: mean ± ``k`` SD.
    k
        Half-width of the ``"sd"`` band, in standard deviations.
    prob
        Mass inside the ``"quantile"`` band.
    min_batches
        Groups with fewer batches are left out.
    sort
        The columns to sort by (default: ``by``).

    Returns
    -------
    polars.DataFrame
        The ``by`` columns, then ``center, median, sd, lower, upper, n_batches``.

    Notes
    -----
    A batch with several values in a group counts once, with their mean. Per group, over the ``n``
    batches: ``median``; ``sd`` with divisor ``n − 1``; ``"quantile"``: ``center`` = median, ``lower`` and
    ``upper`` the ``(1 − prob)/2`` and ``(1 + prob)/2`` quantiles with linear interpolation between order
    statistics (Hyndman & Fan 1996, type 7); ``"sd"``: ``center`` = mean, ``lower/upper = center ∓ k·sd``.
    The band is pointwise: a normal batch lies outside a central ``prob`` band at about ``1 − prob`` of
    its points by construction.
    """
    by = list(by)
    # maintain_order: each group sees its batches in the order of the rows, so the sums (and the SD) are
    # reproducible to the last bit
    per_batch = values.group_by(*by, "batch_id", maintain_order=True).agg(pl.col("value").mean())
    stats = {"median": pl.col("value").median(), "sd": pl.col("value").std(), "n_batches": pl.len()}
    if method == "sd":
        out = (
            per_batch.group_by(*by)
            .agg(center=pl.col("value").mean(), **stats)
            .with_columns(lower=pl.col("center") - k * pl.col("sd"), upper=pl.col("center") + k * pl.col("sd"))
        )
    else:
        out = per_batch.group_by(*by).agg(
            center=pl.col("value").median(),
            lower=pl.col("value").quantile((1 - prob) / 2, interpolation="linear"),
            upper=pl.col("value").quantile((1 + prob) / 2, interpolation="linear"),
            **stats,
        )
    return out.filter(pl.col("n_batches") >= min_batches).select(*by, *BAND_COLUMNS).sort(list(sort or by))


def envelope(
    observations: pl.DataFrame,
    *,
    variables: list[str] | None = None,
    batch_ids: list[str] | None = None,
    exclude: str | list[str] | None = None,
    prob: float = 0.90,
    bin_h: float = 24.0,
    min_batches: int = 3,
) -> pl.DataFrame:
    """Campaign envelope of offline variables: median and central ``prob`` band by culture time.

    Parameters
    ----------
    observations
        Tidy observations (``campaign.observations``); online rows and flagged rows are left out.
    variables
        The variables (default: every offline variable).
    batch_ids
        The batches the band is made of (default: all).
    exclude
        Batches to leave out (e.g. the batch under review, so it is compared with the others only).
    prob
        Central share of the band, strictly between 0 and 1.
    bin_h
        Width of the time bins, hours (default: a culture day).
    min_batches
        Bins with fewer batches are left out.

    Returns
    -------
    polars.DataFrame
        ``variable, unit, time_h, center, median, sd, lower, upper, n_batches`` (``center`` is the
        median), sorted by variable and time.

    Raises
    ------
    ArgumentError
        ``observations`` is not a frame; ``prob`` is not a probability.
    SchemaError
        ``observations`` lacks a column (named).

    Notes
    -----
    Each observation goes to the nearest multiple of ``bin_h`` hours (daily samples taken a little early
    or late share their day); per variable, unit and bin the band is :func:`band` with
    ``method="quantile"``. The band is *pointwise*: a normal batch has about ``1 − prob`` of its points
    outside it by construction, so single points outside are not excursions (see
    :func:`envelope_summary`).
    """
    observations = require_frame(
        observations,
        function="envelope",
        argument="observations",
        columns=("batch_id", "time_h", "variable", "value", "unit", "source", "flag"),
    )
    prob = require_prob(prob, function="envelope")
    obs = good_observations(observations).filter(pl.col("source") != "online")
    if variables is not None:
        obs = obs.filter(pl.col("variable").is_in(variables))
    if batch_ids is not None:
        obs = obs.filter(pl.col("batch_id").is_in(batch_ids))
    if exclude is not None:
        obs = obs.filter(~pl.col("batch_id").is_in([exclude] if isinstance(exclude, str) else list(exclude)))
    binned = obs.with_columns(time_h=(pl.col("time_h") / bin_h).round(0) * bin_h)
    return band(
        binned,
        by=("variable", "unit", "time_h"),
        method="quantile",
        prob=prob,
        min_batches=min_batches,
        sort=("variable", "time_h"),
    )


def _loo_envelopes(campaign: Campaign, ids: list[str], prob: float) -> pl.DataFrame:
    """For each batch, the envelope of the *other* batches (leave-one-out), with a ``batch_id`` column.

    Quantiles of "all but one" have no vectorised form, so this loops over the batches asked for.
    """
    frames = [envelope(campaign.observations, exclude=b, prob=prob).with_columns(batch_id=pl.lit(b)) for b in ids]
    return pl.concat(frames) if frames else envelope(campaign.observations.clear(), prob=prob)


def envelope_points(
    campaign: Campaign,
    batch_ids: str | Sequence[str] | None = None,
    *,
    envelope_frame: pl.DataFrame | None = None,
    prob: float = 0.90,
) -> pl.DataFrame:
    """Each offline point of the batches compared with the campaign band of its culture day.

    Parameters
    ----------
    campaign
        The campaign.
    batch_ids
        One batch or several (default: every batch).
    envelope_frame
        One envelope (:func:`envelope`) for every batch; by default each batch is compared with the
        band of the *other* batches (leave-one-out).
    prob
        Central share of the band.

    Returns
    -------
    polars.DataFrame
        ``batch_id, variable, unit, time_h, value, lower, upper, outside`` (``outside`` is ``"above"``,
        ``"below"`` or null), one row per point that has a band.

    Raises
    ------
    ArgumentError, SchemaError
        Not a campaign, an unknown batch, ``prob`` not a probability, or an ``envelope_frame`` without
        ``variable, time_h, lower, upper``.
    """
    ids = batch_list(campaign, batch_ids, function="envelope_points")
    prob = require_prob(prob, function="envelope_points")
    if envelope_frame is None:
        env = _loo_envelopes(campaign, ids, prob)
        on = ["batch_id", "variable", "_bin"]
    else:
        env = require_frame(
            envelope_frame,
            function="envelope_points",
            argument="envelope_frame",
            columns=("variable", "time_h", "lower", "upper"),
        )
        on = ["variable", "_bin"]
    obs = good_observations(campaign.observations).filter(
        pl.col("batch_id").is_in(ids) & (pl.col("source") != "online")
    )
    pts = obs.with_columns(_bin=(pl.col("time_h") / 24).round(0) * 24).join(
        env.select(*[c for c in on if c != "_bin"], pl.col("time_h").alias("_bin"), "lower", "upper"),
        on=on,
        how="inner",
    )
    return pts.select(
        "batch_id",
        "variable",
        "unit",
        "time_h",
        "value",
        "lower",
        "upper",
        outside=pl.when(pl.col("value") > pl.col("upper"))
        .then(pl.lit("above"))
        .when(pl.col("value") < pl.col("lower"))
        .then(pl.lit("below")),
    ).sort("batch_id", "variable", "time_h")


def envelope_summary(points: pl.DataFrame, *, prob: float = 0.90, alpha: float = 0.01) -> pl.DataFrame:
    """How many points of each batch and variable lie outside the band, against what chance gives.

    Parameters
    ----------
    points
        The frame of :func:`envelope_points`.
    prob
        Central share of the band the points were compared with.
    alpha
        ``more_than_expected`` is ``p_value < alpha``.

    Returns
    -------
    polars.DataFrame
        ``batch_id, variable, n_points, n_outside, n_above, n_below, expected, p_value,
        more_than_expected``.

    Raises
    ------
    ArgumentError, SchemaError
        ``points`` is not a frame with ``batch_id, variable, outside``; ``prob`` is not a probability.

    Notes
    -----
    With a pointwise central ``prob`` band, a point of a batch like the others lies outside it with
    probability ``1 − prob``; ``expected = n_points · (1 − prob)``. ``p_value`` is the binomial upper
    tail ``P(X ≥ n_outside | n_points, 1 − prob)``: small values say the batch sits outside more often
    than chance. The points of one batch are correlated in time, so the tail is a screening figure,
    not an exact test.
    """
    from scipy.special import bdtrc  # binom.sf(k, n, p) of scipy.stats, without importing scipy.stats (0.4 s)

    points = require_frame(
        points, function="envelope_summary", argument="points", columns=("batch_id", "variable", "outside")
    )
    p_out = 1 - require_prob(prob, function="envelope_summary")
    out = points.group_by("batch_id", "variable").agg(
        n_points=pl.len().cast(pl.Int64),
        n_outside=pl.col("outside").is_not_null().sum().cast(pl.Int64),
        n_above=(pl.col("outside") == "above").sum().cast(pl.Int64),
        n_below=(pl.col("outside") == "below").sum().cast(pl.Int64),
    )
    pv = bdtrc(out["n_outside"].to_numpy() - 1, out["n_points"].to_numpy(), p_out)
    return (
        out.with_columns(
            expected=pl.col("n_points") * p_out,
            p_value=pl.Series(pv, dtype=pl.Float64),
        )
        .with_columns(more_than_expected=pl.col("p_value") < alpha)
        .sort("batch_id", "variable")
    )

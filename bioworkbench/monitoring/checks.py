"""The checks a reviewer relies on, computed for many batches at once.

* :func:`completeness` — samples expected (from the campaign's own schedule) against samples present;
* :func:`envelope` — the campaign band of offline variables by culture day, and
  :func:`envelope_points` / :func:`envelope_summary` — how many of a batch's points lie outside it
  (in :mod:`bioworkbench.monitoring.envelope`, re-exported here);
* :func:`excursions` — values outside alarm and spec limits (online runs grouped), CPP setpoints
  outside their proven acceptable range, CQA results out of spec, probes drifting from their
  offline reference (and, on request, points outside the envelope);
* :func:`sensor_agreement` — online probes against offline reference measurements;
* :func:`cqa_table` — quality results against their specifications.

Every function takes a :class:`~bioworkbench.Campaign` and returns a tidy polars frame with a
``batch_id`` column; nothing here prints, plots or writes text for a page (the report sections in
:mod:`bioworkbench.review` do). Flagged observations are left out of every check except
:func:`completeness`, where a flagged result (e.g. ``<LOD``) still counts as a sample taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import polars as pl

from bioworkbench.checks import require_prob
from bioworkbench.monitoring.envelope import envelope, envelope_points, envelope_summary
from bioworkbench.monitoring.observations import batch_list as _batch_list
from bioworkbench.monitoring.observations import culture_day as _day
from bioworkbench.monitoring.observations import good_observations as _good
from bioworkbench.monitoring.observations import unflagged

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = [
    "SENSOR_TOLERANCE",
    "completeness",
    "cqa_table",
    "envelope",
    "envelope_points",
    "envelope_summary",
    "excursions",
    "sensor_agreement",
]

#: tolerance for online vs offline agreement, per variable (canonical units)
SENSOR_TOLERANCE = {"ph": 0.1, "temperature": 0.5, "do": 10.0, "pco2": 15.0}
SEVERITY_ORDER = {"critical": 0, "major": 1, "minor": 2}


# ---------------------------------------------------------------------------------------------
# completeness
# ---------------------------------------------------------------------------------------------
_COMPLETENESS_SCHEMA = {
    "batch_id": pl.String,
    "variable": pl.String,
    "expected": pl.Int64,
    "present": pl.Int64,
    "missing": pl.Int64,
    "missing_days": pl.List(pl.Int64),
    "flagged": pl.Int64,
    "flag_reasons": pl.String,
}


def completeness(
    campaign: Campaign, batch_ids: str | Sequence[str] | None = None, *, min_share: float = 0.5
) -> pl.DataFrame:
    """Samples expected against samples present for each offline variable of each batch.

    The expected schedule is learnt from the campaign: a variable is expected on culture day ``d``
    (sample time / 24 h, rounded) when at least ``min_share`` of the batches that ran until day
    ``d`` measured it that day. A batch is expected to follow the schedule up to its own last
    sample day, so a running batch is not blamed for samples of days it has not reached.

    Parameters
    ----------
    campaign
        The campaign.
    batch_ids
        One batch or several (default: every batch).
    min_share
        Share of the running batches that must have measured a variable on a day for the day to
        be part of the schedule.

    Returns
    -------
    polars.DataFrame
        ``batch_id, variable, expected, present, missing, missing_days, flagged, flag_reasons``,
        one row per batch and variable measured or expected. A flagged result (``<LOD``) is a
        sample taken: it counts as present, and as flagged.

    Raises
    ------
    ArgumentError, SchemaError
        Not a campaign, an unknown batch, or ``min_share`` outside (0, 1].
    """
    from bioworkbench.checks import require_number

    ids = _batch_list(campaign, batch_ids, function="completeness")
    require_number(min_share, function="completeness", argument="min_share", minimum=0, maximum=1, min_inclusive=False)
    off = campaign.observations.filter(pl.col("source") != "online").select(
        "batch_id", "variable", day=_day(pl.col("time_h")), flag="flag", flag_reason="flag_reason"
    )
    if off.is_empty():
        return pl.DataFrame(schema=_COMPLETENESS_SCHEMA)
    last = off.group_by("batch_id").agg(last_day=pl.col("day").max())
    ran = (
        last.join(pl.DataFrame({"day": range(int(last["last_day"].max() or 0) + 1)}), how="cross")
        .filter(pl.col("day") <= pl.col("last_day"))
        .group_by("day")
        .agg(n_running=pl.len())
    )
    measured = off.select("batch_id", "variable", "day").unique()
    schedule = (
        measured.group_by("variable", "day")
        .agg(n=pl.len())
        .join(ran, on="day")
        .filter(pl.col("n") / pl.col("n_running") >= min_share)
        .select("variable", "day")
    )
    mine = off.filter(pl.col("batch_id").is_in(ids))
    expected = (
        last.filter(pl.col("batch_id").is_in(ids))
        .join(schedule, how="cross")
        .filter(pl.col("day") <= pl.col("last_day"))
        .select("batch_id", "variable", "day")
    )
    present = mine.select("batch_id", "variable", "day").unique()
    missing = expected.join(present, on=["batch_id", "variable", "day"], how="anti")
    flags = (
        mine.filter(~unflagged())
        .group_by("batch_id", "variable")
        .agg(
            flagged=pl.len().cast(pl.Int64),
            flag_reasons=(pl.col("flag") + ": " + pl.col("flag_reason").fill_null("no reason given"))
            .unique()
            .sort()
            .str.join("; "),
        )
    )
    keys = ["batch_id", "variable"]
    rows = pl.concat([expected.select(keys), mine.select(keys)]).unique()
    return (
        rows.join(expected.group_by(keys).agg(expected=pl.len().cast(pl.Int64)), on=keys, how="left")
        .join(present.group_by(keys).agg(present=pl.len().cast(pl.Int64)), on=keys, how="left")
        .join(missing.sort("day").group_by(keys).agg(missing_days=pl.col("day")), on=keys, how="left")
        .join(flags, on=keys, how="left")
        .with_columns(pl.col("expected", "present", "flagged").fill_null(0), pl.col("missing_days").fill_null([]))
        .with_columns(missing=pl.col("missing_days").list.len().cast(pl.Int64))
        .select(list(_COMPLETENESS_SCHEMA))
        .sort("batch_id", "variable")
    )


# ---------------------------------------------------------------------------------------------
# quality results against specs
# ---------------------------------------------------------------------------------------------
def cqa_table(campaign: Campaign, batch_id: str | Sequence[str] | None = None) -> pl.DataFrame:
    """Quality results against their specs.

    Parameters
    ----------
    campaign
        The campaign.
    batch_id
        One batch or several (default: every batch).

    Returns
    -------
    polars.DataFrame
        ``batch_id, attribute, value, unit, method, lower, upper, status`` with status ``in
        spec``, ``out of spec`` or ``no spec`` (limits inclusive: a value equal to a limit is in
        spec).

    Raises
    ------
    ArgumentError, SchemaError
        Not a campaign, or an unknown batch.
    """
    ids = _batch_list(campaign, batch_id, function="cqa_table")
    q = campaign.quality.filter(pl.col("batch_id").is_in(ids))
    s = campaign.specs.filter(pl.col("kind") == "spec").select(attribute="name", lower="lower", upper="upper")
    out = q.join(s, on="attribute", how="left").with_columns(
        status=pl.when(pl.col("lower").is_null() & pl.col("upper").is_null())
        .then(pl.lit("no spec"))
        .when(
            (pl.col("lower").is_not_null() & (pl.col("value") < pl.col("lower")))
            | (pl.col("upper").is_not_null() & (pl.col("value") > pl.col("upper")))
        )
        .then(pl.lit("out of spec"))
        .otherwise(pl.lit("in spec"))
    )
    return out.select("batch_id", "attribute", "value", "unit", "method", "lower", "upper", "status").sort(
        "batch_id", "attribute"
    )


def spec_text() -> pl.Expr:
    """``"15–30"``, ``"≥ 3000"`` or ``"≤ 4"`` from the ``lower`` and ``upper`` columns.

    Returns
    -------
    polars.Expr
        A string expression (limits to 4 significant digits) for a frame with ``lower`` and ``upper``.
    """
    lo, hi = (
        pl.col("lower").round_sig_figs(4).cast(pl.String),
        pl.col("upper").round_sig_figs(4).cast(pl.String),
    )
    return (
        pl.when(pl.col("lower").is_not_null() & pl.col("upper").is_not_null())
        .then(lo + "–" + hi)
        .when(pl.col("lower").is_not_null())
        .then("≥ " + lo)
        .otherwise("≤ " + hi)
    )


# ---------------------------------------------------------------------------------------------
# online probes against offline references
# ---------------------------------------------------------------------------------------------
_AGREEMENT_SCHEMA = {
    "batch_id": pl.String,
    "variable": pl.String,
    "n_pairs": pl.UInt32,
    "mean_diff": pl.Float64,
    "max_abs_diff": pl.Float64,
    "late_mean_diff": pl.Float64,
    "n_late": pl.UInt32,
    "late_from_h": pl.Float64,
    "last_h": pl.Float64,
    "tolerance": pl.Float64,
    "drift": pl.Boolean,
}


def sensor_agreement(
    campaign: Campaign,
    batch_ids: str | Sequence[str] | None = None,
    *,
    tolerance: dict[str, float] | None = None,
    window_h: float = 1.0,
    last_n: int = 3,
) -> pl.DataFrame:
    """Online probes checked against offline reference measurements of the same variable.

    Each offline value is paired with the nearest online value within ``window_h`` hours; per batch
    and variable the mean and the largest absolute difference (online − offline) are reported, and
    ``drift`` is true when the mean of the last ``last_n`` paired differences (the probe's current
    state, not diluted by the good early part of the batch) exceeds the tolerance — the signature
    of a probe drifting away (e.g. a pH probe needing re-calibration).

    Parameters
    ----------
    campaign
        The campaign.
    batch_ids
        One batch or several (default: every batch).
    tolerance
        Allowed |online − offline| per variable, in its canonical unit (default
        :data:`SENSOR_TOLERANCE`: pH 0.1, temperature 0.5 °C, DO 10 % of air saturation, pCO2 15 mmHg); given entries
        replace the defaults.
    window_h
        Largest time between an offline sample and the online value paired with it, hours.
    last_n
        How many of the last pairs make the probe's current state.

    Returns
    -------
    polars.DataFrame
        ``batch_id, variable, n_pairs, mean_diff, max_abs_diff, late_mean_diff, n_late,
        late_from_h, last_h, tolerance, drift``.

    Raises
    ------
    ArgumentError, SchemaError
        Not a campaign, or an unknown batch.
    """
    ids = _batch_list(campaign, batch_ids, function="sensor_agreement")
    tol = {**SENSOR_TOLERANCE, **(tolerance or {})}
    obs = _good(campaign.observations).filter(pl.col("variable").is_in(list(tol)) & pl.col("batch_id").is_in(ids))
    on = (
        obs.filter(pl.col("source") == "online").select("batch_id", "variable", "time_h", online="value").sort("time_h")
    )
    off = (
        obs.filter(pl.col("source") != "online")
        .select("batch_id", "variable", "time_h", offline="value")
        .sort("time_h")
    )
    if on.is_empty() or off.is_empty():
        return pl.DataFrame(schema=_AGREEMENT_SCHEMA)
    pairs = off.join_asof(
        on,
        on="time_h",
        by=["batch_id", "variable"],
        strategy="nearest",
        tolerance=window_h,
        check_sortedness=False,
    ).drop_nulls("online")
    pairs = pairs.with_columns(diff=pl.col("online") - pl.col("offline"))
    tol_frame = pl.DataFrame({"variable": list(tol), "tolerance": list(tol.values())})
    return (
        pairs.group_by("batch_id", "variable")
        .agg(
            n_pairs=pl.len(),
            mean_diff=pl.col("diff").mean(),
            max_abs_diff=pl.col("diff").abs().max(),
            late_mean_diff=pl.col("diff").sort_by("time_h").tail(last_n).mean(),
            n_late=pl.col("diff").sort_by("time_h").tail(last_n).len(),
            late_from_h=pl.col("time_h").sort().tail(last_n).min(),
            last_h=pl.col("time_h").max(),
        )
        .join(tol_frame, on="variable")
        .with_columns(drift=pl.col("late_mean_diff").abs() > pl.col("tolerance"))
        .select(list(_AGREEMENT_SCHEMA))
        .sort("batch_id", "variable")
    )


# ---------------------------------------------------------------------------------------------
# excursions
# ---------------------------------------------------------------------------------------------
EXCURSION_COLUMNS = (
    "batch_id",
    "variable",
    "kind",
    "start_h",
    "end_h",
    "n_points",
    "value",
    "limit",
    "deviation",
    "relative",
    "direction",
    "severity",
    "sentence",
)


def _envelope_rows(points: pl.DataFrame, prob: float) -> pl.DataFrame:
    out = points.filter(pl.col("outside").is_not_null())
    return out.select(
        "batch_id",
        "variable",
        kind=pl.lit(f"envelope {round(prob * 100)} %"),
        start_h="time_h",
        end_h="time_h",
        n_points=pl.lit(1, dtype=pl.UInt32),
        value="value",
        limit=pl.when(pl.col("outside") == "above").then("upper").otherwise("lower"),
        scale=pl.col("upper") - pl.col("lower"),
    )


def _crossed_limit() -> pl.Expr:
    """The limit ``value`` crosses: ``hi`` above it, ``lo`` below it, null within (a limit may be null)."""
    return (
        pl.when(pl.col("hi").is_not_null() & (pl.col("value") > pl.col("hi")))
        .then("hi")
        .when(pl.col("lo").is_not_null() & (pl.col("value") < pl.col("lo")))
        .then("lo")
    )


def _limit_rows(campaign: Campaign, obs: pl.DataFrame) -> pl.DataFrame | None:
    """Alarm limits, and specs of in-process variables, on observed values; consecutive points
    outside a limit (per batch, variable and source) grouped into one run."""
    # a spec named after a quality attribute (e.g. harvest titer) is checked against the quality
    # result, not against the daily samples
    cqa_names = campaign.quality["attribute"].unique().implode()
    lims = campaign.specs.filter(
        pl.col("name").is_in(obs["variable"].unique().implode())
        & ((pl.col("kind") == "alarm") | ((pl.col("kind") == "spec") & ~pl.col("name").is_in(cqa_names)))
    )
    if lims.is_empty():
        return None
    keys = ["batch_id", "kind", "variable", "source"]
    x = (
        obs.join(lims.select(variable="name", kind="kind", lo="lower", hi="upper"), on="variable")
        .sort(*keys, "time_h")
        .with_columns(limit=_crossed_limit())
        .with_columns(_out=pl.col("limit").is_not_null())
        .with_columns(_run=(pl.col("_out") != pl.col("_out").shift(1)).fill_null(True).cum_sum().over(keys))
        .filter(pl.col("_out"))
        .with_columns(_dev=(pl.col("value") - pl.col("limit")).abs())
        .sort("_dev", descending=True)
        .group_by(*keys, "_run")
        .agg(
            start_h=pl.col("time_h").min(),
            end_h=pl.col("time_h").max(),
            n_points=pl.len(),
            value=pl.col("value").first(),
            limit=pl.col("limit").first(),
        )
    )
    return x.select(
        "batch_id",
        "variable",
        kind=pl.col("kind") + " (" + pl.col("source") + ")",
        start_h="start_h",
        end_h="end_h",
        n_points="n_points",
        value="value",
        limit="limit",
    )


def _par_rows(campaign: Campaign, ids: list[str]) -> pl.DataFrame | None:
    par = campaign.specs.filter((pl.col("kind") == "PAR") & pl.col("name").is_in(campaign.cpps))
    numeric = [n for n in par["name"].to_list() if campaign.batches.schema[n].is_numeric()]
    if not numeric:
        return None
    cpp = (
        campaign.batches.filter(pl.col("batch_id").is_in(ids))
        .unpivot(index="batch_id", on=numeric, variable_name="variable", value_name="value")
        .with_columns(pl.col("value").cast(pl.Float64))
    )
    c = (
        cpp.join(par.select(variable="name", lo="lower", hi="upper"), on="variable")
        .with_columns(limit=_crossed_limit())
        .filter(pl.col("limit").is_not_null())
    )
    return c.select(
        "batch_id",
        "variable",
        kind=pl.lit("PAR"),
        start_h=pl.lit(None, pl.Float64),
        end_h=pl.lit(None, pl.Float64),
        n_points=pl.lit(1, dtype=pl.UInt32),
        value="value",
        limit="limit",
    )


def excursions(
    campaign: Campaign,
    batch_ids: str | Sequence[str] | None = None,
    *,
    envelope_frame: pl.DataFrame | None = None,
    prob: float = 0.90,
    include_envelope: bool = False,
) -> pl.DataFrame:
    """Every excursion of the batches: values outside an alarm or spec limit of ``specs`` (online
    runs of consecutive points grouped into one row), CPP setpoints outside their proven acceptable
    range (``PAR``), CQAs out of spec, online probes drifting from their offline reference, and —
    with ``include_envelope`` — offline points outside the campaign's central ``prob`` band.

    Points outside the band are off by default: the band is pointwise, so about ``1 − prob`` of a
    normal batch's points lie outside it by construction (count them with
    :func:`envelope_summary` instead).

    Parameters
    ----------
    campaign
        The campaign.
    batch_ids
        One batch or several (default: every batch).
    envelope_frame
        With ``include_envelope``: one envelope for every batch (default: each batch against the
        band of the other batches).
    prob
        Central share of the envelope band.
    include_envelope
        List points outside the envelope band (severity ``minor``).

    Returns
    -------
    polars.DataFrame
        ``batch_id, variable, kind, start_h, end_h, n_points, value, limit, deviation, relative,
        direction, severity, sentence``; ``value`` is the worst value, ``deviation`` = value − limit
        (signed), ``relative`` = |deviation| / band width (envelope) or / |limit|, ``severity`` is
        ``critical`` (spec, PAR, CQA), ``major`` (alarm, probe drift) or ``minor`` (envelope).
        Sorted by batch, severity, then relative deviation, largest first.

    Raises
    ------
    ArgumentError, SchemaError
        Not a campaign, an unknown batch, ``prob`` not a probability, or an ``envelope_frame``
        without ``variable, time_h, lower, upper``.
    """
    ids = _batch_list(campaign, batch_ids, function="excursions")
    prob = require_prob(prob, function="excursions")
    obs = _good(campaign.observations).filter(pl.col("batch_id").is_in(ids))
    rows: list[pl.DataFrame] = []
    if include_envelope:
        pts = envelope_points(campaign, ids, envelope_frame=envelope_frame, prob=prob)
        rows.append(_envelope_rows(pts, prob))
    for part in (_limit_rows(campaign, obs), _par_rows(campaign, ids)):
        if part is not None:
            rows.append(part)
    q = cqa_table(campaign, ids).filter(pl.col("status") == "out of spec")
    rows.append(
        q.select(
            "batch_id",
            variable="attribute",
            kind=pl.lit("CQA spec"),
            start_h=pl.lit(None, pl.Float64),
            end_h=pl.lit(None, pl.Float64),
            n_points=pl.lit(1, dtype=pl.UInt32),
            value="value",
            limit=pl.when(pl.col("upper").is_not_null() & (pl.col("value") > pl.col("upper")))
            .then("upper")
            .otherwise("lower"),
        )
    )
    drift = sensor_agreement(campaign, ids).filter(pl.col("drift"))
    rows.append(
        drift.select(
            "batch_id",
            "variable",
            kind=pl.lit("probe drift"),
            start_h="late_from_h",
            end_h="last_h",
            n_points="n_late",
            value=pl.col("late_mean_diff"),
            limit=pl.col("tolerance") * pl.col("late_mean_diff").sign(),
        )
    )
    out = pl.concat(
        [
            r.with_columns(
                pl.col("n_points").cast(pl.UInt32),
                pl.col("value", "limit", "start_h", "end_h").cast(pl.Float64),
                **({} if "scale" in r.columns else {"scale": pl.col("limit").abs().cast(pl.Float64)}),
            )
            for r in rows
        ],
        how="diagonal_relaxed",
    )
    out = out.with_columns(
        deviation=pl.col("value") - pl.col("limit"),
        direction=pl.when(pl.col("value") > pl.col("limit")).then(pl.lit("above")).otherwise(pl.lit("below")),
        severity=pl.when(pl.col("kind").str.starts_with("spec") | pl.col("kind").is_in(["PAR", "CQA spec"]))
        .then(pl.lit("critical"))
        .when(pl.col("kind").str.starts_with("alarm") | (pl.col("kind") == "probe drift"))
        .then(pl.lit("major"))
        .otherwise(pl.lit("minor")),
    )
    out = out.with_columns(sentence=_excursion_sentence())
    order = pl.col("severity").replace_strict(SEVERITY_ORDER, return_dtype=pl.Int8)
    # within a severity, the largest deviation relative to the band width (envelope) or the limit first
    out = out.with_columns(relative=(pl.col("deviation").abs() / pl.col("scale")).fill_nan(None))
    return out.sort(
        [pl.col("batch_id"), order, pl.col("relative")], descending=[False, False, True], nulls_last=True
    ).select(EXCURSION_COLUMNS)


def _excursion_sentence() -> pl.Expr:
    """``"viability below the lower alarm limit (offline) from day 1.0 to day 2.0 (2 points): 95 vs 97 (-2)."``"""
    when = (
        pl.when(pl.col("start_h").is_null())
        .then(pl.lit(""))
        .when(pl.col("n_points") > 1)
        .then(
            pl.format(
                " from day {} to day {} ({} points)",
                (pl.col("start_h") / 24).round(1),
                (pl.col("end_h") / 24).round(1),
                "n_points",
            )
        )
        .otherwise(pl.format(" on day {}", (pl.col("start_h") / 24).round(1)))
    )
    side = pl.when(pl.col("direction") == "above").then(pl.lit("upper")).otherwise(pl.lit("lower"))
    what = (
        pl.when(pl.col("kind").str.starts_with("envelope"))
        .then(pl.format("the {} edge of the campaign {} band", side, pl.col("kind").str.strip_prefix("envelope ")))
        .when(pl.col("kind") == "PAR")
        .then(pl.format("the {} end of its proven acceptable range", side))
        .when(pl.col("kind") == "CQA spec")
        .then(pl.format("its {} specification limit", side))
        .when(pl.col("kind") == "probe drift")
        .then(
            pl.lit(
                "its offline reference (online − offline, mean of the last 3 paired samples) by more than the tolerance"
            )
        )
        .otherwise(
            pl.format(
                "the {} {} limit{}",
                side,
                pl.col("kind").str.extract(r"^(\w+)"),
                pl.col("kind").str.extract(r"( \(\w+\))$").fill_null(""),
            )
        )
    )
    return pl.format(
        "{} {} {}{}: {} vs {} ({}{}).",
        "variable",
        "direction",
        what,
        when,
        pl.col("value").round_sig_figs(4),
        pl.col("limit").round_sig_figs(4),
        pl.when(pl.col("deviation") > 0).then(pl.lit("+")).otherwise(pl.lit("")),
        pl.col("deviation").round_sig_figs(3),
    )

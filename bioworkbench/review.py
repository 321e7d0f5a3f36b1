"""Batch review: the numbers a batch report states, computed from a Campaign.

Header, data completeness, the campaign envelope and a batch's excursions from it, limit
excursions (alarm and spec limits, online runs grouped), online/offline sensor agreement, the
kinetics outcomes table, CQAs against specs, exceptional batches, and a plain-words summary written
from those numbers. Notebooks call these; nothing here plots or prints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import polars as pl

from bioworkbench.errors import SchemaError
from bioworkbench.schema import suggest

__all__ = [
    "BatchReview",
    "CampaignReview",
    "batch_header",
    "batch_review",
    "campaign_review",
    "campaign_table",
    "completeness",
    "cqa_table",
    "envelope",
    "exceptional_batches",
    "excursions",
    "forecast_section",
    "markdown",
    "narrative",
    "outcomes",
    "sensor_agreement",
    "table",
    "variability",
]

#: tolerance for online vs offline agreement, per variable (canonical units)
SENSOR_TOLERANCE = {"ph": 0.1, "temperature": 0.5, "do": 10.0, "pco2": 15.0}


def _check_batch(campaign, batch_id: str) -> None:
    if batch_id not in campaign.batch_ids:
        raise SchemaError(
            f"batch {batch_id!r} is not in campaign {campaign.name!r}. "
            + suggest(batch_id, campaign.batch_ids, what="Batches")
        )


def batch_header(campaign, batch_id: str) -> dict[str, Any]:
    """Identity and dates of a batch: product, cell line, scale, process, status, start, end, CPPs.

    ``end`` is ``start`` plus the last observation or event time; ``duration_d`` in days.
    """
    _check_batch(campaign, batch_id)
    row = campaign.batches.filter(pl.col("batch_id") == batch_id).row(0, named=True)
    times = pl.concat(
        [
            campaign.observations.filter(pl.col("batch_id") == batch_id).select("time_h"),
            campaign.events.filter(pl.col("batch_id") == batch_id).select("time_h"),
        ]
    )["time_h"]
    last_h = times.max() if len(times) else None
    start = row.get("start")
    end = None
    if start is not None and last_h is not None:
        import datetime as dt

        end = start + dt.timedelta(hours=float(last_h))
    header = {
        "batch_id": batch_id,
        "product": row.get("product"),
        "cell_line": row.get("cell_line"),
        "scale_l": row.get("scale_l"),
        "process": row.get("process"),
        "status": row.get("status"),
        "start": start,
        "end": end,
        "duration_d": None if last_h is None else last_h / 24,
    }
    header.update({c: row[c] for c in campaign.cpps})
    return header


def _day(expr: pl.Expr) -> pl.Expr:
    return (expr / 24).round(0).cast(pl.Int64)


def completeness(campaign, batch_id: str, *, min_share: float = 0.5) -> pl.DataFrame:
    """Samples expected vs present for each offline variable of a batch, with flags and why.

    The expected schedule is learnt from the campaign: a variable is expected on culture day ``d``
    when at least ``min_share`` of the batches that ran until day ``d`` measured it that day. A
    batch is expected to follow it up to its own last day.

    Returns
    -------
    polars.DataFrame
        ``variable, expected, present, missing, missing_days, flagged, flag_reasons``.
    """
    _check_batch(campaign, batch_id)
    off = campaign.observations.filter(pl.col("source") != "online").select(
        "batch_id", "variable", day=_day(pl.col("time_h")), flag="flag", flag_reason="flag_reason"
    )
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
    mine = off.filter(pl.col("batch_id") == batch_id)
    my_last = mine["day"].max()
    if my_last is None:
        return pl.DataFrame(
            schema={
                "variable": pl.String,
                "expected": pl.Int64,
                "present": pl.Int64,
                "missing": pl.Int64,
                "missing_days": pl.List(pl.Int64),
                "flagged": pl.Int64,
                "flag_reasons": pl.String,
            }
        )
    expected = schedule.filter(pl.col("day") <= my_last)
    # a flagged result (e.g. <LOD) is a sample taken: present, and counted as flagged
    present = mine.select("variable", "day").unique()
    missing = expected.join(present, on=["variable", "day"], how="anti")
    flags = (
        mine.filter(pl.col("flag").is_not_null())
        .group_by("variable")
        .agg(
            flagged=pl.len().cast(pl.Int64),
            flag_reasons=(pl.col("flag") + ": " + pl.col("flag_reason").fill_null("no reason given"))
            .unique()
            .sort()
            .str.join("; "),
        )
    )
    variables = pl.concat([expected.select("variable"), mine.select("variable")]).unique()
    return (
        variables.join(
            expected.group_by("variable").agg(expected=pl.len().cast(pl.Int64)),
            on="variable",
            how="left",
        )
        .join(
            present.group_by("variable").agg(present=pl.len().cast(pl.Int64)),
            on="variable",
            how="left",
        )
        .join(
            missing.sort("day").group_by("variable").agg(missing_days=pl.col("day")),
            on="variable",
            how="left",
        )
        .join(flags, on="variable", how="left")
        .with_columns(
            pl.col("expected", "present", "flagged").fill_null(0),
            pl.col("missing_days").fill_null([]),
        )
        .with_columns(missing=pl.col("missing_days").list.len().cast(pl.Int64))
        .select("variable", "expected", "present", "missing", "missing_days", "flagged", "flag_reasons")
        .sort("variable")
    )


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

    Each observation goes to the nearest multiple of ``bin_h`` hours (daily samples taken a little
    early or late share their day); per variable and bin, the median and the ``(1 − prob)/2`` and
    ``(1 + prob)/2`` quantiles across batches are taken (linear interpolation between order
    statistics). Bins with fewer than ``min_batches`` batches are left out. Flagged rows are
    excluded. ``exclude`` leaves batches out (e.g. the batch under review, so it is compared with
    the others only).

    Returns
    -------
    polars.DataFrame
        ``variable, unit, time_h, median, lower, upper, n_batches``.
    """
    if not 0 < prob < 1:
        raise ValueError(f"prob must be between 0 and 1; got {prob}")
    obs = observations.filter((pl.col("source") != "online") & pl.col("flag").is_null() & pl.col("value").is_not_null())
    if variables is not None:
        obs = obs.filter(pl.col("variable").is_in(variables))
    if batch_ids is not None:
        obs = obs.filter(pl.col("batch_id").is_in(batch_ids))
    if exclude is not None:
        obs = obs.filter(~pl.col("batch_id").is_in([exclude] if isinstance(exclude, str) else list(exclude)))
    lo, hi = (1 - prob) / 2, (1 + prob) / 2
    binned = obs.with_columns(time_h=(pl.col("time_h") / bin_h).round(0) * bin_h)
    # one value per batch and bin (the mean, if a batch was sampled twice in a bin)
    per_batch = binned.group_by("variable", "unit", "time_h", "batch_id").agg(pl.col("value").mean())
    return (
        per_batch.group_by("variable", "unit", "time_h")
        .agg(
            median=pl.col("value").median(),
            lower=pl.col("value").quantile(lo, interpolation="linear"),
            upper=pl.col("value").quantile(hi, interpolation="linear"),
            n_batches=pl.len(),
        )
        .filter(pl.col("n_batches") >= min_batches)
        .sort("variable", "time_h")
    )


def excursions(
    campaign,
    batch_id: str,
    *,
    envelope_frame: pl.DataFrame | None = None,
    prob: float = 0.90,
) -> pl.DataFrame:
    """Every excursion of a batch: offline values outside the campaign envelope, any value outside
    an alarm or spec limit of ``specs`` (online runs of consecutive points grouped into one row),
    CPP setpoints outside their proven acceptable range (``PAR``), and CQAs out of spec.

    Returns
    -------
    polars.DataFrame
        ``batch_id, variable, kind, start_h, end_h, n_points, value, limit, deviation, relative,
        direction, severity, sentence``; ``value`` is the worst value, ``deviation`` = value − limit
        (signed), ``relative`` = |deviation| / band width (envelope) or / |limit|, ``severity`` is
        ``critical`` (spec, PAR, CQA), ``major`` (alarm, probe drift) or ``minor`` (envelope). Sorted
        by severity, then by relative deviation, largest first.
    """
    _check_batch(campaign, batch_id)
    env = envelope_frame if envelope_frame is not None else envelope(campaign.observations, exclude=batch_id, prob=prob)
    obs = campaign.observations.filter((pl.col("batch_id") == batch_id) & pl.col("flag").is_null())
    rows: list[pl.DataFrame] = []
    # 1. offline vs envelope
    off = obs.filter(pl.col("source") != "online").with_columns(_bin=(pl.col("time_h") / 24).round(0) * 24)
    e = off.join(
        env.select("variable", pl.col("time_h").alias("_bin"), "lower", "upper"),
        on=["variable", "_bin"],
        how="inner",
    )
    e = e.with_columns(
        limit=pl.when(pl.col("value") > pl.col("upper"))
        .then("upper")
        .when(pl.col("value") < pl.col("lower"))
        .then("lower"),
    ).filter(pl.col("limit").is_not_null())
    rows.append(
        e.select(
            "batch_id",
            "variable",
            kind=pl.lit(f"envelope {round(prob * 100)} %"),
            start_h="time_h",
            end_h="time_h",
            n_points=pl.lit(1, dtype=pl.UInt32),
            value="value",
            limit="limit",
            scale=pl.col("upper") - pl.col("lower"),
        )
    )
    # 2. alarm / spec limits on observed variables (runs of consecutive points grouped)
    # alarm limits, and specs of in-process variables (a spec named after a quality attribute,
    # e.g. harvest titer, is checked against the quality result, not the daily samples)
    cqa_names = campaign.quality["attribute"].unique().implode()
    lims = campaign.specs.filter(
        pl.col("name").is_in(obs["variable"].unique().implode())
        & ((pl.col("kind") == "alarm") | ((pl.col("kind") == "spec") & ~pl.col("name").is_in(cqa_names)))
    )
    if not lims.is_empty():
        x = (
            obs.join(lims.select(variable="name", kind="kind", lo="lower", hi="upper"), on="variable")
            .sort("kind", "variable", "source", "time_h")
            .with_columns(
                limit=pl.when(pl.col("hi").is_not_null() & (pl.col("value") > pl.col("hi")))
                .then("hi")
                .when(pl.col("lo").is_not_null() & (pl.col("value") < pl.col("lo")))
                .then("lo")
            )
            .with_columns(_out=pl.col("limit").is_not_null())
            .with_columns(
                _run=(pl.col("_out") != pl.col("_out").shift(1))
                .fill_null(True)
                .cum_sum()
                .over("kind", "variable", "source")
            )
            .filter(pl.col("_out"))
            .with_columns(_dev=(pl.col("value") - pl.col("limit")).abs())
            .sort("_dev", descending=True)
            .group_by("kind", "variable", "source", "_run")
            .agg(
                batch_id=pl.col("batch_id").first(),
                start_h=pl.col("time_h").min(),
                end_h=pl.col("time_h").max(),
                n_points=pl.len(),
                value=pl.col("value").first(),
                limit=pl.col("limit").first(),
            )
        )
        rows.append(
            x.select(
                "batch_id",
                "variable",
                kind=pl.col("kind") + " (" + pl.col("source") + ")",
                start_h="start_h",
                end_h="end_h",
                n_points="n_points",
                value="value",
                limit="limit",
            )
        )
    # 3. CPP setpoints outside PAR
    par = campaign.specs.filter((pl.col("kind") == "PAR") & pl.col("name").is_in(campaign.cpps))
    if not par.is_empty():
        b = campaign.batches.filter(pl.col("batch_id") == batch_id)
        cpp = b.unpivot(
            index="batch_id", on=par["name"].to_list(), variable_name="variable", value_name="value"
        ).with_columns(pl.col("value").cast(pl.Float64))
        c = (
            cpp.join(par.select(variable="name", lo="lower", hi="upper"), on="variable")
            .with_columns(
                limit=pl.when(pl.col("hi").is_not_null() & (pl.col("value") > pl.col("hi")))
                .then("hi")
                .when(pl.col("lo").is_not_null() & (pl.col("value") < pl.col("lo")))
                .then("lo")
            )
            .filter(pl.col("limit").is_not_null())
        )
        rows.append(
            c.select(
                "batch_id",
                "variable",
                kind=pl.lit("PAR"),
                start_h=pl.lit(None, pl.Float64),
                end_h=pl.lit(None, pl.Float64),
                n_points=pl.lit(1, dtype=pl.UInt32),
                value="value",
                limit="limit",
            )
        )
    # 4. CQAs out of spec
    q = cqa_table(campaign, batch_id).filter(pl.col("status") == "out of spec")
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
    # 5. an online probe drifting away from its offline reference
    drift = sensor_agreement(campaign.select(batch_id)).filter(pl.col("drift"))
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
            )
            if "scale" in r.columns
            else r.with_columns(
                pl.col("n_points").cast(pl.UInt32),
                pl.col("value", "limit", "start_h", "end_h").cast(pl.Float64),
                scale=pl.col("limit").abs().cast(pl.Float64),
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
        .then(
            pl.format(
                "the {} edge of the campaign {} band",
                side,
                pl.col("kind").str.strip_prefix("envelope "),
            )
        )
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
    out = out.with_columns(
        sentence=pl.format(
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
    )
    order = pl.col("severity").replace_strict({"critical": 0, "major": 1, "minor": 2}, return_dtype=pl.Int8)
    # within a severity, the largest deviation relative to the band width (envelope) or the limit first
    out = out.with_columns(relative=(pl.col("deviation").abs() / pl.col("scale")).fill_nan(None))
    return out.sort([order, pl.col("relative")], descending=[False, True], nulls_last=True).select(
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


def _spec_text() -> pl.Expr:
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


def sensor_agreement(
    campaign, *, tolerance: dict[str, float] | None = None, window_h: float = 1.0, last_n: int = 3
) -> pl.DataFrame:
    """Online probes checked against offline reference measurements of the same variable.

    Each offline value is paired with the nearest online value within ``window_h`` hours; per batch
    and variable the mean and the largest absolute difference (online − offline) are reported, and
    ``drift`` is true when the mean of the last ``last_n`` paired differences (the probe's current
    state, not diluted by the good early part of the batch) exceeds the
    tolerance on average — the signature of a probe drifting away (e.g. a pH probe needing
    re-calibration).

    Returns
    -------
    polars.DataFrame
        ``batch_id, variable, n_pairs, mean_diff, max_abs_diff, late_mean_diff, n_late,
        late_from_h, last_h, tolerance, drift``.
    """
    tol = {**SENSOR_TOLERANCE, **(tolerance or {})}
    obs = campaign.observations.filter(pl.col("flag").is_null() & pl.col("variable").is_in(list(tol)))
    on = (
        obs.filter(pl.col("source") == "online").select("batch_id", "variable", "time_h", online="value").sort("time_h")
    )
    off = (
        obs.filter(pl.col("source") != "online")
        .select("batch_id", "variable", "time_h", offline="value")
        .sort("time_h")
    )
    if on.is_empty() or off.is_empty():
        return pl.DataFrame(
            schema={
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
        )
    pairs = off.join_asof(
        on,
        on="time_h",
        by=["batch_id", "variable"],
        strategy="nearest",
        tolerance=window_h,
        check_sortedness=False,
    ).drop_nulls("online")
    pairs = pairs.with_columns(
        diff=pl.col("online") - pl.col("offline"),
        _tmax=pl.col("time_h").max().over("batch_id", "variable"),
    )
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
        .sort("batch_id", "variable")
    )


def outcomes(campaign, kinetics: pl.DataFrame | None = None) -> pl.DataFrame:
    """Per batch: peak VCD and its day, final viability, final IVCD, mean μ in the growth phase,
    qp (mean of the mass-balance qp over the batch), final titer.

    The growth phase is every interval ending at or before the peak VCD (μ > 0 intervals only).
    """
    from bioworkbench import kinetics as kin_mod

    if kinetics is None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
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
    base = campaign.batches.select(
        "batch_id", *[c for c in ("status",) if c in campaign.batches.columns], *campaign.cpps
    )
    return (
        base.join(
            peak.with_columns(peak_vcd_day=pl.col("peak_h") / 24).drop("peak_h"),
            on="batch_id",
            how="left",
        )
        .join(last("viability", "final_viability"), on="batch_id", how="left")
        .join(ivcd, on="batch_id", how="left")
        .join(mu, on="batch_id", how="left")
        .join(qp, on="batch_id", how="left")
        .join(last("titer", "final_titer"), on="batch_id", how="left")
    )


def cqa_table(campaign, batch_id: str | None = None) -> pl.DataFrame:
    """Quality results against their specs: ``batch_id, attribute, value, unit, method, lower,
    upper, status`` with status ``in spec``, ``out of spec`` or ``no spec``."""
    q = campaign.quality if batch_id is None else campaign.quality.filter(pl.col("batch_id") == batch_id)
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


def campaign_table(campaign, kinetics: pl.DataFrame | None = None) -> pl.DataFrame:
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


def exceptional_batches(
    campaign,
    table: pl.DataFrame | None = None,
    *,
    columns: list[str] | None = None,
    z: float = 3.0,
) -> pl.DataFrame:
    """Which batches were exceptional and why, one row per reason.

    Reasons: status other than completed; a CQA out of spec; an outcome far from the campaign
    (robust z-score ``|x − median| / (1.4826 · MAD) > z``, Iglewicz & Hoaglin's modified z uses
    0.6745/MAD, the same scale); an online probe drifting from its offline reference; flagged data.

    Returns
    -------
    polars.DataFrame
        ``batch_id, reason, detail``.
    """
    table = table if table is not None else campaign_table(campaign)
    reasons: list[pl.DataFrame] = []
    status = campaign.batches.filter(pl.col("status").is_not_null() & (pl.col("status") != "completed"))
    reasons.append(status.select("batch_id", reason=pl.lit("status"), detail=pl.format("batch status is {}", "status")))
    cq = cqa_table(campaign).filter(pl.col("status") == "out of spec")
    reasons.append(
        cq.select(
            "batch_id",
            reason=pl.lit("CQA out of spec"),
            detail=pl.format(
                "{} = {} {} (spec {})",
                "attribute",
                pl.col("value").round_sig_figs(4),
                pl.col("unit").fill_null(""),
                _spec_text(),
            ),
        )
    )
    columns = columns or [
        c for c in ("peak_vcd", "final_viability", "mu_growth", "qp", "final_titer") if c in table.columns
    ]
    completed = table.filter(pl.col("status") == "completed") if "status" in table.columns else table
    for col in columns:
        med = completed[col].median()
        mad = (completed[col] - med).abs().median() if med is not None else None
        if med is None or not mad:
            continue
        scale = 1.4826 * mad
        hit = table.filter(((pl.col(col) - med).abs() / scale) > z)
        reasons.append(
            hit.select(
                "batch_id",
                reason=pl.lit("unusual " + col.replace("_", " ")),
                detail=pl.format(
                    "{} = {} vs campaign median {} (robust z = {})",
                    pl.lit(col),
                    pl.col(col).round_sig_figs(4),
                    pl.lit(round(med, 4)),
                    ((pl.col(col) - med) / scale).round(1),
                ),
            )
        )
    sa = sensor_agreement(campaign).filter(pl.col("drift"))
    reasons.append(
        sa.select(
            "batch_id",
            reason=pl.lit("probe drift"),
            detail=pl.format(
                "online {} differs from offline by {} on average late in the batch (tolerance {})",
                "variable",
                pl.col("late_mean_diff").round_sig_figs(3),
                "tolerance",
            ),
        )
    )
    # censored results (<LOD, <LOQ, >ULOQ) are results, not problems: not a reason on their own
    fl = (
        campaign.observations.filter(pl.col("flag").is_not_null() & ~pl.col("flag").str.contains(r"^[<>]"))
        .group_by("batch_id")
        .agg(n=pl.len(), flags=pl.col("flag").unique().sort().str.join(", "))
    )
    reasons.append(
        fl.select(
            "batch_id",
            reason=pl.lit("flagged data"),
            detail=pl.format("{} flagged observation(s): {}", "n", "flags"),
        )
    )
    out = pl.concat(
        [r.select("batch_id", pl.col("reason").cast(pl.String), pl.col("detail").cast(pl.String)) for r in reasons]
    )
    return out.sort("batch_id", "reason")


def narrative(
    header: dict[str, Any],
    *,
    outcome: dict[str, Any] | None,
    cqas: pl.DataFrame,
    excursion_table: pl.DataFrame,
    completeness_table: pl.DataFrame,
    campaign_outcomes: pl.DataFrame | None = None,
) -> str:
    """A short paragraph in plain words stating the batch's outcome and its exceptions.

    Written only from the numbers passed in (no hand-edited text): status and duration, peak VCD
    and titer with their rank in the campaign, CQAs in/out of spec, the count of excursions by
    severity with the most severe named, missing samples and flags.
    """
    b = header["batch_id"]
    parts = []
    status = header.get("status") or "of unknown status"
    dur = header.get("duration_d")
    parts.append(
        f"Batch {b} ({header.get('product') or 'product not stated'}, {_fmt(header.get('scale_l'))} L) is {status}"
        + (f" after {dur:.1f} days." if dur is not None else ".")
    )
    if outcome:
        s = []
        if outcome.get("peak_vcd") is not None:
            s.append(
                f"VCD peaked at {outcome['peak_vcd']:.1f} ×10⁶ cells/mL on day {outcome['peak_vcd_day']:.1f}"
                + _rank(campaign_outcomes, "peak_vcd", outcome["peak_vcd"])
            )
        if outcome.get("final_titer") is not None:
            s.append(
                f"the final titer was {outcome['final_titer']:.0f} mg/L"
                + _rank(campaign_outcomes, "final_titer", outcome["final_titer"])
            )
        if outcome.get("final_viability") is not None:
            s.append(f"final viability {outcome['final_viability']:.0f} %")
        if s:
            parts.append(_sentence(s))
    if cqas.is_empty():
        parts.append("No quality results are recorded.")
    else:
        bad = cqas.filter(pl.col("status") == "out of spec")
        n_spec = cqas.filter(pl.col("status") != "no spec").height
        if bad.is_empty():
            parts.append(f"All {n_spec} CQAs with a specification are within it.")
        else:
            items = ", ".join(
                f"{r['attribute']} ({_fmt(r['value'])} {r['unit'] or ''})".replace(" )", ")")
                for r in bad.iter_rows(named=True)
            )
            parts.append(f"{bad.height} of {n_spec} CQAs are out of specification: {items}.")
    if excursion_table.is_empty():
        parts.append("No value left the campaign envelope or an alarm limit.")
    else:
        counts = excursion_table.group_by("severity").len()
        by = {r["severity"]: r["len"] for r in counts.iter_rows(named=True)}
        text = ", ".join(f"{by[s]} {s}" for s in ("critical", "major", "minor") if s in by)
        first = excursion_table.row(0, named=True)
        parts.append(
            f"There {'is' if excursion_table.height == 1 else 'are'} {excursion_table.height} excursion"
            f"{'s' if excursion_table.height != 1 else ''} ({text}); the most severe: {first['sentence']}"
        )
    missing = int(completeness_table["missing"].sum()) if not completeness_table.is_empty() else 0
    flagged = int(completeness_table["flagged"].sum()) if not completeness_table.is_empty() else 0
    if missing or flagged:
        parts.append(
            f"{missing} expected measurement{'s are' if missing != 1 else ' is'} missing and {flagged} "
            f"{'are' if flagged != 1 else 'is'} flagged."
        )
    else:
        parts.append("Every expected sample is present and none is flagged.")
    return " ".join(parts)


def _fmt(x: Any) -> str:
    if x is None:
        return "?"
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"
    return str(x)


def _sentence(items: list[str]) -> str:
    text = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    return text[0].upper() + text[1:] + "."


def _rank(table: pl.DataFrame | None, col: str, value: float) -> str:
    if table is None or col not in table.columns:
        return ""
    vals = table[col].drop_nulls()
    if len(vals) < 3 or value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    rank = int((vals > value).sum()) + 1
    return f" ({_ordinal(rank)} highest of {len(vals)} batches)"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# ---------------------------------------------------------------------------------------------
# what the report notebooks use: everything a batch or campaign report states, in one object
# ---------------------------------------------------------------------------------------------
KEY_VARIABLES = (
    "vcd",
    "viability",
    "glucose",
    "lactate",
    "glutamine",
    "ammonium",
    "titer",
    "osmolality",
)


@dataclass
class BatchReview:
    """Everything the batch report states about one batch (see :func:`batch_review`)."""

    batch_id: str
    header: dict[str, Any]
    completeness: pl.DataFrame
    envelope: pl.DataFrame
    excursions: pl.DataFrame
    cqas: pl.DataFrame
    outcome: dict[str, Any] | None
    campaign_outcomes: pl.DataFrame
    kinetics: pl.DataFrame
    observations: pl.DataFrame
    narrative: str
    prob: float

    def header_table(self) -> pl.DataFrame:
        """The header as a two-column table for display."""

        def fmt(v: Any) -> str:
            if v is None:
                return "—"
            if hasattr(v, "strftime"):
                return v.strftime("%Y-%m-%d %H:%M UTC")
            return _fmt(v) if isinstance(v, float) else str(v)

        return pl.DataFrame({"field": list(self.header), "value": [fmt(v) for v in self.header.values()]})

    def kinetics_summary(self) -> pl.DataFrame:
        """Peak VCD and when, final viability, IVCD, mean μ in the growth phase, qp, final titer, with
        the campaign median beside each."""
        cols = [
            "peak_vcd",
            "peak_vcd_day",
            "final_viability",
            "final_ivcd",
            "mu_growth",
            "qp",
            "final_titer",
        ]
        units = ["1e6 cells/mL", "d", "%", "1e6 cells*d/mL", "1/d", "pg/cell/d", "mg/L"]
        labels = [
            "peak VCD",
            "day of peak VCD",
            "final viability",
            "final IVCD",
            "mean μ (growth phase)",
            "mean qp (mass balance)",
            "final titer",
        ]
        o = self.outcome or {}
        med = self.campaign_outcomes.select(
            [pl.col(c).median() for c in cols if c in self.campaign_outcomes.columns]
        ).row(0, named=True)
        return pl.DataFrame(
            {
                "quantity": labels,
                "value": [o.get(c) for c in cols],
                "unit": units,
                "campaign median": [med.get(c) for c in cols],
            },
            schema_overrides={"value": pl.Float64, "campaign median": pl.Float64},
        )


def batch_review(campaign, batch_id: str, *, prob: float = 0.90, kinetics: pl.DataFrame | None = None) -> BatchReview:
    """Compute every section of the batch report for ``batch_id``.

    The envelope is the campaign's *other* batches (leave-one-out), so a batch is never compared
    with itself.
    """
    import warnings

    from bioworkbench import kinetics as kin_mod

    _check_batch(campaign, batch_id)
    if kinetics is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kinetics = kin_mod.compute(campaign)
    env = envelope(campaign.observations, exclude=batch_id, prob=prob)
    table = campaign_table(campaign, kinetics)
    header = batch_header(campaign, batch_id)
    comp = completeness(campaign, batch_id)
    exc = excursions(campaign, batch_id, envelope_frame=env, prob=prob)
    cq = cqa_table(campaign, batch_id)
    rows = table.filter(pl.col("batch_id") == batch_id)
    outcome = rows.row(0, named=True) if rows.height else None
    text = narrative(
        header,
        outcome=outcome,
        cqas=cq,
        excursion_table=exc,
        completeness_table=comp,
        campaign_outcomes=table,
    )
    return BatchReview(
        batch_id=batch_id,
        header=header,
        completeness=comp,
        envelope=env,
        excursions=exc,
        cqas=cq,
        outcome=outcome,
        campaign_outcomes=table,
        kinetics=kinetics,
        observations=campaign.observations.filter(pl.col("batch_id") == batch_id),
        narrative=text,
        prob=prob,
    )


@dataclass
class CampaignReview:
    """Everything the campaign report states (see :func:`campaign_review`)."""

    table: pl.DataFrame
    exceptional: pl.DataFrame
    variability: pl.DataFrame
    kinetics: pl.DataFrame
    cqas: list[str]
    cpps: list[str]
    narrative: str


def variability(table: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Batch-to-batch variability of outcome columns: n, mean, SD, CV % (SD/mean), min, median, max."""
    rows = []
    for c in columns:
        s = table[c].cast(pl.Float64).drop_nulls()
        mean = s.mean() if len(s) else None
        sd = s.std() if len(s) > 1 else None
        rows.append(
            {
                "outcome": c,
                "n": len(s),
                "mean": mean,
                "sd": sd,
                "cv_pct": (100 * sd / mean) if sd is not None and mean else None,
                "min": s.min(),
                "median": s.median(),
                "max": s.max(),
            }
        )
    return pl.DataFrame(
        rows,
        schema_overrides={k: pl.Float64 for k in ("mean", "sd", "cv_pct", "min", "median", "max")},
    )


def campaign_review(campaign, *, kinetics: pl.DataFrame | None = None) -> CampaignReview:
    """Compute every section of the campaign report."""
    import warnings

    from bioworkbench import kinetics as kin_mod

    if kinetics is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kinetics = kin_mod.compute(campaign)
    table = campaign_table(campaign, kinetics)
    cqas = sorted(campaign.quality["attribute"].unique().to_list())
    outcome_cols = [c for c in ("peak_vcd", "mu_growth", "qp", "final_viability", "final_titer") if c in table.columns]
    var = variability(
        table.filter(pl.col("status") == "completed") if "status" in table.columns else table,
        outcome_cols + [c for c in cqas if c in table.columns and c not in outcome_cols],
    )
    exc = exceptional_batches(campaign, table)
    n = table.height
    n_done = table.filter(pl.col("status") == "completed").height if "status" in table.columns else n
    n_fail = table.filter(pl.col("cqas_out_of_spec") > 0).height
    worst = exc.filter(pl.col("reason") != "flagged data")["batch_id"].unique().sort().to_list()
    titer = var.filter(pl.col("outcome") == "final_titer")
    t_text = ""
    if titer.height and titer["mean"][0] is not None:
        t_text = (
            f" Final titer of the completed batches: mean {titer['mean'][0]:.0f} mg/L, CV {titer['cv_pct'][0]:.0f} %, "
            f"range {titer['min'][0]:.0f}–{titer['max'][0]:.0f} mg/L."
        )
    text = (
        f"The campaign holds {n} batches, {n_done} completed. "
        f"{n_fail} batch{'es have' if n_fail != 1 else ' has'} at least "
        f"one CQA out of specification.{t_text} "
        + (f"Batches to look at: {', '.join(worst)} (reasons below)." if worst else "No batch stands out.")
    )
    return CampaignReview(
        table=table,
        exceptional=exc,
        variability=var,
        kinetics=kinetics,
        cqas=cqas,
        cpps=campaign.cpps,
        narrative=text,
    )


def markdown(text: str) -> Any:
    """Display ``text`` as Markdown in a notebook (IPython's ``Markdown``)."""
    from IPython.display import Markdown

    return Markdown(text)


class Table:
    """A frame shown as a plain HTML table in notebooks and reports (no dtype row, no quotes,
    numbers to 4 significant digits, every row up to ``max_rows``)."""

    def __init__(self, frame: pl.DataFrame, *, max_rows: int = 500, caption: str | None = None) -> None:
        self.frame = frame
        self.max_rows = max_rows
        self.caption = caption

    def _repr_html_(self) -> str:
        import html as _html

        def cell(v: Any) -> str:
            if v is None:
                return "—"
            if isinstance(v, float):
                if math.isnan(v):
                    return "NaN"
                return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
            if isinstance(v, list):
                return ", ".join(cell(x) for x in v) or "—"
            if hasattr(v, "strftime"):
                return v.strftime("%Y-%m-%d %H:%M")
            return _html.escape(str(v))

        df = self.frame
        head = "".join(f"<th>{_html.escape(c)}</th>" for c in df.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in df.head(self.max_rows).iter_rows()
        )
        more = f"<p><em>{df.height - self.max_rows} more rows not shown.</em></p>" if df.height > self.max_rows else ""
        cap = f"<caption>{_html.escape(self.caption)}</caption>" if self.caption else ""
        style = (
            "<style>.bw-table{border-collapse:collapse;font-size:12px}.bw-table td,.bw-table th{padding:3px 8px;"
            "border-bottom:1px solid #ddd;text-align:left !important;vertical-align:top}"
            ".bw-table th{background:#f4f6f8}</style>"
        )
        return f'{style}<table class="bw-table">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}'

    def __repr__(self) -> str:
        return repr(self.frame)


def table(frame: pl.DataFrame, *, max_rows: int = 500, caption: str | None = None) -> Table:
    """Show ``frame`` as a clean HTML table (for report notebooks)."""
    return Table(frame, max_rows=max_rows, caption=caption)


@dataclass
class ForecastSection:
    """The batch report's forecast section (see :func:`forecast_section`)."""

    batch_id: str
    known_days: float
    forecast: Any
    observations: pl.DataFrame
    text: str

    def plot(self) -> Any:
        from bioworkbench import plots

        if self.forecast is None:
            return markdown("")
        return plots.plot_forecast(
            self.forecast.trajectory,
            self.observations,
            batch_id=self.batch_id,
            known_h=self.forecast.known_h[self.batch_id],
            spec_lower=self.forecast.spec_lower,
        )

    def table(self) -> Table:
        if self.forecast is None:
            return table(pl.DataFrame())
        return table(self.forecast.endpoints.filter(pl.col("batch_id") == self.batch_id))


def forecast_section(
    campaign,
    batch_id: str,
    *,
    known_days: float,
    draws: int = 500,
    tune: int = 500,
    chains: int = 2,
    random_seed: int | None = None,
    prob: float = 0.9,
) -> ForecastSection:
    """Forecast the end of ``batch_id`` from its first ``known_days`` days (0: no forecast).

    The history is every other completed batch with enough data (see
    :func:`bioworkbench.models.forecast`); the text states the predicted end with its interval, the
    probability of missing the titer specification, and the sampler diagnostics.
    """
    _check_batch(campaign, batch_id)
    obs = campaign.observations.filter(pl.col("batch_id") == batch_id)
    if not known_days or known_days <= 0:
        return ForecastSection(batch_id, 0.0, None, obs, "No forecast was requested for this report (known_days = 0).")
    from bioworkbench.models import diagnostics_markdown, forecast

    fc = forecast(
        campaign,
        batch_id,
        known_h=known_days * 24,
        draws=draws,
        tune=tune,
        chains=chains,
        random_seed=random_seed,
        prob=prob,
    )
    text = (
        fc.sentence(batch_id)
        + "\n\n"
        + diagnostics_markdown(fc.diagnostics["growth"], name="Growth model")
        + "\n\n"
        + diagnostics_markdown(fc.diagnostics["titer"], name="Titer model")
    )
    return ForecastSection(batch_id, known_days, fc, obs, text)

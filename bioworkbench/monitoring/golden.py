"""Golden batch: the envelope of normal batches along maturity, and run rules for leaving it.

The envelope of each variable at each maturity is the centre and spread of the reference batches —
mean ± k standard deviations (``method="sd"``) or central quantiles (``method="quantile"``), computed
by the same :func:`~bioworkbench.monitoring.envelope.band` as the campaign envelope by culture day,
with the same columns. Any
batch is then standardised against it, ``z = (value − centre) / sd``, and run rules in the spirit
of the Western Electric rules (Western Electric 1956; Montgomery, *Introduction to Statistical
Quality Control*, ch. 6) turn the z-scores into a tidy table of excursions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from bioworkbench.checks import require_choice, require_columns, require_number, require_prob
from bioworkbench.errors import ArgumentError, ConfigError
from bioworkbench.monitoring.envelope import band
from bioworkbench.monitoring.grid import ALIGN_HINT, _aligned_frame

__all__ = ["RunRule", "deviations", "golden_batch", "run_rules"]


def golden_batch(
    aligned: pl.DataFrame,
    *,
    reference_batches: Sequence[str] | None = None,
    method: str = "sd",
    k: float = 3.0,
    prob: float = 0.99,
    min_batches: int = 3,
) -> pl.DataFrame:
    """Envelope of each variable along maturity from the reference batches.

    Parameters
    ----------
    aligned
        Aligned frame ``batch_id, maturity, variable, value`` (from
        :func:`~bioworkbench.monitoring.align_by_time` or the alignments of
        :mod:`~bioworkbench.monitoring.alignment`); null and NaN values are left out.
    reference_batches
        Batches that define normal operation (default: all batches of ``aligned``).
    method
        ``"sd"`` (mean ± k·SD) or ``"quantile"`` (central ``prob`` quantiles around the median).
    k
        Half-width of the ``"sd"`` band in standard deviations (> 0).
    prob
        Mass inside the ``"quantile"`` band, strictly between 0 and 1.
    min_batches
        Fewest reference values a maturity needs to get an envelope (integer ≥ 2).

    Returns
    -------
    polars.DataFrame
        ``variable, maturity, center, median, sd, lower, upper, n_batches`` (the columns of every
        envelope, :func:`~bioworkbench.monitoring.envelope.band`) with ``center`` the mean and
        ``lower/upper = center ∓ k·sd`` (``method="sd"``, sd with n − 1) or the ``(1 ∓ prob)/2``
        quantiles and the median as centre (``method="quantile"``). Maturities with fewer than
        ``min_batches`` reference batches are left out.

    Raises
    ------
    ArgumentError
        ``aligned`` is not a frame (a Campaign, say); ``reference_batches`` is a single string;
        ``k``, ``prob``, ``min_batches`` or ``method`` out of range.
    SchemaError
        ``aligned`` lacks a column (e.g. ``campaign.observations``, which has ``time_h`` but no
        ``maturity``): the message names it and says how to align the observations.
    ConfigError
        A reference batch that is not in ``aligned``.
    """
    fn = "golden_batch"
    aligned = _aligned_input(aligned, fn)
    require_choice(method, ("sd", "quantile"), function=fn, argument="method")
    k = require_number(k, function=fn, argument="k", minimum=0, min_inclusive=False)
    prob = require_prob(prob, function=fn)
    min_batches = require_number(min_batches, function=fn, argument="min_batches", minimum=2, integer=True)
    a = aligned.filter(pl.col("value").is_not_null() & pl.col("value").is_not_nan())
    if isinstance(reference_batches, str):
        raise ArgumentError(
            f"{fn}: reference_batches must be a list of batch ids; got the str {reference_batches!r}. "
            f"Wrap it: [{reference_batches!r}]."
        )
    if reference_batches is not None:
        missing = sorted(set(reference_batches) - set(a["batch_id"].unique().to_list()))
        if missing:
            raise ConfigError(f"reference batch(es) {', '.join(missing)} are not in the aligned data.")
        a = a.filter(pl.col("batch_id").is_in(list(reference_batches)))
    return band(a, by=("variable", "maturity"), method=method, k=k, prob=prob, min_batches=min_batches)


def deviations(
    aligned: pl.DataFrame, envelope: pl.DataFrame, *, batch_ids: Sequence[str] | None = None
) -> pl.DataFrame:
    """Every aligned point against the envelope: ``z = (value − center)/sd`` and whether, where and by
    how much it leaves the band (``excess`` = value − nearest edge, 0 inside).

    Parameters
    ----------
    aligned
        Aligned frame (see :func:`golden_batch`).
    envelope
        The frame of :func:`golden_batch`.
    batch_ids
        Batches to compare (default: all of ``aligned``).

    Returns
    -------
    polars.DataFrame
        ``batch_id, maturity, variable, value[, time_h], center, sd, lower, upper, n_batches, z, excess``.

    Raises
    ------
    ArgumentError
        ``aligned`` or ``envelope`` is not a frame, or the two are swapped.
    SchemaError
        A required column is missing from either (named, with how to make the frame).
    """
    a = _aligned_input(aligned, "deviations")
    envelope = _envelope_input(envelope, "deviations")
    if isinstance(batch_ids, str):
        batch_ids = [batch_ids]
    a = a if batch_ids is None else a.filter(pl.col("batch_id").is_in(list(batch_ids)))
    cols = ["batch_id", "maturity", "variable", "value"] + (["time_h"] if "time_h" in a.columns else [])
    return (
        a.select(cols)
        .filter(pl.col("value").is_not_null() & pl.col("value").is_not_nan())
        .join(envelope, on=["variable", "maturity"], how="inner")
        .with_columns(
            z=pl.when(pl.col("sd") > 0).then((pl.col("value") - pl.col("center")) / pl.col("sd")),
            excess=pl.when(pl.col("value") > pl.col("upper"))
            .then(pl.col("value") - pl.col("upper"))
            .when(pl.col("value") < pl.col("lower"))
            .then(pl.col("value") - pl.col("lower"))
            .otherwise(0.0),
        )
        .sort("batch_id", "variable", "maturity")
    )


def _aligned_input(aligned: object, function: str) -> pl.DataFrame:
    """An aligned frame with its four columns, or an error that says how to make one."""
    frame = _aligned_frame(aligned, function=function)
    hint = ALIGN_HINT
    if "maturity" not in frame.columns and "time_h" in frame.columns:
        hint = (
            "This looks like observations (time_h but no maturity): align them first, e.g. "
            "bw.monitoring.align_by_time(campaign, variables=[...], grid_h=4)."
        )
    elif "center" in frame.columns and "batch_id" not in frame.columns:
        hint = "This looks like the envelope of golden_batch: pass (aligned, envelope) in that order. " + ALIGN_HINT
    require_columns(frame, ("batch_id", "maturity", "variable", "value"), what=f"{function}: aligned", hint=hint)
    return frame


def _envelope_input(envelope: object, function: str) -> pl.DataFrame:
    """The frame of :func:`golden_batch`, or an error naming what is missing."""
    from bioworkbench.checks import require_frame

    hint = "Make it with bw.monitoring.golden_batch(aligned, reference_batches=[...])."
    frame = require_frame(envelope, function=function, argument="envelope", hint=hint)
    if "batch_id" in frame.columns and "center" not in frame.columns:
        hint = "It looks like an aligned frame: pass (aligned, envelope) in that order. " + hint
    require_columns(frame, ("variable", "maturity", "center", "sd", "lower", "upper"), what=f"{function}: envelope",
                    hint=hint)  # fmt: skip
    return frame


@dataclass(frozen=True)
class RunRule:
    """``n`` consecutive points beyond ``sigma`` standard deviations on the same side.

    Attributes
    ----------
    name
        What the rule is called in the result.
    sigma
        Distance from the centre, in standard deviations of the reference batches.
    n
        Consecutive points needed.
    severity
        ``"major"`` or ``"minor"``.
    """

    name: str
    sigma: float
    n: int
    severity: str = "major"


DEFAULT_RULES = (
    RunRule("1 point beyond 3 SD", 3.0, 1, "major"),
    RunRule("3 consecutive beyond 2 SD (same side)", 2.0, 3, "minor"),
)


def run_rules(
    aligned: pl.DataFrame,
    envelope: pl.DataFrame,
    *,
    rules: Sequence[RunRule] = DEFAULT_RULES,
    batch_ids: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Apply run rules to every batch and variable; one row per run of violating points.

    Parameters
    ----------
    aligned
        Aligned frame (see :func:`golden_batch`).
    envelope
        The frame of :func:`golden_batch`.
    rules
        The rules (default: one point beyond 3 SD, major; three consecutive beyond 2 SD on the same
        side, minor).
    batch_ids
        Batches to check (default: all of ``aligned``).

    Returns
    -------
    polars.DataFrame
        ``batch_id, variable, rule, severity, start_maturity, end_maturity, start_h, end_h,
        n_points, worst_z, worst_value, sentence``.

    Raises
    ------
    ArgumentError
        ``aligned`` or ``envelope`` is not a frame; a rule that is not a :class:`RunRule`.
    SchemaError
        A required column is missing (as in :func:`deviations`).
    """
    if isinstance(rules, RunRule) or not all(isinstance(r, RunRule) for r in rules):
        raise ArgumentError(
            "run_rules: rules must be a list of RunRule(name, sigma, n), e.g. [RunRule('1 beyond 3 SD', 3.0, 1)]; "
            f"got {rules!r}."
        )
    aligned = _aligned_input(aligned, "run_rules")
    envelope = _envelope_input(envelope, "run_rules")
    # NaN compares greater than any number in polars: keep finite z-scores only
    dev = deviations(aligned, envelope, batch_ids=batch_ids).filter(pl.col("z").is_finite())
    has_t = "time_h" in dev.columns
    out = []
    for r in rules:
        side = pl.when(pl.col("z") > r.sigma).then(1).when(pl.col("z") < -r.sigma).then(-1).otherwise(0)
        d = dev.with_columns(_side=side).with_columns(
            _run=(pl.col("_side") != pl.col("_side").shift(1)).fill_null(True).cum_sum().over("batch_id", "variable")
        )
        runs = (
            d.filter(pl.col("_side") != 0)
            .group_by("batch_id", "variable", "_run")
            .agg(
                n_points=pl.len(),
                start_maturity=pl.col("maturity").min(),
                end_maturity=pl.col("maturity").max(),
                start_h=pl.col("time_h").min() if has_t else pl.lit(None, pl.Float64),
                end_h=pl.col("time_h").max() if has_t else pl.lit(None, pl.Float64),
                worst_z=pl.col("z").get(pl.col("z").abs().arg_max()),
                worst_value=pl.col("value").get(pl.col("z").abs().arg_max()),
            )
            .filter(pl.col("n_points") >= r.n)
            .with_columns(rule=pl.lit(r.name), severity=pl.lit(r.severity))
        )
        out.append(runs)
    res = pl.concat(out, how="vertical_relaxed") if out else pl.DataFrame()
    if res.is_empty():
        return pl.DataFrame(
            schema={
                "batch_id": pl.String,
                "variable": pl.String,
                "rule": pl.String,
                "severity": pl.String,
                "start_maturity": pl.Float64,
                "end_maturity": pl.Float64,
                "start_h": pl.Float64,
                "end_h": pl.Float64,
                "n_points": pl.UInt32,
                "worst_z": pl.Float64,
                "worst_value": pl.Float64,
                "sentence": pl.String,
            }
        )
    when = (
        pl.when(pl.col("start_h").is_not_null() & (pl.col("n_points") == 1))
        .then(pl.format("on day {}", (pl.col("start_h") / 24).round(1)))
        .when(pl.col("start_h").is_not_null())
        .then(pl.format("from day {} to day {}", (pl.col("start_h") / 24).round(1), (pl.col("end_h") / 24).round(1)))
        .otherwise(
            pl.format("from maturity {} to {}", pl.col("start_maturity").round(2), pl.col("end_maturity").round(2))
        )
    )
    return (
        res.with_columns(
            sentence=pl.format(
                "{}: {} ({} point(s) {}, worst z = {}).",
                "variable",
                "rule",
                "n_points",
                when,
                pl.col("worst_z").round(1),
            )
        )
        .select(
            "batch_id",
            "variable",
            "rule",
            "severity",
            "start_maturity",
            "end_maturity",
            "start_h",
            "end_h",
            "n_points",
            "worst_z",
            "worst_value",
            "sentence",
        )
        .sort("batch_id", "severity", "start_maturity")
    )

"""Golden batch: the envelope of normal batches along maturity, and run rules for leaving it.

The envelope of each variable at each maturity is the centre and spread of the reference batches —
mean ± k standard deviations (``method="sd"``) or central quantiles (``method="quantile"``). Any
batch is then standardised against it, ``z = (value − centre) / sd``, and run rules in the spirit
of the Western Electric rules (Western Electric 1956; Montgomery, *Introduction to Statistical
Quality Control*, ch. 6) turn the z-scores into a tidy table of excursions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from bioworkbench.errors import ConfigError

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

    Returns
    -------
    polars.DataFrame
        ``variable, maturity, center, sd, lower, upper, n_batches`` with ``center`` the mean and
        ``lower/upper = center ∓ k·sd`` (``method="sd"``, sd with n − 1) or the ``(1 ∓ prob)/2``
        quantiles and the median as centre (``method="quantile"``). Maturities with fewer than
        ``min_batches`` reference values are left out.
    """
    if method not in ("sd", "quantile"):
        raise ConfigError(f"method must be 'sd' or 'quantile'; got {method!r}.")
    a = aligned.filter(pl.col("value").is_not_null() & pl.col("value").is_not_nan())
    if reference_batches is not None:
        missing = sorted(set(reference_batches) - set(a["batch_id"].unique().to_list()))
        if missing:
            raise ConfigError(f"reference batch(es) {', '.join(missing)} are not in the aligned data.")
        a = a.filter(pl.col("batch_id").is_in(list(reference_batches)))
    g = a.group_by("variable", "maturity")
    if method == "sd":
        env = g.agg(
            center=pl.col("value").mean(), sd=pl.col("value").std(), n_batches=pl.col("batch_id").n_unique()
        ).with_columns(lower=pl.col("center") - k * pl.col("sd"), upper=pl.col("center") + k * pl.col("sd"))
    else:
        env = g.agg(
            center=pl.col("value").median(),
            sd=pl.col("value").std(),
            lower=pl.col("value").quantile((1 - prob) / 2, interpolation="linear"),
            upper=pl.col("value").quantile((1 + prob) / 2, interpolation="linear"),
            n_batches=pl.col("batch_id").n_unique(),
        )
    return (
        env.filter(pl.col("n_batches") >= min_batches)
        .select("variable", "maturity", "center", "sd", "lower", "upper", "n_batches")
        .sort("variable", "maturity")
    )


def deviations(
    aligned: pl.DataFrame, envelope: pl.DataFrame, *, batch_ids: Sequence[str] | None = None
) -> pl.DataFrame:
    """Every aligned point against the envelope: ``z = (value − center)/sd`` and whether, where and by
    how much it leaves the band (``excess`` = value − nearest edge, 0 inside)."""
    a = aligned if batch_ids is None else aligned.filter(pl.col("batch_id").is_in(list(batch_ids)))
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


@dataclass(frozen=True)
class RunRule:
    """``n`` consecutive points beyond ``sigma`` standard deviations on the same side."""

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

    Returns
    -------
    polars.DataFrame
        ``batch_id, variable, rule, severity, start_maturity, end_maturity, start_h, end_h,
        n_points, worst_z, worst_value, sentence``.
    """
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

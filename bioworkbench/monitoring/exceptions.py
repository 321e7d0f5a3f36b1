"""Release by exception: one table of everything a reviewer must look at for each batch.

A batch with no rows is released by exception. The table collects, with one vocabulary
(``batch_id, category, variable, time_h, value, limit, severity, sentence``):

* CQA results out of specification and CPP setpoints outside their proven acceptable range;
* alarm-limit excursions of in-process variables and online probes drifting from their offline
  reference (:func:`bioworkbench.review.excursions`);
* golden-batch run-rule violations (:func:`bioworkbench.monitoring.golden.run_rules`), when an
  aligned frame and its envelope are given;
* MSPC alarms (T² or SPE above its limit) of a fitted :class:`~bioworkbench.monitoring.BatchPCA`;
* data gaps (expected samples missing) and flagged values other than censored results (<LOD).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

__all__ = ["exception_counts", "exceptions"]

SEVERITY_ORDER = {"critical": 0, "major": 1, "minor": 2}
COLUMNS = ("batch_id", "category", "variable", "time_h", "value", "limit", "severity", "sentence")


def exceptions(
    campaign,
    specs: pl.DataFrame | None = None,
    *,
    batch_ids: Sequence[str] | None = None,
    golden: tuple[pl.DataFrame, pl.DataFrame] | None = None,
    mspc: Any = None,
    mspc_prob: float = 0.99,
    include_envelope: bool = False,
) -> pl.DataFrame:
    """Everything a reviewer must look at, per batch (see the module docstring).

    Parameters
    ----------
    specs
        Limits to use instead of ``campaign.specs`` (same columns).
    golden
        ``(aligned, envelope)`` from the alignment functions and :func:`golden_batch`.
    mspc
        A fitted ``BatchPCA``; batches whose T² or SPE exceed the limits at ``mspc_prob`` are listed
        with their top contributing variable.
    include_envelope
        Also list points outside the campaign's 90 % band (minor; off by default: by construction
        about 10 % of points of a normal batch lie outside it).
    """
    from bioworkbench import review
    from bioworkbench.campaign import Campaign

    camp = campaign
    if specs is not None:
        camp = Campaign(**{**campaign.frames(), "specs": specs}, name=campaign.name, validate=False)
    ids = list(batch_ids) if batch_ids is not None else camp.batch_ids
    rows: list[pl.DataFrame] = []
    env = review.envelope(camp.observations, prob=0.9)
    for b in ids:
        ex = review.excursions(camp, b, envelope_frame=env)
        if not include_envelope:
            ex = ex.filter(pl.col("severity") != "minor")
        rows.append(
            ex.select(
                "batch_id",
                category=pl.when(pl.col("kind") == "CQA spec")
                .then(pl.lit("CQA out of spec"))
                .when(pl.col("kind") == "PAR")
                .then(pl.lit("CPP outside PAR"))
                .when(pl.col("kind") == "probe drift")
                .then(pl.lit("probe drift"))
                .when(pl.col("kind").str.starts_with("envelope"))
                .then(pl.lit("outside campaign band"))
                .otherwise(pl.lit("limit excursion")),
                variable="variable",
                time_h="start_h",
                value="value",
                limit="limit",
                severity="severity",
                sentence="sentence",
            )
        )
        comp = review.completeness(camp, b)
        gaps = comp.filter(pl.col("missing") > 0)
        rows.append(
            gaps.select(
                batch_id=pl.lit(b),
                category=pl.lit("data gap"),
                variable="variable",
                time_h=(pl.col("missing_days").list.first() * 24).cast(pl.Float64),
                value=pl.col("present").cast(pl.Float64),
                limit=pl.col("expected").cast(pl.Float64),
                severity=pl.lit("minor"),
                sentence=pl.format(
                    "{}: {} of {} expected samples missing (days {}).",
                    "variable",
                    "missing",
                    "expected",
                    pl.col("missing_days").cast(pl.List(pl.String)).list.join(", "),
                ),
            )
        )
    flags = camp.observations.filter(
        pl.col("batch_id").is_in(ids) & pl.col("flag").is_not_null() & ~pl.col("flag").str.contains(r"^[<>]")
    )
    rows.append(
        flags.select(
            "batch_id",
            category=pl.lit("flagged value"),
            variable="variable",
            time_h="time_h",
            value="value",
            limit=pl.lit(None, pl.Float64),
            severity=pl.lit("minor"),
            sentence=pl.format(
                "{} at day {} flagged {}: {}",
                "variable",
                (pl.col("time_h") / 24).round(1),
                "flag",
                pl.col("flag_reason").fill_null("no reason given"),
            ),
        )
    )
    if golden is not None:
        from bioworkbench.monitoring.golden import run_rules

        aligned, envelope = golden
        rr = run_rules(aligned, envelope, batch_ids=ids)
        rows.append(
            rr.select(
                "batch_id",
                category=pl.lit("golden batch"),
                variable="variable",
                time_h="start_h",
                value="worst_value",
                limit=pl.lit(None, pl.Float64),
                severity="severity",
                sentence="sentence",
            )
        )
    if mspc is not None:
        stats = mspc.batch_statistics(prob=mspc_prob).filter(pl.col("batch_id").is_in(ids))
        alarms = stats.filter((pl.col("t2") > pl.col("t2_limit")) | (pl.col("spe") > pl.col("spe_limit")))
        for r in alarms.iter_rows(named=True):
            stat, val, lim = (
                ("SPE", r["spe"], r["spe_limit"]) if r["spe"] > r["spe_limit"] else ("T²", r["t2"], r["t2_limit"])
            )
            top = _top_contributor(mspc, r["batch_id"], "spe" if stat == "SPE" else "t2")
            rows.append(
                pl.DataFrame(
                    {
                        "batch_id": [r["batch_id"]],
                        "category": ["MSPC alarm"],
                        "variable": [top],
                        "time_h": [None],
                        "value": [val],
                        "limit": [lim],
                        "severity": ["major"],
                        "sentence": [
                            f"batch {stat} = {val:.3g} above its {mspc_prob:.0%} limit {lim:.3g}; "
                            f"top contributor: {top}."
                        ],
                    },
                    schema_overrides={"time_h": pl.Float64},
                )
            )
    out = (
        pl.concat(
            [
                r.select([pl.col(c) for c in COLUMNS]).with_columns(
                    pl.col("time_h", "value", "limit").cast(pl.Float64), pl.col("variable").cast(pl.String)
                )
                for r in rows
                if r.height
            ],
            how="vertical_relaxed",
        )
        if any(r.height for r in rows)
        else pl.DataFrame(
            schema={
                "batch_id": pl.String,
                "category": pl.String,
                "variable": pl.String,
                "time_h": pl.Float64,
                "value": pl.Float64,
                "limit": pl.Float64,
                "severity": pl.String,
                "sentence": pl.String,
            }
        )
    )
    order = pl.col("severity").replace_strict(SEVERITY_ORDER, default=9, return_dtype=pl.Int8)
    return out.sort(["batch_id", order, "time_h"], nulls_last=True)


def _top_contributor(mspc: Any, batch_id: str, statistic: str) -> str:
    try:
        c = mspc.contributions(batch_id)
    except Exception:  # a model without contributions for this batch: say so rather than fail
        return "unknown"
    col = next((k for k in (statistic, f"{statistic}_contribution", "contribution") if k in c.columns), None)
    if col is None or "variable" not in c.columns:
        return "unknown"
    top = c.group_by("variable").agg(pl.col(col).abs().sum()).sort(col, descending=True)
    return str(top["variable"][0]) if top.height else "unknown"


def exception_counts(table: pl.DataFrame, batch_ids: Sequence[str]) -> pl.DataFrame:
    """Counts per batch and severity (batches without exceptions are released by exception)."""
    counts = table.group_by("batch_id", "severity").len().pivot(on="severity", index="batch_id", values="len")
    base = pl.DataFrame({"batch_id": list(batch_ids)})
    out = base.join(counts, on="batch_id", how="left")
    for s in SEVERITY_ORDER:
        if s not in out.columns:
            out = out.with_columns(pl.lit(0, pl.UInt32).alias(s))
    out = out.with_columns(pl.col(list(SEVERITY_ORDER)).fill_null(0))
    return (
        out.with_columns(
            total=pl.sum_horizontal(list(SEVERITY_ORDER)),
        )
        .with_columns(released_by_exception=pl.col("total") == 0)
        .select("batch_id", *SEVERITY_ORDER, "total", "released_by_exception")
    )


def exceptions_summary(table: pl.DataFrame, batch_id: str) -> str:
    """One sentence: released by exception, or how many exceptions of which severity."""
    t = table.filter(pl.col("batch_id") == batch_id)
    if t.is_empty():
        return f"**Batch {batch_id} is released by exception**: nothing needs a reviewer's attention."
    by = {r["severity"]: r["len"] for r in t.group_by("severity").len().iter_rows(named=True)}
    parts = ", ".join(f"{by[s]} {s}" for s in SEVERITY_ORDER if s in by)
    plural = "s" if t.height != 1 else ""
    return f"**Batch {batch_id} needs review**: {t.height} exception{plural} ({parts}), listed below."

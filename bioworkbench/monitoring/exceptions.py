"""Release by exception: everything a reviewer must look at for each batch, and the release verdict.

:func:`exceptions` collects, with one vocabulary
(``batch_id, category, variable, time_h, value, limit, severity, sentence``):

* CQA results out of specification and CPP setpoints outside their proven acceptable range;
* **expected results that are missing**: every CQA with a ``spec`` in ``campaign.specs`` that a
  completed batch has no result for (category ``missing result``, severity ``major``) — missing
  data are not the absence of a problem;
* alarm-limit excursions of in-process variables and online probes drifting from their offline
  reference (:func:`bioworkbench.monitoring.checks.excursions`);
* golden-batch run-rule violations (:func:`bioworkbench.monitoring.golden.run_rules`), when an
  aligned frame and its envelope are given;
* MSPC alarms (T² or SPE above its limit) of a fitted :class:`~bioworkbench.monitoring.BatchPCA`;
* data gaps (expected samples missing), completed batches whose data end well before the others'
  (``short run``), and flagged values other than censored results (<LOD).

:func:`release_status` turns them into one decision per batch: ``released`` only for a completed
batch with every expected result present and no exception; ``needs review`` for any exception
(or a batch whose status is not recorded); ``not releasable`` for a batch that is planned, running,
aborted or failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from bioworkbench.checks import require_campaign, require_frame
from bioworkbench.errors import ArgumentError
from bioworkbench.monitoring.checks import SEVERITY_ORDER, _batch_list, completeness, excursions

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = [
    "VERDICTS",
    "exception_counts",
    "exceptions",
    "expected_results",
    "release_status",
]

COLUMNS = ("batch_id", "category", "variable", "time_h", "value", "limit", "severity", "sentence")
_SCHEMA = {
    "batch_id": pl.String,
    "category": pl.String,
    "variable": pl.String,
    "time_h": pl.Float64,
    "value": pl.Float64,
    "limit": pl.Float64,
    "severity": pl.String,
    "sentence": pl.String,
}
#: the three release verdicts, from best to worst
VERDICTS = ("released", "needs review", "not releasable")
#: categories in the plural, for "3 data gaps"
_PLURALS = {
    "CQA out of spec": "CQAs out of spec",
    "CPP outside PAR": "CPPs outside PAR",
    "missing result": "missing results",
    "limit excursion": "limit excursions",
    "probe drift": "drifting probes",
    "outside campaign band": "points outside the campaign band",
    "data gap": "data gaps",
    "short run": "short runs",
    "flagged value": "flagged values",
    "golden batch": "golden-batch rule violations",
    "MSPC alarm": "MSPC alarms",
}
#: statuses that can never be released, and why
_NOT_RELEASABLE = {
    "planned": "the batch is planned and has not started",
    "running": "the batch is still running; its harvest results are not known yet",
    "aborted": "the batch was aborted",
    "failed": "the batch failed",
}


def expected_results(campaign: Campaign) -> list[str]:
    """The quality attributes every completed batch must have a result for.

    An attribute is expected when it has a specification (``kind == "spec"`` in
    ``campaign.specs``) and is a quality attribute: it has results in ``campaign.quality`` for some
    batch, or it is neither an observed in-process variable nor a CPP (a spec on ``titer`` in a
    campaign without harvest titer results is an in-process limit, checked on the samples).

    Parameters
    ----------
    campaign
        A :class:`~bioworkbench.Campaign`.

    Returns
    -------
    list of str
        The expected attributes, sorted.
    """
    require_campaign(campaign, function="expected_results")
    specs = campaign.specs.filter(pl.col("kind") == "spec")["name"].unique().to_list()
    in_quality = set(campaign.quality["attribute"].unique().to_list())
    observed = set(campaign.observations["variable"].unique().to_list())
    cpps = set(campaign.cpps)
    return sorted(s for s in specs if s in in_quality or (s not in observed and s not in cpps))


def _missing_results(campaign: Campaign, ids: list[str]) -> pl.DataFrame:
    expected = expected_results(campaign)
    done = campaign.batches.filter(pl.col("batch_id").is_in(ids) & (pl.col("status") == "completed")).select("batch_id")
    if not expected or done.is_empty():
        return pl.DataFrame(schema=_SCHEMA)
    have = campaign.quality.filter(pl.col("value").is_not_null()).select("batch_id", variable="attribute")
    missing = done.join(pl.DataFrame({"variable": expected}), how="cross").join(
        have, on=["batch_id", "variable"], how="anti"
    )
    return missing.select(
        "batch_id",
        category=pl.lit("missing result"),
        variable="variable",
        time_h=pl.lit(None, pl.Float64),
        value=pl.lit(None, pl.Float64),
        limit=pl.lit(None, pl.Float64),
        severity=pl.lit("major"),
        sentence=pl.format("no {} result is recorded for this completed batch; it has a specification.", "variable"),
    )


#: a completed batch whose data end before this share of the campaign's typical duration ran short
SHORT_RUN_SHARE = 0.75


def _short_runs(campaign: Campaign, ids: list[str]) -> pl.DataFrame:
    """Completed batches whose offline data end well before those of the other completed batches.

    Typical duration: the median last sample day of the completed batches (at least 3 of them). A
    completed batch whose last sample is before ``SHORT_RUN_SHARE`` of it is listed (``short run``,
    major): a culture stopped early, or samples never entered.
    """
    done = campaign.batches.filter(pl.col("status") == "completed")["batch_id"]
    last = (
        campaign.observations.filter((pl.col("source") != "online") & pl.col("batch_id").is_in(done.implode()))
        .group_by("batch_id")
        .agg(last_day=pl.col("time_h").max() / 24)
    )
    if last.height < 3:
        return pl.DataFrame(schema=_SCHEMA)
    typical = float(last["last_day"].median())
    short = last.filter(pl.col("batch_id").is_in(ids) & (pl.col("last_day") < SHORT_RUN_SHARE * typical))
    return short.select(
        "batch_id",
        category=pl.lit("short run"),
        variable=pl.lit(None, pl.String),
        time_h=pl.col("last_day") * 24,
        value=pl.col("last_day"),
        limit=pl.lit(typical),
        severity=pl.lit("major"),
        sentence=pl.format(
            "the samples of this completed batch end on day {}; the completed batches typically run to day {}.",
            pl.col("last_day").round(1),
            pl.lit(round(typical, 1)),
        ),
    )


def exceptions(
    campaign: Campaign,
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
    campaign
        The campaign.
    specs
        Limits to use instead of ``campaign.specs`` (same columns).
    batch_ids
        Batches to review (default: every batch).
    golden
        ``(aligned, envelope)`` from the alignment functions and :func:`golden_batch`.
    mspc
        A fitted ``BatchPCA``; batches whose T² or SPE exceed the limits at ``mspc_prob`` are listed
        with their top contributing variable.
    mspc_prob
        Probability of the MSPC limits.
    include_envelope
        Also list points outside the campaign's 90 % band (minor; off by default: by construction
        about 10 % of points of a normal batch lie outside it).

    Returns
    -------
    polars.DataFrame
        ``batch_id, category, variable, time_h, value, limit, severity, sentence``, sorted by
        batch, severity (critical, major, minor) and time.
    """
    from bioworkbench.campaign import Campaign

    require_campaign(campaign, function="exceptions")
    camp = campaign
    if specs is not None:
        specs = require_frame(
            specs, function="exceptions", argument="specs", columns=("name", "lower", "upper", "kind")
        )
        camp = Campaign(**{**campaign.frames(), "specs": specs}, name=campaign.name)
    ids = _batch_list(camp, batch_ids, function="exceptions")
    rows: list[pl.DataFrame] = []
    ex = excursions(camp, ids, include_envelope=include_envelope)
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
    rows.append(_missing_results(camp, ids))
    rows.append(_short_runs(camp, ids))
    gaps = completeness(camp, ids).filter(pl.col("missing") > 0)
    rows.append(
        gaps.select(
            "batch_id",
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
        rows.append(_golden_rows(golden, ids))
    if mspc is not None:
        rows.append(_mspc_rows(mspc, ids, mspc_prob))
    parts = [
        r.select([pl.col(c) for c in COLUMNS]).with_columns(
            pl.col("time_h", "value", "limit").cast(pl.Float64), pl.col("variable").cast(pl.String)
        )
        for r in rows
        if r.height
    ]
    out = pl.concat(parts, how="vertical_relaxed") if parts else pl.DataFrame(schema=_SCHEMA)
    order = pl.col("severity").replace_strict(SEVERITY_ORDER, default=9, return_dtype=pl.Int8)
    return out.sort(["batch_id", order, "time_h"], nulls_last=True)


def _golden_rows(golden: tuple[pl.DataFrame, pl.DataFrame], ids: list[str]) -> pl.DataFrame:
    from bioworkbench.monitoring.golden import run_rules

    if not (isinstance(golden, tuple | list) and len(golden) == 2):
        raise ArgumentError(
            "exceptions: golden must be a pair (aligned, envelope) from bw.monitoring.align_by_time and "
            f"bw.monitoring.golden_batch; got {type(golden).__name__}."
        )
    aligned, envelope = golden
    rr = run_rules(aligned, envelope, batch_ids=ids)
    return rr.select(
        "batch_id",
        category=pl.lit("golden batch"),
        variable="variable",
        time_h="start_h",
        value="worst_value",
        limit=pl.lit(None, pl.Float64),
        severity="severity",
        sentence="sentence",
    )


def _mspc_rows(mspc: Any, ids: list[str], prob: float) -> pl.DataFrame:
    if not hasattr(mspc, "batch_statistics"):
        raise ArgumentError(f"exceptions: mspc must be a fitted bw.monitoring.BatchPCA; got {type(mspc).__name__}.")
    stats = mspc.batch_statistics(prob=prob).filter(pl.col("batch_id").is_in(ids))
    alarms = stats.filter((pl.col("t2") > pl.col("t2_limit")) | (pl.col("spe") > pl.col("spe_limit")))
    out = []
    for r in alarms.iter_rows(named=True):  # a handful of alarmed batches, each needing its contributions
        stat, val, lim = (
            ("SPE", r["spe"], r["spe_limit"]) if r["spe"] > r["spe_limit"] else ("T²", r["t2"], r["t2_limit"])
        )
        top = _top_contributor(mspc, r["batch_id"], "spe" if stat == "SPE" else "t2")
        out.append(
            {
                "batch_id": r["batch_id"],
                "category": "MSPC alarm",
                "variable": top,
                "time_h": None,
                "value": val,
                "limit": lim,
                "severity": "major",
                "sentence": f"batch {stat} = {val:.3g} above its {prob:.0%} limit {lim:.3g}; top contributor: {top}.",
            }
        )
    return pl.DataFrame(out, schema=_SCHEMA)


def _top_contributor(mspc: Any, batch_id: str, statistic: str) -> str:
    c = mspc.contributions(batch_id)
    col = next((k for k in (statistic, f"{statistic}_contribution", "contribution") if k in c.columns), None)
    if col is None or "variable" not in c.columns:
        return "unknown"
    top = c.group_by("variable").agg(pl.col(col).abs().sum()).sort(col, descending=True)
    return str(top["variable"][0]) if top.height else "unknown"


def release_status(
    campaign: Campaign,
    *,
    exceptions: pl.DataFrame | None = None,
    batch_ids: Sequence[str] | None = None,
) -> pl.DataFrame:
    """The release verdict of each batch, with its reasons in words.

    * ``not releasable`` — the batch is ``planned``, ``running``, ``aborted`` or ``failed``: release
      is a decision on a completed batch;
    * ``needs review`` — any exception (see :func:`exceptions`), including every expected quality
      result that is missing and every expected sample that is missing, or a batch whose status is
      not recorded;
    * ``released`` — a completed batch with every expected result present (:func:`expected_results`)
      and no exception at all (release by exception).

    Parameters
    ----------
    campaign
        The campaign.
    exceptions
        The table of :func:`exceptions` (default: computed with its defaults). Pass the one the
        report shows (e.g. with golden-batch or MSPC alarms) so that verdict and table agree.
    batch_ids
        Batches to decide (default: every batch).

    Returns
    -------
    polars.DataFrame
        ``batch_id, status, verdict, n_exceptions, reasons`` (``reasons``: a list of plain
        sentences; empty only for a released batch).
    """
    require_campaign(campaign, function="release_status")
    ids = _batch_list(campaign, batch_ids, function="release_status")
    if exceptions is None:
        table = globals()["exceptions"](campaign, batch_ids=ids)
    else:
        table = require_frame(
            exceptions, function="release_status", argument="exceptions", columns=("batch_id", "category", "severity")
        )
    n_expected = len(expected_results(campaign))
    per = (
        table.filter(pl.col("batch_id").is_in(ids))
        .group_by("batch_id", "category")
        .agg(n=pl.len(), variables=pl.col("variable").drop_nulls().unique().sort().str.join(", "))
        .with_columns(
            text=pl.format(
                "{} {}{}",
                "n",
                pl.when(pl.col("n") == 1).then(pl.col("category")).otherwise(pl.col("category").replace(_PLURALS)),
                pl.when(pl.col("variables") != "").then(pl.format(" ({})", "variables")).otherwise(pl.lit("")),
            )
        )
        .sort("batch_id", "category")
        .group_by("batch_id", maintain_order=True)
        .agg(n_exceptions=pl.col("n").sum(), exception_text=pl.col("text"))
    )
    base = pl.DataFrame({"batch_id": ids}).join(
        campaign.batches.select("batch_id", "status"), on="batch_id", how="left"
    )
    out = base.join(per, on="batch_id", how="left").with_columns(pl.col("n_exceptions").fill_null(0))
    rows = []
    for r in out.iter_rows(named=True):  # one short decision per batch, written in words
        status, n, texts = r["status"], r["n_exceptions"], r["exception_text"] or []
        reasons: list[str] = []
        if status in _NOT_RELEASABLE:
            verdict = "not releasable"
            reasons.append(_NOT_RELEASABLE[status] + ".")
            if n:
                reasons.append(f"So far: {', '.join(texts)}.")
        elif status is None or status != "completed":
            verdict = "needs review"
            reasons.append("the batch's status is not recorded; only a completed batch can be released.")
            if n:
                reasons.append(f"Exceptions: {', '.join(texts)}.")
        elif n:
            verdict = "needs review"
            reasons.append(f"{n} exception{'s' if n != 1 else ''}: {', '.join(texts)}.")
        else:
            verdict = "released"
        rows.append(
            {"batch_id": r["batch_id"], "status": status, "verdict": verdict, "n_exceptions": n, "reasons": reasons}
        )
    result = pl.DataFrame(
        rows,
        schema={
            "batch_id": pl.String,
            "status": pl.String,
            "verdict": pl.String,
            "n_exceptions": pl.Int64,
            "reasons": pl.List(pl.String),
        },
    )
    return result.with_columns(
        reasons=pl.when(pl.col("verdict") == "released")
        .then(
            pl.lit(
                [
                    "completed, "
                    + (f"all {n_expected} expected quality results present and in spec, " if n_expected else "")
                    + "every expected sample present, and no exception."
                ]
            )
        )
        .otherwise(pl.col("reasons"))
    )


def exception_counts(
    table: pl.DataFrame, campaign: Campaign, *, batch_ids: Sequence[str] | None = None
) -> pl.DataFrame:
    """Counts per batch and severity, with the release verdict of :func:`release_status`.

    Parameters
    ----------
    table
        The table of :func:`exceptions`.
    campaign
        The campaign the table was made from (the verdict needs each batch's status and expected
        results, not only the exception count).
    batch_ids
        Batches to count (default: every batch of the campaign).

    Returns
    -------
    polars.DataFrame
        ``batch_id, status, critical, major, minor, total, verdict, released_by_exception``
        (``released_by_exception`` is ``verdict == "released"``).

    Raises
    ------
    ArgumentError
        ``table`` lacks ``batch_id`` or ``severity``, or ``campaign`` is not a campaign.
    """
    table = require_frame(table, function="exception_counts", argument="table", columns=("batch_id", "severity"))
    if not hasattr(campaign, "batches"):
        raise ArgumentError(
            "exception_counts: campaign must be the Campaign the exceptions were computed from "
            f"(release needs each batch's status); got {type(campaign).__name__}. "
            "Call bw.monitoring.exception_counts(table, campaign)."
        )
    ids = _batch_list(campaign, batch_ids, function="exception_counts")
    counts = (
        table.filter(pl.col("batch_id").is_in(ids))
        .group_by("batch_id")
        .agg(**{s: (pl.col("severity") == s).sum().cast(pl.UInt32) for s in SEVERITY_ORDER})
    )
    verdict = release_status(campaign, exceptions=table, batch_ids=ids).select("batch_id", "status", "verdict")
    return (
        pl.DataFrame({"batch_id": ids})
        .join(counts, on="batch_id", how="left")
        .with_columns(pl.col(list(SEVERITY_ORDER)).fill_null(0))
        .with_columns(total=pl.sum_horizontal(list(SEVERITY_ORDER)))
        .join(verdict, on="batch_id", how="left")
        .with_columns(released_by_exception=pl.col("verdict") == "released")
        .select("batch_id", "status", *SEVERITY_ORDER, "total", "verdict", "released_by_exception")
    )

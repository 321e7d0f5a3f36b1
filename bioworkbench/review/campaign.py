"""The campaign report's sections: batches and their release verdicts, multivariate monitoring,
exceptional batches, variability, and CQAs against CPPs — each stated only when its data exist.

:func:`campaign_review` computes every section once; a section whose data are absent (no online
probes for MSPC, no quality results, no CPPs) carries one sentence saying what is missing and what
it would show, instead of failing the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from bioworkbench.checks import require_campaign
from bioworkbench.errors import BioWorkbenchError
from bioworkbench.monitoring.checks import cqa_table, sensor_agreement, spec_text
from bioworkbench.monitoring.exceptions import exception_counts, release_status
from bioworkbench.monitoring.exceptions import exceptions as exception_table
from bioworkbench.outcomes import biomass_variable, campaign_table, outcome_units
from bioworkbench.review.display import collect_notes, markdown, notes_markdown, table
from bioworkbench.text import Safe, escape, plural

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = ["CampaignReview", "campaign_review", "exceptional_batches", "variability"]

#: online variables the MSPC section uses when the campaign has them
MSPC_VARIABLES = ("ph", "do", "temperature", "pco2")
#: offline variables whose trajectories the campaign report draws, when measured
TRAJECTORY_VARIABLES = ("vcd", "cdw", "od600", "viability", "titer", "tryptophan", "glucose", "lactate")


def variability(table: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Batch-to-batch variability of outcome columns: n, mean, SD, CV % (SD/mean), min, median, max.

    Parameters
    ----------
    table
        One row per batch (:func:`bioworkbench.outcomes.campaign_table`).
    columns
        The outcome columns.

    Returns
    -------
    polars.DataFrame
        One row per column: ``outcome, n, mean, sd, cv_pct, min, median, max`` (``cv_pct`` in %; the
        others in the column's unit; ``n`` counts the non-null values).
    """
    rows = []
    for c in columns:  # a handful of outcome columns
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
        schema={
            "outcome": pl.String,
            "n": pl.Int64,
            **{k: pl.Float64 for k in ("mean", "sd", "cv_pct", "min", "median", "max")},
        },
    )


def exceptional_batches(
    campaign: Campaign,
    table: pl.DataFrame | None = None,
    *,
    columns: list[str] | None = None,
    z: float = 3.0,
) -> pl.DataFrame:
    """Which batches were exceptional and why, one row per reason.

    Reasons: status other than completed; a CQA out of spec; an outcome of a completed batch far
    from the other completed batches (robust z-score ``|x − median| / (1.4826 · MAD) > z``; the
    factor makes the MAD a consistent estimate of the SD for normal data, Iglewicz & Hoaglin 1993);
    an online probe drifting from its offline reference; flagged data. A running batch is not
    compared on outcomes: its values are not final.

    Parameters
    ----------
    campaign
        A :class:`~bioworkbench.Campaign`.
    table
        Its outcome table (default: :func:`bioworkbench.outcomes.campaign_table`).
    columns
        The outcome columns screened (default: the table's key outcomes).
    z
        The robust z-score above which an outcome is far from the others.

    Returns
    -------
    polars.DataFrame
        ``batch_id, reason, detail``.
    """
    require_campaign(campaign, function="exceptional_batches")
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
                spec_text(),
            ),
        )
    )
    columns = columns or [
        c for c in ("peak_vcd", "final_viability", "mu_growth", "qp", "final_titer") if c in table.columns
    ]
    completed = table.filter(pl.col("status") == "completed") if "status" in table.columns else table
    for col in columns:  # a handful of outcome columns
        med = completed[col].median()
        mad = (completed[col] - med).abs().median() if med is not None else None
        if med is None or not mad:
            continue
        scale = 1.4826 * mad
        hit = completed.filter(((pl.col(col) - med).abs() / scale) > z)
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
            "batch_id", reason=pl.lit("flagged data"), detail=pl.format("{} flagged observation(s): {}", "n", "flags")
        )
    )
    out = pl.concat(
        [r.select("batch_id", pl.col("reason").cast(pl.String), pl.col("detail").cast(pl.String)) for r in reasons]
    )
    return out.sort("batch_id", "reason")


@dataclass
class MSPCSection:
    """Batch-wise PCA of the online traces, or why there is none."""

    model: Any = None
    statistics: pl.DataFrame | None = None
    variables: list[str] = field(default_factory=list)
    why_not: str = ""
    notes: list[str] = field(default_factory=list)

    def text(self) -> Safe:
        if self.model is None:
            return Safe(escape(self.why_not))
        alarms = self.statistics.filter(pl.col("t2_flag") | pl.col("spe_flag"))
        names = ", ".join(escape(b) for b in alarms["batch_id"].to_list())
        return Safe(
            f"Online traces of {escape(', '.join(self.variables))} for "
            f"{plural(self.statistics.height, 'batch', 'batches')}; "
            + (
                f"{plural(alarms.height, 'batch', 'batches')} above a 99 % limit: {names}."
                if alarms.height
                else "no batch is above its 99 % T² or SPE limit."
            )
        )

    def table(self) -> Any:
        if self.model is None:
            return markdown("")
        return table(self.statistics.select("batch_id", "t2", "t2_limit", "spe", "spe_limit", "t2_flag", "spe_flag"))

    def plot(self) -> Any:
        from bioworkbench import plots

        if self.model is None:
            return markdown("")
        worst = self.statistics.sort("spe", descending=True)["batch_id"][0]
        return plots.plot_scores(self.statistics, highlight=[worst]) + plots.plot_contributions(
            self.model.contributions(worst), statistic="spe"
        )


def _mspc(campaign: Campaign) -> MSPCSection:
    from bioworkbench import monitoring

    online = campaign.observations.filter(pl.col("source") == "online")
    variables = [v for v in MSPC_VARIABLES if v in set(online["variable"].unique().to_list())]
    if not variables:
        return MSPCSection(
            why_not="No online probe data are recorded in this campaign, so there is no multivariate monitoring of "
            "the online traces; with pH, DO or temperature probes this section would chart each batch's T² and SPE."
        )
    n = online.filter(pl.col("variable").is_in(variables))["batch_id"].n_unique()
    if n < 3:
        return MSPCSection(
            why_not=f"Only {plural(n, 'batch', 'batches')} {'has' if n == 1 else 'have'} online traces; multivariate "
            "monitoring needs at least 3 to learn the normal variation."
        )
    try:
        aligned = monitoring.align_by_time(campaign, variables=variables, grid_h=4, source="online", warn=False)
        model = monitoring.BatchPCA(n_components=2).fit(aligned, warn=False)
        stats = model.batch_statistics(prob=0.99)
    except BioWorkbenchError as exc:
        return MSPCSection(why_not=f"The multivariate model could not be fitted to these traces: {exc}")
    notes = [n for n in (monitoring.alignment_note(aligned), model.screening_note_) if n]
    return MSPCSection(model=model, statistics=stats, variables=variables, notes=notes)


@dataclass
class CampaignReview:
    """Everything the campaign report states (see :func:`campaign_review`)."""

    #: one row per batch (:func:`~bioworkbench.outcomes.campaign_table`): ``batch_id``, ``status``, the
    #: ``cpp_*`` setpoints, the outcome columns (e.g. ``peak_vcd`` in 1e6 cells/mL, ``final_titer`` in mg/L;
    #: units from :func:`~bioworkbench.outcomes.outcome_units`), one column per quality attribute (its harvest
    #: result), ``cqas_out_of_spec`` (count) and ``verdict``, the release verdict of the batch
    table: pl.DataFrame
    #: exceptions per batch and severity with the release verdict
    #: (:func:`~bioworkbench.monitoring.exceptions.exception_counts`): ``batch_id, status, critical, major,
    #: minor, total, verdict, released_by_exception`` (the four counts are numbers of exceptions)
    release: pl.DataFrame
    #: which batches were exceptional and why, one row per reason (:func:`exceptional_batches`):
    #: ``batch_id, reason, detail``
    exceptional: pl.DataFrame
    #: batch-to-batch variability of :attr:`outcome_columns` and of the quality attributes over the
    #: *completed* batches (:func:`variability`): ``outcome, n, mean, sd, cv_pct, min, median, max``
    variability: pl.DataFrame
    #: kinetics of every batch (:func:`bioworkbench.kinetics.compute`): long frame
    #: ``batch_id, time_h, variable, value, unit, method`` (μ, IVCD, specific rates, ...; each row's unit given)
    kinetics: pl.DataFrame
    #: the quality attributes with a result in ``campaign.quality`` for some batch, sorted
    cqas: list[str]
    #: the CPP setpoint columns (``cpp_*``) of the batches table
    cpps: list[str]
    #: batch-wise PCA of the online pH, DO, temperature and pCO2 traces (T² and SPE per batch, 99 % limits),
    #: or the sentence saying why there is none (no online data, fewer than 3 batches, a failed fit)
    mspc: MSPCSection
    #: the offline variables whose trajectories are drawn: up to 4 of :data:`TRAJECTORY_VARIABLES` that are
    #: measured (unflagged) in more than one batch
    trajectory_variables: list[str]
    #: the outcome columns of :attr:`table` stated and plotted (those of
    #: :func:`~bioworkbench.outcomes.outcome_units` present in the table, without the ``*_day`` columns)
    outcome_columns: list[str]
    #: a paragraph in plain words: batches by status, release verdicts, batches with a CQA out of spec, the
    #: final titer of the completed batches (mean, CV, range, mg/L) and the batches to look at
    narrative: Safe
    #: the campaign's tidy observations, every batch, online and offline
    #: (``batch_id, time_h, variable, value, unit, source, flag, …``)
    observations: pl.DataFrame
    #: the campaign's limits (``name, lower, upper, kind, unit``), drawn on the CQA against CPP grid
    specs: pl.DataFrame
    #: the warnings raised while the review was computed, and the notes of the MSPC alignment and screening,
    #: as plain sentences: the report's "Notes on the data"
    notes: list[str] = field(default_factory=list)

    def notes_text(self) -> Safe:
        """The notes collected while computing the review, as markdown.

        Returns
        -------
        Safe
            Markdown-safe text.
        """
        return notes_markdown(self.notes)

    def plot_trajectories(self) -> Any:
        """The offline trajectories of the key variables, every batch.

        Returns
        -------
        holoviews object or Markdown
            The figure; a sentence saying what is missing when there is nothing to draw.
        """
        from bioworkbench import plots

        if not self.trajectory_variables:
            return markdown(
                "No offline variable is measured in more than one batch, so there are no trajectories to overlay."
            )
        return plots.layout(
            [plots.plot_trajectories(self.observations, variable=v) for v in self.trajectory_variables], cols=1
        )

    def plot_outcomes(self) -> Any:
        """The outcome of every batch, one panel per outcome column.

        Returns
        -------
        holoviews object or Markdown
            The figure; a sentence saying what is missing when there is nothing to draw.
        """
        from bioworkbench import plots

        cols = [c for c in self.outcome_columns if c != "final_viability" and self.table[c].drop_nulls().len() > 0]
        if not cols:
            return markdown("No kinetic outcome could be computed for these batches.")
        return plots.plot_outcomes(self.table, columns=cols)

    def plot_cqa_grid(self) -> Any:
        """Each CQA against each numeric CPP, with the spec limits.

        Returns
        -------
        holoviews object or Markdown
            The figure; a sentence saying what is missing when there is nothing to draw.
        """
        from bioworkbench import plots

        numeric = [c for c in self.cpps if self.table.schema[c].is_numeric()]
        if not self.cqas or not numeric:
            missing = []
            if not self.cqas:
                missing.append("no quality results")
            if not numeric:
                missing.append("no numeric CPP setpoints (cpp_* columns of the batches table)")
            return markdown(
                "The campaign has {what}; with both, this section would plot each CQA against each CPP.",
                what=" and ".join(missing),
            )
        return plots.plot_cqa_grid(self.table, attributes=self.cqas, cpps=numeric, specs=self.specs)


def campaign_review(campaign: Campaign, *, kinetics: pl.DataFrame | None = None) -> CampaignReview:
    """Compute every section of the campaign report.

    Parameters
    ----------
    campaign
        The campaign.
    kinetics
        Its kinetics, when already computed.

    Returns
    -------
    CampaignReview
    """
    from bioworkbench import kinetics as kin_mod

    require_campaign(campaign, function="campaign_review")
    notes: list[str] = []
    with collect_notes(notes):
        if kinetics is None:
            kinetics = kin_mod.compute(campaign)
        table_ = campaign_table(campaign, kinetics)
        exc = exception_table(campaign)
        counts = exception_counts(exc, campaign)
        verdicts = release_status(campaign, exceptions=exc).select("batch_id", "verdict")
        table_ = table_.join(verdicts, on="batch_id", how="left")
        cqas = sorted(campaign.quality["attribute"].unique().to_list())
        units = outcome_units(campaign, kinetics if biomass_variable(campaign) else None)
        outcome_cols = [c for c in units["column"].to_list() if c in table_.columns and not c.endswith("_day")]
        done = table_.filter(pl.col("status") == "completed") if "status" in table_.columns else table_
        var = variability(done, outcome_cols + [c for c in cqas if c in table_.columns and c not in outcome_cols])
        exceptional = exceptional_batches(campaign, table_, columns=outcome_cols)
        mspc = _mspc(campaign)
    notes.extend(mspc.notes)
    offline = campaign.observations.filter((pl.col("source") != "online") & pl.col("flag").is_null())
    per_var = offline.group_by("variable").agg(pl.col("batch_id").n_unique())
    multi = set(per_var.filter(pl.col("batch_id") > 1)["variable"].to_list())
    trajectories = [v for v in TRAJECTORY_VARIABLES if v in multi][:4]
    text = _narrative(campaign, table_, counts, var, exceptional)
    return CampaignReview(
        table=table_,
        release=counts,
        exceptional=exceptional,
        variability=var,
        kinetics=kinetics,
        cqas=cqas,
        cpps=campaign.cpps,
        mspc=mspc,
        trajectory_variables=trajectories,
        outcome_columns=outcome_cols,
        narrative=text,
        observations=campaign.observations,
        specs=campaign.specs,
        notes=notes,
    )


def _narrative(
    campaign: Campaign, table_: pl.DataFrame, counts: pl.DataFrame, var: pl.DataFrame, exceptional: pl.DataFrame
) -> Safe:
    n = table_.height
    by_status = {r["status"]: r["len"] for r in campaign.batches.group_by("status").len().iter_rows(named=True)}
    status_text = ", ".join(f"{v} {escape(k or 'of unknown status')}" for k, v in sorted(by_status.items(), key=str))
    verdicts = {r["verdict"]: r["len"] for r in counts.group_by("verdict").len().iter_rows(named=True)}
    verdict_text = ", ".join(
        f"{verdicts[v]} {'released by exception' if v == 'released' else v}"
        for v in ("released", "needs review", "not releasable")
        if v in verdicts
    )
    parts = [f"The campaign holds {plural(n, 'batch', 'batches')} ({status_text}). Release: {verdict_text}."]
    n_fail = table_.filter(pl.col("cqas_out_of_spec") > 0).height
    if campaign.quality.is_empty():
        parts.append("No quality results are recorded.")
    else:
        parts.append(f"{plural(n_fail, 'batch has', 'batches have')} at least one CQA out of specification.")
    titer = var.filter(pl.col("outcome") == "final_titer")
    if titer.height and titer["mean"][0] is not None:
        parts.append(
            f"Final titer of the completed batches: mean {titer['mean'][0]:.0f} mg/L"
            + (f", CV {titer['cv_pct'][0]:.0f} %" if titer["cv_pct"][0] is not None else "")
            + f", range {titer['min'][0]:.0f}–{titer['max'][0]:.0f} mg/L."
        )
    worst = exceptional.filter(pl.col("reason") != "flagged data")["batch_id"].unique().sort().to_list()
    parts.append(
        f"Batches to look at: {escape(', '.join(worst))} (reasons below)." if worst else "No batch stands out."
    )
    return Safe(" ".join(parts))

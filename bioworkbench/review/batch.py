"""The batch report's sections: computed first, then stated in words that the numbers support.

:func:`batch_review` computes everything the batch report says about one batch — the release
verdict, what is not known yet when the batch is running, exceptions, completeness, the batch
against the band of the other batches, outcomes and CQAs — and keeps the warnings raised on the
way as "Notes on the data". A batch is *running* when its status says so or when the report looks
at it as of a culture day (``known_days``): its data are then cut at that day
(:meth:`Campaign.as_of`), outcomes are "so far (day N)", never "final", and ranks are made
against the completed batches at the same culture day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from bioworkbench.checks import require_campaign, require_number, require_prob
from bioworkbench.errors import SchemaError
from bioworkbench.monitoring.checks import (
    completeness,
    cqa_table,
    envelope,
    envelope_points,
    envelope_summary,
    excursions,
)
from bioworkbench.monitoring.exceptions import exceptions as exception_table
from bioworkbench.monitoring.exceptions import expected_results, release_status
from bioworkbench.outcomes import biomass_variable, campaign_table, outcome_units, product_variable
from bioworkbench.review.display import Table, collect_notes, details, markdown, table
from bioworkbench.schema import get_variable, suggest
from bioworkbench.text import Safe, escape, fmt, ordinal, plural, sentence

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = ["RUNNING_STATUSES", "BatchReview", "batch_header", "batch_review", "narrative"]

#: statuses of a batch whose harvest is not known yet
RUNNING_STATUSES = ("planned", "running")
#: offline variables shown against the envelope, in this order, when measured
KEY_VARIABLES = ("vcd", "cdw", "od600", "viability", "glucose", "lactate", "glutamine", "ammonium", "titer")


def check_batch(campaign: Campaign, batch_id: Any, *, function: str) -> None:
    """Raise a located error unless ``batch_id`` is a batch of ``campaign``."""
    require_campaign(campaign, function=function)
    if not isinstance(batch_id, str) or batch_id not in campaign.batch_ids:
        raise SchemaError(
            f"{function}: batch {batch_id!r} is not in campaign {campaign.name!r}. "
            + suggest(str(batch_id), campaign.batch_ids, what="Batches")
        )


def batch_header(campaign: Campaign, batch_id: str) -> dict[str, Any]:
    """Identity and dates of a batch: product, cell line, scale, process, status, start, end, CPPs.

    ``end`` is ``start`` plus the last observation or event time; ``duration_d`` in days.

    Parameters
    ----------
    campaign
        A :class:`~bioworkbench.Campaign`.
    batch_id
        One of its batches.

    Returns
    -------
    dict
        ``{field: value}`` in display order.
    """
    check_batch(campaign, batch_id, function="batch_header")
    row = campaign.batches.filter(pl.col("batch_id") == batch_id).row(0, named=True)
    times = pl.concat(
        [
            campaign.observations.filter(pl.col("batch_id") == batch_id).select("time_h"),
            campaign.events.filter(pl.col("batch_id") == batch_id).select("time_h"),
        ]
    )["time_h"]
    last_h = times.max() if len(times) else None
    start = row.get("start")
    end = start + dt.timedelta(hours=float(last_h)) if start is not None and last_h is not None else None
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


def _rank(reference: pl.DataFrame | None, col: str, value: Any, *, day: float | None) -> str:
    """``" (3rd highest of 23: this batch and 22 other completed batches)"``, ``"… at day 5)"`` for a
    running batch (``reference`` holds the other completed batches, cut at that day)."""
    if reference is None or col not in reference.columns or value is None:
        return ""
    vals = reference[col].drop_nulls()
    if len(vals) < 3:
        return ""
    rank = int((vals > value).sum()) + 1
    at = f" at day {day:g}" if day is not None else ""
    return f" ({ordinal(rank)} highest of {len(vals) + 1}: this batch and {len(vals)} other completed batches{at})"


# ---------------------------------------------------------------------------------------------
# the review object
# ---------------------------------------------------------------------------------------------
@dataclass
class BatchReview:
    """Everything the batch report states about one batch (see :func:`batch_review`)."""

    #: the batch reviewed
    batch_id: str
    #: identity and dates of the batch (:func:`batch_header`): ``batch_id``, ``product``, ``cell_line``,
    #: ``scale_l`` (L), ``process``, ``status``, ``start`` and ``end`` (datetimes; ``end`` is ``start`` plus the
    #: last observation or event time), ``duration_d`` (days to that last time), then each CPP ``cpp_*``
    header: dict[str, Any]
    #: whether the batch is treated as running: its status is ``planned`` or ``running``
    #: (:data:`RUNNING_STATUSES`), or it is looked at as of a culture day (``known_days > 0``)
    running: bool
    #: culture day (d) up to which the batch's data go: ``known_days`` when given, else the last
    #: observation time / 24 of a running batch; ``None`` for a batch that is not running (or has no data yet)
    known_day: float | None
    #: the release verdict (one row of :func:`~bioworkbench.monitoring.exceptions.release_status`):
    #: ``batch_id``, ``status``, ``verdict`` (``released``, ``needs review`` or ``not releasable``),
    #: ``n_exceptions`` and ``reasons`` (a list of plain sentences)
    release: dict[str, Any]
    #: everything a reviewer must look at for this batch (:func:`~bioworkbench.monitoring.exceptions.exceptions`):
    #: ``batch_id, category, variable, time_h, value, limit, severity, sentence``; the verdict counts these rows
    exceptions: pl.DataFrame
    #: expected against present samples per offline variable (:func:`~bioworkbench.monitoring.checks.completeness`):
    #: ``batch_id, variable, expected, present, missing, missing_days, flagged, flag_reasons``
    completeness: pl.DataFrame
    #: the band of the campaign's *other* batches per offline variable and culture day
    #: (:func:`~bioworkbench.monitoring.envelope.envelope`, central share ``prob``): ``variable, unit, time_h,
    #: center, median, sd, lower, upper, n_batches``, values in each variable's unit
    envelope: pl.DataFrame
    #: each offline point of this batch against that band
    #: (:func:`~bioworkbench.monitoring.envelope.envelope_points`): ``batch_id, variable, unit, time_h, value,
    #: lower, upper, outside`` (``outside``: ``"above"``, ``"below"`` or null)
    envelope_points: pl.DataFrame
    #: points outside the band per variable against what chance gives
    #: (:func:`~bioworkbench.monitoring.envelope.envelope_summary`): ``batch_id, variable, n_points, n_outside,
    #: n_above, n_below, expected, p_value, more_than_expected`` (``expected = n_points · (1 − prob)``)
    envelope_summary: pl.DataFrame
    #: values outside an alarm or spec limit, CPPs outside their PAR, CQAs out of spec and probe drift
    #: (:func:`~bioworkbench.monitoring.checks.excursions`), most severe first: ``batch_id, variable, kind,
    #: start_h, end_h, n_points, value, limit, deviation, relative, direction, severity, sentence``
    excursions: pl.DataFrame
    #: the batch's harvest quality results against their specs (:func:`~bioworkbench.monitoring.checks.cqa_table`):
    #: ``batch_id, attribute, value, unit, method, lower, upper, status`` (``in spec``, ``out of spec`` or
    #: ``no spec``); empty when the batch has no result yet (``known_days`` leaves its results out)
    cqas: pl.DataFrame
    #: the quality attributes every completed batch must have a result for: those with a specification
    #: (:func:`~bioworkbench.monitoring.exceptions.expected_results`), sorted
    expected_cqas: list[str]
    #: this batch's row of :attr:`campaign_outcomes` (status, ``cpp_*``, outcomes such as ``peak_vcd``
    #: in 1e6 cells/mL, ``final_titer`` in mg/L, CQA results, ``cqas_out_of_spec``; units in :attr:`units`);
    #: ``None`` when the table has no row for it
    outcome: dict[str, Any] | None
    #: one row per batch of the campaign, this one included
    #: (:func:`~bioworkbench.outcomes.campaign_table`: outcome columns, one column per quality attribute and
    #: ``cqas_out_of_spec``); with ``known_days`` this batch's row is computed from its data up to that day
    campaign_outcomes: pl.DataFrame
    #: the rows of :attr:`campaign_outcomes` of the *completed* batches other than this one, which ranks and
    #: medians are made against; for a running batch with data they are recomputed from those batches' data cut
    #: at :attr:`known_day`, so that values are compared at the same culture day
    reference: pl.DataFrame
    #: unit and readable label of each outcome column (:func:`~bioworkbench.outcomes.outcome_units`):
    #: ``column, quantity, unit``, e.g. ``("peak_vcd", "peak viable cell density", "1e6 cells/mL")``
    units: pl.DataFrame
    #: kinetics of every batch of the campaign (:func:`bioworkbench.kinetics.compute`): long frame
    #: ``batch_id, time_h, variable, value, unit, method`` (μ, IVCD, specific rates, ...; each row's unit given)
    kinetics: pl.DataFrame
    #: this batch's tidy observations, online and offline (cut at ``known_days`` when given):
    #: ``batch_id, time_h, variable, value, unit, source, flag, …``
    observations: pl.DataFrame
    #: the paragraph that states the outcome and the exceptions in plain words (:func:`narrative`)
    narrative: Safe
    #: central share of the other batches in the band (e.g. 0.9 for the central 90 %)
    prob: float
    #: the warnings raised while the review was computed (exclusions, fallbacks), as plain sentences, once each:
    #: the report's "Notes on the data"
    notes: list[str] = field(default_factory=list)

    # -- words ---------------------------------------------------------------------------------
    def verdict_text(self) -> Safe:
        """The release verdict first, in words (bold), then its reasons.

        Returns
        -------
        Safe
            Markdown-safe text.
        """
        r = self.release
        b = escape(self.batch_id)
        reasons = " ".join(escape(x) for x in r["reasons"])
        if r["verdict"] == "released":
            return Safe(f"**Released by exception.** Batch {b}: {reasons}")
        if r["verdict"] == "needs review":
            return Safe(f"**Needs review.** Batch {b}: {reasons} Each is listed below.")
        return Safe(f"**Not releasable.** Batch {b}: {reasons}")

    def status_text(self) -> Safe:
        """For a running batch: that it is running, up to when, and what is not known yet.

        Returns
        -------
        Safe
            Markdown-safe text.
        """
        if not self.running:
            return Safe("")
        b = escape(self.batch_id)
        day = f"day {self.known_day:.1f}" if self.known_day is not None else "its first sample"
        unknown = [
            "its harvest quality results"
            + (f" ({escape(', '.join(self.expected_cqas))})" if self.expected_cqas else "")
        ]
        unknown.append("its final titer, peak cell density and final viability")
        return Safe(
            f"> **Batch {b} is running: the data go up to {day}.** Not yet known: {', '.join(unknown)}. "
            "Values below are the latest measured so far, not final; they are compared with the completed "
            "batches at the same culture day."
        )

    def envelope_text(self) -> Safe:
        """How many points lie outside the band, against what chance gives (not excursion rows).

        Returns
        -------
        Safe
            Markdown-safe text.
        """
        s = self.envelope_summary
        if s.is_empty():
            return Safe(
                "There is no campaign band to compare with: fewer than 3 other batches have offline samples on the "
                "same days."
            )
        n, k, exp = int(s["n_points"].sum()), int(s["n_outside"].sum()), float(s["expected"].sum())
        share = round(self.prob * 100)
        text = (
            f"{k} of {n} points of {plural(s.height, 'variable')} lie outside the central {share} % band of the "
            f"other batches (about {exp:.0f} expected by chance for a batch like the others)"
        )
        more = s.filter(pl.col("more_than_expected"))
        if more.is_empty():
            return Safe(text + ", as expected for a normal batch.")
        items = [
            f"{escape(r['variable'])} ({r['n_outside']} of {r['n_points']} points, "
            f"{r['n_above']} above and {r['n_below']} below)"
            for r in more.iter_rows(named=True)
        ]
        return Safe(
            text + f". More points than chance would put outside the band for: {', '.join(items)}; "
            "look at these trajectories below."
        )

    def envelope_details(self) -> Any:
        """The points outside the band, collapsed under a one-line summary.

        Returns
        -------
        Details
            The points outside the band under a one-line summary.
        """
        out = self.envelope_points.filter(pl.col("outside").is_not_null()).select(
            "variable",
            day=(pl.col("time_h") / 24).round(1),
            value="value",
            lower="lower",
            upper="upper",
            side="outside",
        )
        return details(f"The {out.height} points outside the band", out)

    def notes_text(self) -> Safe:
        """The notes collected while computing the review (exclusions, fallbacks), as markdown.

        Returns
        -------
        Safe
            Markdown-safe text.
        """
        from bioworkbench.review.display import notes_markdown

        return notes_markdown(self.notes)

    # -- tables --------------------------------------------------------------------------------
    def header_table(self) -> pl.DataFrame:
        """The header as a two-column table for display.

        Returns
        -------
        polars.DataFrame
            ``field, value``.
        """

        def show(v: Any) -> str:
            if v is None:
                return "—"
            if hasattr(v, "strftime"):
                return v.strftime("%Y-%m-%d %H:%M UTC")
            return fmt(v) if isinstance(v, float) else str(v)

        return pl.DataFrame({"field": list(self.header), "value": [show(v) for v in self.header.values()]})

    def kinetics_summary(self) -> pl.DataFrame:
        """Peak biomass and when, viability, integral biomass, mean μ in the growth phase, specific

        productivity and product, with the median of the completed batches beside each (at the same
        culture day for a running batch, whose values are labelled "so far" or "latest").

        Returns
        -------
        polars.DataFrame
            One row per kinetic quantity of this batch.
        """
        units = self.units.filter(pl.col("column") != "last_day")
        cols = units["column"].to_list()
        labels = units["quantity"].to_list()
        if self.running:
            labels = [(q.replace("final ", "latest ", 1) if q.startswith("final ") else q + " so far") for q in labels]
            ref = f"completed batches at day {self.known_day:g} (median)" if self.known_day is not None else "median"
        else:
            ref = "completed batches (median)"
        o = self.outcome or {}
        present = [c for c in cols if c in self.reference.columns]
        med = self.reference.select([pl.col(c).median() for c in present]).row(0, named=True) if present else {}
        return pl.DataFrame(
            {
                "quantity": labels,
                "value": [o.get(c) for c in cols],
                "unit": units["unit"].to_list(),
                ref: [med.get(c) for c in cols],
            },
            schema_overrides={"value": pl.Float64, ref: pl.Float64},
        )

    def cqa_table(self) -> Any:
        """The harvest CQAs against their specs, or a sentence saying why there are none.

        Returns
        -------
        Table or Markdown
            The table; a sentence instead when it would be empty.
        """
        if not self.cqas.is_empty():
            return table(self.cqas)
        if self.running:
            return markdown("Harvest quality results are not known yet: the batch is running.")
        if self.expected_cqas:
            return markdown(
                "No quality result is recorded for this batch, although {n} attributes have a specification ({names}); "
                "the release verdict above counts them as missing.",
                n=len(self.expected_cqas),
                names=", ".join(self.expected_cqas),
            )
        return markdown("No quality results are recorded for this batch, and the campaign has no specifications.")

    # -- plots, each with a sentence instead when its data are absent ---------------------------
    def plot_envelopes(self) -> Any:
        """This batch's offline variables against the band of the other batches.

        Returns
        -------
        holoviews object or Markdown
            The figure; a sentence saying what is missing when there is nothing to draw.
        """
        from bioworkbench import plots

        mine = self.observations.filter(pl.col("source") != "online")
        have = set(self.envelope["variable"].unique().to_list()) & set(mine["variable"].unique().to_list())
        variables = [v for v in KEY_VARIABLES if v in have] or sorted(have)[:6]
        if not variables:
            return markdown(
                "No offline variable of this batch has a campaign band to be drawn against (the band needs at least "
                "3 other batches sampled on the same days)."
            )
        return plots.plot_batch_envelopes(self.envelope, mine, batch_id=self.batch_id, variables=variables)

    def plot_kinetics(self) -> Any:
        """μ, IVCD and specific rates of this batch among the others.

        Returns
        -------
        holoviews object or Markdown
            The figure; a sentence saying what is missing when there is nothing to draw.
        """
        from bioworkbench import plots

        mine = self.kinetics.filter(pl.col("batch_id") == self.batch_id)
        if mine.is_empty():
            return markdown(
                "No kinetics could be computed for this batch (they need at least two samples of viable cell density "
                "or another biomass measure); the notes at the end say why."
            )
        variables = [v for v in ("mu", "ivcd", "q_glucose", "q_lactate", "qp") if v in set(mine["variable"])]
        return plots.plot_kinetics(self.kinetics, variables=variables, highlight=self.batch_id)

    def plot_online(self) -> Any:
        """The online probe traces of this batch, or a sentence when it has none.

        Returns
        -------
        holoviews object or Markdown
            The figure; a sentence saying what is missing when there is nothing to draw.
        """
        from bioworkbench import plots

        online = self.observations.filter(pl.col("source") == "online")
        variables = [v for v in ("ph", "do", "temperature", "pco2") if v in set(online["variable"])]
        if not variables:
            return markdown(
                "No online probe data (pH, DO, temperature) are recorded for this batch; this section would show "
                "their traces."
            )
        return plots.plot_online(self.observations, batch_id=self.batch_id, variables=variables)

    def exception_table(self) -> Table:
        """The exceptions of this batch: severity, category, variable and the sentence.

        Returns
        -------
        Table
        """
        return table(self.exceptions.select("severity", "category", "variable", "sentence"))

    def excursion_table(self) -> Any:
        """The values of this batch outside an alarm or specification limit.

        Returns
        -------
        Table or Markdown
            The table; a sentence instead when it would be empty.
        """
        if self.excursions.is_empty():
            return markdown("No value left an alarm or specification limit.")
        return table(self.excursions.select("severity", "variable", "kind", "sentence"))


# ---------------------------------------------------------------------------------------------
# computing it
# ---------------------------------------------------------------------------------------------
def batch_review(
    campaign: Campaign,
    batch_id: str,
    *,
    prob: float = 0.90,
    known_days: float = 0.0,
    kinetics: pl.DataFrame | None = None,
) -> BatchReview:
    """Compute every section of the batch report for ``batch_id``.

    Parameters
    ----------
    campaign
        The campaign.
    batch_id
        The batch to review.
    prob
        Central share of the other batches in the campaign band.
    known_days
        Look at the batch as it stood on this culture day (its later data, events and quality
        results are left out, and it is treated as running); ``0`` uses all its data.
    kinetics
        Kinetics of the campaign, when already computed (with all data; ignored with ``known_days``).

    Returns
    -------
    BatchReview

    Notes
    -----
    The band is that of the campaign's *other* batches (leave-one-out), so a batch is never
    compared with itself. Ranks and medians are over the completed batches other than this one,
    cut at the same culture day when this batch is running.
    """
    check_batch(campaign, batch_id, function="batch_review")
    prob = require_prob(prob, function="batch_review")
    known_days = float(require_number(known_days, function="batch_review", argument="known_days", minimum=0, unit="d"))
    notes: list[str] = []
    full = campaign
    if known_days > 0:
        campaign = campaign.as_of(known_days * 24, batch_ids=batch_id)
        kinetics = None
    status = campaign.batches.filter(pl.col("batch_id") == batch_id)["status"][0]
    running = status in RUNNING_STATUSES
    mine = campaign.observations.filter(pl.col("batch_id") == batch_id)
    known_day = (
        known_days if known_days > 0 else (float(mine["time_h"].max()) / 24 if running and mine.height else None)
    )
    with collect_notes(notes):
        from bioworkbench import kinetics as kin_mod

        if kinetics is None:
            kinetics = kin_mod.compute(campaign)
        exc = exception_table(campaign, batch_ids=[batch_id])
        release = release_status(campaign, exceptions=exc, batch_ids=[batch_id]).row(0, named=True)
        env = envelope(campaign.observations, exclude=batch_id, prob=prob)
        pts = envelope_points(campaign, batch_id, envelope_frame=env, prob=prob)
        env_sum = envelope_summary(pts, prob=prob)
        exc_rows = excursions(campaign, batch_id)
        comp = completeness(campaign, batch_id)
        cq = cqa_table(campaign, batch_id)
        table_all = campaign_table(campaign, kinetics)
        done = campaign.batches.filter((pl.col("status") == "completed") & (pl.col("batch_id") != batch_id))[
            "batch_id"
        ].to_list()
        if running and known_day is not None and done:
            cut = campaign.as_of(known_day * 24, batch_ids=done)
            reference = campaign_table(cut, kin_mod.compute(cut)).filter(pl.col("batch_id").is_in(done))
        else:
            reference = table_all.filter(pl.col("batch_id").is_in(done))
    header = batch_header(campaign, batch_id)
    rows = table_all.filter(pl.col("batch_id") == batch_id)
    outcome = rows.row(0, named=True) if rows.height else None
    biomass, product = biomass_variable(campaign), product_variable(campaign)
    text = narrative(
        header,
        outcome=outcome,
        cqas=cq,
        excursion_table=exc_rows,
        completeness_table=comp,
        campaign_outcomes=reference,
        running=running,
        known_day=known_day,
        biomass=biomass,
        product=product,
    )
    return BatchReview(
        batch_id=batch_id,
        header=header,
        running=running,
        known_day=known_day,
        release=release,
        exceptions=exc,
        completeness=comp,
        envelope=env,
        envelope_points=pts,
        envelope_summary=env_sum,
        excursions=exc_rows,
        cqas=cq,
        expected_cqas=expected_results(campaign),
        outcome=outcome,
        campaign_outcomes=table_all,
        reference=reference,
        units=outcome_units(campaign, kinetics if biomass is not None else None),
        kinetics=kinetics,
        observations=full.observations.filter(pl.col("batch_id") == batch_id) if not known_days else mine,
        narrative=text,
        prob=prob,
        notes=notes,
    )


def narrative(
    header: dict[str, Any],
    *,
    outcome: dict[str, Any] | None,
    cqas: pl.DataFrame,
    excursion_table: pl.DataFrame,
    completeness_table: pl.DataFrame,
    campaign_outcomes: pl.DataFrame | None = None,
    running: bool = False,
    known_day: float | None = None,
    biomass: str | None = "vcd",
    product: str | None = "titer",
) -> Safe:
    """A short paragraph in plain words stating the batch's outcome and its exceptions.

    Written only from the numbers passed in: status and duration, peak VCD and titer with their
    rank among the completed batches (at the same culture day for a running batch, whose values are
    "so far", never "final"), CQAs in/out of spec, excursions by severity with the most severe
    named, missing samples and flags. Every data string in it is escaped (:func:`escape`).

    Parameters
    ----------
    header
        The batch's identity and dates (:func:`batch_header`); ``batch_id``, ``product``, ``scale_l``
        (L), ``status`` and ``duration_d`` (days) are used.
    outcome
        The batch's row of :func:`~bioworkbench.outcomes.campaign_table` as a dict: ``peak_<biomass>``
        (biomass unit; VCD in 1e6 cells/mL) and ``peak_<biomass>_day`` (culture day),
        ``final_<product>`` (titer in mg/L) and ``final_viability`` (%) are stated when present;
        ``None``: no outcome is stated.
    cqas
        The batch's quality results against their specs
        (:func:`~bioworkbench.monitoring.checks.cqa_table`: ``attribute, value, unit, status``).
    excursion_table
        The batch's excursions (:func:`~bioworkbench.monitoring.checks.excursions`), most severe first:
        counted by ``severity``; the first row's ``sentence`` is quoted.
    completeness_table
        The batch's completeness (:func:`~bioworkbench.monitoring.checks.completeness`): its
        ``missing`` and ``flagged`` counts are summed.
    campaign_outcomes
        The outcome table of the batches to rank against (the completed batches other than this one);
        a rank is given only when at least 3 of them have the value. ``None``: no ranks.
    running
        The batch is running: values are "so far" and "latest", never "final".
    known_day
        Culture day (d) the data of a running batch go up to (``None``: no data yet); ranks are then
        said to be at this day.
    biomass
        The biomass variable whose peak is stated (``None``: none).
    product
        The product variable whose final (or latest) value is stated (``None``: none).

    Returns
    -------
    Safe
        One paragraph of Markdown-safe text.
    """
    b = escape(header["batch_id"])
    parts = []
    status = escape(header.get("status") or "of unknown status")
    dur = header.get("duration_d")
    product_name = escape(header.get("product") or "product not stated")
    head = f"Batch {b} ({product_name}, {fmt(header.get('scale_l'))} L) is {status}"
    if running:
        head += f": data up to day {known_day:.1f}." if known_day is not None else ": no data yet."
    else:
        head += f" after {dur:.1f} days." if dur is not None else "."
    parts.append(head)
    rank_day = known_day if running else None
    o = outcome or {}
    s = []
    if biomass is not None and o.get(f"peak_{biomass}") is not None:
        value, day = o[f"peak_{biomass}"], o[f"peak_{biomass}_day"]
        if biomass == "vcd":
            what = f"VCD {'has reached' if running else 'peaked at'} {value:.1f} ×10⁶ cells/mL"
        else:
            var = get_variable(biomass)
            what = (
                f"{escape(var.description)} {'has reached' if running else 'peaked at'} {fmt(value)} {escape(var.unit)}"
            )
        s.append(f"{what} on day {day:.1f}" + _rank(campaign_outcomes, f"peak_{biomass}", value, day=rank_day))
    if product is not None and o.get(f"final_{product}") is not None:
        value = o[f"final_{product}"]
        name = "titer" if product == "titer" else escape(product)
        unit = "mg/L" if product == "titer" else escape(get_variable(product).unit)
        number = f"{value:.0f}" if product == "titer" else fmt(value)
        what = f"the latest {name} is" if running else f"the final {name} was"
        s.append(f"{what} {number} {unit}" + _rank(campaign_outcomes, f"final_{product}", value, day=rank_day))
    if o.get("final_viability") is not None:
        s.append(f"{'latest' if running else 'final'} viability {o['final_viability']:.0f} %")
    if s:
        parts.append("So far, " + sentence(s, capitalize=False) if running else sentence(s))
    if cqas.is_empty():
        parts.append("Harvest quality results are not known yet." if running else "No quality results are recorded.")
    else:
        bad = cqas.filter(pl.col("status") == "out of spec")
        n_spec = cqas.filter(pl.col("status") != "no spec").height
        if bad.is_empty():
            parts.append(f"All {n_spec} CQAs with a specification are within it.")
        else:
            items = ", ".join(
                f"{escape(r['attribute'])} ({fmt(r['value'])}{' ' + escape(r['unit']) if r['unit'] else ''})"
                for r in bad.iter_rows(named=True)
            )
            parts.append(f"{bad.height} of {n_spec} CQAs are out of specification: {items}.")
    if excursion_table.is_empty():
        parts.append("No value left an alarm or specification limit" + (" so far." if running else "."))
    else:
        counts = excursion_table.group_by("severity").len()
        by = {r["severity"]: r["len"] for r in counts.iter_rows(named=True)}
        text = ", ".join(f"{by[k]} {k}" for k in ("critical", "major", "minor") if k in by)
        n = excursion_table.height
        parts.append(
            f"There {'is' if n == 1 else 'are'} {plural(n, 'excursion')} ({text}); the most severe: "
            f"{escape(excursion_table['sentence'][0])}"
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
    return Safe(" ".join(parts))

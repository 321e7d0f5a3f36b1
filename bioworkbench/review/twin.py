"""The twin report's sections: the digital twin where the campaign records what it needs, and what is
missing where it does not, each stated in words the numbers support.

:func:`twin_review` checks the campaign against what the mechanistic fed-batch model needs
(:func:`bioworkbench.twin.data.readiness`: VCD, inoculation readings, the initial volume, the feeds
with their media, substrate readings), calibrates :class:`~bioworkbench.twin.FedBatchTwin` on the
completed batches that have it all, follows the running batch up to ``known_h``, compares feed plans
on it and recommends its next feeds. A campaign that lacks what the twin needs (a microbial culture
measured as dry weight, cultures with only cell counts and no feed records) gets one paragraph naming
each missing requirement and the batches it concerns, and no model: the report renders on any
campaign and never states a prediction its data cannot support. Warnings raised while computing are
kept as the "Notes on the data" (the sampler's own convergence is stated in words by the calibration
section).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from bioworkbench.checks import require_campaign, require_number, require_prob
from bioworkbench.errors import BioWorkbenchError, BioWorkbenchWarning
from bioworkbench.review.display import collect_notes, markdown, notes_markdown, table
from bioworkbench.text import Safe, escape, plural

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = ["TwinReview", "twin_review"]

#: the plans compared: name -> factor on the main feeds from known_h
PLAN_FACTORS = {"as planned": 1.0, "feed -25 %": 0.75, "feed +25 %": 1.25}
_NOTHING = Safe("")


@dataclass
class TwinReview:
    """Everything the twin report states (see :func:`twin_review`)."""

    #: the campaign's name
    name: str
    #: the running batch
    batch_id: str
    #: hours of the running batch known (its readings after them are not used)
    known_h: float
    #: central probability of the intervals
    prob: float
    #: the campaign's observations (drawn under the bands)
    observations: pl.DataFrame
    #: :func:`~bioworkbench.twin.data.readiness` of every batch: ``batch_id, requirement, ok, detail``
    readiness: pl.DataFrame
    #: the calibration batches (completed, not the running batch, with everything the twin needs)
    fit_ids: list[str] = field(default_factory=list)
    #: the calibrated twin; ``None`` when it was not calibrated (:attr:`why_no_twin` says why)
    twin: Any = None
    #: one paragraph saying why there is no twin and what is missing; empty when it was calibrated
    why_no_twin: Safe = _NOTHING
    #: why the running batch is not predicted (empty when it is)
    why_no_prediction: Safe = _NOTHING
    #: the calibration's predictive bands and the share of readings inside them
    fit: pl.DataFrame | None = None
    coverage: pl.DataFrame | None = None
    #: the running batch's prediction, the plans compared and the recommendation
    prediction: Any = None
    comparison: Any = None
    recommendation: Any = None
    #: when the campaign holds the running batch's later titer readings (a completed batch replayed as
    #: running), one sentence comparing its last titer reading with the predictive band; else empty
    hindsight: Safe = _NOTHING
    #: warnings raised while computing
    notes: list[str] = field(default_factory=list)

    def summary_text(self) -> Safe:
        """One paragraph: what the twin was calibrated on, or why it was not.

        Returns
        -------
        Safe
            Markdown-safe text.
        """
        if self.twin is None:
            return self.why_no_twin
        return Safe(
            f"The twin of {escape(self.name)} was calibrated on {plural(len(self.fit_ids), 'batch', 'batches')} "
            f"({escape(', '.join(self.fit_ids))}); {escape(self.batch_id)} is followed as a running batch known up "
            f"to {self.known_h:g} h."
        )

    def readiness_table(self) -> Any:
        """The requirements some batch fails (batch counts and the first reason); nothing when all hold.

        Returns
        -------
        Table or Markdown
        """
        from bioworkbench.twin.data import gaps

        failed = gaps(self.readiness)
        if failed.is_empty():
            return markdown("Every batch records what the twin needs.")
        first = pl.col("batch_ids").list.first().alias("first batch")
        return table(failed.select("requirement", "batches", first, "detail"))

    def calibration_text(self) -> Safe:
        """Whether the sampler converged, and how many readings the predictive bands hold.

        Returns
        -------
        Safe
        """
        from bioworkbench.twin.report import calibration_text

        if self.twin is None:
            return Safe("No calibration: the twin was not fitted (see above).")
        # built from numbers and the twin's own parameter names, with Markdown emphasis: trusted as it is
        return Safe(calibration_text(self.twin, self.coverage))

    def coverage_table(self) -> Any:
        """The share of each variable's readings inside the predictive band.

        Returns
        -------
        Table or None
        """
        return None if self.coverage is None else table(self.coverage)

    def plot_calibration(self) -> Any:
        """Each calibrated batch's predictive band of VCD and titer with its readings.

        Returns
        -------
        holoviews object or None
        """
        from bioworkbench.twin.report import plot_calibration

        return None if self.fit is None else plot_calibration(self.fit, self.observations)

    def parameter_table(self) -> Any:
        """The twin's parameters (campaign, batch, fixed) with intervals, r̂ and ESS.

        Returns
        -------
        Table or None
        """
        return None if self.twin is None else table(self.twin.summary(prob=self.prob))

    def prediction_text(self) -> Safe:
        """How the running batch was predicted, or why it was not.

        Returns
        -------
        Safe
        """
        if self.prediction is None:
            return self.why_no_prediction or Safe("No prediction: the twin was not calibrated.")
        return Safe(f"Parameters of {escape(self.batch_id)}: {escape(self.prediction.method)}. {self.hindsight}")

    def plot_running(self) -> Any:
        """The running batch's predicted trajectory to harvest, with its readings.

        Returns
        -------
        holoviews object or None
        """
        import bioworkbench.plots as plots

        if self.prediction is None:
            return None
        return plots.plot_forecast(
            self.prediction.trajectory, self.observations, batch_id=self.batch_id, known_h=self.known_h
        )

    def endpoint_table(self) -> Any:
        """The running batch's predicted endpoints.

        Returns
        -------
        Table or None
        """
        return None if self.prediction is None else table(self.prediction.endpoints)

    def comparison_table(self) -> Any:
        """The plans' differences from the planned feeds (same draws).

        Returns
        -------
        Table or None
        """
        return None if self.comparison is None else table(self.comparison.differences)

    def recommendation_text(self) -> Safe:
        """The recommendation in words, or why there is none.

        Returns
        -------
        Safe
        """
        if self.recommendation is None:
            return self.why_no_prediction or Safe("No recommendation: the twin was not calibrated.")
        return Safe(escape(self.recommendation.sentence))

    def candidate_table(self) -> Any:
        """The candidate volumes with their objective and probability of meeting the constraints.

        Returns
        -------
        Table or None
        """
        return None if self.recommendation is None else table(self.recommendation.candidates)

    def notes_text(self) -> Safe:
        """The "Notes on the data" section.

        Returns
        -------
        Safe
        """
        return notes_markdown(self.notes)


def twin_review(
    campaign: Campaign,
    *,
    batch_id: str,
    known_h: float,
    n_fit: int = 12,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    prob: float = 0.9,
    random_seed: int | None = None,
) -> TwinReview:
    """Calibrate the twin where the campaign allows, follow a running batch, compare plans, recommend feeds.

    Parameters
    ----------
    campaign
        The campaign.
    batch_id
        The running batch (cut at ``known_h``; not used in the calibration).
    known_h
        Hours of the running batch known so far.
    n_fit
        Most calibration batches: of the completed batches that have what the twin needs (in the
        campaign's order), ``n_fit`` spread evenly from the first to the last, so that a campaign run
        as a design (feed rates, shift days) is covered, not only its first runs.
    draws, tune, chains, random_seed
        Sampler settings (``None``: the twin's defaults, :data:`~bioworkbench.models.sampling.SAMPLER_DEFAULTS`).
    prob
        Central probability of the intervals.

    Returns
    -------
    TwinReview

    Raises
    ------
    ArgumentError
        ``campaign`` is not a Campaign; a setting out of range.
    ConfigError
        ``batch_id`` is not a batch of the campaign.
    """
    from bioworkbench.errors import ConfigError, suggest
    from bioworkbench.twin import FedBatchTwin, FeedPlan
    from bioworkbench.twin.data import readiness

    fn = "twin_review"
    campaign = require_campaign(campaign, function=fn)
    prob = require_prob(prob, function=fn)
    known_h = float(require_number(known_h, function=fn, argument="known_h", minimum=0.0))
    sampler = {
        arg: int(require_number(value, function=fn, argument=arg, minimum=1, integer=True))
        for arg, value in {"draws": draws, "tune": tune, "chains": chains}.items()
        if value is not None
    }
    n_fit = int(require_number(n_fit, function=fn, argument="n_fit", minimum=1, integer=True))
    ids = campaign.batches["batch_id"].to_list()
    if batch_id not in ids:
        raise ConfigError(f"{fn}: no batch {batch_id!r} in the campaign. " + suggest(batch_id, ids, what="Batches"))
    ready = readiness(campaign)
    rev = TwinReview(campaign.name, batch_id, known_h, prob, campaign.observations, ready)
    good = set(ready.group_by("batch_id").agg(pl.col("ok").all()).filter(pl.col("ok"))["batch_id"].to_list())
    b = campaign.batches
    done = b.filter(pl.col("status") == "completed") if "status" in b.columns else b
    candidates = [i for i in done["batch_id"].to_list() if i != batch_id]
    pool = [i for i in candidates if i in good]
    if len(pool) > n_fit:  # spread over the campaign: a design's later runs (other feed rates) are covered too
        pool = [pool[i] for i in np.linspace(0, len(pool) - 1, n_fit).round().astype(int)]
    rev.fit_ids = pool
    if not rev.fit_ids:
        rev.why_no_twin = Safe(
            f"The digital twin cannot be calibrated on {escape(campaign.name)}: none of its "
            f"{plural(len(candidates), 'completed batch', 'completed batches')} records what the mechanistic "
            "fed-batch model needs. "
            + escape(_missing_words(ready.filter(pl.col("batch_id").is_in(candidates)) if candidates else ready))
            + " No model was fitted, so this report "
            "makes no prediction or recommendation."
        )
        return rev
    with collect_notes(rev.notes):
        try:
            with warnings.catch_warnings():  # convergence is stated in words by calibration_text
                warnings.simplefilter("ignore", BioWorkbenchWarning)
                rev.twin = FedBatchTwin().fit(campaign, batch_ids=rev.fit_ids, random_seed=random_seed, **sampler)
        except BioWorkbenchError as exc:
            rev.why_no_twin = Safe(f"The twin could not be calibrated: {escape(str(exc))}")
            return rev
        from bioworkbench.twin.report import calibration_fit, coverage

        rev.fit = calibration_fit(rev.twin, campaign, prob=prob)
        rev.coverage = coverage(rev.fit, campaign.observations)
        if batch_id not in good:
            rev.why_no_prediction = Safe(
                f"{escape(batch_id)} is not predicted: "
                + escape(_missing_words(ready.filter(pl.col("batch_id") == batch_id)))
            )
            return rev
        options = {"known_h": known_h, "prob": prob, "random_seed": random_seed}
        try:
            rev.prediction = rev.twin.predict(campaign, batch_id=batch_id, **options)
            rev.hindsight = _hindsight(rev, campaign, options)
            plan = FeedPlan.from_events(campaign.events, batch_id=batch_id)
            plans = {name: plan.scaled(f, from_h=known_h) for name, f in PLAN_FACTORS.items()}
            rev.comparison = rev.twin.compare(campaign, batch_id=batch_id, plans=plans, **options)
            rev.recommendation = rev.twin.recommend_feed(campaign, batch_id=batch_id, **options)
        except BioWorkbenchError as exc:
            rev.why_no_prediction = Safe(f"{escape(batch_id)} could not be followed: {escape(str(exc))}")
    return rev


def _hindsight(rev: TwinReview, campaign: Campaign, options: dict[str, Any]) -> Safe:
    """The batch's last titer reading after ``known_h`` against the predictive band of a reading then."""
    later = campaign.observations.filter(
        (pl.col("batch_id") == rev.batch_id)
        & (pl.col("source") == "offline")
        & (pl.col("variable") == "titer")
        & (pl.col("time_h") > rev.known_h)
        & pl.col("flag").is_null()
    ).drop_nulls("value")
    if later.is_empty():
        return _NOTHING
    t, value = later.sort("time_h").select("time_h", "value").row(-1)
    reading = rev.twin.predict(campaign, batch_id=rev.batch_id, kind="predictive", **options).trajectory
    band = reading.filter((pl.col("variable") == "titer") & (pl.col("time_h") == t))
    if band.is_empty():  # after the predicted end (a harvest later than planned)
        return _NOTHING
    lo, hi = band["lower"][0], band["upper"][0]
    where = "inside" if lo <= value <= hi else ("below" if value < lo else "above")
    return Safe(
        f"The campaign holds {escape(rev.batch_id)}'s readings after {rev.known_h:g} h, which the prediction did not "
        f"use: its last titer reading, {value:,.0f} mg/L at {t:g} h, lies {where} the {rev.prob:.0%} predictive "
        f"band for a reading then ({lo:,.0f}-{hi:,.0f} mg/L)."
    )


def _missing_words(ready: pl.DataFrame) -> str:
    """``Missing: initial volume (34 batches: initial_volume_ml is missing ...); ...``."""
    from bioworkbench.twin.data import gaps

    parts = [f"{req} ({plural(n, 'batch', 'batches')}: {detail})" for req, n, _, detail in gaps(ready).iter_rows()]
    return "Missing: " + "; ".join(parts) + "." if parts else ""

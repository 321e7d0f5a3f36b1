"""The batch report's forecast section: where a running batch is heading, said honestly.

The forecast (:func:`bioworkbench.models.forecast`) reads only what was known at the culture day
the report looks from: later samples, events and quality results of the batch are cut
(:meth:`Campaign.as_of`). A completed batch is not forecast; a forecast that cannot be made (no
history with enough data) is one sentence saying why, not a failed report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from bioworkbench.checks import require_number, require_prob
from bioworkbench.errors import BioWorkbenchError
from bioworkbench.review.batch import RUNNING_STATUSES, check_batch
from bioworkbench.review.display import Table, collect_notes, markdown, table
from bioworkbench.text import Safe, escape

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = ["ForecastSection", "forecast_section"]


@dataclass
class ForecastSection:
    """The batch report's forecast section (see :func:`forecast_section`)."""

    #: the batch forecast
    batch_id: str
    #: culture day (d) the forecast looks from, as asked (``known_days`` of :func:`forecast_section`);
    #: ``0`` when the batch is looked at from its last sample, and when it is not running (nothing forecast)
    known_days: float
    #: the :class:`~bioworkbench.models.forecast.Forecast` (trajectories, end points, probability of missing
    #: the titer spec, sampler diagnostics); ``None`` when no forecast was made (the batch is not running, no
    #: forecast was asked for, it has no data, or the forecast failed: :attr:`text` says which)
    forecast: Any
    #: all the batch's tidy observations, including those after ``known_days``, so that the plot can show the
    #: later measurements (not used by the forecast) against it
    observations: pl.DataFrame
    #: the section's words: the forecast peak VCD (1e6 cells/mL) and its culture day, the harvest day and titer
    #: (mg/L, when the campaign has titer), each with its interval, the process plan assumed and the
    #: probability of ending below the titer specification (when there is one), then the sampler diagnostics
    #: of the growth and titer models; or the one sentence saying why there is no forecast
    text: Safe
    #: the warnings raised while forecasting, as plain sentences, once each (empty when nothing was forecast)
    notes: list[str] = field(default_factory=list)

    def plot(self) -> Any:
        """The forecast trajectories of the batch with what was known.

        Returns
        -------
        holoviews object or Markdown
            The figure; a sentence saying what is missing when there is nothing to draw.
        """
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

    def table(self) -> Table | Any:
        """The forecast end points of the batch.

        Returns
        -------
        Table or Markdown
            The table; a sentence instead when it would be empty.
        """
        if self.forecast is None:
            return markdown("")
        return table(self.forecast.endpoints.filter(pl.col("batch_id") == self.batch_id))


def forecast_section(
    campaign: Campaign,
    batch_id: str,
    *,
    known_days: float = 0.0,
    forecast: bool = True,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    random_seed: int | None = None,
    prob: float = 0.9,
) -> ForecastSection:
    """Forecast the harvest of a running batch from what is known so far.

    Parameters
    ----------
    campaign
        The campaign (all data; the batch is cut at ``known_days`` here).
    batch_id
        The batch.
    known_days
        Look from this culture day (``0``: from the batch's last sample, if it is running).
    forecast
        ``False`` skips the forecast (one sentence says so).
    draws, tune, chains, random_seed
        Sampler settings of the growth and titer models (``None``: the ``"forecast_section"`` entry of
        :data:`bioworkbench.models.sampling.SAMPLER_DEFAULTS`, 1000 draws after 1000 tuning steps,
        2 chains).
    prob
        Central probability of the intervals.

    Returns
    -------
    ForecastSection
        ``text`` states the predicted harvest with its interval, the probability of missing the
        titer specification and, in plain words, whether the sampler can be trusted; the later
        measurements of a batch looked at as of an earlier day are kept in ``observations`` so the
        plot can show them (grey, not used) against the forecast.
    """
    check_batch(campaign, batch_id, function="forecast_section")
    known_days = float(
        require_number(known_days, function="forecast_section", argument="known_days", minimum=0, unit="d")
    )
    prob = require_prob(prob, function="forecast_section")
    obs = campaign.observations.filter(pl.col("batch_id") == batch_id)
    status = campaign.batches.filter(pl.col("batch_id") == batch_id)["status"][0]
    running = known_days > 0 or status in RUNNING_STATUSES
    b = escape(batch_id)
    if not running:
        return ForecastSection(
            batch_id, 0.0, None, obs, Safe(f"Batch {b} is {escape(status)}: there is nothing to forecast.")
        )
    if not forecast:
        return ForecastSection(batch_id, known_days, None, obs, Safe("No forecast was requested for this report."))
    if obs.is_empty():
        return ForecastSection(batch_id, known_days, None, obs, Safe(f"Batch {b} has no data yet to forecast from."))
    known_h = known_days * 24 if known_days > 0 else float(obs["time_h"].max())
    from bioworkbench.models import diagnostics_markdown
    from bioworkbench.models import forecast as run_forecast
    from bioworkbench.models.sampling import sampler_defaults

    defaults = sampler_defaults("forecast_section")
    draws = defaults.draws if draws is None else draws
    tune = defaults.tune if tune is None else tune
    chains = defaults.chains if chains is None else chains

    notes: list[str] = []
    with collect_notes(notes):
        try:
            fc = run_forecast(
                campaign,
                batch_id,
                known_h=known_h,
                draws=draws,
                tune=tune,
                chains=chains,
                random_seed=random_seed,
                prob=prob,
            )
        except BioWorkbenchError as exc:
            return ForecastSection(
                batch_id, known_days, None, obs, Safe(f"No forecast could be made: {escape(str(exc))}"), notes
            )
    text = Safe(
        escape(fc.sentence(batch_id))
        + "\n\n"
        + diagnostics_markdown(fc.diagnostics["growth"], name="Growth model")
        + "\n\n"
        + diagnostics_markdown(fc.diagnostics["titer"], name="Titer model")
    )
    return ForecastSection(batch_id, known_days, fc, obs, text, notes)

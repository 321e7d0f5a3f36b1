"""Report sections: compute everything a report states, then state it in words the numbers support.

* :mod:`~bioworkbench.review.batch` — :func:`batch_review` (release verdict, running batches,
  exceptions, the batch against the other batches, outcomes, CQAs, narrative);
* :mod:`~bioworkbench.review.campaign` — :func:`campaign_review` (release per batch, MSPC,
  exceptional batches, variability, CQAs against CPPs);
* :mod:`~bioworkbench.review.forecast` — :func:`forecast_section` for a running batch;
* :mod:`~bioworkbench.review.growth` — :func:`growth_review`: the growth and titer models where
  their data exist, the kinetics per batch where they do not;
* :mod:`~bioworkbench.review.twin` — :func:`twin_review`: the digital twin where the campaign records
  what it needs, what is missing where it does not;
* :mod:`~bioworkbench.review.stability` — the Bayesian stability analysis and the shelf-life
  comparison of the stability report;
* :mod:`~bioworkbench.text` and :mod:`~bioworkbench.review.display` — escaping data text,
  Markdown from templates, tables, collapsed details and the "Notes on the data".

The checks themselves (envelope, excursions, completeness, sensor agreement, CQAs against specs)
live in :mod:`bioworkbench.monitoring.checks` and are re-exported here for convenience.
"""

from __future__ import annotations

from bioworkbench.monitoring.checks import (
    SENSOR_TOLERANCE,
    completeness,
    cqa_table,
    envelope,
    envelope_points,
    envelope_summary,
    excursions,
    sensor_agreement,
)
from bioworkbench.outcomes import batch_outcomes as outcomes
from bioworkbench.outcomes import campaign_table
from bioworkbench.review.batch import BatchReview, batch_header, batch_review, narrative
from bioworkbench.review.campaign import CampaignReview, campaign_review, exceptional_batches, variability
from bioworkbench.review.display import Details, Table, collect_notes, details, markdown, notes_markdown, table
from bioworkbench.review.forecast import ForecastSection, forecast_section
from bioworkbench.review.growth import GrowthReview, growth_review
from bioworkbench.review.stability import (
    BayesianStability,
    bayesian_analysis,
    compare_shelf_lives,
    comparison_sentence,
    describe_study,
)
from bioworkbench.review.twin import TwinReview, twin_review
from bioworkbench.text import Safe, escape, markdown_text

__all__ = [
    "SENSOR_TOLERANCE",
    "BatchReview",
    "BayesianStability",
    "CampaignReview",
    "Details",
    "ForecastSection",
    "GrowthReview",
    "Safe",
    "Table",
    "TwinReview",
    "batch_header",
    "batch_review",
    "bayesian_analysis",
    "campaign_review",
    "campaign_table",
    "collect_notes",
    "compare_shelf_lives",
    "comparison_sentence",
    "completeness",
    "cqa_table",
    "describe_study",
    "details",
    "envelope",
    "envelope_points",
    "envelope_summary",
    "escape",
    "exceptional_batches",
    "excursions",
    "forecast_section",
    "growth_review",
    "markdown",
    "markdown_text",
    "narrative",
    "notes_markdown",
    "outcomes",
    "sensor_agreement",
    "table",
    "twin_review",
    "variability",
]

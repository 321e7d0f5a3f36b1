"""Batch monitoring: alignment, golden-batch envelopes, multivariate SPC (T², SPE, contributions)
and release by exception.

``bw.monitoring.BatchPCA`` (batch-wise unfolded PCA of Nomikos & MacGregor) judges completed
batches and charts running ones; ``bw.monitoring.BatchEvolutionModel`` works observation by
observation; ``bw.monitoring.align_by_time`` builds the tidy aligned frame both take from a
campaign. The control-limit formulas are in :mod:`bioworkbench.monitoring.limits`, the PCA numerics
in :mod:`bioworkbench.monitoring.pca` and the column screening in :mod:`bioworkbench.monitoring.screening`.
"""

from __future__ import annotations

from bioworkbench.monitoring.alignment import (
    DTWAlignment,
    Warping,
    align_by_indicator,
    align_by_phases,
    align_dtw,
    dtw,
)
from bioworkbench.monitoring.checks import (
    completeness,
    cqa_table,
    envelope,
    envelope_points,
    envelope_summary,
    excursions,
    sensor_agreement,
)
from bioworkbench.monitoring.evolution import BatchEvolutionModel
from bioworkbench.monitoring.exceptions import exception_counts, exceptions, expected_results, release_status
from bioworkbench.monitoring.golden import RunRule, deviations, golden_batch, run_rules
from bioworkbench.monitoring.grid import ALIGNED_COLUMNS, BatchArray, align_by_time, alignment_note, to_batch_array
from bioworkbench.monitoring.limits import (
    residual_theta,
    spe_limit_box,
    spe_limit_jackson_mudholkar,
    t2_limit_new,
    t2_limit_training,
)
from bioworkbench.monitoring.mspc import BatchPCA

__all__ = [
    "ALIGNED_COLUMNS",
    "BatchArray",
    "BatchEvolutionModel",
    "BatchPCA",
    "DTWAlignment",
    "RunRule",
    "Warping",
    "align_by_indicator",
    "align_by_phases",
    "align_by_time",
    "align_dtw",
    "alignment_note",
    "completeness",
    "cqa_table",
    "deviations",
    "dtw",
    "envelope",
    "envelope_points",
    "envelope_summary",
    "exception_counts",
    "exceptions",
    "excursions",
    "expected_results",
    "golden_batch",
    "release_status",
    "residual_theta",
    "run_rules",
    "sensor_agreement",
    "spe_limit_box",
    "spe_limit_jackson_mudholkar",
    "t2_limit_new",
    "t2_limit_training",
    "to_batch_array",
]

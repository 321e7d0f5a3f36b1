"""Stability studies: the tidy study frame, ICH Q1E shelf life, degradation kinetics, simulated studies and
temperature histories (NumPy/SciPy; nothing here imports PyMC or the report layer).

=============================  ==========================================================================
``read_study``                 read a stability table (CSV/Excel) into the validated study frame
``validate_study``             check and coerce a study frame (every problem located)
``study_overview``             one row per condition and attribute: lots, results, time span
``condition_at``               the study's condition at a storage temperature
``shelf_life``                 ICH Q1E regression, poolability (ANCOVA) and shelf life
``degradation_extent``         extent of degradation at a reduced time (zero/first order, Šesták–Berggren)
``simulate_stability``         a study simulated from a known Arrhenius degradation model
``mean_kinetic_temperature``   Haynes' mean kinetic temperature of a temperature history
=============================  ==========================================================================

The Bayesian accelerated-stability (Arrhenius) model is :class:`bioworkbench.models.StabilityModel`
(it imports this package, never the other way round); the stability report's sentences and its
Bayesian section are in :mod:`bioworkbench.review.stability`.

Names load lazily so that ``import bioworkbench.stability`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_ATTRS = {
    "STUDY_COLUMNS": "bioworkbench.stability.frame",
    "TIME_UNITS": "bioworkbench.stability.frame",
    "validate_study": "bioworkbench.stability.frame",
    "to_time_unit": "bioworkbench.stability.frame",
    "read_study": "bioworkbench.stability.study",
    "study_overview": "bioworkbench.stability.overview",
    "condition_at": "bioworkbench.stability.overview",
    "shelf_life": "bioworkbench.stability.q1e",
    "ShelfLifeResult": "bioworkbench.stability.q1e",
    "KINETICS": "bioworkbench.stability.degradation",
    "degradation_extent": "bioworkbench.stability.degradation",
    "extent_to_reduced_time": "bioworkbench.stability.degradation",
    "simulate_stability": "bioworkbench.stability.simulate",
    "mean_kinetic_temperature": "bioworkbench.stability.temperature",
    "TemperatureHistory": "bioworkbench.stability.history",
    "arrhenius_factor": "bioworkbench.stability.temperature",
}

#: names that moved to the report layer (this package does not import it, so there are no aliases)
_MOVED = {
    "describe_study": "bw.review.describe_study (bioworkbench.review.stability.describe_study)",
    "bayesian_analysis": "bw.review.bayesian_analysis (bioworkbench.review.stability.bayesian_analysis)",
    "BayesianStability": "bw.review.BayesianStability (bioworkbench.review.stability.BayesianStability)",
    "compare_shelf_lives": "bw.review.compare_shelf_lives (bioworkbench.review.stability.compare_shelf_lives)",
    "comparison_sentence": "bw.review.comparison_sentence (bioworkbench.review.stability.comparison_sentence)",
}

__all__ = sorted(_ATTRS)


def __getattr__(name: str) -> Any:
    if name in _ATTRS:
        return getattr(importlib.import_module(_ATTRS[name]), name)
    if name in _MOVED:
        raise AttributeError(
            f"bioworkbench.stability.{name} moved to the report layer: use {_MOVED[name]} (the stability package "
            "does not import the report layer, so it keeps no alias)."
        )
    raise AttributeError(f"module 'bioworkbench.stability' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""Stability studies: the tidy study frame, ICH Q1E shelf life, simulated studies and temperature histories.

The Bayesian accelerated-stability (Arrhenius) model lives in :mod:`bioworkbench.models.stability`.

=========================  ==============================================================
``read_study``             read a stability table (CSV/Excel) into the validated study frame
``validate_study``         check and coerce a study frame (every problem located)
``shelf_life``             ICH Q1E regression, poolability (ANCOVA) and shelf life
``simulate_stability``     a study simulated from a known Arrhenius degradation model
``mean_kinetic_temperature``  Haynes' mean kinetic temperature of a temperature history
=========================  ==============================================================

Names load lazily so that ``import bioworkbench.stability`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_ATTRS = {
    "STUDY_COLUMNS": "bioworkbench.stability.study",
    "read_study": "bioworkbench.stability.study",
    "validate_study": "bioworkbench.stability.study",
    "to_time_unit": "bioworkbench.stability.study",
    "shelf_life": "bioworkbench.stability.q1e",
    "ShelfLifeResult": "bioworkbench.stability.q1e",
    "simulate_stability": "bioworkbench.stability.simulate",
    "mean_kinetic_temperature": "bioworkbench.stability.temperature",
    "TemperatureHistory": "bioworkbench.stability.temperature",
    "arrhenius_factor": "bioworkbench.stability.temperature",
    "describe_study": "bioworkbench.stability.report",
    "study_overview": "bioworkbench.stability.report",
    "condition_at": "bioworkbench.stability.report",
    "bayesian_analysis": "bioworkbench.stability.report",
    "BayesianStability": "bioworkbench.stability.report",
    "compare_shelf_lives": "bioworkbench.stability.report",
    "comparison_sentence": "bioworkbench.stability.report",
}

__all__ = sorted(_ATTRS)


def __getattr__(name: str) -> Any:
    if name in _ATTRS:
        return getattr(importlib.import_module(_ATTRS[name]), name)
    raise AttributeError(f"module 'bioworkbench.stability' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""Bayesian process models on PyMC, all following one contract (:class:`BayesModel`).

Importing this package is light; PyMC, PyTensor and nutpie load when a model is built.
"""

from bioworkbench.models.base import BayesModel, Prior, diagnostics_markdown, load
from bioworkbench.models.compare import compare_effects
from bioworkbench.models.design_space import DesignSpace, SetPoint
from bioworkbench.models.forecast import Forecast, forecast
from bioworkbench.models.growth import GrowthModel
from bioworkbench.models.optimize import Optimum, desirability
from bioworkbench.models.response import ResponseSurface
from bioworkbench.models.stability import StabilityModel
from bioworkbench.models.titer import TiterModel
from bioworkbench.models.usable import usable_batches

__all__ = [
    "BayesModel",
    "DesignSpace",
    "Forecast",
    "GrowthModel",
    "Optimum",
    "Prior",
    "ResponseSurface",
    "SetPoint",
    "StabilityModel",
    "TiterModel",
    "compare_effects",
    "desirability",
    "diagnostics_markdown",
    "forecast",
    "load",
    "usable_batches",
]

"""The digital twin: a mechanistic fed-batch CHO model, its solver with exact gradients, and feed plans.

This first stage holds the numerical core: the model declared once in sympy
(:mod:`bioworkbench.twin.equations`, parameters in :mod:`bioworkbench.twin.parameters`), the numba
kernels generated from it (:mod:`bioworkbench.twin.codegen` writes ``_kernels.py``), the forward
solver and log-likelihood gradient (:mod:`bioworkbench.twin.solver`) and feed plans
(:mod:`bioworkbench.twin.feeds`). Importing this package loads numba (not sympy).
"""

from __future__ import annotations

from bioworkbench.twin.feeds import FeedPlan
from bioworkbench.twin.parameters import PARAMETERS, default_theta, parameter_names, parameter_table
from bioworkbench.twin.solver import (
    BatchLikelihood,
    LoglikResult,
    NonFiniteSolutionError,
    Observations,
    SolverEvents,
    StiffnessError,
    loglik_and_grad,
    observables,
    simulate,
)

__all__ = [
    "PARAMETERS",
    "BatchLikelihood",
    "FeedPlan",
    "LoglikResult",
    "NonFiniteSolutionError",
    "Observations",
    "SolverEvents",
    "StiffnessError",
    "default_theta",
    "loglik_and_grad",
    "observables",
    "parameter_names",
    "parameter_table",
    "simulate",
]

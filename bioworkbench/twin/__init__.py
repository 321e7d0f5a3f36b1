"""The digital twin: a mechanistic fed-batch CHO model, its solver with exact gradients, and feed plans.

This first stage holds the numerical core: the model declared once in sympy
(:mod:`bioworkbench.twin.equations`, parameters in :mod:`bioworkbench.twin.parameters`), the numba
kernels generated from it (:mod:`bioworkbench.twin.codegen` writes ``_kernels.py``), the forward
solver and log-likelihood gradient (:mod:`bioworkbench.twin.solver`), feed plans
(:mod:`bioworkbench.twin.feeds`) and the campaign's log-likelihood as a PyTensor Op for PyMC
(:mod:`bioworkbench.twin.op`, and with a numba implementation for nutpie in
:mod:`bioworkbench.twin.pt_op`). Stage 2 adds the calibrated twin, :class:`FedBatchTwin`
(:mod:`bioworkbench.twin.model`: hierarchy, priors, observation model in PyMC around that Op) and its
forward simulations of posterior draws (:mod:`bioworkbench.twin.scenarios`: ``predict``,
``what_if``, ``compare``), sampled from the posterior mode (:mod:`bioworkbench.twin.calibrate`);
``recommend_feed`` (:mod:`bioworkbench.twin.recommend`) chooses a running batch's next feed volume;
:mod:`bioworkbench.twin.report` holds what the twin_report notebook shows. Importing this package
loads numba (not sympy, not PyTensor, not PyMC).
"""

from __future__ import annotations

from bioworkbench.twin import report
from bioworkbench.twin.feeds import FeedPlan
from bioworkbench.twin.model import FIXED, FedBatchTwin
from bioworkbench.twin.op import CampaignLikelihood, loglik_op
from bioworkbench.twin.parameters import PARAMETERS, default_theta, parameter_names, parameter_table
from bioworkbench.twin.recommend import FeedRecommendation
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
    "FIXED",
    "PARAMETERS",
    "BatchLikelihood",
    "CampaignLikelihood",
    "FedBatchTwin",
    "FeedPlan",
    "FeedRecommendation",
    "LoglikResult",
    "NonFiniteSolutionError",
    "Observations",
    "SolverEvents",
    "StiffnessError",
    "default_theta",
    "loglik_and_grad",
    "loglik_op",
    "observables",
    "parameter_names",
    "parameter_table",
    "report",
    "simulate",
]

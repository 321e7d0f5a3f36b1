"""Classical and Bayesian effects side by side: what a reviewer used to least squares reads first.

:func:`compare_effects` joins the least-squares coefficients of :func:`bioworkbench.doe.analyze`
(estimate, confidence interval, p-value) with the posterior of the same terms of a fitted
:class:`~bioworkbench.models.ResponseSurface` (mean, credible interval, probability of the sign). Both
are in the response's unit per coded unit of the term, so the columns compare directly. They differ
where they should: the Bayesian coefficients are shrunk slightly by their priors, blocks are random
effects (a new block) rather than fixed contrasts, and with several responses the correlated residuals
share information.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from bioworkbench.errors import ConfigError
from bioworkbench.models.inputs import _check_prob

__all__ = ["compare_effects"]


def compare_effects(model: Any, analysis: Any, *, prob: float = 0.9) -> pl.DataFrame:
    """Least-squares and Bayesian coefficients of every term, per response, in one frame.

    Parameters
    ----------
    model
        A fitted :class:`~bioworkbench.models.ResponseSurface`.
    analysis
        The :class:`~bioworkbench.doe.analysis.Analysis` of the same runs and terms
        (:func:`bioworkbench.doe.analyze`).
    prob
        Mass of both intervals (confidence and credible).

    Returns
    -------
    polars.DataFrame
        ``response, term, ls_estimate, ls_lower, ls_upper, p_value, bayes_mean, bayes_lower, bayes_upper,
        p_sign, agree``: one row per term the two share (the responses and terms of ``model``).
        ``agree``: both intervals exclude zero on the same side, or both include it.

    Raises
    ------
    ConfigError
        A response of the model that the analysis lacks, or ``prob`` outside (0, 1).

    Notes
    -----
    Least squares: ``β̂ ± t_{(1+prob)/2, ν} · se`` with ``ν`` the residual degrees of freedom of the
    response's ANOVA; ``p_value`` two-sided. Bayesian: the posterior mean and equal-tailed ``prob``
    interval of :meth:`ResponseSurface.effects`, ``p_sign`` the posterior probability of the sign of
    the mean.
    """
    from scipy import stats

    _check_prob(prob)
    missing = [r for r in model.responses if r not in analysis.responses]
    if missing:
        raise ConfigError(
            f"the analysis has no response {', '.join(map(repr, missing))}; analyse the same responses "
            f"(it has {', '.join(analysis.responses)})."
        )
    df = analysis.anova.filter(pl.col("source") == "residual").select("response", nu="df")
    ls = (
        analysis.coefficients.join(df, on="response", how="left")
        .with_columns(
            q=pl.col("nu").map_elements(lambda v: float(stats.t.ppf((1 + prob) / 2, v)), return_dtype=pl.Float64)
        )
        .select(
            "response",
            "term",
            ls_estimate="estimate",
            ls_lower=pl.col("estimate") - pl.col("q") * pl.col("se"),
            ls_upper=pl.col("estimate") + pl.col("q") * pl.col("se"),
            p_value="p",
        )
    )
    bayes = model.effects(prob=prob).select(
        "response", "term", bayes_mean="mean", bayes_lower="lower", bayes_upper="upper", p_sign="p_sign"
    )
    out = bayes.join(ls, on=["response", "term"], how="left").select(
        "response",
        "term",
        "ls_estimate",
        "ls_lower",
        "ls_upper",
        "p_value",
        "bayes_mean",
        "bayes_lower",
        "bayes_upper",
        "p_sign",
    )
    side_ls = np.where(out["ls_lower"].to_numpy() > 0, 1, np.where(out["ls_upper"].to_numpy() < 0, -1, 0))
    side_b = np.where(out["bayes_lower"].to_numpy() > 0, 1, np.where(out["bayes_upper"].to_numpy() < 0, -1, 0))
    return out.with_columns(agree=pl.Series(side_ls == side_b) & pl.col("ls_estimate").is_not_null())

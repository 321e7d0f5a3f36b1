"""Sampler defaults: the one place where the number of draws, tuning steps and chains are set.

Every model, :func:`~bioworkbench.models.forecast`, and the report sections of
:mod:`bioworkbench.review` read their defaults from :data:`SAMPLER_DEFAULTS` (through
:func:`sampler_defaults`); a model's ``sampler=`` settings and the arguments of ``fit`` override them.
Each entry says why it has its values. :func:`padded_size` is the other shared piece of sampling:
the array sizes that let a compiled model be reused.

This module imports nothing from bioworkbench but the errors.
"""

from __future__ import annotations

from dataclasses import dataclass

from bioworkbench.errors import ArgumentError, suggest

__all__ = ["SAMPLER_DEFAULTS", "TUNE_BY_BACKEND", "SamplerDefaults", "padded_size", "sampler_defaults"]

#: tuning steps when neither the sampler settings nor ``fit`` give any and a model's ``tune`` default
#: is ``None``: nutpie adapts its mass matrix from the gradients and settles in a few hundred steps
#: (300 is nutpie's own default; 500 here, with the growth model's 2000 draws, for the grouped NISTCHO
#: cultures); PyMC's NUTS keeps its 1000
TUNE_BY_BACKEND: dict[str, int] = {"nutpie": 500, "pymc": 1000}


@dataclass(frozen=True, slots=True)
class SamplerDefaults:
    """The sampler settings a model or a report section uses when it is given none.

    Attributes
    ----------
    draws
        Posterior draws per chain.
    tune
        Tuning (warm-up) steps per chain; ``None``: :data:`TUNE_BY_BACKEND` of the backend that samples.
    chains
        Number of chains.
    target_accept
        NUTS target acceptance of PyMC's sampler.
    nutpie_target_accept
        NUTS target acceptance of nutpie (nutpie's own default is 0.8).
    adaptation
        nutpie's mass-matrix adaptation, ``"diag"`` or ``"low_rank"``.
    """

    draws: int
    tune: int | None
    chains: int
    target_accept: float = 0.9
    nutpie_target_accept: float = 0.8
    adaptation: str = "diag"

    def tune_for(self, backend: str) -> int:
        """Tuning steps with ``backend`` (``"nutpie"`` or ``"pymc"``).

        Parameters
        ----------
        backend
            The sampler that runs.

        Returns
        -------
        int
            :attr:`tune`, or :data:`TUNE_BY_BACKEND` of ``backend`` when it is ``None``.
        """
        return TUNE_BY_BACKEND[backend] if self.tune is None else self.tune


#: the sampler defaults of every model (by ``model_type``), of the forecast and of the report sections
SAMPLER_DEFAULTS: dict[str, SamplerDefaults] = {
    # any model that has no entry of its own
    "BayesModel": SamplerDefaults(draws=1000, tune=1000, chains=4),
    # with 1000 draws (× 4 chains) the population SDs of the 31 NISTCHO cultures in 10 groups mixed
    # slowly (r̂ 1.011-1.020, bulk ESS 270-410 over 3 seeds); with 2000 after 500 tuning steps (nutpie),
    # r̂ ≤ 1.0094 and ESS ≥ 690 (tests/test_models_slow.py)
    "GrowthModel": SamplerDefaults(draws=2000, tune=None, chains=4),
    # nutpie at target acceptance 0.9: its default 0.8 left a divergence or two per 4,000 draws in the
    # tails of the noise and intercept scales; the model is small, the smaller steps cost little.
    # Low-rank mass matrix and 1000 tuning steps: with the diagonal one and 500 steps the batch SDs
    # of the intercept and of the shift ratio (which trades off with the decline γ) mixed slowly on
    # the 23 completed demo batches: max r̂ 1.0053-1.0111, bulk ESS 369-583 over seeds 0-2; low-rank
    # with 1000 steps: max r̂ 1.0050-1.0075 (tests/test_models_slow.py), ~30 % more time.
    # 2000 draws since the models compile with numba's fastmath off (issue 19, compile_cache): the same
    # seeds then gave max r̂ 1.0083-1.0253 with 1000 draws (bulk ESS 171-461); with 2000, r̂ 1.0038-1.0086
    # and ESS 651-901 over seeds 0-3, fit 4-7 s instead of 3-6 s
    "TiterModel": SamplerDefaults(draws=2000, tune=1000, chains=4, nutpie_target_accept=0.9, adaptation="low_rank"),
    # issue 14: on a 16-run D-optimal design in 8 blocks of 2 (pH shared within a block; 1 within-block
    # residual df) nutpie at target acceptance 0.8 left ~100 divergences per 4,000 draws at small residual
    # SDs; with the QR coordinates of the coefficients ("How it is sampled" in models.response) 0-4, and
    # at 0.95 with 2000 draws 0-1 over 4 simulated data sets, r̂ ≤ 1.005 (1000 draws: r̂ up to 1.011)
    "ResponseSurface": SamplerDefaults(draws=2000, tune=1000, chains=4, nutpie_target_accept=0.95),
    # nutpie at target acceptance 0.9 (see "How it is sampled" in bioworkbench.models.stability)
    "StabilityModel": SamplerDefaults(draws=1000, tune=1000, chains=4, nutpie_target_accept=0.9),
    # the digital twin (bioworkbench.twin): each gradient solves every batch's ODE (~0.3 ms per batch),
    # so fewer draws on 2 chains; nutpie's low-rank mass matrix, because yields, maintenance and
    # Monod constants trade off (issue 16: ~150 leapfrog steps per draw with the diagonal, ~29 low-rank);
    # with the parameters no planned campaign informs held fixed (bioworkbench.twin.model.FIXED), 12 demo
    # batches of the benchmark's campaign: 14 steps per draw, 0 divergences, r̂ 1.009, bulk ESS ≥ 379 with
    # 300 tuning steps; on the demo campaign (12 batches without B14) 300 left r̂ 1.029, 14 divergences and
    # bulk ESS 71 (seed 1), 600 r̂ 1.014-1.017, 0-5 divergences and ESS 220-331 (seeds 1, 2).
    # Since tuning caps trees at depth 5 (bioworkbench.twin.calibrate.MAXDEPTH) it costs 40 % fewer leapfrog
    # steps, and 700 draws after 500 tuning steps take less time than 500 after 600 did: demo campaign
    # (seeds 1, 2) 54-56 s instead of 68 s (compiled model cached), 0 divergences, r̂ 1.009-1.012, bulk
    # ESS ≥ 551 (was r̂ 1.012-1.014, ESS 387-428)
    "FedBatchTwin": SamplerDefaults(draws=700, tune=500, chains=2, adaptation="low_rank"),
    # forecast(): on the demo campaign (B14 from day 5, 23 history batches, 3 CPP covariates) 2 chains
    # of 1000 draws gave r̂ 1.017-1.034 and bulk ESS 110-290 for the growth model; 2000 draws r̂ up to
    # 1.012; 4000 draws r̂ ≤ 1.003 and ESS ≥ 1140 (seeds 1-3), no divergences, ~15-30 s on 2 cores.
    # Since log μ and t_m are sampled centred there (growth_likelihood._centring: 31 leapfrog steps per
    # draw instead of 84), 2500 draws: growth r̂ 1.004-1.006, ESS ≥ 425, titer r̂ ≤ 1.009, ESS ≥ 482
    # (seeds 1-3), no divergences, growth sampling 5.6 s instead of 18.8 s, the same endpoints
    # Both models of a forecast at nutpie target acceptance 0.95: at the models' own 0.8 (growth) and
    # 0.9 (titer), 1-2 of the 28 fits of the calibration benchmark (14 demo forecasts) had one divergence
    # in 8,000 draws, in the far tail of a batch SD (sd_log_peak_vcd at its 0.999 quantile); which fit
    # had it changed with the seed and with growth at 0.85 or 0.9, so smaller steps for all of them
    "forecast": SamplerDefaults(draws=2500, tune=1000, chains=2, nutpie_target_accept=0.95),
    # report sections (bioworkbench.review): quick enough for a report run; the report notebooks
    # pass their own settings as parameters
    "forecast_section": SamplerDefaults(draws=1000, tune=1000, chains=2),
    "stability_section": SamplerDefaults(draws=1000, tune=1000, chains=2),
}


def sampler_defaults(name: str) -> SamplerDefaults:
    """The sampler defaults of a model (its ``model_type``), of ``"forecast"`` or of a report section.

    Parameters
    ----------
    name
        A key of :data:`SAMPLER_DEFAULTS`.

    Returns
    -------
    SamplerDefaults

    Raises
    ------
    ArgumentError
        ``name`` is not a key of :data:`SAMPLER_DEFAULTS` (the keys are listed).
    """
    if name not in SAMPLER_DEFAULTS:
        raise ArgumentError(
            f"sampler_defaults: no defaults for {name!r}. " + suggest(name, SAMPLER_DEFAULTS, what="Known")
        )
    return SAMPLER_DEFAULTS[name]


def padded_size(n: int, base: int) -> int:
    """``n`` rounded up to ``base``, ``2 base``, ``4 base``, … so compiled models are reused across similar data.

    A model whose arrays are padded to this size (the padding weighted 0) has the same structure for
    every data set of up to that many rows, so nutpie's compiled model is taken from the cache.

    Parameters
    ----------
    n
        The number of rows (observations, runs, temperatures).
    base
        The smallest size.

    Returns
    -------
    int
        The smallest ``base · 2**k`` (k ≥ 0) that is at least ``n``.
    """
    size = base
    while size < n:
        size *= 2
    return size

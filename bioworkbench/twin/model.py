"""The digital twin as a Bayesian model: the fed-batch ODE calibrated on a campaign, with partial pooling.

:class:`FedBatchTwin` follows the model contract of :mod:`bioworkbench.models.base`: ``fit`` samples
the posterior of the kinetic parameters from a campaign's offline data, ``predict`` (and
``what_if``, ``compare``) simulate posterior draws forward (:mod:`bioworkbench.twin.scenarios`),
``summary`` tabulates the parameters, ``save``/``bw.models.load`` round-trip.

Notes
-----
**Hierarchy.** The parameters of :data:`~bioworkbench.twin.parameters.PARAMETERS` with scope
``"pooled"`` take one value for the campaign; those with scope ``"batch"`` (``mu_max``, ``kd``,
``y_lac_glc``, ``q_p``: what differs between the batches of a campaign: growth, death, the lactate
yield that follows the pH set point, productivity) a value per batch, lognormal around a
population median with a between-batch SD of the log (partial pooling). The campaign-level
parameters are written non-centred (Papaspiliopoulos, Roberts & Sköld 2007; Betancourt &
Girolami 2015): for a lognormal prior :math:`\\log\\theta = \\mu + s z`, :math:`z \\sim N(0, 1)`.
The per-batch values are centred, :math:`\\log\\theta_b \\sim N(\\log\\tilde\\theta, \\tau)`,
:math:`\\tau \\sim \\mathrm{HalfNormal}`: a batch's own readings pin its value much more tightly
than the population spread, the case where the centred form samples better.

**Parameters held at their prior median.** A fed-batch campaign run as planned never shows some
of the conditions the model describes: glucose or amino acids run out, cells age past the harvest,
the culture is cooled far enough to switch to lactate uptake. The parameters of those conditions
(:data:`FIXED`) are then informed by their priors only, and their weak, non-linear trade-offs with
the parameters the data do inform leave the posterior non-log-concave (measured on the 12 demo
batches: the Hessian of the log posterior at the L-BFGS optimum had negative eigenvalues along
``k_glc``, ``kd_starve`` and ``k_nut``; 300 + 200 draws on 2 chains ran 31 leapfrog steps per draw,
12 divergences, r̂ 1.27). :class:`FedBatchTwin` holds them at their prior median by default (a
constant in the model, shown with level ``"fixed"`` in :meth:`~FedBatchTwin.summary`); with them
held the same fit ran 15 steps per draw without divergences. ``fixed=()`` samples every parameter,
for a campaign that does inform them (one with starved or chilled batches); a fixed value is set
through the parameter's prior (its median). Predictions do not carry the uncertainty of a fixed
parameter: a what-if that drives a batch into one of those conditions (a feed plan that starves it)
rests on the literature value, which the twin report says.

**Observation model.** Each offline reading :math:`x` of ``vcd, viability, glucose, glutamine,
lactate, ammonium, titer`` is lognormal around the model's observable :math:`m`:
:math:`\\log x \\sim N(\\log m, \\sigma_k)`, one :math:`\\sigma_k` per variable; a reading below the
limit of detection :math:`L` contributes :math:`\\log\\Phi((\\log L - \\log m)/\\sigma_k)` (left-censored).
The ODE, its discrete adjoint and this likelihood run in one compiled Op
(:mod:`bioworkbench.twin.pt_op`); the priors and the hierarchy are PyMC.

**Initial state** of each batch: its inoculation readings (:mod:`bioworkbench.twin.data`), the VCD
among them estimated: the log of each batch's initial VCD ``x0_b`` is normal around its reading's log
with the VCD reading SD, as every later reading is around the model (viable and dead cells scaled
alike: the count's error). Held at the reading, a count 8 % high made the fit take that batch's
growth rate 2 % low, more than its interval's half-width (a simulated campaign); the other
inoculation readings (substrates, by-products) are held fixed.

References
----------
- Papaspiliopoulos O, Roberts GO, Sköld M (2007). A general framework for the parametrization of
  hierarchical models. *Statistical Science* 22(1):59-73.
- Betancourt M, Girolami M (2015). Hamiltonian Monte Carlo for hierarchical models. In *Current
  Trends in Bayesian Methodology with Applications*, CRC Press.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import polars as pl

from bioworkbench.errors import ArgumentError, ConfigError, suggest
from bioworkbench.models.base import BayesModel, Prior
from bioworkbench.twin import _kernels as K
from bioworkbench.twin.data import OBSERVED, BatchData, batch_data, require_ready
from bioworkbench.twin.parameters import PARAMETERS, READING_SD

__all__ = ["BATCH_PARAMETERS", "FIXED", "H_MAX", "READING_SD", "FedBatchTwin"]

#: parameters with a value per batch (partial pooling)
BATCH_PARAMETERS: tuple[str, ...] = tuple(p.name for p in PARAMETERS if p.scope == "batch")
#: parameters held at their prior median unless ``fixed=`` says otherwise (see the module's Notes): the
#: Monod constants and death rates of glucose and amino-acid exhaustion (and of the amino acids' uptake),
#: the fraction of productivity kept without amino acids, ageing death, the cold switch to lactate uptake
#: and its glucose threshold, and ammonium inhibition (the demo's ammonium stays below a third of the
#: prior's half-inhibition level)
FIXED: tuple[str, ...] = (
    "k_glc", "k_nut", "k_nut_up", "ki_amm", "t_age", "n_age", "kd_starve", "kd_nut", "k_glc_shift",
    "a_lac", "logit_qp_free", "a_kd",
)  # fmt: skip
#: the largest RK4 step of the calibration (h): 2 h changes the states by ~1e-7 relative to 0.25 h
#: on a demo batch (benchmarks/bench_twin.py), at a third of the cost of 0.5 h
H_MAX = 2.0
_UNITS = {p.name: p.unit for p in PARAMETERS}


def _default_priors() -> dict[str, Prior]:
    out: dict[str, Prior] = {}
    for p in PARAMETERS:
        if p.prior == "lognormal":
            out[p.name] = Prior("LogNormal", {"mu": math.log(p.center), "sigma": p.scale}, p.unit, p.source)
        else:
            out[p.name] = Prior("Normal", {"mu": p.center, "sigma": p.scale}, p.unit, p.source)
    for name in BATCH_PARAMETERS:
        out[f"sd_{name}"] = Prior(
            "HalfNormal",
            {"sigma": 0.3},
            f"SD of log {name}",
            "between-batch spread of a CHO rate constant: up to ~±50 % (log-SD 0.3 at one SD)",
        )
    out["sigma"] = Prior(
        "LogNormal",
        {"mu": 0.0, "sigma": 0.5},
        "factor on READING_SD",
        "SD of the log of each reading = READING_SD[variable] x this factor: analyser CVs of 3-10 % plus model "
        "misfit; one factor per observed variable",
    )
    return out


class FedBatchTwin(BayesModel):
    """The fed-batch CHO model calibrated on a campaign (population and per-batch kinetics).

    Parameters
    ----------
    priors
        Overrides of the default priors, by name: each kinetic parameter of
        :func:`bioworkbench.twin.parameter_table` (``"LogNormal"`` or ``"Normal"``, written
        non-centred), ``sd_<name>`` for the between-batch SD of each per-batch parameter, and
        ``sigma`` (the SD of the log of each reading).
    sampler
        Overrides of the sampler settings (default from
        :data:`~bioworkbench.models.sampling.SAMPLER_DEFAULTS`: 700 draws, 500 tuning steps, 2 chains,
        nutpie with low-rank mass-matrix adaptation).
    fixed
        Names of pooled parameters held at their prior median instead of sampled (default
        :data:`FIXED`; ``()`` samples them all).

    Notes
    -----
    See the module's Notes for the hierarchy and the observation model.
    """

    model_type: ClassVar[str] = "FedBatchTwin"
    default_priors: ClassVar[dict[str, Prior]] = _default_priors()
    config_fields: ClassVar[tuple[str, ...]] = ("fixed",)

    def __init__(
        self,
        priors: dict[str, Any] | None = None,
        sampler: dict[str, Any] | None = None,
        fixed: Sequence[str] | None = None,
    ) -> None:
        super().__init__(priors, sampler)
        fixed = FIXED if fixed is None else fixed
        if isinstance(fixed, str):
            raise ConfigError(f"FedBatchTwin: fixed= takes a list of parameter names, got the string {fixed!r}.")
        pooled = [p.name for p in PARAMETERS if p.scope == "pooled"]
        for name in fixed:
            if name in BATCH_PARAMETERS:
                raise ConfigError(
                    f"FedBatchTwin: {name!r} has a value per batch and cannot be fixed; fixed= takes pooled "
                    f"parameters ({', '.join(pooled)})."
                )
            if name not in pooled:
                raise ConfigError(f"FedBatchTwin: fixed= names an unknown parameter {name!r}. " + suggest(name, pooled))
        self.fixed: list[str] = [n for n in pooled if n in set(fixed)]
        problems = [
            f"{name}: {self.priors[name].dist}"
            for name in (p.name for p in PARAMETERS)
            if self.priors[name].dist not in ("LogNormal", "Normal")
        ]
        problems += [
            f"{name}: {self.priors[name].dist}" for name in BATCH_PARAMETERS if self.priors[name].dist != "LogNormal"
        ]
        if problems:
            raise ConfigError(
                "FedBatchTwin: the kinetic parameters take 'LogNormal' or 'Normal' priors (per-batch parameters "
                f"'LogNormal'), written non-centred; found {'; '.join(problems)}."
            )
        self._batches: list[BatchData] = []
        self._packed: dict[str, np.ndarray] | None = None

    # -- data and model ---------------------------------------------------------------------
    def _prepare(
        self,
        data: Any,
        *,
        batch_ids: list[str] | None = None,
        h_max: float = H_MAX,
        variables: Sequence[str] = OBSERVED,
    ) -> dict[str, Any]:
        from bioworkbench.twin.pt_op import pack
        from bioworkbench.twin.solver import BatchLikelihood

        campaign = data
        known = campaign.batches["batch_id"].to_list()
        if batch_ids is None:
            b = campaign.batches
            ids = b.filter(pl.col("status") == "completed")["batch_id"].to_list() if "status" in b.columns else known
        else:
            ids = list(batch_ids)
            unknown = [i for i in ids if i not in known]
            if unknown:
                raise ConfigError(
                    f"FedBatchTwin.fit: unknown batch_ids {unknown}. " + suggest(unknown[0], known, what="Batches")
                )
        if not ids:
            raise ConfigError("FedBatchTwin.fit: no batches to fit (no completed batch; pass batch_ids=).")
        if not h_max > 0:
            raise ArgumentError(f"FedBatchTwin.fit: h_max must be positive, got {h_max!r}.")
        variables = [v for v in OBSERVED if v in set(variables)] + [v for v in variables if v not in OBSERVED]
        require_ready(campaign, ids)
        self._batches = [batch_data(campaign, b, variables=variables) for b in ids]
        liks = [BatchLikelihood(bd.events, bd.observations, h_max=h_max) for bd in self._batches]
        self._packed = pack(liks)
        digest = hashlib.sha256()
        for v in self._packed.values():
            digest.update(np.ascontiguousarray(v).tobytes())
        return {
            "batch_ids": ids,
            "h_max": float(h_max),
            "observed": list(variables),
            "y0": [bd.y0.tolist() for bd in self._batches],
            "end_h": [bd.end_h for bd in self._batches],
            "n_observations": [int(bd.observations.time_h.size) for bd in self._batches],
            "n_censored": [int(bd.observations.censored.sum()) for bd in self._batches],
            "dropped": [bd.dropped for bd in self._batches],
            "packed_sha256": digest.hexdigest(),
        }

    def _build(self, d: dict[str, Any]) -> Any:
        import pymc as pm
        import pytensor.tensor as pt

        from bioworkbench.twin.pt_op import campaign_op

        if self._packed is None:
            raise ArgumentError("FedBatchTwin: build the model from a campaign (fit or build), not from saved data.")
        n_b = len(d["batch_ids"])
        coords = {"batch": d["batch_ids"], "observed": d["observed"]}
        with pm.Model(coords=coords) as model:
            cols = []
            for p in PARAMETERS:
                pr = self.priors[p.name]
                mu, s = pr.params["mu"], pr.params["sigma"]
                if p.name in self.fixed:
                    value = pt.as_tensor(math.exp(mu) if pr.dist == "LogNormal" else float(mu))
                    cols.append(pt.repeat(pm.Deterministic(p.name, value)[None], n_b))
                    continue
                z = pm.Normal(f"z_{p.name}", 0.0, 1.0)
                if p.scope == "batch":
                    pm.Deterministic(p.name, pt.exp(mu + s * z))
                    tau = self.priors[f"sd_{p.name}"].create(f"sd_{p.name}")
                    # centred: each batch's readings pin its value far more tightly than the population
                    # spread does, where the non-centred form would tie its draws to the median and SD
                    log_b = pm.Normal(f"log_{p.name}_b", mu + s * z, tau, dims="batch")
                    cols.append(pm.Deterministic(f"{p.name}_b", pt.exp(log_b), dims="batch"))
                else:
                    value = pt.exp(mu + s * z) if pr.dist == "LogNormal" else mu + s * z
                    cols.append(pt.repeat(pm.Deterministic(p.name, value)[None], n_b))
            theta = pt.stack(cols, axis=1)
            pr = self.priors["sigma"]
            z_s = pm.Normal("z_sigma", 0.0, 1.0, dims="observed")
            centre = np.log([READING_SD[v] for v in d["observed"]])
            sigma = pm.Deterministic(
                "sigma", pt.exp(centre + pr.params["mu"] + pr.params["sigma"] * z_s), dims="observed"
            )
            idx = [K.OBSERVABLE_NAMES.index(v) for v in d["observed"]]
            sigma_full = pt.set_subtensor(pt.ones(K.NOBS)[idx], sigma)
            # the inoculation VCD is a reading like any other: each batch's log initial cell density is
            # normal around its reading's log with the VCD reading SD, viable and dead cells scaled alike (the
            # count's error). Non-centred: on a simulated campaign (7 batches, 500 + 600 draws x 2 chains) the
            # centred form ran 10 divergent transitions, this one 4, with r-hat 1.012 and 1.009
            sd_vcd = sigma[d["observed"].index("vcd")] if "vcd" in d["observed"] else READING_SD["vcd"]
            y0_read = np.asarray(d["y0"], dtype=np.float64)
            z_x0 = pm.Normal("z_x0", 0.0, 1.0, dims="batch")
            cells = y0_read[:, :2] * pt.exp(sd_vcd * z_x0)[:, None]
            pm.Deterministic("x0_b", cells[:, 0], dims="batch")
            y0 = pt.set_subtensor(pt.as_tensor(y0_read)[:, :2], cells)
            pm.Potential("loglik", campaign_op(theta, y0, sigma_full, self._packed))
        return model

    def fit(
        self,
        campaign: Any,
        *,
        batch_ids: list[str] | None = None,
        draws: int | None = None,
        tune: int | None = None,
        chains: int | None = None,
        random_seed: int | None = None,
        progressbar: bool = False,
        h_max: float = H_MAX,
        variables: Sequence[str] = OBSERVED,
    ) -> FedBatchTwin:
        """Calibrate the twin on a campaign: sample the posterior of the kinetic parameters.

        Parameters
        ----------
        campaign
            A :class:`~bioworkbench.campaign.Campaign` with ``batches, events, observations, media``.
        batch_ids
            The batches to fit; default the completed batches (``status == "completed"``).
        draws, tune, chains
            Posterior draws and tuning steps per chain, number of chains (default: the sampler settings).
        random_seed
            Seed of the sampler.
        progressbar
            Show the sampler's progress bar.
        h_max
            Largest RK4 step of the solver (h).
        variables
            The offline variables the likelihood uses (default all of
            :data:`~bioworkbench.twin.data.OBSERVED`); leave out one the model cannot follow (on the
            demo campaign lactate, which the simulated cells take up at high glucose, where the
            twin's lactate shift needs low glucose) rather than let its reading SD absorb the misfit.

        Returns
        -------
        FedBatchTwin
            The model, fitted (posterior on ``.idata``, sampler record on ``.sampling``).

        Raises
        ------
        ConfigError
            Unknown batches or variables, no batch to fit, or a batch without the readings the twin needs.
        ArgumentError
            A non-positive ``h_max`` or count.
        """
        return self._fit(
            campaign,
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=random_seed,
            progressbar=progressbar,
            batch_ids=batch_ids,
            h_max=h_max,
            variables=variables,
        )

    def _fit(self, data: Any, **kwargs: Any) -> FedBatchTwin:
        """Sample with nutpie from the posterior mode (:mod:`bioworkbench.twin.calibrate`), else as every model."""
        if self._backend() != "nutpie":
            return super()._fit(data, **kwargs)
        from bioworkbench.twin.calibrate import sample_from_mode

        return sample_from_mode(self, data, **kwargs)

    # -- results ---------------------------------------------------------------------------------
    def summary(self, prob: float = 0.9) -> pl.DataFrame:
        """The kinetic parameters: population values, per-batch values, between-batch SDs and reading SDs.

        Parameters
        ----------
        prob
            Mass of the equal-tailed interval.

        Returns
        -------
        polars.DataFrame
            ``parameter, level, batch_id, mean, sd, lower, upper, prob, unit, r_hat, ess_bulk``;
            ``level`` is ``"campaign"`` (pooled values and population medians), ``"batch"`` (the
            per-batch values and ``x0``, each batch's initial VCD), or ``"fixed"`` (held at the prior
            median: no interval, no r̂).

        Raises
        ------
        ModelNotFittedError
            The model has not been fitted.
        """
        self._require_fit()
        names: dict[str, tuple[str, str]] = {p.name: (p.name, p.unit) for p in PARAMETERS}
        names |= {f"sd_{n}": (f"sd_{n}", f"SD of log {n}") for n in BATCH_PARAMETERS}
        names |= {f"{n}_b": (n, _UNITS[n]) for n in BATCH_PARAMETERS}
        index = {f"{n}_b": list(self.data["batch_ids"]) for n in BATCH_PARAMETERS}
        if "x0_b" in self.idata["posterior"].data_vars:  # (not in a twin saved before it was estimated)
            names["x0_b"], index["x0_b"] = ("x0", "1e6 cells/mL"), list(self.data["batch_ids"])
        frame = self._summary_frame(names, index, prob)
        fixed = pl.col("parameter").is_in(self.fixed)  # constants: no interval, r̂ or ESS (null, not NaN)
        frame = frame.with_columns(
            level=pl.when(fixed).then(pl.lit("fixed")).otherwise(pl.col("level")),
            sd=pl.when(fixed).then(0.0).otherwise(pl.col("sd")),  # not the rounding noise of a constant's SD
            r_hat=pl.when(~fixed).then(pl.col("r_hat")),
            ess_bulk=pl.when(~fixed).then(pl.col("ess_bulk")),
        )
        sig = self._summary_frame({"sigma": ("sigma", "SD of log reading")}, {"sigma": self.data["observed"]}, prob)
        sig = sig.with_columns(
            parameter=pl.lit("sigma_") + pl.col("batch_id"), level=pl.lit("campaign"), batch_id=pl.lit(None)
        )
        return pl.concat([frame, sig.cast(frame.schema)])

    def predict(
        self,
        campaign: Any,
        *,
        batch_id: str,
        known_h: float | None = None,
        prob: float = 0.9,
        kind: str = "mean",
        random_seed: int | None = None,
        draws: int | None = 1000,
    ):
        """Predict a batch's trajectories and harvest endpoints under its own events.

        The future is the batch's events in ``campaign``: a running batch cut at its current time
        (``Campaign.as_of``) has none after the cut, so its prediction runs without further feeds to
        the median harvest time of the fitted batches; give the planned feeds with :meth:`what_if`.

        Parameters
        ----------
        campaign
            The campaign holding the batch (its events, inoculation readings and readings so far).
        batch_id
            The batch (keyword: the model contract keeps only the data positional).
        known_h
            For a running batch: its readings up to this time (h) update its parameters (see
            :func:`bioworkbench.twin.scenarios.forecast`). ``None``: a fitted batch uses its own
            posterior; a batch not in the fit uses all its readings.
        prob
            Mass of the equal-tailed intervals.
        kind
            ``"mean"`` (the model's states) or ``"predictive"`` (a new reading: adds the reading error).
        random_seed
            Seed of the population draws, the resampling and the reading error.
        draws
            Number of posterior draws simulated (at most the posterior's; ``None``: all).

        Returns
        -------
        bioworkbench.twin.scenarios.TwinPrediction
            ``.trajectory`` and ``.endpoints`` frames (with a ``scenario`` column ``"as planned"``).

        Raises
        ------
        ModelNotFittedError
            The model has not been fitted.
        ConfigError
            An unknown batch.
        ArgumentError
            ``prob`` outside (0, 1), an unknown ``kind``, ``known_h`` before the first reading.
        """
        from bioworkbench.twin.scenarios import forecast

        return forecast(
            self,
            campaign,
            batch_id=batch_id,
            known_h=known_h,
            plans=None,
            prob=prob,
            kind=kind,
            random_seed=random_seed,
            draws=draws,
        )

    def what_if(
        self,
        campaign: Any,
        *,
        batch_id: str,
        known_h: float | None,
        plan: Any,
        prob: float = 0.9,
        random_seed: int | None = None,
        draws: int | None = 1000,
    ):
        """Predict a batch under another feed plan from ``known_h`` on.

        Parameters
        ----------
        campaign
            The campaign holding the batch.
        batch_id
            The batch.
        known_h
            Time (h) up to which the batch ran as recorded (its events and readings); ``plan``
            takes over after it. ``None``: ``plan`` replaces the batch's events from the start.
        plan
            A :class:`~bioworkbench.twin.FeedPlan` or a frame in the events schema.
        prob
            Mass of the equal-tailed intervals.
        random_seed
            Seed of the population draws and the resampling.
        draws
            Number of posterior draws simulated.

        Returns
        -------
        bioworkbench.twin.scenarios.TwinPrediction
            With ``scenario == "what_if"``.

        Raises
        ------
        ModelNotFittedError
            The model has not been fitted.
        ConfigError
            An unknown batch or a plan the solver cannot take (unknown medium, missing volume).
        """
        return self.compare(
            campaign,
            batch_id=batch_id,
            known_h=known_h,
            plans={"what_if": plan},
            prob=prob,
            random_seed=random_seed,
            draws=draws,
        )

    def compare(
        self,
        campaign: Any,
        *,
        batch_id: str,
        known_h: float | None,
        plans: dict[str, Any],
        prob: float = 0.9,
        random_seed: int | None = None,
        draws: int | None = 1000,
    ):
        """Predict a batch under several feed plans with common random numbers.

        Every plan is simulated with the same posterior draws (and the same resampling of them on the
        batch's readings), so that differences between scenarios are not sampling noise.

        Parameters
        ----------
        campaign
            The campaign holding the batch.
        batch_id
            The batch.
        known_h
            As in :meth:`what_if`.
        plans
            Scenario name -> :class:`~bioworkbench.twin.FeedPlan` or events frame.
        prob
            Mass of the equal-tailed intervals.
        random_seed
            Seed of the population draws and the resampling.
        draws
            Number of posterior draws simulated.

        Returns
        -------
        bioworkbench.twin.scenarios.TwinPrediction
            One ``scenario`` per plan; ``.differences`` holds each endpoint's difference to the first plan.

        Raises
        ------
        ModelNotFittedError
            The model has not been fitted.
        ArgumentError
            No plans.
        """
        from bioworkbench.twin.scenarios import forecast

        if not plans:
            raise ArgumentError("FedBatchTwin.compare: pass plans={name: FeedPlan or events frame}.")
        return forecast(
            self,
            campaign,
            batch_id=batch_id,
            known_h=known_h,
            plans=dict(plans),
            prob=prob,
            kind="mean",
            random_seed=random_seed,
            draws=draws,
        )

    def recommend_feed(
        self,
        campaign: Any,
        *,
        batch_id: str,
        known_h: float,
        objective: str = "final_titer",
        constraints: dict[str, Any] | None = None,
        prob: float = 0.9,
        bounds: tuple[float, float] | None = None,
        n_candidates: int = 9,
        draws: int = 400,
        random_seed: int | None = None,
    ):
        """Recommend the volume of a running batch's remaining feeds, with the probability of meeting constraints.

        Parameters
        ----------
        campaign
            The campaign holding the batch.
        batch_id
            The batch.
        known_h
            Time (h) up to which the batch ran as recorded; the recommendation covers the feeds from it on.
        objective
            The endpoint to maximise (posterior mean), e.g. ``"final_titer"``.
        constraints
            ``{variable: (lower, upper)}`` required from ``known_h`` to the end; default glucose >= 5
            mmol/L and viability >= 70 %.
        prob
            Required probability that every constraint holds.
        bounds
            ``(low, high)`` mL per feed; default: the range of volumes per feed the calibration batches
            received (see :mod:`bioworkbench.twin.recommend`).
        n_candidates
            Volumes evenly spaced over ``bounds``.
        draws
            Posterior draws simulated per candidate.
        random_seed
            Seed of the draws.

        Returns
        -------
        bioworkbench.twin.recommend.FeedRecommendation
            ``.sentence`` says what to do, with the predicted outcome, its interval and the probability.

        Raises
        ------
        ModelNotFittedError
            The model has not been fitted.
        ArgumentError
            An unknown objective, ``prob`` outside (0, 1), bad bounds or counts.
        ConfigError
            A constraint on a variable the twin does not model, or a batch without a feed before ``known_h``.
        """
        from bioworkbench.twin.recommend import recommend_feed

        return recommend_feed(
            self, campaign, batch_id=batch_id, known_h=known_h, objective=objective, constraints=constraints,
            prob=prob, bounds=bounds, n_candidates=n_candidates, draws=draws, random_seed=random_seed,
        )  # fmt: skip

    def _notes(self) -> list[str]:
        if not self.data:
            return []
        n = sum(self.data.get("dropped", []))
        return [f"{n} zero titer reading(s) left out (below quantification)."] if n else []

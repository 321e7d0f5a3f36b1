"""Hierarchical growth model of viable cell density (VCD) trajectories across batches.

Model (``t`` in days since inoculation, ``b`` the batch)::

    log Xv_b(t) = log K_b − softplus(−μ_b (t − t_m,b)) − δ_b · softplus(t − t_d,b)
    log y_bj    ~ StudentT(ν, log Xv_b(t_bj), σ)

a logistic growth phase (rate μ, capacity K, inflection day t_m) followed by an exponential decline
of rate δ starting around day t_d; ``softplus(x) = log(1 + eˣ)`` joins the phases smoothly. The
error is on the log scale (proportional to the level) and Student-t (robust to a few outliers).
Per-batch parameters are partially pooled: ``θ_b ~ Normal(θ_campaign (+ θ_group + β·x_b), τ_θ)``
on the log scale for K, μ and δ.

Groups: ``group="auto"`` (the default of :meth:`GrowthModel.fit`) groups the batches by a declared
``group`` column of the batches table, else by the categorical CPPs (``cpp_*`` columns that are not
numbers, such as a feeding strategy), combined when there are several; the choice is stated in
``model.data["grouping"]`` and in the diagnostics' notes. The group offsets ``θ_group = τ_g z_g``
sum to zero over the groups (``z`` a ZeroSumNormal; Kruschke 2015, ch. 19, sum-to-zero deflections)
so that the campaign centre is the mean of the groups: with free offsets the centre and the offsets'
mean move together, a ridge that slowed the chains (r̂ 1.02 on NISTCHO). Numeric CPP setpoints
enter as covariates ``x_b`` when asked (``covariates="auto"``; :func:`bioworkbench.models.forecast`
does).

Parameters people read, per batch and for the campaign, with intervals: ``growth_rate`` (μ, 1/d),
``peak_vcd`` (the maximum of the fitted curve, 1e6 cells/mL), ``time_of_peak`` (d) and
``decline_rate`` (δ, 1/d). Peak and its time are computed from the posterior curves on a 0.05-day
grid, draw by draw.

Sampling coordinates (the model above is unchanged by them; they only change what NUTS moves in):

* By default every parameter of every batch is non-centred, ``θ_b = centre + τ z_b``: robust when
  the population SDs are small or uncertain (few batches, replicate cultures).
* In large campaigns (at least 30 batches seen whole, i.e. with a sample by ``t_c`` and one after
  ``t_L``) a pilot fit (:func:`pilot_fit`, per-batch MAP) chooses which of ``log K, log μ, t_m, t_d``
  to sample centred (:func:`_centring`): those whose between-batch spread is well above what each
  batch's data leave uncertain; with 15-29 such batches only ``log μ`` and ``t_m`` together, when
  both spreads exceed six conditional standard errors (the demo campaign: 31 leapfrog steps per draw
  instead of 84). Centred, they are sampled in coordinates the data pin down almost
  independently: ``log K``, ``log μ``, the early asymptote ``a = log K − μ (t_m − t_c)`` (log VCD of
  the exponential phase extrapolated to day ``t_c``) and the late asymptote ``L = log K − δ (t_L −
  t_d)`` (the decline line at day ``t_L``); ``t_m = t_c + (log K − a)/μ``, ``t_d = t_L − (log K −
  L)/δ``, and the Normal population density of the natural parameters is added with the
  log-Jacobian ``−log μ − log δ`` of that map. In the natural coordinates ``log K`` correlates with
  ``t_m`` and ``t_d`` at ±0.8 and ``log μ`` with ``t_m`` at −0.8 within a batch; in these the
  within-batch condition number drops from ~50 to ~3 (128 simulated batches) and NUTS needs four
  times fewer gradient evaluations per draw (15 instead of ~63).
* ``log δ`` (seen in a few late points only, mostly pooled) is always non-centred, and so is every
  parameter of a batch seen only in part (a running batch known up to a time, or one that ends
  early): its data do not pin every coordinate, and a centred parameter that the data leave to the
  population distribution makes a funnel.

``t_c`` is half the median time at which the batches reach half their highest VCD (the middle of
the exponential phase) and ``t_L`` one day before the median last sample.

The likelihood is summed by a compiled loop that also returns its gradient
(:func:`_student_t_sum`), over a dense (batch × point) layout with a mask.

Crashes: a culture whose VCD collapses (a sample below ``crash_fraction`` of the batch's earlier
maximum, with every later sample also below it) is not growth and decline; the smooth decline
cannot follow a 4-fold drop within a day, and the Student-t would treat the points as outliers
and drag ν towards 1. Such samples are left out with a :class:`~bioworkbench.errors.BioWorkbenchWarning`
naming batch, time, value and source line, and are listed in ``model.data["excluded"]``. The
"earlier maximum" is that of the 3-point running median (:func:`crash_points`): a single outlier
far above its neighbours does not turn the genuine samples after it into a "crash". Such an outlier
(at least :data:`OUTLIER_RATIO` times above or below both neighbours, :func:`outlier_points`) is
kept, since the Student-t likelihood gives it little weight, and named in a warning and in
``model.data["suspect"]``. A batch whose VCD does not grow (highest sample below
:data:`NO_GROWTH_RATIO` × the first) is named too: its curve is not identified by its own data.

Batches: by default every batch with at least :attr:`GrowthModel.min_points` VCD samples; the
others are left out with a warning naming each and why (``model.data["left_out"]``). Sampler
defaults: 4 chains of :data:`DEFAULT_DRAWS` draws after :data:`DEFAULT_TUNE` tuning steps, which
pass r̂ ≤ 1.01, no divergences and bulk ESS ≥ 400 on the real NISTCHO cultures (31 cultures, 10
groups; tests/test_models_slow.py).

Modules: the screening of the samples (:func:`crash_points`, :func:`outlier_points` and their
thresholds) is in :mod:`bioworkbench.models.growth_screening`, the likelihood and the sampling
coordinates (:func:`pilot_fit`, :func:`_centring`, :func:`_student_t_sum` and its PyTensor Op) in
:mod:`bioworkbench.models.growth_likelihood`; their names are importable from this module too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import polars as pl

from bioworkbench.errors import ConfigError, SchemaError
from bioworkbench.models.base import BayesModel, ForwardPriorPredictive, Prior, _row

# the screening and the likelihood numerics live in their own modules; the names people import
# from here (crash_points, pilot_fit, the thresholds, the Op) stay importable from this module
from bioworkbench.models.growth_likelihood import (
    _PILOT_MEAN,
    _dense_arrays,
    _prepared_arrays,
    _student_t_op_class,
)
from bioworkbench.models.growth_likelihood import pilot_fit as pilot_fit
from bioworkbench.models.growth_screening import (
    CRASH_FRACTION,
    _drop_crashes,
    _suspects,
    _warn_no_growth,
    _where,
    crash_points,
    outlier_points,
)
from bioworkbench.models.growth_screening import NO_GROWTH_RATIO as NO_GROWTH_RATIO
from bioworkbench.models.growth_screening import OUTLIER_RATIO as OUTLIER_RATIO
from bioworkbench.models.inputs import enough_batches
from bioworkbench.models.sampling import TUNE_BY_BACKEND, sampler_defaults

__all__ = ["DEFAULT_DRAWS", "DEFAULT_TUNE", "GrowthModel", "crash_points", "outlier_points"]

_PARAMS = ("log_K", "log_mu", "t_m", "t_d", "log_delta")
#: tuning steps per backend when neither the sampler settings nor ``fit`` give any (defined, with the
#: reason, in :mod:`bioworkbench.models.sampling`)
DEFAULT_TUNE = TUNE_BY_BACKEND
#: posterior draws per chain of the growth model unless the sampler settings or ``fit`` give any
#: (defined, with the reason, in :data:`bioworkbench.models.sampling.SAMPLER_DEFAULTS`)
DEFAULT_DRAWS = sampler_defaults("GrowthModel").draws
#: lower bound of the Student-t degrees of freedom (the prior of ``nu`` is truncated there)
NU_MIN = 1.0


def __getattr__(name: str) -> Any:
    # the Op class is built lazily (keeps ``import bioworkbench`` light) but must be found by name
    # when a compiled model is pickled (PyMC sends it to its chain processes); it is named as a
    # member of this module (see growth_likelihood._student_t_op_class)
    if name == "GrowthStudentTSum":
        return _student_t_op_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class GrowthModel(ForwardPriorPredictive, BayesModel):
    """Hierarchical logistic-growth-and-decline model of VCD (see the module docstring).

    Default priors (natural scales):

    =====================  ===================================  ==============  ==================================
    prior                  distribution                         unit            why
    =====================  ===================================  ==============  ==================================
    ``peak_vcd``           LogNormal(log 15, 1)                 1e6 cells/mL    fed-batch CHO peaks at 5–60
    ``growth_rate``        LogNormal(log 0.6, 0.5)              1/d             doubling every 0.7–3 days
    ``inflection_day``     Normal(4, 2)                         d               half the capacity reached day 2–6
    ``decline_day``        Normal(9, 3)                         d               decline begins day 5–14
    ``decline_rate``       LogNormal(log 0.2, 1)                1/d             0.05–1 /d loss after the peak
    ``sd_log_peak_vcd``    HalfNormal(0.3)                      log             batch-to-batch CV of K up to ~50 %
    ``sd_log_growth_rate`` HalfNormal(0.3)                      log             CV of μ up to ~50 %
    ``sd_inflection_day``  HalfNormal(1)                        d
    ``sd_decline_day``     HalfNormal(1.5)                      d
    ``sd_log_decline_rate`` HalfNormal(0.5)                     log
    ``sd_group``           HalfNormal(0.2)                      log / d         group (e.g. CPP level) offsets
    ``beta``               Normal(0, 0.2)                       per SD          covariate (CPP) effects
    ``sigma``              HalfNormal(0.15)                     log             ~5–15 % counting error
    ``nu``                 Gamma(2, 0.1), truncated to ν ≥ 1    –               Student-t tails (Juárez & Steel;
                                                                                the bound as in brms)
    =====================  ===================================  ==============  ==================================

    Sampler: ``tune`` defaults to 500 steps with nutpie and 1000 with PyMC's NUTS
    (:data:`DEFAULT_TUNE`) and ``draws`` to 2000 per chain (:data:`DEFAULT_DRAWS`; 4 chains)
    unless the sampler settings or :meth:`fit` give them.

    Parameters
    ----------
    priors
        Replacements for the default priors above, by name (e.g. ``{"peak_vcd": Prior("LogNormal",
        mu=3.0, sigma=0.5)}``); names not in the table are an error.
    sampler
        Sampler settings (``draws``, ``tune``, ``chains``, ``target_accept``, ``backend``) that
        replace the defaults of :mod:`bioworkbench.models.sampling`.
    """

    model_type = "GrowthModel"
    default_priors: ClassVar[dict[str, Prior]] = {
        "peak_vcd": Prior(
            "LogNormal", {"mu": float(np.log(15.0)), "sigma": 1.0}, "1e6 cells/mL", "fed-batch CHO peaks at 5-60"
        ),
        "growth_rate": Prior("LogNormal", {"mu": float(np.log(0.6)), "sigma": 0.5}, "1/d", "doubling every 0.7-3 days"),
        "inflection_day": Prior("Normal", {"mu": 4.0, "sigma": 2.0}, "d", "half capacity reached on day 2-6"),
        "decline_day": Prior("Normal", {"mu": 9.0, "sigma": 3.0}, "d", "decline begins day 5-14"),
        "decline_rate": Prior("LogNormal", {"mu": float(np.log(0.2)), "sigma": 1.0}, "1/d", "0.05-1 /d after the peak"),
        "sd_log_peak_vcd": Prior("HalfNormal", {"sigma": 0.3}, "log", "batch-to-batch CV of K up to ~50 %"),
        "sd_log_growth_rate": Prior("HalfNormal", {"sigma": 0.3}, "log", "batch-to-batch CV of mu up to ~50 %"),
        "sd_inflection_day": Prior("HalfNormal", {"sigma": 1.0}, "d", "batch-to-batch spread of t_m"),
        "sd_decline_day": Prior("HalfNormal", {"sigma": 1.5}, "d", "batch-to-batch spread of t_d"),
        "sd_log_decline_rate": Prior("HalfNormal", {"sigma": 0.5}, "log", "batch-to-batch spread of delta"),
        "sd_group": Prior("HalfNormal", {"sigma": 0.2}, "log or d", "group offsets from the campaign"),
        "beta": Prior("Normal", {"mu": 0.0, "sigma": 0.2}, "log or d per SD", "a CPP SD moves K, mu, delta by ~20 %"),
        "sigma": Prior("HalfNormal", {"sigma": 0.15}, "log", "5-15 % counting error"),
        "nu": Prior("Gamma", {"alpha": 2.0, "beta": 0.1}, "", "Student-t tails, robust to outliers"),
    }
    min_points = 4

    # -- fitting ------------------------------------------------------------------------------
    def fit(
        self,
        campaign: Any,
        *,
        batch_ids: str | Sequence[str] | None = None,
        group: str | None = "auto",
        covariates: str | Sequence[str] | None = None,
        known_until_h: Mapping[str, float] | None = None,
        min_points: int | None = None,
        crash_fraction: float | None = CRASH_FRACTION,
        draws: int | None = None,
        tune: int | None = None,
        chains: int | None = None,
        random_seed: int | None = None,
        progressbar: bool = False,
    ) -> GrowthModel:
        """Sample the posterior of the growth model for the VCD of a campaign's batches.

        Parameters
        ----------
        campaign
            The campaign; its offline, unflagged VCD samples above 0 are used.
        batch_ids
            The batches to fit. Default: every batch with at least ``min_points`` VCD samples; the
            others are left out with a :class:`~bioworkbench.errors.BioWorkbenchWarning` that names
            each and why (also in ``model.data["left_out"]``). Given batches that have too few
            samples are an error.
        group
            Partially pooled offsets per level of a batches column. ``"auto"`` (default): a
            ``group`` column of the batches if there is one, else the categorical CPP columns
            (``cpp_*`` that are not numbers, e.g. a feeding strategy), combined if several; no
            grouping if there is none. ``None``: no grouping. The choice is stated in
            ``model.data["grouping"]`` and in :meth:`diagnostics` ``["notes"]``.
        covariates
            Batch columns (e.g. numeric CPP setpoints) that shift the population's log K, log μ,
            t_m, t_d and log δ linearly per standard deviation; ``"auto"``: the numeric CPPs that
            vary. Default: none.
        known_until_h
            ``{batch_id: hours}``: batches known only up to a time (running); their later samples
            are not used and 2 samples suffice.
        min_points
            Fewest VCD samples for a batch seen whole (default :attr:`min_points`, 4).
        crash_fraction
            A sample below this fraction of the batch's earlier (robust) maximum VCD, with every
            later sample also below it, is a collapsed culture and is left out with a warning
            (:func:`crash_points`); ``None`` keeps every sample.
        draws, tune, chains, random_seed, progressbar
            Sampler settings (defaults: the model's ``sampler`` settings: :data:`DEFAULT_DRAWS`
            (2000) draws per chain, 4 chains, ``tune`` 500 with nutpie and 1000 with PyMC,
            :data:`DEFAULT_TUNE`; with these the real NISTCHO cultures pass r̂ ≤ 1.01, no
            divergences and bulk ESS ≥ 400).

        Returns
        -------
        GrowthModel
            ``self``, with ``idata`` (posterior), ``data`` and ``sampling`` (settings, timings,
            versions and data hash: what decides the draws for a seed).

        Raises
        ------
        ArgumentError
            ``campaign`` is not a Campaign; a setting that is not a number of the right kind.
        SchemaError
            Unknown or repeated batches, an empty list, given batches with too few samples (each
            named with its count), or fewer than 2 batches left (each left-out batch named with why).
        ConfigError
            An unknown group or covariate column; ``crash_fraction`` outside (0, 1).

        Warns
        -----
        BioWorkbenchWarning
            Batches left out, samples of collapsed cultures left out, samples that look like
            outliers (kept), a batch whose VCD does not grow, and a fit that did not converge.
        """
        return self._fit(
            campaign,
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=random_seed,
            progressbar=progressbar,
            batch_ids=batch_ids,
            group=group,
            covariates=covariates,
            known_until_h=known_until_h,
            min_points=min_points,
            crash_fraction=crash_fraction,
        )

    # -- data ---------------------------------------------------------------------------------
    def _prepare(
        self,
        data: Any,
        *,
        batch_ids: str | Sequence[str] | None = None,
        group: str | None = "auto",
        covariates: str | Sequence[str] | None = None,
        known_until_h: Mapping[str, float] | None = None,
        min_points: int | None = None,
        crash_fraction: float | None = CRASH_FRACTION,
    ) -> dict[str, Any]:
        """VCD observations of the campaign (offline, unflagged, > 0) as arrays (see :meth:`fit`).

        In steps: the samples used (:meth:`_vcd_samples`), collapsed cultures left out and outliers
        named (:mod:`~bioworkbench.models.growth_screening`), batches with too few samples left out
        (:meth:`_batches_with_enough`), batches that do not grow named, then the arrays and the
        sampling coordinates (:func:`~bioworkbench.models.growth_likelihood._prepared_arrays`).
        """
        from bioworkbench.checks import require_campaign, require_number
        from bioworkbench.models.inputs import batch_list, known_times

        if isinstance(data, dict) and "t" in data:  # already prepared
            return data
        fn = f"{type(self).__name__}.fit"
        data = require_campaign(data, function=fn)
        if crash_fraction is not None:
            crash_fraction = require_number(crash_fraction, function=fn, argument="crash_fraction")
            if not 0 < crash_fraction < 1:
                raise ConfigError(f"crash_fraction must lie between 0 and 1 (or be None); got {crash_fraction!r}.")
        min_points = int(
            require_number(min_points or self.min_points, function=fn, argument="min_points", minimum=2, integer=True)
        )
        chosen = batch_ids is not None
        ids = batch_list(batch_ids, data, function=fn) if chosen else list(data.batch_ids)
        known = known_times(known_until_h, ids, function=fn)
        model, level = type(self).__name__, 5  # warnings name the line that called fit: 5 frames up
        obs = self._vcd_samples(data, ids, known)
        obs, excluded = _drop_crashes(obs, crash_fraction, model=model, stacklevel=level)
        suspect = _suspects(obs, model=model, stacklevel=level)
        obs, ids, left_out = self._batches_with_enough(obs, ids, known, min_points, chosen=chosen, function=fn)
        obs = obs.sort("batch_id", "time_h")
        _warn_no_growth(obs, known, model=model, stacklevel=level)
        arrays = _prepared_arrays(data, obs, ids, known, group=group, covariates=covariates, function=fn)
        return {**arrays, "excluded": excluded, "suspect": suspect, "left_out": left_out}

    @staticmethod
    def _vcd_samples(data: Any, ids: list[str], known: dict[str, float]) -> pl.DataFrame:
        """The offline, unflagged VCD samples above 0 of batches ``ids``; a running batch's up to its time."""
        obs = data.observations.filter(
            (pl.col("variable") == "vcd")
            & (pl.col("source") != "online")
            & pl.col("flag").is_null()
            & (pl.col("value") > 0)
        )
        obs = obs.filter(pl.col("batch_id").is_in(ids))
        if known:
            cut = pl.DataFrame({"batch_id": list(known), "_cut": list(known.values())})
            obs = (
                obs.join(cut, on="batch_id", how="left")
                .filter(pl.col("_cut").is_null() | (pl.col("time_h") <= pl.col("_cut")))
                .drop("_cut")
            )
        return obs

    def _batches_with_enough(
        self,
        obs: pl.DataFrame,
        ids: list[str],
        known: dict[str, float],
        min_points: int,
        *,
        chosen: bool,
        function: str,
    ) -> tuple[pl.DataFrame, list[str], list[dict[str, str]]]:
        """The batches with enough samples (``obs``, ``ids``) and those left out with why.

        A batch the user chose (``chosen``) with too few samples is a :class:`SchemaError`; one
        taken by default is left out with a warning (:func:`~bioworkbench.models.inputs.enough_batches`).
        """
        n = {b: 0 for b in ids} | dict(obs.group_by("batch_id").len().iter_rows())
        # a running batch (known only up to a time) leans on the campaign: fewer points suffice
        need = {b: min(min_points, 2) if b in known else min_points for b in ids}
        few = {b: k for b, k in n.items() if k < need[b]}
        left_out: list[dict[str, str]] = []
        if few and chosen:
            raise SchemaError(
                "; ".join(
                    f"batch {b} has {k} VCD point{'s' if k != 1 else ''}"
                    + (f" up to {known[b]:g} h" if b in known else "")
                    for b, k in sorted(few.items())
                )
                + f" — the growth model needs at least {min_points} per batch (unflagged, offline, > 0). "
                "Leave such batches out with batch_ids=[...] (bw.models.usable_batches lists the usable ones)."
            )
        if few:
            left_out = [{"batch_id": b, "reason": f"{k} VCD points (needs {need[b]})"} for b, k in few.items()]
            ids = [b for b in ids if b not in few]
        enough_batches(ids, left_out, function=function, model=type(self).__name__, data="VCD", stacklevel=5)
        if left_out:
            obs = obs.filter(pl.col("batch_id").is_in(ids))
        return obs, ids, left_out

    def _notes(self) -> list[str]:
        d = self.data or {}
        notes = []
        gr = d.get("grouping")
        if gr and gr["columns"]:
            notes.append(f"Batches are grouped by {' × '.join(gr['columns'])} ({gr['levels']} groups; {gr['how']}).")
        if d.get("left_out"):
            notes.append(
                f"{len(d['left_out'])} batch(es) left out: "
                + "; ".join(f"{e['batch_id']} ({e['reason']})" for e in d["left_out"])
                + "."
            )
        if d.get("excluded"):
            notes.append(f"{len(d['excluded'])} VCD sample(s) of collapsed cultures left out: {_where(d['excluded'])}.")
        if d.get("suspect"):
            notes.append(f"{len(d['suspect'])} VCD sample(s) look like outliers and were kept: {_where(d['suspect'])}.")
        return notes

    def _structure(self, d: dict[str, Any]) -> tuple:
        # batch slots are not padded; the points of a batch are (to a multiple of 4)
        per = np.bincount(np.asarray(d["b"], "int64"), minlength=len(d["batch_ids"]))
        return (
            len(d["batch_ids"]),
            -(-int(per.max()) // 4) * 4,
            max(len(d["groups"]), 1),
            tuple(d.get("sparse", ())),
            tuple(d.get("centred", ())),
            tuple((d.get("covariates") or {}).get("names", ())),
        )

    def _dense(self, d: dict[str, Any]) -> dict[str, np.ndarray]:
        """The observations as (batch, point) arrays with a mask ``w`` (1: a sample, 0: padding).

        A dense layout lets every batch's parameters broadcast over its points instead of being
        gathered per observation (and scattered back in the gradient): ~1.5× faster gradients.
        """
        nb, npt, *_ = self._structure(d)
        t, log_y, w = _dense_arrays(d["t"], d["log_y"], d["b"], nb, npt)
        g = np.zeros(nb, dtype="int64")
        g[: len(d["g"])] = d["g"]
        t_ref = d.get("t_ref") or [2.0, float(d["t_max"]) - 1.0]
        return {
            "t": t,
            "log_y": log_y,
            "w": w,
            "n_obs": np.asarray(float(len(d["b"]))),
            "t_ref": np.asarray(t_ref, float),
            "g": g,
        }

    def _shared_data(self, d: dict[str, Any]) -> dict[str, np.ndarray]:
        out = self._dense(d)
        cov = d.get("covariates") or {"names": []}
        if cov["names"]:
            out["x_cov"] = np.asarray(cov["x"], float)
        return out

    # -- model --------------------------------------------------------------------------------
    def _build(self, d: dict[str, Any]) -> Any:
        import pymc as pm
        import pytensor.tensor as pt

        nb, _, ng, *_ = self._structure(d)
        arr = self._dense(d)
        p = self.priors
        coords = {
            "slot": np.arange(nb),
            "param": list(_PARAMS),
            "group": np.arange(ng),
        }
        sparse = np.ones(nb, bool) if self._forward_only else np.asarray(d.get("sparse", [True] * nb), bool)
        full_i, part_i = np.flatnonzero(~sparse), np.flatnonzero(sparse)
        with pm.Model(coords=coords) as model:
            t = pm.Data("t", arr["t"])
            log_y = pm.Data("log_y", arr["log_y"])
            w = pm.Data("w", arr["w"])
            n_obs = pm.Data("n_obs", arr["n_obs"])
            t_ref = pm.Data("t_ref", arr["t_ref"])
            g = pm.Data("g", arr["g"])
            K = p["peak_vcd"].create("peak_vcd_campaign")
            mu = p["growth_rate"].create("growth_rate_campaign")
            tm = p["inflection_day"].create("inflection_day_campaign")
            td = p["decline_day"].create("decline_day_campaign")
            dl = p["decline_rate"].create("decline_rate_campaign")
            sds = pt.stack(
                [
                    p["sd_log_peak_vcd"].create("sd_log_peak_vcd"),
                    p["sd_log_growth_rate"].create("sd_log_growth_rate"),
                    p["sd_inflection_day"].create("sd_inflection_day"),
                    p["sd_decline_day"].create("sd_decline_day"),
                    p["sd_log_decline_rate"].create("sd_log_decline_rate"),
                ]
            )
            center = pt.stack([pt.log(K), pt.log(mu), tm, td, pt.log(dl)])
            if ng > 1:
                # group offsets sum to zero over the groups (a ZeroSumNormal): the campaign centre is
                # the mean of the groups, not a direction the offsets can trade against it (with the
                # offsets free, the centre and the offsets' mean drifted together: r̂ 1.02 on NISTCHO)
                sd_g = p["sd_group"].create("sd_group", dims="param")
                zg = pm.ZeroSumNormal("z_group", sigma=1.0, dims=("param", "group"))
                center_b = center[None, :] + (zg * sd_g[:, None]).T[g]
            else:
                center_b = pt.broadcast_to(center[None, :], (nb, len(_PARAMS)))
            cov = d.get("covariates") or {"names": []}
            if cov["names"]:
                x = pm.Data("x_cov", np.asarray(cov["x"], float))
                beta = p["beta"].create("beta", shape=(len(cov["names"]), len(_PARAMS)))
                center_b = center_b + pt.dot(x, beta)
            theta = pt.zeros((nb, len(_PARAMS)))
            if part_i.size:  # batches seen in part: non-centred in every parameter
                z_s = pm.Normal("z_growth_sparse", 0.0, 1.0, shape=(part_i.size, len(_PARAMS)))
                theta = pt.set_subtensor(theta[part_i], center_b[part_i] + z_s * sds[None, :])
            if full_i.size:
                # batches seen whole: each of log K, log mu, t_m, t_d, log delta centred (the first
                # four in the coordinates log K, log mu, a, L; module docstring) or non-centred, as
                # _centring chose
                centred = list(d.get("centred") or [False] * len(_PARAMS))
                centred += [False] * (len(_PARAMS) - len(centred))
                nf, cb, n_c = full_i.size, center_b[full_i], sum(centred)
                t_c, t_l = t_ref[0], t_ref[1]
                if n_c:
                    u = pm.Flat("u_growth", shape=(nf, n_c), initval=self._start(d, nf))
                if n_c < len(_PARAMS):
                    z_f = pm.Normal("z_growth", 0.0, 1.0, shape=(nf, len(_PARAMS) - n_c))
                cols, k_u, k_z = [], 0, 0
                for j, c in enumerate(centred):
                    if c:
                        cols.append(u[:, k_u])
                        k_u += 1
                    else:
                        cols.append(cb[:, j] + sds[j] * z_f[:, k_z])
                        k_z += 1
                log_k, log_mu, tm_f, td_f, log_dl_f = cols
                log_jac = 0.0
                if centred[2]:  # the early asymptote a -> t_m; |d t_m / d a| = 1/mu
                    tm_f = t_c + (log_k - tm_f) / pt.exp(log_mu)
                    log_jac = log_jac - log_mu.sum()
                if centred[3]:  # the late asymptote L -> t_d; |d t_d / d L| = 1/delta
                    td_f = t_l - (log_k - td_f) / pt.exp(log_dl_f)
                    log_jac = log_jac - log_dl_f.sum()
                nat = pt.stack([log_k, log_mu, tm_f, td_f, log_dl_f], axis=1)
                if n_c:
                    on = np.flatnonzero(centred)
                    pm.Potential(
                        "growth_prior",
                        pm.logp(pm.Normal.dist(cb[:, on], sds[on][None, :]), nat[:, on]).sum() + log_jac,
                    )
                theta = pt.set_subtensor(theta[full_i], nat)
            theta = pm.Deterministic("theta", theta, dims=("slot", "param"))
            sigma = p["sigma"].create("sigma")
            # nu >= 1 (brms's bound for its gamma(2, 0.1) prior of nu): tails beyond Cauchy's are no
            # model for cell counts, and a collapse of nu towards 0 makes the geometry unsamplable
            nu_prior = p["nu"]
            nu = pm.Truncated("nu", getattr(pm, nu_prior.dist).dist(**nu_prior.params), lower=NU_MIN)
            # Student-t log density written out: its normalising constant once (PyMC's StudentT logp
            # evaluates the log-gamma terms at every point), the sum over points by a compiled loop
            # that also gives its gradient (_student_t_op_class)
            sum_log1p = _student_t_op_class()()(theta, sigma, nu, t, log_y, w)[0]
            const = pt.gammaln((nu + 1) / 2) - pt.gammaln(nu / 2) - 0.5 * pt.log(nu * np.pi) - pt.log(sigma)
            pm.Potential("loglik", n_obs * const - (nu + 1) / 2 * sum_log1p)
        return model

    def _start(self, d: dict[str, Any], n: int) -> np.ndarray:
        """Initial values of the centred coordinates: the prior centres (log K, log mu, a, L, log delta)."""
        p = self.priors
        k0 = p["peak_vcd"].params.get("mu", _PILOT_MEAN[0])
        m0 = p["growth_rate"].params.get("mu", _PILOT_MEAN[1])
        tm0 = p["inflection_day"].params.get("mu", _PILOT_MEAN[2])
        td0 = p["decline_day"].params.get("mu", _PILOT_MEAN[3])
        dl0 = np.exp(p["decline_rate"].params.get("mu", _PILOT_MEAN[4]))
        t_c, t_l = d.get("t_ref") or [2.0, float(d["t_max"]) - 1.0]
        start = np.array([k0, m0, k0 - np.exp(m0) * (tm0 - t_c), k0 - dl0 * (t_l - td0), np.log(dl0)], float)
        return np.tile(start[np.asarray(d["centred"], bool)], (n, 1))

    def _simulate_observations(self, prior: Any, rng: np.random.Generator) -> Any:
        import xarray as xr

        n = len(self.data["t"])
        th = prior["theta"].values[..., : len(self.data["batch_ids"]), :]  # (chain, draw, batch, 5)
        b = np.asarray(self.data["b"])
        t = np.asarray(self.data["t"])
        nat = th.copy()
        for i in (0, 1, 4):
            nat[..., i] = np.exp(th[..., i])
        p = nat[..., b, :]  # (chain, draw, obs, 5)
        mean = (
            np.log(p[..., 0])
            - np.logaddexp(0.0, -p[..., 1] * (t - p[..., 2]))
            - p[..., 4] * np.logaddexp(0.0, t - p[..., 3])
        )
        sigma, nu = prior["sigma"].values[..., None], prior["nu"].values[..., None]
        y = np.exp(mean + sigma * rng.standard_t(nu, size=mean.shape))
        return xr.Dataset({"vcd": (("chain", "draw", "obs"), y)}, coords={"obs": np.arange(n)})

    # -- results ------------------------------------------------------------------------------
    def _theta(self) -> np.ndarray:
        """Posterior per-batch parameters on their natural scales: (sample, batch, 5)
        as K, μ, t_m, t_d, δ."""
        th = self.posterior_draws("theta")[:, : len(self.data["batch_ids"]), :]
        out = th.copy()
        out[..., 0] = np.exp(th[..., 0])
        out[..., 1] = np.exp(th[..., 1])
        out[..., 4] = np.exp(th[..., 4])
        return out

    @staticmethod
    def curve(theta: np.ndarray, t_days: np.ndarray) -> np.ndarray:
        """VCD of the model for parameters (K, μ, t_m, t_d, δ) at the given culture days.

        Parameters
        ----------
        theta
            Parameters, shape ``(..., 5)``: peak VCD K (1e6 cells/mL), growth rate μ (1/d),
            inflection day t_m, decline day t_d and decline rate δ (1/d).
        t_days
            Culture days, shape ``(n,)``.

        Returns
        -------
        numpy.ndarray
            VCD (1e6 cells/mL), shape ``(..., n)``.
        """
        K, mu, tm, td, dl = (theta[..., i, None] for i in range(5))
        t = np.asarray(t_days, float)
        log_x = np.log(K) - np.logaddexp(0.0, -mu * (t - tm)) - dl * np.logaddexp(0.0, t - td)
        return np.exp(log_x)

    @staticmethod
    def peak(theta: np.ndarray, t_end: float) -> tuple[np.ndarray, np.ndarray]:
        """Peak VCD and its day of the model curve on ``[0, t_end]`` (days).

        The log curve :math:`\\log K - \\mathrm{softplus}(-\\mu (t - t_m)) - \\delta\\,\\mathrm{softplus}(t - t_d)`
        is concave in :math:`t` (softplus is convex, :math:`\\mu, \\delta > 0`): its slope
        :math:`\\mu\\,\\sigma(-\\mu (t - t_m)) - \\delta\\,\\sigma(t - t_d)` falls with :math:`t`, so the
        maximum is where the slope crosses zero (or an end of the range when it does not), found by
        bisection to 1e-7 d. This is exact where a grid search is not, and takes milliseconds for the
        8,000 draws x 24 batches a grid of 0.05 d took seconds for.

        Parameters
        ----------
        theta
            Parameters, shape ``(..., 5)``, as for :meth:`curve`.
        t_end
            The last day of the range (the culture's end).

        Returns
        -------
        tuple of numpy.ndarray
            Peak VCD (1e6 cells/mL) and its day, each of shape ``theta.shape[:-1]``.
        """
        from scipy.special import expit

        mu, tm, td, dl = (theta[..., i] for i in (1, 2, 3, 4))

        def slope(t: np.ndarray) -> np.ndarray:
            return mu * expit(-mu * (t - tm)) - dl * expit(t - td)

        lo, hi = np.zeros(mu.shape), np.full(mu.shape, float(t_end))
        for _ in range(int(np.ceil(np.log2(max(t_end, 1.0) / 1e-7)))):
            mid = 0.5 * (lo + hi)
            up = slope(mid) > 0.0
            lo, hi = np.where(up, mid, lo), np.where(up, hi, mid)
        day = np.where(slope(hi) >= 0.0, hi, 0.5 * (lo + hi))  # rising at t_end: the peak is the end
        day = np.where(slope(np.zeros(mu.shape)) <= 0.0, 0.0, day)  # falling from day 0
        log_x = np.log(theta[..., 0]) - np.logaddexp(0.0, -mu * (day - tm)) - dl * np.logaddexp(0.0, day - td)
        return np.exp(log_x), day

    def _peaks(self, t_end: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        return self.peak(self._theta(), t_end or max(self.data["t_max"], 14.0))

    def summary(self, prob: float = 0.9) -> pl.DataFrame:
        """Per-batch and campaign parameters with their posterior intervals.

        Parameters
        ----------
        prob
            Central interval probability, in (0, 1).

        Returns
        -------
        polars.DataFrame
            One row per level (``batch`` or ``campaign``), batch and parameter (growth_rate,
            peak_vcd, time_of_peak, decline_rate, inflection_day, decline_day and the noise scale),
            with ``mean, sd, lower, upper, prob`` and the unit.
        """
        from bioworkbench.checks import require_prob

        prob = require_prob(prob, function="GrowthModel.summary")
        self._require_fit()
        ids = self.data["batch_ids"]
        th = self._theta()
        peak, tpeak = self._peaks()
        per = {
            "growth_rate": (th[..., 1], "1/d"),
            "peak_vcd": (peak, "1e6 cells/mL"),
            "time_of_peak": (tpeak, "d"),
            "decline_rate": (th[..., 4], "1/d"),
            "inflection_day": (th[..., 2], "d"),
            "decline_day": (th[..., 3], "d"),
        }
        rows = []
        for name, (x, unit) in per.items():
            s = self._summarise(x, prob)
            for i, bid in enumerate(ids):
                rows.append(_row(name, "batch", bid, s, i, unit))
        camp = {
            "growth_rate": ("growth_rate_campaign", "1/d"),
            "peak_vcd": ("peak_vcd_campaign", "1e6 cells/mL"),
            "decline_rate": ("decline_rate_campaign", "1/d"),
            "inflection_day": ("inflection_day_campaign", "d"),
            "decline_day": ("decline_day_campaign", "d"),
            "sigma": ("sigma", "log"),
            "nu": ("nu", ""),
        }
        for name, (var, unit) in camp.items():
            s = self._summarise(self.posterior_draws(var), prob)
            rows.append(_row(name, "campaign", None, s, None, unit))
        note = {"peak_vcd": "campaign: capacity K of the typical batch"}
        return (
            pl.DataFrame(rows)
            .with_columns(prob=pl.lit(prob))
            .with_columns(
                note=pl.when((pl.col("level") == "campaign") & (pl.col("parameter") == "peak_vcd")).then(
                    pl.lit(note["peak_vcd"])
                )
            )
            .select("parameter", "level", "batch_id", "mean", "sd", "lower", "upper", "prob", "unit", "note")
        )

    def predict(
        self,
        *,
        times_h: np.ndarray | list[float] | None = None,
        batch_ids: list[str] | None = None,
        prob: float = 0.9,
        kind: str = "mean",
        random_seed: int | None = None,
    ) -> pl.DataFrame:
        """VCD trajectories per batch with intervals.

        Parameters
        ----------
        times_h
            Culture times in hours (default: every 6 h from 0 to the longest batch, at least 14 days).
        batch_ids
            Fitted batches to predict (default: all).
        prob
            Central interval probability, in (0, 1).
        kind
            ``"mean"``: the posterior of the curve; ``"predictive"``: with the measurement error
            (Student-t on the log scale), i.e. where a new measurement would fall.
        random_seed
            Seed of the predictive noise draws (``kind="predictive"``).

        Returns
        -------
        polars.DataFrame
            ``batch_id, time_h, variable, mean, lower, upper, prob`` (``variable`` is ``vcd``).

        Raises
        ------
        ConfigError
            ``kind`` is neither ``"mean"`` nor ``"predictive"``.
        ModelNotFittedError
            The model has not been fitted.
        """
        from bioworkbench.checks import require_choice, require_prob

        fn = "GrowthModel.predict"
        prob = require_prob(prob, function=fn)
        require_choice(kind, ("mean", "predictive"), function=fn, argument="kind")
        self._require_fit()
        ids = self.data["batch_ids"]
        want = _fitted_batches(batch_ids, ids, fn)
        times_h = (
            np.arange(0.0, max(self.data["t_max"], 14.0) * 24 + 1e-9, 6.0) if times_h is None else _times(times_h, fn)
        )
        th = self._theta()[:, [ids.index(b) for b in want], :]
        cur = self.curve(th, times_h / 24)  # (S, B, T)
        if kind == "predictive":
            rng = np.random.default_rng(random_seed)
            sigma = self.posterior_draws("sigma")[:, None, None]
            nu = self.posterior_draws("nu")[:, None, None]
            cur = cur * np.exp(sigma * rng.standard_t(nu, size=cur.shape))
        elif kind != "mean":
            raise ConfigError(f"kind must be 'mean' or 'predictive'; got {kind!r}.")
        lo, hi = np.quantile(cur, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
        nb, nt = cur.shape[1:]
        return pl.DataFrame(
            {
                "batch_id": np.repeat(want, nt),
                "time_h": np.tile(times_h, nb),
                "variable": "vcd",
                "mean": cur.mean(axis=0).ravel(),
                "lower": lo.ravel(),
                "upper": hi.ravel(),
            }
        ).with_columns(prob=pl.lit(prob))

    def curve_draws(self, batch_id: str, times_h: np.ndarray) -> np.ndarray:
        """Posterior draws of the VCD curve of one batch.

        Parameters
        ----------
        batch_id
            A fitted batch.
        times_h
            Culture times in hours.

        Returns
        -------
        numpy.ndarray
            VCD (1e6 cells/mL), shape ``(sample, time)`` (chains and draws stacked).
        """
        self._require_fit()
        fn = "GrowthModel.curve_draws"
        (b,) = _fitted_batches(batch_id, self.data["batch_ids"], fn, single=True)
        i = self.data["batch_ids"].index(b)
        return self.curve(self._theta()[:, i, :], _times(times_h, fn) / 24)

    def unusual(self, prob: float = 0.9) -> pl.DataFrame:
        """Batches whose parameters stand out from the campaign.

        A batch is unusual in a parameter when the robust z of its posterior mean across the
        batches' posterior means (centred on their median, scaled by 1.4826 × MAD) exceeds 2.5 in
        absolute value.

        Parameters
        ----------
        prob
            Central interval probability, in (0, 1).

        Returns
        -------
        polars.DataFrame
            ``batch_id, parameter, mean, lower, upper, unit, campaign_median, robust_z``, one row per
            unusual batch and parameter, most unusual first.
        """
        from bioworkbench.checks import require_prob

        s = self.summary(require_prob(prob, function="GrowthModel.unusual")).filter(pl.col("level") == "batch")
        out = s.with_columns(
            _med=pl.col("mean").median().over("parameter"),
            _mad=(pl.col("mean") - pl.col("mean").median().over("parameter")).abs().median().over("parameter"),
        ).with_columns(robust_z=(pl.col("mean") - pl.col("_med")) / (1.4826 * pl.col("_mad")))
        return (
            out.filter(pl.col("robust_z").abs() > 2.5)
            .select(
                "batch_id",
                "parameter",
                "mean",
                "lower",
                "upper",
                "unit",
                pl.col("_med").alias("campaign_median"),
                "robust_z",
            )
            .sort(pl.col("robust_z").abs(), descending=True)
        )


def _fitted_batches(batch_ids: Any, fitted: list[str], function: str, *, single: bool = False) -> list[str]:
    """``batch_ids`` (``None``: all fitted) checked against the batches the model was fitted on."""
    from bioworkbench.checks import describe_type
    from bioworkbench.errors import ArgumentError
    from bioworkbench.schema import suggest

    if batch_ids is None and not single:
        return list(fitted)
    want = [batch_ids] if isinstance(batch_ids, str) else batch_ids
    if (
        not isinstance(want, list | tuple)
        or not want
        or not all(isinstance(b, str) for b in want)
        or (single and len(want) != 1)
    ):
        what = "a batch id" if single else "a batch id or a list of batch ids"
        raise ArgumentError(f"{function}: batch_ids must be {what}; got {describe_type(batch_ids)}.")
    missing = [b for b in want if b not in fitted]
    if missing:
        raise SchemaError(
            f"{function}: batch(es) {', '.join(missing)} were not in the data this model was fitted on. "
            + suggest(missing[0], fitted, what="Fitted batches")
        )
    return list(want)


def _times(
    times_h: Any, function: str, *, argument: str = "times_h", what: str = "culture times in hours"
) -> np.ndarray:
    """``times_h`` as a finite float array, else an :class:`ArgumentError` naming ``argument``."""
    from bioworkbench.checks import describe_type
    from bioworkbench.errors import ArgumentError

    try:
        t = np.asarray(times_h, dtype=float).ravel()
    except (TypeError, ValueError):
        t = None
    if t is None or isinstance(times_h, str) or not t.size or not np.all(np.isfinite(t)):
        raise ArgumentError(
            f"{function}: {argument} must be {what} (finite numbers, e.g. [0, 24, 48]); got {describe_type(times_h)}."
        )
    return t

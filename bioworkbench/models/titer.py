"""Titer as a function of the cells that made it: per-batch specific productivity, partially pooled.

Model (``b`` the batch, ``j`` a titer sample; IVCD in 1e6 cells·d/mL, titer in mg/L)::

    titer_bj ~ Normal(a_b + qp_b · IVCD⁻_bj + qp'_b · IVCD⁺_bj,  sqrt((c · m_bj)² + s₀²))
    log qp_b  ~ Normal(log qp_campaign (+ β·x_b), τ_qp)
    log (qp'_b / qp_b) ~ Normal(log r_campaign (+ β'·x_b), τ_r)
    a_b ~ Normal(a_campaign, τ_a)

``IVCD⁻`` is the IVCD accumulated before the batch's ``shift`` event (e.g. a temperature shift) and
``IVCD⁺`` the IVCD after it, so a productivity change at the shift is learnt (without a shift event,
``IVCD⁺ = 0`` and ``qp`` applies throughout). 1 mg/L per 1e6 cells·d/mL is 1 pg/cell/d, so ``qp`` is in
pg/cell/d. The error has a proportional part ``c`` (assay CV) and a floor ``s₀`` (mg/L). IVCD comes
from :func:`bioworkbench.kinetics.compute` (trapezoid of the measured VCD), interpolated linearly to
the shift time.

What ``qp`` is: the *apparent* (concentration-basis) specific productivity, the slope of the titer
concentration against the IVCD of the viable cell concentration (the titer–IVCD plot of Renard,
Spagnoli & Haller 1988, Biotechnol. Lett. 10:91). It is what the cells realised, not a kinetic
maximum. In fed-batch the feeds dilute the titer, so it lies a little below the mass-balance
productivity (product mass per viable cell-day, ``qp`` of :func:`bioworkbench.kinetics.compute`):
on the simulated campaigns by about 2 % before the shift, more later in the batch, where more
feed has gone in. It is the right quantity for forecasting titer concentrations from the IVCD of
concentrations. (The simulator's ``qp_pg_per_cell_day`` is its kinetic constant at 36.5 °C with
amino acids in excess; its cells realise 92–97 % of it before the shift.)

Sampling coordinates: ``z_r`` (the ratio, non-centred) and ``m_b = (log qp_b + log qp'_b)/2``
(centred, ``m_b ~ Normal(log qp_campaign + log r_b / 2, τ_qp)``, the same model): the titers before
and after the shift pin ``m_b`` together, and it does not narrow as ``τ_r`` shrinks (``log qp_b``
does, a funnel); ``a_b`` non-centred. nutpie runs with a target acceptance of 0.9.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import polars as pl

from bioworkbench.errors import ConfigError, SchemaError
from bioworkbench.models.base import BayesModel, ForwardPriorPredictive, Prior
from bioworkbench.models.inputs import enough_batches
from bioworkbench.models.sampling import padded_size

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = ["TiterModel", "titer_design"]


def titer_design(
    campaign: Campaign,
    *,
    batch_ids: list[str] | None = None,
    known_until_h: Mapping[str, float] | None = None,
    shift_h: Mapping[str, float | None] | None = None,
) -> pl.DataFrame:
    """Titer samples with the IVCD before and after each batch's shift.

    The shift is the batch's first ``shift`` event, or ``shift_h[batch]`` for the batches it names
    (a planned shift not yet in the events table; ``None``: no shift). Returns ``batch_id,
    time_h, titer, ivcd, ivcd_pre, ivcd_post, shift_h``.

    Parameters
    ----------
    campaign
        A :class:`~bioworkbench.Campaign` with titer and VCD samples.
    batch_ids
        The batches (default: every batch).
    known_until_h
        ``{batch_id: hours}``: use only what was known up to that time.
    shift_h
        ``{batch_id: hours or None}``: the shift time to assume for the batches named.

    Returns
    -------
    polars.DataFrame
        ``batch_id, time_h, titer, ivcd, ivcd_pre, ivcd_post, shift_h``.
    """

    from bioworkbench import kinetics

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kin = kinetics.compute(campaign, variables=[])
    ivcd = (
        kin.filter(pl.col("variable") == "ivcd").select("batch_id", "time_h", ivcd="value").sort("batch_id", "time_h")
    )
    titer = campaign.observations.filter(
        (pl.col("variable") == "titer")
        & (pl.col("source") != "online")
        & pl.col("flag").is_null()
        & pl.col("value").is_not_null()
    ).select("batch_id", "time_h", titer="value")
    ids = batch_ids if batch_ids is not None else campaign.batch_ids
    titer = titer.filter(pl.col("batch_id").is_in(ids))
    if known_until_h:
        cut = pl.DataFrame({"batch_id": list(known_until_h), "_cut": [float(v) for v in known_until_h.values()]})
        titer = (
            titer.join(cut, on="batch_id", how="left")
            .filter(pl.col("_cut").is_null() | (pl.col("time_h") <= pl.col("_cut")))
            .drop("_cut")
        )
    times = _shift_times(campaign, ids, shift_h)
    shift = pl.DataFrame(
        {
            "batch_id": [b for b, v in times.items() if v is not None],
            "shift_h": [v for v in times.values() if v is not None],
        },
        schema={"batch_id": pl.String, "shift_h": pl.Float64},
    )
    d = titer.join(ivcd, on=["batch_id", "time_h"], how="inner").join(shift, on="batch_id", how="left")
    ivcd_at_shift = _interp_at(ivcd, shift)
    return (
        d.join(ivcd_at_shift, on="batch_id", how="left")
        .with_columns(
            ivcd_pre=pl.when(pl.col("shift_h").is_null() | (pl.col("time_h") <= pl.col("shift_h")))
            .then("ivcd")
            .otherwise("ivcd_shift"),
        )
        .with_columns(ivcd_post=pl.col("ivcd") - pl.col("ivcd_pre"))
        .select("batch_id", "time_h", "titer", "ivcd", "ivcd_pre", "ivcd_post", "shift_h")
        .sort("batch_id", "time_h")
    )


def _shift_times(
    campaign: Campaign, ids: list[str], shift_h: Mapping[str, float | None] | None
) -> dict[str, float | None]:
    """Each batch's shift time (h): ``shift_h`` where it names the batch, else its first ``shift`` event."""
    ev = dict(
        campaign.events.filter((pl.col("event") == "shift") & pl.col("batch_id").is_in(list(ids)))
        .group_by("batch_id")
        .agg(pl.col("time_h").min())
        .iter_rows()
    )
    planned = dict(shift_h or {})
    return {b: (planned[b] if b in planned else ev.get(b)) for b in ids}


def _interp_at(curve: pl.DataFrame, at: pl.DataFrame) -> pl.DataFrame:
    """Linear interpolation of ``curve`` (batch_id, time_h, ivcd) at ``at`` (batch_id, shift_h)."""
    if at.is_empty():
        return pl.DataFrame(schema={"batch_id": pl.String, "ivcd_shift": pl.Float64})
    a = at.rename({"shift_h": "time_h"}).sort("time_h")
    c = curve.sort("time_h")
    before = a.join_asof(
        c.rename({"time_h": "t0", "ivcd": "y0"}),
        left_on="time_h",
        right_on="t0",
        by="batch_id",
        strategy="backward",
        check_sortedness=False,
    )
    both = before.join_asof(
        c.rename({"time_h": "t1", "ivcd": "y1"}),
        left_on="time_h",
        right_on="t1",
        by="batch_id",
        strategy="forward",
        check_sortedness=False,
    )
    return both.select(
        "batch_id",
        ivcd_shift=pl.when(pl.col("t1") == pl.col("t0"))
        .then("y0")
        .when(pl.col("t1").is_null())
        .then("y0")
        .otherwise(
            pl.col("y0")
            + (pl.col("y1") - pl.col("y0")) * (pl.col("time_h") - pl.col("t0")) / (pl.col("t1") - pl.col("t0"))
        ),
    )


class TiterModel(ForwardPriorPredictive, BayesModel):
    """Per-batch specific productivity from titer against IVCD (see the module docstring).

    Default priors:

    =================  ============================  ==========  ====================================
    prior              distribution                  unit        why
    =================  ============================  ==========  ====================================
    ``qp``             LogNormal(log 25, 0.7)        pg/cell/d   CHO mAb processes: 5–100 pg/cell/d
    ``sd_log_qp``      HalfNormal(0.3)               log         batch-to-batch CV of qp up to ~50 %
    ``shift_ratio``    LogNormal(0, 0.5)             –           qp after / before the shift, 0.4–2.7
    ``sd_log_ratio``   HalfNormal(0.2)               log
    ``intercept``      Normal(0, 100)                mg/L        titer at inoculation (carry-over)
    ``sd_intercept``   HalfNormal(50)                mg/L
    ``cv``             HalfNormal(0.1)               –           assay CV, typically 2–8 %
    ``floor``          HalfNormal(20)                mg/L        assay error near the limit of detection
    ``beta``           Normal(0, 0.2)                log per SD  covariate (CPP) effects on qp and ratio
    =================  ============================  ==========  ====================================

    Parameters
    ----------
    priors
        Overrides of the default priors, by name.
    sampler
        Overrides of the sampler settings (see :class:`~bioworkbench.models.BayesModel`).
    """

    model_type = "TiterModel"
    default_priors: ClassVar[dict[str, Prior]] = {
        "qp": Prior(
            "LogNormal", {"mu": float(np.log(25.0)), "sigma": 0.7}, "pg/cell/d", "CHO mAb processes: 5-100 pg/cell/d"
        ),
        "sd_log_qp": Prior("HalfNormal", {"sigma": 0.3}, "log", "batch-to-batch CV of qp up to ~50 %"),
        "shift_ratio": Prior("LogNormal", {"mu": 0.0, "sigma": 0.5}, "", "qp after / before the shift"),
        "sd_log_ratio": Prior("HalfNormal", {"sigma": 0.2}, "log", "batch-to-batch spread of the ratio"),
        "intercept": Prior("Normal", {"mu": 0.0, "sigma": 100.0}, "mg/L", "titer at inoculation (carry-over)"),
        "sd_intercept": Prior("HalfNormal", {"sigma": 50.0}, "mg/L", "batch-to-batch spread of the intercept"),
        "cv": Prior("HalfNormal", {"sigma": 0.1}, "", "assay CV, typically 2-8 %"),
        "floor": Prior("HalfNormal", {"sigma": 20.0}, "mg/L", "assay error near the detection limit"),
        "beta": Prior("Normal", {"mu": 0.0, "sigma": 0.2}, "log per SD", "a CPP SD moves qp by ~20 %"),
    }
    min_points = 3

    def fit(
        self,
        campaign: Campaign,
        *,
        batch_ids: str | Sequence[str] | None = None,
        covariates: str | Sequence[str] | None = None,
        known_until_h: Mapping[str, float] | None = None,
        shift_h: Mapping[str, float | None] | None = None,
        min_points: int | None = None,
        draws: int | None = None,
        tune: int | None = None,
        chains: int | None = None,
        random_seed: int | None = None,
        progressbar: bool = False,
    ) -> TiterModel:
        """Sample the posterior of the titer model (titer against IVCD before and after the shift).

        Parameters
        ----------
        campaign
            The campaign; its offline, unflagged titer samples that have a VCD at the same time.
        batch_ids
            The batches to fit. Default: every batch with at least ``min_points`` titer samples;
            the others are left out with a :class:`~bioworkbench.errors.BioWorkbenchWarning` naming
            each and why (also in ``model.data["left_out"]``). Given batches with too few samples
            are an error.
        covariates
            Batch columns (e.g. numeric CPP setpoints) that shift the population's log qp and log
            ratio linearly per standard deviation; ``"auto"``: the numeric CPPs that vary. Default: none.
        known_until_h
            ``{batch_id: hours}``: batches known only up to a time (running); later titers are not
            used and a running batch may have none yet (its qp then comes from the population).
        shift_h
            ``{batch_id: hours}`` of the shift (``None``: no shift) for batches whose shift is not
            in the events table yet (a running batch's planned shift); the events table's ``shift``
            event is used for the others.
        min_points
            Fewest titer samples of a batch seen whole (default :attr:`min_points`, 3).
        draws, tune, chains, random_seed, progressbar
            Sampler settings (defaults: the ``sampler`` settings; ``tune`` per backend,
            :data:`~bioworkbench.models.sampling.TUNE_BY_BACKEND`; nutpie's target acceptance 0.9:
            :data:`~bioworkbench.models.sampling.SAMPLER_DEFAULTS`).

        Returns
        -------
        TiterModel
            ``self``, with ``idata``, ``data`` and ``sampling``.

        Raises
        ------
        ArgumentError
            ``campaign`` is not a Campaign; a setting that is not a number of the right kind.
        SchemaError
            Unknown or repeated batches, an empty list, given batches with too few titer samples
            (each named with its count), no titer in the campaign, or fewer than 2 batches left.
        ConfigError
            An unknown covariate column.
        """
        return self._fit(
            campaign,
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=random_seed,
            progressbar=progressbar,
            batch_ids=batch_ids,
            covariates=covariates,
            known_until_h=known_until_h,
            shift_h=shift_h,
            min_points=min_points,
        )

    def _prepare(
        self,
        data: Any,
        *,
        batch_ids: str | Sequence[str] | None = None,
        known_until_h: Mapping[str, float] | None = None,
        shift_h: Mapping[str, float | None] | None = None,
        min_points: int | None = None,
        covariates: str | Sequence[str] | None = None,
    ) -> dict[str, Any]:
        from bioworkbench.checks import require_campaign, require_number
        from bioworkbench.models.base import covariate_matrix
        from bioworkbench.models.inputs import batch_list, known_times, resolve_covariates

        if isinstance(data, dict) and "ivcd_pre" in data:
            return data
        fn = f"{type(self).__name__}.fit"
        data = require_campaign(data, function=fn)
        min_points = int(
            require_number(min_points or self.min_points, function=fn, argument="min_points", minimum=1, integer=True)
        )
        chosen = batch_ids is not None
        ids = batch_list(batch_ids, data, function=fn) if chosen else list(data.batch_ids)
        known = known_times(known_until_h, ids, function=fn)
        d = titer_design(data, batch_ids=ids, known_until_h=known, shift_h=shift_h)
        if d.is_empty() and not data.observations.filter(pl.col("variable") == "titer").height:
            raise SchemaError(
                f"{fn}: campaign {data.name!r} has no titer samples; the titer model needs titer "
                "(forecast VCD alone with GrowthModel)."
            )
        n = {b: 0 for b in ids} | dict(d.group_by("batch_id").len().iter_rows())
        # a running batch (known only up to a time) leans on the campaign: it may have no titer yet
        few = {b: k for b, k in n.items() if b not in known and k < min_points}
        left_out: list[dict[str, str]] = []
        if few and chosen:
            raise SchemaError(
                "; ".join(
                    f"batch {b} has {k} titer point{'s' if k != 1 else ''} with a VCD at the same time"
                    for b, k in sorted(few.items())
                )
                + f" — the titer model needs at least {min_points} per batch. "
                "Leave such batches out with batch_ids=[...]."
            )
        if few:
            left_out = [{"batch_id": b, "reason": f"{k} titer points (needs {min_points})"} for b, k in few.items()]
            ids = [b for b in ids if b not in few]
            d = d.filter(pl.col("batch_id").is_in(ids))
        enough_batches(ids, left_out, function=fn, model=type(self).__name__, data="titer", stacklevel=4)
        idx = {b: i for i, b in enumerate(ids)}
        shifts = _shift_times(data, ids, shift_h)
        return {
            "batch_ids": list(ids),
            "b": [idx[b] for b in d["batch_id"].to_list()],
            "titer": d["titer"].to_list(),
            "ivcd_pre": d["ivcd_pre"].to_list(),
            "ivcd_post": d["ivcd_post"].to_list(),
            "time_h": d["time_h"].to_list(),
            "shift_h": [shifts.get(b) for b in ids],
            "covariates": covariate_matrix(data, list(ids), resolve_covariates(covariates, data, ids, function=fn)),
            "known_until_h": known,
            "left_out": left_out,
        }

    def _notes(self) -> list[str]:
        d = self.data or {}
        if d.get("left_out"):
            return [
                f"{len(d['left_out'])} batch(es) left out: "
                + "; ".join(f"{e['batch_id']} ({e['reason']})" for e in d["left_out"])
                + "."
            ]
        return []

    def _structure(self, d: dict[str, Any]) -> tuple:
        covariates = tuple((d.get("covariates") or {}).get("names", ()))
        return (len(d["batch_ids"]), padded_size(len(d["titer"]), 64), covariates)

    def _padded(self, d: dict[str, Any]) -> dict[str, np.ndarray]:
        _, no, _ = self._structure(d)
        n = len(d["titer"])
        pad = np.zeros(no - n)
        return {
            "titer": np.concatenate([np.asarray(d["titer"], float), pad]),
            "ivcd_pre": np.concatenate([np.asarray(d["ivcd_pre"], float), pad]),
            "ivcd_post": np.concatenate([np.asarray(d["ivcd_post"], float), pad]),
            "b": np.concatenate([np.asarray(d["b"], "int64"), np.zeros(no - n, "int64")]),
            "w": np.concatenate([np.ones(n), pad]),
        }

    def _shared_data(self, d: dict[str, Any]) -> dict[str, np.ndarray]:
        out = self._padded(d)
        cov = d.get("covariates") or {"names": []}
        if cov["names"]:
            out["x_cov"] = np.asarray(cov["x"], float)
        return out

    def _build(self, d: dict[str, Any]) -> Any:
        import pymc as pm
        import pytensor.tensor as pt

        arr = self._padded(d)
        p = self.priors
        with pm.Model(coords={"batch": list(d["batch_ids"])}) as model:
            y = pm.Data("titer", arr["titer"])
            x1 = pm.Data("ivcd_pre", arr["ivcd_pre"])
            x2 = pm.Data("ivcd_post", arr["ivcd_post"])
            b = pm.Data("b", arr["b"])
            w = pm.Data("w", arr["w"])
            qp_c = p["qp"].create("qp_campaign")
            ratio_c = p["shift_ratio"].create("shift_ratio_campaign")
            a_c = p["intercept"].create("intercept_campaign")
            sd_qp = p["sd_log_qp"].create("sd_log_qp")
            sd_r = p["sd_log_ratio"].create("sd_log_ratio")
            sd_a = p["sd_intercept"].create("sd_intercept")
            # productivity is well identified by each batch's titer curve: centred
            mu_log_qp = pt.log(qp_c)
            mu_log_r = pt.log(ratio_c)
            cov = d.get("covariates") or {"names": []}
            if cov["names"]:
                x = pm.Data("x_cov", np.asarray(cov["x"], float))
                beta = p["beta"].create("beta", shape=(len(cov["names"]), 2))
                mu_log_qp = mu_log_qp + pt.dot(x, beta[:, 0])
                mu_log_r = mu_log_r + pt.dot(x, beta[:, 1])
            # the ratio qp'/qp non-centred; centred in the mean m = (log qp + log qp')/2, which the
            # titers before and after the shift pin together (log qp itself is then free of the
            # ratio's scale: in log qp the posterior narrows as sd_log_ratio shrinks, a funnel)
            z_r = pm.Normal("z_ratio", 0.0, 1.0, dims="batch")
            log_r = mu_log_r + sd_r * z_r
            m = pm.Normal("mean_log_qp_b", mu_log_qp + log_r / 2, sd_qp, dims="batch")
            z_a = pm.Normal("z_intercept", 0.0, 1.0, dims="batch")
            qp = pm.Deterministic("qp_b", pt.exp(m - log_r / 2), dims="batch")
            qp2 = pm.Deterministic("qp_after_shift_b", pt.exp(m + log_r / 2), dims="batch")
            a = pm.Deterministic("intercept_b", a_c + sd_a * z_a, dims="batch")
            mean = a[b] + qp[b] * x1 + qp2[b] * x2
            cv = p["cv"].create("cv")
            s0 = p["floor"].create("floor")
            sigma = pt.sqrt((cv * mean) ** 2 + s0**2)
            pm.Potential("loglik", (w * pm.logp(pm.Normal.dist(mu=mean, sigma=sigma), y)).sum())
        return model

    def _simulate_observations(self, prior: Any, rng: np.random.Generator) -> Any:
        import xarray as xr

        b = np.asarray(self.data["b"])
        x1, x2 = np.asarray(self.data["ivcd_pre"]), np.asarray(self.data["ivcd_post"])
        mean = (
            prior["intercept_b"].values[..., b]
            + prior["qp_b"].values[..., b] * x1
            + prior["qp_after_shift_b"].values[..., b] * x2
        )
        sd = np.sqrt((prior["cv"].values[..., None] * mean) ** 2 + prior["floor"].values[..., None] ** 2)
        y = mean + sd * rng.standard_normal(mean.shape)
        return xr.Dataset({"titer": (("chain", "draw", "obs"), y)}, coords={"obs": np.arange(len(b))})

    def summary(self, prob: float = 0.9) -> pl.DataFrame:
        """qp (and qp after the shift, intercept) per batch and for the campaign.

        Parameters
        ----------
        prob
            Mass of the equal-tailed intervals.

        Returns
        -------
        polars.DataFrame
            One row per parameter (and batch, for the per-batch ones) with ``mean, lower, upper, prob``
            and the unit; no ``qp_after_shift`` row for a batch without a shift.
        """
        from bioworkbench.checks import require_prob

        prob = require_prob(prob, function="TiterModel.summary")
        self._require_fit()
        ids = self.data["batch_ids"]
        names = {
            "qp_b": ("qp", "pg/cell/d"),
            "qp_after_shift_b": ("qp_after_shift", "pg/cell/d"),
            "intercept_b": ("intercept", "mg/L"),
            "qp_campaign": ("qp", "pg/cell/d"),
            "shift_ratio_campaign": ("shift_ratio", ""),
            "sd_log_qp": ("sd_log_qp", "log"),
            "cv": ("cv", ""),
            "floor": ("floor", "mg/L"),
        }
        index = {k: ids for k in ("qp_b", "qp_after_shift_b", "intercept_b")}
        out = self._summary_frame(names, index, prob)
        # a batch without a shift event has no qp after a shift
        no_shift = [b for b, s in zip(ids, self.data["shift_h"], strict=True) if s is None]
        return out.filter(~((pl.col("parameter") == "qp_after_shift") & pl.col("batch_id").is_in(no_shift)))

    def predict(
        self,
        *,
        batch_id: str,
        ivcd_pre: np.ndarray,
        ivcd_post: np.ndarray,
        prob: float = 0.9,
        kind: str = "mean",
        random_seed: int | None = None,
    ) -> pl.DataFrame:
        """Titer of ``batch_id`` at the given IVCD before/after the shift: ``mean, lower, upper, prob``.

        Parameters
        ----------
        batch_id
            A fitted batch.
        ivcd_pre, ivcd_post
            IVCD accumulated before and after the shift, 1e6 cells·d/mL.
        prob
            Mass of the equal-tailed intervals.
        kind
            ``"mean"`` (the titer curve) or ``"predictive"`` (a new sample, with assay noise).
        random_seed
            Seed of the predictive draws.

        Returns
        -------
        polars.DataFrame
            One row per IVCD point: ``mean, lower, upper, prob``.
        """
        from bioworkbench.checks import require_prob
        from bioworkbench.models.growth import _times

        prob = require_prob(prob, function="TiterModel.predict")
        what = "IVCDs in 1e6 cells·d/mL"
        ivcd_pre = _times(ivcd_pre, "TiterModel.predict", argument="ivcd_pre", what=what)
        ivcd_post = _times(ivcd_post, "TiterModel.predict", argument="ivcd_post", what=what)
        draws = self.titer_draws(
            batch_id,
            np.asarray(ivcd_pre, float)[None, :],
            np.asarray(ivcd_post, float)[None, :],
            kind=kind,
            random_seed=random_seed,
        )
        lo, hi = np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
        return pl.DataFrame(
            {
                "batch_id": batch_id,
                "ivcd_pre": ivcd_pre,
                "ivcd_post": ivcd_post,
                "variable": "titer",
                "mean": draws.mean(axis=0),
                "lower": lo,
                "upper": hi,
            }
        ).with_columns(prob=pl.lit(prob))

    def titer_draws(
        self,
        batch_id: str,
        ivcd_pre: np.ndarray,
        ivcd_post: np.ndarray,
        *,
        kind: str = "mean",
        random_seed: int | None = None,
    ) -> np.ndarray:
        """Titer draws ``(sample, ...)`` for IVCD arrays broadcast against the posterior samples.

        Parameters
        ----------
        batch_id
            A fitted batch.
        ivcd_pre, ivcd_post
            IVCD accumulated before and after the shift, 1e6 cells·d/mL.
        kind
            ``"mean"`` or ``"predictive"``.
        random_seed
            Seed of the predictive draws.

        Returns
        -------
        numpy.ndarray
            Titer draws, mg/L, ``(sample, ...)``.

        Raises
        ------
        ConfigError
            An unknown ``kind``.
        """
        from bioworkbench.checks import require_choice
        from bioworkbench.models.growth import _fitted_batches

        require_choice(kind, ("mean", "predictive"), function="TiterModel.titer_draws", argument="kind")
        self._require_fit()
        ids = self.data["batch_ids"]
        (batch_id,) = _fitted_batches(batch_id, ids, "TiterModel.titer_draws", single=True)
        i = ids.index(batch_id)
        a = self.posterior_draws("intercept_b")[:, i][:, None]
        q1 = self.posterior_draws("qp_b")[:, i][:, None]
        q2 = self.posterior_draws("qp_after_shift_b")[:, i][:, None]
        m = a + q1 * ivcd_pre + q2 * ivcd_post
        if kind == "predictive":
            rng = np.random.default_rng(random_seed)
            cv = self.posterior_draws("cv")[:, None]
            s0 = self.posterior_draws("floor")[:, None]
            m = m + rng.standard_normal(m.shape) * np.sqrt((cv * m) ** 2 + s0**2)
        elif kind != "mean":
            raise ConfigError(f"kind must be 'mean' or 'predictive'; got {kind!r}.")
        return m

"""Hierarchical growth model of viable cell density (VCD) trajectories across batches.

Model (``t`` in days since inoculation, ``b`` the batch)::

    log Xv_b(t) = log K_b − softplus(−μ_b (t − t_m,b)) − δ_b · softplus(t − t_d,b)
    log y_bj    ~ StudentT(ν, log Xv_b(t_bj), σ)

a logistic growth phase (rate μ, capacity K, inflection day t_m) followed by an exponential decline
of rate δ starting around day t_d; ``softplus(x) = log(1 + eˣ)`` joins the phases smoothly. The
error is on the log scale (proportional to the level) and Student-t (robust to a few outliers).
Per-batch parameters are partially pooled: ``θ_b = θ_campaign (+ θ_group) + τ_θ · z_b`` with
``z_b ~ N(0, 1)`` (non-centred), on the log scale for K, μ and δ.

Parameters people read, per batch and for the campaign, with intervals: ``growth_rate`` (μ, 1/d),
``peak_vcd`` (the maximum of the fitted curve, 1e6 cells/mL), ``time_of_peak`` (d) and
``decline_rate`` (δ, 1/d). Peak and its time are computed from the posterior curves on a 0.05-day
grid, draw by draw.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import polars as pl

from bioworkbench.errors import ConfigError, SchemaError
from bioworkbench.models.base import BayesModel, Prior, _row

__all__ = ["GrowthModel"]

_PARAMS = ("log_K", "log_mu", "t_m", "t_d", "log_delta")


def _bucket(n: int, base: int = 8) -> int:
    """Round up to 8, 16, 32, 64, … so compiled models are reused across similar campaigns."""
    size = base
    while size < n:
        size *= 2
    return size


class GrowthModel(BayesModel):
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
    ``nu``                 Gamma(2, 0.1)                        –               Student-t tails (Juárez & Steel)
    =====================  ===================================  ==============  ==================================
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

    # -- data ---------------------------------------------------------------------------------
    def _prepare(
        self,
        data: Any,
        *,
        batch_ids: list[str] | None = None,
        group: str | None = None,
        covariates: list[str] | None = None,
        known_until_h: Mapping[str, float] | None = None,
        min_points: int | None = None,
    ) -> dict[str, Any]:
        """VCD observations of the campaign (offline, unflagged, > 0) as arrays.

        ``known_until_h`` truncates the given batches' data (a running batch known up to a time).
        ``covariates`` (batch columns such as CPP setpoints) shift the campaign-level parameters
        linearly (per standard deviation of each covariate); ``group`` adds a partially pooled offset
        per level of a batch column.
        """
        from bioworkbench.campaign import Campaign
        from bioworkbench.models.base import covariate_matrix

        if isinstance(data, dict) and "t" in data:  # already prepared
            return data
        if not isinstance(data, Campaign):
            raise ConfigError(f"{type(self).__name__}.fit takes a Campaign; got {type(data).__name__}.")
        min_points = min_points or self.min_points
        obs = data.observations.filter(
            (pl.col("variable") == "vcd")
            & (pl.col("source") != "online")
            & pl.col("flag").is_null()
            & (pl.col("value") > 0)
        )
        ids = batch_ids if batch_ids is not None else data.batch_ids
        unknown = sorted(set(ids) - set(data.batch_ids))
        if unknown:
            raise SchemaError(f"batch(es) {', '.join(unknown)} not in campaign {data.name!r}.")
        obs = obs.filter(pl.col("batch_id").is_in(ids))
        if known_until_h:
            cut = pl.DataFrame({"batch_id": list(known_until_h), "_cut": [float(v) for v in known_until_h.values()]})
            obs = (
                obs.join(cut, on="batch_id", how="left")
                .filter(pl.col("_cut").is_null() | (pl.col("time_h") <= pl.col("_cut")))
                .drop("_cut")
            )
        counts = obs.group_by("batch_id").len()
        n = {b: 0 for b in ids} | dict(counts.iter_rows())
        # a running batch (known only up to a time) leans on the campaign: fewer points suffice
        running = set(known_until_h or {})
        few = {b: k for b, k in n.items() if k < (min(min_points, 2) if b in running else min_points)}
        if few:
            raise SchemaError(
                "; ".join(f"batch {b} has {k} VCD point{'s' if k != 1 else ''}" for b, k in sorted(few.items()))
                + f" — the growth model needs at least {min_points} per batch (unflagged, offline, > 0). "
                "Leave such batches out with batch_ids=[...]."
            )
        obs = obs.sort("batch_id", "time_h")
        idx = {b: i for i, b in enumerate(ids)}
        groups: list[str] = []
        g_of_batch = [0] * len(ids)
        if group is not None:
            if group not in data.batches.columns:
                raise ConfigError(f"group column {group!r} not in batches; columns: {', '.join(data.batches.columns)}.")
            gmap = dict(data.batches.select("batch_id", pl.col(group).cast(pl.String)).iter_rows())
            groups = sorted({str(gmap[b]) for b in ids})
            g_of_batch = [groups.index(str(gmap[b])) for b in ids]
        return {
            "batch_ids": list(ids),
            # non-centred for every batch: the between-batch spread of the growth parameters is
            # often tiny, and the centred form then has a funnel (divergences on small campaigns)
            "sparse": [True for _ in ids],
            "t": (obs["time_h"] / 24).to_list(),
            "log_y": obs["value"].log().to_list(),
            "b": [idx[b] for b in obs["batch_id"].to_list()],
            "groups": groups,
            "g": g_of_batch,
            "t_max": float(obs["time_h"].max() / 24),
            "covariates": covariate_matrix(data, list(ids), covariates),
        }

    def _structure(self, d: dict[str, Any]) -> tuple:
        # batches are not padded (an empty centred slot would be a funnel); observations are
        return (
            len(d["batch_ids"]),
            _bucket(len(d["t"]), 64),
            max(len(d["groups"]), 1),
            tuple(d.get("sparse", ())),
            tuple((d.get("covariates") or {}).get("names", ())),
        )

    def _padded(self, d: dict[str, Any]) -> dict[str, np.ndarray]:
        nb, no, *_ = self._structure(d)
        n = len(d["t"])
        pad = no - n
        g = np.zeros(nb, dtype="int64")
        g[: len(d["g"])] = d["g"]
        return {
            "t": np.concatenate([np.asarray(d["t"], float), np.zeros(pad)]),
            "log_y": np.concatenate([np.asarray(d["log_y"], float), np.zeros(pad)]),
            "b": np.concatenate([np.asarray(d["b"], "int64"), np.zeros(pad, "int64")]),
            "w": np.concatenate([np.ones(n), np.zeros(pad)]),
            "g": g,
        }

    def _shared_data(self, d: dict[str, Any]) -> dict[str, np.ndarray]:
        return self._padded(d)

    # -- model --------------------------------------------------------------------------------
    def _build(self, d: dict[str, Any]) -> Any:
        import pymc as pm
        import pytensor.tensor as pt

        nb, _, ng, *_ = self._structure(d)
        arr = self._padded(d)
        p = self.priors
        coords = {
            "slot": np.arange(nb),
            "param": list(_PARAMS),
            "growth_param": list(_PARAMS[:3]),
            "decline_param": list(_PARAMS[3:]),
            "group": np.arange(ng),
        }
        with pm.Model(coords=coords) as model:
            t = pm.Data("t", arr["t"])
            log_y = pm.Data("log_y", arr["log_y"])
            b = pm.Data("b", arr["b"])
            w = pm.Data("w", arr["w"])
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
            if ng > 1 or d["groups"]:
                sd_g = p["sd_group"].create("sd_group", dims="param")
                zg = pm.Normal("z_group", 0.0, 1.0, dims=("group", "param"))
                center_b = center[None, :] + (zg * sd_g[None, :])[g]
            else:
                center_b = pt.broadcast_to(center[None, :], (nb, len(_PARAMS)))
            cov = d.get("covariates") or {"names": []}
            if cov["names"]:
                x = pm.Data("x_cov", np.asarray(cov["x"], float))
                beta = p["beta"].create("beta", shape=(len(cov["names"]), len(_PARAMS)))
                center_b = center_b + pt.dot(x, beta)
            # growth parameters (well identified by every batch's data) centred; decline parameters
            # (often seen in a few points only) non-centred: no funnel, and chains mix fast
            # batches with few points (a running batch early on) are non-centred throughout
            sparse = np.asarray(d.get("sparse", [False] * nb), bool)
            dense_i, sparse_i = np.flatnonzero(~sparse), np.flatnonzero(sparse)
            growth = pt.zeros((nb, 3))
            if dense_i.size:
                th_d = pm.Normal("theta_growth", mu=center_b[dense_i, :3], sigma=sds[None, :3], shape=(dense_i.size, 3))
                growth = pt.set_subtensor(growth[dense_i], th_d)
            if sparse_i.size:
                z_s = pm.Normal("z_growth_sparse", 0.0, 1.0, shape=(sparse_i.size, 3))
                growth = pt.set_subtensor(growth[sparse_i], center_b[sparse_i, :3] + z_s * sds[None, :3])
            z = pm.Normal("z_decline", 0.0, 1.0, dims=("slot", "decline_param"))
            theta = pm.Deterministic(
                "theta", pt.concatenate([growth, center_b[:, 3:] + z * sds[None, 3:]], axis=1), dims=("slot", "param")
            )
            th = theta[b]
            log_k, mu_b, tm_b, td_b, dl_b = th[:, 0], pt.exp(th[:, 1]), th[:, 2], th[:, 3], pt.exp(th[:, 4])
            mean = log_k - pt.softplus(-mu_b * (t - tm_b)) - dl_b * pt.softplus(t - td_b)
            sigma = p["sigma"].create("sigma")
            nu = p["nu"].create("nu")
            pm.Potential("loglik", (w * pm.logp(pm.StudentT.dist(nu=nu, mu=mean, sigma=sigma), log_y)).sum())
        return model

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
        """VCD of the model for parameters ``(..., 5)`` (K, μ, t_m, t_d, δ) at ``t_days`` -> ``(..., len(t))``."""
        K, mu, tm, td, dl = (theta[..., i, None] for i in range(5))
        t = np.asarray(t_days, float)
        log_x = np.log(K) - np.logaddexp(0.0, -mu * (t - tm)) - dl * np.logaddexp(0.0, t - td)
        return np.exp(log_x)

    def _peaks(self, t_end: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        t_end = t_end or max(self.data["t_max"], 14.0)
        grid = np.arange(0.0, t_end + 1e-9, 0.05)
        curves = self.curve(self._theta(), grid)
        i = curves.argmax(axis=-1)
        return curves.max(axis=-1), grid[i]

    def summary(self, prob: float = 0.9) -> pl.DataFrame:
        """Per-batch and campaign parameters: growth_rate, peak_vcd, time_of_peak, decline_rate
        (plus inflection_day, decline_day and the noise scale), with ``mean, sd, lower, upper, prob``."""
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

        ``kind="mean"`` gives the posterior of the curve; ``"predictive"`` adds the measurement
        error (Student-t on the log scale), i.e. where a new measurement would fall.

        Returns ``batch_id, time_h, variable, mean, lower, upper, prob``.
        """
        self._require_fit()
        ids = self.data["batch_ids"]
        want = batch_ids or ids
        missing = sorted(set(want) - set(ids))
        if missing:
            raise SchemaError(f"batch(es) {', '.join(missing)} were not in the data this model was fitted on.")
        times_h = (
            np.arange(0.0, max(self.data["t_max"], 14.0) * 24 + 1e-9, 6.0)
            if times_h is None
            else np.asarray(times_h, float)
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
        """Posterior draws of the VCD curve of one batch at ``times_h``: ``(sample, time)``."""
        self._require_fit()
        i = self.data["batch_ids"].index(batch_id)
        return self.curve(self._theta()[:, i, :], np.asarray(times_h, float) / 24)

    def unusual(self, prob: float = 0.9) -> pl.DataFrame:
        """Batches whose parameter interval excludes the campaign median of that parameter's batch
        means, with how far (robust z of the posterior mean across batches > 2.5 also counts)."""
        s = self.summary(prob).filter(pl.col("level") == "batch")
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

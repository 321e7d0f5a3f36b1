"""What a fitted :class:`~bioworkbench.models.StabilityModel` says: the attribute over time at a storage
condition, the time to a specification limit, the probability of staying in specification and the
parameter summary, for a fitted lot or a new lot from the population; and the draws made after
sampling (the lots' initial values integrated out of the sampled model, simulated observations of the
prior predictive check).

Everything here works on posterior draws with NumPy (no PyMC): each draw's parameters give the mean
curve ``y = y_∞ + (y0 − y_∞)(1 − α(k_ref · t_eq))`` along a temperature history
(:mod:`bioworkbench.stability.degradation`, :class:`~bioworkbench.stability.TemperatureHistory`).
The methods are those of :class:`StabilityModel`; they live in this mixin so that
:mod:`bioworkbench.models.stability` holds the model itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from bioworkbench.errors import ConfigError, ModelNotFittedError
from bioworkbench.models.inputs import _check_prob
from bioworkbench.schema import suggest
from bioworkbench.stability.degradation import attribute_at, degradation_extent, extent_to_reduced_time
from bioworkbench.stability.history import TemperatureHistory
from bioworkbench.stability.temperature import KELVIN, R_KJ

__all__: list[str] = []


class _StabilityResults:
    """The results methods of :class:`~bioworkbench.models.StabilityModel` (a mixin; see the module docstring).

    It relies on the :class:`~bioworkbench.models.base.BayesModel` contract: ``data`` (the prepared
    study), ``posterior_draws``, ``_require_fit`` and ``_summary_frame``.
    """

    data: dict[str, Any] | None

    # -- draws and curves ---------------------------------------------------------------------
    def _lot_draws(self, batch_id: str | None, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Posterior draws ``(S,)`` of one lot's (or a new lot's) parameters."""
        self._require_fit()
        d, cfg = self.data, self.data["config"]
        out: dict[str, np.ndarray] = {}
        if batch_id is None:
            s = self.posterior_draws("y0").shape[0]
            out["y0"] = self.posterior_draws("y0") + self.posterior_draws("sd_y0") * rng.standard_normal(s)
            out["k"] = self.posterior_draws("k_ref") * np.exp(
                self.posterior_draws("sd_log_k_ref") * rng.standard_normal(s)
            )
            ea = self.posterior_draws("activation_energy")
            if cfg["ea_by_lot"]:
                ea = ea + self.posterior_draws("sd_activation_energy") * rng.standard_normal(s)
            out["ea"] = ea
        else:
            if batch_id not in d["lots"]:
                raise ConfigError(
                    f"lot {batch_id!r} was not in the data this model was fitted on. "
                    + suggest(batch_id, d["lots"], what="Fitted lots")
                    + " Pass batch_id=None for a new lot from the population."
                )
            i = d["lots"].index(batch_id)
            out["y0"] = self.posterior_draws("y0_b")[:, i]
            out["k"] = self.posterior_draws("k_ref_b")[:, i]
            out["ea"] = (
                self.posterior_draws("activation_energy_b")[:, i]
                if cfg["ea_by_lot"]
                else self.posterior_draws("activation_energy")
            )
        if cfg["kinetics"] == "sestak_berggren":
            out["m"], out["n"] = self.posterior_draws("sb_m"), self.posterior_draws("sb_n")
        out["sigma"] = self.posterior_draws("sigma")
        if cfg["likelihood"] == "student_t":
            out["nu"] = self.posterior_draws("nu")
        return out

    def _history(self, condition: Any) -> TemperatureHistory:
        conds = (self.data or {}).get("conditions", {})
        if condition is None:
            raise ConfigError(
                "an accelerated-stability model predicts at a storage condition: give condition= a temperature in °C, "
                "a TemperatureHistory, or one of the study's conditions: " + ", ".join(map(repr, conds)) + "."
            )
        if isinstance(condition, TemperatureHistory):
            return condition
        if isinstance(condition, str):
            if condition not in conds:
                raise ConfigError(
                    f"condition {condition!r} is not in the study. "
                    + suggest(condition, conds, what="Conditions")
                    + " Or give a temperature in °C or a TemperatureHistory."
                )
            return TemperatureHistory.constant(conds[condition], label=condition)
        try:
            temp = float(condition)
        except (TypeError, ValueError):
            raise ConfigError(
                f"condition must be a temperature in °C, a TemperatureHistory or a condition label; got {condition!r}."
            ) from None
        return TemperatureHistory.constant(temp)

    def _curves(self, draws: dict[str, np.ndarray], hist: TemperatureHistory, times: np.ndarray) -> np.ndarray:
        """Mean attribute ``(S, T)`` for parameter draws along a temperature history."""
        cfg = self.data["config"]
        t_eq = hist.equivalent_time(
            times, activation_energy_kj=draws["ea"], reference_temperature_c=cfg["reference_temperature"]
        )
        theta = draws["k"][:, None] * t_eq
        return attribute_at(
            theta,
            y0=draws["y0"][:, None],
            asymptote=cfg["asymptote"],
            kinetics=cfg["kinetics"],
            m=draws.get("m", 0.0),
            n=draws.get("n", 1.0),
        )

    def _noise(self, draws: dict[str, np.ndarray], shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        sd = draws["sigma"][:, None]
        if "nu" in draws:
            return sd * rng.standard_t(draws["nu"][:, None], size=shape)
        return sd * rng.standard_normal(shape)

    def _times(self, times: Any) -> np.ndarray:
        t = np.atleast_1d(np.asarray(times if times is not None else [], dtype=float))
        if t.size == 0 or not np.all(np.isfinite(t)) or np.any(t < 0):
            raise ConfigError(f"times must be a non-empty array of finite times ≥ 0 ({self.data['time_unit']}).")
        return t

    # -- results --------------------------------------------------------------------------------
    def predict(
        self,
        *,
        condition: float | str | TemperatureHistory | None = None,
        times: Sequence[float] | np.ndarray | None = None,
        batch_id: str | None = None,
        prob: float = 0.9,
        kind: str = "mean",
        random_seed: int | None = None,
    ) -> pl.DataFrame:
        """The attribute over time at a storage condition, with intervals.

        Parameters
        ----------
        condition
            Temperature in °C, a :class:`TemperatureHistory` (storage with excursions) or a
            condition label of the study.
        times
            Times (study time unit) since the start of storage.
        batch_id
            A fitted lot, or ``None`` for a new lot drawn from the population (lot-to-lot
            variation included).
        prob
            Mass of the equal-tailed interval.
        kind
            ``"mean"``: the lot's true attribute (posterior of the curve); ``"predictive"``: a
            future measurement (adds the residual error).
        random_seed
            Seed of the new-lot and measurement draws.

        Returns
        -------
        polars.DataFrame
            ``batch_id`` (null for a new lot), ``condition``, ``time``, ``attribute``, ``mean``,
            ``lower``, ``upper``, ``prob``, ``unit``.

        Raises
        ------
        ModelNotFittedError
            The model has not been fitted.
        ConfigError
            No or an unknown condition (the study's are listed), an unknown lot, times that are not
            finite and ≥ 0, an unknown ``kind``, ``prob`` outside (0, 1).
        """
        self._require_fit()
        if kind not in ("mean", "predictive"):
            raise ConfigError(f"kind must be 'mean' or 'predictive'; got {kind!r}.")
        _check_prob(prob)
        hist = self._history(condition)
        t = self._times(times)
        rng = np.random.default_rng(random_seed)
        draws = self._lot_draws(batch_id, rng)
        cur = self._curves(draws, hist, t)
        if kind == "predictive":
            cur = cur + self._noise(draws, cur.shape, rng)
        lo, hi = np.quantile(cur, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
        return pl.DataFrame(
            {
                "batch_id": pl.Series([batch_id] * t.size, dtype=pl.String),
                "condition": hist.describe(),
                "time": t,
                "attribute": self.data["attribute"],
                "mean": cur.mean(axis=0),
                "lower": lo,
                "upper": hi,
                "prob": float(prob),
                "unit": pl.Series([self.data["unit"]] * t.size, dtype=pl.String),
            }
        )

    def _limit(self, lower: float | None, upper: float | None, y0_mean: float) -> tuple[float, str]:
        cfg = self.data["config"]
        if (lower is None) == (upper is None):
            raise ConfigError(
                "time_to_limit: give exactly one of lower= or upper= (the limit the attribute moves towards)."
            )
        side, lim = ("lower", float(lower)) if lower is not None else ("upper", float(upper))
        want = "lower" if cfg["direction"] == "decrease" else "upper"
        if side != want:
            raise ConfigError(
                f"{self.data['attribute']} {cfg['direction']}s, so it moves away from an {side} limit and never "
                f"reaches it; give {want}= instead."
            )
        if (side == "lower" and not lim < y0_mean) or (side == "upper" and not lim > y0_mean):
            raise ConfigError(
                f"the {side} limit {lim:g} is on the wrong side of the initial value ({y0_mean:.4g} "
                f"{self.data['unit']}, posterior mean): the attribute starts out of specification. "
                "Check the limit and its unit."
            )
        return lim, side

    def time_to_limit(
        self,
        *,
        lower: float | None = None,
        upper: float | None = None,
        condition: float | str | TemperatureHistory | None = None,
        batch_id: str | None = None,
        prob: float = 0.9,
        horizon: float | None = None,
        random_seed: int | None = None,
    ) -> pl.DataFrame:
        """Posterior of the time at which the attribute's mean curve (of a lot, or of a new lot)
        reaches a specification limit.

        Parameters
        ----------
        lower, upper
            The limit the attribute moves towards (exactly one: ``lower`` for a decreasing
            attribute, ``upper`` for an increasing one).
        condition
            Temperature (°C), :class:`TemperatureHistory` or condition label.
        batch_id
            A fitted lot, or ``None``: a new lot from the population.
        prob
            Mass of the equal-tailed interval.
        horizon
            Crossings later than this (study time unit) count as beyond the horizon (default:
            only draws that never cross).
        random_seed
            Seed of the new-lot draws.

        Returns
        -------
        polars.DataFrame
            One row: ``batch_id, condition, limit, side, mean, median, lower, upper, prob,
            prob_beyond_horizon, horizon, time_unit``. Draws beyond the horizon are ``inf``, so
            ``upper`` (and ``median``) are ``inf`` when more than ``(1 − prob)/2`` (half) of them
            are; ``mean`` is ``inf`` as soon as one is.

        Notes
        -----
        Exact per draw, no time grid: the extent at the limit is
        ``α* = (y0 − limit)/(y0 − y_∞)``; the reduced time is ``θ* = g(α*)``
        (:func:`extent_to_reduced_time`), the equivalent time ``θ*/k_ref`` and the time the
        history needs to accumulate it (:meth:`TemperatureHistory.time_at_equivalent`). A draw
        whose initial value is already beyond the limit has time 0.

        Raises
        ------
        ModelNotFittedError
            The model has not been fitted.
        ConfigError
            Not exactly one limit, or a limit the attribute moves away from or starts beyond; no or
            an unknown condition; an unknown lot; ``prob`` outside (0, 1).
        """
        self._require_fit()
        _check_prob(prob)
        hist = self._history(condition)
        cfg = self.data["config"]
        draws = self._lot_draws(batch_id, np.random.default_rng(random_seed))
        lim, side = self._limit(lower, upper, float(draws["y0"].mean()))
        y_inf = cfg["asymptote"]
        a_star = (draws["y0"] - lim) / (draws["y0"] - y_inf)
        theta = extent_to_reduced_time(
            np.clip(a_star, 0.0, 1.0), cfg["kinetics"], draws.get("m", 0.0), draws.get("n", 1.0)
        )
        theta = np.where(a_star <= 0, 0.0, theta)
        t = hist.time_at_equivalent(
            theta / draws["k"], activation_energy_kj=draws["ea"], reference_temperature_c=cfg["reference_temperature"]
        )
        if horizon is not None:
            t = np.where(t > float(horizon), np.inf, t)
        beyond = float(np.mean(np.isinf(t)))
        # with draws at infinity, no interpolation (inf - inf): the quantile is a draw
        method = "inverted_cdf" if beyond else "linear"
        lo, med, hi = np.quantile(t, [(1 - prob) / 2, 0.5, (1 + prob) / 2], method=method)
        return pl.DataFrame(
            {
                "batch_id": pl.Series([batch_id], dtype=pl.String),
                "condition": hist.describe(),
                "limit": lim,
                "side": side,
                "mean": float(np.mean(t)) if beyond == 0 else float("inf"),
                "median": float(med),
                "lower": float(lo),
                "upper": float(hi),
                "prob": float(prob),
                "prob_beyond_horizon": beyond,
                "horizon": pl.Series([None if horizon is None else float(horizon)], dtype=pl.Float64),
                "time_unit": self.data["time_unit"],
            }
        )

    def prob_in_spec(
        self,
        *,
        times: Sequence[float] | np.ndarray,
        lower: float | None = None,
        upper: float | None = None,
        condition: float | str | TemperatureHistory | None = None,
        batch_id: str | None = None,
        kind: str = "mean",
        random_seed: int | None = None,
    ) -> pl.DataFrame:
        """Probability that a lot stays within specification up to each time.

        Parameters
        ----------
        times
            Times (study time unit), e.g. candidate shelf lives.
        lower, upper
            Specification limits (at least one).
        condition
            Temperature (°C), :class:`TemperatureHistory` or condition label.
        batch_id
            ``None`` (default): a new lot from the population, so lot-to-lot variation counts;
            or a fitted lot.
        kind
            ``"mean"``: the lot's true attribute stays within ``[lower, upper]`` over ``[0, t]``;
            ``"predictive"``: a single measurement at ``t`` is within the limits (adds the
            residual error; a per-time probability).
        random_seed
            Seed of the new-lot and measurement draws.

        Returns
        -------
        polars.DataFrame
            ``batch_id, condition, time, prob, lower_limit, upper_limit``.

        Raises
        ------
        ModelNotFittedError
            The model has not been fitted.
        ConfigError
            No limit, an unknown ``kind``, no or an unknown condition, an unknown lot, times that are
            not finite and ≥ 0.

        Notes
        -----
        The mean curve is monotone in time (the extent never decreases), so it stays in
        ``[lower, upper]`` over ``[0, t]`` exactly when it is inside at 0 and at ``t``; the
        probability is the fraction of posterior draws for which that holds.
        """
        self._require_fit()
        if lower is None and upper is None:
            raise ConfigError("prob_in_spec: give lower=, upper= or both (the specification limits).")
        if kind not in ("mean", "predictive"):
            raise ConfigError(f"kind must be 'mean' or 'predictive'; got {kind!r}.")
        hist = self._history(condition)
        t = self._times(times)
        rng = np.random.default_rng(random_seed)
        draws = self._lot_draws(batch_id, rng)
        lo = -np.inf if lower is None else float(lower)
        hi = np.inf if upper is None else float(upper)
        if kind == "mean":
            cur = self._curves(draws, hist, np.concatenate([[0.0], t]))
            inside = (cur >= lo) & (cur <= hi)
            ok = inside[:, 1:] & inside[:, :1]
        else:
            cur = self._curves(draws, hist, t)
            cur = cur + self._noise(draws, cur.shape, rng)
            ok = (cur >= lo) & (cur <= hi)
        return pl.DataFrame(
            {
                "batch_id": pl.Series([batch_id] * t.size, dtype=pl.String),
                "condition": hist.describe(),
                "time": t,
                "prob": ok.mean(axis=0),
                "lower_limit": pl.Series([None if lower is None else lo] * t.size, dtype=pl.Float64),
                "upper_limit": pl.Series([None if upper is None else hi] * t.size, dtype=pl.Float64),
            }
        )

    def summary(self, prob: float = 0.9) -> pl.DataFrame:
        """The model's parameters for the population and per lot.

        Parameters
        ----------
        prob
            Mass of the equal-tailed intervals.

        Returns
        -------
        polars.DataFrame
            One row per parameter (and lot): activation energy (kJ/mol), ``k_ref`` (1/time unit),
            ``y0``, the lot-to-lot spreads, the residual sd (attribute unit), and ``sb_m``, ``sb_n``,
            ``nu`` where the model has them; columns ``parameter, level, batch_id, mean, sd, lower,
            upper, prob, unit, r_hat, ess_bulk`` (as every model's summary).

        Raises
        ------
        ModelNotFittedError
            The model has not been fitted.
        ConfigError
            ``prob`` outside (0, 1).
        """
        self._require_fit()
        _check_prob(prob)
        d, cfg = self.data, self.data["config"]
        unit, tu = d["unit"] or "", d["time_unit"] or "time unit"
        names = {
            "activation_energy": ("activation_energy", "kJ/mol"),
            "k_ref": ("k_ref", f"1/{tu}"),
            "y0": ("y0", unit),
            "sd_log_k_ref": ("sd_log_k_ref", "log"),
            "sd_y0": ("sd_y0", unit),
            "sigma": ("sigma", unit),
            "k_ref_b": ("k_ref", f"1/{tu}"),
            "y0_b": ("y0", unit),
        }
        if cfg["ea_by_lot"]:
            names |= {
                "sd_activation_energy": ("sd_activation_energy", "kJ/mol"),
                "activation_energy_b": ("activation_energy", "kJ/mol"),
            }
        if cfg["kinetics"] == "sestak_berggren":
            names |= {"sb_m": ("sb_m", ""), "sb_n": ("sb_n", "")}
        if cfg["likelihood"] == "student_t":
            names |= {"nu": ("nu", "")}
        index = {v: d["lots"] for v in ("k_ref_b", "y0_b", "activation_energy_b")}
        return self._summary_frame(names, index, prob)

    def histories(self) -> dict[tuple[str, str], TemperatureHistory]:
        """The temperature histories the model was fitted with.

        Returns
        -------
        dict
            ``(batch_id, condition)`` → :class:`~bioworkbench.stability.TemperatureHistory` (empty when
            every series was at its condition's constant temperature).

        Raises
        ------
        ModelNotFittedError
            The model has no data yet.
        """
        if self.data is None:
            raise ModelNotFittedError("StabilityModel has no data yet; call .fit(study, attribute=...) first.")
        return {
            (h["batch_id"], h["condition"]): TemperatureHistory.from_dict(h["history"]) for h in self.data["histories"]
        }

    # -- draws after sampling: integrated-out initial values, prior predictive observations ----------------------------
    def _obs_extent(self, draws: Mapping[str, np.ndarray]) -> np.ndarray:
        """Extent ``α`` of every observation ``(S, N)`` for flattened parameter draws."""
        d, cfg = self.data, self.data["config"]
        lot = np.asarray(d["lot"])
        expo = np.asarray(d["exposure"], float).reshape(len(lot), -1)
        dinv = 1.0 / (np.asarray(d["temperatures_c"]) + KELVIN) - 1.0 / (cfg["reference_temperature"] + KELVIN)
        if cfg["ea_by_lot"]:
            factor = np.exp(-draws["activation_energy_b"][:, :, None] / R_KJ * dinv)  # (S, lot, K)
            t_eq = np.einsum("nk,snk->sn", expo, factor[:, lot, :])
        else:
            t_eq = np.exp(-draws["activation_energy"][:, None] / R_KJ * dinv) @ expo.T  # (S, N)
        theta = draws["k_ref_b"][:, lot] * t_eq
        sb = cfg["kinetics"] == "sestak_berggren"
        return degradation_extent(theta, cfg["kinetics"], draws["sb_m"] if sb else 0.0, draws["sb_n"] if sb else 1.0)

    def _initial_values(self, draws: Mapping[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """Draws ``(S, lot)`` of the lots' initial values from their exact conditional distribution.

        With the normal likelihood ``y0_b`` is integrated out of the sampled model. Given the other
        parameters, ``y_i − y_∞ = (y0_b − y_∞) v_i + ε_i`` with ``v_i = 1 − α_i`` and
        ``y0_b ~ N(y0, sd_y0²)``, so ``y0_b`` is normal with precision ``1/sd_y0² + Σ v_i²/σ²`` and
        mean ``((y0 − y_∞)/sd_y0² + Σ v_i (y_i − y_∞)/σ²) / precision + y_∞`` (conjugate update).
        """
        d = self.data
        y_inf = d["config"]["asymptote"]
        v = 1.0 - self._obs_extent(draws)
        u = np.asarray(d["value"], float) - y_inf
        onehot = (np.asarray(d["lot"])[:, None] == np.arange(len(d["lots"]))[None, :]).astype(float)
        tau2, sig2 = draws["sd_y0"][:, None] ** 2, draws["sigma"][:, None] ** 2
        prec = 1.0 / tau2 + (v**2) @ onehot / sig2
        mean = ((draws["y0"][:, None] - y_inf) / tau2 + (v * u) @ onehot / sig2) / prec
        return y_inf + mean + rng.standard_normal(mean.shape) / np.sqrt(prec)

    def _add_initial_values(self, random_seed: int | None) -> None:
        import xarray as xr

        ds = self.idata["posterior"].to_dataset()
        c, s = ds.sizes["chain"], ds.sizes["draw"]
        draws = {k: ds[k].values.reshape(c * s, *ds[k].shape[2:]) for k in ds.data_vars}
        # a stream of its own, so the sampler's seed still reproduces everything
        rng = np.random.default_rng(None if random_seed is None else [int(random_seed), 7])
        y0_b = self._initial_values(draws, rng).reshape(c, s, -1)
        dims = ("chain", "draw", "lot")
        ds["y0_b"] = xr.DataArray(y0_b, dims=dims, coords={k: ds[k] for k in dims if k in ds.coords})
        self.idata["posterior"] = xr.DataTree(ds)

    def _simulate_observations(self, prior: Any, rng: np.random.Generator) -> Any:
        import xarray as xr

        d, cfg = self.data, self.data["config"]
        c, s = prior.sizes["chain"], prior.sizes["draw"]
        draws = {k: prior[k].values.reshape(c * s, *prior[k].shape[2:]) for k in prior.data_vars}
        alpha = self._obs_extent(draws)
        lot = np.asarray(d["lot"])
        nb = len(d["lots"])
        y0_b = draws.get("y0_b")
        if y0_b is None:  # integrated out of the model: draw from the population
            y0_b = draws["y0"][:, None] + draws["sd_y0"][:, None] * rng.standard_normal((c * s, nb))
        y_inf = cfg["asymptote"]
        mean = y_inf + (y0_b[:, lot] - y_inf) * (1.0 - alpha)
        sd = draws["sigma"][:, None]
        if cfg["likelihood"] == "student_t":
            y = mean + sd * rng.standard_t(draws["nu"][:, None], size=mean.shape)
        else:
            y = mean + sd * rng.standard_normal(mean.shape)
        return xr.Dataset(
            {"value": (("chain", "draw", "obs"), y.reshape(c, s, -1))}, coords={"obs": np.arange(len(lot))}
        )

"""Forecast the rest of a running batch from its first days and the campaign's history.

The running batch joins the hierarchical :class:`GrowthModel` and :class:`TiterModel` with only the
data known so far; partial pooling lets the history fill in what its own few points cannot say
(peak, decline, productivity after the shift). For every posterior draw ``s``:

* VCD ``f_s(t)`` is the batch's growth curve;
* IVCD ``I_s(t) = I_obs(t_k) + ∫_{t_k}^{t} f_s(u) du`` (trapezoid on a 0.1-h grid), anchored at the
  IVCD measured up to the last known sample ``t_k``;
* titer ``= a_s + qp_s · I_s(min(t, t_shift)) + qp'_s · (I_s(t) − I_s(min(t, t_shift)))`` plus the
  assay error (posterior predictive), with ``t_shift`` the batch's shift event (planned shifts in the
  events table count even when they lie in the future).

The growth and titer posteriors are sampled separately and combined draw by draw (independence is
assumed between the two models' parameters). Intervals are equal-tailed (central ``prob``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from bioworkbench.errors import SchemaError
from bioworkbench.models.growth import GrowthModel
from bioworkbench.models.titer import TiterModel

__all__ = ["Forecast", "forecast"]


@dataclass
class Forecast:
    """What a running batch will end at: trajectories, end points, probability of missing spec."""

    batch_ids: list[str]
    known_h: dict[str, float]
    end_h: float
    prob: float
    trajectory: pl.DataFrame
    endpoints: pl.DataFrame
    spec_lower: float | None
    history: list[str]
    diagnostics: dict[str, Any] = field(default_factory=dict)
    growth: GrowthModel | None = None
    titer: TiterModel | None = None

    def sentence(self, batch_id: str | None = None) -> str:
        """One plain sentence per batch with the forecast and the chance of missing spec."""
        out = []
        for b in [batch_id] if batch_id else self.batch_ids:
            e = self.endpoints.filter(pl.col("batch_id") == b)
            ft = e.filter(pl.col("quantity") == "final_titer").row(0, named=True)
            pk = e.filter(pl.col("quantity") == "peak_vcd").row(0, named=True)
            text = (
                f"From the first {self.known_h[b] / 24:.1f} days, batch {b} is forecast to end on day "
                f"{self.end_h / 24:.1f} "
                f"at {ft['mean']:.0f} mg/L ({self.prob:.0%} interval {ft['lower']:.0f}–{ft['upper']:.0f}), "
                "after a peak VCD of "
                f"{pk['mean']:.1f} ×10⁶ cells/mL ({pk['lower']:.1f}–{pk['upper']:.1f})."
            )
            if self.spec_lower is not None:
                p = e.filter(pl.col("quantity") == "p_below_spec")["mean"][0]
                text += (
                    f" The probability that the final titer falls below the {self.spec_lower:g} mg/L "
                    f"specification is {p:.0%}."
                )
            out.append(text)
        return " ".join(out)


def forecast(
    campaign,
    batch_ids: str | list[str],
    *,
    known_h: float | Mapping[str, float],
    history: list[str] | None = None,
    end_h: float | None = None,
    spec_lower: float | None = None,
    prob: float = 0.9,
    draws: int = 500,
    tune: int = 500,
    chains: int = 2,
    random_seed: int | None = None,
    growth_priors: Mapping[str, Any] | None = None,
    titer_priors: Mapping[str, Any] | None = None,
    sampler: Mapping[str, Any] | None = None,
    covariates: list[str] | None = None,
    growth_covariates: list[str] | None = None,
) -> Forecast:
    """Forecast running batches known up to ``known_h`` hours (one value, or one per batch).

    Parameters
    ----------
    campaign
        Holds the running batches and the history.
    batch_ids
        The running batch(es).
    known_h
        Culture time up to which each running batch is known; later data are ignored.
    history
        Batches to learn from (default: every other batch with status ``completed`` and enough
        VCD and titer points; those without are left out and listed in ``diagnostics``).
    end_h
        Harvest time to forecast (default: the median last sample time of the history).
    spec_lower
        Lower titer specification (mg/L; default: the ``titer`` spec of ``campaign.specs``).
    sampler
        Sampler settings for both models (see :class:`BayesModel`).
    covariates
        Batch columns that shift the campaign-level growth and productivity (default: the CPP
        setpoints ``cpp_*`` that are numeric and vary across the batches): a running batch at a
        low feed rate is then forecast like the low-feed batches of the history. Used by the titer
        model; ``growth_covariates`` (default: the same as ``covariates``; ``[]`` for none) does
        the same for the growth model, so that a running batch at a high feed rate is expected to
        grow like the high-feed batches of the history.

    Returns
    -------
    Forecast
        ``trajectory`` (``batch_id, time_h, variable, mean, lower, upper, prob, known``) for ``vcd``
        and ``titer``; ``endpoints`` (``batch_id, quantity, mean, lower, upper, prob, unit``) with
        ``final_titer``, ``peak_vcd``, ``time_of_peak``, ``final_ivcd`` and ``p_below_spec``.
    """
    from bioworkbench import kinetics

    running = [batch_ids] if isinstance(batch_ids, str) else list(batch_ids)
    unknown = sorted(set(running) - set(campaign.batch_ids))
    if unknown:
        raise SchemaError(f"batch(es) {', '.join(unknown)} not in campaign {campaign.name!r}.")
    known = {b: float(known_h[b] if isinstance(known_h, Mapping) else known_h) for b in running}
    left_out: dict[str, str] = {}
    if history is None:
        cand = campaign.batches.filter(
            ~pl.col("batch_id").is_in(running) & (pl.col("status").is_null() | (pl.col("status") == "completed"))
        )["batch_id"].to_list()
        obs = campaign.observations.filter(pl.col("flag").is_null() & (pl.col("source") != "online"))
        n_vcd = dict(obs.filter(pl.col("variable") == "vcd").group_by("batch_id").len().iter_rows())
        n_tit = dict(obs.filter(pl.col("variable") == "titer").group_by("batch_id").len().iter_rows())
        history = []
        for b in cand:
            if n_vcd.get(b, 0) < GrowthModel.min_points or n_tit.get(b, 0) < TiterModel.min_points:
                left_out[b] = f"{n_vcd.get(b, 0)} VCD and {n_tit.get(b, 0)} titer points"
            else:
                history.append(b)
    if not history:
        raise SchemaError("forecast needs at least one history batch with enough VCD and titer data; none was found.")
    ids = history + running
    if end_h is None:
        end_h = float(
            campaign.observations.filter(pl.col("batch_id").is_in(history))
            .group_by("batch_id")
            .agg(pl.col("time_h").max())["time_h"]
            .median()
        )
    if spec_lower is None and not campaign.specs.is_empty():
        s = campaign.specs.filter(
            (pl.col("name") == "titer") & (pl.col("kind") == "spec") & pl.col("lower").is_not_null()
        )
        spec_lower = float(s["lower"][0]) if s.height else None
    if covariates is None:
        covariates = []
        sub = campaign.batches.filter(pl.col("batch_id").is_in(ids))
        for c in campaign.cpps:
            col = sub[c]
            if col.dtype.is_numeric() and col.null_count() == 0 and col.n_unique() > 1:
                covariates.append(c)
    g = GrowthModel(priors=growth_priors, sampler=sampler).fit(
        campaign,
        batch_ids=ids,
        known_until_h=known,
        covariates=covariates if growth_covariates is None else growth_covariates,
        draws=draws,
        tune=tune,
        chains=chains,
        random_seed=random_seed,
    )
    t = TiterModel(priors=titer_priors, sampler=sampler).fit(
        campaign,
        batch_ids=ids,
        known_until_h=known,
        covariates=covariates,
        draws=draws,
        tune=tune,
        chains=chains,
        random_seed=None if random_seed is None else random_seed + 1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kin = kinetics.compute(campaign, variables=[])
    ivcd_obs = kin.filter((pl.col("variable") == "ivcd") & pl.col("batch_id").is_in(running))
    shifts = dict(
        campaign.events.filter((pl.col("event") == "shift") & pl.col("batch_id").is_in(running))
        .group_by("batch_id")
        .agg(pl.col("time_h").min())
        .iter_rows()
    )
    rng = np.random.default_rng(random_seed)
    lo_q, hi_q = (1 - prob) / 2, (1 + prob) / 2
    traj, ends = [], []
    grid = np.round(np.arange(0.0, end_h + 1e-9, 0.1), 6)
    if grid[-1] < end_h:
        grid = np.append(grid, end_h)
    report_t = np.unique(np.concatenate([np.arange(0.0, end_h, 6.0), [end_h]]))
    for b in running:
        obs_b = ivcd_obs.filter(pl.col("time_h") <= known[b]).sort("time_h")
        if obs_b.is_empty():
            raise SchemaError(f"batch {b} has no VCD sample up to {known[b]} h to anchor the forecast.")
        t_k, i_k = float(obs_b["time_h"][-1]), float(obs_b["value"][-1])
        f = g.curve_draws(b, grid)  # (S, T)
        after = grid >= t_k
        ga, fa = grid[after], f[:, after]
        steps = np.diff(ga) / 24 * (fa[:, 1:] + fa[:, :-1]) / 2
        ivcd = np.full(f.shape, np.nan)
        ivcd[:, after] = i_k + np.concatenate([np.zeros((f.shape[0], 1)), np.cumsum(steps, axis=1)], axis=1)
        t_s = shifts.get(b)
        if t_s is None:
            pre = ivcd
        elif t_s <= t_k:
            i_s = float(np.interp(t_s, obs_b["time_h"].to_numpy(), obs_b["value"].to_numpy()))
            pre = np.where(grid[None, :] <= t_s, ivcd, i_s)
        else:
            i_s = _interp_rows(t_s, ga, ivcd[:, after])
            pre = np.where(grid[None, :] <= t_s, ivcd, i_s[:, None])
        post = ivcd - pre
        n = min(f.shape[0], t.posterior_draws("qp_b").shape[0])
        tit = t.titer_draws(b, pre[:n], post[:n], kind="predictive", random_seed=int(rng.integers(2**31)))
        vcd_pred = f[:n] * np.exp(
            g.posterior_draws("sigma")[:n, None] * rng.standard_t(g.posterior_draws("nu")[:n, None], size=f[:n].shape)
        )
        keep = np.isin(grid, report_t)
        keep_t = keep & (grid >= t_k)  # titer is forecast from the last known sample on
        for var, arr, times in (("vcd", vcd_pred[:, keep], grid[keep]), ("titer", tit[:, keep_t], grid[keep_t])):
            lo, hi = np.quantile(arr, [lo_q, hi_q], axis=0)
            traj.append(
                pl.DataFrame(
                    {
                        "batch_id": b,
                        "time_h": times,
                        "variable": var,
                        "mean": arr.mean(axis=0),
                        "lower": lo,
                        "upper": hi,
                    }
                )
            )
        final = tit[:, -1]
        peak = f[:n].max(axis=1)
        t_peak = grid[f[:n].argmax(axis=1)] / 24
        rows = [
            ("final_titer", final, "mg/L"),
            ("peak_vcd", peak, "1e6 cells/mL"),
            ("time_of_peak", t_peak, "d"),
            ("final_ivcd", ivcd[:n, -1], "1e6 cells*d/mL"),
        ]
        for q, x, unit in rows:
            a, z = np.quantile(x, [lo_q, hi_q])
            ends.append(
                {
                    "batch_id": b,
                    "quantity": q,
                    "mean": float(x.mean()),
                    "lower": float(a),
                    "upper": float(z),
                    "unit": unit,
                }
            )
        if spec_lower is not None:
            p = float((final < spec_lower).mean())
            ends.append(
                {"batch_id": b, "quantity": "p_below_spec", "mean": p, "lower": None, "upper": None, "unit": ""}
            )
    trajectory = pl.concat(traj).with_columns(
        prob=pl.lit(prob), known=pl.col("time_h") <= pl.col("batch_id").replace_strict(known, return_dtype=pl.Float64)
    )
    endpoints = (
        pl.DataFrame(ends, schema_overrides={"lower": pl.Float64, "upper": pl.Float64})
        .with_columns(prob=pl.lit(prob))
        .select("batch_id", "quantity", "mean", "lower", "upper", "prob", "unit")
    )
    diag = {"growth": g.diagnostics(), "titer": t.diagnostics(), "history_left_out": left_out}
    return Forecast(
        batch_ids=running,
        known_h=known,
        end_h=end_h,
        prob=prob,
        trajectory=trajectory,
        endpoints=endpoints,
        spec_lower=spec_lower,
        history=history,
        diagnostics=diag,
        growth=g,
        titer=t,
    )


def _interp_rows(x: float, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """``np.interp(x, xp, row)`` for every row of ``fp`` at once."""
    j = int(np.clip(np.searchsorted(xp, x), 1, len(xp) - 1))
    w = (x - xp[j - 1]) / (xp[j] - xp[j - 1])
    return fp[:, j - 1] * (1 - w) + fp[:, j] * w

"""Forward simulation of the twin's posterior draws: predictions, what-ifs and comparisons of feed plans.

:func:`forecast` is what :meth:`FedBatchTwin.predict <bioworkbench.twin.model.FedBatchTwin.predict>`,
``what_if`` and ``compare`` call. The draws are simulated by compiled loops over the generated
kernels (one schedule per plan, built once).

Notes
-----
**Which parameters a batch gets.**

* A batch of the fit, ``known_h=None``: its own posterior draws (pooled parameters, its
  ``mu_max, kd, y_lac_glc, q_p`` and its initial VCD ``x0_b``).
* Otherwise (a running batch known up to ``known_h``, a batch of the fit asked from ``known_h`` on,
  or a new batch) the campaign is the prior and the batch's readings up to ``known_h`` update its
  ``u = log(mu_max, kd, y_lac_glc, q_p)`` and the log-ratio of its initial VCD to the inoculation
  reading (normal, SD the VCD reading SD, as in the fit). A Laplace approximation of
  :math:`p(u \\mid x_{\\le t})` at the posterior means of the other parameters (mode by L-BFGS-B with
  the exact gradient, Hessian by central differences of it) is the proposal
  :math:`q = N(\\hat u, 1.5^2 \\hat\\Sigma)`. Each of :math:`M` candidates pairs a posterior draw
  :math:`s` (pooled parameters, population medians :math:`\tilde\theta_s`, between-batch SDs
  :math:`\tau_s`, reading SDs) with a :math:`u_c\\sim q` and has weight :math:`w_c \\propto p(x_{\\le
  t}\\mid\theta_c)\\,N(u_c\\mid\\log\tilde\theta_s,\tau_s)/q(u_c)` (the initial VCD's normal, with
  draw :math:`s`'s VCD reading SD, among the priors);
  the draws are resampled from the candidates by systematic resampling (sampling-importance-
  resampling: Rubin 1988; Smith & Gelfand 1992). The pooled parameters are not updated by the
  batch (its readings re-weight whole draws only). The state at ``known_h`` follows from each
  resampled parameter set: the twin's state estimate is the simulated state given the batch's own
  events and readings. A batch of the fit asked from ``known_h`` is treated the same way, so that its
  later readings (used in the fit) do not leak into the prediction. The effective sample size
  :math:`(\\sum w)^2/\\sum w^2` is reported; when it is small the prediction rests on few candidates
  (a warning says so): the campaign posterior is too wide for the batch's data (too few draws or
  batches in the fit).

**Scenarios.** Up to ``known_h`` a batch runs as recorded (the campaign's events); after it, each
plan's events and continuous feeds. Every plan is simulated with the same draws (common random
numbers), so each endpoint's difference between plans is computed draw by draw.

**Endpoints** (per draw, then mean and equal-tailed interval): ``final_titer`` (mg/L, at the end),
``peak_vcd`` (1e6 cells/mL, largest on the grid), ``final_viability`` (%), ``min_glucose``
(mmol/L, smallest on the grid), ``final_volume`` (mL). The grid holds every :data:`GRID_H` hours,
every event time (with the state *before* the event: the trough just before a feed) and every
reading's time, so ``min_glucose`` and the recommendation's constraints see the lowest glucose
between feeds, and a reading drawn just before a feed is compared with the state it saw. The end is the plan's
harvest, else the batch's, else the median harvest time of the fitted batches.

References
----------
- Rubin DB (1988). Using the SIR algorithm to simulate posterior distributions. In *Bayesian
  Statistics 3*, Oxford University Press, 395-402.
- Smith AFM, Gelfand AE (1992). Bayesian statistics without tears: a sampling-resampling
  perspective. *The American Statistician* 46(2):84-88.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from bioworkbench.errors import ArgumentError, BioWorkbenchError, BioWorkbenchWarning, ConfigError
from bioworkbench.twin import _kernels as K
from bioworkbench.twin.data import BatchData, batch_data
from bioworkbench.twin.feeds import FeedPlan
from bioworkbench.twin.parameters import PARAMETERS, READING_SD
from bioworkbench.twin.solver import MAX_DOUBLINGS, BatchLikelihood, build_schedule

__all__ = ["ENDPOINTS", "GRID_H", "TwinPrediction", "forecast"]

#: spacing of the reported trajectory (h)
GRID_H = 2.0
#: candidates per resampled draw when a batch's parameters are updated on its readings
CANDIDATES_PER_DRAW = 4
#: the proposal's covariance is the Laplace covariance times this factor squared (heavier than the target)
PROPOSAL_INFLATION = 1.5
#: an effective sample size below this fraction of the draws triggers a warning
ESS_WARN_FRACTION = 0.05
#: endpoint -> (observable, reduction, unit)
ENDPOINTS: dict[str, tuple[str, str, str]] = {
    "final_titer": ("titer", "last", "mg/L"),
    "peak_vcd": ("vcd", "max", "1e6 cells/mL"),
    "final_viability": ("viability", "last", "%"),
    "min_glucose": ("glucose", "min", "mmol/L"),
    "final_volume": ("volume", "last", "mL"),
}
_OBS = {name: i for i, name in enumerate(K.OBSERVABLE_NAMES)}


@dataclass(frozen=True)
class TwinPrediction:
    """A prediction of one batch under one or more feed plans.

    Attributes
    ----------
    trajectory
        ``batch_id, scenario, time_h, variable, mean, lower, upper, prob, unit``: each observable on a
        2-hour grid.
    endpoints
        ``batch_id, scenario, quantity, mean, lower, upper, prob, unit`` (see :data:`ENDPOINTS`).
    differences
        Each endpoint of each scenario minus the first scenario's, draw by draw (common random numbers):
        ``batch_id, scenario, quantity, mean, lower, upper, prob, p_greater, unit``; None for one plan.
    method
        How the batch's parameters were obtained (see the module's Notes), in words.
    ess
        Effective sample size of the importance weights (the number of draws when there were none).
    n_draws
        Draws simulated (after dropping any whose solution failed).
    known_h
        The time up to which the batch's readings were used (None: its posterior).
    draws
        Per scenario, the endpoint draws ``{scenario: {quantity: array}}``.
    paths
        Per scenario, ``(time_h, values)``: the 2-hour grid and each draw's observables on it,
        shape ``(n_draws, n_times, len(_kernels.OBSERVABLE_NAMES))`` (for constraints over time).
    """

    trajectory: pl.DataFrame
    endpoints: pl.DataFrame
    differences: pl.DataFrame | None
    method: str
    ess: float
    n_draws: int
    known_h: float | None
    draws: dict[str, dict[str, np.ndarray]]
    paths: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


# -- compiled loops over draws: K.simulate_draws, K.loglik_draws (generated with the kernels they call)


# -- draws of the parameters ---------------------------------------------------------------------
def _posterior(twin) -> dict[str, np.ndarray]:
    cache = getattr(twin, "_draws_cache", None)
    if cache is not None and cache[0] is twin.idata:
        return cache[1]
    out = {p.name: twin.posterior_draws(p.name) for p in PARAMETERS}
    for p in PARAMETERS:
        if p.scope == "batch":
            out[f"{p.name}_b"] = twin.posterior_draws(f"{p.name}_b")
            out[f"sd_{p.name}"] = twin.posterior_draws(f"sd_{p.name}")
    sig = twin.posterior_draws("sigma")
    full = np.ones((sig.shape[0], K.NOBS))
    for j, name in enumerate(twin.data["observed"]):
        full[:, _OBS[name]] = sig[:, j]
    out["sigma"] = full
    observed = list(twin.data["observed"])
    out["sd_vcd"] = sig[:, observed.index("vcd")] if "vcd" in observed else np.full(sig.shape[0], READING_SD["vcd"])
    # a twin saved before the initial VCD was estimated starts every batch from its inoculation reading
    has_x0 = "x0_b" in twin.idata["posterior"].data_vars
    out["x0_b"] = twin.posterior_draws("x0_b") if has_x0 else None
    twin._draws_cache = (twin.idata, out)
    return out


def _theta_rows(post: dict[str, np.ndarray], rows: np.ndarray, batch: int | None, z: np.ndarray | None) -> np.ndarray:
    """Parameter matrix for posterior samples ``rows``: a fitted batch's values, or new ones from ``z``."""
    theta = np.empty((rows.shape[0], K.NTH))
    nb = 0
    for j, p in enumerate(PARAMETERS):
        if p.scope == "batch":
            if batch is not None:
                theta[:, j] = post[f"{p.name}_b"][rows, batch]
            else:
                theta[:, j] = post[p.name][rows] * np.exp(post[f"sd_{p.name}"][rows] * z[:, nb])
            nb += 1
        else:
            theta[:, j] = post[p.name][rows]
    return theta


def _systematic(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    positions = (rng.uniform() + np.arange(n)) / n
    return np.minimum(np.searchsorted(np.cumsum(weights), positions), weights.shape[0] - 1)


_BATCH_COLS = np.array([j for j, p in enumerate(PARAMETERS) if p.scope == "batch"])
_BATCH_NAMES = [PARAMETERS[j].name for j in _BATCH_COLS]


def _with_x0(y0: np.ndarray, log_ratio: np.ndarray) -> np.ndarray:
    """Initial states, one row per log-ratio: viable and dead cells of ``y0`` scaled by ``exp(log_ratio)``."""
    rows = np.repeat(y0[None, :], np.size(log_ratio), axis=0)
    rows[:, :2] *= np.exp(np.asarray(log_ratio, dtype=np.float64).reshape(-1))[:, None]
    return rows


def _laplace(post: dict[str, np.ndarray], lik: BatchLikelihood, y0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mode and covariance of the batch's log ``mu_max, kd, y_lac_glc, q_p`` and the log-ratio of its initial VCD to
    the reading, given its readings, at the posterior means.

    The pooled parameters, population medians, between-batch SDs and reading SDs are held at their
    posterior means; the log-posterior (readings' likelihood plus the population's normal on the
    logs and the reading's normal on the initial VCD) is maximised with L-BFGS-B using the exact
    gradient, and its Hessian is taken by central differences of that gradient.
    """
    from scipy.optimize import minimize

    base = np.array([post[p.name].mean() for p in PARAMETERS])
    centre = np.append(np.log(base[_BATCH_COLS]), 0.0)
    tau = np.append([post[f"sd_{n}"].mean() for n in _BATCH_NAMES], post["sd_vcd"].mean())
    sig_obs = post["sigma"].mean(axis=0)[lik.observations.variable]
    nb = _BATCH_COLS.size

    def negative(u: np.ndarray) -> tuple[float, np.ndarray]:
        th = base.copy()
        th[_BATCH_COLS] = np.exp(u[:nb])
        y = _with_x0(y0, u[nb])[0]
        try:
            r = lik(th, y, sig_obs)
        except BioWorkbenchError:
            return 1e300, np.zeros_like(u)
        if not np.isfinite(r.loglik):
            return 1e300, np.zeros_like(u)
        zz = (u - centre) / tau
        grad = np.append(r.grad_theta[_BATCH_COLS] * np.exp(u[:nb]), r.grad_y0[:2] @ y[:2])
        return -(r.loglik - 0.5 * zz @ zz), -(grad - zz / tau)

    res = minimize(negative, centre, jac=True, method="L-BFGS-B", options={"maxiter": 200})
    mode = res.x
    eps = 1e-4
    hess = np.empty((mode.size, mode.size))
    for i in range(mode.size):
        e = np.zeros(mode.size)
        e[i] = eps
        hess[i] = (negative(mode + e)[1] - negative(mode - e)[1]) / (2 * eps)
    hess = 0.5 * (hess + hess.T)
    w, v = np.linalg.eigh(hess)
    w = np.maximum(w, 1.0 / (4.0 * tau.max() ** 2))  # no flatter than the population allows
    return mode, (v / w) @ v.T


def _parameters(twin, bd: BatchData, known_h: float | None, n_draws: int, rng: np.random.Generator):
    post = _posterior(twin)
    n_s = post["sigma"].shape[0]
    ids = list(twin.data["batch_ids"])
    if known_h is None and bd.batch_id in ids:
        rows = rng.choice(n_s, size=min(n_draws, n_s), replace=False) if n_draws < n_s else np.arange(n_s)
        b = ids.index(bd.batch_id)
        theta = _theta_rows(post, rows, b, None)
        ratio = np.zeros(rows.size) if post["x0_b"] is None else np.log(post["x0_b"][rows, b] / bd.y0[0])
        what = f"posterior of {bd.batch_id} (fitted)"
        return theta, post["sigma"][rows], _with_x0(bd.y0, ratio), what, float(rows.size)
    m = max(CANDIDATES_PER_DRAW * n_draws, n_draws)
    rows = rng.permutation(np.resize(rng.permutation(n_s), m))
    until = np.inf if known_h is None else known_h
    obs = bd.until(until)
    what = "all its readings" if known_h is None else f"its readings up to {known_h:g} h"
    if obs.time_h.size == 0:
        z = rng.standard_normal((n_draws, _BATCH_COLS.size + 1))
        theta = _theta_rows(post, rows[:n_draws], None, z[:, :-1])
        y0 = _with_x0(bd.y0, post["sd_vcd"][rows[:n_draws]] * z[:, -1])  # the inoculation reading's error
        method = f"campaign population (no readings of {bd.batch_id} yet)"
        return theta, post["sigma"][rows[:n_draws]], y0, method, float(n_draws)
    lik = BatchLikelihood(bd.events, obs, h_max=twin.data["h_max"])
    mode, cov = _laplace(post, lik, bd.y0)
    chol = np.linalg.cholesky(cov * PROPOSAL_INFLATION**2)
    eps = rng.standard_normal((m, mode.size))
    u = mode + eps @ chol.T  # proposal: normal around the batch's mode, inflated
    log_q = -0.5 * np.sum(eps**2, axis=1)  # up to a constant
    theta = _theta_rows(post, rows, None, np.zeros((m, _BATCH_COLS.size)))
    theta[:, _BATCH_COLS] = np.exp(u[:, :-1])
    y0 = _with_x0(bd.y0, u[:, -1])
    log_median = np.column_stack([*(np.log(post[n][rows]) for n in _BATCH_NAMES), np.zeros(m)])
    tau = np.column_stack([*(post[f"sd_{n}"][rows] for n in _BATCH_NAMES), post["sd_vcd"][rows]])
    log_prior = np.sum(-0.5 * ((u - log_median) / tau) ** 2 - np.log(tau), axis=1)
    sigma = post["sigma"][rows]
    s = lik.schedule
    ll = K.loglik_draws(
        theta, sigma, y0, s.t_b, s.nsub, s.u_seg, s.jb_start, s.j_vout, s.j_vin, s.j_c, s.ob_start, s.ob_var,
        lik._value, lik._lognormal, lik._censored, MAX_DOUBLINGS,
    )  # fmt: skip
    log_w = ll + log_prior - log_q
    if not np.isfinite(log_w).any():
        raise ConfigError(
            f"twin: no parameter draw of the campaign reproduces batch {bd.batch_id}'s readings up to "
            f"{until:g} h (every candidate's likelihood is zero); check its inoculation readings and events."
        )
    w = np.exp(log_w - log_w[np.isfinite(log_w)].max())
    w /= w.sum()
    ess = float(1.0 / np.sum(w**2))
    if ess < ESS_WARN_FRACTION * n_draws:
        warnings.warn(
            f"twin: the update of {bd.batch_id} on {what} rests on few candidates (effective sample size "
            f"{ess:.0f} of {m}); its intervals are too narrow. Pass more draws, or refit the twin with the batch.",
            BioWorkbenchWarning,
            stacklevel=4,
        )
    keep = _systematic(w, n_draws, rng)
    method = (
        f"campaign posterior with {bd.batch_id}'s {', '.join(_BATCH_NAMES)} updated on {what}: importance sampling "
        f"from a Laplace proposal ({m} candidates, effective sample size {ess:.0f})"
    )
    return theta[keep], sigma[keep], y0[keep], method, ess


# -- plans -----------------------------------------------------------------------------------------
def _as_plan(plan: Any, batch_id: str, name: str) -> FeedPlan:
    if isinstance(plan, FeedPlan):
        return plan
    if isinstance(plan, pl.DataFrame):
        ids = plan["batch_id"].unique().to_list() if "batch_id" in plan.columns else []
        if "batch_id" in plan.columns and len(ids) > 1:
            return FeedPlan.from_events(plan, batch_id=batch_id)
        return FeedPlan.from_events(plan)
    raise ArgumentError(f"twin: plan {name!r} is a {type(plan).__name__}; pass a FeedPlan or an events frame.")


def _combined(actual: FeedPlan, plan: FeedPlan, known_h: float | None, batch_id: str) -> FeedPlan:
    """The batch's recorded events before ``known_h``, the plan's from it on."""
    if known_h is None:
        events = plan.events.with_columns(batch_id=pl.lit(batch_id))
        return FeedPlan(events, plan.continuous_feeds, batch_id)
    past = actual.events.filter(pl.col("time_h") < known_h)
    future = plan.events.filter(pl.col("time_h") >= known_h).with_columns(batch_id=pl.lit(batch_id))
    events = pl.concat([past, future.cast(past.schema)])
    stop = pl.col("stop_h").fill_null(np.inf)
    before = actual.continuous_feeds.filter(pl.col("start_h") < known_h).with_columns(
        pl.when(stop > known_h).then(pl.lit(known_h)).otherwise(pl.col("stop_h")).alias("stop_h")
    )
    after = plan.continuous_feeds.filter(stop > known_h).with_columns(
        pl.max_horizontal(pl.col("start_h"), pl.lit(known_h)).alias("start_h")
    )
    return FeedPlan(events, pl.concat([before, after]), batch_id)


def _end_h(plan: FeedPlan, bd: BatchData, twin, known_h: float | None) -> float:
    harvest = plan.events.filter(pl.col("event") == "harvest")["time_h"]
    if harvest.len():
        return float(harvest.min())
    has_harvest = bd.plan.events.filter(pl.col("event") == "harvest").height > 0
    end = bd.end_h if has_harvest else float(np.median(twin.data["end_h"]))
    return max(end, known_h or 0.0)


# -- frames ------------------------------------------------------------------------------------------
def _interval(x: np.ndarray, prob: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo, hi = np.quantile(x, [(1 - prob) / 2, (1 + prob) / 2], axis=axis)
    return x.mean(axis=axis), lo, hi


def _unit(name: str) -> str:
    from bioworkbench.variables import get_variable

    return get_variable(name).unit


def _grid(end: float, jump_time_h: np.ndarray, reading_time_h: np.ndarray) -> np.ndarray:
    """The trajectory's times: every ``GRID_H``, every jump and every reading up to ``end``.

    The state recorded at a jump time is the one before the jump, so the grid holds each trough
    just before a feed (the smallest glucose between feeds) and each reading's own time (a reading
    taken just before a feed is compared with the state it saw, not with one interpolated across
    the feed).
    """
    times = [np.arange(0.0, end, GRID_H), [end], jump_time_h, reading_time_h]
    grid = np.unique(np.concatenate([np.asarray(t, dtype=np.float64) for t in times]))
    return grid[(grid >= 0.0) & (grid <= end)]


def forecast(
    twin,
    campaign,
    *,
    batch_id: str,
    known_h: float | None,
    plans: dict[str, Any] | None,
    prob: float = 0.9,
    kind: str = "mean",
    random_seed: int | None = None,
    draws: int | None = 1000,
) -> TwinPrediction:
    """Simulate a batch's posterior draws forward under its events or under feed plans.

    Parameters
    ----------
    twin
        A fitted :class:`~bioworkbench.twin.model.FedBatchTwin`.
    campaign
        The campaign holding the batch.
    batch_id
        The batch.
    known_h
        Readings up to this time update the batch's parameters (see the module's Notes).
    plans
        Scenario name -> plan; None: the batch's own events (scenario ``"as planned"``).
    prob
        Mass of the equal-tailed intervals.
    kind
        ``"mean"`` or ``"predictive"`` (adds the reading error to the trajectory; endpoints stay states).
    random_seed
        Seed of the draws, the resampling and the reading error.
    draws
        Number of draws simulated (``None``: as many as the posterior has).

    Returns
    -------
    TwinPrediction

    Raises
    ------
    ModelNotFittedError
        The twin has not been fitted.
    ArgumentError
        ``prob`` outside (0, 1), an unknown ``kind``, a non-positive ``draws``, or a plan of the wrong type.
    ConfigError
        An unknown batch, a plan the solver cannot take, or readings that no draw reproduces.
    """
    twin._require_fit()
    if not 0 < prob < 1:
        raise ArgumentError(f"twin: prob must lie in (0, 1), got {prob!r}.")
    if kind not in ("mean", "predictive"):
        raise ArgumentError(f"twin: kind must be 'mean' or 'predictive', got {kind!r}.")
    n_post = _posterior(twin)["sigma"].shape[0]
    n_draws = n_post if draws is None else int(draws)
    if n_draws < 1:
        raise ArgumentError(f"twin: draws must be a positive integer, got {draws!r}.")
    rng = np.random.default_rng(random_seed)
    bd = batch_data(campaign, batch_id, variables=twin.data["observed"])
    theta, sigma, y0, method, ess = _parameters(twin, bd, known_h, min(n_draws, n_post), rng)
    raw = {"as planned": bd.plan} if plans is None else plans
    scen = {name: _combined(bd.plan, _as_plan(p, batch_id, name), known_h, batch_id) for name, p in raw.items()}
    noise = rng.standard_normal((theta.shape[0], 1, K.NOBS)) if kind == "predictive" else None

    sims: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    ok = np.ones(theta.shape[0], dtype=bool)
    for name, plan in scen.items():
        end = _end_h(plan, bd, twin, known_h)
        events = plan.to_solver(campaign.media)
        grid = _grid(end, events.jump_time_h, bd.observations.time_h)
        s = build_schedule(events, grid, t0=0.0, t_end=end, h_max=twin.data["h_max"])
        at = np.searchsorted(s.t_b, grid)
        out, status = K.simulate_draws(
            theta, y0, s.t_b, s.nsub, s.u_seg, s.jb_start, s.j_vout, s.j_vin, s.j_c, s.ob_start, s.ob_var,
            at, True, True, MAX_DOUBLINGS,
        )  # fmt: skip
        ok &= status == 0
        sims[name] = (grid, out)
    if not ok.any():
        raise ConfigError(f"twin: no draw of {batch_id} could be solved under the plans {list(scen)}.")
    if not ok.all():
        warnings.warn(
            f"twin: {int((~ok).sum())} of {ok.size} draws of {batch_id} could not be solved (unstable steps or "
            "non-finite states) and were left out.",
            BioWorkbenchWarning,
            stacklevel=3,
        )
    observed = list(twin.data["observed"])
    units = {v: _unit(v) if v != "volume" else "mL" for v in K.OBSERVABLE_NAMES}
    traj_parts, end_rows, end_draws, paths = [], [], {}, {}
    for name, (grid, out) in sims.items():
        out = out[ok]
        paths[name] = (grid, out)
        if noise is not None:
            scale = np.array([1.0 if v in observed else 0.0 for v in K.OBSERVABLE_NAMES])
            out = out * np.exp(noise[ok] * sigma[ok][:, None, :] * scale)
        mean, lo, hi = _interval(out, prob)
        n_t = grid.size
        traj_parts.append(
            pl.DataFrame(
                {
                    "time_h": np.repeat(grid, K.NOBS),
                    "variable": np.tile(np.array(K.OBSERVABLE_NAMES), n_t),
                    "mean": mean.ravel(),
                    "lower": lo.ravel(),
                    "upper": hi.ravel(),
                }
            ).with_columns(scenario=pl.lit(name))
        )
        per = {}
        for q, (var, how, unit) in ENDPOINTS.items():
            x = out[:, :, _OBS[var]]
            v = x[:, -1] if how == "last" else (x.max(axis=1) if how == "max" else x.min(axis=1))
            per[q] = v
            m, a, b = _interval(v, prob)
            end_rows.append({"scenario": name, "quantity": q, "mean": m, "lower": a, "upper": b, "unit": unit})
        end_draws[name] = per
    trajectory = (
        pl.concat(traj_parts)
        .with_columns(batch_id=pl.lit(batch_id), prob=pl.lit(prob), unit=pl.col("variable").replace_strict(units))
        .select("batch_id", "scenario", "time_h", "variable", "mean", "lower", "upper", "prob", "unit")
    )
    endpoints = (
        pl.DataFrame(end_rows)
        .with_columns(batch_id=pl.lit(batch_id), prob=pl.lit(prob))
        .select("batch_id", "scenario", "quantity", "mean", "lower", "upper", "prob", "unit")
    )
    differences = None
    if len(sims) > 1:
        first = next(iter(end_draws))
        rows = []
        for name in list(end_draws)[1:]:
            for q, (_, _, unit) in ENDPOINTS.items():
                d = end_draws[name][q] - end_draws[first][q]
                m, a, b = _interval(d, prob)
                rows.append(
                    {"scenario": name, "quantity": q, "mean": m, "lower": a, "upper": b,
                     "p_greater": float(np.mean(d > 0)), "unit": unit}
                )  # fmt: skip
        differences = (
            pl.DataFrame(rows)
            .with_columns(batch_id=pl.lit(batch_id), prob=pl.lit(prob), reference=pl.lit(first))
            .select(
                "batch_id", "scenario", "reference", "quantity", "mean", "lower", "upper", "prob", "p_greater", "unit"
            )
        )
    return TwinPrediction(trajectory, endpoints, differences, method, ess, int(ok.sum()), known_h, end_draws, paths)

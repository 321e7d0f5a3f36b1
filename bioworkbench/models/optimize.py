"""Where to run the process: optimisation of a fitted :class:`ResponseSurface` under probabilistic constraints.

:func:`optimize` answers "maximise titer while aggregates < 4 % with probability 0.9" over **every**
factor of the model at once (not a 2-D slice)::

    maximise   E[ g(Y(x)) | data ]             over x in the region (the box of the studied ranges)
    subject to P(Y_c(x) within its limits for every constrained response c | data) ≥ prob

``g`` is the objective: the posterior mean of one response (``"max"``/``"min"``), or, for several
objectives, the overall desirability of Derringer & Suich ("Simultaneous optimization of several
response variables", J. Qual. Technol. 12 (1980) 214): each response is mapped to ``d_j ∈ [0, 1]``
(:func:`desirability`) and ``D = (Π d_j^{w_j})^{1/Σ w_j}`` (weighted geometric mean), averaged over the
posterior draws (the expected desirability, so uncertain predictions count less). The constraint is
Peterson's joint posterior predictive probability for a **new run** (parameter uncertainty, the
residual correlated across responses and, with blocks, a new block's effect), computed exactly as the
design space's map (:func:`bioworkbench.models.design_space.design_space`), so the optimum lies in the
design space at the same ``prob``.

How it is searched: a scrambled Sobol sequence of candidate settings over the region (``n_candidates``
points, Owen-scrambled, seeded; scipy.stats.qmc) is evaluated in one vectorised pass (objective and
constraint probability for every candidate and posterior draw), then the best feasible candidates are
refined by Nelder–Mead (scipy.optimize.minimize, bounded to the region) on the objective with an exact
penalty for infeasibility. The best refined point is returned; if no candidate meets the constraint,
the point of highest probability is returned and the result says so (``feasible = False``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from bioworkbench.errors import ConfigError
from bioworkbench.models.inputs import _check_prob, parse_specs
from bioworkbench.schema import suggest
from bioworkbench.terms import code, model_matrix

__all__ = ["GOALS", "Optimum", "desirability", "optimize"]

#: the goals of an objective
GOALS = ("max", "min", "target")
#: posterior draws used when desirabilities are averaged over the candidates (all draws at the end)
_SUBSAMPLE = 500
#: coded distance within which a coordinate counts as on the boundary of the region
_EDGE = 1e-6


def desirability(
    values: Any,
    *,
    goal: str,
    low: float,
    high: float,
    target: float | None = None,
    weight: float = 1.0,
) -> np.ndarray:
    """Derringer–Suich desirability of response values: 0 (unacceptable) to 1 (fully desirable).

    Parameters
    ----------
    values
        Response values (any shape).
    goal
        ``"max"``, ``"min"`` or ``"target"``.
    low, high
        ``"max"``: ``d = 0`` at or below ``low``, 1 at or above ``high``; ``"min"``: 1 at or below
        ``low``, 0 at or above ``high``; ``"target"``: 0 outside ``[low, high]``.
    target
        The best value for ``goal="target"`` (strictly between ``low`` and ``high``).
    weight
        Shape exponent ``w > 0``: 1 is linear; above 1 the desirability rises only close to the best value.

    Returns
    -------
    numpy.ndarray
        ``d`` with the shape of ``values``.

    Raises
    ------
    ConfigError
        An unknown goal, ``low >= high``, a missing or outside target, a weight that is not positive.

    Notes
    -----
    Derringer & Suich, J. Qual. Technol. 12 (1980) 214, eqs. (1)–(3): for a maximum
    ``d = ((y − low) / (high − low))^w`` clipped to [0, 1]; for a minimum
    ``d = ((high − y) / (high − low))^w``; for a target ``T``, ``((y − low)/(T − low))^w`` below ``T`` and
    ``((high − y)/(high − T))^w`` above. Unitless.
    """
    if goal not in GOALS:
        raise ConfigError(f"desirability goal must be one of {', '.join(map(repr, GOALS))}; got {goal!r}.")
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ConfigError(f"desirability needs low < high (finite); got low={low!r}, high={high!r}.")
    if not (isinstance(weight, int | float) and weight > 0):
        raise ConfigError(f"desirability weight must be a positive number; got {weight!r}.")
    y = np.asarray(values, dtype=float)
    if goal == "max":
        d = (y - low) / (high - low)
    elif goal == "min":
        d = (high - y) / (high - low)
    else:
        if target is None or not low < target < high:
            raise ConfigError(
                f"goal 'target' needs low < target < high; got target={target!r}, low={low}, high={high}."
            )
        d = np.where(y <= target, (y - low) / (target - low), (high - y) / (high - target))
    return np.clip(d, 0.0, 1.0) ** weight


@dataclass(frozen=True)
class _Goal:
    response: str
    goal: str
    low: float | None = None
    high: float | None = None
    target: float | None = None
    weight: float = 1.0


@dataclass
class Optimum:
    """The best settings found by :func:`optimize`, with predictions and the probability of the constraints.

    Attributes
    ----------
    settings : dict
        ``{factor: value}`` for every factor (natural units).
    predictions : polars.DataFrame
        One row per response: ``response, mean, lower, upper`` (the mean response, equal-tailed ``prob``
        interval), ``new_lower, new_upper`` (a new run's interval), ``limit_lower, limit_upper`` (the
        constraint, null when the response is not constrained), ``objective`` (its goal or null).
    p_constraints : float
        P(every constrained response within its limits) for a new run at :attr:`settings` (1.0 without
        constraints).
    mc_se : float
        The Monte Carlo standard error of :attr:`p_constraints`.
    prob : float
        The required probability of the constraints (and the mass of the intervals).
    feasible : bool
        Whether ``p_constraints >= prob`` at the returned point.
    objective : str
        What was optimised, in words.
    objective_value : float
        The posterior mean of the objective response, or the expected overall desirability.
    on_boundary : list of str
        Factors whose setting is at an end of the region (the optimum is pushed against the studied range).
    held : dict
        Factors held at fixed values (``fixed=``).
    method : str
        How the point was searched.
    """

    settings: dict[str, float]
    predictions: pl.DataFrame
    p_constraints: float
    mc_se: float
    prob: float
    feasible: bool
    objective: str
    objective_value: float
    on_boundary: list[str]
    held: dict[str, float] = field(default_factory=dict)
    method: str = ""

    def table(self) -> pl.DataFrame:
        """The settings as a frame: ``factor, value, low, high, on_boundary, held``.

        Returns
        -------
        polars.DataFrame
            One row per factor.
        """
        return pl.DataFrame(
            {
                "factor": list(self.settings),
                "value": list(self.settings.values()),
                "on_boundary": [f in self.on_boundary for f in self.settings],
                "held": [f in self.held for f in self.settings],
            }
        )

    def describe(self) -> str:
        """The optimum in plain words (settings, predictions, the probability of the constraints).

        Returns
        -------
        str
            One paragraph.
        """
        at = ", ".join(f"{f} = {v:.4g}" for f, v in self.settings.items())
        preds = "; ".join(
            f"{r['response']} {r['mean']:.4g} ({r['lower']:.4g} to {r['upper']:.4g} for the mean, "
            f"{r['new_lower']:.4g} to {r['new_upper']:.4g} for a new run)"
            for r in self.predictions.iter_rows(named=True)
        )
        width = f"{self.prob:.0%}"
        text = f"Best settings for {self.objective}: {at}. Predicted: {preds} ({width} intervals)."
        if self.predictions["limit_lower"].is_not_null().any() or self.predictions["limit_upper"].is_not_null().any():
            text += f" P(all constraints met by a new run) = {self.p_constraints:.3f}" + (
                f" ≥ {self.prob:g}."
                if self.feasible
                else f", below the required {self.prob:g}: no setting in the region meets the constraints with "
                "that probability; this is the most probable point."
            )
        if self.on_boundary:
            text += (
                f" {' and '.join(self.on_boundary)} {'sits' if len(self.on_boundary) == 1 else 'sit'} at the end of "
                "the studied range: the optimum may lie beyond "
                "it, where the data say nothing; extend the range in a follow-up design before moving the set point."
            )
        if self.held:
            text += " Held: " + ", ".join(f"{f} = {v:g}" for f, v in self.held.items()) + "."
        return text

    def __repr__(self) -> str:
        return f"Optimum({self.describe()})"


def _parse_objective(model: Any, objective: Any) -> list[_Goal]:
    responses = model.responses
    if isinstance(objective, str):
        objective = {objective: "max"}
    if not isinstance(objective, Mapping) or not objective:
        raise ConfigError(
            "objective must be a mapping {response: goal}, e.g. {'titer': 'max'}; goals: 'max', 'min', a target "
            "value, or {'goal': ..., 'low': ..., 'high': ..., 'target': ..., 'weight': ...}."
        )
    goals = []
    for r, g in objective.items():
        if r not in responses:
            raise ConfigError(
                f"objective names {r!r}, which was not modelled. " + suggest(str(r), responses, what="Responses")
            )
        if isinstance(g, str):
            if g not in ("max", "min"):
                raise ConfigError(f"objective of {r!r}: goal must be 'max', 'min' or a target value; got {g!r}.")
            goals.append(_Goal(r, g))
        elif isinstance(g, int | float) and not isinstance(g, bool):
            goals.append(_Goal(r, "target", target=float(g)))
        elif isinstance(g, Mapping):
            unknown = sorted(set(g) - {"goal", "low", "high", "target", "weight"})
            if unknown or g.get("goal") not in GOALS:
                raise ConfigError(
                    f"objective of {r!r}: expected keys goal ({', '.join(GOALS)}), low, high, target, weight; "
                    f"got {dict(g)!r}."
                )
            goals.append(
                _Goal(
                    r,
                    g["goal"],
                    None if g.get("low") is None else float(g["low"]),
                    None if g.get("high") is None else float(g["high"]),
                    None if g.get("target") is None else float(g["target"]),
                    float(g.get("weight", 1.0)),
                )
            )
        else:
            raise ConfigError(f"objective of {r!r}: goal must be 'max', 'min', a number or a mapping; got {g!r}.")
    return goals


def _desirability_limits(model: Any, goals: list[_Goal]) -> list[_Goal]:
    """Fill the missing ``low``/``high`` of each goal with the observed range of the response."""
    y = np.array([[np.nan if v is None else v for v in row] for row in model.data["y"]], float)
    out = []
    for g in goals:
        j = model.responses.index(g.response)
        obs = y[~np.isnan(y[:, j]), j]
        low = float(obs.min()) if g.low is None else g.low
        high = float(obs.max()) if g.high is None else g.high
        out.append(_Goal(g.response, g.goal, low, high, g.target, g.weight))
    return out


def _region(
    model: Any, region: Any, fixed: Mapping[str, float] | None
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    factors = model.factors
    lo = np.array([r[0] for r in factors.values()], float)
    hi = np.array([r[1] for r in factors.values()], float)
    if isinstance(region, Mapping):
        for f, bounds in region.items():
            if f not in factors:
                raise ConfigError(f"region names unknown factor {f!r}. " + suggest(str(f), factors, what="Factors"))
            a, b = (float(v) for v in bounds)
            r0, r1 = factors[f]
            if not (r0 <= a < b <= r1):
                raise ConfigError(
                    f"region of {f!r}: ({a:g}, {b:g}) must be an interval within the studied range {r0:g}–{r1:g}; "
                    "the model says nothing outside it."
                )
            i = list(factors).index(f)
            lo[i], hi[i] = a, b
    elif region != "design":
        raise ConfigError(f"region must be 'design' (the studied ranges) or {{factor: (low, high)}}; got {region!r}.")
    held = {}
    for f, v in dict(fixed or {}).items():
        if f not in factors:
            raise ConfigError(f"fixed names unknown factor {f!r}. " + suggest(str(f), factors, what="Factors"))
        try:
            held[f] = float(v)
        except (TypeError, ValueError):
            raise ConfigError(f"fixed value of {f!r} must be a number; got {v!r}.") from None
        i = list(factors).index(f)
        lo[i] = hi[i] = held[f]
    return lo, hi, held


def optimize(
    model: Any,
    objective: Any,
    *,
    constraints: Any = None,
    prob: float = 0.9,
    region: str | Mapping[str, Sequence[float]] = "design",
    fixed: Mapping[str, float] | None = None,
    block: Any = None,
    n_candidates: int = 4096,
    n_refine: int = 4,
    random_seed: int | None = 0,
) -> Optimum:
    """Best settings of every factor for an objective, subject to P(constraints met) ≥ ``prob``.

    Parameters
    ----------
    model
        A fitted :class:`~bioworkbench.models.ResponseSurface`.
    objective
        ``{response: goal}``: ``"max"``, ``"min"``, a target value, or a mapping ``{"goal", "low", "high",
        "target", "weight"}`` (:func:`desirability`; ``low``/``high`` default to the observed range). One
        ``"max"``/``"min"`` goal optimises that response's posterior mean; several goals (or a target, or
        explicit limits) the expected overall desirability.
    constraints
        ``{response: (lower, upper)}`` (``None`` for an open side) or a campaign ``specs`` frame; the joint
        posterior predictive probability that a new run meets them all must be at least ``prob``.
    prob
        Required probability of the constraints, and the mass of the reported intervals.
    region
        ``"design"``: the box of the studied factor ranges; or ``{factor: (low, high)}`` narrowing some.
    fixed
        ``{factor: value}`` held, not optimised.
    block
        A block of the data to optimise for; default a new block.
    n_candidates
        Sobol candidate settings (rounded up to a power of 2).
    n_refine
        Best feasible candidates refined by Nelder–Mead.
    random_seed
        Seed of the Sobol scrambling and of the residual draws of the constraint probability.

    Returns
    -------
    Optimum

    Raises
    ------
    ModelNotFittedError
        The model has no posterior.
    ConfigError
        An unknown response, factor or goal; a region outside the studied ranges; ``prob`` outside (0, 1).

    Notes
    -----
    See the module docstring. The objective uses the mean surface ``μ_s(x) = β0_s + B_s f(x)`` of each
    posterior draw ``s`` (natural units), the constraint the posterior predictive of a new run at ``x``
    (:func:`bioworkbench.models.design_space.design_space`, same Monte Carlo scheme with one residual draw
    per posterior draw, fixed by ``random_seed``, so the probability is a smooth function of ``x`` with one
    constrained response and piecewise smooth with several). Intervals: equal-tailed ``prob``.
    """
    from scipy.stats import qmc

    from bioworkbench.models.design_space import _joint_probability_fn

    model._require_fit()
    _check_prob(prob)
    goals = _parse_objective(model, objective)
    specs = parse_specs(constraints, model.responses) if constraints is not None else {}
    lo, hi, held = _region(model, region, fixed)
    factors = list(model.factors)
    post = model._post()
    y_mean, y_sd = model._scale()
    S = post["b0"].shape[0]
    single = len(goals) == 1 and goals[0].goal in ("max", "min") and goals[0].low is None and goals[0].high is None
    if not single:
        goals = _desirability_limits(model, goals)
    idx = [model.responses.index(g.response) for g in goals]
    rng = np.random.default_rng(random_seed)
    sub = np.sort(rng.choice(S, size=min(S, _SUBSAMPLE), replace=False))
    z = rng.standard_normal((S, max(len(specs) - 1, 0)))
    bi = model._block_index(block)  # the intercept of a named block, or of a new block's mean level
    b0 = post["b0"] + (
        model.block_effects()[:, bi, :] if bi is not None else model._new_block_mean() if "tau" in post else 0
    )
    free = hi > lo

    def to_natural(u: np.ndarray) -> np.ndarray:  # u in [0, 1]^free
        x = np.tile(lo, (u.shape[0], 1))
        x[:, free] = lo[free] + u * (hi[free] - lo[free])
        return x

    def matrix(x: np.ndarray) -> np.ndarray:
        return model_matrix(code(x, model.factors), factors, model.terms, intercept=False)

    def objective_values(Xm: np.ndarray, draws: np.ndarray) -> np.ndarray:
        mu = y_mean[idx] + y_sd[idx] * (
            b0[draws][:, None, idx] + np.einsum("pm,skm->spk", Xm, post["B"][draws][:, idx])
        )
        if single:
            v = mu[..., 0].mean(axis=0)
            return v if goals[0].goal == "max" else -v
        return _overall_desirability(mu, goals).mean(axis=0)

    joint = _joint_probability_fn(model, specs, block, z) if specs else None

    def probability(Xm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return joint(Xm) if joint else (np.ones(Xm.shape[0]), np.zeros(Xm.shape[0]))

    k = int(free.sum())
    if k:
        m = max(1, int(np.ceil(np.log2(max(int(n_candidates), 2)))))
        u = qmc.Sobol(d=k, scramble=True, seed=rng).random_base2(m)
        u = np.vstack([u, np.full((1, k), 0.5)])  # the centre of the region
        X = to_natural(u)
    else:
        X = lo[None, :].copy()
    Xm = matrix(X)
    val = objective_values(Xm, sub)
    p, _ = probability(Xm)
    ok = p >= prob
    feasible = bool(ok.any())
    order = np.argsort(-np.where(ok, val, -np.inf)) if feasible else np.argsort(-p)
    starts = order[: max(1, int(n_refine))]
    scale = np.abs(val[ok]).max() if feasible and np.isfinite(val[ok]).all() else 1.0

    def penalised(v: np.ndarray) -> float:
        x = to_natural(np.clip(v, 0, 1)[None, :])
        Xv = matrix(x)
        pv, _ = probability(Xv)
        if feasible:
            f = -objective_values(Xv, np.arange(S))[0]
            return float(f + (0.0 if pv[0] >= prob else 10 * (scale + 1) * (1 + prob - pv[0])))
        return float(-pv[0])

    if k:
        x = to_natural(_refine(penalised, (X[starts][:, free] - lo[free]) / (hi[free] - lo[free]))[None, :])[0]
    else:
        x = lo.copy()
    method = f"scrambled Sobol candidates ({X.shape[0]:,} settings" + (
        f", {len(starts)} refined by Nelder–Mead)" if k else ")"
    )
    Xb = matrix(x[None, :])
    pb, se = probability(Xb)
    value = float(objective_values(Xb, np.arange(S))[0]) * (-1 if single and goals[0].goal == "min" else 1)
    goal_of = {g.response: g.goal if g.goal != "target" else f"target {g.target:g}" for g in goals}
    predictions = _predictions(model, dict(zip(factors, x, strict=True)), specs, goal_of, prob, block, random_seed)
    tol = _EDGE * (hi - lo)
    edge = [f for j, f in enumerate(factors) if free[j] and (x[j] - lo[j] <= tol[j] or hi[j] - x[j] <= tol[j])]
    return Optimum(
        settings={f: float(v) for f, v in zip(factors, x, strict=True)},
        predictions=predictions,
        p_constraints=float(pb[0]),
        mc_se=float(se[0]),
        prob=prob,
        feasible=bool(pb[0] >= prob),
        objective=(
            f"the {'maximum' if goals[0].goal == 'max' else 'minimum'} mean {goals[0].response}"
            if single
            else "the expected overall desirability of " + ", ".join(f"{r} ({g})" for r, g in goal_of.items())
        ),
        objective_value=value,
        on_boundary=edge,
        held=held,
        method=method,
    )


def _refine(penalised: Any, starts: np.ndarray) -> np.ndarray:
    """Nelder–Mead (bounded to the unit box) from each start; the best point found, refined or not."""
    from scipy.optimize import minimize

    best_u, best_f = starts[0], np.inf
    k = starts.shape[1]
    for u0 in starts:
        res = minimize(
            penalised,
            u0,
            method="Nelder-Mead",
            bounds=[(0.0, 1.0)] * k,
            options={"xatol": 1e-4, "fatol": 1e-9, "maxiter": 400 * k},
        )
        for cand, fv in ((res.x, res.fun), (u0, penalised(u0))):
            if fv < best_f:
                best_u, best_f = np.clip(cand, 0, 1), fv
    return best_u


def _predictions(
    model: Any,
    at: dict[str, float],
    specs: Mapping[str, tuple[float | None, float | None]],
    goal_of: Mapping[str, str],
    prob: float,
    block: Any,
    random_seed: int | None,
) -> pl.DataFrame:
    """The predictions table of :class:`Optimum` at the settings ``at``."""
    point = {f: [v] for f, v in at.items()}
    pred = model.predict(point, prob=prob, block=block)
    new = model.predict(point, prob=prob, block=block, kind="predictive", random_seed=random_seed)
    limits = [specs.get(r, (None, None)) for r in pred["response"]]
    return pred.select("response", "mean", "lower", "upper").with_columns(
        new_lower=new["lower"],
        new_upper=new["upper"],
        limit_lower=pl.Series([lim[0] for lim in limits], dtype=pl.Float64),
        limit_upper=pl.Series([lim[1] for lim in limits], dtype=pl.Float64),
        objective=pl.Series([goal_of.get(r) for r in pred["response"]], dtype=pl.String),
    )


def _overall_desirability(mu: np.ndarray, goals: Sequence[_Goal]) -> np.ndarray:
    """``D = (Π d_j^{w_j})^{1/Σ w_j}`` of response values ``mu`` (last axis: the goals' responses)."""
    logd = np.zeros(mu.shape[:-1])
    for j, g in enumerate(goals):
        d = desirability(mu[..., j], goal=g.goal, low=g.low, high=g.high, target=g.target, weight=1.0)
        logd = logd + g.weight * np.log(np.maximum(d, 1e-300))
    return np.exp(logd / sum(g.weight for g in goals))

"""What a fitted :class:`ResponseSurface` says about where to run the process: the stationary point
(canonical analysis), the Bayesian design space (Peterson) and proven acceptable ranges.

The design space is the set of process settings ``x`` at which future runs meet **every** quality
specification jointly with high probability (Peterson, "A posterior predictive approach to multiple
response surface optimization", J. Qual. Technol. 36 (2004) 431; "A Bayesian approach to the ICH Q8
definition of design space", J. Biopharm. Stat. 18 (2008) 959)::

    DS = { x : P(Y(x) ∈ A | x, data) ≥ prob },   A = the box of specs ∏_j [L_j, U_j]

where ``Y(x)`` is a **new** run at ``x`` drawn from the posterior predictive: parameter uncertainty,
the residual (correlated across responses) and, for a blocked model, a new block's effect. This is not
the overlay of mean-response contours, which ignores uncertainty: on the edge of an overlay region a
future run meets a spec only about half of the time, and less where several specs bind (Peterson 2008).

The stationary point comes from the canonical analysis of the fitted second-order surface, draw by
draw (Myers, Montgomery & Anderson-Cook, *Response Surface Methodology*, 4th ed., 2016, §6.3).

The proven acceptable range (PAR) of a factor is the ICH Q8(R2) glossary's "characterised range of a
process parameter for which operation within this range, **while keeping other parameters
constant**, will result in producing a material meeting relevant quality criteria": a
one-factor-at-a-time interval through a set point, here the interval around the set point over
which ``P(all in spec) ≥ prob``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from bioworkbench.errors import ConfigError
from bioworkbench.models.inputs import _check_prob, parse_specs
from bioworkbench.schema import suggest
from bioworkbench.terms import term_powers

__all__ = ["DesignSpace", "design_space", "optimum", "parse_specs"]

#: grid points above which a map is refused (the computation is points × posterior draws)
MAX_POINTS = 1_000_000
#: posterior draws × grid points per chunk (bounds the memory to a few arrays of this many doubles)
CHUNK_CELLS = 2_000_000


class DesignSpace:
    """A computed design space: the probability map, the region and proven acceptable ranges.

    Parameters
    ----------
    model
        The fitted :class:`~bioworkbench.models.ResponseSurface`.
    specs, prob, map, factors_on_grid, fixed
        As the attributes below.
    block
        The block the map was computed for (``None``: a new block).
    random_seed
        Seed of the residual draws.
    z
        The standard-normal residual draws, reused by :meth:`probability`.

    Attributes
    ----------
    map : pl.DataFrame
        One row per grid point: every factor (natural units; the fixed ones constant within a slice),
        ``prob`` = P(all responses with a spec within it) for a new run, ``mc_se`` = its Monte Carlo
        standard error, ``in_region`` = ``prob >= self.prob``.
    prob : float
        The probability a point needs to belong to the design space.
    specs : dict
        ``{response: (lower, upper)}`` used (``None`` = open side).
    factors_on_grid : list of str
        The factors varied over the grid; the others are held at :attr:`fixed`.
    fixed : dict
        ``{factor: value or list of values}`` of the factors not on the grid (a list gives slices).
    region_fraction : float
        Fraction of the grid points in the design space.
    """

    def __init__(
        self,
        model: Any,
        specs: dict[str, tuple[float | None, float | None]],
        prob: float,
        map: pl.DataFrame,
        factors_on_grid: list[str],
        fixed: dict[str, Any],
        block: Any,
        random_seed: int | None,
        z: np.ndarray,
    ) -> None:
        self.model = model
        self.specs = specs
        self.prob = prob
        self.map = map
        self.factors_on_grid = factors_on_grid
        self.fixed = fixed
        self.block = block
        self.random_seed = random_seed
        self._z = z

    @property
    def region_fraction(self) -> float:
        """Fraction of the grid points in the design space (0 for an empty map)."""
        return float(self.map["in_region"].mean()) if self.map.height else 0.0

    def __repr__(self) -> str:
        shape = "×".join(str(self.map[f].n_unique()) for f in self.factors_on_grid)
        fixed = "; " + ", ".join(f"{k} = {v}" for k, v in self.fixed.items()) if self.fixed else ""
        return (
            f"DesignSpace(P(all of {', '.join(self.specs)} in spec) ≥ {self.prob:g} on "
            f"{100 * self.region_fraction:.1f} % of a {shape} grid over {', '.join(self.factors_on_grid)}{fixed})"
        )

    def probability(self, settings: Any) -> pl.DataFrame:
        """P(all in spec) at arbitrary settings (natural units), with the same residual draws as the map.

        Returns the factor columns, ``prob`` and ``mc_se``.

        Parameters
        ----------
        settings
            A frame or mapping with one column per factor (natural units).

        Returns
        -------
        polars.DataFrame
            The factor columns, ``prob`` and ``mc_se``.
        """
        nat, Xm = self.model.settings_matrix(settings)
        p, se = _joint_probability(self.model, Xm, self.specs, self.block, self._z)
        return nat.with_columns(prob=pl.Series(p), mc_se=pl.Series(se))

    def set_point(self, point: Mapping[str, float] | None = None) -> dict[str, float]:
        """The set point: the grid point with the highest probability, or ``point`` completed.

        With ``point=None`` the grid point of highest ``prob`` (ties broken by the point nearest, in coded
        units, to the centroid of the tied points). A given ``point`` names factors; the others are
        taken from :attr:`fixed` (a single value) or the centre of their range.

        Parameters
        ----------
        point
            ``{factor: value}`` for some factors; ``None``: the best grid point.

        Returns
        -------
        dict
            ``{factor: value}`` for every factor, natural units.

        Raises
        ------
        ConfigError
            An empty map, an unknown factor, a factor with several fixed slices and no value named, or a value
            that is not a number.
        """
        factors = self.model.factors
        if point is None:
            m = self.map
            if m.height == 0:
                raise ConfigError("the design-space map is empty.")
            p = m["prob"].to_numpy()
            tied = np.flatnonzero(p >= p.max() - 1e-12)
            X = np.column_stack([m[f].to_numpy() for f in factors])
            lo = np.array([r[0] for r in factors.values()])
            hi = np.array([r[1] for r in factors.values()])
            Xc = (X[tied] - (lo + hi) / 2) / ((hi - lo) / 2)
            best = tied[int(np.argmin(((Xc - Xc.mean(axis=0)) ** 2).sum(axis=1)))]
            return {f: float(X[best, j]) for j, f in enumerate(factors)}
        unknown = [f for f in point if f not in factors]
        if unknown:
            raise ConfigError(
                f"set point names unknown factor(s) {', '.join(unknown)}. "
                + suggest(unknown[0], factors, what="Factors")
            )
        out = {}
        for f, (lo, hi) in factors.items():
            v = point.get(f, self.fixed.get(f, (lo + hi) / 2))
            if isinstance(v, (Sequence, np.ndarray)) and not isinstance(v, str):
                raise ConfigError(f"set point of {f!r}: the map has several slices of it ({list(v)}); name one value.")
            try:
                out[f] = float(v)
            except (TypeError, ValueError):
                raise ConfigError(f"set point of {f!r}: {v!r} is not a number.") from None
        return out

    def proven_acceptable_range(
        self, set_point: Mapping[str, float] | None = None, *, prob: float | None = None, n_points: int = 401
    ) -> pl.DataFrame:
        """One-factor-at-a-time proven acceptable range of every factor around a set point.

        Parameters
        ----------
        set_point
            ``{factor: value}`` (natural units), completed by :meth:`set_point`; default: the best grid point.
        prob
            Probability threshold (default: :attr:`prob`).
        n_points
            Points of the 1-D line over each factor's range (the set point is added to the line).

        Returns
        -------
        pl.DataFrame
            One row per factor: ``factor, set_point, lower, upper, prob, p_set_point, lower_limit,
            upper_limit, range_low, range_high, resolution``. ``lower, upper``: the outermost line points of
            the connected interval containing the set point where P(all in spec) ≥ ``prob`` with every
            other factor at the set point (conservative: the true limit lies within ``resolution``
            beyond them). ``lower_limit``/``upper_limit``: ``"range"`` when the interval reaches the end of
            the studied range (the data say nothing beyond), ``"probability"`` when the probability
            falls below ``prob``. Null limits when the set point itself has ``P < prob``.

        Raises
        ------
        ConfigError
            ``prob`` not between 0 and 1, ``n_points`` below 3, or an invalid set point (see :meth:`set_point`).

        Notes
        -----
        ICH Q8(R2) glossary: a PAR is "a characterised range of a process parameter for which operation
        within this range, while keeping other parameters constant, will result in producing a material
        meeting relevant quality criteria" — a one-factor-at-a-time range, not a multivariate region:
        moving several factors to the ends of their PARs at once may leave the design space. The
        probability along the line is computed like the map (same posterior and residual draws), on a
        line of ``n_points`` over ``[low, high]`` of the factor (extended to the set point if outside).
        """
        prob = self.prob if prob is None else prob
        if not 0 < prob < 1:
            raise ConfigError(f"prob must be between 0 and 1 (exclusive); got {prob!r}.")
        if int(n_points) < 3:
            raise ConfigError(f"n_points must be at least 3; got {n_points!r}.")
        sp = self.set_point(set_point)
        factors = self.model.factors
        lines, values = [], {}
        for f, (lo, hi) in factors.items():
            v = np.unique(np.append(np.linspace(min(lo, sp[f]), max(hi, sp[f]), int(n_points)), sp[f]))
            values[f] = v
            lines.append(pl.DataFrame({g: (v if g == f else np.full(v.size, sp[g])) for g in factors}))
        pr = self.probability(pl.concat(lines))["prob"].to_numpy()
        rows, start = [], 0
        for f, (lo, hi) in factors.items():
            v = values[f]
            p = pr[start : start + v.size]
            start += v.size
            i0 = int(np.flatnonzero(v == sp[f])[0])
            row = {
                "factor": f,
                "set_point": sp[f],
                "lower": None,
                "upper": None,
                "prob": prob,
                "p_set_point": float(p[i0]),
                "lower_limit": None,
                "upper_limit": None,
                "range_low": lo,
                "range_high": hi,
                "resolution": float((v[-1] - v[0]) / (int(n_points) - 1)),
            }
            if p[i0] >= prob:
                a = i0
                while a > 0 and p[a - 1] >= prob:
                    a -= 1
                b = i0
                while b < v.size - 1 and p[b + 1] >= prob:
                    b += 1
                row |= {
                    "lower": float(v[a]),
                    "upper": float(v[b]),
                    "lower_limit": "range" if a == 0 else "probability",
                    "upper_limit": "range" if b == v.size - 1 else "probability",
                }
            rows.append(row)
        return pl.DataFrame(
            rows,
            schema_overrides={
                "lower": pl.Float64,
                "upper": pl.Float64,
                "lower_limit": pl.String,
                "upper_limit": pl.String,
            },
        )


def optimum(model: Any, *, response: str | None = None, prob: float = 0.9) -> pl.DataFrame:
    """Stationary point of the fitted second-order surface and its kind, draw by draw.

    Parameters
    ----------
    model
        A fitted :class:`~bioworkbench.models.ResponseSurface`.
    response
        One response (default: every modelled response).
    prob
        Mass of the equal-tailed intervals.

    Returns
    -------
    pl.DataFrame
        One row per response and factor: ``response, kind, p_maximum, p_minimum, p_saddle, factor,
        mean, median, lower, upper, prob, inside_range, inside_region, value_mean, value_lower,
        value_upper``. ``kind`` is the most probable kind; ``mean .. upper`` describe the stationary
        point's coordinate (natural units); ``inside_range`` = P(that coordinate within the factor's
        range), ``inside_region`` = P(the whole point within every range); ``value_*`` = the mean
        response at the stationary point (natural units; with blocks, at the observed blocks' mean level).

    Raises
    ------
    ConfigError
        A model without second-order terms, or a factor of the model that has no quadratic or
        interaction term (the stationary point is then undefined along it), or an unknown response.

    Notes
    -----
    Canonical analysis (Myers, Montgomery & Anderson-Cook, *Response Surface Methodology*, 4th ed.,
    §6.3): in coded units ``ŷ(x) = b0 + xᵀb + xᵀBx`` with ``B_ii`` the coefficient of ``A_i^2`` and
    ``B_ij = B_ji`` half that of ``A_i:A_j``. The stationary point is ``x_s = −½ B⁻¹ b`` and
    ``ŷ(x_s) = b0 + ½ x_sᵀ b``; it is a maximum when every eigenvalue of ``B`` is negative, a minimum
    when every one is positive, a saddle otherwise. Computed for every posterior draw, so the kind
    has a probability and the point an interval. Near-zero eigenvalues (a ridge) make the point's
    draws heavy-tailed: read the median and the interval rather than the mean. The standardisation
    of the response is a positive scale, so it changes neither the point nor the kind.
    """
    model._require_fit()
    _check_prob(prob)
    factors, terms = list(model.factors), model.terms
    if not any(sum(term_powers(t, factors).values()) == 2 for t in terms):
        raise ConfigError(
            f"optimum needs a second-order model (terms like 'A^2' or 'A:B'); this model's terms are "
            f"{', '.join(terms)}. Fit with terms='quadratic'."
        )
    if any(sum(term_powers(t, factors).values()) > 2 for t in terms):
        raise ConfigError("optimum is defined for second-order models; this model has terms of order 3 or more.")
    scope = [f for f in factors if any(f in term_powers(t, factors) for t in terms)]
    fi = {f: i for i, f in enumerate(scope)}
    lin_idx, quad = {}, []
    for t, term in enumerate(terms):
        pw = term_powers(term, factors)
        if sum(pw.values()) == 1:
            lin_idx[fi[next(iter(pw))]] = t
        else:
            ij = [fi[f] for f in pw]
            quad.append((t, ij[0], ij[-1]))
    struct = np.zeros((len(scope), len(scope)))
    rng = np.random.default_rng(0)
    for _, i, j in quad:
        struct[i, j] = struct[j, i] = rng.uniform(1, 2)
    flat = [scope[i] for i in range(len(scope)) if not struct[i].any()]
    if flat or np.linalg.matrix_rank(struct) < len(scope):
        raise ConfigError(
            "the stationary point is undefined: "
            + (
                f"factor(s) {', '.join(flat)} enter the model only linearly; add " + ", ".join(f"'{f}^2'" for f in flat)
                if flat
                else "the second-order terms do not determine every factor (a ridge); add the pure quadratic terms"
            )
            + "."
        )
    responses = model.responses
    if response is not None:
        if response not in responses:
            raise ConfigError(
                f"response {response!r} was not modelled. " + suggest(response, responses, what="Responses")
            )
        responses = [response]
    post = model._post()
    y_mean, y_sd = model._scale()
    ranges = model.factors
    lo_n = np.array([ranges[f][0] for f in scope])
    hi_n = np.array([ranges[f][1] for f in scope])
    q = [(1 - prob) / 2, (1 + prob) / 2]
    rows = []
    for r in responses:
        j = model.responses.index(r)
        B = post["B"][:, j, :]
        S = B.shape[0]
        b = np.zeros((S, len(scope)))
        for i, t in lin_idx.items():
            b[:, i] = B[:, t]
        Bm = np.zeros((S, len(scope), len(scope)))
        for t, i, i2 in quad:
            if i == i2:
                Bm[:, i, i] = B[:, t]
            else:
                Bm[:, i, i2] = Bm[:, i2, i] = B[:, t] / 2
        xs = -0.5 * np.linalg.solve(Bm, b[..., None])[..., 0]
        ev = np.linalg.eigvalsh(Bm)
        p_max = float(np.mean(np.all(ev < 0, axis=1)))
        p_min = float(np.mean(np.all(ev > 0, axis=1)))
        p_sad = 1.0 - p_max - p_min
        kind = ["maximum", "minimum", "saddle"][int(np.argmax([p_max, p_min, p_sad]))]
        inside = np.abs(xs) <= 1.0
        value = y_mean[j] + y_sd[j] * (post["b0"][:, j] + 0.5 * np.einsum("si,si->s", xs, b))
        v_lo, v_hi = np.quantile(value, q)
        nat = xs * (hi_n - lo_n) / 2 + (hi_n + lo_n) / 2
        lo, hi = np.quantile(nat, q, axis=0)
        for i, f in enumerate(scope):
            rows.append(
                {
                    "response": r,
                    "kind": kind,
                    "p_maximum": p_max,
                    "p_minimum": p_min,
                    "p_saddle": p_sad,
                    "factor": f,
                    "mean": float(nat[:, i].mean()),
                    "median": float(np.median(nat[:, i])),
                    "lower": float(lo[i]),
                    "upper": float(hi[i]),
                    "prob": prob,
                    "inside_range": float(inside[:, i].mean()),
                    "inside_region": float(inside.all(axis=1).mean()),
                    "value_mean": float(value.mean()),
                    "value_lower": float(v_lo),
                    "value_upper": float(v_hi),
                }
            )
    return pl.DataFrame(rows)


def design_space(
    model: Any,
    specs: Any,
    *,
    grid: int | Mapping[str, int | Sequence[float]] = 50,
    prob: float = 0.9,
    fixed: Mapping[str, float | Sequence[float]] | None = None,
    block: Any = None,
    random_seed: int | None = None,
) -> DesignSpace:
    """Peterson's Bayesian design space of a fitted :class:`~bioworkbench.models.ResponseSurface`.

    Parameters
    ----------
    model
        A fitted ResponseSurface.
    specs
        ``{response: (lower, upper)}`` (``None`` for a one-sided spec) or a campaign ``specs`` frame
        (see :func:`parse_specs`). Responses without a spec are not constrained.
    grid
        Points per factor: an int ``n`` puts the first two factors not in ``fixed`` on an ``n × n`` grid
        over their ranges (one factor: a line); a mapping ``{factor: n or values}`` chooses the factors
        and their points (natural units).
    prob
        Probability that defines the region: ``in_region = P(all in spec) >= prob``.
    fixed
        ``{factor: value or values}`` for the factors not on the grid (default: the centre of their
        range). A list of values gives one slice per value (for more than two factors).
    block
        A block of the data to compute the design space for; default ``None``: a new block.
    random_seed
        Seed of the residual draws (two or more specified responses); the same seed gives the same map.

    Returns
    -------
    DesignSpace

    Raises
    ------
    ModelNotFittedError
        The model has no posterior.
    ConfigError
        Specs (see :func:`parse_specs`), an unknown grid or fixed factor (lists the factors), a factor
        both on the grid and fixed, a grid of fewer than 2 points per factor or of more than
        :data:`MAX_POINTS` points, ``prob`` outside (0, 1).

    Notes
    -----
    For every posterior draw ``s`` (``S`` draws) and grid point ``x`` the responses with a spec
    (standardised, ``d`` of them) of a new run are ``Y = μ_s(x) + L_s e`` with ``μ_s(x) = β0_s + B_s f(x)``
    and ``L_s`` the Cholesky factor of the predictive covariance ``Σ_s (+ diag τ_s²`` for a new block).
    Then ``P(x) = (1/S) Σ_s P(Y ∈ A | s)``, estimated by conditional Monte Carlo: one draw ``e_1..e_{d−1}``
    per posterior draw fixes the first ``d − 1`` responses (indicator of their specs) and the last is
    integrated exactly, ``Y_d | e ~ Normal(μ_d + Σ_{j<d} L_dj e_j, L_dd)``, so
    ``P(Y ∈ A | s, e) = 1[Y_1..d−1 ∈ A] · (Φ((U_d − m)/L_dd) − Φ((L_d − m)/L_dd))``. With one response
    this is exact given the draws (no residual sampling). The same ``e`` are used at every grid point
    (common random numbers: smooth maps, and the PAR lines agree with the map); ``mc_se`` is the
    standard deviation of the per-draw terms over ``√S`` (draws treated as independent). Computed in
    chunks of grid points with one matrix product per response: ``S × points`` values at a time.
    """
    model._require_fit()
    _check_prob(prob)
    specs = parse_specs(specs, model.responses)
    model._block_index(block)
    factors = model.factors
    fixed = dict(fixed or {})
    unknown = [f for f in fixed if f not in factors]
    if unknown:
        raise ConfigError(
            f"fixed names unknown factor(s) {', '.join(map(repr, unknown))}. "
            + suggest(str(unknown[0]), factors, what="Factors")
        )
    axes: dict[str, np.ndarray] = {}
    if isinstance(grid, Mapping):
        bad = [f for f in grid if f not in factors]
        if bad:
            raise ConfigError(
                f"grid names unknown factor(s) {', '.join(map(repr, bad))}. "
                + suggest(str(bad[0]), factors, what="Factors")
            )
        both = [f for f in grid if f in fixed]
        if both:
            raise ConfigError(f"factor(s) {', '.join(both)} are both on the grid and fixed; give each in one place.")
        for f, spec in grid.items():
            axes[f] = _axis(f, spec, factors[f])
    else:
        free = [f for f in factors if f not in fixed]
        if not free:
            raise ConfigError("every factor is fixed; leave at least one factor off fixed= to vary it over the grid.")
        for f in free[:2]:
            axes[f] = _axis(f, grid, factors[f])
    levels = {}
    for f, (lo, hi) in factors.items():
        if f in axes:
            levels[f] = axes[f]
        else:
            v = np.atleast_1d(np.asarray(fixed.get(f, (lo + hi) / 2), dtype=float))
            if v.ndim != 1 or not v.size or not np.all(np.isfinite(v)):
                raise ConfigError(f"fixed value of {f!r} must be a finite number or a list of them; got {fixed[f]!r}.")
            levels[f] = v
            fixed[f] = float(v[0]) if v.size == 1 else v.tolist()
    n = math.prod(v.size for v in levels.values())
    if n > MAX_POINTS:
        raise ConfigError(
            f"the grid has {n:,} points (more than {MAX_POINTS:,}); use fewer points per factor or fix more factors."
        )
    mesh = np.meshgrid(*levels.values(), indexing="ij")
    settings = pl.DataFrame({f: m.ravel() for f, m in zip(factors, mesh, strict=True)})
    _, Xm = model.settings_matrix(settings)
    d = len(specs)
    S = model._post()["b0"].shape[0]
    z = np.random.default_rng(random_seed).standard_normal((S, d - 1))
    p, se = _joint_probability(model, Xm, specs, block, z)
    out = settings.with_columns(prob=pl.Series(p), mc_se=pl.Series(se), in_region=pl.Series(p >= prob))
    return DesignSpace(
        model, specs, prob, out, list(axes), {f: fixed[f] for f in factors if f not in axes}, block, random_seed, z
    )


def _axis(f: str, spec: Any, rng: tuple[float, float]) -> np.ndarray:
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        if spec < 2:
            raise ConfigError(f"grid of {f!r}: at least 2 points; got {spec}.")
        return np.linspace(rng[0], rng[1], int(spec))
    try:
        v = np.asarray(spec, dtype=float)
    except (TypeError, ValueError):
        raise ConfigError(f"grid of {f!r}: give a number of points or a list of values; got {spec!r}.") from None
    if v.ndim != 1 or v.size < 1 or not np.all(np.isfinite(v)):
        raise ConfigError(f"grid of {f!r}: expected a 1-D list of finite values; got {spec!r}.")
    return v


def _joint_probability(
    model: Any, Xm: np.ndarray, specs: Mapping[str, tuple[float | None, float | None]], block: Any, z: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """P(every specified response within spec) for a new run at each row of the model matrix ``Xm``.

    See the Notes of :func:`design_space`. Returns ``(prob, mc_se)``, each ``(points,)``.
    """
    from scipy.special import ndtr

    post = model._post()
    responses = model.responses
    idx = [responses.index(r) for r in specs]
    y_mean, y_sd = model._scale()
    lo = np.array([-np.inf if specs[r][0] is None else specs[r][0] for r in specs], float)
    hi = np.array([np.inf if specs[r][1] is None else specs[r][1] for r in specs], float)
    lo = (lo - y_mean[idx]) / y_sd[idx]
    hi = (hi - y_mean[idx]) / y_sd[idx]
    bi = model._block_index(block)
    L = model.predictive_chol(new_block=bi is None, responses=idx)
    b0 = post["b0"][:, idx]
    if bi is not None:
        b0 = b0 + model.block_effects()[:, bi, idx]
    B = post["B"][:, idx, :]
    S, d = b0.shape
    # residual part fixed by e_1..e_{d-1}: response i gets sum_{j < d-1} L_ij e_j (L is lower-triangular)
    shift = b0 + (np.einsum("sij,sj->si", L[:, :, : d - 1], z) if d > 1 else 0.0)
    s_last = L[:, d - 1, d - 1][:, None]
    Bl = B[:, d - 1, :] / s_last
    c_lo = (lo[d - 1] - shift[:, d - 1, None]) / s_last
    c_hi = (hi[d - 1] - shift[:, d - 1, None]) / s_last
    n = Xm.shape[0]
    prob, se = np.empty(n), np.empty(n)
    step = max(1, CHUNK_CELLS // S)
    for a in range(0, n, step):
        Xt = np.ascontiguousarray(Xm[a : a + step].T)
        ok = None
        for i in range(d - 1):
            y = B[:, i, :] @ Xt
            y += shift[:, i, None]
            c = np.ones(y.shape, bool) if np.isinf(lo[i]) else y >= lo[i]
            if not np.isinf(hi[i]):
                c &= y <= hi[i]
            ok = c if ok is None else ok & c
        # last response integrated exactly; u = its standardised mean / L_dd, the limits shifted alike
        u = Bl @ Xt
        if np.isinf(lo[d - 1]):
            p = np.subtract(c_hi, u, out=u)
            ndtr(p, out=p)
        elif np.isinf(hi[d - 1]):
            p = np.subtract(u, c_lo, out=u)
            ndtr(p, out=p)
        else:
            q = np.subtract(c_lo, u)
            p = np.subtract(c_hi, u, out=u)
            ndtr(p, out=p)
            p -= ndtr(q, out=q)
        if ok is not None:
            p *= ok
        mean = p.sum(axis=0) / S
        prob[a : a + step] = mean
        se[a : a + step] = np.sqrt(np.maximum(np.einsum("sc,sc->c", p, p) / S - mean**2, 0.0) / S)
    return prob, se

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

__all__ = ["SET_POINT_METHODS", "DesignSpace", "SetPoint", "design_space", "optimum", "parse_specs"]

#: grid points above which a map is refused (the computation is points × posterior draws)
MAX_POINTS = 1_000_000
#: posterior draws × grid points per chunk (bounds the memory to a few arrays of this many doubles)
CHUNK_CELLS = 2_000_000
#: grid points of a map over every free factor (``grid=int``): fewer points per factor beyond two factors
AUTO_POINTS = 100_000
#: the set-point methods of :meth:`DesignSpace.set_point`
SET_POINT_METHODS = ("robust", "best")


class SetPoint(dict):
    """A set point: ``{factor: value}`` (natural units) plus how it was chosen.

    Parameters
    ----------
    values
        ``{factor: value}`` for every factor.
    method
        ``"robust"``, ``"best"`` or ``"given"``.
    prob
        P(all in spec) for a new run at the point.
    margin
        Coded distance from the point to the nearest edge of the design space or of the studied range
        (``"robust"``; NaN otherwise).
    on_boundary
        Factors at an end of their studied range.
    note
        What the point is, in plain words.
    """

    def __init__(
        self,
        values: Mapping[str, float],
        *,
        method: str,
        prob: float,
        margin: float = float("nan"),
        on_boundary: Sequence[str] = (),
        note: str = "",
    ) -> None:
        super().__init__(values)
        self.method = method
        self.prob = prob
        self.margin = margin
        self.on_boundary = list(on_boundary)
        self.note = note


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
    notes : list of str
        What the map covers: the factors on the grid and their points, the factors held and at what.
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
        shape = " × ".join(f"{self.map[f].n_unique()} ({f})" for f in factors_on_grid)
        self.notes = [f"grid of {shape} points over the studied ranges"] + (
            ["held: " + ", ".join(f"{k} = {v}" for k, v in fixed.items())] if fixed else []
        )

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

    def set_point(self, point: Mapping[str, float] | None = None, *, method: str = "robust") -> SetPoint:
        """The set point: the most robust point of the design space, the most probable one, or ``point`` completed.

        Parameters
        ----------
        point
            ``{factor: value}`` for some factors (the others from :attr:`fixed` or the centre of their
            range); ``None``: chosen by ``method``.
        method
            ``"robust"`` (default): the grid point of the design space farthest from its edge, where the edge
            is where the probability falls below :attr:`prob` **or** the studied range ends (distances in
            coded units, each factor's half-range being one unit); ties broken by the point nearest (coded)
            the centroid of the tied points.
            It lies on the boundary of the studied range only when the whole design space does, and
            :attr:`SetPoint.note` then says so. With an empty design space, the most probable point (and a
            note saying so). ``"best"``: the grid point of highest probability (ties: the one nearest the
            centroid of the tied points), which often sits on the edge of the region.

        Returns
        -------
        SetPoint
            ``{factor: value}`` for every factor (natural units), with ``method``, ``prob``, ``margin``,
            ``on_boundary`` and ``note``.

        Raises
        ------
        ConfigError
            An empty map, an unknown factor or method, a factor with several fixed slices and no value
            named, or a value that is not a number.

        Notes
        -----
        ``margin(x) = min(min_i (1 − |x_i|), min_{y ∉ DS} ‖x − y‖)`` over the grid points ``x`` in the design
        space (coded units; ``y`` the grid points outside it). It is the radius of the largest ball around
        ``x`` that stays in the design space and the studied ranges, known to within one grid step. The
        maximiser is the centre of the largest such ball (a Chebyshev centre of the region), the point
        where process variation of a given size is least likely to leave the design space.
        """
        factors = self.model.factors
        if point is not None:
            return SetPoint(self._complete(point), method="given", prob=float("nan"))
        if method not in SET_POINT_METHODS:
            raise ConfigError(f"method must be one of {', '.join(map(repr, SET_POINT_METHODS))}; got {method!r}.")
        m = self.map
        if m.height == 0:
            raise ConfigError("the design-space map is empty.")
        several = [f for f, v in self.fixed.items() if isinstance(v, list)]
        if several:
            raise ConfigError(
                f"the map has several slices of {', '.join(several)}; compute the design space with one value "
                "of each held factor to choose a set point."
            )
        names = list(factors)
        lo = np.array([r[0] for r in factors.values()])
        hi = np.array([r[1] for r in factors.values()])
        X = np.column_stack([m[f].to_numpy() for f in names])
        Xc = (X - (lo + hi) / 2) / ((hi - lo) / 2)
        p = m["prob"].to_numpy()
        inside = p >= self.prob
        grid = [names.index(f) for f in self.factors_on_grid]
        if method == "best" or not inside.any():
            tied = np.flatnonzero(p >= p.max() - 1e-12)
            best = tied[int(np.argmin(((Xc[tied] - Xc[tied].mean(axis=0)) ** 2).sum(axis=1)))]
            margin = float("nan")
        else:
            from scipy.spatial import cKDTree

            cand = np.flatnonzero(inside)
            edge = (1.0 - np.abs(Xc[np.ix_(cand, grid)])).min(axis=1)
            if (~inside).any():
                dist, _ = cKDTree(Xc[np.ix_(~inside, grid)]).query(Xc[np.ix_(cand, grid)])
                edge = np.minimum(edge, dist)
            top = np.flatnonzero(edge >= edge.max() - 1e-12)
            tied = Xc[cand[top]]
            best = cand[top[int(np.argmin(((tied - tied.mean(axis=0)) ** 2).sum(axis=1)))]]
            margin = float(edge.max())
        tol = 1e-9
        on_edge = [names[j] for j in grid if abs(abs(Xc[best, j]) - 1.0) <= tol]
        at = ", ".join(f"{f} = {X[best, j]:.4g}" for j, f in enumerate(names))
        if not inside.any():
            note = (
                f"No grid point reaches P ≥ {self.prob:g} (the design space is empty); the most probable point "
                f"is {at} (P = {p[best]:.2f}), which is not a set point the data support."
            )
        elif method == "best":
            note = f"The most probable grid point: {at} (P = {p[best]:.2f})."
        elif on_edge:
            note = (
                f"The whole design space lies on the edge of the studied range of {', '.join(on_edge)}: the set "
                f"point {at} (P = {p[best]:.2f}) is on that edge; the data say nothing beyond it. Extend the "
                "range in a follow-up design."
            )
        else:
            note = (
                f"Robust set point {at} (P = {p[best]:.2f}): the centre of the largest region around it that stays "
                f"in the design space and the studied ranges (radius {margin:.2f} coded units, i.e. "
                f"{100 * margin:.0f} % of each factor's half-range)."
            )
        return SetPoint(
            {f: float(X[best, j]) for j, f in enumerate(names)},
            method=method if inside.any() else "best",
            prob=float(p[best]),
            margin=margin,
            on_boundary=on_edge,
            note=note,
        )

    def _complete(self, point: Mapping[str, float]) -> dict[str, float]:
        """``point`` with the other factors taken from :attr:`fixed` or the centre of their range."""
        factors = self.model.factors
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
            ``{factor: value}`` (natural units), completed by :meth:`set_point`; default: the robust set
            point (:meth:`set_point`).
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
        sp = self.set_point(set_point) if set_point is not None else self.set_point()
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
        response at the stationary point (natural units; with blocks, at the observed blocks' mean level);
        ``eigenvalues`` = the posterior means of the eigenvalues of ``B`` (ascending, the response's units
        per coded unit squared); ``is_optimum`` = the stationary point is a maximum or a minimum with
        probability ≥ ``prob`` **and** lies inside the studied region with probability ≥ ``prob``;
        ``verdict`` says in words what the point is (a saddle, or a point outside the region, is not an
        optimum: use :meth:`ResponseSurface.optimize` for the best point within the region).

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
        p_in = float(inside.all(axis=1).mean())
        ev_mean = y_sd[j] * ev.mean(axis=0)
        verdict, is_opt = _verdict(kind, p_max, p_min, p_sad, p_in, ev_mean, prob)
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
                    "inside_region": p_in,
                    "value_mean": float(value.mean()),
                    "value_lower": float(v_lo),
                    "value_upper": float(v_hi),
                    "eigenvalues": ev_mean.tolist(),
                    "is_optimum": is_opt,
                    "verdict": verdict,
                }
            )
    return pl.DataFrame(rows)


def _verdict(
    kind: str, p_max: float, p_min: float, p_sad: float, p_in: float, ev: np.ndarray, prob: float
) -> tuple[str, bool]:
    """What a stationary point is, in words, and whether it is an optimum (see :func:`optimum`)."""
    evs = ", ".join(f"{e:.3g}" for e in ev)
    p_kind = max(p_max, p_min)
    if kind == "saddle":
        return (
            f"a saddle (P = {p_sad:.2f}; eigenvalues {evs} of mixed sign): the response rises in some "
            "directions and falls in others, so this point is not an optimum"
        ), False
    if p_kind < prob:
        return (
            f"probably a {kind} (P = {p_kind:.2f}, below {prob:g}; eigenvalues {evs}): "
            "the curvature is uncertain, so it is not an established optimum"
        ), False
    if p_in < prob:
        return (
            f"a {kind} (P = {p_kind:.2f}; eigenvalues {evs}) outside the studied region "
            f"(P(inside) = {p_in:.2f}): not an optimum the data support; the best point within the "
            "region lies on its boundary"
        ), False
    return f"a {kind} (P = {p_kind:.2f}; eigenvalues {evs}) inside the studied region", True


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
        Points per factor: an int ``n`` puts **every** factor not in ``fixed`` on a grid over its range,
        ``n`` points each for up to two factors and fewer beyond, so that the grid has at most
        :data:`AUTO_POINTS` points (``DesignSpace.notes`` states the grid); a mapping ``{factor: n or
        values}`` chooses the factors and their points (natural units), the others held.
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
        if isinstance(grid, (int, np.integer)) and not isinstance(grid, bool) and len(free) > 2:
            grid = max(2, min(int(grid), int(AUTO_POINTS ** (1 / len(free)) + 1e-9)))
        for f in free:
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
    return _joint_probability_fn(model, specs, block, z)(Xm)


def _joint_probability_fn(
    model: Any, specs: Mapping[str, tuple[float | None, float | None]], block: Any, z: np.ndarray
) -> Any:
    """:func:`_joint_probability` with everything that does not depend on the points computed once:
    returns ``f(Xm) -> (prob, mc_se)`` (optimisers call it for one point at a time)."""
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
    Bs = [np.ascontiguousarray(B[:, i, :]) for i in range(d - 1)]
    shifts = [shift[:, i, None] for i in range(d - 1)]
    return lambda Xm: _probability_chunks(Xm, Bs, shifts, lo, hi, Bl, c_lo, c_hi, S, ndtr)


def _probability_chunks(
    Xm: np.ndarray,
    Bs: list[np.ndarray],
    shifts: list[np.ndarray],
    lo: np.ndarray,
    hi: np.ndarray,
    Bl: np.ndarray,
    c_lo: np.ndarray,
    c_hi: np.ndarray,
    S: int,
    ndtr: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """The chunked evaluation of :func:`_joint_probability_fn` (see the Notes of :func:`design_space`)."""
    d = len(Bs) + 1
    n = Xm.shape[0]
    prob, se = np.empty(n), np.empty(n)
    step = max(1, CHUNK_CELLS // S)
    for a in range(0, n, step):
        Xt = np.ascontiguousarray(Xm[a : a + step].T)
        ok = None
        for i in range(d - 1):
            y = Bs[i] @ Xt
            y += shifts[i]
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

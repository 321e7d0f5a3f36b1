"""Figures of designed experiments and Quality by Design: designs, effects, response surfaces, the
design space and proven acceptable ranges (CPP impact and the relation graph:
:mod:`bioworkbench.plots.criticality`).

The objects drawn (a :class:`~bioworkbench.doe.Design`, a fitted response surface, a design space)
are recognised by what they offer, not imported: the plots sit below the models.

See :mod:`bioworkbench.plots` for the conventions shared by every plot.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from bioworkbench.checks import describe_type, require_frame, require_number
from bioworkbench.errors import ArgumentError, BioWorkbenchError, ConfigError, SchemaError
from bioworkbench.plots.base import (
    BAND,
    HIGHLIGHT,
    NEGATIVE,
    OTHERS,
    POSITIVE,
    require_name,
    require_names,
    require_result,
    require_size,
    setup,
    wrap_title,
)

__all__ = [
    "plot_design",
    "plot_design_space",
    "plot_effects",
    "plot_par",
    "plot_response_surface",
]


def _design_frame(design: Any, *, function: str) -> pl.DataFrame:
    """The runs of ``design``: a Design's ``frame``, or a polars or pandas frame as it is."""
    frame = getattr(design, "frame", design)
    if isinstance(frame, pl.DataFrame | pl.LazyFrame) or type(frame).__module__.startswith("pandas"):
        return require_frame(frame, function=function, argument="design")
    raise ArgumentError(
        f"{function}: design must be a bw.doe.Design or a frame with one column per factor; "
        f"got {describe_type(design)}."
    )


def plot_design(
    design: Any,
    *,
    factors: Sequence[str] | None = None,
    color: str = "point_type",
    width: int = 240,
    height: int = 240,
) -> Any:
    """The runs of a design in natural units: one scatter panel per pair of factors.

    Parameters
    ----------
    design
        A :class:`bioworkbench.doe.Design` (or its frame, or any frame with one column per factor).
    factors
        The factors to draw; by default the design's factors, else every numeric column not ending
        in ``_coded``.
    color
        Column the points are coloured by (the point type by default: factorial, axial, centre …),
        with a legend on the first panel; ignored when not a column.
    width, height
        Size of each panel in px.

    Returns
    -------
    holoviews.Layout
        Three panels per row; repeated runs (centre points) drawn once, the hover showing their count.

    Raises
    ------
    ArgumentError
        ``design`` is neither a Design nor a frame; ``factors`` is not a list of names.
    SchemaError
        A factor is not a column of the design.
    ConfigError
        Fewer than two factors.
    """
    fn = "plot_design"
    frame = _design_frame(design, function=fn)
    require_name(color, function=fn, argument="color")
    require_size(function=fn, width=width, height=height)
    if factors is None:
        factors = list(getattr(design, "factors", {})) or [
            c for c in frame.columns if c.endswith("_coded") is False and frame.schema[c].is_numeric()
        ]
    factors = require_names(factors, function=fn, argument="factors")
    require_frame(frame, function=fn, argument="design", columns=factors)
    if len(factors) < 2:
        raise ConfigError("plot_design needs at least two factors.")
    hv = setup()
    by = color if color in frame.columns else None
    keys = [*factors, *([by] if by else [])]
    counted = frame.group_by(keys).agg(runs=pl.len()).sort(keys)  # polars' group order varies run to run
    panels = []
    for i, a in enumerate(factors):
        for b in factors[i + 1 :]:
            panels.append(
                counted.hvplot.scatter(
                    x=a, y=b, by=by, hover_cols=["runs"], size=60, width=width, height=height, legend="right"
                ).opts(title="", show_legend=by is not None and not panels)
            )
    return hv.Layout(panels).cols(3).opts(shared_axes=False)


def plot_effects(effects: pl.DataFrame, *, response: str | None = None, width: int = 460) -> Any:
    """Coefficients of a response-surface model with their intervals, one panel per response.

    Parameters
    ----------
    effects
        :meth:`ResponseSurface.effects`: ``response, term, mean, lower, upper`` (and ``prob``); the
        ``Intercept`` term is left out.
    response
        Draw this response only; by default every response.
    width
        Width of each panel in px (the height grows with the number of terms).

    Returns
    -------
    holoviews.Layout
        Two panels per row. Terms whose interval excludes zero are drawn in colour (blue positive,
        red negative), others grey.

    Raises
    ------
    ArgumentError
        ``effects`` is not a frame; ``response`` is not a name.
    SchemaError
        A column is missing; no effects (of ``response``; the responses present are listed).
    """
    fn = "plot_effects"
    effects = require_frame(
        effects, function=fn, argument="effects", columns=("response", "term", "mean", "lower", "upper")
    )
    require_name(response, function=fn, argument="response", allow_none=True)
    require_size(function=fn, width=width)
    hv = setup()
    eff = effects if response is None else effects.filter(pl.col("response") == response)
    if eff.is_empty():
        raise SchemaError(
            f"plot_effects: no effects{f' for {response!r}' if response else ''}; responses: "
            f"{', '.join(effects['response'].unique().sort().to_list())}."
        )
    eff = eff.filter(pl.col("term") != "Intercept")
    panels = []
    for r in eff["response"].unique(maintain_order=True).to_list():
        e = eff.filter(pl.col("response") == r)
        e = e.with_columns(
            colour=pl.when(pl.col("lower") > 0)
            .then(pl.lit(POSITIVE))
            .when(pl.col("upper") < 0)
            .then(pl.lit(NEGATIVE))
            .otherwise(pl.lit(OTHERS))
        )
        terms = e["term"].to_list()
        segs = hv.Segments(
            {
                "lower": e["lower"].to_numpy(),
                "term": terms,
                "upper": e["upper"].to_numpy(),
                "term_end": terms,
                "colour": e["colour"].to_list(),
            },
            kdims=["lower", "term", "upper", "term_end"],
            vdims=["colour"],
        ).opts(color="colour", line_width=3)
        pts = hv.Scatter(
            {"mean": e["mean"].to_numpy(), "term": terms, "colour": e["colour"].to_list()},
            kdims=["mean"],
            vdims=["term", "colour"],
        ).opts(color="colour", size=7, tools=["hover"])
        prob = float(e["prob"][0]) if "prob" in e.columns else None
        title = r
        panels.append(
            (hv.VLine(0).opts(color="black", line_dash="dashed") * segs * pts)
            .opts(
                hv.opts.Overlay(
                    title=wrap_title(title, width),
                    width=width,
                    height=max(180, 24 * len(terms) + 70),
                    xlabel="change per half range" + (f" ({prob:.0%} interval)" if prob else ""),
                    ylabel="term",
                )
            )
            .redim.values(term=terms[::-1])
        )
    return hv.Layout(panels).cols(2).opts(shared_axes=False)


def _grid_image(hv: Any, x: np.ndarray, y: np.ndarray, z: np.ndarray, kdims: list[str], vdim: str) -> Any:
    """An image of ``z`` (len(y) × len(x)) on the regular grid ``x``, ``y`` (cell centres)."""
    return hv.Image((x, y, z), kdims=kdims, vdims=[vdim])


def plot_response_surface(
    model: Any,
    *,
    response: str | None = None,
    x: str | None = None,
    y: str | None = None,
    fixed: Mapping[str, float] | None = None,
    data: pl.DataFrame | None = None,
    n: int = 40,
    width: int = 380,
    height: int = 320,
) -> Any:
    """Posterior-mean response over two factors (others fixed at their centre or ``fixed``), with
    contour lines and the design points.

    Parameters
    ----------
    model
        A fitted :class:`~bioworkbench.models.ResponseSurface` (its ``factors``, ``responses`` and
        ``draws`` are used).
    response
        The response; by default the first modelled.
    x, y
        The factors on the axes; by default the first two.
    fixed
        Values of the other factors; by default the centre of their range.
    data
        Design points drawn in black (columns ``x``, ``y`` and, for the hover, ``batch_id``).
    n
        Grid points per axis.
    width, height
        Size in px.

    Returns
    -------
    holoviews.Overlay
        Image with a colour bar, 8 contour lines and the points; titled with the response.

    Raises
    ------
    ArgumentError
        ``model`` is not a response-surface model; a name or number is not one.
    ConfigError
        ``response`` was not modelled; ``x`` and ``y`` are not two different factors.

    Notes
    -----
    The image is the posterior mean of the modelled mean response on an ``n × n`` grid spanning
    each factor's range.
    """
    fn = "plot_response_surface"
    model = require_result(
        model,
        ("factors", "responses", "draws"),
        function=fn,
        argument="model",
        expected="a fitted response-surface model (bw.models.ResponseSurface)",
    )
    require_name(response, function=fn, argument="response", allow_none=True)
    require_name(x, function=fn, argument="x", allow_none=True)
    require_name(y, function=fn, argument="y", allow_none=True)
    if data is not None:
        data = require_frame(data, function=fn, argument="data")
    require_number(n, function=fn, argument="n", minimum=2, integer=True)
    require_size(function=fn, width=width, height=height)
    hv = setup()
    from holoviews.operation import contours

    factors = dict(model.factors)
    names = list(factors)
    response = response or model.responses[0]
    if response not in model.responses:
        raise ConfigError(f"plot_response_surface: {response!r} was not modelled; responses: {model.responses}.")
    x = x or names[0]
    y = y or (names[1] if len(names) > 1 else None)
    if y is None or x not in factors or y not in factors or x == y:
        raise ConfigError(f"plot_response_surface needs two different factors among {names}; got x={x!r}, y={y!r}.")
    base = {f: (lo + hi) / 2 for f, (lo, hi) in factors.items()} | dict(fixed or {})
    xs = np.linspace(*factors[x], n)
    ys = np.linspace(*factors[y], n)
    gx, gy = np.meshgrid(xs, ys)
    settings = pl.DataFrame({f: np.full(gx.size, v, dtype=float) for f, v in base.items()}).with_columns(
        pl.Series(x, gx.ravel()), pl.Series(y, gy.ravel())
    )
    j = list(model.responses).index(response)
    mean = np.asarray(model.draws(settings, kind="mean"))[..., j].mean(axis=0).reshape(n, n)
    img = _grid_image(hv, xs, ys, mean, [x, y], response).opts(
        cmap="viridis", colorbar=True, width=width, height=height, tools=["hover"]
    )
    plot = img * contours(img, levels=8).opts(color="white", line_width=1, show_legend=False)
    if data is not None and x in data.columns and y in data.columns:
        label = "batch_id" if "batch_id" in data.columns else None
        pts = data.select(x, y, *([label] if label else []))
        plot = plot * hv.Points(pts, kdims=[x, y], vdims=[label] if label else []).opts(
            color="black", size=6, marker="circle", tools=["hover"]
        )
    others = ", ".join(f"{k} = {v:g}" for k, v in base.items() if k not in (x, y))
    title = wrap_title(f"{response}: posterior mean", width, margin=170)  # room for the colour bar
    return plot.opts(title=title, xlabel=f"{x} ({others})" if others else x)


def plot_design_space(
    space: Any,
    *,
    x: str | None = None,
    y: str | None = None,
    set_point: Mapping[str, float] | None = None,
    slices: Mapping[str, Sequence[float]] | None = None,
    width: int = 420,
    height: int = 340,
) -> Any:
    """The probability that every CQA meets its spec, over two CPPs, with the design-space boundary
    (the contour at the required probability) and the set point.

    Parameters
    ----------
    space
        A :class:`~bioworkbench.models.DesignSpace`: ``.map`` with one column per grid factor,
        ``prob`` and ``in_region``; ``.prob`` the required probability; ``.set_point()``.
    x, y
        The factors on the axes; by default the first two grid factors. With one grid factor, a
        line of the probability along it.
    set_point
        The point marked with a star; by default the space's own set point (none when no point of
        the grid is feasible).
    slices
        ``{factor: values}`` of the other grid factors to draw one panel each (the grid levels nearest
        the values); by default each other grid factor at its low end, at the set point and at its
        high end (three levels at most, so a map over three or more factors stays readable).
    width, height
        Size of each panel in px.

    Returns
    -------
    holoviews.Overlay or holoviews.Layout
        One map, or with more than two grid factors one panel per level of the others (slices).

    Raises
    ------
    ArgumentError
        ``space`` is not a design space; a name is not one.
    SchemaError
        A column of the map is missing.
    """
    fn = "plot_design_space"
    space = require_result(
        space, ("map", "prob"), function=fn, argument="space", expected="a design space (bw.models.DesignSpace)"
    )
    require_name(x, function=fn, argument="x", allow_none=True)
    require_name(y, function=fn, argument="y", allow_none=True)
    require_size(function=fn, width=width, height=height)
    m = require_frame(space.map, function=fn, argument="space.map", columns=("prob",))
    hv = setup()
    from holoviews.operation import contours

    grid = list(getattr(space, "factors_on_grid", [c for c in m.columns if c not in ("prob", "in_region")]))
    x = x or grid[0]
    y = y or (grid[1] if len(grid) > 1 else None)
    require_frame(m, function=fn, argument="space.map", columns=[c for c in (x, y) if c is not None])
    if y is None:
        d = m.sort(x)
        return (
            d.hvplot.line(x=x, y="prob", color=BAND, width=width, height=height, ylim=(0, 1.02))
            * hv.HLine(space.prob).opts(color=HIGHLIGHT, line_dash="dashed")
        ).opts(title=wrap_title(f"P(all CQAs in spec) along {x}", width))
    rest = [g for g in grid if g not in (x, y)]
    sp = dict(set_point) if set_point is not None else _set_point(space)
    levels = {}
    for g in rest:
        have = np.sort(m[g].unique().to_numpy())
        want = (slices or {}).get(g)
        if want is None:
            want = [have[0], *([sp[g]] if sp and g in sp else []), have[-1]]
        levels[g] = sorted({float(have[np.argmin(np.abs(have - float(v)))]) for v in want})
    combos = [dict(zip(rest, c, strict=True)) for c in itertools.product(*levels.values())] if rest else [{}]
    panels = []
    for level in combos:
        d = m
        for k, v in level.items():
            d = d.filter(pl.col(k) == v)
        xs = np.sort(d[x].unique().to_numpy())
        ys = np.sort(d[y].unique().to_numpy())
        z = d.sort(y, x)["prob"].to_numpy().reshape(len(ys), len(xs))
        img = _grid_image(hv, xs, ys, z, [x, y], "prob").opts(
            cmap="RdYlGn", clim=(0, 1), colorbar=True, width=width, height=height, tools=["hover"]
        )
        plot = img * contours(img, levels=[space.prob]).opts(color="black", line_width=2, show_legend=False)
        if sp and x in sp and y in sp:
            plot = plot * hv.Points([(sp[x], sp[y])], kdims=[x, y]).opts(
                color="white", line_color="black", size=12, marker="star"
            )
        where = ", ".join(f"{k} = {v:g}" for k, v in level.items())
        title = f"P(all CQAs in spec); black line: {space.prob:.0%}" + (f" — {where}" if where else "")
        panels.append(plot.opts(title=wrap_title(title, width, margin=170)))  # room for the colour bar
    return hv.Layout(panels).cols(2).opts(shared_axes=False) if len(panels) > 1 else panels[0]


def _set_point(space: Any) -> dict[str, float] | None:
    try:
        sp = space.set_point()
    except BioWorkbenchError:  # a design space without any feasible point has no set point
        return None
    if isinstance(sp, pl.DataFrame):
        return sp.row(0, named=True)
    return dict(sp) if sp is not None else None


def plot_par(par: pl.DataFrame, *, factors: Mapping[str, tuple[float, float]], width: int = 460) -> Any:
    """Proven acceptable ranges: per factor, its studied range (grey), the PAR (coloured) and the set
    point (black tick).

    Parameters
    ----------
    par
        :meth:`DesignSpace.proven_acceptable_range`: one row per factor with ``factor, lower, upper``
        (and ``set_point``, drawn where not null).
    factors
        The studied range ``(low, high)`` of every factor of ``par``.
    width
        Width in px (the height grows with the number of factors).

    Returns
    -------
    holoviews.Overlay
        Each factor on its own coded axis (−1 low, +1 high), the PAR's natural limits written beside it.

    Raises
    ------
    ArgumentError
        ``par`` is not a frame; ``factors`` is not a mapping that holds every factor of ``par``.
    SchemaError
        A column is missing; no row.

    Notes
    -----
    Coded value: ``(v − (lo + hi)/2) / ((hi − lo)/2)``.
    """
    fn = "plot_par"
    par = require_frame(par, function=fn, argument="par", columns=("factor", "lower", "upper"))
    require_size(function=fn, width=width)
    if not isinstance(factors, Mapping) or (unknown := sorted(set(par["factor"].to_list()) - set(factors))):
        what = describe_type(factors) if not isinstance(factors, Mapping) else f"no range of {', '.join(unknown)}"
        raise ArgumentError(f"{fn}: factors must map every factor of par to its (low, high) range; got {what}.")
    hv = setup()
    if par.is_empty():
        raise SchemaError("plot_par: no proven acceptable ranges to draw.")
    rows = list(par.iter_rows(named=True))
    labels = [r["factor"] for r in rows]

    # each factor on its own coded axis so factors of different units share one panel
    def coded(f: str, v: float) -> float:
        lo, hi = factors[f]
        return (v - (lo + hi) / 2) / ((hi - lo) / 2)

    rng = hv.Segments([(-1, f, 1, f) for f in labels], kdims=["x0", "factor", "x1", "factor_end"]).opts(
        color=OTHERS, line_width=14, alpha=0.5
    )
    good = [r for r in rows if r["lower"] is not None and r["upper"] is not None]
    parseg = hv.Segments(
        [(coded(r["factor"], r["lower"]), r["factor"], coded(r["factor"], r["upper"]), r["factor"]) for r in good],
        kdims=["x0", "factor", "x1", "factor_end"],
    ).opts(color=BAND, line_width=14)
    sp = hv.Scatter(
        [(coded(r["factor"], r["set_point"]), r["factor"]) for r in rows if r.get("set_point") is not None],
        kdims=["coded"],
        vdims=["factor"],
    ).opts(color="black", marker="dash", size=22, angle=90)
    text = hv.Overlay(
        [hv.Text(1.05, r["factor"], f"{r['lower']:.4g} – {r['upper']:.4g}", halign="left", fontsize=9) for r in good]
    )
    return (rng * parseg * sp * text).opts(
        hv.opts.Overlay(
            title="PAR (blue) in the studied range (grey)",
            width=width,
            height=max(160, 40 * len(labels) + 80),
            xlabel="coded factor (−1 = low, +1 = high)",
            ylabel="",
            xlim=(-1.3, 2.0),
        )
    )

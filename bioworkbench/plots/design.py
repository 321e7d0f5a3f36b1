"""Figures of designed experiments and Quality by Design: designs, effects, response surfaces, the
design space, proven acceptable ranges, CPP impact and the CPP → in-process → CQA relation graph."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from bioworkbench.errors import BioWorkbenchError, ConfigError, SchemaError
from bioworkbench.plots.batches import BAND, HIGHLIGHT, OTHERS, _title, setup

__all__ = [
    "plot_cpp_impact",
    "plot_design",
    "plot_design_space",
    "plot_effects",
    "plot_par",
    "plot_relation_graph",
    "plot_response_surface",
]

POSITIVE = "#1f77b4"
NEGATIVE = "#d62728"


def _frame(obj: Any) -> pl.DataFrame:
    frame = getattr(obj, "frame", obj)
    if not isinstance(frame, pl.DataFrame):
        frame = pl.from_pandas(frame) if hasattr(frame, "to_numpy") else pl.DataFrame(frame)
    return frame


def plot_design(
    design: Any,
    *,
    factors: Sequence[str] | None = None,
    color: str = "point_type",
    width: int = 240,
    height: int = 240,
) -> Any:
    """The runs of a design in natural units: one scatter panel per pair of factors.

    ``design`` is a :class:`bioworkbench.doe.Design` (or its frame, or any frame with one column per
    factor). Points are coloured by ``color`` (the point type by default: factorial, axial, centre …);
    repeated runs (centre points) are drawn once with the hover showing their count.
    """
    hv = setup()
    frame = _frame(design)
    if factors is None:
        factors = list(getattr(design, "factors", {})) or [
            c for c in frame.columns if c.endswith("_coded") is False and frame.schema[c].is_numeric()
        ]
    factors = list(factors)
    missing = [f for f in factors if f not in frame.columns]
    if missing:
        raise SchemaError(f"plot_design: factor column(s) {', '.join(missing)} not in the design.")
    if len(factors) < 2:
        raise ConfigError("plot_design needs at least two factors.")
    by = color if color in frame.columns else None
    keys = [*factors, *([by] if by else [])]
    counted = frame.group_by(keys).agg(runs=pl.len())
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

    ``effects`` is :meth:`ResponseSurface.effects`: ``response, term, mean, lower, upper, prob``.
    Terms whose interval excludes zero are drawn in colour (blue positive, red negative), others grey.
    """
    hv = setup()
    eff = effects if response is None else effects.filter(pl.col("response") == response)
    if eff.is_empty():
        raise SchemaError(
            f"plot_effects: no effects{f' for {response!r}' if response else ''}; responses: "
            f"{', '.join(effects['response'].unique().sort().to_list())}."
        )
    eff = eff.filter(pl.col("term") != "Intercept") if "term" in eff.columns else eff
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
                    title=_title(title, width),
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

    ``model`` is a fitted :class:`~bioworkbench.models.ResponseSurface`.
    """
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
    title = _title(f"{response}: posterior mean", width, margin=170)  # room for the colour bar
    return plot.opts(title=title, xlabel=f"{x} ({others})" if others else x)


def plot_design_space(
    space: Any,
    *,
    x: str | None = None,
    y: str | None = None,
    set_point: Mapping[str, float] | None = None,
    width: int = 420,
    height: int = 340,
) -> Any:
    """The probability that every CQA meets its spec, over two CPPs, with the design-space boundary
    (the contour at the required probability) and the set point.

    ``space`` is a :class:`~bioworkbench.models.DesignSpace` (``.map`` with one column per grid
    factor, ``prob`` and ``in_region``; ``.prob`` the required probability). With more than two grid
    factors, one panel per level of the third factor (slices).
    """
    hv = setup()
    from holoviews.operation import contours

    m = space.map
    grid = list(getattr(space, "factors_on_grid", [c for c in m.columns if c not in ("prob", "in_region")]))
    x = x or grid[0]
    y = y or (grid[1] if len(grid) > 1 else None)
    if y is None:
        d = m.sort(x)
        return (
            d.hvplot.line(x=x, y="prob", color=BAND, width=width, height=height, ylim=(0, 1.02))
            * hv.HLine(space.prob).opts(color=HIGHLIGHT, line_dash="dashed")
        ).opts(title=_title(f"P(all CQAs in spec) along {x}", width))
    rest = [g for g in grid if g not in (x, y)]
    slices = m.select(rest).unique().sort(rest).iter_rows(named=True) if rest else [{}]
    sp = dict(set_point) if set_point is not None else _set_point(space)
    panels = []
    for level in slices:
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
        panels.append(plot.opts(title=_title(title, width, margin=170)))  # room for the colour bar
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

    ``par`` is :meth:`DesignSpace.proven_acceptable_range`: one row per factor with ``factor, lower,
    upper`` and ``set_point``.
    """
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


def plot_cpp_impact(impact: pl.DataFrame, *, threshold: float = 0.2, width: int = 420) -> Any:
    """CPP impact ratios with their intervals, per CQA, ranked; the criticality threshold dashed.

    ``impact`` is :func:`bioworkbench.criticality.cpp_impact`.
    """
    hv = setup()
    if impact.is_empty():
        raise SchemaError("plot_cpp_impact: no impact rows to draw.")
    panels = []
    for r in impact["response"].unique(maintain_order=True).to_list():
        d = impact.filter(pl.col("response") == r).sort("rank")
        names = d["factor"].to_list()
        colour = [HIGHLIGHT if c else BAND for c in d["critical"].to_list()]
        segs = hv.Segments(
            {
                "lower": d["lower"].to_numpy(),
                "factor": names,
                "upper": d["upper"].to_numpy(),
                "factor_end": names,
                "colour": colour,
            },
            kdims=["lower", "factor", "upper", "factor_end"],
            vdims=["colour"],
        ).opts(color="colour", line_width=3)
        pts = hv.Scatter(
            {
                "ratio": d["impact_ratio"].to_numpy(),
                "factor": names,
                "p_critical": d["p_critical"].to_numpy(),
                "colour": colour,
            },
            kdims=["ratio"],
            vdims=["factor", "p_critical", "colour"],
        ).opts(color="colour", size=8, tools=["hover"])
        panels.append(
            (hv.VLine(threshold).opts(color="black", line_dash="dashed") * segs * pts)
            .opts(
                hv.opts.Overlay(
                    title=_title(str(r), width),
                    width=width,
                    height=max(160, 30 * len(names) + 80),
                    xlabel="impact over the range / spec width (red: critical)",
                    ylabel="",
                )
            )
            .redim.values(factor=names[::-1])
        )
    return hv.Layout(panels).cols(2).opts(shared_axes=False)


def plot_relation_graph(
    edges: pl.DataFrame,
    *,
    only_clear: bool = False,
    width: int = 720,
    height: int = 420,
) -> Any:
    """The CPP → in-process variable → CQA graph: nodes in three columns, edges by strength.

    ``edges`` is :func:`bioworkbench.criticality.relation_graph`. Edge width grows with ``|strength|``,
    blue for a positive and red for a negative effect; dashed and faint when the interval includes zero
    (hidden with ``only_clear``). Hovering an edge shows its strength and interval.
    """
    hv = setup()
    if edges.is_empty():
        raise SchemaError("plot_relation_graph: no edges to draw.")
    e = edges.filter(pl.col("clear")) if only_clear else edges
    layer = {"cpp": 0.0, "intermediate": 1.0, "cqa": 2.0}
    nodes: dict[str, str] = {}
    for r in edges.iter_rows(named=True):
        nodes.setdefault(r["source"], r["source_kind"])
        nodes.setdefault(r["target"], r["target_kind"])
    pos: dict[str, tuple[float, float]] = {}
    for kind, xpos in layer.items():
        members = [n for n, k in nodes.items() if k == kind]
        for i, n in enumerate(members):
            pos[n] = (xpos, (len(members) - 1) / 2 - i)
    if not any(k == "intermediate" for k in nodes.values()):
        pos = {n: (1.0 if nodes[n] == "cqa" else 0.0, y) for n, (_, y) in pos.items()}
    curves = []
    for r in e.iter_rows(named=True):
        (x0, y0), (x1, y1) = pos[r["source"]], pos[r["target"]]
        n = 2
        curves.append(
            hv.Curve(
                {
                    "x": [x0, x1],
                    "y": [y0, y1],
                    "edge": [f"{r['source']} → {r['target']}"] * n,
                    "strength": [round(r["strength"], 3)] * n,
                    "interval": [f"{r['lower']:.2f} to {r['upper']:.2f} ({r['prob']:.0%})"] * n,
                },
                kdims=["x"],
                vdims=["y", "edge", "strength", "interval"],
            ).opts(
                color=POSITIVE if r["strength"] > 0 else NEGATIVE,
                line_width=1 + 7 * min(abs(r["strength"]), 1.0),
                alpha=0.9 if r["clear"] else 0.25,
                line_dash="solid" if r["clear"] else "dashed",
                tools=["hover"],
            )
        )
    lines = hv.Overlay(curves)
    kinds = {"cpp": "CPP", "intermediate": "in-process", "cqa": "CQA"}
    pts = hv.Points(
        [(pos[n][0], pos[n][1], n, kinds[k]) for n, k in nodes.items()], kdims=["x", "y"], vdims=["node", "kind"]
    ).opts(color="kind", cmap={"CPP": "#ff7f0e", "in-process": "#9467bd", "CQA": "#2ca02c"}, size=18)
    labels = hv.Labels([(pos[n][0], pos[n][1] - 0.28, n) for n in nodes], kdims=["x", "y"], vdims=["text"]).opts(
        text_font_size="9pt"
    )
    return (lines * pts * labels).opts(
        hv.opts.Overlay(
            title="Standardised effects (blue +, red −; faint: interval includes 0)",
            xlim=(-0.6, 2.6) if any(k == "intermediate" for k in nodes.values()) else (-0.6, 1.6),
            ylim=(min(y for _, y in pos.values()) - 0.6, max(y for _, y in pos.values()) + 0.4),
            width=width,
            height=height,
            xaxis=None,
            yaxis=None,
            show_legend=True,
            legend_position="right",
        )
    )

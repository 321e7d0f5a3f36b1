"""Figures of criticality: the impact of each CPP on each CQA with its interval, and the
CPP → in-process variable → CQA relation graph.

The frames come from :mod:`bioworkbench.criticality` (``cpp_impact``, ``relation_graph``); the plots
draw them and compute nothing.

See :mod:`bioworkbench.plots` for the conventions shared by every plot.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from bioworkbench.checks import require_frame, require_number
from bioworkbench.errors import SchemaError
from bioworkbench.plots.base import BAND, HIGHLIGHT, NEGATIVE, POSITIVE, require_size, setup, wrap_title

__all__ = ["plot_cpp_impact", "plot_relation_graph"]


def plot_cpp_impact(impact: pl.DataFrame, *, threshold: float = 0.2, width: int = 420) -> Any:
    """CPP impact ratios with their intervals, per CQA, ranked; the criticality threshold dashed.

    Parameters
    ----------
    impact
        :func:`bioworkbench.criticality.cpp_impact`: ``response, factor, rank, impact_ratio, lower,
        upper, p_critical, critical``.
    threshold
        The impact ratio above which a CPP is critical (a dashed line).
    width
        Width of each panel in px (the height grows with the number of factors).

    Returns
    -------
    holoviews.Layout
        One panel per CQA, two per row; critical CPPs in red.

    Raises
    ------
    ArgumentError
        ``impact`` is not a frame; ``threshold`` is not a number.
    SchemaError
        A column is missing; no row.
    """
    fn = "plot_cpp_impact"
    impact = require_frame(
        impact,
        function=fn,
        argument="impact",
        columns=("response", "factor", "rank", "impact_ratio", "lower", "upper", "p_critical", "critical"),
    )
    require_number(threshold, function=fn, argument="threshold", minimum=0)
    require_size(function=fn, width=width)
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
                    title=wrap_title(str(r), width),
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

    Parameters
    ----------
    edges
        :func:`bioworkbench.criticality.relation_graph`: ``source, target, source_kind, target_kind,
        strength, lower, upper, prob, clear``.
    only_clear
        Hide the edges whose interval includes zero.
    width, height
        Size in px.

    Returns
    -------
    holoviews.Overlay
        Edge width grows with ``|strength|`` (``1 + 7 · min(|strength|, 1)`` px), blue for a positive
        and red for a negative effect, dashed and faint when the interval includes zero. Hovering an
        edge shows its strength and interval.

    Raises
    ------
    ArgumentError
        ``edges`` is not a frame.
    SchemaError
        A column is missing; no edge.
    """
    fn = "plot_relation_graph"
    edges = require_frame(
        edges,
        function=fn,
        argument="edges",
        columns=("source", "target", "source_kind", "target_kind", "strength", "lower", "upper", "prob", "clear"),
    )
    require_size(function=fn, width=width, height=height)
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

"""Figures of designs, effects, response surfaces, design space, PAR, CPP impact and the relation graph."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import polars as pl
import pytest

import bioworkbench as bw
from bioworkbench import criticality as cr
from bioworkbench.errors import ConfigError, SchemaError
from tests.test_criticality import FACTORS, LinearSurface, _chain


def _render(obj):
    return hv.render(obj, backend="bokeh")


def test_relation_graph_draws_one_line_per_edge_coloured_by_sign_and_faint_when_unclear():
    e = cr.relation_graph(_chain(), cpps=["x1", "x2", "x3"], intermediates=["m"], cqas=["y"])
    fig = bw.plots.plot_relation_graph(e)
    _render(fig)
    curves = [el for el in fig.traverse(lambda x: x, [hv.Curve])]
    assert len(curves) == e.height
    opts = {c.dimension_values("edge")[0]: hv.Store.lookup_options("bokeh", c, "style").kwargs for c in curves}
    assert opts["x2 → y"]["color"] == "#d62728" and opts["x1 → m"]["color"] == "#1f77b4"
    assert opts["x3 → y"]["alpha"] < opts["x1 → m"]["alpha"]
    only = bw.plots.plot_relation_graph(e, only_clear=True)
    assert len(only.traverse(lambda x: x, [hv.Curve])) == e["clear"].sum()


def test_cpp_impact_effects_surface_and_design_plots_render():
    m = LinearSurface(FACTORS, {"titer": [300.0, -50.0]}, {"titer": 4000.0}, spread=20)
    imp = cr.cpp_impact(m, {"titer": (3000.0, None)})
    _render(bw.plots.plot_cpp_impact(imp))
    surface = bw.plots.plot_response_surface(m, response="titer", n=12)
    img = surface.traverse(lambda x: x, [hv.Image])[0]
    # the posterior-mean surface rises with temp (coefficient 300 per coded unit)
    z = img.dimension_values(2, flat=False)
    assert z[:, -1].mean() - z[:, 0].mean() == pytest.approx(600, rel=0.05)
    with pytest.raises(ConfigError, match="was not modelled"):
        bw.plots.plot_response_surface(m, response="aggregates")
    eff = pl.DataFrame(
        {
            "response": ["titer"] * 2,
            "term": ["temp", "ph"],
            "mean": [1.0, -2.0],
            "lower": [0.5, -3],
            "upper": [1.5, -1],
            "prob": [0.9] * 2,
        }
    )
    _render(bw.plots.plot_effects(eff))
    with pytest.raises(SchemaError, match="responses: titer"):
        bw.plots.plot_effects(eff, response="aggregates")
    d = pl.DataFrame(
        {
            "temp": [34.0, 37, 34, 37, 35.5, 35.5],
            "ph": [6.9, 6.9, 7.1, 7.1, 7.0, 7.0],
            "feed": [3.0, 5, 5, 3, 4, 4],
            "point_type": ["factorial"] * 4 + ["center"] * 2,
        }
    )
    fig = bw.plots.plot_design(d, factors=["temp", "ph", "feed"])
    assert len(fig) == 3  # three pairs of factors
    _render(fig)


class _Space:
    def __init__(self):
        xs, ys = np.linspace(34, 37, 30), np.linspace(6.9, 7.1, 25)
        gx, gy = np.meshgrid(xs, ys)
        prob = np.clip((gx.ravel() - 34) / 3, 0, 1)
        self.map = pl.DataFrame({"temp": gx.ravel(), "ph": gy.ravel(), "prob": prob}).with_columns(
            in_region=pl.col("prob") >= 0.9
        )
        self.prob = 0.9
        self.factors_on_grid = ["temp", "ph"]

    def set_point(self):
        return {"temp": 36.5, "ph": 7.0}


def test_design_space_map_and_par_render_with_boundary_and_set_point():
    fig = bw.plots.plot_design_space(_Space())
    img = fig.traverse(lambda x: x, [hv.Image])[0]
    assert img.dimension_values(2, flat=False).shape == (25, 30)
    assert fig.traverse(lambda x: x, [hv.Points])  # the set point
    _render(fig)
    par = pl.DataFrame(
        {"factor": ["temp", "ph"], "lower": [35.0, 6.95], "upper": [37.0, 7.08], "set_point": [36.5, 7.0]}
    )
    _render(bw.plots.plot_par(par, factors=FACTORS))

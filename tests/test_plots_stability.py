"""Figures of stability studies: ICH Q1E shelf-life plot, Bayesian prediction band, probability in spec."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import polars as pl
import pytest

import bioworkbench as bw
from bioworkbench.errors import SchemaError
from tests.conftest import shared_data


@pytest.fixture(scope="module")
def exp1():
    path = shared_data("stability-ich-q1e", "exp1.csv")
    return bw.read_study(path, columns={"Batch": "batch_id", "Month": "time"}, temperature_c=25)


def test_shelf_life_plot_has_lines_bounds_limits_and_the_shelf_life(exp1):
    r = bw.stability.shelf_life(exp1, attribute="potency", lower=95)
    fig = bw.plots.plot_shelf_life(r)
    hv.render(fig)
    lots = r.table.height
    curves = fig.traverse(lambda x: x, [hv.Curve])
    assert len(curves) == 2 * lots  # fitted line + the one lower bound per lot
    vlines = [v.data for v in fig.traverse(lambda x: x, [hv.VLine])]
    assert pytest.approx(r.shelf_life) in vlines
    assert [h.data for h in fig.traverse(lambda x: x, [hv.HLine])] == [95]
    two = bw.plots.plot_shelf_life(bw.stability.shelf_life(exp1, attribute="potency", lower=95, upper=105))
    assert len(two.traverse(lambda x: x, [hv.HLine])) == 2


def test_prediction_and_probability_plots(exp1):
    t = np.linspace(0, 24, 10)
    pred = pl.DataFrame(
        {"time": t, "mean": 100 - 0.2 * t, "lower": 99 - 0.25 * t, "upper": 101 - 0.15 * t, "prob": 0.9}
    )
    fig = bw.plots.plot_stability_prediction(pred, study=exp1, attribute="potency", lower=95, temperature_c=25)
    hv.render(fig)
    assert len(fig.traverse(lambda x: x, [hv.Scatter])[0]) == exp1.height
    with pytest.raises(SchemaError, match="empty"):
        bw.plots.plot_stability_prediction(pred.head(0))
    p = bw.plots.plot_prob_in_spec(pl.DataFrame({"time": [0.0, 12, 24], "prob": [1.0, 0.97, 0.6]}), shelf_life=18)
    hv.render(p)
    assert [v.data for v in p.traverse(lambda x: x, [hv.VLine])] == [18]

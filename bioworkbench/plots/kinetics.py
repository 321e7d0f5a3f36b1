"""Kinetics and growth models of batches: specific rates over culture time, fitted growth curves over
the data, and forest plots of per-batch parameters.

See :mod:`bioworkbench.plots` for the conventions shared by every plot.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl

from bioworkbench.checks import require_frame, require_number
from bioworkbench.errors import SchemaError
from bioworkbench.plots.base import (
    BAND,
    HIGHLIGHT,
    OTHERS,
    axis_label,
    require_name,
    require_names,
    require_observations,
    require_size,
    setup,
    single_line,
    unit_of,
    wrap_title,
)

__all__ = ["plot_forest", "plot_forests", "plot_growth_fit", "plot_kinetics"]

_DAYS = "Culture time (d)"
KINETICS_LABELS = {
    "mu": "Specific growth rate μ",
    "ivcd": "IVCD",
    "doubling_time": "Doubling time",
    "qp": "Specific productivity qp",
    "q_glucose": "q glucose",
    "q_lactate": "q lactate",
    "q_glutamine": "q glutamine",
    "q_ammonium": "q ammonium",
}


def plot_kinetics(
    kinetics: pl.DataFrame,
    *,
    variables: Sequence[str] = ("mu", "ivcd", "q_glucose", "q_lactate", "qp"),
    batch_ids: Iterable[str] | None = None,
    highlight: str | None = None,
    width: int = 420,
    height: int = 260,
) -> Any:
    """Kinetics over culture time, one panel per quantity, one batch highlighted.

    Parameters
    ----------
    kinetics
        From :func:`bioworkbench.kinetics.compute`: ``batch_id, time_h, variable, value, unit``.
    variables
        Quantities to draw, where present.
    batch_ids
        Restrict to these batches.
    highlight
        Batch drawn in colour on top of the others (grey).
    width, height
        Size of each panel in px.

    Returns
    -------
    holoviews.Layout
        Two panels per row, each titled with the quantity and its unit.

    Raises
    ------
    ArgumentError
        ``kinetics`` is not a frame; a name is not one.
    SchemaError
        A column is missing; no row of any of ``variables``.

    Notes
    -----
    Culture time in days: ``day = time_h / 24``.
    """
    fn = "plot_kinetics"
    kinetics = require_frame(
        kinetics, function=fn, argument="kinetics", columns=("batch_id", "time_h", "variable", "value", "unit")
    )
    variables = require_names(variables, function=fn, argument="variables")
    batch_ids = require_names(batch_ids, function=fn, argument="batch_ids", allow_none=True)
    require_name(highlight, function=fn, argument="highlight", allow_none=True)
    require_size(function=fn, width=width, height=height)
    hv = setup()
    k = kinetics.filter(pl.col("variable").is_in(variables))
    if batch_ids is not None:
        k = k.filter(pl.col("batch_id").is_in(batch_ids))
    present = [v for v in variables if v in set(k["variable"].unique().to_list())]
    if not present:
        raise SchemaError(f"no kinetics rows for {', '.join(variables)}.")
    panels = []
    for v in present:
        d = (
            k.filter(pl.col("variable") == v)
            .select("batch_id", (pl.col("time_h") / 24).alias("day"), "value", "unit")
            .sort("batch_id", "day")
        )
        label = f"{KINETICS_LABELS.get(v, v)} ({d['unit'][0]})"
        opts = dict(xlabel=_DAYS, ylabel=label, width=width, height=height)
        others = d.filter(pl.col("batch_id") != highlight) if highlight else d
        p = single_line(others).hvplot.line(
            x="day", y="value", color=OTHERS if highlight else BAND, alpha=0.7, hover_cols=["batch_id"], **opts
        )
        mine = d.filter(pl.col("batch_id") == highlight) if highlight else d.head(0)
        if not mine.is_empty():
            p = p * mine.hvplot.line(x="day", y="value", color=HIGHLIGHT, line_width=3, **opts)
        panels.append(p.opts(title=wrap_title(label, width)))  # an overlay with a highlight, else one curve
    return hv.Layout(panels).cols(2).opts(shared_axes=False)


def plot_growth_fit(
    prediction: pl.DataFrame,
    observations: pl.DataFrame,
    *,
    batch_ids: Sequence[str] | None = None,
    variable: str = "vcd",
    cols: int = 4,
    width: int = 260,
    height: int = 200,
) -> Any:
    """Fitted curves with their interval band over the data, one small panel per batch.

    Parameters
    ----------
    prediction
        A growth model's ``predict`` frame: ``batch_id, time_h, mean, lower, upper``.
    observations
        Tidy observations; the batch's offline and at-line rows of ``variable`` are drawn (black),
        flagged ones as red crosses.
    batch_ids
        The batches, in this order; by default those of ``prediction``.
    variable
        The modelled variable.
    cols
        Panels per row.
    width, height
        Size of each panel in px.

    Returns
    -------
    holoviews.Layout
        One panel per batch, titled with the batch; the layout titled with the variable and unit.

    Raises
    ------
    ArgumentError
        A frame argument is not a frame; a name or number is not one.
    SchemaError
        A column is missing; no batch to draw.

    Notes
    -----
    Culture time in days: ``day = time_h / 24``.
    """
    fn = "plot_growth_fit"
    prediction = require_frame(
        prediction, function=fn, argument="prediction", columns=("batch_id", "time_h", "mean", "lower", "upper")
    )
    observations = require_observations(observations, function=fn, source="offline")
    batch_ids = require_names(batch_ids, function=fn, argument="batch_ids", allow_none=True)
    require_name(variable, function=fn, argument="variable")
    require_number(cols, function=fn, argument="cols", minimum=1, integer=True)
    require_size(function=fn, width=width, height=height)
    hv = setup()
    ids = batch_ids if batch_ids is not None else prediction["batch_id"].unique(maintain_order=True).to_list()
    label = axis_label(variable, unit_of(observations, variable))
    opts = dict(xlabel=_DAYS, ylabel=label, width=width, height=height)
    day = (pl.col("time_h") / 24).alias("day")
    measured = observations.filter((pl.col("variable") == variable) & (pl.col("source") != "online"))
    panels = []
    for b in ids:
        p = prediction.filter(pl.col("batch_id") == b).select(day, "mean", "lower", "upper")
        o = measured.filter(pl.col("batch_id") == b)
        panel = p.hvplot.area(
            x="day", y="lower", y2="upper", color=BAND, alpha=0.25, line_width=0, **opts
        ) * p.hvplot.line(x="day", y="mean", color=BAND, **opts)
        if not o.is_empty():
            good = o.filter(pl.col("flag").is_null()).select(day, "value")
            panel = panel * good.hvplot.scatter(x="day", y="value", color="black", size=15, **opts)
            bad = o.filter(pl.col("flag").is_not_null()).select(day, "value")
            if not bad.is_empty():
                panel = panel * bad.hvplot.scatter(x="day", y="value", color=HIGHLIGHT, marker="x", size=30, **opts)
        panels.append(panel.opts(hv.opts.Overlay(title=wrap_title(str(b), width), show_legend=False)))
    if not panels:
        raise SchemaError("plot_growth_fit: no batches to draw.")
    return hv.Layout(panels).cols(cols).opts(shared_axes=False, title=f"{label}: fitted curves and data")


def plot_forest(
    summary: pl.DataFrame,
    *,
    parameter: str,
    width: int = 420,
    height: int | None = None,
) -> Any:
    """Forest plot of one parameter: per-batch means with intervals, the campaign value as a band.

    Parameters
    ----------
    summary
        A model's summary: ``parameter, level, batch_id, mean, lower, upper, unit`` (and ``prob``);
        rows of level ``"batch"`` are drawn, a row of level ``"campaign"`` as the grey band.
    parameter
        The parameter.
    width, height
        Size in px; the height grows with the number of batches by default.

    Returns
    -------
    holoviews.Overlay
        Batches on the y axis sorted by their mean.

    Raises
    ------
    ArgumentError
        ``summary`` is not a frame; ``parameter`` is not a name.
    SchemaError
        A column is missing; no per-batch row of ``parameter`` (the parameters present are listed).

    Notes
    -----
    Default height: ``max(200, 18 × batches + 60)`` px.
    """
    fn = "plot_forest"
    summary = require_frame(
        summary,
        function=fn,
        argument="summary",
        columns=("parameter", "level", "batch_id", "mean", "lower", "upper", "unit"),
    )
    require_name(parameter, function=fn, argument="parameter")
    require_size(function=fn, width=width, height=height)
    hv = setup()
    s = summary.filter(pl.col("parameter") == parameter)
    per = s.filter(pl.col("level") == "batch").sort("mean")
    if per.is_empty():
        raise SchemaError(
            f"plot_forest: no per-batch rows for {parameter!r}; parameters: "
            f"{', '.join(summary['parameter'].unique().sort().to_list())}."
        )
    unit = per["unit"][0]
    label = f"{parameter.replace('_', ' ')} ({unit})" if unit else parameter.replace("_", " ")
    height = height or max(200, 18 * per.height + 60)
    ids = per["batch_id"].to_list()
    segs = hv.Segments(
        [(r["lower"], r["batch_id"], r["upper"], r["batch_id"]) for r in per.iter_rows(named=True)],
        kdims=["lower", "batch", "upper", "batch_end"],
    ).opts(color=BAND, line_width=2)
    pts = hv.Scatter(
        [(r["mean"], r["batch_id"]) for r in per.iter_rows(named=True)], kdims=["value"], vdims=["batch"]
    ).opts(color=BAND, size=6)
    plot = segs * pts
    camp = s.filter(pl.col("level") == "campaign")
    if camp.height:
        c = camp.row(0, named=True)
        plot = (
            hv.VSpan(c["lower"], c["upper"]).opts(color=OTHERS, alpha=0.25)
            * hv.VLine(c["mean"]).opts(color="black", line_dash="dashed")
            * plot
        )
    prob = per["prob"][0] if "prob" in per.columns else None
    title = f"{parameter.replace('_', ' ')}: per batch" + (f" ({prob:.0%} intervals; grey: campaign)" if prob else "")
    return plot.opts(
        hv.opts.Overlay(title=wrap_title(title, width), width=width, height=height, xlabel=label, ylabel="batch")
    ).redim.values(batch=ids)


def plot_forests(summary: pl.DataFrame, *, parameters: Sequence[str], cols: int = 2, width: int = 420) -> Any:
    """Forest plots (:func:`plot_forest`) of several parameters side by side, each on its own axis.

    Parameters
    ----------
    summary
        A model's summary (see :func:`plot_forest`).
    parameters
        The parameters, one panel each.
    cols
        Panels per row.
    width
        Width of each panel in px.

    Returns
    -------
    holoviews.Layout
        One forest plot per parameter.

    Raises
    ------
    ArgumentError
        ``summary`` is not a frame; ``parameters`` is not a list of names.
    SchemaError
        A column is missing; a parameter has no per-batch rows.
    """
    fn = "plot_forests"
    parameters = require_names(parameters, function=fn, argument="parameters")
    require_number(cols, function=fn, argument="cols", minimum=1, integer=True)
    hv = setup()
    return (
        hv.Layout([plot_forest(summary, parameter=p, width=width) for p in parameters])
        .cols(cols)
        .opts(shared_axes=False)
    )

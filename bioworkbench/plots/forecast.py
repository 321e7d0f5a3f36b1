"""A running batch's forecast: predicted trajectories with their bands, the data known when the
forecast was made and what was measured after it.

See :mod:`bioworkbench.plots` for the conventions shared by every plot.
"""

from __future__ import annotations

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
    require_observations,
    require_size,
    setup,
    unit_of,
    wrap_title,
)

__all__ = ["plot_forecast"]


def plot_forecast(
    trajectory: pl.DataFrame,
    observations: pl.DataFrame,
    *,
    batch_id: str,
    known_h: float,
    spec_lower: float | None = None,
    width: int = 440,
    height: int = 280,
) -> Any:
    """A running batch's forecast: predicted VCD and titer bands, the known data, what came after.

    Parameters
    ----------
    trajectory
        The forecast: ``batch_id, variable, time_h, mean, lower, upper`` (rows of ``vcd`` and
        ``titer`` are drawn).
    observations
        Tidy observations; the batch's unflagged offline and at-line rows are drawn, black up to
        ``known_h`` and grey after it.
    batch_id
        The batch.
    known_h
        Culture time in hours up to which the data were known to the forecast (a dotted line).
    spec_lower
        Lower titer specification (a dashed line), if any.
    width, height
        Size of each panel in px.

    Returns
    -------
    holoviews.Layout
        One panel per variable forecast, titled with the variable, its unit and the day of the forecast.

    Raises
    ------
    ArgumentError
        A frame argument is not a frame; a name or number is not one.
    SchemaError
        A column is missing; no forecast row of the batch.

    Notes
    -----
    Culture time in days: ``day = time_h / 24``.
    """
    fn = "plot_forecast"
    trajectory = require_frame(
        trajectory,
        function=fn,
        argument="trajectory",
        columns=("batch_id", "variable", "time_h", "mean", "lower", "upper"),
    )
    observations = require_observations(observations, function=fn, source="offline")
    require_name(batch_id, function=fn, argument="batch_id")
    require_number(known_h, function=fn, argument="known_h", minimum=0, unit="h")
    require_number(spec_lower, function=fn, argument="spec_lower", allow_none=True)
    require_size(function=fn, width=width, height=height)
    hv = setup()
    measured = observations.filter(
        (pl.col("batch_id") == batch_id) & (pl.col("source") != "online") & pl.col("flag").is_null()
    )
    panels = []
    for var in ("vcd", "titer"):
        p = trajectory.filter((pl.col("batch_id") == batch_id) & (pl.col("variable") == var)).select(
            (pl.col("time_h") / 24).alias("day"), "mean", "lower", "upper"
        )
        if p.is_empty():
            continue
        label = axis_label(var, unit_of(observations, var))
        opts = dict(xlabel="Culture time (d)", ylabel=label, width=width, height=height)
        panel = p.hvplot.area(
            x="day", y="lower", y2="upper", color=BAND, alpha=0.25, line_width=0, label="forecast interval", **opts
        )
        panel = panel * p.hvplot.line(x="day", y="mean", color=BAND, label="forecast", **opts)
        o = measured.filter(pl.col("variable") == var).select(
            (pl.col("time_h") / 24).alias("day"), "value", pl.col("time_h"), "batch_id"
        )
        known = o.filter(pl.col("time_h") <= known_h)
        later = o.filter(pl.col("time_h") > known_h)
        if not known.is_empty():
            panel = panel * known.hvplot.scatter(
                x="day", y="value", color="black", size=30, label="known", hover_cols=["batch_id"], **opts
            )
        if not later.is_empty():
            panel = panel * later.hvplot.scatter(
                x="day", y="value", color=OTHERS, size=30, label="after the forecast", hover_cols=["batch_id"], **opts
            )
        panel = panel * hv.VLine(known_h / 24).opts(color="black", line_dash="dotted")
        if var == "titer" and spec_lower is not None:
            panel = panel * hv.HLine(spec_lower).opts(color=HIGHLIGHT, line_dash="dashed")
        title = wrap_title(f"{label}: forecast from day {known_h / 24:.1f}", width)
        panels.append(panel.opts(hv.opts.Overlay(title=title, legend_position="top_left")))
    if not panels:
        raise SchemaError(f"plot_forecast: no forecast rows for batch {batch_id!r}.")
    return hv.Layout(panels).cols(2).opts(shared_axes=False)

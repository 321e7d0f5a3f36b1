"""Trajectories over culture time: a variable across batches, a batch against the campaign envelope,
a batch's online sensor traces.

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
    narrow_observations,
    require_name,
    require_names,
    require_observations,
    require_size,
    setup,
    single_line,
    unit_of,
    wrap_title,
)

__all__ = ["plot_batch_envelopes", "plot_envelope", "plot_online", "plot_trajectories"]

#: the columns of a campaign envelope (:func:`bioworkbench.review.envelope`) that the plots read
ENVELOPE_COLUMNS = ("variable", "time_h", "median", "lower", "upper")
_DAYS = "Culture time (d)"


def plot_trajectories(
    observations: pl.DataFrame,
    *,
    variable: str,
    highlight: str | None = None,
    batch_ids: Iterable[str] | None = None,
    source: str | None = "offline",
    width: int = 700,
    height: int = 320,
) -> Any:
    """Overlay of one variable's trajectories across batches, one batch highlighted.

    Parameters
    ----------
    observations
        Campaign observations (tidy). Flagged rows are left out.
    variable
        Canonical variable name (``"vcd"``, ``"titer"``…).
    highlight
        Batch drawn in colour on top of the others (grey), with a legend.
    batch_ids
        Restrict to these batches.
    source
        ``"offline"`` (default), ``"online"``, ``"atline"`` or ``None`` for all.
    width, height
        Size in px.

    Returns
    -------
    holoviews.Curve or holoviews.Overlay
        Titled with the variable, its unit and the number of batches; a single colour (no legend)
        without ``highlight``, an overlay with a legend with it.

    Raises
    ------
    ArgumentError
        ``observations`` is not a frame; ``variable`` or ``highlight`` is not a name.
    SchemaError
        A column is missing; no observation of ``variable`` is left to draw (the variables present
        are listed); the highlighted batch has none.

    Notes
    -----
    Culture time in days: ``day = time_h / 24``.
    """
    fn = "plot_trajectories"
    observations = require_observations(observations, function=fn, source=source)
    require_name(variable, function=fn, argument="variable")
    require_name(highlight, function=fn, argument="highlight", allow_none=True)
    batch_ids = require_names(batch_ids, function=fn, argument="batch_ids", allow_none=True)
    require_size(function=fn, width=width, height=height)
    hv = setup()
    df = narrow_observations(observations, variable, source=source, batch_ids=batch_ids)
    unit = unit_of(observations, variable)
    ylabel = axis_label(variable, unit)
    others = df.filter(pl.col("batch_id") != highlight) if highlight else df
    opts = dict(xlabel=_DAYS, ylabel=ylabel, width=width, height=height)
    plot = single_line(others).hvplot.line(
        x="day",
        y="value",
        color=OTHERS if highlight else BAND,
        alpha=0.6,
        line_width=1,
        hover_cols=["batch_id"],
        label="other batches" if highlight else "batches",
        **opts,
    )
    if highlight:
        mine = df.filter(pl.col("batch_id") == highlight)
        if mine.is_empty():
            raise SchemaError(f"batch {highlight!r} has no {variable} observations to highlight.")
        plot = (
            plot
            * mine.hvplot.line(x="day", y="value", color=HIGHLIGHT, line_width=3, label=highlight, **opts)
            * mine.hvplot.scatter(x="day", y="value", color=HIGHLIGHT, size=40, **opts)
        )
    title = f"{ylabel}: {'batch ' + highlight + ' among ' if highlight else ''}"
    title += f"{df['batch_id'].n_unique()} batches"
    if not highlight:  # one element, not an overlay: its own title, no legend for a single colour
        return plot.opts(title=wrap_title(title, width), show_legend=False)
    return plot.opts(hv.opts.Overlay(title=wrap_title(title, width), show_legend=True))


def plot_envelope(
    envelope: pl.DataFrame,
    batch: pl.DataFrame | None = None,
    *,
    variable: str,
    batch_id: str | None = None,
    unit: str | None = None,
    width: int = 700,
    height: int = 320,
) -> Any:
    """A batch against the campaign envelope (median and quantile band by culture time).

    Parameters
    ----------
    envelope
        From :func:`bioworkbench.review.envelope`: ``variable, time_h, median, lower, upper``
        (and ``unit``).
    batch
        Observations of the batch (tidy); only unflagged ``variable`` rows are drawn.
    variable
        Canonical variable name.
    batch_id
        The batch's name in the legend and title.
    unit
        Unit on the axis; by default the envelope's ``unit`` column.
    width, height
        Size in px.

    Returns
    -------
    holoviews.Overlay
        Band, median and the batch, titled with the variable, its unit and the batch, with a legend.

    Raises
    ------
    ArgumentError
        A frame argument is not a frame; ``variable`` is not a name.
    SchemaError
        A column is missing; the envelope has no row of ``variable``.

    Notes
    -----
    Culture time in days: ``day = time_h / 24``.
    """
    fn = "plot_envelope"
    envelope = require_frame(envelope, function=fn, argument="envelope", columns=ENVELOPE_COLUMNS)
    if batch is not None:
        batch = require_observations(batch, function=fn, argument="batch")
    require_name(variable, function=fn, argument="variable")
    require_name(batch_id, function=fn, argument="batch_id", allow_none=True)
    require_size(function=fn, width=width, height=height)
    hv = setup()
    env = envelope.filter(pl.col("variable") == variable).select(
        (pl.col("time_h") / 24).alias("day"), "median", "lower", "upper"
    )
    if env.is_empty():
        raise SchemaError(f"the envelope has no rows for {variable!r}.")
    if unit is None:
        unit = envelope.filter(pl.col("variable") == variable)["unit"][0] if "unit" in envelope.columns else None
    ylabel = axis_label(variable, unit)
    opts = dict(xlabel=_DAYS, ylabel=ylabel, width=width, height=height)
    band = env.hvplot.area(
        x="day", y="lower", y2="upper", color=BAND, alpha=0.2, label="5–95 % of batches", line_width=0, **opts
    )
    plot = band * env.hvplot.line(x="day", y="median", color=BAND, line_dash="dashed", label="median", **opts)
    if batch is not None:
        b = (
            batch.filter((pl.col("variable") == variable) & pl.col("flag").is_null())
            .select((pl.col("time_h") / 24).alias("day"), "value")
            .sort("day")
        )
        if not b.is_empty():
            label = batch_id or "batch"
            plot = (
                plot
                * b.hvplot.line(x="day", y="value", color=HIGHLIGHT, line_width=2.5, label=label, **opts)
                * b.hvplot.scatter(x="day", y="value", color=HIGHLIGHT, size=40, **opts)
            )
    return plot.opts(
        hv.opts.Overlay(
            title=wrap_title(f"{ylabel}{': ' + batch_id if batch_id else ''} vs campaign envelope", width),
            legend_position="top_left",
        )
    )


def plot_batch_envelopes(
    envelope: pl.DataFrame,
    batch: pl.DataFrame,
    *,
    batch_id: str,
    variables: Sequence[str] = ("vcd", "viability", "glucose", "lactate", "ammonium", "titer"),
    width: int = 440,
    height: int = 260,
) -> Any:
    """One envelope panel (:func:`plot_envelope`) per variable present in both the envelope and the batch.

    Parameters
    ----------
    envelope
        From :func:`bioworkbench.review.envelope`.
    batch
        Observations of the batch (tidy).
    batch_id
        The batch's name in the legends.
    variables
        Variables to draw, in this order, where present.
    width, height
        Size of each panel in px.

    Returns
    -------
    holoviews.Layout
        Two panels per row, each titled with its variable and unit.

    Raises
    ------
    ArgumentError
        A frame argument is not a frame; ``variables`` is not a list of names.
    SchemaError
        A column is missing; no variable of ``variables`` is in both frames.
    """
    fn = "plot_batch_envelopes"
    envelope = require_frame(envelope, function=fn, argument="envelope", columns=ENVELOPE_COLUMNS)
    batch = require_observations(batch, function=fn, argument="batch")
    require_name(batch_id, function=fn, argument="batch_id")
    variables = require_names(variables, function=fn, argument="variables")
    require_size(function=fn, width=width, height=height)
    hv = setup()
    have = set(envelope["variable"].unique().to_list()) & set(batch["variable"].unique().to_list())
    panels = [
        plot_envelope(envelope, batch, variable=v, batch_id=batch_id, width=width, height=height).opts(
            hv.opts.Overlay(title=wrap_title(axis_label(v, unit_of(envelope, v)), width))
        )
        for v in variables
        if v in have
    ]
    if not panels:
        raise SchemaError(f"no variable of {', '.join(variables)} is in both the envelope and batch {batch_id}.")
    return hv.Layout(panels).cols(2).opts(shared_axes=False)


def plot_online(
    observations: pl.DataFrame,
    *,
    batch_id: str,
    variables: Sequence[str] = ("ph", "do", "temperature"),
    width: int = 700,
    height: int = 200,
    max_points: int = 5000,
) -> Any:
    """Online sensor traces of one batch, one panel per variable (decimated to ``max_points``).

    Parameters
    ----------
    observations
        Tidy observations; the batch's ``online`` rows are drawn, flagged ones included.
    batch_id
        The batch.
    variables
        Variables to draw, where the batch has online rows of them.
    width, height
        Size of each panel in px.
    max_points
        At most about this many points per trace: every ``step``-th point is kept.

    Returns
    -------
    holoviews.Layout
        One panel per row, titled with the variable, its unit and the decimation.

    Raises
    ------
    ArgumentError
        ``observations`` is not a frame; a name or number is not one.
    SchemaError
        A column is missing; the batch has no online rows of any of ``variables``.

    Notes
    -----
    ``step = max(1, n // max_points)`` for ``n`` rows of a trace; ``day = time_h / 24``.
    """
    fn = "plot_online"
    observations = require_observations(observations, function=fn, source="online")
    require_name(batch_id, function=fn, argument="batch_id")
    variables = require_names(variables, function=fn, argument="variables")
    require_number(max_points, function=fn, argument="max_points", minimum=1, integer=True)
    require_size(function=fn, width=width, height=height)
    hv = setup()
    obs = observations.filter((pl.col("batch_id") == batch_id) & (pl.col("source") == "online"))
    panels = []
    for v in variables:
        d = obs.filter(pl.col("variable") == v).select((pl.col("time_h") / 24).alias("day"), "value").sort("day")
        if d.is_empty():
            continue
        step = max(1, d.height // max_points)
        d = d.gather_every(step)
        label = axis_label(v, unit_of(observations, v))
        panels.append(
            d.hvplot.line(
                x="day", y="value", xlabel=_DAYS, ylabel=label, width=width, height=height, color=BAND, line_width=1
            ).opts(title=wrap_title(f"{label} (online{f', every {step}th point' if step > 1 else ''})", width))
        )
    if not panels:
        raise SchemaError(f"batch {batch_id!r} has no online observations of {', '.join(variables)}.")
    return hv.Layout(panels).cols(1).opts(shared_axes=False)

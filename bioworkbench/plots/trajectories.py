"""Trajectories over culture time: a variable across batches, a batch against the campaign envelope,
a batch's online sensor traces.

See :mod:`bioworkbench.plots` for the conventions shared by every plot.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl

from bioworkbench.checks import require_frame, require_number
from bioworkbench.errors import ArgumentError, SchemaError
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
#: colours of the values of a categorical ``color_by`` (Tableau 10 without its red, kept for the highlight)
CATEGORY_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


def plot_trajectories(
    observations: pl.DataFrame,
    *,
    variable: str,
    highlight: str | None = None,
    batch_ids: Iterable[str] | None = None,
    source: str | None = "offline",
    color_by: str | None = None,
    batches: pl.DataFrame | None = None,
    selected: Iterable[str] | None = None,
    width: int = 700,
    height: int = 320,
) -> Any:
    """Overlay of one variable's trajectories across batches: coloured by a batch column, some
    batches selected, one highlighted.

    Parameters
    ----------
    observations
        Campaign observations (tidy). Flagged rows are left out.
    variable
        Canonical variable name (``"vcd"``, ``"titer"``…).
    highlight
        Batch drawn in red on top of the others, with a legend.
    batch_ids
        Restrict to these batches.
    source
        ``"offline"`` (default), ``"online"``, ``"atline"`` or ``None`` for all.
    color_by
        A column of ``batches`` to colour the lines by: a number (a CPP setpoint) gets a colour
        bar, anything else (``status``, a group) one colour per value with a legend.
    batches
        One row per batch with ``batch_id`` and ``color_by`` (``campaign.batches``); needed with
        ``color_by``.
    selected
        Batches drawn in colour and thicker; the others are drawn thin in grey ("other batches").
        Empty or ``None``: every batch is drawn in colour.
    width, height
        Size in px.

    Returns
    -------
    holoviews.Curve or holoviews.Overlay
        Titled with the variable, its unit, the number of batches (and of selected batches) and
        what the colour shows; a single colour (no legend) without ``highlight``, ``color_by`` or
        ``selected``; otherwise a legend (and a colour bar for a numeric ``color_by``).

    Raises
    ------
    ArgumentError
        ``observations`` or ``batches`` is not a frame; ``variable``, ``highlight`` or
        ``color_by`` is not a name; ``color_by`` without ``batches``.
    SchemaError
        A column is missing (in ``batches``: ``color_by``, with the columns found); no
        observation of ``variable`` is left to draw (the variables present are listed); the
        highlighted batch has none.

    Notes
    -----
    Culture time in days: ``day = time_h / 24``. A numeric ``color_by`` maps its range over the
    drawn batches onto the ``viridis`` colour map; batches without a value are drawn in grey.
    """
    fn = "plot_trajectories"
    observations = require_observations(observations, function=fn, source=source)
    require_name(variable, function=fn, argument="variable")
    require_name(highlight, function=fn, argument="highlight", allow_none=True)
    require_name(color_by, function=fn, argument="color_by", allow_none=True)
    batch_ids = require_names(batch_ids, function=fn, argument="batch_ids", allow_none=True)
    selected = require_names(selected, function=fn, argument="selected", allow_none=True)
    if color_by is not None:
        if batches is None:
            raise ArgumentError(
                f"{fn}: color_by={color_by!r} needs the batches table to read it from; "
                "pass batches=campaign.batches (or a table with batch_id and that column)."
            )
        batches = require_frame(batches, function=fn, argument="batches", columns=("batch_id", color_by))
    require_size(function=fn, width=width, height=height)
    hv = setup()
    df = narrow_observations(observations, variable, source=source, batch_ids=batch_ids)
    unit = unit_of(observations, variable)
    ylabel = axis_label(variable, unit)
    opts = dict(xlabel=_DAYS, ylabel=ylabel, width=width, height=height)
    n_batches = df["batch_id"].n_unique()
    title = f"{ylabel}: {'batch ' + highlight + ' among ' if highlight else ''}{n_batches} batches"
    if color_by is None and not selected:
        plot = single_line(df.filter(pl.col("batch_id") != highlight) if highlight else df).hvplot.line(
            x="day",
            y="value",
            color=OTHERS if highlight else BAND,
            alpha=0.6,
            line_width=1,
            hover_cols=["batch_id"],
            label="other batches" if highlight else "batches",
            **opts,
        )
        if not highlight:  # one element, not an overlay: its own title, no legend for a single colour
            return plot.opts(title=wrap_title(title, width), show_legend=False)
    else:
        chosen = set(selected or ()) & set(df["batch_id"].unique().to_list())
        if selected:
            title += f", {len(chosen)} selected"
        if color_by is not None:
            title += f", colour: {_column_name(color_by)}"
        plot = _coloured_lines(df, chosen, color_by=color_by, batches=batches, opts=opts, hv=hv)
    return _with_highlight(plot, df, highlight, variable=variable, title=title, opts=opts, width=width, hv=hv)


def _column_name(column: str) -> str:
    """A batch column as a reader would say it: ``cpp_temp_shift_day`` -> ``temp shift day``."""
    return column.removeprefix("cpp_").replace("_", " ")


def _coloured_lines(
    df: pl.DataFrame, chosen: set[str], *, color_by: str | None, batches: pl.DataFrame | None, opts: dict, hv: Any
) -> Any:
    """The lines of :func:`plot_trajectories` with a selection or a colour column: the batches not
    chosen thin and grey, the chosen ones (all when none is) in colour, with a legend or colour bar."""
    layers = []
    others = df.filter(~pl.col("batch_id").is_in(list(chosen))) if chosen else df.clear()
    if not others.is_empty():
        layers.append(
            single_line(others).hvplot.line(
                x="day",
                y="value",
                color=OTHERS,
                alpha=0.5,
                line_width=1,
                hover_cols=["batch_id"],
                label="other batches",
                **opts,
            )
        )
    mine = df.filter(pl.col("batch_id").is_in(list(chosen))) if chosen else df
    width = 3 if chosen else 1.5
    if mine.is_empty():
        pass
    elif color_by is None:
        layers.append(
            single_line(mine).hvplot.line(
                x="day",
                y="value",
                color=BAND,
                line_width=width,
                hover_cols=["batch_id"],
                label="selected batches",
                **opts,
            )
        )
    else:
        values = batches.select("batch_id", pl.col(color_by).alias("_colour")).unique("batch_id", keep="first")
        mine = mine.join(values, on="batch_id", how="left")
        name = _column_name(color_by)
        if values.schema["_colour"].is_numeric():
            known = mine.filter(pl.col("_colour").is_not_null() & pl.col("_colour").is_not_nan())
            unknown = mine.filter(pl.col("_colour").is_null() | pl.col("_colour").is_nan())
            drawn = df.join(values, on="batch_id", how="left")["_colour"].drop_nulls().drop_nans()
            if not known.is_empty():
                lo, hi = float(drawn.min()), float(drawn.max())
                paths = [
                    {
                        "day": g["day"].to_numpy(),
                        "value": g["value"].to_numpy(),
                        name: float(g["_colour"][0]),
                        "batch_id": b,
                    }
                    for (b,), g in known.group_by("batch_id", maintain_order=True)
                ]
                layers.append(
                    hv.Path(paths, kdims=["day", "value"], vdims=[name, "batch_id"]).opts(
                        color=name,
                        cmap="viridis",
                        clim=(lo, hi) if hi > lo else (lo - 0.5, hi + 0.5),
                        colorbar=True,
                        colorbar_opts={"title": name},
                        line_width=width,
                        tools=["hover"],
                        xlabel=opts["xlabel"],
                        ylabel=opts["ylabel"],
                        width=opts["width"],
                        height=opts["height"],
                    )
                )
            if not unknown.is_empty():
                layers.append(
                    single_line(unknown).hvplot.line(
                        x="day", y="value", color=OTHERS, line_width=width, label=f"no {name} recorded", **opts
                    )
                )
        else:
            mine = mine.with_columns(pl.col("_colour").cast(pl.String).fill_null("not recorded"))
            for i, ((level,), g) in enumerate(mine.group_by("_colour", maintain_order=True)):
                layers.append(
                    single_line(g).hvplot.line(
                        x="day",
                        y="value",
                        color=CATEGORY_COLOURS[i % len(CATEGORY_COLOURS)],
                        line_width=width,
                        hover_cols=["batch_id"],
                        label=f"{name}: {level}",
                        **opts,
                    )
                )
    return hv.Overlay(layers)


def _with_highlight(
    plot: Any, df: pl.DataFrame, highlight: str | None, *, variable: str, title: str, opts: dict, width: int, hv: Any
) -> Any:
    """``plot`` with the highlighted batch in red on top, titled, with its legend shown."""
    if highlight:
        mine = df.filter(pl.col("batch_id") == highlight)
        if mine.is_empty():
            raise SchemaError(f"batch {highlight!r} has no {variable} observations to highlight.")
        plot = (
            plot
            * mine.hvplot.line(x="day", y="value", color=HIGHLIGHT, line_width=3, label=highlight, **opts)
            * mine.hvplot.scatter(x="day", y="value", color=HIGHLIGHT, size=40, **opts)
        )
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

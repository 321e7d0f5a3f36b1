"""Outcomes and quality attributes of batches: batch-to-batch variability of outcome columns, and CQAs
against CPP setpoints with their specification limits.

The table is one row per batch (:func:`bioworkbench.outcomes.campaign_table`, or a review's
``table``); the plots draw it and compute nothing.

See :mod:`bioworkbench.plots` for the conventions shared by every plot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from bioworkbench.checks import require_frame
from bioworkbench.errors import SchemaError
from bioworkbench.plots.base import BAND, HIGHLIGHT, require_name, require_names, require_size, setup, wrap_title

__all__ = ["plot_cqa_grid", "plot_cqa_vs_cpp", "plot_outcomes"]

_SPEC_COLUMNS = ("name", "kind", "lower", "upper")


def _cpp_name(cpp: str) -> str:
    return cpp.removeprefix("cpp_").replace("_", " ")


def plot_cqa_vs_cpp(
    table: pl.DataFrame,
    *,
    attribute: str,
    cpp: str,
    specs: pl.DataFrame | None = None,
    highlight: str | None = None,
    width: int = 360,
    height: int = 300,
) -> Any:
    """Harvest CQA against a CPP setpoint, one point per batch, spec limits as lines.

    Parameters
    ----------
    table
        One row per batch with ``batch_id``, the ``cpp`` column and the ``attribute`` column
        (see :func:`bioworkbench.review.campaign_table`); rows with a null in either are left out.
    attribute
        The CQA column.
    cpp
        The CPP column (``cpp_`` prefix dropped from the label).
    specs
        The campaign's specifications (``name, kind, lower, upper``); the ``spec`` rows of
        ``attribute`` are drawn as dashed lines.
    highlight
        Batch drawn larger, in red.
    width, height
        Size in px.

    Returns
    -------
    holoviews.Overlay
        Titled ``"<attribute> vs <cpp>"``.

    Raises
    ------
    ArgumentError
        A frame argument is not a frame; a name is not one.
    SchemaError
        A column of ``table`` or ``specs`` is missing.
    """
    fn = "plot_cqa_vs_cpp"
    require_name(attribute, function=fn, argument="attribute")
    require_name(cpp, function=fn, argument="cpp")
    table = require_frame(table, function=fn, argument="table", columns=("batch_id", cpp, attribute))
    if specs is not None:
        specs = require_frame(specs, function=fn, argument="specs", columns=_SPEC_COLUMNS)
    require_name(highlight, function=fn, argument="highlight", allow_none=True)
    require_size(function=fn, width=width, height=height)
    hv = setup()
    d = table.select("batch_id", cpp, attribute).drop_nulls()
    opts = dict(xlabel=_cpp_name(cpp), ylabel=attribute.replace("_", " "), width=width, height=height)
    plot = d.hvplot.scatter(x=cpp, y=attribute, hover_cols=["batch_id"], color=BAND, size=60, **opts)
    if highlight and highlight in d["batch_id"].to_list():
        plot = plot * d.filter(pl.col("batch_id") == highlight).hvplot.scatter(
            x=cpp, y=attribute, color=HIGHLIGHT, size=120, **opts
        )
    if specs is not None and not specs.is_empty():
        s = specs.filter((pl.col("name") == attribute) & (pl.col("kind") == "spec"))
        for row in s.iter_rows(named=True):
            for lim in ("lower", "upper"):
                if row[lim] is not None:
                    plot = plot * hv.HLine(row[lim]).opts(color=HIGHLIGHT, line_dash="dashed", line_width=1.5)
    title = f"{attribute.replace('_', ' ')} vs {_cpp_name(cpp)}"
    return plot.opts(hv.opts.Overlay(title=wrap_title(title, width)))


def plot_cqa_grid(
    table: pl.DataFrame,
    *,
    attributes: Sequence[str],
    cpps: Sequence[str],
    specs: pl.DataFrame | None = None,
    highlight: str | None = None,
    width: int = 300,
    height: int = 250,
) -> Any:
    """Every CQA against every CPP setpoint (one :func:`plot_cqa_vs_cpp` panel each), spec limits drawn.

    Parameters
    ----------
    table
        One row per batch (see :func:`plot_cqa_vs_cpp`).
    attributes
        CQA columns; those not in ``table`` are skipped.
    cpps
        CPP columns, one panel column each.
    specs, highlight
        As in :func:`plot_cqa_vs_cpp`.
    width, height
        Size of each panel in px.

    Returns
    -------
    holoviews.Layout
        One row per attribute, one column per CPP.

    Raises
    ------
    ArgumentError
        ``table`` is not a frame; ``attributes`` or ``cpps`` is not a list of names.
    SchemaError
        None of the attributes is a column of ``table``; a CPP column is missing.
    """
    fn = "plot_cqa_grid"
    table = require_frame(table, function=fn, argument="table", columns=("batch_id",))
    attributes = require_names(attributes, function=fn, argument="attributes")
    cpps = require_names(cpps, function=fn, argument="cpps")
    hv = setup()
    panels = [
        plot_cqa_vs_cpp(table, attribute=a, cpp=c, specs=specs, highlight=highlight, width=width, height=height)
        for a in attributes
        if a in table.columns
        for c in cpps
    ]
    if not panels:
        raise SchemaError(
            f"plot_cqa_grid: none of the attributes ({', '.join(attributes) or 'none given'}) is a column of the "
            f"table, or no CPP was given; columns: {', '.join(table.columns)}."
        )
    return hv.Layout(panels).cols(len(cpps)).opts(shared_axes=False)


def plot_outcomes(table: pl.DataFrame, *, columns: Sequence[str], width: int = 300, height: int = 260) -> Any:
    """Batch-to-batch variability: one box-and-points panel per outcome column of a batch table.

    Parameters
    ----------
    table
        One row per batch with ``batch_id`` and the ``columns``; nulls are left out of each panel.
    columns
        The outcome columns (numeric, or castable to numbers).
    width, height
        Size of each panel in px.

    Returns
    -------
    holoviews.Layout
        Three panels per row, each titled with its column.

    Raises
    ------
    ArgumentError
        ``table`` is not a frame; ``columns`` is not a list of names.
    SchemaError
        A column is missing (all missing ones are named).
    """
    fn = "plot_outcomes"
    columns = require_names(columns, function=fn, argument="columns")
    table = require_frame(table, function=fn, argument="table", columns=("batch_id", *columns))
    require_size(function=fn, width=width, height=height)
    hv = setup()
    panels = []
    for col in columns:
        d = table.select("batch_id", pl.col(col).cast(pl.Float64)).drop_nulls().with_columns(group=pl.lit(col))
        size = dict(width=width, height=height)
        box = d.hvplot.box(
            y=col,
            by="group",
            ylabel=col.replace("_", " "),
            xlabel="",
            color=BAND,
            box_fill_alpha=0.3,  # BoxWhisker has no plain ``alpha`` (param would log a warning)
            **size,
        )
        pts = d.hvplot.scatter(x="group", y=col, hover_cols=["batch_id"], color=HIGHLIGHT, size=30, **size)
        panels.append((box * pts).opts(hv.opts.Overlay(title=wrap_title(col.replace("_", " "), width))))
    return hv.Layout(panels).cols(3).opts(shared_axes=False)

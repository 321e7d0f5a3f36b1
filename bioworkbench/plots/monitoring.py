"""Figures of multivariate statistical process control (MSPC) and the golden batch: control charts of
T² and SPE along maturity, score plots with their confidence ellipse, contributions, and a batch over
the golden-batch envelope.

The frames come from :mod:`bioworkbench.monitoring` (``BatchPCA.monitor``, ``batch_statistics``,
``contributions``, ``golden_batch``); the plots draw them and compute nothing of the model.

See :mod:`bioworkbench.plots` for the conventions shared by every plot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from bioworkbench.checks import require_choice, require_frame, require_number, require_prob
from bioworkbench.errors import SchemaError
from bioworkbench.plots.base import (
    BAND,
    HIGHLIGHT,
    axis_label,
    require_name,
    require_names,
    require_size,
    setup,
    unit_of,
    wrap_title,
)

__all__ = ["plot_contributions", "plot_control_chart", "plot_golden", "plot_scores"]

_STATISTICS = {"t2": "Hotelling's T²", "spe": "SPE (squared prediction error)"}


def plot_control_chart(
    monitor: pl.DataFrame,
    *,
    statistic: str = "spe",
    batch_id: str | None = None,
    width: int = 600,
    height: int = 260,
) -> Any:
    """T² or SPE of running batches along maturity against its limit.

    Parameters
    ----------
    monitor
        ``BatchPCA.monitor``: ``batch_id, maturity`` and the statistic with its ``<statistic>_limit``.
    statistic
        ``"spe"`` or ``"t2"``.
    batch_id
        Draw this batch only; by default every batch, one colour each with a legend.
    width, height
        Size in px.

    Returns
    -------
    holoviews.Overlay
        The statistic per batch, its limit dashed, points above the limit in red; titled with the
        statistic (and the batch).

    Raises
    ------
    ArgumentError
        ``monitor`` is not a frame; ``statistic`` is not one of ``"spe"``, ``"t2"``.
    SchemaError
        A column is missing; no row (of the batch).
    """
    fn = "plot_control_chart"
    require_choice(statistic, _STATISTICS, function=fn, argument="statistic")
    limit = f"{statistic}_limit"
    monitor = require_frame(
        monitor, function=fn, argument="monitor", columns=("batch_id", "maturity", statistic, limit)
    )
    require_name(batch_id, function=fn, argument="batch_id", allow_none=True)
    require_size(function=fn, width=width, height=height)
    hv = setup()
    m = monitor if batch_id is None else monitor.filter(pl.col("batch_id") == batch_id)
    if m.is_empty():
        raise SchemaError(f"no monitoring rows{' for batch ' + batch_id if batch_id else ''}.")
    d = m.select("batch_id", "maturity", statistic, limit).sort("batch_id", "maturity")
    label = _STATISTICS[statistic]
    opts = dict(xlabel="maturity", ylabel=label, width=width, height=height)
    plot = d.hvplot.line(x="maturity", y=statistic, by="batch_id", **opts) * d.hvplot.line(
        x="maturity", y=limit, color=HIGHLIGHT, line_dash="dashed", label="limit", **opts
    )
    out = d.filter(pl.col(statistic) > pl.col(limit))
    if not out.is_empty():
        plot = plot * out.hvplot.scatter(x="maturity", y=statistic, color=HIGHLIGHT, size=30, **opts)
    return plot.opts(hv.opts.Overlay(title=wrap_title(f"{label}{': ' + batch_id if batch_id else ''}", width)))


def plot_scores(
    statistics: pl.DataFrame,
    *,
    x: str = "t_1",
    y: str = "t_2",
    prob: float = 0.99,
    n_reference: int | None = None,
    highlight: Sequence[str] = (),
    width: int = 420,
    height: int = 400,
) -> Any:
    """Score plot of ``BatchPCA.batch_statistics`` with the confidence ellipse of the two components.

    Parameters
    ----------
    statistics
        One row per batch: ``batch_id`` and the score columns ``x`` and ``y``.
    x, y
        The score columns.
    prob
        Coverage of the ellipse.
    n_reference
        The ellipse from the first ``n_reference`` rows (the training batches); by default all.
    highlight
        Batches drawn in red and labelled.
    width, height
        Size in px.

    Returns
    -------
    holoviews.Overlay
        Points, ellipse (dashed) and labels of the highlighted batches.

    Raises
    ------
    ArgumentError
        ``statistics`` is not a frame; a name, number or probability is not one.
    SchemaError
        A column is missing; fewer than 4 reference batches.

    Notes
    -----
    The ellipse is ``t_x²/s_x² + t_y²/s_y² = T²_lim`` with the training-batch limit
    ``T²_lim = (n−1)²/n · Beta_prob(1, (n−3)/2)`` for two components (Tracy, Young & Mason 1992) and
    the score variances ``s²`` of the ``n`` reference batches.
    """
    import numpy as np
    from scipy.special import betaincinv  # beta.ppf(q, a, b); see bioworkbench.monitoring.limits

    fn = "plot_scores"
    require_name(x, function=fn, argument="x")
    require_name(y, function=fn, argument="y")
    statistics = require_frame(statistics, function=fn, argument="statistics", columns=("batch_id", x, y))
    prob = require_prob(prob, function=fn)
    require_number(n_reference, function=fn, argument="n_reference", minimum=1, integer=True, allow_none=True)
    highlight = require_names(highlight, function=fn, argument="highlight")
    require_size(function=fn, width=width, height=height)
    hv = setup()
    d = statistics.select("batch_id", x, y)
    ref = d if n_reference is None else d.head(n_reference)
    n = ref.height
    if n < 4:
        raise SchemaError(f"plot_scores needs at least 4 batches for the ellipse; got {n}.")
    sx, sy = ref[x].var(), ref[y].var()
    t2 = (n - 1) ** 2 / n * betaincinv(1.0, (n - 3) / 2, prob)
    a = np.linspace(0, 2 * np.pi, 200)
    ell = hv.Curve((np.sqrt(t2 * sx) * np.cos(a), np.sqrt(t2 * sy) * np.sin(a))).opts(
        color=HIGHLIGHT, line_dash="dashed"
    )
    pts = d.hvplot.scatter(x=x, y=y, hover_cols=["batch_id"], color=BAND, size=40, width=width, height=height)
    plot = ell * pts
    hi = d.filter(pl.col("batch_id").is_in(highlight))
    if not hi.is_empty():
        plot = (
            plot
            * hi.hvplot.scatter(x=x, y=y, color=HIGHLIGHT, size=90, width=width, height=height)
            * hv.Labels(hi.to_pandas(), kdims=[x, y], vdims=["batch_id"]).opts(yoffset=0.05 * float(np.sqrt(sy)))
        )
    return plot.opts(
        hv.opts.Overlay(title=wrap_title(f"Scores {x} vs {y} with the {prob:.0%} ellipse", width), xlabel=x, ylabel=y)
    )


def plot_contributions(
    contributions: pl.DataFrame,
    *,
    statistic: str = "spe",
    by: str = "variable",
    top: int = 15,
    width: int = 500,
    height: int = 320,
) -> Any:
    """Bar chart of a batch's contributions to SPE or T² (``BatchPCA.contributions``), largest first.

    Parameters
    ----------
    contributions
        Rows with ``by`` and the ``statistic`` column.
    statistic
        The column of contributions (``"spe"``, ``"t2"``).
    by
        The column to sum the contributions by (``"variable"``, ``"maturity"``).
    top
        Bars shown: the ``top`` largest by absolute contribution.
    width, height
        Size in px.

    Returns
    -------
    holoviews.Bars
        Titled with the statistic and ``by``.

    Raises
    ------
    ArgumentError
        ``contributions`` is not a frame; a name or number is not one.
    SchemaError
        ``by`` or ``statistic`` is not a column.
    """
    fn = "plot_contributions"
    require_name(statistic, function=fn, argument="statistic")
    require_name(by, function=fn, argument="by")
    contributions = require_frame(contributions, function=fn, argument="contributions", columns=(by, statistic))
    require_number(top, function=fn, argument="top", minimum=1, integer=True)
    require_size(function=fn, width=width, height=height)
    setup()
    d = contributions.group_by(by).agg(pl.col(statistic).sum())
    d = d.sort(pl.col(statistic).abs(), descending=True).head(top)
    d = d.with_columns(pl.col(by).cast(pl.String))
    label = {"t2": "contribution to T²", "spe": "contribution to SPE"}.get(statistic, statistic)
    return d.hvplot.bar(
        x=by, y=statistic, color=BAND, width=width, height=height, rot=45, xlabel=by, ylabel=label
    ).opts(title=wrap_title(f"{label} by {by}", width))


def plot_golden(
    envelope: pl.DataFrame,
    aligned: pl.DataFrame,
    *,
    batch_id: str,
    variable: str,
    unit: str | None = None,
    width: int = 600,
    height: int = 280,
) -> Any:
    """A batch over the golden-batch envelope along maturity.

    Parameters
    ----------
    envelope
        ``bw.monitoring.golden_batch``: ``variable, maturity, center, lower, upper``.
    aligned
        Aligned observations (``bw.monitoring.align_by_time`` …): ``batch_id, variable, maturity, value``.
    batch_id
        The batch drawn in red; its points outside the envelope are marked.
    variable
        Canonical variable name.
    unit
        Unit on the axis and in the title; by default the envelope's ``unit`` column, else the
        variable's canonical unit (aligned values are in canonical units).
    width, height
        Size in px.

    Returns
    -------
    holoviews.Overlay
        Envelope band, centre line and the batch, titled with the variable, its unit and the batch.

    Raises
    ------
    ArgumentError
        A frame argument is not a frame; a name is not one.
    SchemaError
        A column is missing; no envelope or no aligned data of the variable for the batch.
    """
    fn = "plot_golden"
    envelope = require_frame(
        envelope, function=fn, argument="envelope", columns=("variable", "maturity", "center", "lower", "upper")
    )
    aligned = require_frame(
        aligned, function=fn, argument="aligned", columns=("batch_id", "variable", "maturity", "value")
    )
    require_name(batch_id, function=fn, argument="batch_id")
    require_name(variable, function=fn, argument="variable")
    require_size(function=fn, width=width, height=height)
    hv = setup()
    env = (
        envelope.filter(pl.col("variable") == variable).select("maturity", "center", "lower", "upper").sort("maturity")
    )
    b = aligned.filter((pl.col("batch_id") == batch_id) & (pl.col("variable") == variable)).select("maturity", "value")
    if env.is_empty() or b.is_empty():
        raise SchemaError(f"plot_golden: no envelope or no aligned data of {variable!r} for batch {batch_id!r}.")
    label = axis_label(variable, unit if unit is not None else unit_of(envelope, variable))
    opts = dict(xlabel="maturity", ylabel=label, width=width, height=height)
    plot = env.hvplot.area(
        x="maturity", y="lower", y2="upper", color=BAND, alpha=0.2, line_width=0, label="golden envelope", **opts
    )
    plot = plot * env.hvplot.line(x="maturity", y="center", color=BAND, line_dash="dashed", label="centre", **opts)
    plot = plot * b.sort("maturity").hvplot.line(
        x="maturity", y="value", color=HIGHLIGHT, line_width=2, label=batch_id, **opts
    )
    out = b.join(env, on="maturity").filter((pl.col("value") > pl.col("upper")) | (pl.col("value") < pl.col("lower")))
    if not out.is_empty():
        plot = plot * out.hvplot.scatter(x="maturity", y="value", color=HIGHLIGHT, size=40, **opts)
    return plot.opts(
        hv.opts.Overlay(title=wrap_title(f"{label}: {batch_id} vs golden batch", width), legend_position="top_left")
    )

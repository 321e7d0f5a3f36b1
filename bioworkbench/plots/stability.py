"""Figures of stability studies: the ICH Q1E shelf-life plot, Bayesian degradation predictions and the
probability of staying within spec over time.

The results come from :mod:`bioworkbench.stability` (``shelf_life``) and
:class:`~bioworkbench.models.StabilityModel` (``predict``, ``prob_in_spec``); the plots draw them and
compute nothing.

See :mod:`bioworkbench.plots` for the conventions shared by every plot.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from bioworkbench.checks import require_frame, require_number, require_prob
from bioworkbench.errors import SchemaError
from bioworkbench.plots.base import BAND, HIGHLIGHT, require_name, require_result, require_size, setup, wrap_title

__all__ = ["plot_prob_in_spec", "plot_shelf_life", "plot_stability_prediction"]

_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def _limits(hv: Any, lower: float | None, upper: float | None) -> list[Any]:
    return [
        hv.HLine(v).opts(color=HIGHLIGHT, line_width=2, line_dash="dashed") for v in (lower, upper) if v is not None
    ]


def plot_shelf_life(result: Any, *, width: int = 640, height: int = 380) -> Any:
    """ICH Q1E plot: the data per lot, the fitted lines of the chosen model, their confidence bounds,
    the acceptance limit(s) and the shelf life.

    Parameters
    ----------
    result
        :func:`bioworkbench.stability.shelf_life`'s :class:`ShelfLifeResult`.
    width, height
        Size in px (the legend of lots stands to the right of the frame).

    Returns
    -------
    holoviews.Overlay
        Per lot its points, fitted line and bound(s) (dotted; one line for every lot under the
        common model); the limits dashed red; the shelf life (black), the cap when it was capped
        (dashed) and the last time point (grey).

    Raises
    ------
    ArgumentError
        ``result`` is not a shelf-life result.
    """
    fn = "plot_shelf_life"
    result = require_result(
        result,
        ("bounds", "data", "shelf_life", "attribute", "lower", "upper", "model"),
        function=fn,
        argument="result",
        expected="a ShelfLifeResult from bw.stability.shelf_life",
    )
    require_size(function=fn, width=width, height=height)
    hv = setup()
    bounds = result.bounds()
    data = result.data
    lots = bounds["batch_id"].unique(maintain_order=True).to_list()
    colour = {b: _PALETTE[i % len(_PALETTE)] for i, b in enumerate(lots)}
    unit = f" ({result.unit})" if result.unit else ""
    ylabel = f"{result.attribute}{unit}"
    layers = []
    two = result.lower is not None and result.upper is not None
    side = [c for c, lim in (("lower", result.lower), ("upper", result.upper)) if lim is not None]
    for b in lots:
        d = bounds.filter(pl.col("batch_id") == b).sort("time")
        opts = dict(color=colour[b])
        layers.append(hv.Curve((d["time"], d["fit"]), "time", "value", label=str(b)).opts(line_width=2, **opts))
        for s in ("lower", "upper") if two else side:
            layers.append(hv.Curve((d["time"], d[s]), "time", "value").opts(line_dash="dotted", **opts))
        if result.model == "common":
            break  # one line for every lot
    pts = data.select("batch_id", "time", "value")
    for b in pts["batch_id"].unique(maintain_order=True).to_list():
        p = pts.filter(pl.col("batch_id") == b)
        layers.append(
            hv.Scatter(p.select("time", "value", "batch_id"), "time", ["value", "batch_id"]).opts(
                color=colour.get(b, "black"), size=7, tools=["hover"]
            )
        )
    layers += _limits(hv, result.lower, result.upper)
    if math.isfinite(result.shelf_life):
        layers.append(hv.VLine(result.shelf_life).opts(color="black", line_width=2))
        if result.capped:
            layers.append(hv.VLine(result.max_allowed).opts(color="black", line_dash="dashed"))
    layers.append(hv.VLine(result.last_time).opts(color="grey", line_dash="dotdash", alpha=0.6))
    sl = f"{result.shelf_life:.1f} {result.time_unit}s" if math.isfinite(result.shelf_life) else "not reached"
    lot = f" (lot {result.limiting_batch})" if result.limiting_batch else ""
    title = f"{result.attribute}: shelf life {sl}{lot}"
    xlabel = (
        f"time ({result.time_unit}s); dotted: {'two' if two else 'one'}-sided {result.confidence:.0%} bound "
        f"of the mean, model {result.model.replace('_', ' ')}"
    )
    return hv.Overlay(layers).opts(
        hv.opts.Overlay(
            title=wrap_title(title, width, margin=200),  # the legend stands to the right of the frame
            width=width,
            height=height,
            xlabel=xlabel,
            ylabel=ylabel,
            legend_position="right",
        )
    )


def plot_stability_prediction(
    prediction: pl.DataFrame,
    *,
    study: pl.DataFrame | None = None,
    attribute: str | None = None,
    lower: float | None = None,
    upper: float | None = None,
    temperature_c: float | None = None,
    time_unit: str = "month",
    what: str = "posterior mean",
    width: int = 640,
    height: int = 360,
) -> Any:
    """A Bayesian degradation prediction: posterior mean with its interval band over time, the lots'
    data at the same storage temperature, and the spec limit(s).

    Parameters
    ----------
    prediction
        :meth:`StabilityModel.predict`: ``time, mean, lower, upper`` (and ``prob``); an optional
        ``batch_id`` draws one band per lot.
    study
        The study (``time, value, batch_id``): its unflagged rows of ``attribute`` at
        ``temperature_c`` are drawn as points.
    attribute
        The attribute (axis label, title, and the study's rows).
    lower, upper
        Specification limits (dashed red).
    temperature_c
        Storage temperature in °C of the prediction (title, and the study's rows).
    time_unit
        Unit of ``time`` (``"month"``…), on the axis.
    what
        What the band is (title): ``"posterior mean"``, ``"a new lot (predictive)"``.
    width, height
        Size in px.

    Returns
    -------
    holoviews.Overlay
        Titled with the attribute, the temperature, ``what`` and the interval's probability.

    Raises
    ------
    ArgumentError
        A frame argument is not a frame; a name or number is not one.
    SchemaError
        A column is missing; the prediction is empty.
    """
    fn = "plot_stability_prediction"
    prediction = require_frame(
        prediction, function=fn, argument="prediction", columns=("time", "mean", "lower", "upper")
    )
    if study is not None:
        study = require_frame(study, function=fn, argument="study", columns=("time", "value", "batch_id"))
    require_name(attribute, function=fn, argument="attribute", allow_none=True)
    require_number(lower, function=fn, argument="lower", allow_none=True)
    require_number(upper, function=fn, argument="upper", allow_none=True)
    require_number(temperature_c, function=fn, argument="temperature_c", allow_none=True, unit="°C")
    require_name(time_unit, function=fn, argument="time_unit")
    require_size(function=fn, width=width, height=height)
    hv = setup()
    if prediction.is_empty():
        raise SchemaError("plot_stability_prediction: the prediction is empty.")
    groups = (
        prediction["batch_id"].unique(maintain_order=True).to_list() if "batch_id" in prediction.columns else [None]
    )
    layers = []
    for i, g in enumerate(groups):
        d = prediction if g is None else prediction.filter(pl.col("batch_id") == g)
        d = d.sort("time")
        col = BAND if len(groups) == 1 else _PALETTE[i % len(_PALETTE)]
        layers.append(
            hv.Area((d["time"], d["lower"], d["upper"]), "time", ["lower", "upper"]).opts(
                color=col, alpha=0.2, line_width=0
            )
        )
        layers.append(
            hv.Curve((d["time"], d["mean"]), "time", "value", label=str(g) if g is not None else "").opts(
                color=col, line_width=2
            )
        )
    if study is not None and not study.is_empty():
        s = study
        if attribute is not None and "attribute" in s.columns:
            s = s.filter(pl.col("attribute") == attribute)
        if temperature_c is not None and "temperature_c" in s.columns:
            s = s.filter((pl.col("temperature_c") - temperature_c).abs() < 1e-9)
        if "flag" in s.columns:
            s = s.filter(pl.col("flag").is_null())
        if not s.is_empty():
            layers.append(
                hv.Scatter(s.select("time", "value", "batch_id"), "time", ["value", "batch_id"]).opts(
                    color="black", size=6, tools=["hover"]
                )
            )
    layers += _limits(hv, lower, upper)
    prob = float(prediction["prob"][0]) if "prob" in prediction.columns else None
    where = f" at {temperature_c:g} °C" if temperature_c is not None else ""
    title = f"{attribute or 'attribute'}{where}: {what}" + (f", {prob:.0%} interval" if prob else "")
    return hv.Overlay(layers).opts(
        hv.opts.Overlay(
            title=wrap_title(title, width),
            width=width,
            height=height,
            xlabel=f"time ({time_unit}s)",
            ylabel=attribute or "value",
        )
    )


def plot_prob_in_spec(
    frame: pl.DataFrame,
    *,
    target: float | None = 0.95,
    shelf_life: float | None = None,
    time_unit: str = "month",
    width: int = 640,
    height: int = 300,
) -> Any:
    """Probability that a lot stays within spec at each time, with a target probability and,
    optionally, a proposed shelf life.

    Parameters
    ----------
    frame
        :meth:`StabilityModel.prob_in_spec`: ``time, prob``.
    target
        The probability a lot should keep (dashed red), or ``None``.
    shelf_life
        A proposed shelf life in ``time_unit`` (black line), or ``None``; not drawn when infinite
        or NaN (not reached).
    time_unit
        Unit of ``time``, on the axis.
    width, height
        Size in px.

    Returns
    -------
    holoviews.Overlay
        The probability over time on a 0–1 axis.

    Raises
    ------
    ArgumentError
        ``frame`` is not a frame; ``target`` is not a probability; a number is not one.
    SchemaError
        A column is missing; nothing to draw.
    """
    fn = "plot_prob_in_spec"
    frame = require_frame(frame, function=fn, argument="frame", columns=("time", "prob"))
    if target is not None:
        require_prob(target, function=fn, argument="target")
    if shelf_life is not None and not (isinstance(shelf_life, float) and not math.isfinite(shelf_life)):
        require_number(shelf_life, function=fn, argument="shelf_life", minimum=0, unit=time_unit)
    require_name(time_unit, function=fn, argument="time_unit")
    require_size(function=fn, width=width, height=height)
    hv = setup()
    if frame.is_empty():
        raise SchemaError("plot_prob_in_spec: nothing to draw.")
    d = frame.sort("time")
    layers = [hv.Curve((d["time"], d["prob"]), "time", "probability").opts(color=BAND, line_width=2, tools=["hover"])]
    if target is not None:
        layers.append(hv.HLine(target).opts(color=HIGHLIGHT, line_dash="dashed"))
    if shelf_life is not None and math.isfinite(shelf_life):
        layers.append(hv.VLine(shelf_life).opts(color="black"))
    return hv.Overlay(layers).opts(
        hv.opts.Overlay(
            title="Probability that a lot is within spec",
            width=width,
            height=height,
            xlabel=f"time ({time_unit}s)",
            ylabel="probability",
            ylim=(0, 1.02),
        )
    )

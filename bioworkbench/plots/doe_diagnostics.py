"""Diagnostic figures of a classical DoE analysis and of a design's prediction variance.

Residuals against predicted values, the normal probability plot of residuals and observed against
predicted (each one panel per response of an :class:`~bioworkbench.doe.Analysis`), and the
fraction-of-design-space curve of a design evaluation (:meth:`~bioworkbench.doe.Design.evaluate`).

The objects drawn are recognised by what they offer (``residuals``, ``fds``), not imported: the plots
sit below :mod:`bioworkbench.doe`. See :mod:`bioworkbench.plots` for the conventions of every plot.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from bioworkbench.checks import require_choice, require_frame
from bioworkbench.errors import SchemaError
from bioworkbench.plots.base import (
    BAND,
    HIGHLIGHT,
    OTHERS,
    require_name,
    require_result,
    require_size,
    setup,
    wrap_title,
)

__all__ = [
    "plot_fraction_of_design_space",
    "plot_normal_probability",
    "plot_observed_predicted",
    "plot_residuals",
]

_RESIDUAL_COLUMNS = ("run", "response", "observed", "predicted", "residual", "studentized", "leverage")
_EXPECTED = "a bw.doe.Analysis (from bw.doe.analyze)"


def _residuals(analysis: Any, response: str | None, *, function: str, column: str | None = None) -> pl.DataFrame:
    """The residual rows to draw (of ``response`` when given), without rows where ``column`` is null."""
    require_result(analysis, ["residuals"], function=function, argument="analysis", expected=_EXPECTED)
    frame = require_frame(
        analysis.residuals, function=function, argument="analysis.residuals", columns=_RESIDUAL_COLUMNS
    )
    require_name(response, function=function, argument="response", allow_none=True)
    if response is not None:
        present = frame["response"].unique(maintain_order=True).to_list()
        frame = frame.filter(pl.col("response") == response)
        if frame.is_empty():
            raise SchemaError(f"{function}: response {response!r} was not analysed; responses: {', '.join(present)}.")
    if column is not None:
        frame = frame.filter(pl.col(column).is_not_null())
    return frame


def plot_residuals(
    analysis: Any,
    *,
    response: str | None = None,
    residual: str = "studentized",
    width: int = 340,
    height: int = 280,
) -> Any:
    """Residuals against predicted values, one panel per response.

    Parameters
    ----------
    analysis
        A :class:`~bioworkbench.doe.Analysis` (its ``residuals`` frame is drawn).
    response
        Draw this response only; by default every analysed response.
    residual
        ``"studentized"`` (internally studentized, with dashed lines at ±3) or ``"residual"`` (in the
        response's unit).
    width, height
        Size of each panel in px.

    Returns
    -------
    holoviews.Layout
        Two panels per row; points beyond ±3 (studentized) in red, the run in the hover.

    Raises
    ------
    ArgumentError
        ``analysis`` has no ``residuals``; ``residual`` is not one of the choices.
    SchemaError
        ``response`` was not analysed.

    Notes
    -----
    A funnel shape shows variance growing with the response (a transformation may help); a curve,
    a missing term. Studentized residuals beyond ±3 are potential outliers (Montgomery, *Design and
    Analysis of Experiments*, 9th ed., §4.2.3). Runs with leverage 1 have no studentized residual and
    are not drawn.
    """
    fn = "plot_residuals"
    require_choice(residual, ("studentized", "residual"), function=fn, argument="residual")
    require_size(function=fn, width=width, height=height)
    frame = _residuals(analysis, response, function=fn, column=residual)
    hv = setup()
    panels = []
    for r in frame["response"].unique(maintain_order=True).to_list():
        d = frame.filter(pl.col("response") == r)
        outside = (d[residual].abs() > 3) if residual == "studentized" else pl.Series([False] * d.height)
        d = d.with_columns(colour=pl.when(outside).then(pl.lit(HIGHLIGHT)).otherwise(pl.lit(BAND)))
        pts = hv.Scatter(
            d.select("predicted", residual, "run", "colour").to_dict(as_series=False),
            kdims=["predicted"],
            vdims=[residual, "run", "colour"],
        ).opts(color="colour", size=7, tools=["hover"])
        overlay = hv.HLine(0).opts(color="black", line_dash="dashed") * pts
        if residual == "studentized":
            for level in (-3, 3):
                overlay = overlay * hv.HLine(level).opts(color=OTHERS, line_dash="dotted")
        panels.append(
            overlay.opts(
                hv.opts.Overlay(
                    title=wrap_title(f"{r}: residuals vs predicted", width),
                    width=width,
                    height=height,
                    xlabel=f"predicted {r}",
                    ylabel="studentized residual" if residual == "studentized" else "residual",
                )
            )
        )
    return hv.Layout(panels).cols(2).opts(shared_axes=False)


def plot_normal_probability(
    analysis: Any,
    *,
    response: str | None = None,
    residual: str = "studentized",
    width: int = 340,
    height: int = 280,
) -> Any:
    """Normal probability plot of the residuals, one panel per response.

    Parameters
    ----------
    analysis
        A :class:`~bioworkbench.doe.Analysis`.
    response
        Draw this response only; by default every analysed response.
    residual
        ``"studentized"`` or ``"residual"``.
    width, height
        Size of each panel in px.

    Returns
    -------
    holoviews.Layout
        Ordered residuals (x) against normal quantiles (y), with the line through the quartiles.

    Raises
    ------
    ArgumentError
        ``analysis`` has no ``residuals``; ``residual`` is not one of the choices.
    SchemaError
        ``response`` was not analysed.

    Notes
    -----
    The ``j``-th smallest of ``n`` residuals is drawn at the normal quantile ``Φ⁻¹((j - 0.5)/n)``
    (Montgomery, *Design and Analysis of Experiments*, 9th ed., §2.4.4 and §4.2.2). The reference line
    passes through the points of the first and third quartiles of the residuals and of the normal
    distribution; residuals from a normal distribution lie near it.
    """
    from scipy import stats

    fn = "plot_normal_probability"
    require_choice(residual, ("studentized", "residual"), function=fn, argument="residual")
    require_size(function=fn, width=width, height=height)
    frame = _residuals(analysis, response, function=fn, column=residual)
    hv = setup()
    panels = []
    for r in frame["response"].unique(maintain_order=True).to_list():
        d = frame.filter(pl.col("response") == r).sort(residual)
        n = d.height
        z = stats.norm.ppf((np.arange(1, n + 1) - 0.5) / n)
        e = d[residual].to_numpy()
        q1, q3 = np.quantile(e, [0.25, 0.75])
        z1, z3 = stats.norm.ppf([0.25, 0.75])
        slope = (z3 - z1) / (q3 - q1) if q3 > q1 else 1.0
        ends = np.array([e.min(), e.max()])
        line = hv.Curve((ends, z1 + slope * (ends - q1)), "residual_value", "normal_quantile").opts(
            color=OTHERS, line_dash="dashed"
        )
        pts = hv.Scatter(
            {"residual_value": e, "normal_quantile": z, "run": d["run"].to_list()},
            kdims=["residual_value"],
            vdims=["normal_quantile", "run"],
        ).opts(color=BAND, size=7, tools=["hover"])
        panels.append(
            (line * pts).opts(
                hv.opts.Overlay(
                    title=wrap_title(f"{r}: normal probability of residuals", width),
                    width=width,
                    height=height,
                    xlabel="studentized residual" if residual == "studentized" else "residual",
                    ylabel="normal quantile",
                )
            )
        )
    return hv.Layout(panels).cols(2).opts(shared_axes=False)


def plot_observed_predicted(analysis: Any, *, response: str | None = None, width: int = 320, height: int = 320) -> Any:
    """Observed against predicted values with the line of equality, one panel per response.

    Parameters
    ----------
    analysis
        A :class:`~bioworkbench.doe.Analysis`.
    response
        Draw this response only; by default every analysed response.
    width, height
        Size of each panel in px.

    Returns
    -------
    holoviews.Layout
        Points on the dashed line ``observed = predicted`` are fitted exactly; the title gives R².

    Raises
    ------
    ArgumentError
        ``analysis`` has no ``residuals``.
    SchemaError
        ``response`` was not analysed.
    """
    fn = "plot_observed_predicted"
    require_size(function=fn, width=width, height=height)
    frame = _residuals(analysis, response, function=fn)
    stats = getattr(analysis, "statistics", None)
    r2 = dict(stats.select("response", "r2").iter_rows()) if isinstance(stats, pl.DataFrame) else {}
    hv = setup()
    panels = []
    for r in frame["response"].unique(maintain_order=True).to_list():
        d = frame.filter(pl.col("response") == r)
        lo = float(min(d["observed"].min(), d["predicted"].min()))
        hi = float(max(d["observed"].max(), d["predicted"].max()))
        line = hv.Curve(([lo, hi], [lo, hi]), "predicted", "observed").opts(color=OTHERS, line_dash="dashed")
        pts = hv.Scatter(
            d.select("predicted", "observed", "run").to_dict(as_series=False),
            kdims=["predicted"],
            vdims=["observed", "run"],
        ).opts(color=BAND, size=7, tools=["hover"])
        title = f"{r}: observed vs predicted" + (f" (R² = {r2[r]:.3f})" if r in r2 else "")
        panels.append(
            (line * pts).opts(
                hv.opts.Overlay(
                    title=wrap_title(title, width),
                    width=width,
                    height=height,
                    xlabel=f"predicted {r}",
                    ylabel=f"observed {r}",
                )
            )
        )
    return hv.Layout(panels).cols(2).opts(shared_axes=False)


def plot_fraction_of_design_space(evaluations: Any, *, width: int = 420, height: int = 300) -> Any:
    """Fraction-of-design-space curve(s): relative prediction variance against the fraction of the region.

    Parameters
    ----------
    evaluations
        A design evaluation (:meth:`~bioworkbench.doe.Design.evaluate`; its ``fds`` frame), a
        ``{label: evaluation}`` mapping to compare designs, or a frame with ``fraction`` and
        ``relative_variance`` (and optionally ``design``).
    width, height
        Size in px.

    Returns
    -------
    holoviews.Overlay
        One curve per design; a lower, flatter curve predicts better over more of the region.

    Raises
    ------
    ArgumentError
        Neither an evaluation, a mapping of them nor a frame.
    SchemaError
        The frame lacks ``fraction`` or ``relative_variance``.

    Notes
    -----
    A point ``(f, v)`` means the relative prediction variance ``Var(ŷ(x))/σ²`` is at most ``v`` over
    a fraction ``f`` of the coded region (Zahran, Anderson-Cook & Myers 2003, J. Qual. Technol. 35,
    377–386).
    """
    fn = "plot_fraction_of_design_space"
    require_size(function=fn, width=width, height=height)
    if isinstance(evaluations, dict):
        parts = []
        for label, ev in evaluations.items():
            require_result(ev, ["fds"], function=fn, argument=f"evaluations[{label!r}]", expected="a design evaluation")
            parts.append(ev.fds.select("fraction", "relative_variance").with_columns(design=pl.lit(str(label))))
        frame = pl.concat(parts)
    elif isinstance(evaluations, pl.DataFrame):
        frame = require_frame(
            evaluations, function=fn, argument="evaluations", columns=("fraction", "relative_variance")
        )
    else:
        require_result(evaluations, ["fds"], function=fn, argument="evaluations", expected="a design evaluation")
        frame = evaluations.fds
    if "design" not in frame.columns:
        frame = frame.with_columns(design=pl.lit("design"))
    hv = setup()
    curves = [
        hv.Curve(
            frame.filter(pl.col("design") == label).select("fraction", "relative_variance").to_dict(as_series=False),
            "fraction",
            "relative_variance",
            label=label,
        ).opts(tools=["hover"], line_width=2)
        for label in frame["design"].unique(maintain_order=True).to_list()
    ]
    return hv.Overlay(curves).opts(
        hv.opts.Overlay(
            title=wrap_title("Fraction of design space", width),
            width=width,
            height=height,
            xlabel="fraction of design space",
            ylabel="relative prediction variance",
            legend_position="top_left",
            show_legend=len(curves) > 1,
        )
    )

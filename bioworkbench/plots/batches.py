"""Figures of batches and campaigns: trajectories, envelopes, kinetics, growth models, forecasts and monitoring.

See :mod:`bioworkbench.plots` for the conventions shared by every plot.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl

from bioworkbench._imports import without_iri_grammar
from bioworkbench.errors import MissingDependencyError, SchemaError

__all__ = [
    "plot_batch_envelopes",
    "plot_contributions",
    "plot_control_chart",
    "plot_cqa_grid",
    "plot_cqa_vs_cpp",
    "plot_envelope",
    "plot_forecast",
    "plot_forest",
    "plot_forests",
    "plot_golden",
    "plot_growth_fit",
    "plot_kinetics",
    "plot_online",
    "plot_outcomes",
    "plot_scores",
    "plot_trajectories",
    "setup",
]

HIGHLIGHT = "#d62728"
OTHERS = "#9aa5b1"
BAND = "#4c78a8"
_READY = False


def setup() -> Any:
    """Load HoloViews' Bokeh extension with inline resources (once) and register ``.hvplot``.

    Returns the ``holoviews`` module. Safe to call repeatedly (e.g. on notebook re-runs).
    """
    global _READY
    try:
        import holoviews as hv
    except ImportError as exc:  # pragma: no cover - hvplot is a hard dependency
        raise MissingDependencyError("plots need hvplot and holoviews: pip install hvplot") from exc
    if not _READY:
        _short_warnings()
        with without_iri_grammar():  # the extension imports nbformat: see bioworkbench._imports
            hv.extension("bokeh", inline=True, logo=False)
        import hvplot.polars  # noqa: F401  (registers DataFrame.hvplot)

        _READY = True
    return hv


def _short_warnings() -> None:
    """Show bioworkbench's own warnings as one line (``BioWorkbenchWarning: message``), without the
    source line Python would print — in a rendered report that line would leak code."""
    import sys
    import warnings

    from bioworkbench.errors import BioWorkbenchWarning

    original = warnings.showwarning
    if getattr(original, "_bioworkbench", False):
        return

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, BioWorkbenchWarning):
            print(f"{category.__name__}: {message}", file=file or sys.stderr)
        else:
            original(message, category, filename, lineno, file, line)

    show._bioworkbench = True  # type: ignore[attr-defined]
    warnings.showwarning = show


#: advance widths of Helvetica Bold (Adobe's AFM metrics, 1/1000 em) by character class; Bokeh draws
#: titles in bold Helvetica (or a metric-compatible Arial/Liberation Sans) at 16 px in HoloViews
_NARROW = dict.fromkeys(" !'(),-./:;I[]fijlrt|", 300)
_WIDE = dict.fromkeys("mwMW%@", 900)
TITLE_PX = 16
#: room a title leaves free: the y axis with its tick labels on the left, a margin on the right
TITLE_MARGIN_PX = 80


def _text_px(text: str, *, size: float = TITLE_PX) -> float:
    """Width of ``text`` in bold Helvetica at ``size`` px (an upper estimate: capitals and digits as
    wide as the widest, 722/1000 em; lower case 611)."""
    em = sum(_NARROW.get(c) or _WIDE.get(c) or (722 if c.isupper() or c.isdigit() else 611) for c in text)
    return em * size / 1000


def _title(text: str, width: int, *, margin: int = TITLE_MARGIN_PX) -> str:
    """``text`` broken into lines (Bokeh draws ``\n`` in a title as a line break) so that no line is
    wider than the plot's ``width`` less ``margin`` pixels: a long title (variable, unit, batch) is
    wrapped at spaces instead of running past the plot's edge."""
    room = max(width - margin, 60)
    lines: list[str] = []
    for word in text.split(" "):
        if lines and _text_px(lines[-1] + " " + word) <= room:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "\n".join(lines)


def _label(variable: str, unit: str | None) -> str:
    from bioworkbench.schema import registry

    reg = registry()
    desc = reg[variable].description if variable in reg else variable
    # capitalise the first letter, but keep symbols such as "pH" or "pCO2" as they are
    name = desc if not desc else desc if len(desc) > 1 and desc[1].isupper() else desc[:1].upper() + desc[1:]
    if not unit or unit == "1" or unit in name.replace(",", " ").split():  # "pH (pH)", "…, % of air (%)"
        return name
    return f"{name} ({unit})"


def _unit_of(observations: pl.DataFrame, variable: str) -> str | None:
    units = observations.filter(pl.col("variable") == variable)["unit"].unique().to_list()
    if units:
        return units[0]
    from bioworkbench.schema import registry

    reg = registry()
    return reg[variable].unit if variable in reg else None


def _narrow(
    observations: pl.DataFrame,
    variable: str,
    *,
    source: str | None,
    batch_ids: Iterable[str] | None = None,
    include_flagged: bool = False,
) -> pl.DataFrame:
    obs = observations.filter(pl.col("variable") == variable)
    if source is not None:
        obs = obs.filter(pl.col("source") == source)
    if batch_ids is not None:
        obs = obs.filter(pl.col("batch_id").is_in(list(batch_ids)))
    if not include_flagged:
        obs = obs.filter(pl.col("flag").is_null())
    if obs.is_empty():
        found = observations["variable"].unique().sort().to_list()
        raise SchemaError(
            f"no {source + ' ' if source else ''}observations of {variable!r} to plot"
            f"{' for the batches asked for' if batch_ids is not None else ''}. "
            f"Variables present: {', '.join(found) or 'none'}."
        )
    return obs.select("batch_id", (pl.col("time_h") / 24).alias("day"), "value").sort("batch_id", "day")


def _single_line(df: pl.DataFrame, *, x: str = "day", y: str = "value", by: str = "batch_id") -> pl.DataFrame:
    """All groups in one line, broken by a null row after each group: one glyph instead of one per
    batch, which keeps plots of many batches fast to build and to draw."""
    breaks = (
        df.select(by)
        .unique(maintain_order=True)
        .with_columns(pl.lit(None, dtype=df.schema[x]).alias(x), pl.lit(None, dtype=df.schema[y]).alias(y))
    )
    return pl.concat([df.select(by, x, y), breaks]).sort(by, x, nulls_last=True, maintain_order=True)


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
        Batch drawn in colour on top of the others (grey).
    batch_ids
        Restrict to these batches.
    source
        ``"offline"`` (default), ``"online"``, ``"atline"`` or ``None`` for all.
    """
    hv = setup()
    df = _narrow(observations, variable, source=source, batch_ids=batch_ids)
    unit = _unit_of(observations, variable)
    ylabel = _label(variable, unit)
    others = df.filter(pl.col("batch_id") != highlight) if highlight else df
    opts = dict(xlabel="Culture time (d)", ylabel=ylabel, width=width, height=height)
    plot = _single_line(others).hvplot.line(
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
        return plot.opts(title=_title(title, width), show_legend=False)
    return plot.opts(hv.opts.Overlay(title=_title(title, width), show_legend=True))


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
        From :func:`bioworkbench.review.envelope`: ``variable, time_h, median, lower, upper``.
    batch
        Observations of the batch (tidy); only ``variable`` rows are drawn.
    """
    hv = setup()
    env = envelope.filter(pl.col("variable") == variable).select(
        (pl.col("time_h") / 24).alias("day"), "median", "lower", "upper"
    )
    if env.is_empty():
        raise SchemaError(f"the envelope has no rows for {variable!r}.")
    if unit is None:
        unit = envelope.filter(pl.col("variable") == variable)["unit"][0] if "unit" in envelope.columns else None
    ylabel = _label(variable, unit)
    opts = dict(xlabel="Culture time (d)", ylabel=ylabel, width=width, height=height)
    band = env.hvplot.area(
        x="day",
        y="lower",
        y2="upper",
        color=BAND,
        alpha=0.2,
        label="5–95 % of batches",
        line_width=0,
        **opts,
    )
    med = env.hvplot.line(x="day", y="median", color=BAND, line_dash="dashed", label="median", **opts)
    plot = band * med
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
            title=_title(f"{ylabel}{': ' + batch_id if batch_id else ''} vs campaign envelope", width),
            legend_position="top_left",
        )
    )


def plot_kinetics(
    kinetics: pl.DataFrame,
    *,
    variables: Sequence[str] = ("mu", "ivcd", "q_glucose", "q_lactate", "qp"),
    batch_ids: Iterable[str] | None = None,
    highlight: str | None = None,
    width: int = 420,
    height: int = 260,
) -> Any:
    """Kinetics over culture time, one panel per quantity (from :func:`bioworkbench.kinetics.compute`)."""
    hv = setup()
    k = kinetics.filter(pl.col("variable").is_in(list(variables)))
    if batch_ids is not None:
        k = k.filter(pl.col("batch_id").is_in(list(batch_ids)))
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
        unit = d["unit"][0]
        opts = dict(
            xlabel="Culture time (d)",
            ylabel=f"{_KIN_LABELS.get(v, v)} ({unit})",
            width=width,
            height=height,
        )
        others = d.filter(pl.col("batch_id") != highlight) if highlight else d
        p = _single_line(others).hvplot.line(
            x="day",
            y="value",
            color=OTHERS if highlight else BAND,
            alpha=0.7,
            hover_cols=["batch_id"],
            **opts,
        )
        if highlight and not d.filter(pl.col("batch_id") == highlight).is_empty():
            p = p * d.filter(pl.col("batch_id") == highlight).hvplot.line(
                x="day", y="value", color=HIGHLIGHT, line_width=3, **opts
            )
        panels.append(p.opts(hv.opts.Overlay(title=_title(_KIN_LABELS.get(v, v), width))))
    return hv.Layout(panels).cols(2).opts(shared_axes=False)


_KIN_LABELS = {
    "mu": "Specific growth rate μ",
    "ivcd": "IVCD",
    "doubling_time": "Doubling time",
    "qp": "Specific productivity qp",
    "q_glucose": "q glucose",
    "q_lactate": "q lactate",
    "q_glutamine": "q glutamine",
    "q_ammonium": "q ammonium",
}


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

    ``table`` is one row per batch with ``batch_id``, the ``cpp`` column and the ``attribute``
    column (see :func:`bioworkbench.review.campaign_table`).
    """
    hv = setup()
    missing = [c for c in ("batch_id", cpp, attribute) if c not in table.columns]
    if missing:
        raise SchemaError(
            f"plot_cqa_vs_cpp: column(s) {', '.join(missing)} not in the table; columns: {', '.join(table.columns)}."
        )
    d = table.select("batch_id", cpp, attribute).drop_nulls()
    opts = dict(
        xlabel=cpp.removeprefix("cpp_").replace("_", " "),
        ylabel=attribute.replace("_", " "),
        width=width,
        height=height,
    )
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
    return plot.opts(
        hv.opts.Overlay(
            title=_title(f"{attribute.replace('_', ' ')} vs {cpp.removeprefix('cpp_').replace('_', ' ')}", width)
        )
    )


def plot_outcomes(table: pl.DataFrame, *, columns: Sequence[str], width: int = 300, height: int = 260) -> Any:
    """Batch-to-batch variability: one box-and-points panel per outcome column of a batch table."""
    hv = setup()
    panels = []
    for col in columns:
        if col not in table.columns:
            raise SchemaError(f"plot_outcomes: no column {col!r}; columns: {', '.join(table.columns)}.")
        d = table.select("batch_id", pl.col(col).cast(pl.Float64)).drop_nulls().with_columns(group=pl.lit(col))
        box = d.hvplot.box(
            y=col,
            by="group",
            width=width,
            height=height,
            ylabel=col.replace("_", " "),
            xlabel="",
            color=BAND,
            box_fill_alpha=0.3,  # BoxWhisker has no plain ``alpha`` (param would log a warning)
        )
        pts = d.hvplot.scatter(
            x="group",
            y=col,
            hover_cols=["batch_id"],
            color=HIGHLIGHT,
            size=30,
            width=width,
            height=height,
        )
        panels.append((box * pts).opts(hv.opts.Overlay(title=_title(col.replace("_", " "), width))))
    return hv.Layout(panels).cols(3).opts(shared_axes=False)


def plot_online(
    observations: pl.DataFrame,
    *,
    batch_id: str,
    variables: Sequence[str] = ("ph", "do", "temperature"),
    width: int = 700,
    height: int = 200,
    max_points: int = 5000,
) -> Any:
    """Online sensor traces of one batch, one panel per variable (decimated to ``max_points``)."""
    hv = setup()
    obs = observations.filter((pl.col("batch_id") == batch_id) & (pl.col("source") == "online"))
    panels = []
    for v in variables:
        d = (
            obs.filter(pl.col("variable") == v)
            .select((pl.col("time_h") / 24).alias("day"), "value", "flag")
            .sort("day")
        )
        if d.is_empty():
            continue
        step = max(1, d.height // max_points)
        d = d.gather_every(step)
        unit = _unit_of(observations, v)
        panels.append(
            d.hvplot.line(
                x="day",
                y="value",
                xlabel="Culture time (d)",
                ylabel=_label(v, unit),
                width=width,
                height=height,
                color=BAND,
                line_width=1,
            ).opts(title=_title(f"{_label(v, unit)} (online{f', every {step}th point' if step > 1 else ''})", width))
        )
    if not panels:
        raise SchemaError(f"batch {batch_id!r} has no online observations of {', '.join(variables)}.")
    return hv.Layout(panels).cols(1).opts(shared_axes=False)


def plot_batch_envelopes(
    envelope: pl.DataFrame,
    batch: pl.DataFrame,
    *,
    batch_id: str,
    variables: Sequence[str] = ("vcd", "viability", "glucose", "lactate", "ammonium", "titer"),
    width: int = 440,
    height: int = 260,
) -> Any:
    """One envelope panel per variable present in both the envelope and the batch."""
    hv = setup()
    have = set(envelope["variable"].unique().to_list()) & set(batch["variable"].unique().to_list())
    panels = [
        plot_envelope(envelope, batch, variable=v, batch_id=batch_id, width=width, height=height).opts(
            hv.opts.Overlay(title=_title(_label(v, None), width))
        )
        for v in variables
        if v in have
    ]
    if not panels:
        raise SchemaError(f"no variable of {', '.join(variables)} is in both the envelope and batch {batch_id}.")
    return hv.Layout(panels).cols(2).opts(shared_axes=False)


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
    """Every CQA against every CPP setpoint (one panel each), spec limits drawn."""
    hv = setup()
    panels = [
        plot_cqa_vs_cpp(table, attribute=a, cpp=c, specs=specs, highlight=highlight, width=width, height=height)
        for a in attributes
        if a in table.columns
        for c in cpps
    ]
    if not panels:
        raise SchemaError("plot_cqa_grid: none of the attributes is a column of the table.")
    return hv.Layout(panels).cols(len(cpps)).opts(shared_axes=False)


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

    ``prediction`` is a model's ``predict`` frame (``batch_id, time_h, mean, lower, upper``).
    """
    hv = setup()
    ids = list(batch_ids) if batch_ids is not None else prediction["batch_id"].unique(maintain_order=True).to_list()
    unit = _unit_of(observations, variable)
    panels = []
    for b in ids:
        p = prediction.filter(pl.col("batch_id") == b).select(
            (pl.col("time_h") / 24).alias("day"), "mean", "lower", "upper"
        )
        o = observations.filter(
            (pl.col("batch_id") == b) & (pl.col("variable") == variable) & (pl.col("source") != "online")
        )
        opts = dict(xlabel="Culture time (d)", ylabel=_label(variable, unit), width=width, height=height)
        panel = p.hvplot.area(
            x="day", y="lower", y2="upper", color=BAND, alpha=0.25, line_width=0, **opts
        ) * p.hvplot.line(x="day", y="mean", color=BAND, **opts)
        if not o.is_empty():
            good = o.filter(pl.col("flag").is_null()).select((pl.col("time_h") / 24).alias("day"), "value")
            panel = panel * good.hvplot.scatter(x="day", y="value", color="black", size=15, **opts)
            bad = o.filter(pl.col("flag").is_not_null()).select((pl.col("time_h") / 24).alias("day"), "value")
            if not bad.is_empty():
                panel = panel * bad.hvplot.scatter(x="day", y="value", color=HIGHLIGHT, marker="x", size=30, **opts)
        panels.append(panel.opts(hv.opts.Overlay(title=_title(str(b), width), show_legend=False)))
    if not panels:
        raise SchemaError("plot_growth_fit: no batches to draw.")
    return hv.Layout(panels).cols(cols).opts(shared_axes=False)


def plot_forest(
    summary: pl.DataFrame,
    *,
    parameter: str,
    width: int = 420,
    height: int | None = None,
) -> Any:
    """Forest plot of one parameter: per-batch means with intervals, the campaign value as a band."""
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
        hv.opts.Overlay(title=_title(title, width), width=width, height=height, xlabel=label, ylabel="batch")
    ).redim.values(batch=ids)


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
    """A running batch's forecast: predicted VCD and titer bands, the known data, what came after."""
    hv = setup()
    panels = []
    for var in ("vcd", "titer"):
        p = trajectory.filter((pl.col("batch_id") == batch_id) & (pl.col("variable") == var)).select(
            (pl.col("time_h") / 24).alias("day"), "mean", "lower", "upper"
        )
        if p.is_empty():
            continue
        unit = _unit_of(observations, var)
        opts = dict(xlabel="Culture time (d)", ylabel=_label(var, unit), width=width, height=height)
        panel = p.hvplot.area(
            x="day", y="lower", y2="upper", color=BAND, alpha=0.25, line_width=0, label="forecast interval", **opts
        )
        panel = panel * p.hvplot.line(x="day", y="mean", color=BAND, label="forecast", **opts)
        o = observations.filter(
            (pl.col("batch_id") == batch_id)
            & (pl.col("variable") == var)
            & (pl.col("source") != "online")
            & pl.col("flag").is_null()
        ).select((pl.col("time_h") / 24).alias("day"), "value", pl.col("time_h"))
        known = o.filter(pl.col("time_h") <= known_h)
        later = o.filter(pl.col("time_h") > known_h)
        if not known.is_empty():
            panel = panel * known.hvplot.scatter(x="day", y="value", color="black", size=30, label="known", **opts)
        if not later.is_empty():
            panel = panel * later.hvplot.scatter(
                x="day", y="value", color=OTHERS, size=30, label="after the forecast", **opts
            )
        panel = panel * hv.VLine(known_h / 24).opts(color="black", line_dash="dotted")
        if var == "titer" and spec_lower is not None:
            panel = panel * hv.HLine(spec_lower).opts(color=HIGHLIGHT, line_dash="dashed")
        panels.append(
            panel.opts(
                hv.opts.Overlay(
                    title=_title(f"{_label(var, unit)}: forecast from day {known_h / 24:.1f}", width),
                    legend_position="top_left",
                )
            )
        )
    if not panels:
        raise SchemaError(f"plot_forecast: no forecast rows for batch {batch_id!r}.")
    return hv.Layout(panels).cols(2).opts(shared_axes=False)


def plot_forests(summary: pl.DataFrame, *, parameters: Sequence[str], cols: int = 2, width: int = 420) -> Any:
    """Forest plots of several parameters side by side, each on its own axis."""
    hv = setup()
    return (
        hv.Layout([plot_forest(summary, parameter=p, width=width) for p in parameters])
        .cols(cols)
        .opts(shared_axes=False)
    )


def plot_control_chart(
    monitor: pl.DataFrame,
    *,
    statistic: str = "spe",
    batch_id: str | None = None,
    width: int = 600,
    height: int = 260,
) -> Any:
    """T² or SPE of a running batch along maturity against its limit (from ``BatchPCA.monitor``)."""
    hv = setup()
    if statistic not in ("t2", "spe"):
        raise SchemaError(f"statistic must be 't2' or 'spe'; got {statistic!r}.")
    m = monitor if batch_id is None else monitor.filter(pl.col("batch_id") == batch_id)
    if m.is_empty():
        raise SchemaError(f"no monitoring rows{' for batch ' + batch_id if batch_id else ''}.")
    lim = f"{statistic}_limit"
    d = m.select("batch_id", "maturity", statistic, lim).sort("batch_id", "maturity")
    label = {"t2": "Hotelling's T²", "spe": "SPE (squared prediction error)"}[statistic]
    opts = dict(xlabel="maturity", ylabel=label, width=width, height=height)
    plot = d.hvplot.line(x="maturity", y=statistic, by="batch_id", **opts) * d.hvplot.line(
        x="maturity", y=lim, color=HIGHLIGHT, line_dash="dashed", label="limit", **opts
    )
    out = d.filter(pl.col(statistic) > pl.col(lim))
    if not out.is_empty():
        plot = plot * out.hvplot.scatter(x="maturity", y=statistic, color=HIGHLIGHT, size=30, **opts)
    return plot.opts(hv.opts.Overlay(title=_title(f"{label}{': ' + batch_id if batch_id else ''}", width)))


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

    The ellipse is ``t_x²/s_x² + t_y²/s_y² = T²_lim`` with the training-batch limit
    ``(n−1)²/n · Beta(1, (n−3)/2)`` for two components (Tracy, Young & Mason 1992) and the score
    variances ``s²`` of the batches shown (or of the first ``n_reference`` rows).
    """
    import numpy as np
    from scipy import stats

    hv = setup()
    d = statistics.select("batch_id", x, y)
    ref = d if n_reference is None else d.head(n_reference)
    n = ref.height
    if n < 4:
        raise SchemaError(f"plot_scores needs at least 4 batches for the ellipse; got {n}.")
    sx, sy = ref[x].var(), ref[y].var()
    t2 = (n - 1) ** 2 / n * stats.beta.ppf(prob, 1.0, (n - 3) / 2)
    a = np.linspace(0, 2 * np.pi, 200)
    ell = hv.Curve((np.sqrt(t2 * sx) * np.cos(a), np.sqrt(t2 * sy) * np.sin(a))).opts(
        color=HIGHLIGHT, line_dash="dashed"
    )
    pts = d.hvplot.scatter(x=x, y=y, hover_cols=["batch_id"], color=BAND, size=40, width=width, height=height)
    plot = ell * pts
    hi = d.filter(pl.col("batch_id").is_in(list(highlight)))
    if not hi.is_empty():
        plot = (
            plot
            * hi.hvplot.scatter(x=x, y=y, color=HIGHLIGHT, size=90, width=width, height=height)
            * hv.Labels(hi.to_pandas(), kdims=[x, y], vdims=["batch_id"]).opts(yoffset=0.05 * float(np.sqrt(sy)))
        )
    return plot.opts(
        hv.opts.Overlay(title=_title(f"Scores {x} vs {y} with the {prob:.0%} ellipse", width), xlabel=x, ylabel=y)
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
    """Bar chart of a batch's contributions to SPE or T² (``BatchPCA.contributions``), largest first."""
    setup()
    if by not in contributions.columns or statistic not in contributions.columns:
        raise SchemaError(
            f"plot_contributions: columns {by!r} and {statistic!r} are needed; "
            f"found {', '.join(contributions.columns)}."
        )
    d = contributions.group_by(by).agg(pl.col(statistic).sum())
    d = d.sort(pl.col(statistic).abs(), descending=True).head(top)
    d = d.with_columns(pl.col(by).cast(pl.String))
    label = {"t2": "contribution to T²", "spe": "contribution to SPE"}.get(statistic, statistic)
    return d.hvplot.bar(
        x=by, y=statistic, color=BAND, width=width, height=height, rot=45, xlabel=by, ylabel=label
    ).opts(title=_title(f"{label} by {by}", width))


def plot_golden(
    envelope: pl.DataFrame,
    aligned: pl.DataFrame,
    *,
    batch_id: str,
    variable: str,
    width: int = 600,
    height: int = 280,
) -> Any:
    """A batch over the golden-batch envelope along maturity (from ``bw.monitoring.golden_batch``)."""
    hv = setup()
    env = (
        envelope.filter(pl.col("variable") == variable).select("maturity", "center", "lower", "upper").sort("maturity")
    )
    b = aligned.filter((pl.col("batch_id") == batch_id) & (pl.col("variable") == variable)).select("maturity", "value")
    if env.is_empty() or b.is_empty():
        raise SchemaError(f"plot_golden: no envelope or no aligned data of {variable!r} for batch {batch_id!r}.")
    opts = dict(xlabel="maturity", ylabel=_label(variable, None), width=width, height=height)
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
        hv.opts.Overlay(
            title=_title(f"{_label(variable, None)}: {batch_id} vs golden batch", width), legend_position="top_left"
        )
    )

"""The dashboard's batch page drawn once per browser session and updated in place on a batch change.

A batch change must be quick on the shop floor (< 1 s). Rebuilding the page's plots for each batch
(HoloViews to Bokeh on the server, new Bokeh views in the browser) took 1–3.5 s; here the figures of
a snapshot are made once per session, in plain Bokeh, and a batch change only replaces the data of
their ``ColumnDataSource`` and their titles, which the browser redraws without building anything.

* :func:`page_data` — what one batch's page draws, as plain columns (no web library; computed once
  per snapshot and batch and shared by all sessions);
* :class:`BatchPage` — the tabs of figures of one session, :meth:`BatchPage.show` to switch batch.

The figures of a snapshot are the same for every running batch (its online variables with a golden
batch, the offline variables of its campaign envelope, T² and SPE): a batch without data for one
of them gets an empty trace and a title that says so.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import polars as pl

from bioworkbench.interactive.live import OFFLINE_VARIABLES, LiveSnapshot
from bioworkbench.plots.base import BAND, HIGHLIGHT, axis_label, unit_of, wrap_title

__all__ = ["TABS", "BatchPage", "FigureData", "page_data"]

#: the batch page's tabs of figures: key, tab title, sentence when the snapshot has no such figure
TABS = (
    ("online", "Online vs golden batch", "No golden batch for this batch."),
    ("offline", "Samples vs other batches", "No campaign envelope (too few completed batches)."),
    ("mspc", "MSPC charts", "No MSPC chart for this batch."),
)
#: width and height of each figure, px
WIDTH, HEIGHT = 660, 300
#: type sizes of titles, axis labels, ticks and legends (large: read from a distance)
FONTS = {"title": "15pt", "labels": "15pt", "ticks": "13pt", "legend": "13pt"}
_DAYS = "Culture time (d)"
_STATISTICS = {"t2": "Hotelling's T²", "spe": "SPE (squared prediction error)"}
#: the traces of each kind of figure and the columns of their sources
_TRACES = {
    "band": ("day", "lower", "upper", "center"),
    "batch": ("day", "value"),
    "out": ("day", "value"),
}


@dataclass
class FigureData:
    """One figure of a batch page as plain columns.

    Attributes
    ----------
    key
        ``(tab, name)``: ``("online", "ph")``, ``("offline", "vcd")``, ``("mspc", "t2")``.
    title
        The figure's title (wrapped to its width).
    ylabel
        Its vertical axis label.
    band
        ``day, lower, upper, center``: the golden batch or the campaign envelope (its median), or
        the statistic's limit (``upper = center = limit``, ``lower`` 0) of an MSPC chart.
    batch
        ``day, value`` of the batch (empty where it has none).
    out
        ``day, value`` of the batch's points outside the band (on an envelope of samples: every sample).
    band_label, center_label, batch_label
        Legend entries of the band, its centre line (an MSPC chart's limit) and the batch.
    """

    key: tuple[str, str]
    title: str
    ylabel: str
    band: dict[str, list[float]]
    batch: dict[str, list[float]]
    out: dict[str, list[float]]
    band_label: str = "golden envelope"
    center_label: str = "centre"
    batch_label: str = ""


def _columns(frame: pl.DataFrame, names: tuple[str, ...]) -> dict[str, list[float]]:
    return {n: frame[n].to_list() if n in frame.columns else [] for n in names}


def page_data(snap: LiveSnapshot, batch_id: str) -> dict[str, list[FigureData]]:
    """What the batch page of ``batch_id`` draws, by tab, as plain columns.

    Parameters
    ----------
    snap
        The campaign as last read from its folder.
    batch_id
        A running batch of ``snap``.

    Returns
    -------
    dict of str to list of FigureData
        ``online`` (one figure per online variable of the golden batch), ``offline`` (per offline
        variable of the campaign envelope, in :data:`~bioworkbench.interactive.live.OFFLINE_VARIABLES`
        order) and ``mspc`` (T² and SPE); the same figures, in the same order, for every batch of
        ``snap``; a list is empty where the snapshot has no golden batch, envelope or MSPC model.

    Notes
    -----
    Culture time in days, ``day = time_h / 24`` (``maturity / 24`` for the aligned online data
    and the MSPC statistics, whose maturity is culture time in hours on a 6-hour grid). A point
    is *outside* when ``value > upper`` or ``value < lower``.
    """
    online: list[FigureData] = []
    if snap.golden.height:
        mine = snap.aligned.filter(pl.col("batch_id") == batch_id) if snap.aligned.height else snap.aligned
        for v in snap.golden["variable"].unique(maintain_order=True).to_list():
            env = (
                snap.golden.filter(pl.col("variable") == v)
                .select((pl.col("maturity") / 24).alias("day"), "lower", "upper", "center")
                .sort("day")
            )
            b = (
                mine.filter((pl.col("variable") == v) & pl.col("value").is_not_null())  # none past its latest time
                .select((pl.col("maturity") / 24).alias("day"), "value")
                .sort("day")
                if mine.height
                else pl.DataFrame(schema={"day": pl.Float64, "value": pl.Float64})
            )
            out = b.join(env, on="day").filter(
                (pl.col("value") > pl.col("upper")) | (pl.col("value") < pl.col("lower"))
            )
            label = axis_label(v, unit_of(snap.golden, v))
            what = "vs golden batch" if b.height else "vs golden batch (no online data yet)"
            online.append(
                FigureData(
                    key=("online", v),
                    title=wrap_title(f"{label}: {batch_id} {what}", WIDTH),
                    ylabel=label,
                    band=_columns(env, _TRACES["band"]),
                    batch=_columns(b, _TRACES["batch"]),
                    out=_columns(out, _TRACES["out"]),
                    batch_label=batch_id,
                )
            )
    offline: list[FigureData] = []
    if snap.envelope.height:
        obs = snap.campaign.observations.filter(
            (pl.col("batch_id") == batch_id) & (pl.col("source") == "offline") & pl.col("flag").is_null()
        )
        in_envelope = set(snap.envelope["variable"].to_list())
        for v in (x for x in OFFLINE_VARIABLES if x in in_envelope):
            env = (
                snap.envelope.filter(pl.col("variable") == v)
                .select((pl.col("time_h") / 24).alias("day"), "lower", "upper", pl.col("median").alias("center"))
                .sort("day")
            )
            b = obs.filter(pl.col("variable") == v).select((pl.col("time_h") / 24).alias("day"), "value").sort("day")
            unit = snap.envelope.filter(pl.col("variable") == v)["unit"][0] if "unit" in snap.envelope.columns else None
            label = axis_label(v, unit)
            what = "vs campaign envelope" if b.height else "vs campaign envelope (no sample yet)"
            offline.append(
                FigureData(
                    key=("offline", v),
                    title=wrap_title(f"{label}: {batch_id} {what}", WIDTH),
                    ylabel=label,
                    band=_columns(env, _TRACES["band"]),
                    batch=_columns(b, _TRACES["batch"]),
                    out=_columns(b, _TRACES["out"]),
                    band_label="5–95 % of batches",
                    center_label="median",
                    batch_label=batch_id,
                )
            )
    mspc: list[FigureData] = []
    if snap.monitor.height:
        m = snap.monitor.filter(pl.col("batch_id") == batch_id).sort("maturity")
        for stat, name in _STATISTICS.items():
            d = m.select(
                (pl.col("maturity") / 24).alias("day"),
                pl.col(stat).alias("value"),
                pl.lit(0.0).alias("lower"),
                pl.col(f"{stat}_limit").alias("upper"),
                pl.col(f"{stat}_limit").alias("center"),
            )
            what = "" if d.height else " (no MSPC data yet)"
            mspc.append(
                FigureData(
                    key=("mspc", stat),
                    title=wrap_title(f"{name}: {batch_id}{what}", WIDTH),
                    ylabel=name,
                    band=_columns(d, _TRACES["band"]),
                    batch=_columns(d, _TRACES["batch"]),
                    out=_columns(d.filter(pl.col("value") > pl.col("upper")), _TRACES["out"]),
                    band_label="",
                    center_label="99 % limit",
                    batch_label=batch_id,
                )
            )
    return {"online": online, "offline": offline, "mspc": mspc}


class BatchPage:
    """The tabs of a batch page in one browser session: figures made once, data replaced on a batch change.

    Parameters
    ----------
    data
        :func:`page_data` of the first batch shown; its figures (keys) are those of every batch of
        the snapshot.
    notes
        Sentences shown on a tab without figures (why there is no golden batch…).

    Attributes
    ----------
    tabs
        The ``panel.Tabs`` to put on the page (the exceptions tab is last).
    """

    def __init__(self, data: dict[str, list[FigureData]], *, notes: list[str] = ()) -> None:
        import panel as pn

        from bioworkbench.interactive.style import CSS
        from bioworkbench.interactive.style import html_pane as _html

        self.keys = {tab: [f.key for f in figs] for tab, figs in data.items()}
        self._figures: dict[tuple[str, str], _Figure] = {}
        self.tabs = pn.Tabs(dynamic=True, stylesheets=[CSS], sizing_mode="stretch_width")
        for tab, title, empty in TABS:
            figs = data[tab]
            if not figs:
                text = f"<p>{html.escape(empty)}</p>" + "".join(f"<p>{html.escape(n)}</p>" for n in notes)
                self.tabs.append((title, _html(text)))
                continue
            panes = []
            for f in figs:
                self._figures[f.key] = _Figure(f, mspc=tab == "mspc")
                panes.append(pn.pane.Bokeh(self._figures[f.key].figure, margin=8))
            self.tabs.append((title, pn.FlexBox(*panes)))
        self.exceptions = _html("", sizing_mode="stretch_width")
        self.tabs.append(("Exceptions", self.exceptions))
        self.show(data)

    def fits(self, data: dict[str, list[FigureData]]) -> bool:
        """Whether ``data`` has the figures of this page (else a new page is made).

        Parameters
        ----------
        data
            :func:`page_data` of a batch.

        Returns
        -------
        bool
            Its tabs hold the same figures (keys), in the same order, as this page's.
        """
        return {tab: [f.key for f in figs] for tab, figs in data.items()} == self.keys

    def show(self, data: dict[str, list[FigureData]], *, exceptions: str = "", n_exceptions: int = 0) -> None:
        """Draw another batch: replace the figures' data and titles and the exceptions tab.

        Parameters
        ----------
        data
            :func:`page_data` of the batch, with the figures of this page (:meth:`fits`).
        exceptions
            The exceptions tab's HTML.
        n_exceptions
            Number of open exceptions, in the tab's title.
        """
        for figs in data.values():
            for f in figs:
                self._figures[f.key].show(f)
        self.exceptions.object = f'<div class="bw">{exceptions}</div>'
        name = f"Exceptions ({n_exceptions})"
        if self.tabs._names[-1] != name:
            self.tabs[-1] = (name, self.exceptions)


class _Figure:
    """One Bokeh figure of a batch page with its three data sources (band, batch, points)."""

    def __init__(self, data: FigureData, *, mspc: bool) -> None:
        from bokeh.models import ColumnDataSource, HoverTool, Legend, LegendItem
        from bokeh.plotting import figure

        f = figure(
            width=WIDTH,
            height=HEIGHT,
            title=data.title,
            x_axis_label=_DAYS,
            y_axis_label=data.ylabel,
            tools="pan,wheel_zoom,box_zoom,reset,save",
            toolbar_location="right",
        )
        f.title.text_font_size = FONTS["title"]
        for axis in (f.xaxis, f.yaxis):
            axis.axis_label_text_font_size = FONTS["labels"]
            axis.major_label_text_font_size = FONTS["ticks"]
        self.band = ColumnDataSource(data.band)
        self.batch = ColumnDataSource(data.batch)
        self.out = ColumnDataSource(data.out)
        items = []
        if not mspc:
            area = f.varea(x="day", y1="lower", y2="upper", source=self.band, fill_color=BAND, fill_alpha=0.2)
            items.append(LegendItem(label=data.band_label, renderers=[area]))
        center = f.line(
            x="day",
            y="center",
            source=self.band,
            line_color=HIGHLIGHT if mspc else BAND,
            line_dash="dashed",
            line_width=2,
        )
        items.append(LegendItem(label=data.center_label, renderers=[center]))
        line = f.line(x="day", y="value", source=self.batch, line_color=BAND if mspc else HIGHLIGHT, line_width=2.5)
        points = f.scatter(x="day", y="value", source=self.out, color=HIGHLIGHT, size=9)
        self.item = LegendItem(label=data.batch_label, renderers=[line, points])
        items.append(self.item)
        f.add_layout(Legend(items=items, location="top_left", label_text_font_size=FONTS["legend"]), "center")
        f.add_tools(HoverTool(renderers=[line], tooltips=[("day", "@day{0.0}"), ("value", "@value{0.[00]}")]))
        self.figure = f

    def show(self, data: FigureData) -> None:
        self.figure.title.text = data.title
        self.band.data = data.band
        self.batch.data = data.batch
        self.out.data = data.out
        self.item.label = {"value": data.batch_label}

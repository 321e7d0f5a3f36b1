"""``bw.explore(campaign)``: a campaign explorer for JupyterLab over the package's plot functions.

Pick the batches to show (by id, status, CPP level), the variables and what the colour shows (a CPP,
a group such as the cell line, the status). Select batches in the summary table, in the CPP-vs-outcome
scatter (box select or tap) or with :meth:`Explorer.select`: they are drawn in colour and thicker in
every trajectory plot and in red in the scatter, the other batches grey. Each variable has its own
axes. :meth:`Explorer.save` writes the current view to one HTML file that opens without internet.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from bioworkbench.campaign import Campaign
from bioworkbench.checks import require_campaign
from bioworkbench.errors import ArgumentError, SchemaError, suggest
from bioworkbench.interactive.offline import panel_offline

__all__ = ["Explorer", "explore"]

#: offline variables offered first, in this order, where measured
PREFERRED = ("vcd", "viability", "titer", "glucose", "lactate", "ammonium", "glutamine")
NO_COLOUR = "nothing (one colour)"


def explore(
    campaign: Campaign,
    *,
    variables: Sequence[str] | None = None,
    color_by: str | None = None,
    batch_ids: Iterable[str] | None = None,
    selected: Iterable[str] | None = None,
) -> Explorer:
    """An interactive explorer of ``campaign`` (shown when it is the last expression of a cell).

    Parameters
    ----------
    campaign
        The campaign.
    variables
        Offline variables to plot, one panel each (default: VCD, viability and titer where measured).
    color_by
        A column of ``campaign.batches`` (a CPP, ``status``, a group) or ``None``.
    batch_ids
        Batches shown at first (default: all).
    selected
        Batches selected at first.

    Returns
    -------
    Explorer

    Raises
    ------
    ArgumentError
        ``campaign`` is not a Campaign.
    SchemaError
        An unknown variable, column or batch (with the valid choices).
    """
    return Explorer(campaign, variables=variables, color_by=color_by, batch_ids=batch_ids, selected=selected)


class Explorer:
    """The explorer of :func:`explore`: widgets, linked views and the export of the current view.

    Parameters
    ----------
    campaign
        The campaign.
    variables, color_by, batch_ids, selected
        As for :func:`explore`.
    width, height
        Size of each trajectory plot, px.

    Raises
    ------
    ArgumentError
        ``campaign`` is not a Campaign.
    SchemaError
        An unknown variable, batch column or batch (with the closest names).

    Attributes
    ----------
    campaign
        The campaign explored.
    table
        One row per batch: ``batch_id``, status, the CPPs, the summary's outcomes (peak VCD, final
        titer, duration) and the harvest quality results.
    selected
        The selected batches (set through the table, the scatter or :meth:`select`).
    shown
        The batches that pass the pickers (ids, status, CPP levels).
    """

    def __init__(
        self,
        campaign: Campaign,
        *,
        variables: Sequence[str] | None = None,
        color_by: str | None = None,
        batch_ids: Iterable[str] | None = None,
        selected: Iterable[str] | None = None,
        width: int = 560,
        height: int = 300,
    ) -> None:
        pn = panel_offline()
        fn = "explore"
        self.campaign = require_campaign(campaign, function=fn)
        self.width, self.height = width, height
        self.table = _batch_table(campaign)
        offline = campaign.observations.filter(pl.col("source") == "offline")["variable"].unique().sort().to_list()
        ordered = [v for v in PREFERRED if v in offline] + [v for v in offline if v not in PREFERRED]
        if variables is None:
            variables = [v for v in ("vcd", "viability", "titer") if v in offline] or ordered[:3]
        _check_choices(list(variables), ordered, what="variables", argument="variables")
        colours = [
            *campaign.cpps,
            *[c for c in ("status", "process", "cell_line", "product") if c in campaign.batches.columns],
        ]
        if color_by is not None:
            _check_choices([color_by], colours, what="batch columns", argument="color_by")
        ids = campaign.batch_ids
        if batch_ids is not None:
            _check_choices(list(batch_ids), ids, what="batches", argument="batch_ids")
        self.selected: list[str] = []
        if selected is not None:
            _check_choices(list(selected), ids, what="batches", argument="selected")
            self.selected = [b for b in ids if b in set(selected)]
        self._quiet = False

        # -- pickers ----------------------------------------------------------------------------
        self.pick_ids = pn.widgets.MultiChoice(
            label="Batches (empty: all)", options=ids, value=list(batch_ids or []), width=300
        )
        statuses = campaign.batches["status"].drop_nulls().unique().sort().to_list()
        self.pick_status = pn.widgets.MultiChoice(label="Status", options=statuses, value=statuses, width=300)
        self.pick_levels = {
            c: pn.widgets.MultiChoice(
                label=c.removeprefix("cpp_").replace("_", " "),
                options=[str(v) for v in campaign.batches[c].drop_nulls().unique().sort().to_list()],
                value=[str(v) for v in campaign.batches[c].drop_nulls().unique().sort().to_list()],
                width=300,
            )
            for c in campaign.cpps
        }
        self.pick_variables = pn.widgets.MultiChoice(
            label="Variables", options=ordered, value=list(variables), width=300
        )
        self.pick_colour = pn.widgets.Select(
            label="Colour by", options=[NO_COLOUR, *colours], value=color_by or NO_COLOUR, width=300
        )
        numeric = [c for c, t in self.table.schema.items() if t.is_numeric()]
        outcomes = [c for c in numeric if c not in campaign.cpps and not c.startswith("n_")]
        self.pick_x = pn.widgets.Select(label="Scatter: CPP", options=list(campaign.cpps) or numeric, width=300)
        y0 = "final_titer" if "final_titer" in outcomes else (outcomes[0] if outcomes else numeric[0])
        self.pick_y = pn.widgets.Select(label="Scatter: outcome", options=outcomes or numeric, value=y0, width=300)
        self.clear = pn.widgets.Button(label="Clear selection", width=300)
        self.clear.on_click(lambda event: self.select([]))

        # -- views ------------------------------------------------------------------------------
        self.trajectories = pn.FlexBox()
        self.scatter = pn.pane.HoloViews(None, linked_axes=False)
        self.summary = pn.widgets.Tabulator(
            self.table.to_pandas(),
            selectable="checkbox",
            disabled=True,
            show_index=False,
            height=320,
            sizing_mode="stretch_width",
        )
        self.message = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.summary.param.watch(self._on_table, "selection")
        for w in (self.pick_ids, self.pick_status, *self.pick_levels.values()):
            w.param.watch(lambda event: self._update(filters=True), "value")
        for w in (self.pick_variables, self.pick_colour):
            w.param.watch(lambda event: self._update(trajectories=True), "value")
        for w in (self.pick_x, self.pick_y):
            w.param.watch(lambda event: self._update(scatter=True), "value")
        self.shown: list[str] = []
        self._update(filters=True)
        controls = pn.Column(
            pn.pane.Markdown(f"### {html.escape(campaign.name)}"),
            self.pick_ids,
            self.pick_status,
            *self.pick_levels.values(),
            self.pick_variables,
            self.pick_colour,
            self.pick_x,
            self.pick_y,
            self.clear,
            width=320,
        )
        self.layout = pn.Row(
            controls,
            pn.Column(self.message, self.trajectories, pn.Row(self.scatter), self.summary, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )

    # -- state ------------------------------------------------------------------------------------
    @property
    def variables(self) -> list[str]:
        """The variables plotted."""
        return list(self.pick_variables.value)

    @property
    def color_by(self) -> str | None:
        """The batch column the lines are coloured by (``None``: one colour)."""
        return None if self.pick_colour.value == NO_COLOUR else self.pick_colour.value

    def select(self, batch_ids: Iterable[str]) -> Explorer:
        """Select batches: drawn in colour and thicker in every view, ticked in the table.

        Parameters
        ----------
        batch_ids
            Batch ids; an empty list clears the selection.

        Returns
        -------
        Explorer
            Itself.

        Raises
        ------
        SchemaError
            An unknown batch (with the closest ids).
        """
        ids = list(batch_ids) if not isinstance(batch_ids, str) else [batch_ids]
        _check_choices(ids, self.campaign.batch_ids, what="batches", argument="batch_ids")
        self.selected = [b for b in self.campaign.batch_ids if b in set(ids)]
        self._update(selection=True)
        return self

    def _on_table(self, event: Any) -> None:
        if self._quiet:
            return
        rows = self._rows()
        self.selected = [rows[i] for i in event.new if i < len(rows)]
        self._update(selection=True, from_table=True)

    def _on_scatter(self, ids: list[str]) -> None:
        if self._quiet:
            return
        self.selected = [b for b in self.campaign.batch_ids if b in set(ids)]
        self._update(selection=True)

    def _rows(self) -> list[str]:
        return self.table.filter(pl.col("batch_id").is_in(self.shown))["batch_id"].to_list()

    def _update(
        self,
        *,
        filters: bool = False,
        trajectories: bool = False,
        scatter: bool = False,
        selection: bool = False,
        from_table: bool = False,
    ) -> None:
        if filters:
            self.shown = self._filtered()
            self._quiet = True
            try:
                self.summary.value = self.table.filter(pl.col("batch_id").is_in(self.shown)).to_pandas()
            finally:
                self._quiet = False
        if filters or selection:
            if not from_table:
                rows = self._rows()
                self._quiet = True
                try:
                    self.summary.selection = [rows.index(b) for b in self.selected if b in rows]
                finally:
                    self._quiet = False
        if filters or selection or trajectories:
            self.trajectories.objects = self._trajectory_panes()
        if filters or selection or scatter:
            self.scatter.object = self._scatter()
        n_sel = len([b for b in self.selected if b in self.shown])
        self.message.object = (
            f"**{len(self.shown)} of {len(self.campaign.batch_ids)} batches shown**, {n_sel} selected"
            + (f": {', '.join(b for b in self.selected if b in self.shown)}" if n_sel else "")
            + ". Select batches in the table (tick boxes) or in the scatter (box select or tap)."
        )

    def _filtered(self) -> list[str]:
        b = self.campaign.batches
        keep = pl.col("status").is_in(list(self.pick_status.value))
        if self.pick_ids.value:
            keep = keep & pl.col("batch_id").is_in(list(self.pick_ids.value))
        for c, w in self.pick_levels.items():
            keep = keep & pl.col(c).cast(pl.String).is_in(list(w.value))
        return b.filter(keep)["batch_id"].to_list()

    # -- views ------------------------------------------------------------------------------------
    def figures(self) -> list[Any]:
        """The trajectory plots of the current view, one per variable (own axes each).

        Returns
        -------
        list of holoviews objects
            :func:`bioworkbench.plots.plot_trajectories` of each variable over the shown batches,
            coloured by :attr:`color_by`, the selection drawn thicker; a variable without data in
            the shown batches is left out.
        """
        from bioworkbench.plots import plot_trajectories

        out = []
        if not self.shown:
            return out
        for v in self.variables:
            try:
                out.append(
                    plot_trajectories(
                        self.campaign.observations,
                        variable=v,
                        batch_ids=self.shown,
                        color_by=self.color_by,
                        batches=self.campaign.batches,
                        selected=[b for b in self.selected if b in self.shown],
                        width=self.width,
                        height=self.height,
                    )
                )
            except SchemaError:
                continue  # no data of v in the batches shown: nothing to draw
        return out

    def _trajectory_panes(self) -> list[Any]:
        import panel as pn

        figs = self.figures()
        if not figs:
            return [pn.pane.Markdown("No batch or no data to show: widen the pickers.")]
        return [pn.pane.HoloViews(f, linked_axes=False) for f in figs]

    def scatter_figure(self) -> Any:
        """The CPP-vs-outcome scatter of the shown batches, the selected ones in red.

        Returns
        -------
        holoviews.Overlay or None
            ``None`` when no shown batch has both values.
        """
        import holoviews as hv

        from bioworkbench.plots.base import BAND, HIGHLIGHT, OTHERS, setup, wrap_title

        setup()
        x, y = self.pick_x.value, self.pick_y.value
        d = self.table.filter(pl.col("batch_id").is_in(self.shown)).select("batch_id", x, y).drop_nulls()
        if d.is_empty():
            return None
        sel = set(self.selected)
        xl, yl = x.removeprefix("cpp_").replace("_", " "), y.replace("_", " ")
        base = hv.Points(d.to_pandas(), kdims=[x, y], vdims=["batch_id"]).opts(
            color=OTHERS if sel else BAND,
            size=12,
            tools=["hover", "box_select", "tap"],
            active_tools=["box_select"],
            xlabel=xl,
            ylabel=yl,
            width=self.width,
            height=self.height,
            nonselection_alpha=1.0,
            selection_alpha=1.0,
        )
        ids = d["batch_id"].to_list()
        stream = hv.streams.Selection1D(source=base)
        stream.add_subscriber(lambda index: self._on_scatter([ids[i] for i in index]) if index else None)
        self.scatter_stream = stream  # what a box select or tap in the scatter sets
        chosen = d.filter(pl.col("batch_id").is_in(list(sel)))
        layer = hv.Points(chosen.to_pandas(), kdims=[x, y], vdims=["batch_id"], label="selected").opts(
            color=HIGHLIGHT, size=16, tools=["hover"]
        )
        title = f"{yl} vs {xl}: {d.height} batches" + (f", {chosen.height} selected" if sel else "")
        # the legend beside the plot: inside it would hide points
        return (base * layer).opts(
            hv.opts.Overlay(title=wrap_title(title, self.width), show_legend=bool(sel), legend_position="right")
        )

    def _scatter(self) -> Any:
        return self.scatter_figure()

    # -- display and export -------------------------------------------------------------------------
    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        return self.layout._repr_mimebundle_(include, exclude)

    def servable(self) -> Any:
        """The explorer's layout, marked servable (``panel serve`` a notebook that ends with it).

        Returns
        -------
        panel.Row
            The pickers beside the views.
        """
        return self.layout.servable()

    def save(self, path: str | os.PathLike, *, title: str | None = None) -> Path:
        """Write the current view (trajectories, scatter, table of the shown batches) to one HTML file.

        The file holds every script and style it needs (Bokeh and Panel inlined): it opens
        offline, without a Python kernel. Its plots keep zoom and hover; the pickers are not in it.

        Parameters
        ----------
        path
            The ``.html`` file to write.
        title
            The page title (default: the campaign's name).

        Returns
        -------
        pathlib.Path
            The file written.

        Raises
        ------
        ArgumentError
            ``path`` does not end in ``.html``.
        """
        import holoviews as hv
        from bokeh.embed import file_html
        from bokeh.models import Div

        from bioworkbench.interactive.offline import inline_resources

        path = Path(path)
        if path.suffix.lower() not in (".html", ".htm"):
            raise ArgumentError(f"Explorer.save: path must end in .html; got {str(path)!r}.")
        name = title or f"{self.campaign.name}: campaign explorer"
        sel = [b for b in self.selected if b in self.shown]
        header = (
            f"<h1>{html.escape(name)}</h1><p>{len(self.shown)} of {len(self.campaign.batch_ids)} batches shown"
            + (f"; selected: {', '.join(sel)}" if sel else "")
            + (f"; colour: {html.escape(self.color_by)}" if self.color_by else "")
            + ".</p>"
        )
        figs = self.figures()
        sc = self.scatter_figure()
        if sc is not None:
            figs.append(sc)
        rows = self.table.filter(pl.col("batch_id").is_in(self.shown))
        # Bokeh alone, resources inlined: Panel's saved pages link their stylesheets from its CDN, and
        # Bokeh's INLINE would list Panel's es-module-shims at a path a saved file cannot load
        page = file_html(
            hv.render(hv.Layout(figs).cols(2).opts(shared_axes=False)) if figs else Div(text=""),
            resources=inline_resources(),
            title=name,
        )
        intro = f'<div style="font-family:sans-serif;margin:8px">{header}</div>'
        table = f'<div style="font-family:sans-serif;margin:8px">{_html_table(rows, sel)}</div>'
        # the page's own <body> is the last one: Bokeh's inlined scripts contain the string too
        head, body = page.rsplit("<body>", 1)
        body, tail = body.rsplit("</body>", 1)
        page = f"{head}<body>{intro}{body}{table}</body>{tail}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")
        return path


def _batch_table(campaign: Campaign) -> pl.DataFrame:
    """One row per batch: id, status, CPPs, the summary's outcomes and the harvest quality results."""
    s = campaign.summary().select(
        "batch_id",
        *[c for c in ("peak_vcd", "peak_vcd_day", "final_titer", "duration_d") if c in campaign.summary().columns],
    )
    b = campaign.batches.select("batch_id", "status", *campaign.cpps)
    out = b.join(s, on="batch_id", how="left")
    q = campaign.quality
    if q.height:
        wide = q.pivot(on="attribute", index="batch_id", values="value", aggregate_function="first")
        wide = wide.rename({c: f"harvest_{c}" if c in out.columns else c for c in wide.columns if c != "batch_id"})
        out = out.join(wide, on="batch_id", how="left")
    return out.with_columns(pl.col(pl.Float64).round(3))


def _html_table(rows: pl.DataFrame, selected: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows.columns)
    body = []
    for r in rows.iter_rows(named=True):
        style = ' style="background:#fde2e2;font-weight:bold"' if r["batch_id"] in selected else ""
        cells = "".join(f"<td>{'' if v is None else html.escape(str(v))}</td>" for v in r.values())
        body.append(f"<tr{style}>{cells}</tr>")
    return (
        '<table style="border-collapse:collapse;font-size:13px" border="1" cellpadding="3">'
        f"<tr>{head}</tr>{''.join(body)}</table>"
    )


def _check_choices(values: list[Any], valid: Sequence[str], *, what: str, argument: str) -> None:
    bad = [v for v in values if v not in valid]
    if bad:
        hint = suggest(str(bad[0]), list(valid), what=what.capitalize())
        raise SchemaError(f"explore: {argument}: unknown {what} {', '.join(map(repr, bad))}. {hint}")

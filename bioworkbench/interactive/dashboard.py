"""The operator dashboard (``bioworkbench serve``): running batches at a glance, in plain words.

An overview of cards, one per running batch (culture day, latest values, status against the golden
batch, open exceptions, harvest titer forecast), and a page per batch (online traces against the
golden batch, samples against the campaign envelope, MSPC charts, the exceptions table). The campaign
folder (or store) is checked in the background every ``refresh`` seconds and re-read when its files
changed (something was added to the store); forecasts are computed in a separate process and appear
when ready.

Everything is served by the Panel server itself on 127.0.0.1 by default: Bokeh and Panel resources
come from the server, the page loads no font, script or style from the internet.
"""

from __future__ import annotations

import html
import os
import threading
import time
from typing import Any

import polars as pl

from bioworkbench.checks import require_number
from bioworkbench.errors import ArgumentError, DataReadError
from bioworkbench.interactive.batch_page import BatchPage, FigureData, page_data
from bioworkbench.interactive.live import FolderWatch, ForecastService, LiveSnapshot, _word
from bioworkbench.interactive.offline import panel_offline
from bioworkbench.interactive.store_watch import StoreWatch
from bioworkbench.interactive.style import CSS
from bioworkbench.interactive.style import html_pane as _html

__all__ = ["DashboardServer", "DashboardSession", "serve"]

OVERVIEW = "All running batches"
#: what the cards say when forecasts are switched off (one object: a session redraws when it changes)
FORECASTS_OFF = {"error": "forecasts are switched off"}
LEVEL_WORDS = {"ok": "On track", "watch": "Watch", "alarm": "Act now"}


def _number(value: float) -> str:
    """A value with as many digits as an operator reads: 3 significant, no exponent."""
    if value is None:
        return "–"
    a = abs(value)
    if a >= 100:
        return f"{value:,.0f}"
    if a >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


class DashboardServer:
    """The shared state of all browser sessions: the watched folder or store, the forecasts, the refresh thread.

    Parameters
    ----------
    folder
        The campaign folder (re-read when its files change).
    store
        Instead of a folder, a campaign store's URL (re-read when something was added to it;
        :class:`~bioworkbench.interactive.store_watch.StoreWatch`).
    refresh
        Seconds between checks of the folder or store for new data.
    forecast
        Compute harvest forecasts (in a separate process).
    forecast_draws
        Posterior draws per chain of the forecasts.

    Raises
    ------
    DataReadError
        The folder (or the store's DuckDB file) does not exist, or the folder or store cannot be
        read (the first read happens here, so the first page is fast).
    ArgumentError
        Both or neither of ``folder`` and ``store``; ``refresh`` or ``forecast_draws`` is not a
        positive number.
    """

    def __init__(
        self,
        folder: str | os.PathLike | None = None,
        *,
        store: str | None = None,
        refresh: float = 60.0,
        forecast: bool = True,
        forecast_draws: int = 1000,
    ) -> None:
        self.refresh_s = float(
            require_number(refresh, function="serve", argument="refresh", minimum=0, min_inclusive=False, unit="s")
        )
        require_number(forecast_draws, function="serve", argument="forecast_draws", minimum=50, integer=True)
        if (folder is None) == (store is None):
            raise ArgumentError(
                "serve: give either a campaign folder or a store URL (--campaign FOLDER or --store URL), "
                f"not {'both' if store is not None else 'neither'}."
            )
        self.watch: FolderWatch | StoreWatch = FolderWatch(folder) if store is None else StoreWatch(store)
        self.watch.refresh()
        if self.watch.snapshot is None:
            raise DataReadError(f"serve: the {self.watch.label} cannot be read. {self.watch.error}")
        self.forecasts = ForecastService(draws=forecast_draws) if forecast else None
        self._stop = threading.Event()
        self._pages: dict[tuple[int, str], dict[str, list[FigureData]]] = {}
        self._pages_lock = threading.Lock()
        self._thread = threading.Thread(target=self._poll, name="bioworkbench-refresh", daemon=True)
        self._thread.start()
        self._ask_forecast()

    def page_data(self, snap: LiveSnapshot, batch_id: str) -> dict[str, list[FigureData]]:
        """The batch page's data of ``batch_id`` in ``snap``, computed once and kept for the snapshot.

        Parameters
        ----------
        snap
            The campaign as last read from its folder; a new snapshot drops the data of the old one.
        batch_id
            The batch whose page is shown.

        Returns
        -------
        dict of str to list of FigureData
            The figures of each tab of the batch page (online traces, samples, MSPC) as plain
            columns (:func:`~bioworkbench.interactive.batch_page.page_data`), by tab name.
        """
        key = (id(snap), batch_id)
        with self._pages_lock:
            if key not in self._pages:
                if self._pages and next(iter(self._pages))[0] != id(snap):
                    self._pages = {}  # a new snapshot: the data of the old one are dropped
                self._pages[key] = page_data(snap, batch_id)
            return self._pages[key]

    def _prewarm(self) -> None:
        """Compute every running batch's page data now, so that the first visit of a batch page is quick."""
        snap = self.watch.snapshot
        for b in snap.running if snap is not None else ():
            if self._stop.is_set() or self.watch.snapshot is not snap:
                return
            self.page_data(snap, b)

    def _ask_forecast(self) -> None:
        snap = self.watch.snapshot
        if self.forecasts is not None and snap is not None and snap.running:
            self.watch.forecast(self.forecasts)

    def _poll(self) -> None:
        self._prewarm()
        while not self._stop.wait(self.refresh_s):
            try:
                if self.watch.refresh():
                    self._ask_forecast()
                    self._prewarm()
            except Exception as exc:  # the thread must live on: the error is shown on the page
                self.watch.error = f"{type(exc).__name__}: {exc}"

    def forecast(self) -> dict[str, Any] | None:
        """The forecast of the current snapshot's running batches.

        Returns
        -------
        dict or None
            :meth:`ForecastService.get`'s result (``None`` while being computed), or
            :data:`FORECASTS_OFF` when forecasts are switched off.
        """
        if self.forecasts is None or self.watch.snapshot is None:
            return FORECASTS_OFF
        return self.watch.forecast(self.forecasts)

    def app(self) -> Any:
        """A new browser session's page (Panel calls it once per session).

        Returns
        -------
        panel.Column
            The page of a new :class:`DashboardSession`.
        """
        return DashboardSession(self).view

    def close(self) -> None:
        """Stop the refresh thread and the forecast process."""
        self._stop.set()
        if self.forecasts is not None:
            self.forecasts.close()


class DashboardSession:
    """One browser's page: the overview of cards or one batch's page, chosen in the batch picker.

    Parameters
    ----------
    server
        The state shared by all sessions (folder, forecasts, page data).

    Attributes
    ----------
    view
        The page (``panel.Column``): a heading with the "Show" picker, the status line, the
        overview and the batch page (one of the two hidden).
    page
        The batch page's figures (:class:`~bioworkbench.interactive.batch_page.BatchPage`), made
        once per snapshot when the overview is on screen and updated in place on a batch change.
    """

    def __init__(self, server: DashboardServer) -> None:
        import panel as pn

        self.server = server
        self.snap: LiveSnapshot | None = None
        self.forecast: dict[str, Any] | None = None
        self.picker = pn.widgets.Select(label="Show", options=[OVERVIEW], value=OVERVIEW, width=320, stylesheets=[CSS])
        self.title = _html("", sizing_mode="stretch_width")
        self.status_line = _html("", sizing_mode="stretch_width")
        # the overview and the batch page are both on the page, one of them hidden: going back and
        # forth sends nothing but the visibility, and a batch change only new data (BatchPage.show)
        self.overview = pn.Column(sizing_mode="stretch_width")
        self.summary = _html("", sizing_mode="stretch_width")
        self.batch = pn.Column(self.summary, sizing_mode="stretch_width", visible=False)
        self.page: BatchPage | None = None
        self.page_snap: LiveSnapshot | None = None
        self.view = pn.Column(
            pn.Row(self.title, self.picker, sizing_mode="stretch_width"),
            self.status_line,
            self.overview,
            self.batch,
            sizing_mode="stretch_width",
        )
        self.picker.param.watch(lambda event: self.render(), "value")
        self.update(force=True)
        period = min(self.server.refresh_s, 5.0) * 1000
        pn.state.add_periodic_callback(self.update, period=int(period))
        pn.state.onload(self._prebuild)

    def _prebuild(self) -> None:
        """Once the overview is on screen, make the (hidden) batch page, so the first pick is quick."""
        if self.page is None and self.snap is not None and self.snap.running:
            self._batch_page(self.snap.running[0])

    # -- state ----------------------------------------------------------------------------------
    def update(self, force: bool = False) -> None:
        """Re-draw when the folder was re-read or a forecast became ready (called on a period).

        Parameters
        ----------
        force
            Re-draw even if nothing changed.
        """
        snap = self.server.watch.snapshot
        fc = self.server.forecast()
        if force or snap is not self.snap or fc is not self.forecast:
            new_data = snap is not self.snap
            self.snap, self.forecast = snap, fc
            if new_data:
                options = [OVERVIEW, *snap.running]
                keep = self.picker.value if self.picker.value in options else OVERVIEW
                self.picker.options = options
                self.picker.value = keep
            self.render()
        self._status()

    def _status(self) -> None:
        w = self.server.watch
        when = time.strftime("%H:%M:%S", time.localtime(w.read_at)) if w.read_at else "never"
        text = f'<span class="bw-muted">Data read at {when}; checked every {self.server.refresh_s:g} s.</span>'
        if w.error:
            text += f" <b>The latest data could not be read</b> (showing the earlier data): {html.escape(w.error)}"
        self.status_line.object = f'<div class="bw">{text}</div>'

    # -- pages ----------------------------------------------------------------------------------
    def render(self) -> None:
        """Draw the page chosen in the picker: the overview's cards or a batch's page."""
        snap = self.snap
        name = html.escape(snap.campaign.name)
        if self.picker.value == OVERVIEW:
            self.title.object = f'<div class="bw"><h1>Running batches – {name}</h1></div>'
            self.overview.objects = [self._overview()]
            self.batch.visible, self.overview.visible = False, True
        else:
            b = self.picker.value
            self.title.object = f'<div class="bw"><h1>Batch {html.escape(b)} – {name}</h1></div>'
            self._batch_page(b)
            self.overview.visible, self.batch.visible = False, True

    def _overview(self) -> Any:
        import panel as pn

        snap = self.snap
        if not snap.running:
            return _html(
                "<p>No batch is running: no batch of this campaign has the status <i>running</i>.</p>"
                + "".join(f"<p>{html.escape(n)}</p>" for n in snap.notes)
            )
        cards = []
        for b in snap.running:
            button = pn.widgets.Button(label=f"Open batch {b}", color="primary", width=220, height=48)
            button.on_click(lambda event, b=b: setattr(self.picker, "value", b))
            cards.append(pn.Column(_html(self._card_html(b)), button, margin=10))
        return pn.FlexBox(*cards)

    def _forecast_html(self, batch_id: str) -> str:
        fc = self.forecast
        if fc is None:
            return '<p class="bw-forecast"><b>Harvest titer forecast:</b> <i>forecast being computed…</i></p>'
        if "error" in fc:
            return f'<p class="bw-forecast"><b>Harvest titer forecast:</b> none ({html.escape(fc["error"])})</p>'
        rows = {r["quantity"]: r for r in fc["endpoints"] if r["batch_id"] == batch_id}
        ft = rows.get("final_titer")
        if ft is None:
            return '<p class="bw-forecast"><b>Harvest titer forecast:</b> none (the campaign has no titer)</p>'
        text = (
            f'<p class="bw-forecast"><b>Harvest titer forecast</b> (day {fc["end_h"] / 24:.0f}): '
            f"<b>{ft['median']:,.0f} mg/L</b> ({fc['prob']:.0%} sure between {ft['lower']:,.0f} and "
            f"{ft['upper']:,.0f})"
        )
        below = rows.get("p_below_spec")
        if below is not None and fc.get("spec_lower") is not None:
            text += f"; chance below the {fc['spec_lower']:,.0f} mg/L spec: <b>{below['mean']:.0%}</b>"
        return text + ".</p>"

    def _card_html(self, batch_id: str) -> str:
        s = self.snap.batches[batch_id]
        end = f" of {self.snap.end_h / 24:.0f}" if self.snap.end_h else ""
        latest = "".join(
            f"<tr><td>{html.escape(_word(r['variable']) if r['variable'] in ('vcd', 'ph') else r['description'])}"
            f"</td><td><b>{_number(r['value'])}</b> {html.escape(r['unit'] or '')}</td>"
            f'<td class="bw-muted">day {r["day"]:.1f}</td></tr>'
            for r in s.latest.iter_rows(named=True)
        )
        sev = ", ".join(f"{n} {k}" for k, n in sorted(s.by_severity.items()))
        exc = f"{s.open_exceptions} open exception{'s' if s.open_exceptions != 1 else ''}" + (
            f" ({sev})" if sev else ""
        )
        return (
            f'<div class="bw-card {s.level}" id="card-{html.escape(batch_id)}">'
            f"<h2>{html.escape(batch_id)}</h2>"
            f'<p class="bw-day">Culture day <b>{s.day:.1f}</b>{end}</p>'
            f'<p><span class="bw-level">{html.escape(LEVEL_WORDS[s.level])}</span> '
            f"{html.escape(s.status.split(': ', 1)[1])}</p>"
            f"<p><b>{html.escape(exc)}</b></p>"
            f"<table>{latest}</table>"
            f"{self._forecast_html(batch_id)}</div>"
        )

    def _batch_page(self, batch_id: str) -> None:
        """Show ``batch_id`` on the batch page: the figures of the snapshot are made once per session."""
        snap = self.snap
        s = snap.batches[batch_id]
        self.summary.object = (
            f'<div class="bw"><div class="bw-card {s.level}" style="width:auto"><p>Culture day <b>{s.day:.1f}</b> · '
            f'<span class="bw-level">{html.escape(LEVEL_WORDS[s.level])}</span> '
            f"{html.escape(s.status.split(': ', 1)[1])}</p>{self._forecast_html(batch_id)}</div></div>"
        )
        data = self.server.page_data(snap, batch_id)
        exceptions = self._exceptions(batch_id)
        if self.page is None or self.page_snap is not snap or not self.page.fits(data):
            self.page, self.page_snap = BatchPage(data, notes=snap.notes), snap
            self.batch.objects = [self.summary, self.page.tabs]
        self.page.show(data, exceptions=exceptions, n_exceptions=s.open_exceptions)

    def _exceptions(self, batch_id: str) -> str:
        ex = self.snap.exceptions
        mine = ex.filter(pl.col("batch_id") == batch_id) if ex.height else ex
        if not mine.height:
            return "<p>No open exceptions.</p>"
        rows = "".join(
            f"<tr><td><b>{html.escape(r['severity'])}</b></td><td>{html.escape(r['category'])}</td>"
            f"<td>{'' if r['time_h'] is None else f'{r["time_h"] / 24:.1f}'}</td>"
            f"<td>{html.escape(r['sentence'])}</td></tr>"
            for r in mine.iter_rows(named=True)
        )
        return f"<table><tr><th>Severity</th><th>What</th><th>Day</th><th>Details</th></tr>{rows}</table>"


def serve(
    campaign: str | os.PathLike | None = None,
    *,
    store: str | None = None,
    port: int = 5006,
    address: str = "127.0.0.1",
    refresh: float = 60.0,
    forecast: bool = True,
    forecast_draws: int = 1000,
    threaded: bool = False,
    show: bool = False,
) -> Any:
    """Serve the operator dashboard of a campaign folder or store (``bioworkbench serve``).

    Parameters
    ----------
    campaign
        The campaign folder (re-read when its files change).
    store
        Instead of a folder, a campaign store's URL (``duckdb:///data/plant.duckdb``,
        ``postgresql://user@host/dbname``): its latest ingest is checked every ``refresh``
        seconds and the campaign read again when it changed.
    port, address
        Where to listen (127.0.0.1 by default: this computer only).
    refresh
        Seconds between checks of the folder or store for new data.
    forecast, forecast_draws
        Compute harvest titer forecasts (:func:`bioworkbench.models.forecast`, in a separate
        process; the cards say "forecast being computed" until they are ready) with this many
        posterior draws per chain.
    threaded
        Serve in a background thread and return at once (for tests and notebooks); otherwise
        serve until interrupted.
    show
        Open the page in the default web browser.

    Returns
    -------
    Served
        ``.url``, ``.stop()``.

    Raises
    ------
    DataReadError
        The folder (or the store's DuckDB file) does not exist or cannot be read.
    ArgumentError
        Both or neither of ``campaign`` and ``store``; a number out of range.
    """
    import panel as pn

    require_number(port, function="serve", argument="port", minimum=1, integer=True)
    panel_offline()
    state = DashboardServer(campaign, store=store, refresh=refresh, forecast=forecast, forecast_draws=forecast_draws)
    name = state.watch.name
    kwargs = dict(
        port=port,
        address=address,
        show=show,
        title=f"bioworkbench – {name}",
        websocket_origin=[f"{address}:{port}", f"localhost:{port}"],
        threaded=threaded,
        start=not threaded,
        verbose=False,
    )
    served = Served(state, address=address, port=port)
    if threaded:
        served.server = pn.serve(state.app, **{k: v for k, v in kwargs.items() if k != "start"})
        served.wait_started()
        return served
    print(f"Dashboard of the {state.watch.label}: http://{address}:{port}/ (stop with Ctrl+C)", flush=True)
    try:
        pn.serve(state.app, **kwargs)
    finally:
        state.close()
    return served


class Served:
    """A running dashboard server: its address and how to stop it."""

    def __init__(self, state: DashboardServer, *, address: str, port: int) -> None:
        self.state = state
        self.address, self.port = address, port
        self.server: Any = None

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}/"

    def wait_started(self, timeout: float = 60.0) -> None:
        """Return once the server accepts connections.

        Raises
        ------
        TimeoutError
            It did not within ``timeout`` seconds.
        """
        import socket

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                with socket.create_connection((self.address, self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"the dashboard server did not start on {self.url} within {timeout:.0f} s")

    def stop(self) -> None:
        """Stop serving, the refresh thread and the forecast process."""
        try:
            if self.server is not None:
                self.server.stop()
        finally:
            self.state.close()

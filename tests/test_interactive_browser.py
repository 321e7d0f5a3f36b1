"""The dashboard and the explorer's export in a real browser: Playwright driving Debian's Chromium.

Playwright's own browser download is not used (``executable_path`` is the system Chromium, found like
tests/browser.py does; ``scripts/ensure-chromium.sh`` installs it). The tests skip when there is no
Chromium or no Playwright, and only then. Every request the page makes is recorded and must go to
127.0.0.1 (or be a ``data:``/``blob:`` URL); anything else is aborted and fails the test.

Timings (first paint, batch change) are measured and printed, not asserted tightly: the targets are
< 3 s and < 1 s on an idle machine (benchmarks/bench_dashboard.py times them on the make demo
campaign). ``BW_SCREENSHOTS=1`` writes docs/dashboard.png, docs/dashboard_batch.png and
docs/explorer.png.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import polars as pl
import pytest

import bioworkbench as bw
from tests.browser import find_chromium

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = os.environ.get("BW_SCREENSHOTS") == "1"

pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'")


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("no Chromium found; run scripts/ensure-chromium.sh")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A copy of the demo campaign with three batches running (cut at days 5, 8.5 and 2.5)."""
    demo = bw.simulate_campaign(n_batches=12, random_seed=0)
    live = demo.as_of({"B10": 5 * 24.0, "B11": 8.5 * 24.0, "B12": 2.5 * 24.0})
    return live.write(tmp_path_factory.mktemp("live") / "campaign")


@pytest.fixture(scope="module")
def server(folder):
    from bioworkbench.interactive.dashboard import serve

    port = _free_port()
    served = serve(folder, port=port, refresh=1.0, forecast=False, threaded=True)
    yield served
    served.stop()


class Page:
    """A Playwright page that records JS errors and every request, and refuses non-local ones."""

    def __init__(self, browser):
        self.page = browser.new_page(viewport={"width": 1400, "height": 1100})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.refused: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(f"exception: {e}"))
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.route("**/*", self._route)

    def _route(self, route) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1:", "file://", "data:", "blob:")):
            route.continue_()
        else:
            self.refused.append(url)
            route.abort()

    def check_clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.refused == [], f"requests that leave 127.0.0.1: {self.refused}"
        assert all(u.startswith(("http://127.0.0.1:", "file://", "data:", "blob:")) for u in self.requests)


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            ],
        )
        yield b
        b.close()


_PLOT_TITLES_JS = """
() => {
  const out = [];
  for (const doc of Bokeh.documents) {
    for (const m of doc.all_models) {
      if (m.constructor.name === "Title" || (m.type || "") === "Title") out.push(m.text);
    }
  }
  return out;
}
"""

_VALUES_JS = """
(name) => {
  const out = [];
  for (const doc of Bokeh.documents) {
    for (const m of doc.all_models) {
      if (m.data !== undefined && m.data[name] !== undefined) out.push(...Array.from(m.data[name]));
    }
  }
  return out;
}
"""


def _wait_for_title(page, text: str, timeout: float = 30.0, *, gone: str | None = None) -> list[str]:
    """The plot titles once one names ``text`` and (with ``gone``) none names ``gone`` any more: the
    plots of a page are replaced one after another, so a busy machine can show both for a moment."""
    end = time.monotonic() + timeout
    titles: list[str] = []
    while time.monotonic() < end:
        titles = page.evaluate(_PLOT_TITLES_JS)
        if any(text in t for t in titles) and not (gone and any(gone in t for t in titles)):
            return titles
        time.sleep(0.05)
    left = f" and none with {gone!r}" if gone else ""
    raise AssertionError(f"no plot titled with {text!r}{left} within {timeout:.0f} s; titles: {titles}")


def test_dashboard_cards_batch_page_refresh(server, folder, browser):
    p = Page(browser)
    page = p.page
    t0 = time.monotonic()
    page.goto(server.url)
    page.get_by_text("Open batch B11").wait_for(timeout=60_000)
    first_paint = time.monotonic() - t0
    for b in ("B10", "B11", "B12"):
        card = page.locator(f"#card-{b}")
        card.wait_for()
        assert "Culture day" in card.inner_text()
    assert "Culture day 8.5" in page.locator("#card-B11").inner_text()
    assert "forecasts are switched off" in page.locator("#card-B11").inner_text()
    if SCREENSHOTS:
        page.screenshot(path=str(ROOT / "docs" / "dashboard.png"), full_page=True)

    # pick a batch: the heading and the plots follow
    t0 = time.monotonic()
    page.locator("select").select_option("B11")
    page.get_by_text("Batch B11 –").wait_for()
    titles = _wait_for_title(page, "B11 vs golden batch", gone="B10")
    batch_change = time.monotonic() - t0
    assert not any("B10" in t for t in titles)
    if SCREENSHOTS:
        page.wait_for_timeout(500)
        page.screenshot(path=str(ROOT / "docs" / "dashboard_batch.png"), full_page=True)
    t0 = time.monotonic()
    page.locator("select").select_option("B12")
    _wait_for_title(page, "B12 vs golden batch")
    second_change = time.monotonic() - t0
    print(
        f"\ndashboard: first paint {first_paint:.2f} s (target < 3 s), batch change {batch_change:.2f} s "
        f"then {second_change:.2f} s (target < 1 s)"
    )

    # samples against the campaign envelope: the latest VCD sample is in the plot's data
    page.get_by_text("Samples vs other batches").click()
    _wait_for_title(page, "B12 vs campaign envelope")
    obs = bw.read_campaign(folder).observations
    b12 = obs.filter((pl.col("batch_id") == "B12") & (pl.col("variable") == "vcd") & (pl.col("source") == "offline"))
    assert float(b12.sort("time_h")["value"][-1]) in page.evaluate(_VALUES_JS, "value")

    # a new observation in the folder appears after a refresh
    page.locator("select").select_option("All running batches")
    page.locator("#card-B12").wait_for()
    _append_vcd(folder, "B12", 2.75 * 24, 7.777)
    page.locator("#card-B12").get_by_text("7.78").wait_for(timeout=60_000)
    assert "Culture day 2.8" in page.locator("#card-B12").inner_text()
    p.check_clean()
    page.close()


def test_dashboard_says_forecast_being_computed(folder, browser):
    """With forecasts on, the first page paints at once and says the forecast is being computed."""
    from bioworkbench.interactive.dashboard import serve

    served = serve(folder, port=_free_port(), refresh=30.0, forecast=True, forecast_draws=100, threaded=True)
    try:
        p = Page(browser)
        t0 = time.monotonic()
        p.page.goto(served.url)
        p.page.locator("#card-B10").get_by_text("forecast being computed").wait_for(timeout=60_000)
        print(f"\ndashboard with forecasts: first paint {time.monotonic() - t0:.2f} s")
        p.check_clean()
        p.page.close()
    finally:
        served.stop()


@pytest.fixture(scope="module")
def store_url(tmp_path_factory) -> str:
    """A DuckDB store holding a small demo campaign with B02 running (known up to day 5)."""
    url = f"duckdb:///{tmp_path_factory.mktemp('store') / 'plant.duckdb'}"
    with bw.open_store(url) as store:
        store.add(bw.simulate_campaign(n_batches=6, random_seed=1).as_of({"B02": 120.0}), source="demo")
    return url


@pytest.fixture(scope="module")
def store_server(store_url):
    from bioworkbench.interactive.dashboard import serve

    served = serve(store=store_url, port=_free_port(), refresh=1.0, forecast=False, threaded=True)
    yield served
    served.stop()


def test_dashboard_from_a_store_follows_new_ingests(store_server, store_url, browser):
    """``serve --store``: the running batch's card, and a value added to the store after a refresh."""
    p = Page(browser)
    page = p.page
    page.goto(store_server.url)
    card = page.locator("#card-B02")
    card.wait_for(timeout=60_000)
    assert "Culture day 5.0" in card.inner_text()
    assert page.get_by_text("Running batches – plant").count() == 1
    assert page.locator(".bw-card").count() == 1  # B02 is the one running batch
    with bw.open_store(store_url) as store:
        last = store.campaign(["B02"], variables=["vcd"]).observations.filter(pl.col("source") == "offline")
        store.add(
            {"observations": last.tail(1).with_columns(time_h=pl.lit(5.25 * 24), value=pl.lit(7.777))},
            source="lims",
        )
    card.get_by_text("7.78").wait_for(timeout=60_000)
    assert "Culture day 5.2" in card.inner_text()
    p.check_clean()
    page.close()


def test_explorer_export_opens_offline(browser, tmp_path):
    """The exported view opens from a file with no request but to itself and no console error."""
    camp = bw.simulate_campaign(n_batches=12, random_seed=0)
    ex = bw.explore(camp, variables=["vcd", "titer"], color_by="cpp_feed_rate_pct").select(["B03", "B07"])
    path = ex.save(tmp_path / "explorer.html")
    assert 'src="static/' not in path.read_text(encoding="utf-8")  # Panel's es-module-shims is not listed
    p = Page(browser)
    p.page.goto(path.as_uri())
    titles = _wait_for_title(p.page, "Viable cell density (1e6 cells/mL)")
    p.page.get_by_role("heading", name="campaign explorer").wait_for()  # the header, on the page
    assert "selected: B03, B07" in p.page.locator("body").inner_text()
    assert any("2 selected" in t and "feed rate pct" in t for t in titles)
    assert any(t.startswith("final titer vs") for t in titles)
    p.page.wait_for_timeout(500)
    if SCREENSHOTS:
        p.page.screenshot(path=str(ROOT / "docs" / "explorer.png"), full_page=True)
    p.check_clean()
    p.page.close()


def _append_vcd(folder: Path, batch_id: str, time_h: float, value: float) -> None:
    """A new offline VCD sample, written the way the project writes a campaign folder."""
    c = bw.read_campaign(folder)
    obs = c.observations
    last = obs.filter(
        (pl.col("batch_id") == batch_id) & (pl.col("variable") == "vcd") & (pl.col("source") == "offline")
    )
    new = last.tail(1).with_columns(time_h=pl.lit(time_h), value=pl.lit(value))
    bw.Campaign(**{**c.frames(), "observations": pl.concat([obs, new])}, name=c.name, description=c.description).write(
        folder, overwrite=True
    )

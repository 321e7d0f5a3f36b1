"""Benchmark: the operator dashboard (``bioworkbench serve``) in a real browser — first paint and batch change.

Data: the ``make demo`` live campaign (24 simulated batches, seed 0, B14 running at day 5 and B22 at
day 7, as ``bioworkbench demo --running B14=5 --running B22=7`` writes it), or ``--campaign FOLDER``.
The dashboard is served on 127.0.0.1 in this process (forecasts off unless ``--forecast``: they
sample in a second process and would compete for the CPU) and opened by Playwright in Debian's
Chromium (``executable_path``; see tests/browser.py).

Timed, each ``--repeat`` times (a fresh page each time for the first paint):

- **first paint**: from ``goto`` to every running batch's card on screen;
- **batch change**: from picking a batch in the "Show" list to its heading, every plot of its first
  tab (online traces vs the golden batch) titled with that batch, and that many canvases on screen;
  ``--settle S`` waits S seconds after the first paint before the first pick (an operator reading
  the cards; the session prepares the hidden batch page meanwhile);
- the server's share of a batch change (building the page's Bokeh models, in the session's
  thread) and the bytes sent to the browser over the websocket for it.

Targets (issue 18): first paint < 3 s, batch change < 1 s. The machine may be shared: the load
average is printed before and after.

Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_dashboard.py
    PYTHONPATH=. .venv/bin/python benchmarks/bench_dashboard.py --campaign data/demo_live --repeat 5
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_TITLES_JS = """
() => {
  const out = [];
  for (const doc of Bokeh.documents) {
    for (const m of doc.all_models) {
      if (m.constructor.name === "Title") out.push(m.text);
    }
  }
  return out;
}
"""
_DRAWN_JS = """
(n) => {
  // Bokeh 3 draws in shadow roots: count the canvases on screen (a hidden one has no box), walking through them
  let count = 0;
  const walk = (root) => {
    for (const el of root.querySelectorAll("*")) {
      if (el.tagName === "CANVAS" && el.getBoundingClientRect().width > 0) count += 1;
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return count >= n;
}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min; {os.cpu_count()} cores)"


def _wait_titles(page, text: str, count: int, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if sum(text in t for t in page.evaluate(_TITLES_JS)) >= count:
            return
        time.sleep(0.02)
    raise TimeoutError(f"fewer than {count} plots titled with {text!r} after {timeout:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaign", type=Path, help="a campaign folder with running batches (default: make demo's)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--settle", type=float, default=0.0, help="seconds between first paint and the first pick (reading the cards)"
    )
    parser.add_argument("--forecast", action="store_true", help="compute forecasts too (a second process)")
    args = parser.parse_args()

    from bioworkbench.interactive import dashboard
    from bioworkbench.interactive.live import FolderWatch
    from tests.browser import find_chromium

    chromium = find_chromium()
    if chromium is None:
        print("no Chromium found; run scripts/ensure-chromium.sh", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    print(f"load average before: {_load()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.campaign
        if folder is None:
            from bioworkbench.cli import demo

            with contextlib.redirect_stdout(io.StringIO()):
                folder = demo(Path(tmp) / "demo_live", running_days={"B14": 5, "B22": 7})
        running = FolderWatch(folder)
        running.refresh()
        batches = running.snapshot.running
        n_online = len(running.snapshot.golden["variable"].unique()) if running.snapshot.golden.height else 0
        print(f"campaign {folder}: {len(running.snapshot.campaign.batch_ids)} batches, running {', '.join(batches)}")

        # the server's share: time spent building a batch page in the session
        server_s: list[float] = []
        render = dashboard.DashboardSession.render

        def timed_render(self):
            t0 = time.perf_counter()
            render(self)
            server_s.append(time.perf_counter() - t0)

        dashboard.DashboardSession.render = timed_render
        t0 = time.perf_counter()
        served = dashboard.serve(folder, port=_free_port(), refresh=60.0, forecast=args.forecast, threaded=True)
        print(f"server started in {time.perf_counter() - t0:.2f} s")
        paints, changes, change_server, change_bytes = [], [], [], []
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=chromium,
                    args=[
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-dev-shm-usage",
                        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                    ],
                )
                for i in range(args.repeat):
                    page = browser.new_page(viewport={"width": 1400, "height": 1100})
                    received = [0]
                    page.on(
                        "websocket",
                        lambda ws, received=received: ws.on(
                            "framereceived", lambda f: received.__setitem__(0, received[0] + len(f))
                        ),
                    )
                    t0 = time.perf_counter()
                    page.goto(served.url)
                    for b in batches:
                        page.locator(f"#card-{b}").wait_for(timeout=60_000)
                    paints.append(time.perf_counter() - t0)
                    first_bytes = received[0]
                    page.wait_for_timeout(args.settle * 1000)
                    for b in batches:
                        server_s.clear()
                        before = received[0]
                        t0 = time.perf_counter()
                        page.locator("select").select_option(b)
                        page.get_by_text(f"Batch {b} –").wait_for()
                        _wait_titles(page, f"{b} vs golden batch", n_online)
                        page.wait_for_function(_DRAWN_JS, arg=n_online, timeout=60_000)
                        changes.append(time.perf_counter() - t0)
                        change_server.append(sum(server_s))
                        change_bytes.append(received[0] - before)
                    print(
                        f"  round {i + 1}: first paint {paints[-1]:.2f} s ({first_bytes / 1e3:.0f} kB over the "
                        f"websocket); batch changes " + ", ".join(f"{c:.2f}" for c in changes[-len(batches) :]) + " s"
                    )
                    page.close()
                browser.close()
        finally:
            served.stop()
    med = statistics.median
    print(f"first paint:  median {med(paints):.2f} s, max {max(paints):.2f} s (target < 3 s)")
    print(f"batch change: median {med(changes):.2f} s, max {max(changes):.2f} s (target < 1 s)")
    print(
        f"  of which the server builds the page in median {med(change_server):.2f} s and sends "
        f"median {med(change_bytes) / 1e3:.0f} kB"
    )
    print(f"load average after: {_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

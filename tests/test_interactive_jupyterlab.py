"""The explorer inside a running JupyterLab, driven by Playwright in Debian's Chromium.

The test starts JupyterLab from this venv on 127.0.0.1 with a token, its root a temporary folder that
holds one small notebook (``bw.explore`` on a 6-batch simulated campaign, kernel ``bioworkbench``,
installed by ``make kernel``), runs the notebook in the page, ticks a batch in the explorer's table
and waits for the trajectory plot's title to say one batch is selected. Every HTTP request and
websocket of the page must go to 127.0.0.1; anything else is aborted and fails the test. The time
from the tick to the redrawn plot is printed (target < 1 s).

Skips (and only then) without Chromium, Playwright, JupyterLab or the ``bioworkbench`` kernel.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.browser import find_chromium

pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'")
pytest.importorskip("jupyterlab", reason="jupyterlab is not installed: pip install -e '.[dev]'")

BIN = Path(sys.executable).parent
KERNEL = "bioworkbench"
LOCAL = ("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:")
NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "explore",
            "metadata": {},
            "outputs": [],
            "source": [
                "import bioworkbench as bw\n",
                "\n",
                "campaign = bw.simulate_campaign(n_batches=6, random_seed=0)\n",
                'bw.explore(campaign, variables=["vcd"])',
            ],
        }
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python (bioworkbench)", "language": "python", "name": KERNEL},
        "language_info": {"name": "python"},
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}
_TITLES_JS = """
() => {
  const out = [];
  for (const doc of (window.Bokeh ? window.Bokeh.documents : [])) {
    for (const m of doc.all_models) {
      if (m.constructor.name === "Title") out.push(m.text);
    }
  }
  return out;
}
"""


def _kernel_installed() -> bool:
    out = subprocess.run(
        [str(BIN / "jupyter"), "kernelspec", "list", "--json"], capture_output=True, text=True, check=False
    )
    return out.returncode == 0 and KERNEL in json.loads(out.stdout or "{}").get("kernelspecs", {})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on 127.0.0.1 (token, temporary root with the notebook); stopped after the tests."""
    if shutil.which("jupyter-lab", path=str(BIN)) is None:
        pytest.skip("no jupyter-lab in this venv: pip install -e '.[dev]'")
    if not _kernel_installed():
        pytest.skip(f"no {KERNEL!r} kernel: run `make kernel`")
    root = tmp_path_factory.mktemp("lab")
    (root / "explore.ipynb").write_text(json.dumps(NOTEBOOK), encoding="utf-8")
    home = tmp_path_factory.mktemp("home")  # settings and workspaces of this run only
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
    }
    log = open(home / "lab.log", "w")  # closed below, after the server
    proc = subprocess.Popen(
        [
            str(BIN / "jupyter-lab"),
            "--no-browser",
            "--allow-root",  # CI runs as root
            "--ip=127.0.0.1",
            f"--port={port}",
            "--port-retries=0",
            f"--ServerApp.root_dir={root}",
            f"--IdentityProvider.token={token}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        end = time.monotonic() + 90
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise AssertionError(f"JupyterLab exited: {(home / 'lab.log').read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError(f"JupyterLab did not start in 90 s: {(home / 'lab.log').read_text()[-3000:]}")
        yield {"url": f"http://127.0.0.1:{port}", "token": token, "log": home / "lab.log"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_titles(page, predicate, what: str, timeout: float) -> list[str]:
    end = time.monotonic() + timeout
    titles: list[str] = []
    while time.monotonic() < end:
        titles = page.evaluate(_TITLES_JS)
        if any(predicate(t) for t in titles):
            return titles
        time.sleep(0.05)
    raise AssertionError(f"no plot title {what} within {timeout:.0f} s; titles: {titles}")


def test_explorer_in_jupyterlab_follows_a_selection(lab):
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium found; run scripts/ensure-chromium.sh")
    refused: list[str] = []
    seen: list[str] = []
    errors: list[str] = []
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
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1200})

            def route(r):
                seen.append(r.request.url)
                if r.request.url.startswith(LOCAL):
                    r.continue_()
                else:
                    refused.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.on("websocket", lambda ws: seen.append(ws.url))
            page.on("pageerror", lambda e: errors.append(f"exception: {e}"))
            page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
            t0 = time.monotonic()
            page.goto(f"{lab['url']}/lab/tree/explore.ipynb?token={lab['token']}")
            page.wait_for_function(
                "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                " && window.jupyterapp.shell.currentWidget.sessionContext"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.connectionStatus"
                " === 'connected'",
                timeout=120_000,
            )
            kernel = page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.name")
            assert kernel == KERNEL
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            _wait_titles(page, lambda t: "6 batches" in t, "for the 6 batches", timeout=180)
            opened = time.monotonic() - t0

            # tick batch B03 in the explorer's table: the trajectory plot follows
            row = page.locator(".tabulator-row", has_text="B03").first
            row.wait_for(timeout=30_000)
            t0 = time.monotonic()
            row.locator("input[type=checkbox]").click()
            titles = _wait_titles(page, lambda t: "1 selected" in t, "with 1 selected", timeout=60)
            followed = time.monotonic() - t0
            assert any("Viable cell density" in t and "1 selected" in t for t in titles), titles
            page.get_by_text("1 selected: B03").first.wait_for(timeout=10_000)
            print(
                f"\nexplorer in JupyterLab: notebook run and drawn in {opened:.1f} s; "
                f"selection to redrawn plot {followed:.2f} s (target < 1 s)"
            )
        finally:
            browser.close()
    assert refused == [], f"requests that leave 127.0.0.1: {refused}"
    assert all(u.startswith(LOCAL) for u in seen), [u for u in seen if not u.startswith(LOCAL)]
    assert errors == [], errors

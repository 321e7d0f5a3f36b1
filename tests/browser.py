"""Open a rendered report in headless Chromium, offline, and say what the page did.

Drives Debian's ``chromium`` over the Chrome DevTools Protocol (CDP) with ``websocket-client``:
starts a private browser (its own profile folder, no network but ``file:`` and ``data:``), opens
one page, collects every JavaScript exception, console error and log error, waits until Bokeh has
drawn, and reports the canvases it found (Bokeh 3 draws inside shadow roots, so the page is walked
through them) and whether each one holds any pixels.

    with Browser() as browser:
        page = browser.inspect(Path("reports/batch_report/<run>/report.html"), min_canvases=3)
    assert page.errors == [] and len(page.drawn_canvases) >= 3

:func:`find_chromium` returns ``None`` when there is no browser; tests skip on that (and only on
that). ``scripts/ensure-chromium.sh`` installs it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Browser", "BrowserError", "Canvas", "PageReport", "find_chromium", "live_processes"]

#: executables tried in turn (``$BW_CHROMIUM`` first)
CANDIDATES = (
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "/usr/lib/chromium/chromium",
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--mute-audio",
    # no name resolves, so nothing on the internet can be reached even if a URL slips through
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--window-size=1280,2000",
    "--remote-debugging-port=0",
)
#: URL schemes a self-contained report may load; anything else is a request to the network
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "devtools:")
#: blocked at the DevTools level as well (belt and braces with the resolver rules)
BLOCKED = ["http://*", "https://*", "ws://*", "wss://*", "ftp://*"]

# Every canvas of the page, shadow roots included, with its size and whether it holds any pixels
# that differ from its first pixel (a blank or single-colour canvas is "not drawn").
_CANVASES_JS = r"""
(() => {
  const found = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll("*")) {
      if (el.tagName === "CANVAS") found.push(el);
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  const out = [];
  for (const c of found) {
    const w = c.width, h = c.height;
    let drawn = false, error = null;
    if (w > 0 && h > 0) {
      try {
        const copy = document.createElement("canvas");
        copy.width = w; copy.height = h;
        const ctx = copy.getContext("2d");
        ctx.drawImage(c, 0, 0);
        const px = ctx.getImageData(0, 0, w, h).data;
        const r = px[0], g = px[1], b = px[2], a = px[3];
        for (let i = 4; i < px.length; i += 4) {
          if (px[i] !== r || px[i + 1] !== g || px[i + 2] !== b || px[i + 3] !== a) {
            drawn = true;
            break;
          }
        }
      } catch (e) {
        error = String(e);
      }
    }
    const host = c.getRootNode().host;
    out.push({width: w, height: h, drawn: drawn, error: error,
              css_width: c.clientWidth, css_height: c.clientHeight,
              host: host ? host.tagName.toLowerCase() + "." + host.className : null});
  }
  return JSON.stringify({
    canvases: out,
    bokeh: typeof Bokeh === "undefined" ? null : Bokeh.version,
    roots: document.querySelectorAll("[data-root-id]").length,
    ready: document.readyState,
  });
})()
"""


class BrowserError(RuntimeError):
    """Chromium did not start, or the DevTools connection failed."""


def live_processes(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are still running (zombies waiting to be reaped by init
    do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: ask the kernel whether the group has any member
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    live = []
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            live.append(int(stat.parent.name))
    return live


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable (``$BW_CHROMIUM`` first), or ``None``."""
    env = os.environ.get("BW_CHROMIUM")
    for name in ((env,) if env else ()) + CANDIDATES:
        path = shutil.which(name) if not os.path.isabs(name) else name
        if path and os.access(path, os.X_OK):
            return path
    return None


@dataclass
class Canvas:
    """One ``<canvas>`` of the page: pixel size, CSS size, whether any pixel differs."""

    width: int
    height: int
    drawn: bool
    css_width: int = 0
    css_height: int = 0
    host: str | None = None
    error: str | None = None


@dataclass
class PageReport:
    """What a page did: its canvases, its errors, and any request that left the machine."""

    url: str
    canvases: list[Canvas] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    network_requests: list[str] = field(default_factory=list)
    bokeh_version: str | None = None
    roots: int = 0
    seconds: float = 0.0
    #: what the ``probe`` expression of :meth:`Browser.inspect` returned (JSON-decoded)
    probe: Any = None

    @property
    def drawn_canvases(self) -> list[Canvas]:
        """Canvases with a non-zero size and at least two different pixel colours."""
        return [c for c in self.canvases if c.width > 0 and c.height > 0 and c.drawn]

    def describe(self) -> str:
        """A few lines for an assertion message."""
        lines = [
            f"{self.url}: Bokeh {self.bokeh_version}, {self.roots} root(s), "
            f"{len(self.canvases)} canvas(es), {len(self.drawn_canvases)} drawn, "
            f"{self.seconds:.1f} s"
        ]
        lines += [f"  error: {e}" for e in self.errors[:20]]
        lines += [f"  network request: {u}" for u in self.network_requests[:20]]
        return "\n".join(lines)


class _CDP:
    """A minimal blocking CDP client: commands by id, events kept in a list."""

    def __init__(self, ws_url: str, *, timeout: float = 30.0) -> None:
        import websocket  # websocket-client

        self.timeout = timeout
        self._ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True)
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict | None = None, *, session: str | None = None) -> dict[str, Any]:
        self._next += 1
        msg: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self._ws.send(json.dumps(msg))
        deadline = time.monotonic() + self.timeout
        while (left := deadline - time.monotonic()) > 0:
            reply = self._recv(left)
            if reply is not None and reply.get("id") == self._next:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
        raise BrowserError(f"{method}: no reply from the browser within {self.timeout:.0f} s")

    def pump(self, seconds: float) -> None:
        """Collect events for up to ``seconds``."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self._recv(left) is None:
                return

    def _recv(self, timeout: float | None) -> dict[str, Any] | None:
        import websocket

        if timeout is not None:
            self._ws.settimeout(max(timeout, 0.01))
        try:
            raw = self._ws.recv()
        except websocket.WebSocketTimeoutException:
            return None
        finally:
            if timeout is not None:
                self._ws.settimeout(self.timeout)
        msg = json.loads(raw)
        if "method" in msg:
            self.events.append(msg)
        return msg

    def close(self) -> None:
        try:
            self._ws.close()
        except Exception:
            pass


class Browser:
    """A private headless Chromium, started on enter and always stopped on exit."""

    def __init__(self, executable: str | None = None, *, startup_timeout: float = 30.0) -> None:
        self.executable = executable or find_chromium()
        if self.executable is None:
            raise BrowserError("no Chromium found; run scripts/ensure-chromium.sh")
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen | None = None
        self._profile: Path | None = None
        self._cdp: _CDP | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> Browser:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self._profile = Path(tempfile.mkdtemp(prefix="bw-chromium-"))
        log = open(self._profile / "chromium.log", "wb")
        self._proc = subprocess.Popen(
            [self.executable, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: renderers are stopped with it
        )
        log.close()
        try:
            port, path = self._devtools_port()
            self._cdp = _CDP(f"ws://127.0.0.1:{port}{path}")
        except BaseException:
            self.close()  # __exit__ does not run when __enter__ fails
            raise

    def _devtools_port(self) -> tuple[str, str]:
        port_file = self._profile / "DevToolsActivePort"
        end = time.monotonic() + self.startup_timeout
        while True:
            if port_file.exists():
                lines = port_file.read_text().split()
                if len(lines) >= 2:
                    return lines[0], lines[1]
            if self._proc.poll() is not None or time.monotonic() > end:
                raise BrowserError(
                    f"{self.executable} did not open its DevTools port within "
                    f"{self.startup_timeout:.0f} s. Its output:\n{self._log_tail()}"
                )
            time.sleep(0.05)

    def close(self) -> None:
        """Close the DevTools connection, stop the browser's process group, remove the profile."""
        if self._cdp is not None:
            try:
                self._cdp.send("Browser.close")
            except Exception:
                pass
            self._cdp.close()
            self._cdp = None
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            # the group is the browser we started (start_new_session): stop what is left of it
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if not live_processes(proc.pid):
                    break
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                end = time.monotonic() + 5
                while live_processes(proc.pid) and time.monotonic() < end:
                    time.sleep(0.05)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL was sent
                pass
        if self._profile is not None:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None

    def _log_tail(self) -> str:
        try:
            return (self._profile / "chromium.log").read_text(errors="replace")[-3000:]
        except (OSError, TypeError):
            return "(no output)"

    # -- one page ---------------------------------------------------------------------------
    def inspect(
        self,
        path: str | os.PathLike,
        *,
        min_canvases: int = 1,
        timeout: float = 60.0,
        settle: float = 1.0,
        probe: str | None = None,
    ) -> PageReport:
        """Open ``path`` offline; wait until ``min_canvases`` canvases are drawn (or ``timeout``).

        Waits a further ``settle`` seconds once they are, so late errors are caught too. ``probe``
        is a JavaScript expression returning a JSON string, evaluated in the page once it has
        settled; its decoded value is ``PageReport.probe``.
        """
        if self._cdp is None:
            raise BrowserError("the browser is not started")
        cdp = self._cdp
        url = Path(path).resolve().as_uri()
        t0 = time.monotonic()
        target = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        report = PageReport(url)
        try:
            for domain in ("Runtime", "Log", "Network", "Page"):
                cdp.send(f"{domain}.enable", session=session)
            cdp.send("Network.setBlockedURLs", {"urls": BLOCKED}, session=session)
            cdp.send("Network.setCacheDisabled", {"cacheDisabled": True}, session=session)
            first_event = len(cdp.events)
            cdp.send("Page.navigate", {"url": url}, session=session)
            end = time.monotonic() + timeout
            loaded = False
            state: dict[str, Any] = {}
            drawn_since: float | None = None
            while time.monotonic() < end:
                cdp.pump(0.25)
                loaded = loaded or any(
                    e.get("method") == "Page.loadEventFired" and e.get("sessionId") == session
                    for e in cdp.events[first_event:]
                )
                if not loaded:
                    continue
                state = self._evaluate(session, _CANVASES_JS)
                n_drawn = sum(1 for c in state["canvases"] if c["width"] and c["height"] and c["drawn"])
                if n_drawn >= min_canvases:
                    drawn_since = drawn_since or time.monotonic()
                    if time.monotonic() - drawn_since >= settle:
                        break
                else:
                    drawn_since = None
            if loaded:
                state = self._evaluate(session, _CANVASES_JS)
                if probe is not None:
                    report.probe = self._evaluate(session, probe)
            else:
                report.errors.append(f"the page did not finish loading within {timeout:.0f} s")
            report.canvases = [Canvas(**c) for c in state.get("canvases", [])]
            report.bokeh_version = state.get("bokeh")
            report.roots = state.get("roots", 0)
            for event in cdp.events[first_event:]:
                if event.get("sessionId") == session:
                    self._record(event, report)
        finally:
            try:
                cdp.send("Target.closeTarget", {"targetId": target})
            except BrowserError:
                pass
            cdp.events.clear()
        report.seconds = time.monotonic() - t0
        return report

    def _evaluate(self, session: str, expression: str) -> dict[str, Any]:
        res = self._cdp.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True},
            session=session,
        )
        if "exceptionDetails" in res:
            raise BrowserError(f"probe script failed: {res['exceptionDetails']}")
        return json.loads(res["result"]["value"])

    @staticmethod
    def _record(event: dict[str, Any], report: PageReport) -> None:
        method, p = event["method"], event.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            text = (d.get("exception") or {}).get("description") or d.get("text", "")
            report.errors.append(f"exception: {text.strip()[:500]} ({d.get('url', '')})")
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", a.get("type")))) for a in p.get("args", []))
            report.errors.append(f"console.{p['type']}: {args[:500]}")
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            report.errors.append(f"log ({e.get('source')}): {e.get('text', '')[:500]} {e.get('url', '')}")
        elif method == "Network.requestWillBeSent":
            u = p.get("request", {}).get("url", "")
            if not u.startswith(LOCAL_SCHEMES):
                report.network_requests.append(u[:300])

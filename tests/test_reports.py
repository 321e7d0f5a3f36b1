"""Report notebooks end to end: papermill on a small simulated campaign, offline HTML, a browser.

Every notebook in ``notebooks/`` is run once per session through
:func:`bioworkbench.reports.run_report` (kernel ``$BW_KERNEL``, default ``bioworkbench``) on a
six-batch campaign, and the tests share those runs: the HTML is self-contained (Bokeh inline, no
CDN, no code), headless Chromium draws it offline without JavaScript errors, the manifest records
the provenance, and runs are atomic. Broken inputs are refused before a kernel starts
(:class:`ConfigError`) or fail as a recorded run (:class:`ReportError`), alone, in ``run_many`` and
through the CLI.

The browser tests skip only when no Chromium is found (``scripts/ensure-chromium.sh`` installs
Debian's ``chromium``; ``$BW_CHROMIUM`` names another); set ``BW_REQUIRE_BROWSER=1`` to fail instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest
import yaml

import bioworkbench as bw
from bioworkbench.errors import BioWorkbenchError, ConfigError, ReportError
from bioworkbench.reports import (
    RunResult,
    notebook_parameters,
    run_many,
    run_report,
    write_index,
)

ROOT = Path(__file__).resolve().parents[1]
KERNEL = os.environ.get("BW_KERNEL", "bioworkbench")
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
#: the notebooks that draw with bw.plots, so their HTML must carry BokehJS and plot data
PLOTTING = sorted(n for n in NOTEBOOKS if "bw.plots." in (ROOT / "notebooks" / f"{n}.ipynb").read_text())
#: notebooks that fit Bayesian models (slow to start: the model is compiled in every kernel)
FITTING = sorted(
    n
    for n in NOTEBOOKS
    if any(s in (ROOT / "notebooks" / f"{n}.ipynb").read_text() for s in (".fit(", "growth_review(", "twin_review("))
)
#: small sampling settings for the tests (STYLE: report notebooks run with small CI parameters)
CI_PARAMETERS = {"draws": 50, "tune": 50, "chains": 2}
N_BATCHES = 6
BATCH = "B02"
RUN_ID = re.compile(r"^\d{8}T\d{9}Z-[A-Za-z0-9_.-]+$")
CDN_HOSTS = (
    "cdn.holoviz.org",
    "cdn.bokeh.org",
    "unpkg.com",
    "cdn.jsdelivr.net",
    "cdnjs.cloudflare.com",
)
#: CDN URLs compiled into the third-party bundles themselves (BokehJS, es-module-shims) that a
#: report cannot drop without editing library code; none is fetched by our plots (the browser test
#: proves it): MathJax only for LaTeX labels, Tabler only for Tabler icons, a source map only when
#: DevTools is open.
BUNDLED_CDN_URLS = (
    re.compile(r"https://cdn\.jsdelivr\.net/npm/mathjax@3/es5/tex-svg\.js"),
    re.compile(r"https://cdn\.jsdelivr\.net/npm/@tabler/icons-webfont@latest"),
    re.compile(r"https://cdn\.jsdelivr\.net/sm/[0-9a-f]+\.map"),
)
CDN_URL = re.compile(r"(?:https?:)?//(?:" + "|".join(map(re.escape, CDN_HOSTS)) + r")[^\s\"'`<>)\\]*")


# ---------------------------------------------------------------------------------------------
# fixtures: one small campaign, one broken copy, one run of every notebook
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def campaign_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six batches, 14 days, online every 30 min: small and quick to report on."""
    camp = bw.simulate_campaign(n_batches=N_BATCHES, random_seed=3, days=14, online_interval_min=30)
    return camp.write(tmp_path_factory.mktemp("campaign") / "small")


@pytest.fixture(scope="session")
def broken_campaign_dir(campaign_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Passes the checks made before the kernel (batches readable, batch present), but its
    observations file is cut short, so the notebook fails when it reads the campaign."""
    broken = tmp_path_factory.mktemp("campaign") / "broken"
    shutil.copytree(campaign_dir, broken)
    obs = broken / "observations.parquet"
    obs.write_bytes(obs.read_bytes()[:300])
    return broken


def _parameters_for(name: str, campaign: Path) -> dict:
    """The small campaign, batch B02, and tiny sampling for notebooks that fit models."""
    declared = notebook_parameters(ROOT / "notebooks" / f"{name}.ipynb")
    params: dict = {k: v for k, v in CI_PARAMETERS.items() if k in declared}
    if "campaign" in declared:
        params["campaign"] = str(campaign)
    if "batch_id" in declared:
        params["batch_id"] = BATCH
    return params


@pytest.fixture(scope="session")
def report_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reports")


@pytest.fixture(scope="session")
def failed_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("failed")


@pytest.fixture(scope="session")
def kernel_runs(
    campaign_dir: Path,
    broken_campaign_dir: Path,
    report_root: Path,
    failed_root: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, RunResult | BioWorkbenchError]:
    """Every notebook run once from a parameter file into ``report_root``, and the batch report
    on the broken campaign into a folder of its own (key ``"broken"``).

    The runs go through :func:`run_report` in two worker processes, slowest first (notebooks that
    fit models compile them in every fresh kernel), so the others run alongside.
    """
    params = tmp_path_factory.mktemp("parameters")
    jobs: dict[str, tuple[str, dict]] = {}
    for name in sorted(NOTEBOOKS, key=lambda n: (n not in FITTING, n)):
        pf = params / f"{name}.yaml"
        pf.write_text(yaml.safe_dump(_parameters_for(name, campaign_dir)))
        # concurrent runs would race on index.html: it is written once, below
        jobs[name] = (name, {"parameter_file": pf, "output_dir": report_root, "write_index_file": False})
    jobs["broken"] = (
        "batch_report",
        {"parameters": {"campaign": str(broken_campaign_dir), "batch_id": BATCH}, "output_dir": failed_root},
    )
    ctx = multiprocessing.get_context("spawn")  # no fork of a process holding polars' threads
    runs: dict[str, RunResult | BioWorkbenchError] = {}
    with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
        futures = {key: pool.submit(run_report, name, kernel=KERNEL, **kwargs) for key, (name, kwargs) in jobs.items()}
        for key, fut in futures.items():
            try:
                runs[key] = fut.result()
            except BioWorkbenchError as exc:  # reported by the tests of that run
                runs[key] = exc
    write_index(report_root)
    return runs


@pytest.fixture(scope="session")
def reports(kernel_runs) -> dict[str, RunResult | BioWorkbenchError]:
    return {name: kernel_runs[name] for name in NOTEBOOKS}


def _run(reports: dict, name: str) -> RunResult:
    res = reports[name]
    if isinstance(res, BaseException):
        pytest.fail(f"report {name} did not complete: {type(res).__name__}: {res}")
    return res


@pytest.fixture(scope="session")
def failed_run(kernel_runs, failed_root) -> tuple[ReportError, Path]:
    """The batch report on the broken campaign: the ReportError and the output folder."""
    error = kernel_runs["broken"]
    if not isinstance(error, ReportError):
        pytest.fail(f"the batch report on a broken campaign did not raise ReportError: {error!r}")
    return error, failed_root


@pytest.fixture
def no_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if papermill is asked to start a kernel."""
    import papermill

    def refuse(*args, **kwargs):
        raise AssertionError("a kernel was started although the input should have been refused")

    monkeypatch.setattr(papermill, "execute_notebook", refuse)


# ---------------------------------------------------------------------------------------------
# helpers to read the HTML
# ---------------------------------------------------------------------------------------------
class _Page(HTMLParser):
    """Elements' classes, resource attributes and the visible text (outside script and style)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.classes: list[list[str]] = []
        self.resources: list[tuple[str, str, str]] = []
        self.text: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.classes.append((a.get("class") or "").split())
        for key in ("src", "href", "data"):
            if a.get(key) and tag in (
                "script",
                "link",
                "img",
                "iframe",
                "source",
                "embed",
                "object",
            ):
                self.resources.append((tag, key, a[key]))
        if tag in ("script", "style"):
            self._hidden += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden:
            self.text.append(data)


_pages: dict[Path, tuple[str, _Page]] = {}


def _page(path: Path) -> tuple[str, _Page]:
    if path not in _pages:
        body = path.read_text()
        parser = _Page()
        parser.feed(body)
        _pages[path] = (body, parser)
    return _pages[path]


def _docs_json(body: str) -> list[dict]:
    """The Bokeh documents embedded in the page (``var docs_json = {...}``)."""
    decoder = json.JSONDecoder()
    return [decoder.raw_decode(body, m.end())[0] for m in re.finditer(r"docs_json = ", body)]


def _n_figures(body: str) -> int:
    return sum(json.dumps(d).count('"name": "Figure"') for d in _docs_json(body))


def _code_lines(name: str) -> list[str]:
    nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
    lines = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            src = "".join(cell["source"])
            lines += [ln.strip() for ln in src.splitlines() if len(ln.strip()) >= 12]
    return lines


def _assert_no_leftovers(root: Path) -> None:
    """Only finished run folders (and index.html): no temporary folder or file anywhere."""
    for entry in root.iterdir():
        assert not entry.name.startswith("."), f"temporary entry left in {root}: {entry.name}"
        if entry.is_file():
            assert entry.name == "index.html", f"unexpected file in {root}: {entry.name}"
            continue
        for run in entry.iterdir():
            assert RUN_ID.match(run.name), f"half-written or stray folder: {run}"
            names = {p.name for p in run.iterdir()}
            m = json.loads((run / "manifest.json").read_text())
            if m["status"] in ("refused", "interrupted") or "debris_removed" in m:
                # refused before the kernel, or stopped: only the manifest (the debris is listed in it)
                assert names == {"manifest.json"}, f"a {m['status']} run holds only its manifest: {sorted(names)}"
                continue
            assert {"manifest.json", "report.html", f"{entry.name}.ipynb"} <= names, (
                f"{run} is incomplete: {sorted(names)}"
            )
            assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")], run


def _index_rows(root: Path) -> list[dict]:
    page = (root / "index.html").read_text()
    rows = re.findall(
        r'<tr class="([^"]*)"><td>([^<]*)</td><td>([^<]*)</td><td class="status">[^<]*</td>'
        r'<td>([^<]*)</td><td>[^<]*</td><td>(?:<a href="([^"]*)">)?',
        page,
    )
    return [{"status": s, "report": r, "parameters": p, "started": t, "link": link} for s, r, p, t, link in rows]


def _notebook(path: Path) -> dict:
    """An executed notebook as plain JSON (nbformat's validation takes seconds on 7 MB)."""
    return json.loads(path.read_text())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# every notebook runs and renders
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_report_notebook_runs_on_small_campaign(reports, campaign_dir, name):
    res = _run(reports, name)
    assert res.status == "completed"
    assert res.run_dir.is_dir() and res.html.is_file()
    executed = _notebook(res.run_dir / f"{name}.ipynb")
    errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    # the parameters were injected into the executed notebook
    injected = [c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    source = "".join(injected[0]["source"]) if injected else ""
    assert injected and all(f"{k} = " in source for k in _parameters_for(name, campaign_dir))


def test_every_notebook_is_covered():
    assert {"batch_report", "campaign_report"} <= set(NOTEBOOKS)
    assert {"batch_report", "campaign_report"} <= set(PLOTTING)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_html_references_no_cdn(reports, name):
    body, page = _page(_run(reports, name).html)
    remote = [r for r in page.resources if re.match(r"^(https?:)?//", r[2].strip(), flags=re.IGNORECASE)]
    assert remote == [], f"elements that load from the network: {remote}"
    imports = re.findall(r"""import\s*\(\s*["'`](?:https?:)?//[^"'`]+""", body)
    imports += re.findall(r"""\bfrom\s+["'](?:https?:)?//[^"']+""", body)
    assert imports == [], f"ES module imports from the network: {imports}"
    cdn = sorted({u for u in CDN_URL.findall(body) if not any(p.fullmatch(u) for p in BUNDLED_CDN_URLS)})
    assert cdn == [], f"CDN URLs in {name}'s HTML: {cdn}"


@pytest.mark.parametrize("name", PLOTTING)
def test_html_inlines_bokehjs_and_panel(reports, name):
    import bokeh
    import panel

    body, _ = _page(_run(reports, name).html)
    for lib in (
        Path(bokeh.__file__).parent / "server" / "static" / "js" / "bokeh.min.js",
        Path(panel.__file__).parent / "dist" / "panel.min.js",
    ):
        js = lib.read_text()
        chunk = js[len(js) // 2 : len(js) // 2 + 400]
        assert chunk in body, f"{lib.name} is not inlined in the report"
    assert f"'{bokeh.__version__}'" in body or f'"{bokeh.__version__}"' in body


@pytest.mark.parametrize("name", PLOTTING)
def test_html_holds_the_plot_data(reports, name):
    body, _ = _page(_run(reports, name).html)
    docs = _docs_json(body)
    assert docs, "no Bokeh document embedded in the HTML"
    text = json.dumps(docs)
    assert "ColumnDataSource" in text
    declared = notebook_parameters(ROOT / "notebooks" / f"{name}.ipynb")
    # campaign reports plot batches; the stability report plots the lots of its (simulated) study
    ids = (
        [f"B{i:02d}" for i in range(1, N_BATCHES + 1)] if "campaign" in declared else [f"L{i:02d}" for i in range(1, 6)]
    )
    found = [b for b in ids if f'"{b}"' in text]
    assert found, "no batch's (or lot's) data in the embedded Bokeh documents"
    if "batch_id" in declared:
        assert BATCH in found, f"the reported batch {BATCH} is not in the plots' data"
    assert _n_figures(body) >= 3


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_html_hides_code_cell_inputs(reports, name):
    _, page = _page(_run(reports, name).html)
    code_cells = [c for c in page.classes if "jp-CodeCell" in c]
    assert code_cells, "no code cell outputs at all"
    assert all("jp-mod-noInput" in c for c in code_cells), "a code cell shows its input"
    for hidden in ("jp-InputArea-editor", "jp-InputPrompt", "jp-OutputPrompt", "highlight"):
        assert not any(hidden in c for c in page.classes), f"element of class {hidden} present"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_html_shows_no_code_in_outputs(reports, name):
    """No line of the notebook's code is visible anywhere, e.g. in a warning printed with the
    source line that raised it."""
    _, page = _page(_run(reports, name).html)
    text = "".join(page.text)
    shown = [ln for ln in _code_lines(name) if ln in text]
    leaks = sorted(set(re.findall(r"/tmp/ipykernel_\d+/\d+\.py:\d+", text)))
    assert shown == [] and leaks == [], f"code visible in {name}'s HTML: {shown}; kernel temp files named: {leaks}"


# ---------------------------------------------------------------------------------------------
# a headless browser opens the reports offline
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    from browser import Browser, find_chromium

    if find_chromium() is None:
        if os.environ.get("BW_REQUIRE_BROWSER"):
            pytest.fail("BW_REQUIRE_BROWSER is set but no Chromium was found")
        pytest.skip(
            "no Chromium found (looked for $BW_CHROMIUM, chromium, chromium-browser, google-chrome);"
            " run scripts/ensure-chromium.sh, which `make test` does"
        )
    with Browser() as b:
        yield b


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_browser_draws_report_offline_without_errors(reports, browser, name):
    import bokeh

    html = _run(reports, name).html
    body, _ = _page(html)
    figures = _n_figures(body)
    page = browser.inspect(html, min_canvases=figures, timeout=60)
    assert page.network_requests == [], page.describe()
    assert page.errors == [], page.describe()
    plots = [c for c in page.drawn_canvases if (c.host or "").startswith("div.bk-Canvas")]
    assert len(plots) >= figures, page.describe()
    if name in PLOTTING:
        assert page.bokeh_version == bokeh.__version__, page.describe()
        assert figures >= 3 and all(c.css_width > 0 and c.css_height > 0 for c in plots)


def test_browser_check_catches_errors_requests_and_blank_canvases(tmp_path):
    """The harness itself: a thrown error, a console error, a CDN script and a blank canvas are
    all seen; a canvas drawn inside a shadow root counts as drawn; the browser is stopped."""
    from browser import Browser, find_chromium, live_processes

    if find_chromium() is None:
        pytest.skip("no Chromium found; run scripts/ensure-chromium.sh")
    page_file = tmp_path / "probe.html"
    page_file.write_text(
        """<!DOCTYPE html><html><body><div id="host"></div><canvas id="blank" width="50" height="50"></canvas>
<script src="https://cdn.bokeh.org/bokeh/release/bokeh-3.0.0.min.js"></script>
<script>
const root = document.getElementById("host").attachShadow({mode: "open"});
const c = document.createElement("canvas"); c.width = 40; c.height = 30; root.appendChild(c);
const ctx = c.getContext("2d"); ctx.fillStyle = "red"; ctx.fillRect(5, 5, 10, 10);
console.error("probe console error");
setTimeout(() => { throw new Error("probe exception"); }, 10);
</script></body></html>"""
    )
    b = Browser()
    with b:
        pid = b._proc.pid
        profile = b._profile
        page = b.inspect(page_file, min_canvases=1, timeout=20)
    text = page.describe()
    assert sorted(c.drawn for c in page.canvases) == [False, True], text
    assert any("probe exception" in e for e in page.errors), text
    assert any("probe console error" in e for e in page.errors), text
    assert any("cdn.bokeh.org" in u for u in page.network_requests), text
    # stopped: no process of its group is left running, its profile folder is gone
    assert live_processes(pid) == []
    assert not profile.exists()


# ---------------------------------------------------------------------------------------------
# provenance and atomic runs
# ---------------------------------------------------------------------------------------------
def test_manifest_of_a_completed_run(reports, campaign_dir):
    res = _run(reports, "batch_report")
    m = json.loads((res.run_dir / "manifest.json").read_text())
    assert m["run"] == res.manifest["run"]
    assert m["report"] == "batch_report" and m["run"] == res.run_dir.name
    assert m["status"] == "completed" and m["error"] is None
    declared = notebook_parameters(ROOT / "notebooks" / "batch_report.ipynb")
    given = _parameters_for("batch_report", campaign_dir)
    assert m["parameters"] == {k: p.default for k, p in declared.items()} | given
    assert m["kernel"] == KERNEL
    inputs = m["inputs_sha256"]
    files = sorted(p for p in campaign_dir.rglob("*") if p.is_file())
    assert files
    for f in files:
        assert inputs[str(f)] == _sha256(f), f"sha256 of {f.name}"
    nb = ROOT / "notebooks" / "batch_report.ipynb"
    assert inputs[str(nb)] == _sha256(nb)
    pf = Path(m["parameter_file"]).resolve()
    assert inputs[str(pf)] == _sha256(pf)
    for pkg in ("python", "bioworkbench", "papermill", "bokeh", "polars", "nbconvert"):
        assert m["versions"][pkg] not in (None, "", "not installed"), pkg
    assert m["git"] is None or re.fullmatch(r"[0-9a-f]{40}", m["git"]["commit"])
    started = dt.datetime.fromisoformat(m["started"])
    ended = dt.datetime.fromisoformat(m["ended"])
    assert started.tzinfo is not None and started <= ended
    assert m["duration_s"] > 0


def test_runs_leave_only_finished_folders(reports, report_root):
    for name in NOTEBOOKS:
        _run(reports, name)
    _assert_no_leftovers(report_root)
    assert {p.name for p in report_root.iterdir() if p.is_dir()} == set(NOTEBOOKS)


def test_index_lists_every_run_newest_first(reports, report_root):
    for name in NOTEBOOKS:
        _run(reports, name)
    rows = _index_rows(report_root)
    assert sorted(r["report"] for r in rows) == NOTEBOOKS
    assert all(r["status"] == "completed" for r in rows)
    assert [r["started"] for r in rows] == sorted((r["started"] for r in rows), reverse=True)
    for r in rows:
        assert (report_root / r["link"]).is_file(), r["link"]


def _fake_papermill(monkeypatch, behaviour):
    """Replace papermill's executor: copy the notebook, then ``behaviour(output_path)``."""
    import papermill

    def fake(input_path, output_path, **kwargs):
        shutil.copy(input_path, output_path)
        behaviour(Path(output_path))

    monkeypatch.setattr(papermill, "execute_notebook", fake)


@pytest.fixture
def notebooks_outside_git(tmp_path) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    shutil.copy(ROOT / "notebooks" / "explore_campaign.ipynb", folder)
    return folder


def test_manifest_git_is_null_outside_git(monkeypatch, campaign_dir, notebooks_outside_git, tmp_path):
    _fake_papermill(monkeypatch, lambda out: None)
    res = run_report(
        "explore_campaign",
        parameters={"campaign": str(campaign_dir)},
        output_dir=tmp_path / "out",
        notebooks=notebooks_outside_git,
        kernel=KERNEL,
    )
    assert res.status == "completed"
    assert res.manifest["git"] is None
    assert json.loads((res.run_dir / "manifest.json").read_text())["git"] is None


def test_kernel_death_is_a_failed_run(monkeypatch, campaign_dir, notebooks_outside_git, tmp_path):
    def die(out):
        raise RuntimeError("Kernel died before replying to kernel_info")

    _fake_papermill(monkeypatch, die)
    out = tmp_path / "out"
    with pytest.raises(ReportError, match=r"failed in the kernel.*RuntimeError: Kernel died"):
        run_report(
            "explore_campaign",
            parameters={"campaign": str(campaign_dir)},
            output_dir=out,
            notebooks=notebooks_outside_git,
            kernel=KERNEL,
        )
    (run,) = (out / "explore_campaign").iterdir()
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "failed" and m["error"]["ename"] == "RuntimeError"
    _assert_no_leftovers(out)


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, OSError])
def test_interrupted_run_is_recorded_without_debris(
    monkeypatch, campaign_dir, notebooks_outside_git, tmp_path, interruption
):
    """Ctrl-C while the notebook runs, or a crash while the HTML is written: the run is recorded
    (interrupted, or failed) in a folder holding only its manifest, the half-written notebook is
    removed and named, and the index lists the run."""
    import bioworkbench.reports.run as run_module

    out = tmp_path / "out"
    if interruption is KeyboardInterrupt:

        def stop(out_nb):
            out_nb.write_text('{"cells": [')  # half a notebook
            raise KeyboardInterrupt

        _fake_papermill(monkeypatch, stop)
    else:
        _fake_papermill(monkeypatch, lambda out_nb: None)

        def broken_render(*args, **kwargs):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(run_module, "render_html", broken_render)
    with pytest.raises(interruption):
        run_report(
            "explore_campaign",
            parameters={"campaign": str(campaign_dir)},
            output_dir=out,
            notebooks=notebooks_outside_git,
            kernel=KERNEL,
        )
    (run,) = (out / "explore_campaign").iterdir()
    assert {p.name for p in run.iterdir()} == {"manifest.json"}
    m = json.loads((run / "manifest.json").read_text())
    if interruption is KeyboardInterrupt:
        assert m["status"] == "interrupted" and m["error"]["ename"] == "KeyboardInterrupt"
        assert m["debris_removed"] == [{"file": "explore_campaign.ipynb", "bytes": 11}]
    else:
        assert m["status"] == "failed" and m["error"]["ename"] == "OSError"
        assert "No space left on device" in m["error"]["evalue"]
        assert [d["file"] for d in m["debris_removed"]] == ["explore_campaign.ipynb"]
    assert m["inputs_sha256"][str(campaign_dir / "batches.parquet")] == _sha256(campaign_dir / "batches.parquet")
    (row,) = _index_rows(out)
    assert row["status"] == m["status"]
    _assert_no_leftovers(out)


# ---------------------------------------------------------------------------------------------
# broken inputs: refused before the kernel, or failed and recorded
# ---------------------------------------------------------------------------------------------
def _yaml(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_unknown_key_is_refused_with_suggestion(no_kernel, campaign_dir, tmp_path):
    pf = _yaml(tmp_path / "B02.yaml", {"campaign": str(campaign_dir), "batch_idd": BATCH})
    with pytest.raises(ConfigError) as info:
        run_report("batch_report", parameter_file=pf, output_dir=tmp_path / "out", kernel=KERNEL)
    msg = str(info.value)
    assert msg.startswith(f"{pf}: ")
    assert "unknown key 'batch_idd'" in msg
    assert "Did you mean 'batch_id'?" in msg
    valid = ", ".join(sorted(notebook_parameters(ROOT / "notebooks" / "batch_report.ipynb")))
    assert f"Valid keys: {valid}." in msg
    assert not (tmp_path / "out").exists()


def test_wrong_type_is_refused(no_kernel, campaign_dir, tmp_path):
    pf = _yaml(tmp_path / "B02.yaml", {"campaign": str(campaign_dir), "batch_id": BATCH, "prob": "high"})
    with pytest.raises(ConfigError, match=r"prob must be a float; got str 'high'"):
        run_report("batch_report", parameter_file=pf, output_dir=tmp_path / "out", kernel=KERNEL)
    assert not (tmp_path / "out").exists()


def test_missing_campaign_folder_is_refused_before_the_kernel(no_kernel, tmp_path):
    missing = tmp_path / "no-such-campaign"
    with pytest.raises(ConfigError) as info:
        run_report(
            "batch_report",
            parameters={"campaign": str(missing), "batch_id": BATCH},
            output_dir=tmp_path / "out",
            kernel=KERNEL,
        )
    assert f"campaign folder '{missing}' does not exist" in str(info.value)
    assert "make demo" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_unknown_batch_is_refused_with_suggestion(no_kernel, campaign_dir, tmp_path):
    with pytest.raises(ConfigError) as info:
        run_report(
            "batch_report",
            parameters={"campaign": str(campaign_dir), "batch_id": "B2"},
            output_dir=tmp_path / "out",
            kernel=KERNEL,
        )
    msg = str(info.value)
    assert "batch 'B2' is not in the campaign" in msg and "Did you mean 'B02'?" in msg
    assert "Batches: B01, B02, B03, B04, B05, B06" in msg
    assert not (tmp_path / "out").exists()


def test_unknown_report_and_kernel_are_refused(no_kernel, campaign_dir, tmp_path):
    with pytest.raises(ConfigError, match=r"no report notebook 'batch_reprot'.*Did you mean 'batch_report'"):
        run_report("batch_reprot", output_dir=tmp_path / "out")
    with pytest.raises(ConfigError, match=r"kernel 'no-such-kernel' is not registered.*make kernel"):
        run_report(
            "explore_campaign",
            parameters={"campaign": str(campaign_dir)},
            output_dir=tmp_path / "out",
            kernel="no-such-kernel",
        )
    assert not (tmp_path / "out").exists()


def test_broken_campaign_fails_with_the_cell_and_error(failed_run, broken_campaign_dir):
    error, out = failed_run
    msg = str(error)
    assert re.search(r"report batch_report failed in cell \d+ \(`", msg), msg
    assert "DataReadError" in msg and "observations.parquet" in msg
    (run,) = (out / "batch_report").iterdir()
    assert str(run) in msg
    assert "bw.read_campaign(campaign)" in json.loads((run / "manifest.json").read_text())["error"]["source"]


def test_failed_run_keeps_notebook_manifest_and_index_entry(failed_run, broken_campaign_dir):
    _, out = failed_run
    _assert_no_leftovers(out)
    (run,) = (out / "batch_report").iterdir()
    executed = _notebook(run / "batch_report.ipynb")
    errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors and errors[0]["ename"] == "DataReadError"
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "failed"
    assert m["error"]["ename"] == "DataReadError" and "observations.parquet" in m["error"]["evalue"]
    assert isinstance(m["error"]["cell"], int)
    assert m["inputs_sha256"][str(broken_campaign_dir / "observations.parquet")] == _sha256(
        broken_campaign_dir / "observations.parquet"
    )
    assert "DataReadError" in (run / "report.html").read_text()
    (row,) = _index_rows(out)
    assert row["status"] == "failed" and row["report"] == "batch_report"
    assert "DataReadError" in (out / "index.html").read_text()


def test_run_many_one_bad_file_does_not_stop_the_others(campaign_dir, broken_campaign_dir, tmp_path):
    params = tmp_path / "parameters" / "explore_campaign"
    good_a = _yaml(params / "a_good.yaml", {"campaign": str(campaign_dir)})
    good_b = _yaml(params / "b_good.yaml", {"campaign": str(campaign_dir), "batch_id": "B03"})
    typo = _yaml(params / "c_typo.yaml", {"campaign": str(campaign_dir), "batch_idd": "B03"})
    broken = _yaml(params / "d_broken.yaml", {"campaign": str(broken_campaign_dir)})
    out = tmp_path / "out"
    results = run_many([tmp_path / "parameters"], output_dir=out, n_workers=2, kernel=KERNEL, progress=False)

    by_file = {Path(r["file"]).name: r for r in results}
    assert set(by_file) == {p.name for p in (good_a, good_b, typo, broken)}
    for good in (good_a, good_b):
        assert by_file[good.name]["status"] == "completed", by_file[good.name]
        assert Path(by_file[good.name]["run_dir"], "report.html").is_file()
    refused = by_file[typo.name]
    assert refused["status"] == "refused"
    refused_manifest = json.loads(Path(refused["run_dir"], "manifest.json").read_text())
    assert refused_manifest["status"] == "refused" and refused_manifest["parameter_file"] == str(typo.resolve())
    assert refused["error"]["ename"] == "ConfigError"
    assert "unknown key 'batch_idd'" in refused["error"]["evalue"]
    assert "Did you mean 'batch_id'?" in refused["error"]["evalue"]
    failed = by_file[broken.name]
    assert failed["status"] == "failed" and failed["error"]["ename"] == "DataReadError"

    _assert_no_leftovers(out)
    rows = _index_rows(out)
    # the refused parameter file has its own entry in the index, marked refused
    assert sorted(r["status"] for r in rows) == ["completed", "completed", "failed", "refused"]
    assert [r["started"] for r in rows] == sorted((r["started"] for r in rows), reverse=True)
    runs = {p.name for p in (out / "explore_campaign").iterdir()}
    assert {Path(r["link"]).parent.name for r in rows} == runs


# ---------------------------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------------------------
def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("bioworkbench")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "bioworkbench"]
    return subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def test_cli_refuses_a_bad_batch_readably(campaign_dir, tmp_path):
    proc = _cli(
        "report", "batch_report", "-p", "campaign", str(campaign_dir), "-p", "batch_id", "B2",
        "-o", "out", "--kernel", KERNEL, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("ConfigError: report 'batch_report': batch 'B2' is not in")
    assert "Did you mean 'B02'?" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_cli_reports_a_failed_notebook_readably(broken_campaign_dir, tmp_path):
    pf = _yaml(tmp_path / "broken.yaml", {"campaign": str(broken_campaign_dir)})
    proc = _cli("report", "explore_campaign", "-f", str(pf), "-o", "out", "--kernel", KERNEL, cwd=tmp_path)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    err = [ln for ln in proc.stderr.splitlines() if ln.startswith("ReportError:")]
    assert err, proc.stderr
    assert re.match(r"ReportError: report explore_campaign failed in cell \d+ \(`.+`\): DataReadError: ", err[0])
    (run,) = (tmp_path / "out" / "explore_campaign").iterdir()
    assert f"{run}/" in err[0]
    assert json.loads((run / "manifest.json").read_text())["status"] == "failed"


def test_stability_report_runs_on_the_real_published_table(monkeypatch, tmp_path):
    """The committed parameter set on LeBlond et al. (2011): one temperature, ICH Q1E and the Bayesian
    model at the study's own temperature; the real table is hashed in the manifest."""
    monkeypatch.chdir(ROOT)
    res = run_report(
        "stability_report",
        parameter_file=ROOT / "parameters" / "stability_report" / "leblond_potency.yaml",
        parameters=CI_PARAMETERS,
        output_dir=tmp_path,
        kernel=KERNEL,
    )
    assert res.status == "completed"
    table = ROOT / "bioworkbench" / "datasets" / "stability" / "leblond2011_potency.csv"
    assert str(table) in res.manifest["inputs_sha256"]
    body = res.html.read_text()
    assert "6 lots (b2, b3, b4, b5, b7, b8)" in body and "common slope" in body
    assert "activation energy is not learnt" in body


# ---------------------------------------------------------------------------------------------
# the runner's own costs: no kernel outlives its run, and the shortcuts stay valid
# ---------------------------------------------------------------------------------------------
def _tiny_notebook(folder: Path) -> Path:
    """A report that prints its kernel's pid and starts a child process that ignores SIGINT, and
    fails on request."""
    import nbformat

    folder.mkdir(parents=True, exist_ok=True)
    params = nbformat.v4.new_code_cell(
        'campaign: str = ""  # path of the campaign folder\nfail: bool = False  # raise in the last cell'
    )
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(
        "import os, subprocess, sys\n"
        "print('preloaded', 'pymc' in sys.modules, os.getppid())  # the notebook imports no pymc\n"
        "sleeper = 'import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(120)'\n"
        "child = subprocess.Popen([sys.executable, '-c', sleeper])  # deaf to the interrupt before a shutdown\n"
        "print('pids', os.getpid(), child.pid)\n"
        "from ipykernel.connect import get_connection_info\n"
        "info = get_connection_info(unpack=True)\n"
        "folder = os.path.dirname(info['ip'])\n"
        "mode = oct(os.stat(folder).st_mode & 0o777) if info['transport'] == 'ipc' else '-'\n"
        "print('transport', info['transport'], mode, info['ip'])"
    )
    last = nbformat.v4.new_code_cell("if fail:\n    raise ValueError('asked to fail')")
    nb = nbformat.v4.new_notebook(cells=[params, body, last])
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": KERNEL, "language": "python"}
    path = folder / "tiny.ipynb"
    nbformat.write(nb, path)
    return path


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _gone(pid: int, *, within_s: float) -> bool:
    """Whether process ``pid`` has gone, waiting up to ``within_s`` (a forked kernel exits a moment
    after its relay was killed)."""
    deadline = time.monotonic() + within_s
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("fork", [False, True], ids=["plain", "forked"])
@pytest.mark.parametrize("fail", [False, True], ids=["completed", "failed"])
def test_no_kernel_or_kernel_child_outlives_its_run(campaign_dir, tmp_path, fail, fork):
    """run_report kills the kernel's process group once the last cell replied, rather than wait
    for a graceful shutdown: after a completed or a failed run neither the kernel nor a
    process it started (here one deaf to SIGINT) is left running. The same for a kernel forked by
    the report fork server (which has imported PyMC before the kernel's first cell)."""
    _tiny_notebook(tmp_path / "notebooks")
    kwargs = {
        "parameters": {"campaign": str(campaign_dir), "fail": fail},
        "output_dir": tmp_path / "out",
        "notebooks": tmp_path / "notebooks",
        "kernel": KERNEL,
        "raise_on_failure": False,
        "fork_kernel": fork,
    }
    res = run_report("tiny", **kwargs)
    assert res.status == ("failed" if fail else "completed")
    assert res.manifest["kernel_forked"] is fork
    if fail:
        assert res.manifest["error"]["ename"] == "ValueError"
    nb = _notebook(res.run_dir / "tiny.ipynb")
    outputs = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("name") == "stdout"]
    text = "".join("".join(o["text"]) if isinstance(o["text"], list) else o["text"] for o in outputs)
    kernel_pid, child_pid = map(int, re.search(r"pids (\d+) (\d+)", text).groups())
    preloaded, parent = re.search(r"preloaded (\w+) (\d+)", text).groups()
    assert kernel_pid != os.getpid()
    if fork:
        from bioworkbench.reports.forkserver import _SERVERS

        assert preloaded == "True" and int(parent) in {s.process.pid for s in _SERVERS.values()}
    else:
        assert preloaded == "False" and int(parent) == os.getpid()
    assert _gone(kernel_pid, within_s=5.0 if fork else 0.0), "the kernel outlived its run"
    assert _gone(child_pid, within_s=5.0 if fork else 0.0), "a process started by the kernel outlived the run"


@pytest.mark.skipif(os.name != "posix", reason="ZeroMQ's IPC transport needs Unix-domain sockets")
@pytest.mark.parametrize("fork", [False, True], ids=["plain", "forked"])
def test_report_kernel_listens_on_private_unix_sockets(campaign_dir, tmp_path, fork):
    """The report kernel talks over ZeroMQ IPC (no TCP port on 127.0.0.1 that other users of the
    machine could reach, no ipykernel warning about unencrypted TCP), its socket files in a folder
    only the user can enter, removed after the run; a forked kernel too."""
    _tiny_notebook(tmp_path / "notebooks")
    res = run_report(
        "tiny",
        parameters={"campaign": str(campaign_dir)},
        output_dir=tmp_path / "out",
        notebooks=tmp_path / "notebooks",
        kernel=KERNEL,
        fork_kernel=fork,
    )
    nb = _notebook(res.run_dir / "tiny.ipynb")
    text = "".join(
        "".join(o["text"]) if isinstance(o["text"], list) else o["text"]
        for c in nb["cells"]
        for o in c.get("outputs", [])
        if o.get("name") == "stdout"
    )
    transport, mode, ip = re.search(r"transport (\S+) (\S+) (\S+)", text).groups()
    assert (transport, mode) == ("ipc", "0o700")
    assert Path(ip).parent.name.startswith("bw-kernel-")
    assert not Path(ip).parent.exists(), "the socket folder outlived the run"


def test_iri_grammar_is_skipped_only_while_importing(tmp_path):
    """jsonschema imported under the guard skips rfc3987_syntax (its grammar) and still validates
    notebooks; afterwards the module imports normally; an imported module is left alone."""
    code = (
        "import sys\n"
        "from bioworkbench._imports import without_iri_grammar\n"
        "with without_iri_grammar():\n"
        "    import nbformat\n"
        "assert 'rfc3987_syntax' not in sys.modules, 'grammar was built'\n"
        "nbformat.validate(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('1')]))\n"
        "import rfc3987_syntax\n"
        "with without_iri_grammar():\n"
        "    assert sys.modules['rfc3987_syntax'] is rfc3987_syntax\n"
        "assert sys.modules['rfc3987_syntax'] is rfc3987_syntax\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_quiet_cluster_settings_are_dask_settings():
    """A renamed Dask setting would be ignored silently: each one must exist in Dask's config."""
    import dask
    import distributed  # noqa: F401  (loads distributed's defaults)

    from bioworkbench.reports.parallel import _QUIET_CLUSTER

    for key, value in _QUIET_CLUSTER.items():
        default = dask.config.get(key)  # KeyError when Dask no longer knows the key
        assert type(default) is type(value) or isinstance(value, str), (key, default, value)


def test_report_modules_import_one_way_and_no_science():
    """``bioworkbench.reports`` is a package by subject whose modules import each other one way
    (params → provenance → folders → index → run → parallel, render and forkserver beside, warmserver on
    forkserver; the relay
    imports nothing of the package) and nothing of the analyses: the runner runs notebooks, it knows
    nothing of science (the fork server names the modules to preload, as strings)."""
    import ast
    import graphlib

    import bioworkbench.reports as package

    folder = Path(package.__file__).parent
    graph, outside = {}, set()
    for f in sorted(folder.glob("*.py")):
        found = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        mine = {m for m in found if m.split(".")[0] == "bioworkbench"}
        graph[f.stem] = {m.rsplit(".", 1)[1] for m in mine if m.startswith("bioworkbench.reports.")}
        outside |= {m for m in mine if not m.startswith("bioworkbench.reports")}
    assert set(graph) == {
        "__init__",
        "params",
        "provenance",
        "folders",
        "index",
        "render",
        "run",
        "parallel",
        "changed",
        "forkserver",
        "warmserver",
        "_relay",
    }
    order = list(graphlib.TopologicalSorter(graph).static_order())  # CycleError on a cycle
    assert order.index("params") < order.index("run") < order.index("parallel")
    assert order.index("forkserver") < order.index("run") and graph["forkserver"] == graph["_relay"] == set()
    assert graph["warmserver"] == {"forkserver"} and "warmserver" in graph["run"]
    assert outside == {
        "bioworkbench._imports",
        "bioworkbench.checks",
        "bioworkbench.database.selection",  # a campaign from a store URL (duckdb:///...?batch_ids=...)
        "bioworkbench.errors",
        "bioworkbench.io.tidy",
        "bioworkbench.store",
    }


# ---------------------------------------------------------------------------------------------
# the growth report adapts to the data: real campaigns without titer (NISTCHO) or without VCD (Ambr 250)
# ---------------------------------------------------------------------------------------------
def _growth_report(dataset: str, tmp_path: Path, **parameters) -> tuple[RunResult, str, dict]:
    """The growth report from the committed parameter file of a shipped dataset, written to a
    folder here: the run, the page's visible text and the executed notebook."""
    folder = bw.datasets.write(dataset, tmp_path / "data" / dataset)
    res = run_report(
        "growth_report",
        parameter_file=ROOT / "parameters" / "growth_report" / f"{dataset}.yaml",
        parameters={"campaign": str(folder), **parameters},
        output_dir=tmp_path / "reports",
        kernel=KERNEL,
    )
    assert res.status == "completed"
    text = " ".join(" ".join(_page(res.html)[1].text).split())
    return res, text, _notebook(res.run_dir / "growth_report.ipynb")


def _assert_clean_page(text: str, executed: dict) -> None:
    """No error, traceback, warning or stderr output anywhere on the page or in the notebook."""
    outputs = [o for c in executed["cells"] for o in c.get("outputs", [])]
    assert [o for o in outputs if o.get("output_type") == "error"] == []
    assert [o for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stderr"] == []
    for word in ("Traceback", "Warning:", "Error:", "not fitted."):
        assert word not in text, word


def test_growth_report_on_ambr250_shows_the_kinetics_per_batch_instead_of_the_vcd_model(tmp_path):
    res, text, executed = _growth_report("ambr250", tmp_path)
    _assert_clean_page(text, executed)
    assert (
        "The Bayesian growth model needs viable cell density (VCD); this campaign measures its biomass as cell dry "
        "weight (cdw, g/L) and optical density" in text
    )
    assert "so the kinetics per batch below are computed from the samples instead." in text
    assert "No titer is measured in this campaign, so specific productivity is not modelled" in text
    assert "The product here is tryptophan: its specific production rate per biomass unit is in the kinetics" in text
    assert "No Bayesian model was fitted, so there are no sampler diagnostics to check." in text
    assert "biomass as cdw: μ in 1/h, specific rates per gram of dry cell weight (negative: consumed)" in text
    for header in ("peak cdw (g/L)", "μ max (1/h)", "q_glucose (mmol/g/h)", "q_tryptophan (mmol/g/h)", "Y_X/S (g/g)"):
        assert header in text, header
    assert all(f"R{i:02d}" in text for i in range(5, 17))
    assert res.manifest["parameters"]["campaign"].endswith("ambr250")


def test_kinetics_per_batch_of_ambr250_is_the_kinetics_summarised():
    """The report's table on Ambr 250 against bw.kinetics.compute and the raw samples, batch R11."""
    camp = bw.datasets.ambr250()
    rev = bw.review.growth_review(camp)
    assert rev.growth is None and rev.titer is None and rev.biomass == "cdw"
    kin = bw.kinetics.compute(camp, biomass="cdw", time_unit="h").filter(pl.col("batch_id") == "R11")
    cdw = camp.offline(variables="cdw", batch_ids="R11")
    row = rev.per_batch.filter(pl.col("batch_id") == "R11").row(0, named=True)
    mu = kin.filter(pl.col("variable") == "mu")
    peak_h = cdw.filter(pl.col("value") == cdw["value"].max())["time_h"][0]
    assert row["peak cdw (g/L)"] == cdw["value"].max() and row["time of peak (h)"] == peak_h
    assert row["μ max (1/h)"] == pytest.approx(mu["value"].max())
    assert row["μ growth (1/h)"] == pytest.approx(
        mu.filter((pl.col("time_h") <= peak_h) & (pl.col("value") > 0))["value"].mean()
    )
    q = kin.filter(pl.col("variable") == "q_glucose")["value"]
    assert row["q_glucose (mmol/g/h)"] == pytest.approx(q.mean()) and row["q_glucose (mmol/g/h)"] < 0
    last = kin.filter(pl.col("variable") == "cum_yield_xs").sort("time_h")["value"][-1]
    assert row["Y_X/S (g/g)"] == pytest.approx(last) and 0.1 < last < 0.55
    assert row["cpp_strain"] == "HMP3071"


def test_growth_review_without_enough_vcd_batches_says_why_and_computes_kinetics():
    """One completed batch with VCD: no growth model (it needs 2), the kinetics per batch instead."""
    camp = bw.simulate_campaign(n_batches=3, random_seed=3, days=10)
    one = camp.filter_batches(camp.batch_ids[:1])
    rev = bw.review.growth_review(one)
    assert rev.growth is None and rev.per_batch is not None and rev.per_batch.height == 1
    assert "The Bayesian growth model needs at least 2 completed batches with 4 VCD samples each; 1 batch has them" in (
        rev.growth_text()
    )
    assert "specific rates per cell" in rev.kinetics_text()
    assert "The titer model relates titer to the integral of viable cell density" in rev.productivity_text()


def test_growth_review_checks_its_arguments():
    camp = bw.simulate_campaign(n_batches=2, random_seed=1)
    with pytest.raises(bw.ArgumentError, match=r"growth_review: campaign must be a Campaign; got a polars DataFrame"):
        bw.review.growth_review(camp.observations)
    with pytest.raises(bw.ArgumentError, match=r"growth_review: draws must be an integer >= 1; got 0\."):
        bw.review.growth_review(camp, draws=0)
    with pytest.raises(bw.ArgumentError, match=r"Did you mean 0\.9\?"):
        bw.review.growth_review(camp, prob=90)


@pytest.mark.slow
def test_growth_report_on_nistcho_with_its_parameter_file_fits_vcd_and_says_titer_is_missing(tmp_path):
    """The committed NISTCHO parameter set (the growth model's default sampler settings): the fit
    passes the sampler checks, so the page shows no caution block; titer is missing and said so."""
    res, text, executed = _growth_report("nistcho", tmp_path)
    _assert_clean_page(text, executed)
    assert "The growth model describes the VCD of 31 batches; no titer model was fitted" in text
    # (the bold model name is its own text node on the page)
    assert "Growth model : the sampler checks passed, so the intervals can be read as they are." in text
    assert "0 divergent transitions; r̂ at most 1.00" in text
    assert "read these numbers with caution" not in text
    assert "Batches are grouped by cpp_feeding × cpp_experiment (10 groups" in text
    assert "No titer is measured in this campaign, so specific productivity is not modelled" in text
    assert "FB2-A-R1" in text and "2 VCD points (needs 4)" in text
    assert "6 VCD sample(s) of collapsed cultures left out" in text
    assert _n_figures(res.html.read_text()) >= 31 + 4  # a panel per batch and the four forests


def test_twin_report_states_the_calibration_in_words(reports):
    text = " ".join(" ".join(_page(_run(reports, "twin_report").html)[1].text).split())
    assert "Every batch records what the twin needs." in text
    assert re.search(r"The twin was calibrated on \d batches: \d+ divergent transitions?, largest r̂ \d\.\d{3}", text)
    assert re.search(r"Of the readings, \d+% lie inside the 90% predictive bands", text)
    assert "**" not in text  # the emphasis is rendered, not shown as asterisks
    assert re.search(r"Feed \d+ mL of FeedA at each of the remaining \d+ feed\(s\)", text)
    assert "per feed of FeedA that the calibration batches received" in text
    # B02 of the small campaign is complete: its last titer reading is set against the day-5 prediction
    m = re.search(
        r"its last titer reading, (?P<v>[\d,]+) mg/L at [\d.]+ h, lies (?P<w>inside|below|above) the 90% predictive "
        r"band for a reading then \((?P<lo>[\d,]+)-(?P<hi>[\d,]+) mg/L\)",
        text,
    )
    v, lo, hi = (float(m[k].replace(",", "")) for k in ("v", "lo", "hi"))
    assert m["w"] == ("inside" if lo <= v <= hi else ("below" if v < lo else "above"))


@pytest.mark.parametrize(
    ("dataset", "missing"),
    [
        ("nistcho", "Missing: inoculation readings (33 batches"),
        ("ambr250", "Missing: viable cell density (11 batches: no offline VCD readings; biomass is recorded as cdw"),
    ],
)
def test_twin_report_on_a_real_campaign_says_what_is_missing_and_predicts_nothing(tmp_path, dataset, missing):
    folder = bw.datasets.write(dataset, tmp_path / "data" / dataset)
    res = run_report(
        "twin_report",
        parameter_file=ROOT / "parameters" / "twin_report" / f"{dataset}.yaml",
        parameters={"campaign": str(folder)},
        output_dir=tmp_path / "reports",
        kernel=KERNEL,
    )
    assert res.status == "completed"
    text = " ".join(" ".join(_page(res.html)[1].text).split())
    _assert_clean_page(text, _notebook(res.run_dir / "twin_report.ipynb"))
    assert "The digital twin cannot be calibrated on" in text and missing in text
    assert "No model was fitted, so this report makes no prediction or recommendation." in text
    assert "No recommendation: the twin was not calibrated." in text and "predicts a final titer" not in text


def test_page_does_not_depend_on_the_pages_rendered_before(tmp_path):
    """The exporter is made once per process (its templates compile in 0.15 s); a page rendered after
    another equals the page a fresh exporter renders, apart from nbconvert's random element ids."""
    import nbformat

    from bioworkbench.reports import render

    def notebook(name: str, marker: str) -> Path:
        cell = nbformat.v4.new_code_cell("x")
        cell.outputs = [
            nbformat.v4.new_output("display_data", data={"text/markdown": f"**{marker}**"}),
            nbformat.v4.new_output("display_data", data={"application/javascript": f"console.log('{marker}')"}),
            nbformat.v4.new_output("stream", name="stdout", text=f"{marker}\n"),
        ]
        path = tmp_path / f"{name}.ipynb"
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {marker}"), cell]), path)
        return path

    a, b = notebook("a", "alpha-marker"), notebook("b", "beta-marker")
    render._exporter.cache_clear()
    render.render_html(a, tmp_path / "a.html", title="A")
    render.render_html(b, tmp_path / "b_after_a.html", title="B")
    render._exporter.cache_clear()
    render.render_html(b, tmp_path / "b_alone.html", title="B")

    def page(name: str) -> str:
        text = (tmp_path / name).read_text()
        return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "ID", text)

    after, alone = page("b_after_a.html"), page("b_alone.html")
    assert "beta-marker" in after and "alpha-marker" not in after
    assert after == alone

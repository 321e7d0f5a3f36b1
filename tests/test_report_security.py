"""Text from data can neither run nor hide anything in a rendered report (issue 20), in Chromium.

Three layers are tested, each on its own:

* the runner's backstop (:func:`bioworkbench.reports.render.render_html`): a small notebook run in a real
  kernel displays *unescaped* payloads (Markdown, HTML, JavaScript, SVG) and a plot whose batch id
  closes the embedded script; the page must run none of it, hide nothing, and still draw the plot;
* the real batch and campaign reports on a campaign whose every text field carries script, style,
  hidden-element and comment payloads (escaping in ``bw.review`` and the backstop together);
* ``index.html`` built from a tampered manifest.

Every payload that runs sets ``window.__pwned`` to a number; every field's text ends with a marker
``tail-<field>`` that must be visible wherever it appears (a ``<span hidden>`` or a ``<style>`` rule
in the data would hide it). The tests skip only when no Chromium is found (``BW_REQUIRE_BROWSER=1``
makes that a failure).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
import polars as pl
import pytest

import bioworkbench as bw
from bioworkbench.errors import SchemaError
from bioworkbench.reports import RunResult, run_report, write_index

KERNEL = os.environ.get("BW_KERNEL", "bioworkbench")

PAYLOADS = {
    "script": "<script>window.__pwned=1</script>",
    "img": '<img src=x onerror="window.__pwned=2">',
    "style": "<style>table{display:none}</style>",
    "hidden": "<span hidden>",
    "break": "</script><script>window.__pwned=3</script>",
    "comment": "<!--",
}

#: every text node holding a marker (outside script/style), whether it is visible; the tables with
#: cells and the hidden ones; elements that carry ``hidden`` and hold text; and the visible text.
#: A table in a section the package collapses (``<details class="bw-details">``, its summary shown)
#: counts as shown.
PROBE = r"""
(() => {
  const skip = new Set(["SCRIPT", "STYLE", "TEMPLATE", "NOSCRIPT", "TITLE"]);
  // a section the package collapses on purpose (bw.review.details) counts as shown if its summary is
  const collapsed = (el) => {
    const d = el.closest("details.bw-details:not([open])");
    return d !== null && d.querySelector("summary") !== null && shown(d.querySelector("summary"));
  };
  const shown = (el) => (el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})
      && el.getClientRects().length > 0) || collapsed(el);
  const markers = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const p = n.parentElement;
    if (!p || skip.has(p.tagName)) continue;
    for (const m of n.data.match(/tail-[a-z_]+/g) || []) markers.push([m, shown(p)]);
  }
  const tables = [...document.querySelectorAll("table")].filter((t) => t.querySelector("td, th"));
  return JSON.stringify({
    pwned: typeof window.__pwned === "number" ? window.__pwned : null,
    markers: markers,
    tables: tables.length,
    hidden_tables: tables.filter((t) => !shown(t)).map((t) => t.outerHTML.slice(0, 300)),
    hidden_text: [...document.querySelectorAll("[hidden]")].filter((e) => e.textContent.trim())
        .map((e) => e.outerHTML.slice(0, 300)),
    text: document.body.innerText,
  });
})()
"""


@pytest.fixture(scope="module")
def browser():
    from browser import Browser, find_chromium

    if find_chromium() is None:
        if os.environ.get("BW_REQUIRE_BROWSER"):
            pytest.fail("BW_REQUIRE_BROWSER is set but no Chromium was found")
        pytest.skip("no Chromium found; run scripts/ensure-chromium.sh")
    with Browser() as b:
        yield b


def _figures(body: str) -> int:
    return len(re.findall(r'"name":\s*"Figure"', body))


def _open(browser, html: Path):
    """The page and its probe: no payload ran, no error, no request, every figure drawn."""
    body = html.read_text()
    figures = _figures(body)
    page = browser.inspect(html, min_canvases=figures, timeout=60, probe=PROBE)
    probe = page.probe
    assert probe is not None, page.describe()
    return page, probe, figures


def _assert_safe(page, probe, figures: int) -> None:
    assert probe["pwned"] is None, f"a payload ran: window.__pwned = {probe['pwned']}"
    assert page.errors == [], page.describe()
    assert page.network_requests == [], page.describe()
    plots = [c for c in page.drawn_canvases if (c.host or "").startswith("div.bk-Canvas")]
    assert len(plots) >= figures, page.describe()
    hidden = sorted({m for m, shown in probe["markers"] if not shown})
    assert hidden == [], f"text after a payload is hidden: {hidden}"
    assert probe["hidden_tables"] == [], probe["hidden_tables"]
    assert probe["hidden_text"] == [], probe["hidden_text"]


# ---------------------------------------------------------------------------------------------
# the runner's backstop, on outputs nobody escaped
# ---------------------------------------------------------------------------------------------
_UNESCAPED = f"""
import polars as pl
from IPython.display import HTML, SVG, Javascript, Markdown, display
import bioworkbench as bw

bw.plots.setup()
bad = {"B02" + PAYLOADS["break"]!r}
obs = pl.DataFrame({{
    "batch_id": ["B01"] * 3 + [bad] * 3,
    "time_h": [0.0, 24.0, 48.0] * 2,
    "variable": ["vcd"] * 6,
    "value": [0.5, 1.5, 3.0, 0.6, 1.4, 2.9],
    "unit": ["1e6 cells/mL"] * 6,
    "source": ["offline"] * 6,
    "flag": pl.Series([None] * 6, dtype=pl.String),
}})
display(Markdown("Titer of " + {PAYLOADS["hidden"]!r} + " tail-markdown " + {PAYLOADS["script"]!r}
                 + " " + {PAYLOADS["comment"]!r} + " tail-comment"))
display(HTML("<table><tr><th>product</th></tr><tr><td>mAb " + {PAYLOADS["style"]!r} + " tail-style "
             + {PAYLOADS["img"]!r} + "</td></tr></table><p hidden>tail-hidden</p>"
             + "<p class='lm-mod-hidden' style='display:none'>tail-class</p>"))
display(Javascript("window.__pwned = 9"))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>window.__pwned=10</script></svg>'))
bw.plots.plot_trajectories(obs, variable="vcd", highlight=bad)
"""


@pytest.fixture(scope="module")
def unescaped_run(tmp_path_factory) -> RunResult:
    folder = tmp_path_factory.mktemp("notebooks")
    params = nbformat.v4.new_code_cell('label: str = "x"  # unused')
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell(_UNESCAPED)])
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": KERNEL, "language": "python"}
    nbformat.write(nb, folder / "unescaped.ipynb")
    return run_report("unescaped", output_dir=tmp_path_factory.mktemp("out"), notebooks=folder, kernel=KERNEL)


def test_backstop_runs_and_hides_nothing_that_was_not_escaped(unescaped_run, browser):
    assert unescaped_run.status == "completed"
    rendering = unescaped_run.manifest["rendering"]
    assert rendering["withheld"] == 0 and rendering["plots"] >= 1
    assert rendering["dropped"] == 1  # the JavaScript output
    page, probe, figures = _open(browser, unescaped_run.html)
    assert figures >= 1
    _assert_safe(page, probe, figures)
    shown = {m for m, visible in probe["markers"] if visible}
    assert {"tail-markdown", "tail-comment", "tail-style", "tail-hidden", "tail-class"} <= shown, probe["markers"]
    # tags that are not allowed are shown as text, literally
    for payload in ("script", "img", "style"):
        assert PAYLOADS[payload] in probe["text"], payload


def test_backstop_plot_json_cannot_close_its_script(unescaped_run):
    body = unescaped_run.html.read_text()
    assert "B02</script>" not in body and "B02\\u003c/script>\\u003cscript>window.__pwned=3\\u003c/script>" in body


# ---------------------------------------------------------------------------------------------
# the real reports on a campaign whose every text field carries payloads
# ---------------------------------------------------------------------------------------------
def _text(field: str, payload: str, prefix: str = "") -> str:
    return f"{prefix}{PAYLOADS[payload]} tail-{field}"


def _payload_campaign() -> tuple[bw.Campaign, str, list[str]]:
    """The small demo campaign with payloads in every text field the data model accepts; returns
    it, the id of the batch carrying a payload id (``B02`` if ids may not carry one), and the
    fields the data model refused."""
    c = bw.simulate_campaign(n_batches=6, random_seed=3, days=14, online_interval_min=60)
    frames = dict(c.frames())
    meta = {"name": _text("name", "style", "Campaign "), "description": _text("description", "script") + " "
            + _text("description_img", "img")}  # fmt: skip
    quality_name = "aggregates" + PAYLOADS["break"]
    edits = {
        "product": ("batches", pl.lit(_text("product", "hidden", "mAb-A "))),
        "cell_line": ("batches", pl.lit(_text("cell_line", "img", "CHO "))),
        "process": ("batches", pl.lit(_text("process", "comment", "fed-batch "))),
        "method": ("quality", pl.col("method") + pl.lit(" " + _text("method", "script"))),
        "flag_reason": ("observations", pl.col("flag_reason") + pl.lit(" " + _text("flag_reason", "img"))),
        "note": (
            "events",
            pl.when(pl.col("event") == "inoculation").then(pl.lit(_text("note", "script"))).otherwise(pl.col("note")),
        ),
    }
    refused = []

    def valid(candidate: dict, **kw) -> bool:
        try:
            bw.Campaign(**candidate, **(meta | kw))
            return True
        except SchemaError:
            return False

    for field, (frame, expr) in edits.items():
        candidate = frames | {frame: frames[frame].with_columns(expr.alias(field))}
        if valid(candidate):
            frames = candidate
        else:
            refused.append(field)
    # an attribute name closing a script (plot titles and table headers)
    candidate = frames | {
        "quality": frames["quality"].with_columns(pl.col("attribute").replace({"aggregates": quality_name})),
        "specs": frames["specs"].with_columns(pl.col("name").replace({"aggregates": quality_name})),
    }
    if valid(candidate):
        frames = candidate
    else:
        refused.append("attribute")
    # a batch id closing a script, where the id rules allow
    bad = "B02" + PAYLOADS["break"]
    renamed = {
        k: (v.with_columns(pl.col("batch_id").replace({"B02": bad})) if "batch_id" in v.columns else v)
        for k, v in frames.items()
    }
    if valid(renamed):
        frames, batch = renamed, bad
    else:
        refused.append("batch_id")
        batch = "B02"
    return bw.Campaign(**frames, **meta), batch, refused


@pytest.fixture(scope="module")
def payload_reports(tmp_path_factory) -> dict:
    camp, batch, refused = _payload_campaign()
    folder = camp.write(tmp_path_factory.mktemp("campaign") / "payloads")
    out = tmp_path_factory.mktemp("reports")
    runs: dict = {"batch": batch, "refused": refused, "out": out}
    for key, name, params in (
        ("payload_batch", "batch_report", {"campaign": str(folder), "batch_id": batch}),
        ("clean_batch", "batch_report", {"campaign": str(folder), "batch_id": "B03"}),
        ("campaign", "campaign_report", {"campaign": str(folder)}),
    ):
        runs[key] = run_report(name, parameters=params, output_dir=out, kernel=KERNEL, raise_on_failure=False)
    return runs


@pytest.mark.parametrize("key", ["payload_batch", "clean_batch", "campaign"])
def test_report_runs_no_payload_and_hides_nothing(payload_reports, browser, key):
    res = payload_reports[key]
    assert res.status == "completed", res.manifest.get("error")
    assert res.manifest["rendering"]["withheld"] == 0
    page, probe, figures = _open(browser, res.html)
    assert figures >= 3 and probe["tables"] >= 3
    _assert_safe(page, probe, figures)


@pytest.mark.parametrize(
    ("key", "fields"),
    [
        ("payload_batch", ("product", "cell_line", "process")),
        ("clean_batch", ("product",)),
        ("campaign", ("name", "description", "description_img")),
    ],
)
def test_report_shows_the_data_text_literally(payload_reports, browser, key, fields):
    """Escaping (``bw.review``): the fields' text is visible, payload and all, as the data hold it."""
    res = payload_reports[key]
    _, probe, _ = _open(browser, res.html)
    shown = {m for m, visible in probe["markers"] if visible}
    missing = [f for f in fields if f"tail-{f}" not in shown]
    assert missing == [], f"text of {missing} not visible in {res.html}"
    payloads = {"product": "hidden", "cell_line": "img", "process": "comment", "name": "style"}
    payloads |= {"description": "script", "description_img": "img"}
    for f in fields:
        literal = _text(f, payloads[f])
        assert literal in probe["text"], f"{f}: {literal!r} is not shown literally"


def test_batch_id_payload_is_reported(payload_reports):
    """Which fields the data model refused: only batch ids, which are restricted to a safe character
    set (``</script>`` in an id is a SchemaError naming the id, so the payload batch is B02); every
    other text field keeps its payload and is escaped."""
    refused = payload_reports["refused"]
    assert refused == ["batch_id"], f"the data model refused payloads in {refused}"
    assert payload_reports["batch"] == "B02"
    for key in ("payload_batch", "clean_batch", "campaign"):
        assert "</script><script>window.__pwned" not in payload_reports[key].html.read_text()


def test_a_batch_id_that_closes_a_script_is_refused_with_its_row():
    camp, _, _ = _payload_campaign()
    frames = dict(camp.frames())
    bad = "B02" + PAYLOADS["break"]
    frames["batches"] = frames["batches"].with_columns(pl.col("batch_id").replace({"B02": bad}))
    with pytest.raises(SchemaError) as info:
        bw.Campaign(**frames)
    [issue] = [i for i in info.value.issues if i.column == "batch_id" and i.batch == bad]
    assert issue.message.startswith(f"batch_id {bad!r} holds '<', '>', '='; a batch id is letters, digits")
    assert issue.message.endswith("(row 1, counted from 0).")


def test_index_of_a_tampered_manifest_runs_nothing(browser, tmp_path):
    out = tmp_path / "out"
    run = out / "batch_report" / "20260101T000000000Z-B01"
    run.mkdir(parents=True)
    manifest = {
        "report": "batch_report" + PAYLOADS["script"],
        "status": "completed",
        "parameters": {"batch_id": PAYLOADS["break"]},
        "started": "2026-01-01T00:00:00+00:00" + PAYLOADS["hidden"] + " tail-started",
        "duration_s": PAYLOADS["img"] + " tail-duration",
        "error": {"ename": PAYLOADS["style"], "evalue": PAYLOADS["comment"] + " tail-error"},
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    page = browser.inspect(write_index(out), min_canvases=0, timeout=20, settle=0.2, probe=PROBE)
    probe = page.probe
    assert probe["pwned"] is None and page.errors == [] and page.network_requests == []
    assert {m for m, v in probe["markers"] if v} == {"tail-started", "tail-duration", "tail-error"}
    assert probe["hidden_tables"] == [] and probe["hidden_text"] == []
    assert PAYLOADS["img"] in probe["text"] and PAYLOADS["script"] in probe["text"]


# ---------------------------------------------------------------------------------------------
# warnings on the page: the category and message, no file, no line of code
# ---------------------------------------------------------------------------------------------
def test_warnings_lose_their_file_and_quoted_line(tmp_path):
    """Python prints ``file:line: Category: message`` and then the line of code: from a cell, a line
    of the notebook (the file exists only in the kernel); from the package, a line of its file."""
    from bioworkbench.reports.render import shorten_warnings

    module = tmp_path / "mod.py"
    module.write_text("import warnings\n\n    warnings.warn(note, UserWarning, stacklevel=1)\n")
    code = {"bw.kinetics.compute(camp)", "x = 1"}
    text = (
        "before\n"
        "/tmp/ipykernel_123/456.py:3: BioWorkbenchWarning: kinetics: 2 flagged\n"
        "  - glucose: 2\n"
        "  bw.kinetics.compute(camp)\n"
        f"{module}:3: UserWarning: from the package\n"
        "  warnings.warn(note, UserWarning, stacklevel=1)\n"
        "after\n"
        "/nowhere.py:1: RuntimeWarning: unknown source\n"
        "  kept: not a line of code\n"
    )
    assert shorten_warnings(text, code_lines=code) == (
        "before\n"
        "BioWorkbenchWarning: kinetics: 2 flagged\n"
        "  - glucose: 2\n"
        "UserWarning: from the package\n"
        "after\n"
        "RuntimeWarning: unknown source\n"
        "  kept: not a line of code\n"
    )
    assert shorten_warnings("no warning: here\n") == "no warning: here\n"


def test_report_page_shows_warnings_without_code(tmp_path):
    """A warning raised in a cell reaches the page as ``Category: message``: the cell's code and the
    kernel's file name stay hidden (``bw.plots.setup`` no longer rewrites warnings in the kernel)."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    params = nbformat.v4.new_code_cell('label: str = "x"  # unused')
    params.metadata["tags"] = ["parameters"]
    cell = nbformat.v4.new_code_cell(
        "import warnings\nimport bioworkbench as bw\n\nbw.plots.setup()\n"
        'warnings.warn("a note for the reader, tail-warning", bw.BioWorkbenchWarning)\n'
        'print("printed after it")'
    )
    nb = nbformat.v4.new_notebook(cells=[params, cell])
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": KERNEL, "language": "python"}
    nbformat.write(nb, folder / "warns.ipynb")
    res = run_report("warns", output_dir=tmp_path / "out", notebooks=folder, kernel=KERNEL)
    assert res.manifest["rendering"]["warnings_shortened"] == 1
    body = res.html.read_text()
    assert "BioWorkbenchWarning: a note for the reader, tail-warning" in body
    assert "printed after it" in body
    assert "warnings.warn(" not in body and not re.search(r"ipykernel_\d+", body)
    executed = json.loads((res.run_dir / "warns.ipynb").read_text())  # the notebook keeps what the kernel said
    stderr = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("name") == "stderr"]
    assert any("warnings.warn(" in "".join(o["text"]) for o in stderr)

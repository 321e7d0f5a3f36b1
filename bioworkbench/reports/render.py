"""The rendered page: self-contained, offline HTML of an executed report, on which only plots run script.

Only the plotting library's own outputs may run script. Every other output is sanitised with
bleach (the library behind nbconvert's ``sanitize_html``): a fixed set of formatting and table tags
and attributes, no ``hidden``, no inline ``style``, classes only from the package (``bw-*``);
Markdown outputs are rendered and then sanitised the same way. ``<style>`` sheets in outputs are
kept only when each rule styles the package's own classes. Inside plot outputs the embedded Bokeh
documents are JSON whose every ``<`` is written ``\\u003c``, so no text in the data can close the
script around them; a plot output that still does not have the expected shape is withheld (and
counted in the manifest).

Warnings printed by the kernel are shown as ``Category: message``: Python prints a warning with the
file and line that raised it and that line of code (``/tmp/ipykernel_…/….py:12: UserWarning: …``
followed by the source), which would show the code a report hides and paths of the machine that ran
it. The page is the place to shorten them, not the kernel's process: nothing replaces
``warnings.showwarning`` there.

The page loads nothing from the internet: Bokeh is inlined by :func:`bioworkbench.plots.setup`,
Panel's CDN stylesheets and scripts are replaced by data URIs of the files of the installed package.
"""

from __future__ import annotations

import functools
import json
import linecache
import os
import re
from pathlib import Path
from typing import Any

__all__ = ["render_html", "shorten_warnings"]

#: outputs of HoloViews/Panel (and Bokeh) that draw plots: their script is kept, their JSON escaped
_PLOT_MIMES = (
    "application/vnd.holoviews_exec.v0+json",
    "application/vnd.holoviews_load.v0+json",
    "application/vnd.bokehjs_exec.v0+json",
    "application/vnd.bokehjs_load.v0+json",
)
#: the output types rendered for every other output (the rest are dropped)
_PLAIN_MIMES = frozenset({"text/plain", "text/html", "text/markdown", "image/png", "image/jpeg", "image/svg+xml"})
#: Panel's notebook preamble (static: es-module-shims options, its CSS, an empty alert div)
_PANEL_PREAMBLE = re.compile(
    r'<script type="esms-options">\{"shimMode": true\}</script><style>[^<]*</style>'
    r'<div id="[0-9A-Za-z_-]+" role="alert" hidden></div>'
)
_JSON_VARS = re.compile(r"\b(?:var|let|const)\s+(?:docs_json|render_items)\s*=\s*")
_SCRIPT_OPEN = re.compile(r"<script\b[^>]*>", re.IGNORECASE)
_SCRIPT_CLOSE = re.compile(r"</script\s*>", re.IGNORECASE)
_WITHHELD = (
    "[bioworkbench: a plot was left out of this report: its embedded script did not have the shape "
    "expected of a HoloViews plot, so it could not be shown safely]"
)

_TEXT_TAGS = frozenset(
    {"a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "dl", "dt", "em", "hr", "i", "li", "ol", "p", "pre"}
    | {"s", "small", "span", "strong", "sub", "sup", "u", "ul", "h1", "h2", "h3", "h4", "h5", "h6"}
    | {"table", "caption", "colgroup", "col", "thead", "tbody", "tfoot", "tr", "th", "td"}
)
#: text/html outputs may also collapse a section and wrap blocks
_HTML_TAGS = _TEXT_TAGS | {"details", "summary", "div"}
_CLASSES = re.compile(r"(?:bw-[A-Za-z0-9_-]+|dataframe|anchor-link)")


def _attribute_ok(tag: str, name: str, value: str) -> bool:
    """Attributes kept by the sanitiser: never ``hidden``, ``style`` or event handlers; classes only
    the package's own (page classes such as ``lm-mod-hidden`` could hide text)."""
    if name == "class":
        return all(_CLASSES.fullmatch(c) for c in value.split())
    if name == "id":
        return tag in ("h1", "h2", "h3", "h4", "h5", "h6")  # nbconvert's heading anchors
    if name == "href":
        return tag == "a"  # bleach checks the protocol (http, https, mailto, or a fragment)
    if name in ("colspan", "rowspan"):
        return tag in ("td", "th") and value.isdigit()
    if name == "scope":
        return tag == "th"
    if name == "border":
        return tag == "table" and value.isdigit()
    if name == "open":
        return tag == "details"
    return name == "title"


_CLEANERS: dict[str, Any] = {}


def _cleaner(kind: str) -> Any:
    if kind not in _CLEANERS:
        import bleach

        tags = _HTML_TAGS if kind == "html" else _TEXT_TAGS
        _CLEANERS[kind] = bleach.Cleaner(tags=tags, attributes=_attribute_ok, strip=False, strip_comments=True)
    return _CLEANERS[kind]


def _clean_markdown_html(text: str) -> str:
    """Sanitise the HTML rendered from a Markdown output (nbconvert's ``markdown2html``)."""
    return _cleaner("markdown").clean(str(text))


def _style_ok(css: str) -> bool:
    """A style sheet kept in an output: plain rules whose every selector starts with a class of the
    package (``.bw-…``) or of a polars frame (``.dataframe``); no at-rule, no ``url()``."""
    import tinycss2

    rules = tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True)
    if not rules:
        return False
    for rule in rules:
        if rule.type != "qualified-rule":
            return False
        selectors = tinycss2.serialize(rule.prelude).split(",")
        if not all(re.match(r"\s*\.(?:bw-[A-Za-z0-9_-]+|dataframe)\b", s) for s in selectors):
            return False
        if "url(" in tinycss2.serialize(rule.content).lower():
            return False
    return True


def _clean_html(text: str) -> str:
    """Sanitise a text/html output that is not a plot: allowed tags and attributes only, and the
    style sheets of :func:`_style_ok` (any other ``<style>`` is shown as text)."""
    kept: dict[str, str] = {}
    token = f"bwstyle{os.urandom(8).hex()}n"

    def keep(m: re.Match) -> str:
        if not _style_ok(m.group(1)):
            return m.group(0)
        key = f"{token}{len(kept)}x"
        kept[key] = f"<style>{m.group(1)}</style>"
        return key

    text = re.sub(r"<style\b[^>]*>(.*?)</style\s*>", keep, str(text), flags=re.IGNORECASE | re.DOTALL)
    clean = _cleaner("html").clean(text)
    for key, style in kept.items():
        clean = clean.replace(key, style)
    return clean


def _escape_embedded_json(text: str) -> str | None:
    """Write every ``<`` of the JSON assigned to ``docs_json``/``render_items`` as ``\\u003c``: the
    same JSON to JavaScript, but no ``</script>`` or ``<!--`` in the data can end the script.
    ``None`` when such an assignment is not followed by JSON."""
    decoder = json.JSONDecoder()
    out, pos = [], 0
    while m := _JSON_VARS.search(text, pos):
        try:
            _, end = decoder.raw_decode(text, m.end())
        except ValueError:
            return None
        out += [text[pos : m.end()], text[m.end() : end].replace("<", "\\u003c")]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _plot_html_ok(text: str) -> bool:
    """A plot's HTML: scripts that cannot end early (no ``<!--``, no nested ``<script``, every one
    closed) and, outside them, only empty ``div`` containers."""
    from html.parser import HTMLParser

    outside, pos = [], 0
    while m := _SCRIPT_OPEN.search(text, pos):
        outside.append(text[pos : m.start()])
        close = _SCRIPT_CLOSE.search(text, m.end())
        if close is None:
            return False
        body = text[m.end() : close.start()]
        if re.search(r"<!--|<script", body, re.IGNORECASE):
            return False
        pos = close.end()
    outside.append(text[pos:])

    class Shape(HTMLParser):
        ok = True

        def handle_starttag(self, tag, attrs):
            allowed = {"id", "class", "data-root-id", "style"}
            if tag != "div" or any(k not in allowed for k, _ in attrs):
                self.ok = False
            if any(k == "style" and v != "display: contents;" for k, v in attrs):
                self.ok = False

        def handle_endtag(self, tag):
            self.ok = self.ok and tag == "div"

        def handle_data(self, data):
            self.ok = self.ok and not data.strip()

        def handle_comment(self, data):
            self.ok = False

    shape = Shape()
    shape.feed("".join(outside))
    shape.close()
    return shape.ok


def _safe_outputs(nb: Any) -> dict[str, int]:
    """Make every code cell's outputs safe to put on the page (in place); count what was done."""
    counts = {"plots": 0, "sanitized": 0, "withheld": 0, "dropped": 0, "warnings_shortened": 0}
    code = _code_lines(nb)
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        outputs = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                text = "".join(out["text"]) if isinstance(out.get("text"), list) else str(out.get("text", ""))
                counts["warnings_shortened"] += len(_WARNING.findall(text))
                out["text"] = shorten_warnings(text, code_lines=code)
                outputs.append(out)
            elif out.get("output_type") not in ("display_data", "execute_result") or not out.get("data"):
                outputs.append(out)
            elif _safe_data(out, counts):
                outputs.append(out)
        cell["outputs"] = outputs
    return counts


def _safe_data(out: Any, counts: dict[str, int]) -> bool:
    """Make one display output safe (in place): a plot escaped or withheld, Panel's preamble kept,
    anything else reduced to plain types and sanitised. Whether anything is left to show."""
    data = out["data"]
    for key, value in list(data.items()):
        if isinstance(value, list) and key.startswith("text/"):
            data[key] = "".join(value)
    if any(m in data for m in _PLOT_MIMES):
        if "text/html" in data:
            escaped = _escape_embedded_json(data["text/html"])
            if escaped is None or not _plot_html_ok(escaped):
                out["data"] = {"text/plain": _WITHHELD}
                counts["withheld"] += 1
            else:
                data["text/html"] = escaped
                counts["plots"] += 1
    elif set(data) == {"text/html"} and _PANEL_PREAMBLE.fullmatch(data["text/html"]):
        pass
    else:
        for key in [k for k in data if k not in _PLAIN_MIMES]:
            del data[key]
            counts["dropped"] += 1
        if "text/html" in data:
            data["text/html"] = _clean_html(data["text/html"])
            counts["sanitized"] += 1
        if "text/markdown" in data:  # rendered, then cleaned by the template's filter
            counts["sanitized"] += 1
    return bool(out.get("data"))


#: the first line of a warning as :func:`warnings.formatwarning` writes it: ``file:line: Category: ``
_WARNING = re.compile(r"^(?P<file>[^\n]+?):(?P<line>\d+): (?P<category>[A-Za-z_][A-Za-z0-9_]*Warning): ", re.MULTILINE)


def _code_lines(nb: Any) -> frozenset[str]:
    """Every line of the notebook's code cells, stripped (the lines a warning may quote)."""
    lines: set[str] = set()
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            lines |= {ln.strip() for ln in ("".join(source) if isinstance(source, list) else source).splitlines()}
    return frozenset(ln for ln in lines if ln)


def shorten_warnings(text: str, *, code_lines: frozenset[str] | set[str] = frozenset()) -> str:
    """Rewrite the warnings in a stream's text as ``Category: message``.

    Parameters
    ----------
    text
        A stream output's text (stderr, usually).
    code_lines
        The stripped lines of the notebook's code cells: a warning raised from a cell quotes one of
        them (its file, ``/tmp/ipykernel_…/….py``, exists only in the kernel's memory).

    Returns
    -------
    str
        The text, every warning's first line without its file and line number, and without the
        line of code Python prints after the message; the rest of the text unchanged.

    Notes
    -----
    Python writes ``f"{file}:{line}: {Category}: {message}\\n"`` then ``f"  {source.strip()}\\n"``
    (:func:`warnings.formatwarning`). The message may span lines, so the source line is recognised
    by its content: the line ``line`` of ``file`` when that file can be read here, else a line of
    the notebook's code. A message without such a line keeps every line it has.
    """
    headers = list(_WARNING.finditer(text))
    if not headers:
        return text
    parts = [text[: headers[0].start()]]
    for i, m in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
        lines = text[m.end() : end].split("\n")
        source = linecache.getline(m["file"], int(m["line"])).strip()
        quoted = {source} if source else code_lines
        cut = next((j for j in range(1, len(lines)) if lines[j].startswith("  ") and lines[j].strip() in quoted), None)
        if cut is not None:
            del lines[cut]
        parts.append(f"{m['category']}: " + "\n".join(lines))
    return "".join(parts)


#: the lab template, with Markdown outputs sanitised after they are rendered to HTML
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{% block data_markdown scoped -%}
<div class="jp-RenderedHTMLCommon jp-RenderedMarkdown jp-OutputArea-output {{ extra_class }}" \
data-mime-type="text/markdown">
{{ output.data['text/markdown'] | markdown2html | bw_clean_markdown_html }}
</div>
{%- endblock data_markdown %}
"""


def render_html(executed: Path, target: Path, *, title: str) -> dict[str, int]:
    """Write the self-contained, safe HTML page of an executed report.

    Parameters
    ----------
    executed
        The executed notebook.
    target
        The HTML file to write.
    title
        The page's title.

    Returns
    -------
    dict of str to int
        What the sanitising did: ``plots`` (escaped and kept), ``withheld`` (plots left out),
        ``sanitized`` (HTML and Markdown outputs cleaned), ``dropped`` (outputs of other types),
        ``warnings_shortened``.

    Notes
    -----
    Code cells' inputs and prompts are hidden; no URL of MathJax, RequireJS, Mermaid, widgets or
    jQuery is written; remaining remote ``<script src>`` and ``<link href>`` are removed and Panel's
    CDN files inlined (see the module docstring).
    """
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    for cell in nb.cells:  # empty display outputs (HoloViews comms) cannot be rendered: drop them
        if cell.get("outputs"):
            cell["outputs"] = [o for o in cell["outputs"] if o.get("output_type") != "display_data" or o.get("data")]
    counts = _safe_outputs(nb)
    body, _ = _exporter().from_notebook_node(nb, resources={"metadata": {"name": title}})
    # nothing may reach out to the internet when the report is opened offline
    body = re.sub(r'<script[^>]+src="https?://[^"]*"[^>]*>\s*</script>', "", body)
    body = re.sub(r'<link[^>]+href="https?://[^"]*"[^>]*>', "", body)
    # source-map comments of inlined CSS/JS (e.g. Tabulator's, in Panel tables) name CDN files that
    # developer tools would fetch; the maps are not needed to read the page
    body = re.sub(r"/\*# sourceMappingURL=https?://[^*]*\*/", "", body)
    body = re.sub(r"//# sourceMappingURL=https?://[^\s\"'\\]+", "", body)
    target.write_text(_inline_cdn(body), encoding="utf-8")
    return counts


@functools.cache
def _exporter() -> Any:
    """The page's nbconvert exporter, made once per process: building it compiles its Jinja templates
    (0.15 s), which a report worker would otherwise repeat for every report. ``from_notebook_node``
    keeps nothing of a notebook (its resources are made per call), so the pages do not depend on
    which reports the process rendered before (tests/test_reports.py)."""
    import jinja2
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({"bw_report.html.j2": _TEMPLATE})],
        template_file="bw_report.html.j2",
    )
    exporter.register_filter("bw_clean_markdown_html", _clean_markdown_html)
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    exporter.mathjax_url = ""
    exporter.require_js_url = ""
    exporter.mermaid_js_url = ""
    exporter.mermaid_layout_elk_js_url = ""
    exporter.widget_renderer_url = ""
    exporter.jquery_url = ""
    return exporter


_CDN = re.compile(r"https://cdn\.holoviz\.org/panel/[^/\s\"']+/dist/([^\s\"'?)\\]+)(\?[^\s\"')\\]*)?")
_MIME = {
    ".css": "text/css",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
}


def _inline_cdn(body: str) -> str:
    """Replace Panel's CDN stylesheet and script URLs by data URIs of the same files shipped in the
    installed ``panel`` package, so the page never asks the internet for them. The package is found,
    not imported (importing it takes 1.4 s of every report run)."""
    import base64
    import importlib.util

    spec = importlib.util.find_spec("panel")
    if spec is None or spec.origin is None:  # pragma: no cover - panel comes with hvplot/holoviews
        return body
    dist = Path(spec.origin).parent / "dist"
    cache: dict[str, str] = {}

    def repl(m: re.Match) -> str:
        rel = m.group(1)
        if rel not in cache:
            f = dist / rel
            if not f.is_file():
                cache[rel] = m.group(0)
            else:
                mime = _MIME.get(f.suffix, "application/octet-stream")
                cache[rel] = f"data:{mime};base64,{base64.b64encode(f.read_bytes()).decode()}"
        return cache[rel]

    body = _CDN.sub(repl, body)
    # Panel's base URL for resources it would fetch lazily: point it nowhere rather than to a CDN
    return re.sub(r"https://cdn\.holoviz\.org/panel/[^/\s\"']+/dist/(?=[\"'])", "", body)

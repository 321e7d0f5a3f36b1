"""The index of runs: ``<output_dir>/index.html``, every run newest first with its status and links.

Every run folder is listed: a manifest that cannot be read as ``corrupt``, a folder without one as
``incomplete``, a live run's temporary folder as ``running``, one without a marker as ``unknown``
(see :mod:`bioworkbench.reports.folders`). Every value taken from a manifest is escaped: a
tampered manifest is data, never markup.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bioworkbench.reports.folders import TEMP_RUN, read_marker, recover_interrupted, run_state

__all__ = ["write_index"]


def _text(value: Any) -> str:
    """Any value of a manifest as escaped HTML text (a tampered manifest is data)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = json.dumps(value, default=str, ensure_ascii=False) if isinstance(value, dict | list) else str(value)
    return html.escape(value, quote=True)


def _index_entries(root: Path) -> list[dict[str, Any]]:
    """One entry per run folder (manifest, corrupt manifest or none) and per temporary folder."""
    entries: list[dict[str, Any]] = []
    for folder in sorted(p for p in root.glob("*/*") if p.is_dir()):
        rel = folder.relative_to(root).as_posix()
        base = {"report": folder.parent.name, "run": folder.name, "_dir": rel}
        if folder.name.startswith("."):
            if not TEMP_RUN.match(folder.name):  # not a run's (e.g. .ipynb_checkpoints)
                continue
            marker = read_marker(folder)
            state = run_state(folder, marker)
            if marker is not None:
                entries.append(
                    base
                    | {k: marker.get(k) for k in ("report", "started", "parameters")}
                    | {
                        "status": "running",
                        "detail": f"pid {marker.get('pid')} on {marker.get('host')}; temporary folder {rel}",
                    }
                )
            else:
                entries.append(
                    base
                    | {
                        "status": state,
                        "detail": f"temporary folder {rel} without a readable run marker (from an older "
                        "bioworkbench, or a run stopped as it began); left in place",
                    }
                )
            continue
        mf = folder / "manifest.json"
        if not mf.exists():
            entries.append(base | {"status": "incomplete", "detail": f"{rel} holds no manifest.json"})
            continue
        try:
            m = json.loads(mf.read_text(encoding="utf-8"))
            if not isinstance(m, dict):
                raise ValueError(f"a manifest is a JSON object; found {type(m).__name__}")
        except (OSError, ValueError) as exc:
            reason = str(exc)
            if isinstance(exc, json.JSONDecodeError):
                reason = f"not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}"
            elif isinstance(exc, UnicodeDecodeError):
                reason = f"not UTF-8 text (byte {exc.start})"
            entries.append(base | {"status": "corrupt", "detail": f"{rel}/manifest.json cannot be read: {reason}"})
            continue
        err = m.get("error")
        detail = f"{err.get('ename')}: {err.get('evalue')}" if isinstance(err, dict) else (err or "")
        entries.append(m | base | {"report": m.get("report", base["report"]), "detail": detail})
    entries.sort(key=lambda e: (str(e.get("started") or ""), str(e.get("run") or "")), reverse=True)
    return entries


#: the statuses the index knows (a row's CSS class; any other status is shown, classed "other")
_STATUSES = ("completed", "failed", "refused", "interrupted", "running", "corrupt", "incomplete", "unknown")


def write_index(output_dir: str | os.PathLike = "reports") -> Path:
    """Rewrite ``<output_dir>/index.html``: every run, newest first, with status and links.

    Dead runs are recorded first (:func:`~bioworkbench.reports.folders.recover_interrupted`). Every
    run folder is listed: a manifest that cannot be read as ``corrupt``, a folder without one as
    ``incomplete``, a live run's temporary folder as ``running``, one without a marker as
    ``unknown``. Every value taken from a manifest is escaped.

    Parameters
    ----------
    output_dir
        The reports folder (created if missing).

    Returns
    -------
    pathlib.Path
        ``<output_dir>/index.html`` (written atomically).
    """
    root = Path(output_dir)
    if root.is_dir():
        recover_interrupted(root)
    entries = _index_entries(root) if root.is_dir() else []
    rows = []
    for e in entries:
        params = e.get("parameters")
        if isinstance(params, dict):
            params = ", ".join(f"{k}={v}" for k, v in params.items() if k != "campaign")
        status = str(e.get("status") or "?")
        css = status if status in _STATUSES else "other"
        duration = e.get("duration_s")
        duration = (
            f"{duration:.2f} s" if isinstance(duration, int | float) and not isinstance(duration, bool) else duration
        )
        folder = root / e["_dir"]
        links = []
        for label, file in (("report", "report.html"), ("manifest", "manifest.json")):
            if (folder / file).is_file():
                links.append(f'<a href="{html.escape(quote(e["_dir"] + "/" + file), quote=True)}">{label}</a>')
        rows.append(
            f'<tr class="{css}"><td>{_text(e.get("report"))}</td><td>{_text(params)}</td>'
            f'<td class="status">{_text(status)}</td><td>{_text(e.get("started"))}</td>'
            f"<td>{_text(duration)}</td><td>{' · '.join(links)}</td><td>{_text(e.get('detail'))}</td></tr>"
        )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>bioworkbench reports</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}}
tr.failed .status,tr.corrupt .status,tr.interrupted .status{{color:#b00;font-weight:bold}}
tr.completed .status{{color:#070}}</style></head>
<body><h1>bioworkbench reports</h1>
<p>{len(entries)} run(s), newest first. Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC.</p>
<table><thead><tr><th>report</th><th>parameters</th><th>status</th><th>started (UTC)</th><th>time</th>
<th>files</th><th>error</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""
    root.mkdir(parents=True, exist_ok=True)
    target = root / "index.html"
    tmp = root / f".index.html.{os.getpid()}.part"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, target)
    return target

"""What report notebooks display: Markdown from a template, clean HTML tables, collapsed details,
and the "Notes on the data" that replace Python warnings on a page.

Warnings are information for the reader, not console noise: report sections compute inside
:func:`collect_notes`, which records the warnings raised there (scoped: nothing is changed for the
rest of the process) and returns them as plain sentences to show in their own section.
"""

from __future__ import annotations

import contextlib
import html
import logging
import math
import warnings
from collections.abc import Iterator
from typing import Any

import polars as pl

from bioworkbench.checks import require_frame
from bioworkbench.text import Safe, escape, markdown_text

__all__ = ["Details", "Table", "collect_notes", "details", "markdown", "notes_markdown", "table"]


def markdown(template: str, /, **values: Any) -> Any:
    """Display Markdown in a notebook: ``template`` is trusted code, ``values`` are data (escaped).

    ``bw.review.markdown("## Batch {batch_id} — {name}", batch_id=batch_id, name=camp.name)``.
    Without values the text is shown as it is: pass only text written in code or built by the
    review functions (:class:`~bioworkbench.text.Safe`), never data directly.

    Parameters
    ----------
    template
        Markdown written in code, with ``{name}`` fields.
    **values
        The data to put in the fields (escaped).

    Returns
    -------
    IPython.display.Markdown
    """
    from IPython.display import Markdown

    text = template if not values else markdown_text(template, **values)
    return Markdown(str(text))


def _cell(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    if isinstance(v, list | tuple):
        return "; ".join(_cell(x) for x in v) or "—"
    if hasattr(v, "strftime"):
        return v.strftime("%Y-%m-%d %H:%M")
    return html.escape(str(v), quote=True)


_STYLE = (
    "<style>.bw-table{border-collapse:collapse;font-size:12px}.bw-table td,.bw-table th{padding:3px 8px;"
    "border-bottom:1px solid #ddd;text-align:left !important;vertical-align:top}"
    ".bw-table th{background:#f4f6f8}.bw-details summary{cursor:pointer;font-weight:600;margin:4px 0}</style>"
)


class Table:
    """A frame shown as a plain HTML table in notebooks and reports (no dtype row, no quotes,

    numbers to 4 significant digits, every row up to ``max_rows``; every cell and header escaped).

    Parameters
    ----------
    frame
        The frame to show.
    max_rows
        Rows shown at most (a line says how many more there are).
    caption
        A caption above the table.
    """

    def __init__(self, frame: pl.DataFrame, *, max_rows: int = 500, caption: str | None = None) -> None:
        self.frame = require_frame(frame, function="table", argument="frame")
        self.max_rows = max_rows
        self.caption = caption

    def _repr_html_(self) -> str:
        df = self.frame
        head = "".join(f"<th>{html.escape(str(c), quote=True)}</th>" for c in df.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>"
            for row in df.head(self.max_rows).iter_rows()
        )
        more = f"<p><em>{df.height - self.max_rows} more rows not shown.</em></p>" if df.height > self.max_rows else ""
        cap = f"<caption>{html.escape(self.caption, quote=True)}</caption>" if self.caption else ""
        return f'{_STYLE}<table class="bw-table">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}'

    def __repr__(self) -> str:
        return repr(self.frame)


def table(frame: pl.DataFrame, *, max_rows: int = 500, caption: str | None = None) -> Table:
    """Show ``frame`` as a clean HTML table (for report notebooks).

    Parameters
    ----------
    frame
        The frame to show.
    max_rows
        Rows shown at most.
    caption
        A caption above the table.

    Returns
    -------
    Table
    """
    return Table(frame, max_rows=max_rows, caption=caption)


class Details:
    """A collapsed section (``<details>``): a one-line summary, the table inside on a click.

    Parameters
    ----------
    summary
        The one-line summary shown closed.
    frame
        The table shown open.
    max_rows
        Rows shown at most.
    """

    def __init__(self, summary: str, frame: pl.DataFrame, *, max_rows: int = 500) -> None:
        self.summary = summary
        self.table = Table(frame, max_rows=max_rows)

    def _repr_html_(self) -> str:
        return (
            f'<details class="bw-details"><summary>{html.escape(self.summary, quote=True)}</summary>'
            f"{self.table._repr_html_()}</details>"
        )

    def __repr__(self) -> str:
        return f"{self.summary}\n{self.table!r}"


def details(summary: str, frame: pl.DataFrame, *, max_rows: int = 500) -> Details:
    """Show ``frame`` collapsed under a one-line ``summary`` (open it with a click).

    Parameters
    ----------
    summary
        The one-line summary shown closed.
    frame
        The table shown open.
    max_rows
        Rows shown at most.

    Returns
    -------
    Details
    """
    return Details(summary, frame, max_rows=max_rows)


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(level=logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(f"{record.name}: {record.getMessage()}")


@contextlib.contextmanager
def collect_notes(sink: list[str], *, loggers: tuple[str, ...] = ("bioworkbench",)) -> Iterator[list[str]]:
    """Record the warnings (and warning log records of ``loggers``) raised inside the block into

    ``sink`` as plain text, once each, instead of letting them print.

    The capture is scoped to the block (``warnings.catch_warnings``); nothing is filtered for the
    rest of the process.

    Parameters
    ----------
    sink
        The list the notes are appended to (deduplicated at the end of the block).
    loggers
        Loggers whose warning records are collected too.

    Yields
    ------
    list of str
        ``sink``.
    """
    handler = _ListHandler(sink)
    logs = [logging.getLogger(name) for name in loggers]
    for log in logs:
        log.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield sink
    finally:
        for log in logs:
            log.removeHandler(handler)
    for w in caught:
        text = str(w.message).strip()
        from bioworkbench.errors import BioWorkbenchWarning

        if not issubclass(w.category, BioWorkbenchWarning):
            text = f"{w.category.__name__}: {text}"
        sink.append(text)
    unique = list(dict.fromkeys(sink))
    sink[:] = unique


def notes_markdown(notes: list[str]) -> Safe:
    """The "Notes on the data" section: one bullet per note, or a sentence saying there were none.

    Parameters
    ----------
    notes
        The notes (plain text, escaped here).

    Returns
    -------
    Safe
        Markdown.
    """
    if not notes:
        return Safe("Nothing unusual was noticed while computing this report.")
    return Safe("\n".join(f"- {escape(n)}" for n in notes))

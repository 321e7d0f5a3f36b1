"""The operator dashboard's look: one stylesheet (large type, plain colours) and HTML panes that use it."""

from __future__ import annotations

from typing import Any

__all__ = ["CSS", "html_pane"]

#: the style of the whole page: large type, plain colours
CSS = """
:host, .bw { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 20px; }
.bw-card { border: 3px solid #9aa5b1; border-radius: 10px; padding: 10px 16px; width: 440px; background: #fff; }
.bw-card.ok { border-color: #2ca02c; } .bw-card.watch { border-color: #ff9f1c; }
.bw-card.alarm { border-color: #d62728; }
.bw-card h2 { font-size: 30px; margin: 4px 0; }
.bw-level { font-weight: bold; padding: 4px 8px; border-radius: 6px; display: inline-block; }
.ok .bw-level, .bw-level.ok { background: #d9f2d9; } .watch .bw-level, .bw-level.watch { background: #ffe8c2; }
.alarm .bw-level, .bw-level.alarm { background: #f8d0d0; }
.bw table { border-collapse: collapse; font-size: 18px; } .bw td, .bw th { padding: 3px 10px; text-align: left; }
.bw tr:nth-child(even) { background: #f3f5f7; }
.bw-muted { color: #555; }
"""


def html_pane(text: str, **kwargs: Any) -> Any:
    """An HTML pane of the dashboard: ``text`` in a ``<div class="bw">`` with :data:`CSS`.

    Parameters
    ----------
    text
        HTML (escaped by the caller).
    **kwargs
        Passed to ``panel.pane.HTML`` (``sizing_mode``…).

    Returns
    -------
    panel.pane.HTML
    """
    import panel as pn

    return pn.pane.HTML(f'<div class="bw">{text}</div>', stylesheets=[CSS], **kwargs)

"""Panel set up so that a page needs nothing from the internet: resources from the server (or inlined
in a saved file), no web fonts, no notification library from a CDN."""

from __future__ import annotations

from typing import Any

__all__ = ["panel_offline"]

_DONE = False


def panel_offline() -> Any:
    """Load Panel's extension once, with inline resources and no external fonts; return ``panel``.

    Returns
    -------
    module
        ``panel``.

    Notes
    -----
    Panel's base design (no Material or Fast design, which load Google fonts), notifications off
    (their library and its font come from a CDN), resources inline in notebooks and saved files;
    a served page takes Bokeh's and Panel's scripts from the Panel server itself.
    """
    global _DONE
    import panel as pn

    from bioworkbench.plots import setup

    if not _DONE:
        setup()  # HoloViews' Bokeh extension with inline resources
        pn.config.notifications = False
        pn.config.design = None
        pn.config.inline = True
        pn.extension(inline=True, notifications=False, design=None)
        _DONE = True
    return pn


_REMOTE_ICON = r'<link rel="(?:apple-touch-icon|icon)"[^>]*href="https?://[^"]*"[^>]*>'


def without_remote_icons(text: str) -> str:
    """A saved Panel page without its icons from ``cdn.holoviz.org`` (an empty inline icon instead).

    Panel's saved pages link their favicon from the CDN even with inline resources; a browser
    fetches it on opening the file, which is a request to the internet.

    Parameters
    ----------
    text
        The HTML of the page.

    Returns
    -------
    str
        The page with each remote icon link removed and one ``<link rel="icon" href="data:,">``.
    """
    import re

    text, n = re.subn(_REMOTE_ICON, "", text)
    return text.replace("<head>", '<head><link rel="icon" href="data:,">', 1) if n else text

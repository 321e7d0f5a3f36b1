"""Panel set up so that a page needs nothing from the internet: resources from the server (or inlined
in a saved file), no web fonts, no notification library from a CDN."""

from __future__ import annotations

from typing import Any

__all__ = ["inline_resources", "panel_offline", "without_remote_icons"]

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


def inline_resources() -> Any:
    """Bokeh's resources inlined, without the external files that other libraries' models declare.

    Bokeh's ``INLINE`` lists, besides its own inlined bundles, the ``__javascript__`` and ``__css__``
    files of every model class imported in the process, used on the page or not. Once Panel is
    imported that includes Panel's ``es-module-shims`` at a relative ``static/extensions/...`` path
    (for its ESM components), which a saved file cannot load: a failed request and a console error
    on opening it. A page of Bokeh's own models (what :func:`holoviews.render` makes) needs none
    of them.

    Returns
    -------
    bokeh.resources.Resources
        Inline resources whose ``js_files`` and ``css_files`` are empty.
    """
    from bokeh.resources import Resources

    class _Inline(Resources):
        def _collect_external_resources(self, resource_attr: str) -> list[str]:
            return []

        def clone(self, *, components: list[str] | None = None) -> Resources:
            # Bokeh's bundling clones the resources (as a plain Resources): keep the subclass
            return _Inline(mode="inline", components=components if components is not None else list(self.components))

    return _Inline(mode="inline")

"""Interactive views: the campaign explorer for JupyterLab and the operator dashboard in the browser.

* :func:`explore` (``bw.explore(campaign)``) — :mod:`~bioworkbench.interactive.explorer`: pickers,
  colour by a CPP, a group or the status, linked selection between the trajectories, the summary
  table and a CPP-vs-outcome scatter, export of the current view to one offline HTML file;
* :func:`serve` (``bioworkbench serve``) — :mod:`~bioworkbench.interactive.dashboard`: running batches
  as cards, a page per batch, refreshed from the campaign folder;
* :mod:`~bioworkbench.interactive.live` — what the dashboard computes (golden batch status, MSPC,
  exceptions, forecasts), without any web library.

Panel is imported by these functions only (``import bioworkbench`` stays light), set up so that no
page loads anything from the internet (:func:`~bioworkbench.interactive.offline.panel_offline`).

Layer: above the analyses (monitoring, models, plots) and beside the reports; only the command line
imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Explorer", "explore", "serve", "snapshot"]

if TYPE_CHECKING:
    from bioworkbench.interactive.dashboard import serve
    from bioworkbench.interactive.explorer import Explorer, explore
    from bioworkbench.interactive.live import snapshot

_WHERE = {
    "Explorer": "explorer",
    "explore": "explorer",
    "serve": "dashboard",
    "snapshot": "live",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name in _WHERE:
        return getattr(importlib.import_module(f"bioworkbench.interactive.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'bioworkbench.interactive' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""Interactive figures (hvplot / HoloViews, Bokeh backend) that return objects and never show or save.

Every function takes the data first and keyword-only options after, narrows the frame to the
plotted columns before plotting, labels axes with canonical units, and shows culture time in days.
:func:`setup` loads the Bokeh extension with *inline* resources, so a report rendered to HTML draws its
plots with no internet; every plot function calls it (it is idempotent).

Modules: :mod:`~bioworkbench.plots.batches` (trajectories, envelopes, kinetics, models of batches,
monitoring), :mod:`~bioworkbench.plots.design` (designs, response surfaces, design space, CPP
impact and relation graph) and :mod:`~bioworkbench.plots.stability` (shelf life and degradation).
"""

from __future__ import annotations

import importlib
from typing import Any

from bioworkbench.plots.batches import *  # noqa: F403
from bioworkbench.plots.batches import __all__ as _batch_all
from bioworkbench.plots.batches import _single_line  # noqa: F401  (tested)

_LAZY = {
    "plot_design": "design",
    "plot_effects": "design",
    "plot_response_surface": "design",
    "plot_design_space": "design",
    "plot_par": "design",
    "plot_cpp_impact": "design",
    "plot_relation_graph": "design",
    "plot_shelf_life": "stability",
    "plot_stability_prediction": "stability",
    "plot_prob_in_spec": "stability",
}

__all__ = [*_batch_all, *_LAZY, "layout"]


def layout(figures: list[Any], *, cols: int = 2) -> Any:
    """Figures side by side, ``cols`` per row, each keeping its own axes."""
    hv = setup()  # noqa: F405
    return hv.Layout(list(figures)).cols(cols).opts(shared_axes=False)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"bioworkbench.plots.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'bioworkbench.plots' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

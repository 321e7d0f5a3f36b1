"""Interactive figures (hvplot / HoloViews, Bokeh backend) that return objects and never show or save.

Every function takes the data first and keyword-only options after, checks its inputs (a wrong
argument is an :class:`~bioworkbench.errors.ArgumentError`, a missing column a
:class:`~bioworkbench.errors.SchemaError` naming the function, the argument and what was found),
narrows the frame to the plotted columns before plotting, labels axes with canonical units, titles
each plot with what it shows (variable and unit for trajectories) and shows culture time in days.
:func:`setup` loads the Bokeh extension with *inline* resources, so a report rendered to HTML draws its
plots with no internet; every plot function calls it (it is idempotent). Nothing changes the process
beyond that: no warning filter, no replaced ``warnings.showwarning``.

Layer: plots sit low. They take frames and result objects as arguments and import only
:mod:`bioworkbench.errors`, :mod:`bioworkbench.checks` and the variable registry
(:mod:`bioworkbench.variables`), never review, reports, models, monitoring or the other analyses
(a test reads every import of this package).

Modules, by subject:

* :mod:`~bioworkbench.plots.base` — set-up, colours, labels, titles that fit, input checks;
* :mod:`~bioworkbench.plots.trajectories` — trajectories, envelopes, online traces;
* :mod:`~bioworkbench.plots.kinetics` — kinetics, growth-model fits, forest plots;
* :mod:`~bioworkbench.plots.forecast` — a running batch's forecast;
* :mod:`~bioworkbench.plots.monitoring` — MSPC control charts, scores, contributions, golden batch;
* :mod:`~bioworkbench.plots.outcomes` — outcome variability, CQAs against CPPs;
* :mod:`~bioworkbench.plots.design` — designs, effects, response surfaces, design space, PAR;
* :mod:`~bioworkbench.plots.doe_diagnostics` — DoE residuals, observed vs predicted, fraction of design space;
* :mod:`~bioworkbench.plots.criticality` — CPP impact and the relation graph;
* :mod:`~bioworkbench.plots.stability` — shelf life and degradation.

The batch figures load with the package; design, criticality and stability figures on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from bioworkbench.plots.base import setup
from bioworkbench.plots.forecast import plot_forecast
from bioworkbench.plots.kinetics import plot_forest, plot_forests, plot_growth_fit, plot_kinetics
from bioworkbench.plots.monitoring import plot_contributions, plot_control_chart, plot_golden, plot_scores
from bioworkbench.plots.outcomes import plot_cqa_grid, plot_cqa_vs_cpp, plot_outcomes
from bioworkbench.plots.trajectories import plot_batch_envelopes, plot_envelope, plot_online, plot_trajectories

_LAZY = {
    "plot_design": "design",
    "plot_effects": "design",
    "plot_response_surface": "design",
    "plot_design_space": "design",
    "plot_par": "design",
    **dict.fromkeys(
        ("plot_residuals", "plot_normal_probability", "plot_observed_predicted", "plot_fraction_of_design_space"),
        "doe_diagnostics",
    ),
    "plot_cpp_impact": "criticality",
    "plot_relation_graph": "criticality",
    "plot_shelf_life": "stability",
    "plot_stability_prediction": "stability",
    "plot_prob_in_spec": "stability",
}

__all__ = [
    "layout",
    "plot_batch_envelopes",
    "plot_contributions",
    "plot_control_chart",
    "plot_cqa_grid",
    "plot_cqa_vs_cpp",
    "plot_envelope",
    "plot_forecast",
    "plot_forest",
    "plot_forests",
    "plot_golden",
    "plot_growth_fit",
    "plot_kinetics",
    "plot_online",
    "plot_outcomes",
    "plot_scores",
    "plot_trajectories",
    "setup",
    *_LAZY,
]


def layout(figures: list[Any], *, cols: int = 2) -> Any:
    """Figures side by side, each keeping its own axes.

    Parameters
    ----------
    figures
        HoloViews objects (the plot functions' results).
    cols
        Figures per row.

    Returns
    -------
    holoviews.Layout
        The figures with ``shared_axes=False``.

    Raises
    ------
    ArgumentError
        ``cols`` is not a positive integer.
    """
    from bioworkbench.checks import require_number

    require_number(cols, function="layout", argument="cols", minimum=1, integer=True)
    hv = setup()
    return hv.Layout(list(figures)).cols(cols).opts(shared_axes=False)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"bioworkbench.plots.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'bioworkbench.plots' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

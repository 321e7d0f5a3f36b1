"""bioworkbench: analytics for biopharmaceutical process data, in Jupyter and in reports.

``import bioworkbench as bw`` is light: polars and the data model load now; modelling, plotting
and reporting libraries (PyMC, hvplot, papermill) load only when a function needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from bioworkbench.campaign import Campaign
from bioworkbench.errors import (
    ArgumentError,
    BioWorkbenchError,
    BioWorkbenchWarning,
    ConfigError,
    DataReadError,
    IntegrityError,
    Issue,
    MissingDependencyError,
    ModelNotFittedError,
    ReportError,
    SchemaError,
)
from bioworkbench.io import read_campaign
from bioworkbench.variables import register_variable, variables

_LAZY_MODULES = {
    "doe",
    "instruments",
    "io",
    "kinetics",
    "simulate",
    "units",
    "schema",
    "errors",
    "campaign",
    "checks",
    "plots",
    "review",
    "reports",
    "models",
    "monitoring",
    "stability",
    "criticality",
    "terms",
    "datasets",
    "database",
    "outcomes",
    "text",
    "interactive",
    "twin",
}
_LAZY_ATTRS = {
    "simulate_campaign": ("bioworkbench.simulate", "simulate_campaign"),
    "read_wide": ("bioworkbench.io.wide", "read_wide"),
    "read_instrument": ("bioworkbench.instruments", "read_instrument"),
    "open_store": ("bioworkbench.database", "open_store"),
    "simulate_stability": ("bioworkbench.stability.simulate", "simulate_stability"),
    "read_study": ("bioworkbench.stability.study", "read_study"),
    "explore": ("bioworkbench.interactive.explorer", "explore"),
}

__all__ = [
    "ArgumentError",
    "BioWorkbenchError",
    "BioWorkbenchWarning",
    "Campaign",
    "ConfigError",
    "DataReadError",
    "IntegrityError",
    "Issue",
    "MissingDependencyError",
    "ModelNotFittedError",
    "ReportError",
    "SchemaError",
    "__version__",
    "criticality",
    "datasets",
    "doe",
    "explore",
    "interactive",
    "io",
    "kinetics",
    "models",
    "monitoring",
    "open_store",
    "outcomes",
    "plots",
    "read_campaign",
    "read_instrument",
    "read_study",
    "read_wide",
    "register_variable",
    "reports",
    "review",
    "simulate_campaign",
    "simulate_stability",
    "stability",
    "variables",
]

if TYPE_CHECKING:
    from bioworkbench import io, kinetics
    from bioworkbench.io.wide import read_wide
    from bioworkbench.simulate import simulate_campaign


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        return importlib.import_module(f"bioworkbench.{name}")
    if name in _LAZY_ATTRS:
        module, attr = _LAZY_ATTRS[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'bioworkbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""Experimental designs as polars run tables: factorial, fractional, CCD, Box–Behnken, LHS, D-optimal.

Every generator takes ``factors = {name: (low, high)}`` in natural units first, then keyword-only
options with the same names everywhere (``center_points``, ``replicates``, ``blocks``, ``randomize``,
``random_seed``, ``units``), and returns a :class:`Design`: the run table (``std_order``, ``run_order``,
``block``, ``point_type``, natural-unit factor columns, ``<factor>_coded`` columns) plus the facts of
its kind (generators, defining relation, resolution and aliases; alpha and rotatability; D-efficiency).
The natural-unit columns feed :class:`bioworkbench.models.ResponseSurface` directly, in the same term
language (:mod:`bioworkbench.terms`).

>>> import bioworkbench as bw
>>> d = bw.doe.fractional_factorial({"temp": (33, 37), "ph": (6.8, 7.2), "feed": (2, 4), "do": (30, 50)},
...                                 generators=["D=ABC"], random_seed=1)
>>> d.defining_relation, d.resolution
(('ABCD',), 4)
>>> d.to_excel("plan.xlsx")  # doctest: +SKIP

Library use: pyDOE3 builds the factorial, fractional, Box–Behnken (3–5 factors) and Latin hypercube
tables and the CCD's star points; defining relations, aliases, block generators, rotatability and
orthogonal blocking checks, the 6–7 factor Box–Behnken tables and the D-optimal exchange are written
here (each module says why).
"""

from __future__ import annotations

from bioworkbench.doe.analysis import ANOVA_SOURCES, Analysis, analyze
from bioworkbench.doe.augment import augment, fold_over
from bioworkbench.doe.design import DESIGN_KINDS, POINT_TYPES, Design, blocks_orthogonal, is_rotatable
from bioworkbench.doe.evaluation import DesignEvaluation, evaluate
from bioworkbench.doe.factorial import fractional_factorial, full_factorial
from bioworkbench.doe.files import deviations, read_design, sidecar_path, write_csv, write_excel
from bioworkbench.doe.optimal import d_optimal
from bioworkbench.doe.space_filling import latin_hypercube
from bioworkbench.doe.surface import box_behnken, central_composite
from bioworkbench.doe.words import alias_frame, defining_relation, standard_generators

__all__ = [
    "ANOVA_SOURCES",
    "DESIGN_KINDS",
    "POINT_TYPES",
    "Analysis",
    "Design",
    "DesignEvaluation",
    "alias_frame",
    "analyze",
    "augment",
    "blocks_orthogonal",
    "box_behnken",
    "central_composite",
    "d_optimal",
    "defining_relation",
    "deviations",
    "evaluate",
    "fold_over",
    "fractional_factorial",
    "full_factorial",
    "is_rotatable",
    "latin_hypercube",
    "read_design",
    "sidecar_path",
    "standard_generators",
    "write_csv",
    "write_excel",
]

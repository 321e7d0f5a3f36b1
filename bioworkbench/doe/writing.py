"""Designs to files for the lab: CSV with a YAML sidecar, and Excel workbooks (the writing half).

CSV: ``plan.csv`` holds the run table; the design's facts (factors, ranges, units, kind, seed,
generators, …) go to the sidecar ``plan.design.yaml`` next to it. A sidecar rather than a commented
header because spreadsheet programs mangle comment lines when the lab opens and saves the CSV.

Excel: one workbook with a "design" sheet (the run table) and an "about" sheet (the facts as
``key | value`` rows, lists one item per line, then a table of factors with letters, ranges and units).

Layer: the writers read a :class:`~bioworkbench.doe.Design`'s attributes and never import
:mod:`bioworkbench.doe.design` at run time, so :meth:`Design.to_csv` and :meth:`Design.to_excel`
can call them without an import cycle; the reading half (:func:`~bioworkbench.doe.read_design`,
which builds a ``Design``) is :mod:`bioworkbench.doe.files`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from bioworkbench.doe.design import Design

__all__ = ["sidecar_path", "write_csv", "write_excel"]

FORMAT = "bioworkbench design"
VERSION = 1
# every Design field besides frame, factors, units and kind, with how it is written and read
FIELDS = {
    "random_seed": "int",
    "randomized": "bool",
    "levels": "ints",
    "generators": "strs",
    "defining_relation": "strs",
    "resolution": "int",
    "block_generators": "strs",
    "blocks_confounded": "strs",
    "ccd_kind": "str",
    "alpha": "float",
    "alpha_kind": "str",
    "rotatable": "bool",
    "orthogonal_blocking": "bool",
    "criterion": "str",
    "terms": "strs",
    "d_efficiency": "float",
    "log_det": "float",
    "n_candidates": "int",
    "n_excluded": "int",
    "shared": "strs",
    "block_size": "int",
    "notes": "strs",
}
FACTOR_HEADER = ("factor", "letter", "low", "high", "unit")


def sidecar_path(path: str | os.PathLike) -> Path:
    """``plan.csv -> plan.design.yaml``: where the facts of a CSV design live.

    Parameters
    ----------
    path
        The CSV path of a design.

    Returns
    -------
    Path
        The same folder, ``<stem>.design.yaml``.
    """
    path = Path(path)
    return path.with_name(f"{path.stem}.design.yaml")


def _meta(design: Design) -> dict[str, Any]:
    from bioworkbench import __version__

    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "written_by": f"bioworkbench {__version__}",
        "kind": design.kind,
        "n_runs": design.n_runs,
        "factors": [
            {
                "name": n,
                "letter": letter,
                "low": design.factors[n][0],
                "high": design.factors[n][1],
                "unit": design.units[n],
            }
            for letter, n in design.letters.items()
        ],
    }
    for name in FIELDS:
        value = getattr(design, name)
        if value is None or value == ():
            continue
        meta[name] = list(value) if isinstance(value, tuple) else value
    return meta


def write_csv(design: Design, path: str | os.PathLike) -> Path:
    """Write ``design.frame`` to ``path`` (CSV) and its facts to :func:`sidecar_path` (YAML).

    Parameters
    ----------
    design
        The design to write.
    path
        The CSV file (its folder must exist); the sidecar is written beside it.

    Returns
    -------
    Path
        The CSV path.
    """
    path = Path(path)
    design.frame.write_csv(path)
    side = sidecar_path(path)
    text = yaml.safe_dump(_meta(design), sort_keys=False, allow_unicode=True)
    side.write_text(
        f"# facts of the design in {path.name}; keep this file next to it (bioworkbench read_design)\n{text}"
    )
    return path


def write_excel(design: Design, path: str | os.PathLike) -> Path:
    """Write an ``.xlsx`` workbook: sheet "design" (the run table) and sheet "about" (the facts).

    Parameters
    ----------
    design
        The design to write.
    path
        The ``.xlsx`` file (its folder must exist).

    Returns
    -------
    Path
        The workbook path.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font

    path = Path(path)
    wb = Workbook()
    ws = wb.active
    ws.title = "design"
    ws.append(design.frame.columns)
    for row in design.frame.iter_rows():
        ws.append(list(row))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    ws.freeze_panes = "A2"
    about = wb.create_sheet("about")
    about.append(["bioworkbench design", "read back with bioworkbench.doe.read_design; the lab fills the design sheet"])
    about["A1"].font = Font(bold=True)
    meta = _meta(design)
    for key in ("kind", "n_runs", *FIELDS):
        if key in meta:
            value = meta[key]
            about.append([key, "\n".join(str(v) for v in value) if isinstance(value, list) else value])
    about.append([])
    about.append(list(FACTOR_HEADER))
    for cell in about[about.max_row]:
        cell.font = Font(bold=True)
    for f in meta["factors"]:
        about.append([f["name"], f["letter"], f["low"], f["high"], f["unit"]])
    about.column_dimensions["A"].width = 22
    about.column_dimensions["B"].width = 40
    wb.save(path)
    return path

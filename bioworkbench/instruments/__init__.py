"""Instrument readers: cell counters and bioanalysers, read straight from their exports.

:func:`read_instrument` reads a file as the instrument wrote it, recognises the instrument from
the content (:func:`detect_instrument`), and returns tidy observations in the registry's
canonical units, with lineage (file, line or cell, the text as written) and flags instead of
dropped values.

Formats read (one module per family):

* :mod:`~bioworkbench.instruments.vicell`: Beckman Coulter Vi-CELL BLU (``.csv``, UTF-8 or
  UTF-16) and Vi-CELL XR (``.xls``/``.xlsx`` results tables and one-sample reports, ``.txt``);
* :mod:`~bioworkbench.instruments.cedex`: Roche Cedex HiRes (``.csv``, ``.xlsx``) and Cedex Bio HT
  (tab-separated ``#ARC-FILE#`` archives of software 5, 6 and 7);
* :mod:`~bioworkbench.instruments.flex2`: Nova Biomedical BioProfile FLEX2 (``SampleResults*.csv``);
* :mod:`~bioworkbench.instruments.chemometec`: ChemoMetec NucleoView (NC-200/202, ``.csv``) and
  NC-View (``.csv``).

:mod:`~bioworkbench.instruments.detect` recognises the instrument and dispatches;
:mod:`~bioworkbench.instruments.samples` maps sample IDs to batches and culture time, numbers
replicates and averages them; :mod:`~bioworkbench.instruments.common` holds what every reader
shares (numbers, flags, units).

Why hand-written: the one maintained open-source reader of these formats, Benchling's allotropy
(which turns them into Allotrope ASM JSON), pins ``jsonschema<4.18`` in its current releases,
which conflicts with JupyterLab's requirement, and there is no other well-kept reader on PyPI.
The readers here are small (the formats are simple tables) and are tested value by value
against the ASM JSON that allotropy produces for the same example files. They use polars,
fastexcel (calamine: ``.xls`` and ``.xlsx``) and openpyxl (Cedex HiRes ``.xlsx``), all already
dependencies.

Layer: imports :mod:`bioworkbench.schema`, :mod:`bioworkbench.variables`,
:mod:`bioworkbench.units`, :mod:`bioworkbench.checks` and :mod:`bioworkbench.errors`; nothing
below imports it.
"""

from __future__ import annotations

from bioworkbench.instruments.common import EXTRA_VARIABLES, OUTPUT_COLUMNS, ExtraVariable, Quantity
from bioworkbench.instruments.detect import INSTRUMENTS, Instrument, detect_instrument, read_instrument
from bioworkbench.instruments.samples import SAMPLE_GAP, map_samples, number_replicates, replicate_means

__all__ = [
    "EXTRA_VARIABLES",
    "INSTRUMENTS",
    "OUTPUT_COLUMNS",
    "SAMPLE_GAP",
    "ExtraVariable",
    "Instrument",
    "Quantity",
    "detect_instrument",
    "map_samples",
    "number_replicates",
    "read_instrument",
    "register_instrument_variables",
    "replicate_means",
]


def register_instrument_variables() -> list[str]:
    """Register every quantity of :data:`EXTRA_VARIABLES` the registry does not hold yet.

    Returns
    -------
    list[str]
        The names registered (empty when all were already there); idempotent, so safe to call on
        every notebook run.

    Notes
    -----
    Registered with their canonical unit, molar mass and description, kind ``other``, and no
    range (so that no value of theirs is flagged by range).
    """
    from bioworkbench.variables import register_variable, registry

    known = registry()
    added = []
    for name, extra in EXTRA_VARIABLES.items():
        if name not in known:
            register_variable(name, extra.unit, molar_mass=extra.molar_mass, description=extra.description)
            added.append(name)
    return added

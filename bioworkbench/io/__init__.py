"""Readers for data as it arrives: campaign folders, tidy tables, wide bioreactor exports.

* :func:`read_campaign` reads a campaign folder (:mod:`bioworkbench.io.folder`);
* :func:`read_wide` reads wide exports through a :class:`ColumnMap` (:mod:`bioworkbench.io.wide`,
  :mod:`bioworkbench.io.column_map`);
* :func:`read_table` reads one CSV, Parquet or Excel table with its line numbers
  (:mod:`bioworkbench.io.tidy`); :func:`split_header` splits ``"Glucose [g/L]"`` into name and unit.

:func:`flag_values` and :func:`flag_fractions` (from :mod:`bioworkbench.schema`) flag values by the
variable registry's ranges, as every reader does.

Layer: the readers build :class:`~bioworkbench.Campaign` objects, so this package sits above
:mod:`bioworkbench.campaign`; nothing below imports it.
"""

from bioworkbench.io.column_map import ColumnMap, column_map
from bioworkbench.io.folder import read_campaign
from bioworkbench.io.tidy import Table, flag_fractions, flag_values, read_table
from bioworkbench.io.wide import read_wide
from bioworkbench.units import split_header

__all__ = [
    "ColumnMap",
    "Table",
    "column_map",
    "flag_fractions",
    "flag_values",
    "read_campaign",
    "read_table",
    "read_wide",
    "split_header",
]

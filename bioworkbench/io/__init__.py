"""Readers for data as it arrives: tidy tables, wide bioreactor exports, real example campaigns."""

from bioworkbench.io.tidy import flag_fractions, flag_values, read_table
from bioworkbench.io.wide import ColumnMap, column_map, read_wide

__all__ = ["ColumnMap", "column_map", "flag_fractions", "flag_values", "read_table", "read_wide"]

"""Beckman Coulter Vi-CELL BLU cell counter (CSV). Vi-CELL XR reports are not read yet.

Vi-CELL BLU exports one row per sample, a header row first, in UTF-8 or UTF-16 (the export
dialog offers both); concentrations are in 10^6 cells/mL (``Viable (x10^6) cells/mL``). The
analysis time is the instrument's clock (``3/21/2022 16:56``, month first). The ``Dilution``
column is the dilution entered on the instrument, which it has already applied to the
concentrations it reports (Vi-CELL BLU Operator's Manual, "Dilution factor"); it is recorded in
``dilution``.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from bioworkbench.errors import Issue, SchemaError
from bioworkbench.instruments.common import (
    Quantity,
    finish,
    header_key,
    melt_wide,
    parse_times,
    read_csv_text,
    read_text,
)

__all__ = ["looks_like_vicell_blu", "read_vicell_blu"]

_BLU = {
    "total (x10^6) cells/ml": Quantity("tcd", "1e6 cells/mL"),
    "viable (x10^6) cells/ml": Quantity("vcd", "1e6 cells/mL"),
    "viability (%)": Quantity("viability", "%"),
    "average diameter (um)": Quantity("diameter", "um"),
    "average viable diameter (um)": Quantity("viable_diameter", "um"),
    "cell count": Quantity("total_cell_count", "cells"),
    "viable cells": Quantity("viable_cell_count", "cells"),
    "average circularity": Quantity("circularity", "1"),
    "average viable circularity": Quantity("viable_circularity", "1"),
}
_BLU_TIME_FORMATS = ["%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M %p", "%m/%d/%Y %I:%M:%S %p"]


def looks_like_vicell_blu(text: str) -> bool:
    """Whether a text file is a Vi-CELL BLU export (its header row)."""
    head = header_key(text.lstrip("\ufeff").split("\n", 1)[0])
    return head.startswith("sample id,") and "viable (x10^6) cells/ml" in head and "analysis date/time" in head


def read_vicell_blu(path: Path, *, timezone: str = "UTC") -> pl.DataFrame:
    """Read a Vi-CELL BLU CSV export (see the module docstring).

    Raises
    ------
    SchemaError
        The ``Sample ID`` or ``Analysis date/time`` column is missing, naming the file.
    """
    text, _ = read_text(path)
    df = read_csv_text(text)
    _require(df, ["Sample ID", "Analysis date/time"], path, line=1)
    raw = melt_wide(
        df,
        _BLU,
        ids={
            "sample_id": pl.col("Sample ID").str.strip_chars(),
            "measured_at": parse_times(pl.col("Analysis date/time"), _BLU_TIME_FORMATS, timezone),
            "dilution": pl.col("Dilution").cast(pl.Float64, strict=False)
            if "Dilution" in df.columns
            else pl.lit(None, dtype=pl.Float64),
        },
    )
    return finish(raw, file=str(path), instrument="vicell_blu", source="atline")


def _require(df: pl.DataFrame, columns: list[str], path: Path, *, line: int) -> None:
    keys = {header_key(c) for c in df.columns}
    missing = [c for c in columns if header_key(c) not in keys]
    if missing:
        raise SchemaError(
            [
                Issue(
                    f"missing column {c!r}; found: {', '.join(df.columns[:12])}{' …' if df.width > 12 else ''}.",
                    file=str(path),
                    line=line,
                    column=c,
                )
                for c in missing
            ]
        )

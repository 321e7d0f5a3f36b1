"""Beckman Coulter Vi-CELL BLU (CSV) and Vi-CELL XR (``.xls``, ``.xlsx``, ``.txt``) cell counters.

**Vi-CELL BLU** exports one row per sample, a header row first, in UTF-8 or UTF-16 (the export
dialog offers both); concentrations are in 10^6 cells/mL (``Viable (x10^6) cells/mL``). The
analysis time is the instrument's clock (``3/21/2022 16:56``, month first). The ``Dilution``
column is the dilution entered on the instrument, which it has already applied to the
concentrations it reports (Vi-CELL BLU Operator's Manual, "Dilution factor"); it is recorded in
``dilution``.

**Vi-CELL XR** writes three kinds of report, each starting with ``Vi-CELL XR <version>``:

* a results table (``.xls`` from software 2.04, ``.xlsx`` from 2.06): a few title rows, then a
  header of two rows (``Total cells`` over ``/ml (x10^6)``; the second row holds the units) and
  one row per sample. Some 2.06 exports carry a hidden row of column numbers (``0``, ``1``,
  ``2``, ...) under the header; it is not a sample and is left out;
* a one-sample report (``.xlsx``): ``Sample ID``, ``Sample date`` and a ``Results`` block of
  ``label ... value`` rows, followed by the size and circularity histograms (not read);
* a one-sample text file (``.txt``): ``Label : value`` lines; the analysis time is ``RunDate``.

Concentrations are in 10^6 cells/mL; times are the instrument's clock, day first
(``18 Oct 2022  9:08:24 AM``). ``Dilution factor`` (``Dilution`` in the text file) is the
dilution entered on the counter, already applied to the concentrations it reports (Vi-CELL XR
Reference Manual, "Dilution factor"); it is recorded in ``dilution``. Spreadsheets are read
through fastexcel (calamine), which reads both ``.xls`` and ``.xlsx``.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import polars as pl

from bioworkbench.errors import Issue, SchemaError
from bioworkbench.instruments.common import (
    Quantity,
    cell_ref,
    finish,
    header_key,
    melt_wide,
    parse_times,
    raw_frame,
    read_csv_text,
    read_grid,
    read_text,
)

__all__ = ["looks_like_vicell_blu", "looks_like_vicell_xr", "read_vicell_blu", "read_vicell_xr"]

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
    """Whether a text file is a Vi-CELL BLU export (its header row).

    Parameters
    ----------
    text
        The first lines of the file.

    Returns
    -------
    bool
        True when the first line is a header starting ``Sample ID,`` with ``Viable (x10^6)
        cells/mL`` and ``Analysis date/time``.
    """
    head = header_key(text.lstrip("\ufeff").split("\n", 1)[0])
    return head.startswith("sample id,") and "viable (x10^6) cells/ml" in head and "analysis date/time" in head


def read_vicell_blu(path: Path, *, timezone: str = "UTC") -> pl.DataFrame:
    """Read a Vi-CELL BLU CSV export (see the module docstring).

    Parameters
    ----------
    path
        The export, as the instrument wrote it.
    timezone
        The IANA zone of the instrument's clock (the export carries no UTC offset).

    Returns
    -------
    polars.DataFrame
        Observations of :data:`~bioworkbench.instruments.OUTPUT_COLUMNS`, batch and time not yet
        mapped (``source_line`` is the CSV line).

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


# ---------------------------------------------------------------------------------------------
# Vi-CELL XR
# ---------------------------------------------------------------------------------------------
#: a Vi-CELL XR label without spaces (:func:`_xr_key`) -> what it measures; the table, the
#: one-sample report and the text file name the same quantity differently
_XR = {
    "totalcells": Quantity("total_cell_count", "cells"),
    "viablecells": Quantity("viable_cell_count", "cells"),
    "nonviablecells": Quantity("dead_cell_count", "cells"),
    "viability(%)": Quantity("viability", "%"),
    "totalcells/ml(x10^6)": Quantity("tcd", "1e6 cells/mL"),
    "viablecells/ml(x10^6)": Quantity("vcd", "1e6 cells/mL"),
    "totalviablecells/ml(x10^6)": Quantity("vcd", "1e6 cells/mL"),
    "avg.diam.(microns)": Quantity("diameter", "um"),
    "averagediameter(microns)": Quantity("diameter", "um"),
    "avg.circ.": Quantity("circularity", "1"),
    "averagecircularity": Quantity("circularity", "1"),
}
_XR_ID = "sampleid"
_XR_DATES = ("sampledate/time", "sampledate", "rundate")
_XR_DILUTION = ("dilutionfactor", "dilution")
_XR_TIME_FORMATS = ["%d %b %Y %I:%M:%S %p", "%d %b %Y %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"]
_XR_EXCEL = (".xls", ".xlsx", ".xlsm")


def _xr_key(label: object) -> str:
    """A Vi-CELL XR label as matched: :func:`header_key` without any space."""
    return re.sub(r"\s+", "", header_key(str(label or "")))


def looks_like_vicell_xr(text: str) -> bool:
    """Whether a report (a text file, or a spreadsheet's first cells as text) is from a Vi-CELL XR.

    Parameters
    ----------
    text
        The first lines of the file (a spreadsheet's rows as comma-separated text).

    Returns
    -------
    bool
        True when the first line starts with ``Vi-CELL XR``, the title every Vi-CELL XR report
        opens with.
    """
    return header_key(text.lstrip("\ufeff").split("\n", 1)[0]).startswith("vi-cell xr")


def read_vicell_xr(path: Path, *, timezone: str = "UTC") -> pl.DataFrame:
    """Read a Vi-CELL XR report: results table, one-sample report or text file (see the module docstring).

    Parameters
    ----------
    path
        The ``.xls``, ``.xlsx`` or ``.txt`` report.
    timezone
        The IANA zone of the counter's clock (its reports carry no UTC offset).

    Returns
    -------
    polars.DataFrame
        Observations of :data:`~bioworkbench.instruments.OUTPUT_COLUMNS`; ``source_line`` is the
        spreadsheet row or the text line, ``source_cell`` the cell (spreadsheets).

    Raises
    ------
    DataReadError
        A spreadsheet that cannot be opened.
    SchemaError
        No ``Sample ID`` header or label; the sample date, ``Viability (%)`` or ``Viable cells /
        ml (x10^6)`` column missing; a sample date that cannot be read. Each names the file, the
        row (line) or cell, the column and what was expected.
    """
    if path.suffix.lower() in _XR_EXCEL:
        grid = read_grid(path)
        header = next((r for r, row in enumerate(grid, start=1) if row and _xr_key(row[0]) == _XR_ID), None)
        if header is None:
            raise SchemaError(
                [Issue("no 'Sample ID' in column A; expected a Vi-CELL XR results table or report.", file=str(path))]
            )
        below = grid[header] if header < len(grid) else []
        if below and _xr_key(below[0]) == "filename":
            rows = _xr_labelled(_xr_report_values(grid, header), path, "report")
        else:
            rows = _xr_table_rows(grid, header, path)
    else:
        text, _ = read_text(path)
        rows = _xr_labelled(_xr_text_values(text), path, "text report")
    return _xr_finish(rows, path, timezone)


def _xr_table_rows(grid: list[list[str | None]], header: int, path: Path) -> list[dict]:
    """One dict per value of a results table whose header starts on row ``header`` (1-based)."""
    top = grid[header - 1]
    units = grid[header] if header < len(grid) else []
    width = max(len(top), len(units))
    labels = {}
    for c in range(width):
        name = " ".join(
            part.strip() for part in (top[c] if c < len(top) else None, units[c] if c < len(units) else None) if part
        )
        if name:
            labels[c] = name
    keys = {_xr_key(name): c for c, name in labels.items()}
    date_key = next((k for k in _XR_DATES if k in keys), None)
    missing = [
        what
        for what, ok in (
            ("Sample date/time", date_key is not None),
            ("Viability (%)", "viability(%)" in keys),
            ("Viable cells /ml (x10^6)", "viablecells/ml(x10^6)" in keys),
        )
        if not ok
    ]
    if missing:
        found = ", ".join(f"{cell_ref(header, c + 1)} {n!r}" for c, n in labels.items())
        raise SchemaError(
            [
                Issue(
                    f"missing column {m!r} in the header (rows {header}-{header + 1}); "
                    f"expected a Vi-CELL XR results table. Found: {found}.",
                    file=str(path),
                    line=header,
                    column=m,
                )
                for m in missing
            ]
        )
    dilution_col = next((keys[k] for k in _XR_DILUTION if k in keys), None)
    measured = [(keys[k], _XR[k]) for k in keys if k in _XR]
    out = []
    for r in range(header + 2, len(grid) + 1):
        row = grid[r - 1]
        cells = [row[c] if c < len(row) else None for c in range(width)]
        if not any(c is not None and c.strip() for c in cells):
            continue
        if _column_numbers(cells):
            continue  # the hidden row of column numbers some 2.06 exports carry
        base = {
            "sample_id": (cells[0] or "").strip() or None,
            "_time": cells[keys[date_key]],
            "_time_line": r,
            "_time_cell": cell_ref(r, keys[date_key] + 1),
            "dilution": cells[dilution_col] if dilution_col is not None else None,
            "source_line": r,
        }
        for c, quantity in measured:
            out.append(
                base
                | {
                    "quantity": labels[c],
                    "variable": quantity.variable,
                    "raw_value": cells[c],
                    "raw_unit": quantity.unit,
                    "source_cell": cell_ref(r, c + 1),
                }
            )
    return out


def _column_numbers(cells: list[str | None]) -> bool:
    """Whether a row is the hidden row of column numbers (``0, 1, 2, ..., 9, 11, ...``): every cell an
    integer, the first 0, increasing."""
    texts = [c.strip() if c is not None else "" for c in cells]
    if not texts or not all(t.isdigit() for t in texts):
        return False
    numbers = [int(t) for t in texts]
    return numbers[0] == 0 and all(b > a for a, b in itertools.pairwise(numbers))


def _xr_report_values(grid: list[list[str | None]], first: int) -> dict[str, tuple[int, int | None, str, str]]:
    """The labelled values of a one-sample report (labels in column A from row ``first``)."""
    values = {}
    for r in range(first, len(grid) + 1):
        row = grid[r - 1]
        if not row or row[0] is None:
            continue
        label = row[0].strip()
        if _xr_key(label).startswith("sizedistribution"):
            break  # the histograms follow
        value = next(((c, v) for c, v in enumerate(row[1:5], start=1) if v is not None and v.strip()), None)
        if value is not None:
            values[_xr_key(label)] = (r, value[0], label, value[1])
        if len(row) > 5 and row[5] is not None:  # the settings block: label in F, value in I
            setting = next(((c, v) for c, v in enumerate(row[6:10], start=6) if v is not None and v.strip()), None)
            if setting is not None:
                values.setdefault(_xr_key(row[5]), (r, setting[0], row[5].strip(), setting[1]))
    return values


def _xr_text_values(text: str) -> dict[str, tuple[int, int | None, str, str]]:
    """The labelled values of a text report (``Label : value`` lines)."""
    values = {}
    for number, line in enumerate(text.splitlines(), start=1):
        m = re.match(r"^\s*(?P<label>[^:]+?)\s+:\s*(?P<value>.*)$", line)
        if m:
            values.setdefault(_xr_key(m.group("label")), (number, None, m.group("label"), m.group("value").strip()))
    return values


def _xr_labelled(values: dict[str, tuple[int, int | None, str, str]], path: Path, kind: str) -> list[dict]:
    """Rows of one sample from its labelled values: ``key -> (line, column (0-based) or None, label, text)``."""

    def where(key: str) -> tuple[int, str | None]:
        line, col, _, _ = values[key]
        return line, cell_ref(line, col + 1) if col is not None else None

    date_key = next((k for k in _XR_DATES if k in values), None)
    missing = [what for what, ok in (("Sample ID", _XR_ID in values), ("Sample date", date_key is not None)) if not ok]
    if missing:
        raise SchemaError(
            [Issue(f"no {m!r} label; expected a Vi-CELL XR {kind}.", file=str(path), column=m) for m in missing]
        )
    dilution_key = next((k for k in _XR_DILUTION if k in values), None)
    time_line, time_cell = where(date_key)
    base = {
        "sample_id": values[_XR_ID][3].strip() or None,
        "_time": values[date_key][3],
        "_time_line": time_line,
        "_time_cell": time_cell,
        "dilution": values[dilution_key][3] if dilution_key else None,
    }
    rows = []
    for key, quantity in _XR.items():
        if key in values:
            line, cell = where(key)
            _, _, label, text = values[key]
            rows.append(
                base
                | {
                    "source_line": line,
                    "source_cell": cell,
                    "quantity": label,
                    "variable": quantity.variable,
                    "raw_value": text,
                    "raw_unit": quantity.unit,
                }
            )
    return rows


def _xr_finish(rows: list[dict], path: Path, timezone: str) -> pl.DataFrame:
    """Rows of values -> sample times read (or a located error) -> :func:`finish`."""
    schema = {"_time": pl.String, "_time_line": pl.Int64, "_time_cell": pl.String, "dilution": pl.String}
    df = pl.DataFrame(rows, schema_overrides=schema, infer_schema_length=None) if rows else pl.DataFrame(schema=schema)
    df = df.with_columns(
        measured_at=parse_times(pl.col("_time"), _XR_TIME_FORMATS, timezone),
        dilution=pl.col("dilution").cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False),
    )
    bad = df.filter(pl.col("measured_at").is_null()).unique("_time_line", keep="first", maintain_order=True)
    if not bad.is_empty():
        raise SchemaError(
            [
                Issue(
                    f"{f'cell {cell}: ' if cell else ''}expected a sample date such as '18 Oct 2022  9:08:24 AM' "
                    f"(day first), found {text!r}.",
                    file=str(path),
                    line=line,
                    column="Sample date/time",
                )
                for text, cell, line in bad.select("_time", "_time_cell", "_time_line").head(20).iter_rows()
            ]
        )
    return finish(raw_frame(df), file=str(path), instrument="vicell_xr", source="atline")

"""Roche Cedex HiRes cell counter (``.csv``, ``.xlsx``) and Cedex Bio HT analyser (``#ARC-FILE#`` text).

**Cedex HiRes** exports one row per count with the reactor (``Reactor identifer``, sic), the
sample, the draw time (``Sample draw Time``) and the analysis time (``Date finished``);
concentrations are in cells/mL. Several counts of one draw (same reactor and draw time) are
replicates. ``Dilution`` is the dilution entered on the instrument, already applied to the
concentrations it reports; it is recorded in ``dilution``.

**Cedex Bio HT** writes a tab-separated archive: a title row (row type ``0``, with
``#ARC-FILE#`` in its third field, the software version and the analyst), then one row per
result (row type ``40``): measured at, sample ID, batch, role, test code (``GLC3B``: glucose,
standard kit), dilution (``1/5``), unit, flag, result. Software 5 puts the test code in the
third field and the sample in the sixth; 6 and 7 the sample third and the test seventh. A result
below or above the test's range is written ``< 2.50`` / ``> 45.0`` with the flag
``< TEST RNG`` / ``> TEST RNG``: the limit is kept, flagged ``<LOD`` / ``>ULOQ``. The flag
``v`` (verification) or ``c`` (calibration) keeps the value, flagged ``suspect``. Results of a
pre-diluted test (``1/5``) are already multiplied back by the analyser.

The test codes are Roche's (Cedex Bio HT method sheets): the letters name the analyte, the last
letter the kit (``B`` standard, ``D`` high range with pre-dilution, ``L`` low range).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import polars as pl

from bioworkbench.errors import BioWorkbenchWarning, Issue, SchemaError
from bioworkbench.instruments.common import (
    Quantity,
    cell_text,
    finish,
    header_key,
    melt_wide,
    parse_times,
    raw_frame,
    read_csv_text,
    read_sheet,
    read_text,
)

__all__ = [
    "BIOHT_TESTS",
    "looks_like_cedex_bioht",
    "looks_like_cedex_hires",
    "read_cedex_bioht",
    "read_cedex_hires",
]

_HIRES = {
    "viability": Quantity("viability", "%"),
    "viable cell conc.": Quantity("vcd", "cells/mL"),
    "total cell conc.": Quantity("tcd", "cells/mL"),
    "dead cell conc.": Quantity("dcd", "cells/mL"),
    "avg diameter": Quantity("diameter", "um"),
    "total cell count": Quantity("total_cell_count", "cells"),
    "viable cell count": Quantity("viable_cell_count", "cells"),
    "dead cell count": Quantity("dead_cell_count", "cells"),
    "total object count": Quantity("total_object_count", "cells"),
    "avg compactness": Quantity("compactness", "1"),
    "avg area": Quantity("cell_area", "1"),
    "avg perimeter": Quantity("perimeter", "um"),
    "avg segm. area": Quantity("segment_area", "1"),
    "std dev.": Quantity("vcd_sd", "cells/mL"),
    "aggregate rate": Quantity("aggregates", "%"),
}
_HIRES_TIMES = [
    "%m-%d-%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M:%S %p",
    "%Y-%m-%d %H:%M:%S",
    "%m-%d-%Y %H:%M:%S",
    "%d.%m.%Y %H:%M:%S",
]


def looks_like_cedex_hires(text: str) -> bool:
    """Whether the first lines (or first cells, as text) are a Cedex HiRes export's header.

    Parameters
    ----------
    text
        The first lines of the file (a spreadsheet's rows as comma-separated text).

    Returns
    -------
    bool
        True when the first line holds ``Cedex ID`` and ``Viable Cell Conc.``.
    """
    head = header_key(text.split("\n", 1)[0])
    return "cedex id" in head and "viable cell conc." in head


def read_cedex_hires(path: Path, *, timezone: str = "UTC") -> pl.DataFrame:
    """Read a Cedex HiRes export (``.csv`` or ``.xlsx``; see the module docstring).

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
        mapped (``source_line`` is the CSV line or spreadsheet row, ``source_cell``
        the cell of a spreadsheet).

    Raises
    ------
    SchemaError
        A required column (sample, reactor, times) is missing, or a time cannot be read, with
        file, line (or cell) and column.
    """
    positions = None
    if path.suffix.lower() in (".xls", ".xlsx", ".xlsm"):
        grid = read_sheet(path)
        header = [cell_text(c) or f"column {i + 1}" for i, c in enumerate(grid[0])]
        positions = {h: i + 1 for i, h in enumerate(header)}
        rows, lines = [], []
        for r, row in enumerate(grid[1:], start=2):
            cells = [cell_text(row[i]) if i < len(row) else None for i in range(len(header))]
            if any(c is not None and c.strip() for c in cells):
                rows.append(cells)
                lines.append(r)
        df = pl.DataFrame(rows, schema=dict.fromkeys(header, pl.String), orient="row").with_columns(
            _line=pl.Series(lines, dtype=pl.Int64)
        )
    else:
        text, _ = read_text(path)
        df = read_csv_text(text)
    cols = {header_key(c): c for c in df.columns}
    need = ["sample identifer", "reactor identifer", "sample draw time", "date finished"]
    missing = [n for n in need if n not in cols]
    if missing:
        raise SchemaError(
            [Issue(f"missing column {n!r} of a Cedex HiRes export.", file=str(path), line=1, column=n) for n in missing]
        )
    drawn = parse_times(pl.col(cols["sample draw time"]), _HIRES_TIMES, timezone)
    finished = parse_times(pl.col(cols["date finished"]), _HIRES_TIMES, timezone)
    _check_times(df, {cols["sample draw time"]: drawn, cols["date finished"]: finished}, path, positions)
    raw = melt_wide(
        df,
        _HIRES,
        ids={
            "sample_id": pl.col(cols["sample identifer"]).str.strip_chars(),
            "vessel": pl.col(cols["reactor identifer"]).str.strip_chars(),
            "sampled_at": drawn,
            "measured_at": finished,
            "dilution": pl.col(cols["dilution"]).cast(pl.Float64, strict=False)
            if "dilution" in cols
            else pl.lit(None, dtype=pl.Float64),
        },
        positions=positions,
    )
    return finish(raw, file=str(path), instrument="cedex_hires", source="atline")


def _check_times(df: pl.DataFrame, parsed: dict[str, pl.Expr], path: Path, positions: dict[str, int] | None) -> None:
    from bioworkbench.instruments.common import cell_ref

    issues = []
    for column, expr in parsed.items():
        bad = df.with_columns(_t=expr).filter(pl.col("_t").is_null() & pl.col(column).is_not_null())
        for line, text in bad.select("_line", column).head(20).iter_rows():
            where = f"cell {cell_ref(line, positions[column])}: " if positions and column in positions else ""
            issues.append(
                Issue(
                    f"{where}expected a date-time such as '6-17-2019 8:34:01 AM', found {text!r}.",
                    file=str(path),
                    line=line,
                    column=column,
                )
            )
    if issues:
        raise SchemaError(issues)


# ---------------------------------------------------------------------------------------------
# Cedex Bio HT
# ---------------------------------------------------------------------------------------------
_AMMONIA = 17.031  # NH3, g/mol: Cedex reports ammonia as NH3
#: analyte part of a Cedex Bio HT test code -> variable (and a molar mass of the species reported)
BIOHT_TESTS: dict[str, Quantity] = {
    "GLC": Quantity("glucose", "mmol/L"),
    "LAC": Quantity("lactate", "mmol/L"),
    "GLN": Quantity("glutamine", "mmol/L"),
    "GLU": Quantity("glutamate", "mmol/L"),
    "NH": Quantity("ammonium", "mmol/L", _AMMONIA),  # NH3 (the digit is dropped before matching)
    "AC": Quantity("acetate", "mmol/L"),
    "ETOH": Quantity("ethanol", "mmol/L"),
    "FOR": Quantity("formate", "mmol/L"),
    "PYR": Quantity("pyruvate", "mmol/L"),
    "PHO": Quantity("phosphate", "mmol/L"),
    "IGG": Quantity("titer", "g/L"),
    "MIG": Quantity("titer", "g/L"),
    "FAB": Quantity("titer", "g/L"),
    "LDH": Quantity("ldh", "U/L"),
    "TP": Quantity("total_protein", "g/L"),
    "OD": Quantity("optical_density", "AU"),
    "ASN": Quantity("asparagine", "mmol/L"),
    "ASP": Quantity("aspartate", "mmol/L"),
    "GAL": Quantity("galactose", "mmol/L"),
    "GLY": Quantity("glycerol", "mmol/L"),
    "AQ": Quantity("alanyl_glutamine", "mmol/L"),
    "NO": Quantity("nitrate", "mmol/L"),
    "SUC": Quantity("sucrose", "mmol/L"),
    "SUGL": Quantity("sucrose", "mmol/L"),
    "ARA": Quantity("arabinose", "mmol/L"),
    "CHO": Quantity("cholesterol", "mmol/L"),
    "CA": Quantity("calcium", "mmol/L"),
    "MG": Quantity("magnesium", "mmol/L"),
    "FE": Quantity("iron", "mmol/L"),
    "NA": Quantity("sodium", "mmol/L"),
    "K": Quantity("potassium", "mmol/L"),
    "OSM": Quantity("osmolality", "mOsm/kg"),
}


def _test(code: str) -> Quantity | None:
    """The quantity of a test code: ``GLC3B`` -> glucose; ``IGGHD`` -> titer; ``KB`` -> potassium.

    Digits are dropped, then the longest known analyte at the start of the code wins, followed
    by at most two letters of kit (``B``, ``D``, ``L``, ``HD``, ``LB``...).
    """
    code = code.strip().upper()
    stem = re.sub(r"\d", "", code)
    for n in range(len(stem), 0, -1):
        if stem[:n] in BIOHT_TESTS and len(stem) - n <= 2:
            return BIOHT_TESTS[stem[:n]]
    return None


def looks_like_cedex_bioht(text: str) -> bool:
    """Whether a text file is a Cedex Bio HT archive (``#ARC-FILE#`` in its title row).

    Parameters
    ----------
    text
        The first lines of the file.

    Returns
    -------
    bool
        True when the first line holds ``#ARC-FILE#`` and ``CEDEX``.
    """
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    return "#ARC-FILE#" in first and "CEDEX" in first.upper()


def read_cedex_bioht(path: Path, *, timezone: str = "UTC") -> pl.DataFrame:
    """Read a Cedex Bio HT ``#ARC-FILE#`` archive (software 5, 6 and 7; see the module docstring).

    Parameters
    ----------
    path
        The export, as the instrument wrote it.
    timezone
        The IANA zone of the instrument's clock (the archive carries no UTC offset).

    Returns
    -------
    polars.DataFrame
        Observations of :data:`~bioworkbench.instruments.OUTPUT_COLUMNS`, batch and time not yet
        mapped (``source_line`` is the archive's line).

    Raises
    ------
    SchemaError
        No ``#ARC-FILE#`` title row; a result row with too few fields, an unknown test code, or
        a measurement time that cannot be read, each with file, line and field.
    """
    text, _ = read_text(path)
    lines = text.splitlines()
    title = lines[0].split("\t") if lines else []
    if len(title) < 3 or title[2].strip() != "#ARC-FILE#":
        raise SchemaError(
            [
                Issue(
                    "expected the title row of a Cedex Bio HT archive ('0<TAB>date<TAB>#ARC-FILE#...').",
                    file=str(path),
                    line=1,
                )
            ]
        )
    version = next((f for f in title if re.match(r"^\d+\.\d+\.\d+", f.strip())), "")
    v5 = version.strip().startswith("5.")
    rows, issues, other = [], [], 0
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if not line.strip():
            continue
        if not fields[0].strip().isdigit():
            issues.append(
                Issue(
                    "expected a record type (40 for a result) in the first tab-separated field; "
                    f"found {fields[0][:30]!r}.",
                    file=str(path),
                    line=number,
                )
            )
            continue
        if fields[0].strip() != "40":
            other += 1
            continue
        need = 10 if v5 else 11
        if len(fields) < need:
            issues.append(
                Issue(
                    f"expected at least {need} tab-separated fields in a result row; found {len(fields)}.",
                    file=str(path),
                    line=number,
                )
            )
            continue
        if v5:
            code, sample, batch, dil_text, unit, flag, value = (
                fields[2],
                fields[5],
                None,
                None,
                fields[7],
                fields[8],
                fields[9],
            )
        else:
            code, sample, batch, unit, flag, value = fields[6], fields[2], fields[3], fields[8], fields[9], fields[10]
            dil_text = next(
                (d for d in (fields[7], fields[5]) if re.fullmatch(r"\s*1\s*/\s*\d+(?:\.\d+)?\s*", d)), None
            )
        quantity = _test(code)
        if quantity is None:
            issues.append(
                Issue(
                    f"unknown test code {code.strip()!r}; expected a Cedex Bio HT test such as "
                    "GLC3B, LAC2B, GLN2B, NH3B, IGGHB.",
                    file=str(path),
                    line=number,
                    column="test code",
                )
            )
            continue
        dilution = float(dil_text.split("/")[1]) if dil_text else None
        rows.append(
            {
                "sample_id": sample.strip(),
                "vessel": (batch or "").strip() or None,
                "_time": fields[1].strip(),
                "quantity": code.strip(),
                "variable": quantity.variable,
                "raw_value": value,
                "raw_unit": _unit(unit.strip()) or quantity.unit,
                "molar_mass": quantity.molar_mass,
                "dilution": dilution,
                "instrument_flag": flag.strip() or None,
                "source_line": number,
            }
        )
    if issues:
        raise SchemaError(issues)
    if other:
        warnings.warn(
            f"{path}: {other} record{'s' if other != 1 else ''} of a type other than 40 (results) "
            "hold no result and were not read.",
            BioWorkbenchWarning,
            stacklevel=3,
        )
    df = pl.DataFrame(rows, infer_schema_length=None)
    df = df.with_columns(measured_at=parse_times(pl.col("_time"), ["%Y-%m-%d %H:%M:%S"], timezone))
    bad = df.filter(pl.col("measured_at").is_null())
    if not bad.is_empty():
        raise SchemaError(
            [
                Issue(
                    f"expected a date-time such as '2022-10-17 08:12:47', found {t!r}.",
                    file=str(path),
                    line=ln,
                    column="measurement time",
                )
                for t, ln in bad.select("_time", "source_line").head(20).iter_rows()
            ]
        )
    return finish(raw_frame(df), file=str(path), instrument="cedex_bioht", source="offline")


def _unit(unit: str) -> str:
    return {"mmol/l": "mmol/L", "od": "AU", "mm": "mmol/L"}.get(unit.lower(), unit)

"""ChemoMetec NucleoView (NC-200/NC-202) and NC-View (NC-3000 family) cell counters.

**NucleoView** writes one sample per file: ``Name;value;`` lines (``Live (cells/ml);2.45E6;``),
a note in brackets after a value (``3.58E3 (Out of optimal range)``, ``13.2 (Uncertain
determination)``, sometimes broken over two lines) and the time as ``Date time;20231120 163016``
with ``Time zone offset;2`` (hours east of UTC). Newer versions write ``Name:<TAB>value`` lines
with ``Time (UTC)``. ``Multiplication factor`` / ``Dilution Factor`` is the dilution entered on
the counter, already applied to the concentrations; it is recorded in ``dilution``.

**NC-View** exports one row per sample (``NAME,SAMPLE ID,...,TOTAL (cells/ml),...``), numbers
with a space between thousands (``274 000``), and a ``STATUS`` (``OK`` or a warning, which flags
the sample's values ``suspect``). It records no time of day: ``measured_at`` is the date in the
result name (``20240219-00019``), at midnight.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from bioworkbench.errors import Issue, SchemaError
from bioworkbench.instruments.common import Quantity, finish, header_key, melt_wide, raw_frame, read_csv_text, read_text

__all__ = ["looks_like_nc_view", "looks_like_nucleoview", "read_nc_view", "read_nucleoview"]

_NUCLEOVIEW = {
    "viability (%)": Quantity("viability", "%"),
    "live (cells/ml)": Quantity("vcd", "cells/mL"),
    "dead (cells/ml)": Quantity("dcd", "cells/mL"),
    "total (cells/ml)": Quantity("tcd", "cells/mL"),
    "estimated cell diameter (um)": Quantity("diameter", "um"),
    "estimated cell diameter [um]": Quantity("diameter", "um"),
    "diameter (um)": Quantity("diameter", "um"),
    "cell diameter standard deviation (um)": Quantity("diameter_sd", "um"),
    "(%) of cells in aggregates with five or more cells": Quantity("aggregates", "%"),
    "aggregates (%)": Quantity("aggregates", "%"),
    "debris index": Quantity("debris_index", "1"),
}


def looks_like_nucleoview(text: str) -> bool:
    """Whether a text file is a NucleoView result (its ``Live (cells/ml)`` line).

    Parameters
    ----------
    text
        The first lines of the file.

    Returns
    -------
    bool
        True when a line starts ``Live (cells/ml)`` or ``Total (cells/ml)`` followed by ``;`` or
        ``:``.
    """
    return bool(re.search(r"^(Live|Total) \(cells/ml\)\s*[;:]", text, flags=re.M | re.I))


def looks_like_nc_view(text: str) -> bool:
    """Whether a text file is an NC-View export (its header row).

    Parameters
    ----------
    text
        The first lines of the file.

    Returns
    -------
    bool
        True when the header starts ``NAME,SAMPLE ID,`` and names ``TOTAL (cells/ml)``.
    """
    head = header_key(text.lstrip("\ufeff").split("\n", 1)[0])
    return head.startswith("name,sample id,") and "total (cells/ml)" in head


def _key_values(text: str) -> list[tuple[int, str, str]]:
    """``(line, name, value)`` of each ``name;value;`` or ``name:<TAB>value`` line; a value broken over
    two lines (an open bracket) is joined."""
    out: list[tuple[int, str, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].rstrip(",")
        number = i + 1
        m = re.match(r"^(?P<name>[^;\t]+?)\s*(?::\t|;)(?P<value>.*)$", line)
        i += 1
        if not m:
            continue
        value = m.group("value")
        while value.count("(") > value.count(")") and i < len(lines):
            value = f"{value} {lines[i].rstrip(',')}"
            i += 1
        out.append((number, m.group("name").strip(), value.split(";")[0].strip()))
    return out


def read_nucleoview(path: Path, *, timezone: str = "UTC") -> pl.DataFrame:
    """Read a NucleoView result file (see the module docstring).

    Parameters
    ----------
    path
        The export, as the instrument wrote it.
    timezone
        The IANA zone of the instrument's clock; unused: NucleoView writes UTC or its offset.

    Returns
    -------
    polars.DataFrame
        Observations of :data:`~bioworkbench.instruments.OUTPUT_COLUMNS`, batch and time not yet
        mapped (``source_line`` is the file's line).

    Raises
    ------
    SchemaError
        No result line (``Live``/``Total (cells/ml)``), naming the file.
    """
    text, _ = read_text(path)
    pairs = _key_values(text)
    named = {header_key(k): (ln, v) for ln, k, v in pairs}
    if not any(k in named for k in ("live (cells/ml)", "total (cells/ml)", "dead (cells/ml)")):
        raise SchemaError(
            [Issue("no 'Live (cells/ml)' or 'Total (cells/ml)' line; expected a NucleoView result.", file=str(path))]
        )
    sample = named.get("sample id") or named.get("image")
    sample_id = sample[1] if sample else path.stem
    m = re.match(r"^\d{8}-\d{4}-[a-z]-(.+)$", sample_id)
    if m and "sample id" not in named:
        sample_id = m.group(1)
    measured = None
    if "date time" in named:
        try:
            local = datetime.strptime(named["date time"][1], "%Y%m%d %H%M%S")
            offset = float(named.get("time zone offset", (0, "0"))[1] or 0)
            measured = (local - timedelta(hours=offset)).replace(tzinfo=UTC)
        except ValueError:
            measured = None
    elif "time (utc)" in named:
        try:
            measured = datetime.strptime(named["time (utc)"][1], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            measured = None  # a date the counter wrote wrongly ('1999-09-99'): the values stand, the time is unknown
    dil = named.get("multiplication factor") or named.get("dilution factor")
    try:
        dilution = float(dil[1]) if dil else None
    except ValueError:
        dilution = None
    status = named.get("status")
    flag = status[1] if status and status[1].strip().upper() != "OK" else None
    rows = [
        {
            "sample_id": sample_id,
            "measured_at": measured,
            "quantity": name,
            "variable": _NUCLEOVIEW[header_key(name)].variable,
            "raw_value": value,
            "raw_unit": _NUCLEOVIEW[header_key(name)].unit,
            "dilution": dilution,
            "instrument_flag": flag,
            "source_line": line,
        }
        for line, name, value in pairs
        if header_key(name) in _NUCLEOVIEW
    ]
    return finish(raw_frame(rows), file=str(path), instrument="nucleoview", source="atline")


_NC_VIEW = {
    "total (cells/ml)": Quantity("tcd", "cells/mL"),
    "live (cells/ml)": Quantity("vcd", "cells/mL"),
    "dead (cells/ml)": Quantity("dcd", "cells/mL"),
    "viability (%)": Quantity("viability", "%"),
    "diameter (um)": Quantity("diameter", "um"),
    "aggregates (%)": Quantity("aggregates", "%"),
    "debris index": Quantity("debris_index", "1"),
}


def read_nc_view(path: Path, *, timezone: str = "UTC") -> pl.DataFrame:
    """Read an NC-View CSV export (see the module docstring).

    Parameters
    ----------
    path
        The export, as the instrument wrote it.
    timezone
        The IANA zone of the instrument's clock, for the date in each result name.

    Returns
    -------
    polars.DataFrame
        Observations of :data:`~bioworkbench.instruments.OUTPUT_COLUMNS`, batch and time not yet
        mapped (``source_line`` is the CSV line).

    Raises
    ------
    SchemaError
        ``NAME`` or ``SAMPLE ID`` missing, naming the file and line 1.
    """
    text, _ = read_text(path)
    df = read_csv_text(text)
    cols = {header_key(c): c for c in df.columns}
    missing = [c for c in ("NAME", "SAMPLE ID") if header_key(c) not in cols]
    if missing:
        raise SchemaError(
            [Issue(f"missing column {c!r} of an NC-View export.", file=str(path), line=1, column=c) for c in missing]
        )
    date = pl.col(cols["name"]).str.extract(r"^(\d{8})-").str.to_datetime("%Y%m%d", strict=False, time_unit="us")
    status = pl.col(cols["status"]).str.strip_chars() if "status" in cols else pl.lit(None, dtype=pl.String)
    raw = melt_wide(
        df,
        _NC_VIEW,
        ids={
            "sample_id": pl.col(cols["sample id"]).str.strip_chars(),
            "measured_at": date.dt.replace_time_zone(timezone).dt.convert_time_zone("UTC"),
            "dilution": pl.col(cols["dilution factor"]).cast(pl.Float64, strict=False)
            if "dilution factor" in cols
            else pl.lit(None, dtype=pl.Float64),
            "instrument_flag": pl.when(status.str.to_uppercase() != "OK").then(status),
        },
    )
    return finish(raw, file=str(path), instrument="nc_view", source="atline")

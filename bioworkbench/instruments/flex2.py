"""Nova Biomedical BioProfile FLEX2 analyser (``SampleResults*.csv``).

One row per sample after a header row; newer software writes a second header row of units
(``mmol / L``, ``g / L``, ``x10^6 Cells / mL``), older software none (the units are then the
analyser's defaults: glucose and lactate in g/L, the other chemistries in mmol/L, gases in
mmHg). The analysis time is ``Date & Time`` (month first, the analyser's clock). ``Batch ID``
names the batch (else ``Vessel ID`` the vessel). ``Pre-Dilution Multiplier`` is the dilution
entered on the analyser, already applied to its results; it is recorded in ``dilution``.
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

__all__ = ["looks_like_flex2", "read_flex2"]

_FLEX2 = {
    "gln": Quantity("glutamine", "mmol/L"),
    "glu": Quantity("glutamate", "mmol/L"),
    "gluc": Quantity("glucose", "g/L"),
    "lac": Quantity("lactate", "g/L"),
    "nh4+": Quantity("ammonium", "mmol/L"),
    "na+": Quantity("sodium", "mmol/L"),
    "k+": Quantity("potassium", "mmol/L"),
    "ca++": Quantity("calcium", "mmol/L"),
    "ph": Quantity("ph", "pH"),
    "po2": Quantity("po2", "mmHg"),
    "pco2": Quantity("pco2", "mmHg"),
    "osm": Quantity("osmolality", "mOsm/kg"),
    "total density": Quantity("tcd", "1e6 cells/mL"),
    "viable density": Quantity("vcd", "1e6 cells/mL"),
    "viability": Quantity("viability", "%"),
    "avg. live diameter": Quantity("viable_diameter", "um"),
    "total live count": Quantity("viable_cell_count", "cells"),
    "total cell count": Quantity("total_cell_count", "cells"),
    "vessel temperature (uc)": Quantity("temperature", "degC"),
    "vessel temperature (°c)": Quantity("temperature", "degC"),
    "o2 saturation": Quantity("o2_saturation", "%"),
    "co2 saturation": Quantity("co2_saturation", "%"),
    "hco3": Quantity("bicarbonate", "mmol/L"),
}
_TIMES = ["%m-%d-%Y %H:%M:%S", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m-%d-%Y %H:%M"]


def looks_like_flex2(text: str) -> bool:
    """Whether a text file is a FLEX2 sample-results export (its header row).

    Parameters
    ----------
    text
        The first lines of the file.

    Returns
    -------
    bool
        True when the header names ``Sample ID``, ``Gluc`` and ``NH4+``.
    """
    head = header_key(text.lstrip("\ufeff").split("\n", 1)[0].replace('"', ""))
    return "sample id" in head and ",gluc," in head and ",nh4+," in head


def _unit(text: str | None) -> str | None:
    if text is None or text.strip() in ("", "-"):
        return None
    unit = text.strip().replace(" / ", "/").replace(" /", "/").replace("/ ", "/")
    return unit.replace("Cells", "cells")


def read_flex2(path: Path, *, timezone: str = "UTC") -> pl.DataFrame:
    """Read a BioProfile FLEX2 CSV export (see the module docstring).

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
        ``Sample ID`` or ``Date & Time`` missing, or a date-time that cannot be read, with file,
        line and column.
    """
    text, _ = read_text(path)
    df = read_csv_text(text)
    cols = {header_key(c): c for c in df.columns}
    missing = [c for c in ("Sample ID", "Date & Time") if header_key(c) not in cols]
    if missing:
        raise SchemaError(
            [
                Issue(
                    f"missing column {c!r}; a FLEX2 export names the sample and its analysis time in "
                    "'Sample ID' and 'Date & Time'. Hint: export the sample results again with the date column.",
                    file=str(path),
                    line=1,
                    column=c,
                )
                for c in missing
            ]
        )
    units: dict[str, str] = {}
    first = df.row(0, named=True) if df.height else {}
    if df.height and first.get(cols["sample id"]) is None and first.get(cols["date & time"]) is None:
        units = {h: u for h, v in first.items() if h != "_line" and (u := _unit(v))}
        df = df.slice(1)
    measured = parse_times(pl.col(cols["date & time"]), _TIMES, timezone)
    bad = df.with_columns(_t=measured).filter(pl.col("_t").is_null())
    if not bad.is_empty():
        raise SchemaError(
            [
                Issue(
                    f"expected a date-time such as '6-24-2022 14:34:52' (month first), found {t!r}.",
                    file=str(path),
                    line=ln,
                    column=cols["date & time"],
                )
                for ln, t in bad.select("_line", cols["date & time"]).head(20).iter_rows()
            ]
        )
    vessel_col = cols.get("batch id") or cols.get("vessel id")
    raw = melt_wide(
        df,
        _FLEX2,
        ids={
            "sample_id": pl.col(cols["sample id"]).str.strip_chars(),
            "measured_at": measured,
            "vessel": pl.col(vessel_col).str.strip_chars() if vessel_col else pl.lit(None, dtype=pl.String),
            "dilution": pl.col(cols["pre-dilution multiplier"]).cast(pl.Float64, strict=False)
            if "pre-dilution multiplier" in cols
            else pl.lit(None, dtype=pl.Float64),
        },
        units=units,
    )
    return finish(raw, file=str(path), instrument="flex2", source="atline")

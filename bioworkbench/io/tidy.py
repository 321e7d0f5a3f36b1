"""Readers for tidy tables (one file per campaign frame) and the checks every reader shares.

CSV files are read as text first and cast afterwards, so a cell that is not a number is reported
with its file, line and column instead of failing the whole read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import polars as pl

from bioworkbench.errors import DataReadError, Issue
from bioworkbench.schema import FLAG_INVALID, FLAG_SUSPECT, registry
from bioworkbench.units import to_canonical

__all__ = ["flag_values", "prepare_observations", "read_frame_file", "read_table"]


def read_table(
    path: str | os.PathLike,
    *,
    separator: str = ",",
    decimal_comma: bool = False,
    sheet: str | int | None = None,
    encoding: str = "utf8",
) -> tuple[pl.DataFrame, int]:
    """Read a CSV (all columns as text), Parquet or Excel file; return it and its first data line.

    CSV cells stay text so that the caller can report every unreadable value with its line;
    decimal commas are turned into points only when ``decimal_comma`` is set.
    """
    path = Path(path)
    if not path.exists():
        raise DataReadError(f"{path}: file not found.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pl.read_parquet(path), 2
        if suffix in (".xlsx", ".xlsm", ".xls"):
            kw = {"sheet_name": sheet} if isinstance(sheet, str) else {"sheet_id": (sheet or 0) + 1}
            df = pl.read_excel(path, infer_schema_length=None, **kw)
            return df, 2
        if suffix in (".csv", ".txt", ".tsv"):
            df = pl.read_csv(
                path,
                separator="\t" if suffix == ".tsv" else separator,
                infer_schema=False,
                encoding=encoding,
                truncate_ragged_lines=False,
            )
            df = df.rename({c: c.strip().lstrip("\ufeff") for c in df.columns})
            if decimal_comma:
                df = df.with_columns(pl.col(c).str.replace(r"^(\s*-?\d+),(\d+\s*)$", "$1.$2") for c in df.columns)
            return df, 2
    except DataReadError:
        raise
    except Exception as exc:
        raise DataReadError(f"{path}: cannot be read as {suffix[1:]} ({exc}).") from None
    raise DataReadError(f"{path}: unsupported file type {suffix!r}; expected .csv, .tsv, .txt, .parquet or .xlsx.")


def read_frame_file(
    path: Path, frame: str, *, separator: str = ",", decimal_comma: bool = False
) -> tuple[pl.DataFrame, int]:
    """Read one campaign frame file; unknown extra columns are kept."""
    df, first_line = read_table(path, separator=separator, decimal_comma=decimal_comma)
    if separator == "," and path.suffix.lower() == ".csv" and df.width == 1 and ";" in df.columns[0]:
        raise DataReadError(
            f"{path}: one column {df.columns[0]!r} found; the file looks semicolon-separated. "
            "Pass separator=';' (and decimal_comma=True if numbers use commas)."
        )
    return df, first_line


def prepare_observations(
    frames: dict[str, pl.DataFrame],
    files: dict[str, tuple[str, int | None]],
    *,
    on_invalid: Literal["raise", "flag"] = "raise",
) -> tuple[dict[str, pl.DataFrame], list[Issue]]:
    """Lineage, canonical units and value flags for observations and media read from files."""
    from bioworkbench.schema import coerce_frame

    issues: list[Issue] = []
    frames = dict(frames)
    if "observations" in frames:
        file, first_line = files["observations"]
        obs, found = coerce_frame("observations", frames["observations"], file=file, first_line=first_line)
        if found and any(i.message.startswith("missing column") for i in found):
            return frames, found
        issues.extend(found)  # unreadable cells: keep checking the rest, raise all together
        obs = obs.with_columns(
            pl.col("source_file").fill_null(pl.lit(file)),
            pl.col("source_line").fill_null(pl.int_range(pl.len(), dtype=pl.Int64) + (first_line or 0)),
            pl.col("source").fill_null("offline"),
        )
        obs, found = to_canonical(obs, line_col="source_line")
        issues.extend(found)
        obs, found = flag_values(obs, on_invalid=on_invalid)
        issues.extend(found)
        frames["observations"] = obs
    if "media" in frames:
        file, first_line = files["media"]
        media, found = coerce_frame("media", frames["media"], file=file, first_line=first_line)
        if found:
            return frames, issues + found
        media = media.with_row_index("_line", offset=first_line or 0)
        media, found = to_canonical(media, value_col="concentration", file=file, line_col="_line")
        issues.extend(found)
        frames["media"] = media.drop("_line")
    return frames, issues


def flag_values(
    obs: pl.DataFrame, *, on_invalid: Literal["raise", "flag"] = "raise"
) -> tuple[pl.DataFrame, list[Issue]]:
    """Flag suspect values and deal with impossible ones; never change a value.

    A value outside the variable's possible range (``min``/``max`` in the registry: a negative
    concentration, viability above 100 %) is an error with ``on_invalid="raise"``, or kept and
    flagged ``invalid`` with ``"flag"``. A value outside the plausible ``typical`` range is kept
    and flagged ``suspect``. Rows that already carry a flag are left alone.
    """
    reg = registry()
    names = list(reg)
    lim = pl.DataFrame(
        {
            "variable": names,
            "_min": [reg[v].min for v in names],
            "_max": [reg[v].max for v in names],
            "_lo": [reg[v].typical[0] if reg[v].typical else None for v in names],
            "_hi": [reg[v].typical[1] if reg[v].typical else None for v in names],
        },
        schema_overrides={"_lo": pl.Float64, "_hi": pl.Float64},
    )
    if obs.schema["variable"] != pl.String:
        lim = lim.with_columns(pl.col("variable").cast(obs.schema["variable"]))
    x = obs.join(lim, on="variable", how="left", maintain_order="left")
    free = pl.col("flag").is_null() & pl.col("value").is_not_null()
    invalid = free & ((pl.col("value") < pl.col("_min")) | (pl.col("value") > pl.col("_max")))
    suspect = free & ~invalid & ((pl.col("value") < pl.col("_lo")) | (pl.col("value") > pl.col("_hi")))
    issues: list[Issue] = []
    if on_invalid == "raise":
        from bioworkbench.schema import _Ctx, _range_text, _report_rows

        ctx = _Ctx("observations", None, None)
        _report_rows(
            x,
            invalid,
            ctx,
            "value",
            lambda r: (
                f"{r['variable']} = {r['value']:g} {r['unit']} is impossible; expected "
                f"{_range_text(r['_min'], r['_max'])}."
            ),
            hint="correct the source, or read with on_invalid='flag' to keep such rows flagged 'invalid'.",
        )
        issues = ctx.issues
        inv_flag = pl.lit(False)
    elif on_invalid == "flag":
        inv_flag = invalid
    else:
        raise ValueError(f"on_invalid must be 'raise' or 'flag'; got {on_invalid!r}")
    reason_invalid = pl.format("impossible value for {}: outside [{}, {}] {}", "variable", "_min", "_max", "unit")
    reason_suspect = pl.format("outside the typical range [{}, {}] {} of {}", "_lo", "_hi", "unit", "variable")
    out = x.with_columns(
        pl.when(inv_flag)
        .then(pl.lit(FLAG_INVALID))
        .when(suspect)
        .then(pl.lit(FLAG_SUSPECT))
        .otherwise(pl.col("flag"))
        .alias("flag"),
        pl.when(inv_flag)
        .then(reason_invalid)
        .when(suspect)
        .then(reason_suspect)
        .otherwise(pl.col("flag_reason"))
        .alias("flag_reason"),
    ).drop("_min", "_max", "_lo", "_hi")
    return out, issues

"""Readers for tidy tables (one file per campaign frame) and the checks every reader shares.

CSV files are read as text first and cast afterwards, so a cell that is not a number is reported
with its file, line and column instead of failing the whole read. Spreadsheets are held to the
same standard: a text cell in a number column (``n/a``, ``NA``), an error cell (``#DIV/0!``) and a
formula without a saved result reach the caller as text and are reported like the same text in a
CSV file, never dropped; rows keep the spreadsheet's own row numbers (blank rows included).
"""

from __future__ import annotations

import csv
import io
import os
import re
import zipfile
from pathlib import Path
from typing import Literal
from xml.etree import ElementTree

import polars as pl

from bioworkbench.errors import DataReadError, Issue
from bioworkbench.schema import FLAG_INVALID, FLAG_SUSPECT, registry
from bioworkbench.units import to_canonical

__all__ = ["flag_fractions", "flag_values", "prepare_observations", "read_frame_file", "read_table"]

#: how spreadsheet error cells are shown (the text Excel displays)
_EXCEL_ERRORS = {
    "Div0": "#DIV/0!",
    "NA": "#N/A",
    "Name": "#NAME?",
    "Null": "#NULL!",
    "Num": "#NUM!",
    "Ref": "#REF!",
    "Value": "#VALUE!",
    "GettingData": "#GETTING_DATA",
}
_MAIN_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"


def read_table(
    path: str | os.PathLike,
    *,
    separator: str = ",",
    decimal_comma: bool = False,
    sheet: str | int | None = None,
    encoding: str = "utf8",
) -> tuple[pl.DataFrame, int]:
    """Read a CSV (all columns as text), Parquet or Excel file; return it and the line of its first row.

    Parameters
    ----------
    path
        ``.csv``, ``.tsv``, ``.txt``, ``.parquet``, ``.xlsx``, ``.xlsm`` or ``.xls``.
    separator, decimal_comma, encoding
        How a text file is written; decimal commas are turned into points only when
        ``decimal_comma`` is set.
    sheet
        The spreadsheet's sheet, by name or position (default: the first).

    Returns
    -------
    tuple[polars.DataFrame, int]
        The table (blank rows kept, so that row ``i`` is on line ``first_line + i``) and
        ``first_line``: the line (CSV) or spreadsheet row of the first data row.

    Raises
    ------
    DataReadError
        The file is missing, of an unsupported type, or cannot be parsed: a text file that looks
        separated by another character than ``separator`` (named, with the option to pass), a line
        with more or fewer fields than the header (its number).

    Notes
    -----
    In a spreadsheet, a column of numbers that holds text cells (``n/a``, ``NA``, ``-``), error
    cells (``#DIV/0!``, ``#N/A``) or formulas without a saved result (``=B2*2`` in a file written
    by a program that does not compute formulas) is returned as text: the numbers as polars prints
    them (exactly, shortest round-trip form), the other cells as their text, so the caller reports
    them with their row, as it would in a CSV file. Row numbers are the spreadsheet's own (rows
    above the header that are empty are counted; ``.xls`` files are assumed to start at row 1).
    """
    path = Path(path)
    if not path.exists():
        raise DataReadError(f"{path}: file not found.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pl.read_parquet(path), 2
        if suffix in (".xlsx", ".xlsm", ".xls"):
            return _read_excel(path, sheet)
        if suffix in (".csv", ".txt", ".tsv"):
            sep = "\t" if suffix == ".tsv" else separator
            _sniff_separator(path, sep, encoding)
            try:
                df = pl.read_csv(
                    path,
                    separator=sep,
                    infer_schema=False,
                    encoding=encoding,
                    truncate_ragged_lines=False,
                )
            except pl.exceptions.ComputeError as exc:
                raise _ragged_error(path, sep, encoding) or exc from None
            df = df.rename({c: c.strip().lstrip("\ufeff") for c in df.columns})
            if decimal_comma:
                df = df.with_columns(pl.col(c).str.replace(r"^(\s*-?\d+),(\d+\s*)$", "$1.$2") for c in df.columns)
            return df, 2
    except DataReadError:
        raise
    except Exception as exc:
        raise DataReadError(f"{path}: cannot be read as {suffix[1:]} ({exc}).") from None
    raise DataReadError(f"{path}: unsupported file type {suffix!r}; expected .csv, .tsv, .txt, .parquet or .xlsx.")


def _head_lines(path: Path, encoding: str, n: int = 6) -> list[str]:
    enc = {"utf8": "utf-8-sig", "utf-8": "utf-8-sig", "utf8-lossy": "utf-8-sig"}.get(encoding.lower(), encoding)
    try:
        with open(path, encoding=enc, errors="replace", newline="") as fh:
            return [line.rstrip("\r\n") for _, line in zip(range(n), fh, strict=False)]
    except (LookupError, OSError):
        return []


_SEPARATOR_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def _sniff_separator(path: Path, separator: str, encoding: str) -> None:
    """Refuse a text file whose header is separated by another character than ``separator``.

    Read with the wrong separator, a ``;``-separated file with decimal commas splits its numbers
    (``0,5`` becomes two fields) and polars would advise dropping the extra fields, which would
    lose data; this names the separator the file uses and the options to pass instead.
    """
    lines = _head_lines(path, encoding)
    if not lines or separator in lines[0]:
        return
    others = [s for s in _SEPARATOR_NAMES if s != separator and lines[0].count(s) >= 1]
    if not others:
        return
    sep = max(others, key=lines[0].count)
    commas = sep != "," and any(re.search(r"\d,\d", line) for line in lines[1:])
    name = _SEPARATOR_NAMES[sep]
    shown = {"\t": "\\t"}.get(sep, sep)
    option = f"separator={shown!r}" + (", decimal_comma=True" if commas else "")
    in_map = f"separator: {shown!r}" + (", decimal_comma: true" if commas else "")
    header = lines[0] if len(lines[0]) <= 60 else lines[0][:57] + "..."
    raise DataReadError(
        f"{path}: line 1: the file looks {name}-separated ({sep!r}-separated"
        + (" with decimal commas" if commas else "")
        + f": header {header!r}), not {_SEPARATOR_NAMES.get(separator, repr(separator))}-separated. "
        f"Pass {option} (in a column map: read: {{{in_map}}})."
    )


def _ragged_error(path: Path, separator: str, encoding: str) -> DataReadError | None:
    """The first line whose number of fields differs from the header's, as a located error."""
    enc = {"utf8": "utf-8-sig", "utf-8": "utf-8-sig"}.get(encoding.lower(), encoding)
    try:
        with open(path, encoding=enc, errors="replace", newline="") as fh:
            reader = csv.reader(fh, delimiter=separator)
            header = next(reader, None)
            if header is None:
                return None
            for fields in reader:
                if fields and len(fields) != len(header):
                    return DataReadError(
                        f"{path}: line {reader.line_num}: {len(fields)} fields where the header (line 1) has "
                        f"{len(header)}. Check that line for an unquoted {_SEPARATOR_NAMES.get(separator, separator)} "
                        "inside a value (quote the value) or a decimal comma (pass decimal_comma=True together "
                        "with the file's separator); no line is shortened or dropped."
                    )
    except (LookupError, OSError, csv.Error):
        return None
    return None


# ---------------------------------------------------------------------------------------------
# spreadsheets
# ---------------------------------------------------------------------------------------------
def _read_excel(path: Path, sheet: str | int | None) -> tuple[pl.DataFrame, int]:
    import fastexcel

    reader = fastexcel.read_excel(str(path))
    names = reader.sheet_names
    if isinstance(sheet, str):
        if sheet not in names:
            from bioworkbench.schema import suggest

            raise DataReadError(f"{path}: no sheet {sheet!r}. " + suggest(sheet, names, what="Sheets"))
        index = names.index(sheet)
    else:
        index = sheet or 0
        if not 0 <= index < len(names):
            raise DataReadError(f"{path}: no sheet number {index} (counted from 0); the file has {len(names)}.")
    typed, errors = reader.load_sheet(index, schema_sample_rows=None).to_arrow_with_errors()
    df = pl.from_arrow(typed)
    header_row, first_col, formulas = _sheet_layout(path, index) if path.suffix.lower() != ".xls" else (1, 1, [])
    junk: dict[tuple[int, int], str] = {}
    text = None
    for err in getattr(errors, "errors", None) or []:
        row, col = err.offset_position
        if text is None:
            text = pl.from_arrow(reader.load_sheet(index, dtypes="string").to_arrow())
        value = text[text.columns[col]][row] if col < text.width and row < text.height else None
        if value is None:
            m = re.search(r"Error\((\w+)\)", err.detail)
            value = _EXCEL_ERRORS.get(m.group(1), f"#{m.group(1).upper()}") if m else "#ERROR"
        junk[(row, col)] = value
    for row, col, formula in formulas:
        r, c = row - header_row - 1, col - first_col
        if 0 <= r < df.height and 0 <= c < df.width and df[df.columns[c]][r] is None:
            junk[(r, c)] = f"={formula}"
    if junk:
        by_col: dict[int, dict[int, str]] = {}
        for (r, c), v in junk.items():
            by_col.setdefault(c, {})[r] = v
        replaced = []
        for c, cells in by_col.items():
            name = df.columns[c]
            rows = pl.Series("_r", list(cells), dtype=pl.Int64)
            values = pl.Series("_v", list(cells.values()), dtype=pl.String)
            as_text = df[name].cast(pl.String).scatter(rows, values)
            replaced.append(as_text.alias(name))
        df = df.with_columns(replaced)
    return df, header_row + 1


def _sheet_layout(path: Path, index: int) -> tuple[int, int, list[tuple[int, int, str]]]:
    """Header row (first row holding a value), first column and formulas without a saved result.

    Read from the sheet's XML (``.xlsx``/``.xlsm``): the row and column numbers are the
    spreadsheet's own (1-based). Returns ``(1, 1, [])`` when the layout cannot be read.
    """
    try:
        with zipfile.ZipFile(path) as z:
            wb = ElementTree.fromstring(z.read("xl/workbook.xml"))
            rels = ElementTree.fromstring(z.read("xl/_rels/workbook.xml.rels"))
            targets = {r.get("Id"): r.get("Target") for r in rels}
            sheets = wb.find(f"{_MAIN_NS}sheets")
            rid = list(sheets)[index].get(f"{_REL_NS}id")
            target = targets[rid]
            member = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
            data = z.read(member)
    except (KeyError, IndexError, zipfile.BadZipFile, ElementTree.ParseError, AttributeError, TypeError):
        return 1, 1, []
    has_formulas = b"<f" in data or b":f" in data
    header_row, first_col = None, None
    formulas: list[tuple[int, int, str]] = []
    for _, el in ElementTree.iterparse(io.BytesIO(data)):
        if el.tag != f"{_MAIN_NS}c":
            if el.tag == f"{_MAIN_NS}row" and not has_formulas and header_row is not None:
                break
            continue
        ref = el.get("r") or ""
        m = re.fullmatch(r"([A-Z]+)(\d+)", ref)
        if not m:
            continue
        row, col = int(m.group(2)), _column_number(m.group(1))
        v = el.find(f"{_MAIN_NS}v")
        has_value = (v is not None and v.text not in (None, "")) or el.find(f"{_MAIN_NS}is") is not None
        f = el.find(f"{_MAIN_NS}f")
        if has_value:
            header_row = row if header_row is None else min(header_row, row)
            first_col = col if first_col is None else min(first_col, col)
        elif f is not None:
            formulas.append((row, col, f.text or "(shared formula)"))
        el.clear()
    return header_row or 1, first_col or 1, formulas


def _column_number(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - ord("A") + 1
    return n


# ---------------------------------------------------------------------------------------------
# campaign frames read from files
# ---------------------------------------------------------------------------------------------
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
    """Lineage, canonical units and value flags for observations and media read from files.

    Problems are located in the file being read (its line), even when the rows carry lineage
    columns from an earlier export (``source_file``/``source_line``, which are kept).
    """
    from bioworkbench.schema import coerce_frame

    issues: list[Issue] = []
    frames = dict(frames)
    if "observations" in frames:
        file, first_line = files["observations"]
        obs, found = coerce_frame("observations", frames["observations"], file=file, first_line=first_line)
        if found and any(i.message.startswith("missing column") for i in found):
            return frames, found
        issues.extend(found)  # unreadable cells: keep checking the rest, raise all together
        line = pl.int_range(pl.len(), dtype=pl.Int64) + (first_line or 0)
        obs = obs.with_columns(
            pl.col("source_file").fill_null(pl.lit(file)),
            pl.col("source_line").fill_null(line),
            pl.col("source").fill_null("offline"),
            _line=line,
        )
        obs, found = to_canonical(obs, file=file, line_col="_line")
        issues.extend(found)
        # impossible values are left to the Campaign's validation, which reports them together with
        # every other rule (unknown batches, duplicates ...) instead of stopping at them
        obs, _ = flag_values(obs.drop("_line"), on_invalid=on_invalid, file=file, first_line=first_line)
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


def flag_fractions(obs: pl.DataFrame) -> pl.DataFrame:
    """Flag percentages that look like fractions ``suspect``, with the reason; never change a value.

    A value in (0, 1] of a variable in % is flagged when the variable is of kind ``percent``
    (viability: 0.95 % of viable cells is a dead culture, 0.95 a fraction typed as such) or
    when every unflagged value of its series (batch, variable, source) lies in [0, 1] (dissolved
    oxygen recorded as 0–1). The reason reads "viability 0.95 % looks like a fraction; expected
    0–100 %". Rows that already carry a flag are left alone; percentages of quality attributes
    (aggregates of 0.95 % are common) are not checked.
    """
    reg = registry()
    percent_vars = [v for v in reg if reg[v].unit == "%"]
    value, var = pl.col("value"), pl.col("variable")
    candidate = pl.col("flag").is_null() & var.is_in(percent_vars) & (value > 0) & (value <= 1)
    if obs.is_empty() or not obs.select(candidate.any()).item():
        return obs
    kind_percent = [v for v in percent_vars if reg[v].kind == "percent"]
    keys = [c for c in ("batch_id", "variable", "source") if c in obs.columns]
    series_small = pl.when(pl.col("flag").is_null()).then(value).max().over(keys) <= 1
    fraction = candidate & (var.is_in(kind_percent) | series_small)
    return obs.with_columns(
        pl.when(fraction).then(pl.lit(FLAG_SUSPECT)).otherwise(pl.col("flag")).alias("flag"),
        pl.when(fraction)
        .then(pl.format("{} {} % looks like a fraction; expected 0–100 %", "variable", "value"))
        .otherwise(pl.col("flag_reason"))
        .alias("flag_reason"),
    )


def flag_values(
    obs: pl.DataFrame,
    *,
    on_invalid: Literal["raise", "flag"] = "raise",
    file: str | None = None,
    first_line: int | None = None,
) -> tuple[pl.DataFrame, list[Issue]]:
    """Flag suspect values and deal with impossible ones; never change a value.

    Parameters
    ----------
    obs
        Observations in canonical units.
    on_invalid
        A value outside the variable's possible range (``min``/``max`` in the registry: a
        negative concentration, viability above 100 %) is an error with ``"raise"``, or kept and
        flagged ``invalid`` with ``"flag"``.
    file, first_line
        The file the rows were read from and the line of its first row, to locate errors
        (default: each row's lineage, ``source_file``/``source_line``).

    Returns
    -------
    tuple[polars.DataFrame, list[Issue]]
        The observations with flags (the same object when nothing is flagged) and the errors.

    Notes
    -----
    Rows that already carry a flag are left alone. Besides the impossible values, a percentage
    that looks like a fraction is flagged ``suspect`` (:func:`flag_fractions`), and so is a value
    outside the variable's plausible ``typical`` range. The range checks run per variable first
    and list rows only for the variables that have values outside their ranges.
    """
    from bioworkbench.schema import _Ctx, _range_text, _report_rows

    if on_invalid not in ("raise", "flag"):
        raise ValueError(f"on_invalid must be 'raise' or 'flag'; got {on_invalid!r}")
    reg = registry()
    obs = flag_fractions(obs)
    if obs.is_empty():
        return obs, []
    free = pl.col("flag").is_null() & pl.col("value").is_finite()
    stats = (
        obs.lazy().filter(free).group_by("variable").agg(lo=pl.col("value").min(), hi=pl.col("value").max()).collect()
    )
    outside = False
    for name, lo, hi in stats.iter_rows():
        if name in reg:
            spec = reg[name]
            typ = spec.typical or (spec.min, spec.max)
            outside |= lo < spec.min or hi > spec.max or lo < typ[0] or hi > typ[1]
    if not outside:
        return obs, []
    names = [v for v in stats["variable"].drop_nulls().to_list() if v in reg]
    var = pl.col("variable")

    def limit(get) -> pl.Expr:
        return var.replace_strict({v: get(reg[v]) for v in names}, default=None, return_dtype=pl.Float64)

    x = obs.with_columns(
        _min=limit(lambda s: s.min),
        _max=limit(lambda s: s.max),
        _lo=limit(lambda s: s.typical[0] if s.typical else None),
        _hi=limit(lambda s: s.typical[1] if s.typical else None),
    )
    free = pl.col("flag").is_null() & pl.col("value").is_not_null()
    invalid = free & ((pl.col("value") < pl.col("_min")) | (pl.col("value") > pl.col("_max")))
    suspect = free & ~invalid & ((pl.col("value") < pl.col("_lo")) | (pl.col("value") > pl.col("_hi")))
    issues: list[Issue] = []
    inv_flag = invalid
    if on_invalid == "raise":
        ctx = _Ctx("observations", file, first_line)
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

"""Readers for tidy tables (one file per campaign frame) and the checks every reader shares.

CSV files are read as text first and cast afterwards, so a cell that is not a number is reported
with its file, line and column instead of failing the whole read. Spreadsheets are held to the
same standard: a text cell in a number column (``n/a``, ``NA``), an error cell (``#DIV/0!``) and a
formula without a saved result reach the caller as text and are reported like the same text in a
CSV file, never dropped; rows keep the spreadsheet's own row numbers (blank rows included).

:func:`flag_values` and :func:`flag_fractions` (defined in :mod:`bioworkbench.schema.flags`, used by
the readers and the :class:`~bioworkbench.Campaign` constructor alike) are re-exported here.
"""

from __future__ import annotations

import csv
import io
import os
import re
import zipfile
from pathlib import Path
from typing import NamedTuple
from xml.etree import ElementTree

import polars as pl

from bioworkbench.errors import DataReadError, suggest
from bioworkbench.schema import flag_fractions, flag_values

__all__ = ["Table", "flag_fractions", "flag_values", "not_utf8", "read_frame_file", "read_table"]


class Table(NamedTuple):
    """A table read from a file, and where its rows are in the file."""

    #: the table (blank rows kept, so that row ``i`` is on line ``first_line + i``)
    frame: pl.DataFrame
    #: the line (CSV) or spreadsheet row of the first data row
    first_line: int


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
#: byte-order marks of text encodings other than UTF-8 (UTF-32 first: its LE mark starts like UTF-16's)
_BOMS = {
    b"\xff\xfe\x00\x00": ("UTF-32 (byte-order mark FF FE 00 00)", "utf-32"),
    b"\x00\x00\xfe\xff": ("UTF-32 (byte-order mark 00 00 FE FF)", "utf-32"),
    b"\xff\xfe": ("UTF-16 (byte-order mark FF FE)", "utf-16"),
    b"\xfe\xff": ("UTF-16 (byte-order mark FE FF)", "utf-16"),
}
#: the spellings of UTF-8 that polars reads itself
_UTF8 = ("utf8", "utf-8", "utf8-lossy")
_MAIN_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"


def read_table(
    path: str | os.PathLike,
    *,
    separator: str = ",",
    decimal_comma: bool = False,
    sheet: str | int | None = None,
    encoding: str = "utf8",
) -> Table:
    """Read a CSV (all columns as text), Parquet or Excel file, and the line of its first row.

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
    Table
        ``frame``: the table (blank rows kept, so that row ``i`` is on line ``first_line + i``);
        ``first_line``: the line (CSV) or spreadsheet row of the first data row.

    Raises
    ------
    DataReadError
        The file is missing, of an unsupported type, or cannot be parsed: a text file that looks
        separated by another character than ``separator`` (named, with the option to pass), a line
        with more or fewer fields than the header (its number); a text file read as UTF-8 that is
        UTF-16 or UTF-32 (its byte-order mark, or NUL bytes where a mark is missing) or holds a byte
        that is not UTF-8 (its line and column), each with the ``encoding=`` to pass.

    Notes
    -----
    Text files are UTF-8 (a UTF-8 byte-order mark is skipped) unless ``encoding`` names another
    encoding (``"utf-16"``, ``"cp1252"``...), which is then decoded exactly. The encoding is never
    guessed: a UTF-16 export (Vi-CELL BLU writes them) read as UTF-8 would otherwise be one column
    of NUL-separated text, and a Windows-1252 file would have its ``µ`` and ``°`` replaced.

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
            return Table(pl.read_parquet(path), 2)
        if suffix in (".xlsx", ".xlsm", ".xls"):
            return _read_excel(path, sheet)
        if suffix in (".csv", ".txt", ".tsv"):
            sep = "\t" if suffix == ".tsv" else separator
            if encoding.lower() in _UTF8:
                _check_utf8_head(path)
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
                invalid = _invalid_utf8(path) if encoding.lower() in ("utf8", "utf-8") else None
                raise invalid or _ragged_error(path, sep, encoding) or exc from None
            df = df.rename({c: c.strip().lstrip("\ufeff") for c in df.columns})
            if decimal_comma:
                df = df.with_columns(pl.col(c).str.replace(r"^(\s*-?\d+),(\d+\s*)$", "$1.$2") for c in df.columns)
            return Table(df, 2)
    except DataReadError:
        raise
    except Exception as exc:
        raise DataReadError(f"{path}: cannot be read as {suffix[1:]} ({exc}).") from None
    raise DataReadError(f"{path}: unsupported file type {suffix!r}; expected .csv, .tsv, .txt, .parquet or .xlsx.")


def not_utf8(raw: bytes) -> str | None:
    """Why text starting with ``raw`` is not UTF-8, from its byte-order mark or NUL bytes, or ``None``.

    Parameters
    ----------
    raw
        The first bytes of a file (64 KiB are plenty).

    Returns
    -------
    str or None
        ``"it is UTF-16 (byte-order mark FF FE)"``, ``"it holds a NUL byte at byte 1 (...)"``, or
        ``None`` when nothing in these bytes says the file is not UTF-8.
    """
    for bom, (what, _) in _BOMS.items():
        if raw.startswith(bom):
            return f"it is {what}"
    if b"\x00" in raw[:65536]:
        at = raw.index(b"\x00")
        return f"it holds a NUL byte at byte {at} (UTF-16 without a byte-order mark, or a binary file)"
    return None


def _check_utf8_head(path: Path) -> None:
    """Refuse a file about to be read as UTF-8 whose first bytes say it is UTF-16/32 (or not text)."""
    with open(path, "rb") as fh:
        raw = fh.read(65536)
    why = not_utf8(raw)
    if why is None:
        return
    encoding = next((enc for bom, (_, enc) in _BOMS.items() if raw.startswith(bom)), None)
    if encoding is None:  # NUL bytes: UTF-16 without a mark puts them in every ASCII character
        at = raw.index(b"\x00")
        line = raw.count(b"\n", 0, at) + 1
        guess = "utf-16-le" if at % 2 else "utf-16-be"
        raise DataReadError(
            f"{path}: line {line}: the file cannot be read as UTF-8: {why}. If it is UTF-16, pass "
            f"encoding={guess!r} (in a column map: read: {{encoding: {guess}}}); otherwise save it as UTF-8 text."
        )
    raise DataReadError(
        f"{path}: line 1: the file cannot be read as UTF-8: {why}. Pass encoding={encoding!r} (in a column "
        f"map: read: {{encoding: {encoding}}}), or save it as UTF-8."
    )


def _invalid_utf8(path: Path) -> DataReadError | None:
    """The first byte of ``path`` that is not UTF-8, as a located error (line and character column)."""
    try:
        data = path.read_bytes()
        data.decode("utf-8")
    except OSError:
        return None
    except UnicodeDecodeError as exc:
        start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        column = len(data[start : exc.start].decode("utf-8")) + 1
        return DataReadError(
            f"{path}: line {line}, column {column}: byte 0x{data[exc.start]:02X} is not UTF-8; the file was saved "
            "in another encoding (Windows-1252 and Latin-1 write 'µ' as 0xB5 and '°' as 0xB0). Pass the file's "
            "encoding, e.g. encoding='cp1252' (in a column map: read: {encoding: cp1252}), or save it as UTF-8; "
            "no byte is replaced or dropped."
        )
    return None


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
def _read_excel(path: Path, sheet: str | int | None) -> Table:
    import fastexcel

    reader = fastexcel.read_excel(str(path))
    names = reader.sheet_names
    if isinstance(sheet, str):
        if sheet not in names:
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
    return Table(df, header_row + 1)


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
def read_frame_file(path: Path, frame: str, *, separator: str = ",", decimal_comma: bool = False) -> Table:
    """Read one campaign frame file (CSV or Parquet); unknown extra columns are kept.

    Parameters
    ----------
    path
        The file.
    frame
        The frame it holds (``"batches"``, ``"observations"``...).
    separator, decimal_comma
        How a CSV file is written.

    Returns
    -------
    Table
        As :func:`read_table`.

    Raises
    ------
    DataReadError
        As :func:`read_table`, and a CSV file read as one column whose name holds ``;`` (the file
        is semicolon-separated: the message says which options to pass).
    """
    df, first_line = read_table(path, separator=separator, decimal_comma=decimal_comma)
    if separator == "," and path.suffix.lower() == ".csv" and df.width == 1 and ";" in df.columns[0]:
        raise DataReadError(
            f"{path}: one column {df.columns[0]!r} found; the file looks semicolon-separated. "
            "Pass separator=';' (and decimal_comma=True if numbers use commas)."
        )
    return Table(df, first_line)

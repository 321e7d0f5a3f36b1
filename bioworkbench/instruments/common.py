"""What every instrument reader shares: the long frame of raw results, numbers and flags, units.

An instrument module turns its file into *raw results* (:data:`RAW_SCHEMA`): one row per value
the file holds, with the sample it belongs to, the instrument's own name for the quantity, the
text exactly as written (``raw_value``), its unit, and where it is (``source_line`` and, in a
spreadsheet, ``source_cell``). :func:`finish` then reads the numbers, flags what is not a plain
number (:func:`read_numbers`), converts to canonical units (:func:`to_canonical_units`) and flags
values by the variable registry's ranges, so that every instrument follows the same rules.

Flags (column ``flag``; the value is kept whenever the file has one, and ``flag_reason`` says why):

``<LOD``
    below the instrument's test range (Cedex Bio HT ``< TEST RNG``, a result written ``< 2.50``);
``>ULOQ``
    above it (``> TEST RNG``, ``> 45.0``);
``unreadable``
    text in a numeric field (``ERROR``, ``Not determined``, ``10.00%``): no value, the text is in
    ``raw_value``;
``suspect``
    a note or warning the instrument attached to the result (``3.58E3 (Out of optimal range)``,
    Cedex ``v`` = verification needed, NC-View ``Warning: Foreign object detected``), or a value
    outside the registry's typical range;
``invalid``
    outside the registry's physically possible range.

Layer: imports :mod:`bioworkbench.schema`, :mod:`bioworkbench.variables`,
:mod:`bioworkbench.units` and :mod:`bioworkbench.errors` only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from bioworkbench.errors import ConfigError, DataReadError, Issue, SchemaError
from bioworkbench.schema import FLAG_INVALID, FLAG_SUSPECT, UTC, flag_values
from bioworkbench.units import conversion
from bioworkbench.variables import registry

__all__ = [
    "EXTRA_VARIABLES",
    "FLAG_ABOVE",
    "FLAG_BELOW",
    "FLAG_UNREADABLE",
    "OUTPUT_COLUMNS",
    "RAW_SCHEMA",
    "ExtraVariable",
    "Quantity",
    "cell_ref",
    "finish",
    "parse_times",
    "raw_frame",
    "read_numbers",
    "read_text",
    "to_canonical_units",
]

FLAG_BELOW = "<LOD"
FLAG_ABOVE = ">ULOQ"
FLAG_UNREADABLE = "unreadable"


@dataclass(frozen=True, slots=True)
class Quantity:
    """One quantity an instrument reports: its variable, the unit it is written in, and how to convert.

    ``molar_mass`` (g/mol) overrides the registry's for this quantity (Cedex reports ammonia as
    NH3, 17.03 g/mol, the registry's ammonium is NH4+); ``unit`` is used when the file writes no
    unit of its own.
    """

    variable: str
    unit: str
    molar_mass: float | None = None


@dataclass(frozen=True, slots=True)
class ExtraVariable:
    """A quantity instruments report that the variable registry does not hold (yet)."""

    unit: str
    molar_mass: float | None = None
    description: str = ""


#: canonical units of what instruments measure besides the registry's variables. Rows of these
#: variables keep these names; register them (:func:`bioworkbench.instruments.register_instrument_variables`)
#: before building a Campaign from them, or filter them out.
EXTRA_VARIABLES: dict[str, ExtraVariable] = {
    "dcd": ExtraVariable("1e6 cells/mL", description="dead cell density"),
    "total_cell_count": ExtraVariable("cells", description="cells counted (total)"),
    "viable_cell_count": ExtraVariable("cells", description="cells counted (viable)"),
    "dead_cell_count": ExtraVariable("cells", description="cells counted (dead)"),
    "total_object_count": ExtraVariable("cells", description="objects counted (cells and debris)"),
    "viable_diameter": ExtraVariable("um", description="average diameter of viable cells"),
    "diameter_sd": ExtraVariable("um", description="standard deviation of the cell diameter"),
    "circularity": ExtraVariable("1", description="average circularity of all cells"),
    "viable_circularity": ExtraVariable("1", description="average circularity of viable cells"),
    "aggregates": ExtraVariable("%", description="cells in aggregates (aggregate rate)"),
    "debris_index": ExtraVariable("1", description="ChemoMetec debris index"),
    "compactness": ExtraVariable("1", description="Cedex HiRes average compactness"),
    "cell_area": ExtraVariable("1", description="Cedex HiRes average cell area (instrument units)"),
    "perimeter": ExtraVariable("um", description="Cedex HiRes average perimeter"),
    "segment_area": ExtraVariable("1", description="Cedex HiRes average segment area (instrument units)"),
    "vcd_sd": ExtraVariable("1e6 cells/mL", description="standard deviation of the viable cell density"),
    "sodium": ExtraVariable("mmol/L", 22.99, "sodium (Na+)"),
    "potassium": ExtraVariable("mmol/L", 39.10, "potassium (K+)"),
    "calcium": ExtraVariable("mmol/L", 40.08, "calcium (Ca2+)"),
    "magnesium": ExtraVariable("mmol/L", 24.305, "magnesium (Mg2+)"),
    "iron": ExtraVariable("mmol/L", 55.845, "iron"),
    "bicarbonate": ExtraVariable("mmol/L", 61.02, "bicarbonate (HCO3-)"),
    "po2": ExtraVariable("mmHg", description="dissolved O2 partial pressure"),
    "o2_saturation": ExtraVariable("%", description="O2 saturation"),
    "co2_saturation": ExtraVariable("%", description="CO2 saturation"),
    "ldh": ExtraVariable("U/L", description="lactate dehydrogenase activity"),
    "total_protein": ExtraVariable("g/L", description="total protein"),
    "optical_density": ExtraVariable("AU", description="optical density (Cedex Bio HT OD test)"),
    "asparagine": ExtraVariable("mmol/L", 132.12, "L-asparagine"),
    "aspartate": ExtraVariable("mmol/L", 133.10, "L-aspartate"),
    "galactose": ExtraVariable("mmol/L", 180.16, "D-galactose"),
    "glycerol": ExtraVariable("mmol/L", 92.09, "glycerol"),
    "alanyl_glutamine": ExtraVariable("mmol/L", 217.22, "L-alanyl-L-glutamine"),
    "nitrate": ExtraVariable("mmol/L", 62.00, "nitrate"),
    "sucrose": ExtraVariable("mmol/L", 342.30, "sucrose"),
    "arabinose": ExtraVariable("mmol/L", 150.13, "L-arabinose"),
    "cholesterol": ExtraVariable("mmol/L", 386.65, "cholesterol"),
}

#: the raw results an instrument module returns (one row per value in the file)
RAW_SCHEMA: dict[str, pl.DataType] = {
    "sample_id": pl.String,
    "measured_at": UTC,
    "sampled_at": UTC,
    "vessel": pl.String,
    "quantity": pl.String,
    "variable": pl.String,
    "raw_value": pl.String,
    "raw_unit": pl.String,
    "molar_mass": pl.Float64,
    "dilution": pl.Float64,
    "instrument_flag": pl.String,
    "source_line": pl.Int64,
    "source_cell": pl.String,
}

#: the columns of :func:`bioworkbench.instruments.read_instrument`'s frame: the observations
#: frame's ten first, then the instrument's own
OUTPUT_COLUMNS = (
    "batch_id",
    "time_h",
    "variable",
    "value",
    "unit",
    "source",
    "flag",
    "flag_reason",
    "source_file",
    "source_line",
    "source_cell",
    "sample_id",
    "replicate",
    "measured_at",
    "sampled_at",
    "vessel",
    "instrument",
    "quantity",
    "raw_value",
    "raw_unit",
    "dilution",
)

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"


def read_text(path: Path) -> tuple[str, str]:
    """The text of an instrument file and the encoding it was read in.

    Instruments write UTF-8 (with or without a byte-order mark), UTF-16 (Vi-CELL BLU's export
    option) or, on older Windows software, cp1252; the byte-order mark decides, else UTF-8 is
    tried first.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    tuple[str, str]
        The text (without a byte-order mark) and the encoding's name.

    Raises
    ------
    DataReadError
        The file is missing or unreadable.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataReadError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    if len(data) > 1 and data[1:2] == b"\x00" and data[:1] != b"\x00":
        return data.decode("utf-16-le", errors="replace"), "utf-16-le"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), "cp1252"


def cell_ref(row: int, col: int) -> str:
    """A spreadsheet cell's name from its 1-based row and column: ``cell_ref(7, 2) == "B7"``.

    Parameters
    ----------
    row
        The row, from 1.
    col
        The column, from 1 (A = 1, Z = 26, AA = 27).

    Returns
    -------
    str
        Column letters followed by the row number.
    """
    letters = ""
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return f"{letters}{row}"


def raw_frame(rows: list[dict] | pl.DataFrame) -> pl.DataFrame:
    """Raw results as a frame of :data:`RAW_SCHEMA` (columns left out are null).

    Parameters
    ----------
    rows
        One dict per value, or a frame; columns not in :data:`RAW_SCHEMA` are dropped.

    Returns
    -------
    polars.DataFrame
        The columns of :data:`RAW_SCHEMA`, in its order and types.
    """
    if isinstance(rows, pl.DataFrame):
        df = rows
    else:
        df = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
    return df.select((pl.col(c) if c in df.columns else pl.lit(None)).cast(t).alias(c) for c, t in RAW_SCHEMA.items())


def parse_times(text: pl.Expr, formats: list[str], timezone: str) -> pl.Expr:
    """Clock times written in one of ``formats`` as UTC instants (null where none fits).

    Parameters
    ----------
    text
        The times as written (runs of spaces are collapsed first).
    formats
        strftime formats tried in turn; the first that reads a value wins.
    timezone
        The IANA zone of the instrument's clock (its files carry no UTC offset).

    Returns
    -------
    polars.Expr
        Datetimes in UTC (microseconds); a local time that does not exist (a daylight-saving
        gap) is null, an ambiguous one the earlier.
    """
    clean = text.cast(pl.String).str.strip_chars().str.replace_all(r"\s+", " ")
    tries = [clean.str.to_datetime(format=f, strict=False, time_unit="us") for f in formats]
    naive = pl.coalesce(tries) if len(tries) > 1 else tries[0]
    return naive.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC")


def read_numbers(raw: pl.DataFrame) -> pl.DataFrame:
    """Read ``raw_value`` as numbers into ``value``, and flag what is not a plain number.

    Parameters
    ----------
    raw
        Raw results (:data:`RAW_SCHEMA`).

    Returns
    -------
    polars.DataFrame
        With ``value`` (Float64), ``flag`` and ``flag_reason``.

    Notes
    -----
    Accepted as numbers: ``12.5``, ``1.07E+06``, ``274 000`` (a space between thousands, as
    NC-View writes). ``< 2.50`` and ``> 45`` are the instrument's limits: the limit is the value,
    flagged ``<LOD`` / ``>ULOQ``; so is a value whose instrument flag says ``< TEST RNG`` /
    ``> TEST RNG``. ``3.58E3 (Out of optimal range)`` keeps the number, flagged ``suspect`` with
    the note. Anything else (``ERROR``, ``Not determined``, ``10.00%``) has no value and is
    flagged ``unreadable``; nothing is dropped.
    """
    text = pl.col("raw_value").str.strip_chars().str.replace_all(r"\s+", " ")
    thousands = text.str.contains(r"^[-+]?\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?:\.\d+)?$")
    grouped = pl.when(thousands).then(text.str.replace_all(r"[ \u00a0\u202f]", "")).otherwise(text)
    plain = grouped.str.extract(rf"^({_NUMBER})$").cast(pl.Float64, strict=False)
    limit_op = text.str.extract(rf"^([<>])\s*{_NUMBER}$")
    limit = text.str.extract(rf"^[<>]\s*({_NUMBER})$").cast(pl.Float64, strict=False)
    note_value = grouped.str.extract(rf"^({_NUMBER})\s*\((.+)\)$").cast(pl.Float64, strict=False)
    note = text.str.extract(rf"^{_NUMBER}\s*\((.+)\)$")
    iflag = pl.col("instrument_flag").str.strip_chars()
    below = (limit_op == "<") | iflag.str.starts_with("<")
    above = (limit_op == ">") | iflag.str.starts_with(">")
    value = pl.coalesce(plain, limit, note_value)
    flag = (
        pl.when(value.is_null())
        .then(pl.lit(FLAG_UNREADABLE))
        .when(below)
        .then(pl.lit(FLAG_BELOW))
        .when(above)
        .then(pl.lit(FLAG_ABOVE))
        .when(note.is_not_null() | (iflag.is_not_null() & (iflag != "")))
        .then(pl.lit(FLAG_SUSPECT))
    )
    reason = (
        pl.when(value.is_null())
        .then(pl.format("expected a number, found '{}'", pl.col("raw_value")))
        .when(below | above)
        .then(
            pl.format(
                "outside the instrument's measuring range: '{}'{}",
                pl.col("raw_value").str.strip_chars(),
                pl.when(iflag.is_not_null() & (iflag != ""))
                .then(pl.format(" (flag '{}')", iflag))
                .otherwise(pl.lit("")),
            )
        )
        .when(note.is_not_null())
        .then(pl.format("instrument note: {}", note))
        .when(iflag.is_not_null() & (iflag != ""))
        .then(pl.format("instrument flag: {}", iflag))
    )
    return raw.with_columns(value=value, flag=flag, flag_reason=reason)


def _canonical_of(variable: str) -> tuple[str | None, float | None]:
    reg = registry()
    if variable in reg:
        return reg[variable].unit, reg[variable].molar_mass
    if variable in EXTRA_VARIABLES:
        extra = EXTRA_VARIABLES[variable]
        return extra.unit, extra.molar_mass
    return None, None


def to_canonical_units(df: pl.DataFrame, file: str) -> pl.DataFrame:
    """Convert ``value`` from ``raw_unit`` to each variable's canonical unit, into ``unit``.

    Canonical units are the registry's; for variables the registry does not hold, those of
    :data:`EXTRA_VARIABLES`. One conversion per ``(variable, unit, molar mass)`` group
    (:func:`bioworkbench.units.conversion`).

    Parameters
    ----------
    df
        Results with ``variable``, ``value``, ``raw_unit``, ``molar_mass``, ``source_line`` and
        ``quantity``.
    file
        The file, for the errors.

    Returns
    -------
    polars.DataFrame
        ``df`` with ``value`` converted and ``unit`` the canonical unit (a variable neither the
        registry nor :data:`EXTRA_VARIABLES` holds keeps its value and unit).

    Raises
    ------
    SchemaError
        A unit that cannot be converted, naming the file, the first line and the quantity.
    """
    groups = df.group_by("variable", "raw_unit", "molar_mass").agg(
        line=pl.col("source_line").first(), quantity=pl.col("quantity").first()
    )
    rows, issues = [], []
    for var, unit, mm, line, quantity in groups.iter_rows():
        canon, canon_mm = _canonical_of(var)
        if canon is None:
            rows.append((var, unit, mm, 1.0, 0.0, unit))
            continue
        try:
            scale, offset = conversion(unit, canon, mm if mm is not None else canon_mm)
        except ConfigError as exc:
            issues.append(
                Issue(
                    f"{quantity!r} in {unit!r} cannot be converted to {canon} for {var} ({exc})",
                    file=file,
                    line=line,
                    column=quantity,
                    hint=f"expected a unit convertible to {canon}.",
                )
            )
            continue
        rows.append((var, unit, mm, scale, offset, canon))
    if issues:
        raise SchemaError(issues)
    table = pl.DataFrame(
        rows,
        schema={
            "variable": pl.String,
            "raw_unit": pl.String,
            "molar_mass": pl.Float64,
            "_scale": pl.Float64,
            "_offset": pl.Float64,
            "unit": pl.String,
        },
        orient="row",
    )
    return (
        df.join(table, on=["variable", "raw_unit", "molar_mass"], how="left", nulls_equal=True, maintain_order="left")
        .with_columns(value=pl.col("value") * pl.col("_scale") + pl.col("_offset"))
        .drop("_scale", "_offset")
    )


def finish(raw: pl.DataFrame, *, file: str, instrument: str, source: str) -> pl.DataFrame:
    """Raw results -> numbers, flags and canonical units, in the columns of :data:`OUTPUT_COLUMNS`.

    Parameters
    ----------
    raw
        Raw results of one file (:data:`RAW_SCHEMA`); rows with an empty ``raw_value`` are cells
        the instrument left blank (not measured) and are not results.
    file
        The file, for ``source_file`` and the errors.
    instrument
        The instrument's name (:data:`bioworkbench.instruments.INSTRUMENTS`).
    source
        ``"offline"`` or ``"atline"``.

    Returns
    -------
    polars.DataFrame
        Batch and time not yet known (null); replicate numbers not yet set.
    """
    raw = raw_frame(raw).filter(pl.col("raw_value").is_not_null() & (pl.col("raw_value").str.strip_chars() != ""))
    df = read_numbers(raw)
    df = to_canonical_units(df, file)
    df = df.with_columns(
        batch_id=pl.lit(None, dtype=pl.String),
        time_h=pl.lit(None, dtype=pl.Float64),
        source=pl.lit(source),
        source_file=pl.lit(file),
        instrument=pl.lit(instrument),
        replicate=pl.lit(None, dtype=pl.Int32),
    )
    checked = flag_values(df, on_invalid="flag")
    return checked.frame.select(OUTPUT_COLUMNS)


#: flags :func:`finish` may set, for documentation and tests
FLAGS = (FLAG_BELOW, FLAG_ABOVE, FLAG_UNREADABLE, FLAG_SUSPECT, FLAG_INVALID)


def header_key(header: str) -> str:
    """A column header as matched against an instrument's table: lower case, ``µ``/``μ`` as ``u``,
    spaces collapsed (exports of one instrument differ in these)."""
    text = str(header).replace("\u03bc", "u").replace("\u00b5", "u").lower()
    return re.sub(r"\s+", " ", text).strip()


def melt_wide(
    df: pl.DataFrame,
    specs: dict[str, Quantity],
    *,
    ids: dict[str, pl.Expr],
    positions: dict[str, int] | None = None,
    units: dict[str, str] | None = None,
) -> pl.DataFrame:
    """One row per sample (``df``, text cells, ``_line`` = the row's line) -> raw results.

    Parameters
    ----------
    df
        The table as text, with ``_line``: the line (CSV) or row (spreadsheet) of each row.
    specs
        :func:`header_key` of a column header -> what it measures; other columns are metadata.
    ids
        Expressions for the per-sample columns of :data:`RAW_SCHEMA` (``sample_id``,
        ``measured_at``, ``vessel``, ``dilution``, ...).
    positions
        Header -> 1-based column, for spreadsheets: each value's ``source_cell``.
    units
        Header -> the unit the file writes for it (a units row); default: the spec's unit.
    """
    present = [h for h in df.columns if header_key(h) in specs]
    index = [*ids, "_line"]
    base = df.with_columns(**{k: v for k, v in ids.items()}).select(*index, *present)
    long = base.unpivot(on=present, index=index, variable_name="quantity", value_name="raw_value")
    units = units or {}
    table = pl.DataFrame(
        {
            "quantity": present,
            "variable": [specs[header_key(h)].variable for h in present],
            "raw_unit": [units.get(h) or specs[header_key(h)].unit for h in present],
            "molar_mass": [specs[header_key(h)].molar_mass for h in present],
            "_col": [(positions or {}).get(h) for h in present],
        },
        schema={
            "quantity": pl.String,
            "variable": pl.String,
            "raw_unit": pl.String,
            "molar_mass": pl.Float64,
            "_col": pl.Int64,
        },
    )
    long = long.join(table, on="quantity", how="left", maintain_order="left")
    letters = {c: cell_ref(1, c)[:-1] for c in table["_col"].drop_nulls().to_list()}
    cell = pl.format("{}{}", pl.col("_col").replace_strict(letters, default=None, return_dtype=pl.String), "_line")
    return raw_frame(
        long.with_columns(
            source_line=pl.col("_line"),
            source_cell=pl.when(pl.col("_col").is_not_null()).then(cell),
            raw_value=pl.col("raw_value").cast(pl.String),
        )
    )


def read_csv_text(text: str, *, separator: str = ",", header_line: int = 1) -> pl.DataFrame:
    """A CSV table as text cells, its header on line ``header_line``; ``_line`` = each row's line.

    Each line is one row (the instrument exports read here hold no quoted line breaks), so that
    ``_line`` is the line a text editor shows. Blank rows hold no result and are left out.
    Headers are stripped; a repeated header gets ``_2``, ``_3``.
    """
    import csv

    lines = text.splitlines()
    first = next(csv.reader([lines[header_line - 1]], delimiter=separator))
    header = [h.strip() or f"column {i + 1}" for i, h in enumerate(first)]
    seen: dict[str, int] = {}
    names = []
    for h in header:
        seen[h] = seen.get(h, 0) + 1
        names.append(h if seen[h] == 1 else f"{h}_{seen[h]}")
    rows, numbers = [], []
    for number, line in enumerate(lines[header_line:], start=header_line + 1):
        cells = next(csv.reader([line], delimiter=separator), [])
        if not any(c.strip() for c in cells):
            continue
        cells = [c if c.strip() != "" else None for c in cells[: len(names)]]
        rows.append(cells + [None] * (len(names) - len(cells)))
        numbers.append(number)
    df = pl.DataFrame(rows, schema=dict.fromkeys(names, pl.String), orient="row")
    return df.with_columns(_line=pl.Series(numbers, dtype=pl.Int64))


def read_sheet(path: Path, sheet: int = 0) -> list[list[object]]:
    """The cells of an ``.xlsx`` spreadsheet (through openpyxl).

    Returns
    -------
    list[list[object]]
        Rows from the sheet's row 1 and column A: ``grid[r - 1][c - 1]`` is cell (r, c), so that
        line and cell references are the spreadsheet's own.

    Raises
    ------
    DataReadError
        The file is not a readable workbook.
    """
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several kinds for a broken file
        raise DataReadError(f"{path}: not a readable .xlsx workbook ({type(exc).__name__}: {exc}).") from None
    try:
        ws = wb.worksheets[sheet]
        grid: list[list[object]] = []
        for row in ws.iter_rows():
            cells = [c for c in row if getattr(c, "row", None) is not None]
            if not cells:
                continue
            r = cells[0].row
            while len(grid) < r:
                grid.append([])
            values = grid[r - 1]
            for c in cells:
                while len(values) < c.column:
                    values.append(None)
                values[c.column - 1] = c.value
        return grid
    finally:
        wb.close()


def read_grid(path: Path, sheet: int = 0) -> list[list[str | None]]:
    """The cells of an ``.xls`` or ``.xlsx`` spreadsheet as text (through fastexcel, i.e. calamine).

    Returns
    -------
    list[list[str | None]]
        ``grid[r - 1][c - 1]`` is the text of cell (r, c), so that row and cell references are
        the spreadsheet's own; empty cells are ``None``.

    Raises
    ------
    DataReadError
        The file is not a readable workbook.

    Notes
    -----
    Text cells are kept as written. Number cells are written as the shortest text that reads
    back as the same double (``repr``; integers without ``.0``): calamine's own text of a number
    rounds it to the digits Excel displays, so each sheet is read twice, once as text and once
    as numbers, and the number wins where the two differ.
    """
    import fastexcel

    try:
        reader = fastexcel.read_excel(str(path))
        text = reader.load_sheet(sheet, header_row=None, skip_rows=0, dtypes="string")
        numbers = reader.load_sheet(sheet, header_row=None, skip_rows=0, dtypes="float")
    except Exception as exc:  # calamine raises several kinds for a broken file
        raise DataReadError(f"{path}: not a readable .xls/.xlsx workbook ({type(exc).__name__}: {exc}).") from None
    offset = min((c.absolute_index for c in text.available_columns()), default=0)
    words = text.to_polars()
    values = numbers.to_polars()
    grid: list[list[str | None]] = []
    for words_row, values_row in zip(words.iter_rows(), values.iter_rows(), strict=True):
        row: list[str | None] = [None] * offset
        for word, value in zip(words_row, values_row, strict=True):
            row.append(_cell(word, value))
        grid.append(row)
    return grid


def _cell(word: str | None, value: float | None) -> str | None:
    """One cell's text from its text and number readings (see :func:`read_grid`)."""
    if value is None:
        return word
    if word is None:
        return cell_text(value)
    try:
        read_back = float(word)
    except ValueError:
        return word  # text, or a date calamine wrote out
    return word if read_back == value else cell_text(value)


def cell_text(value: object) -> str | None:
    """A spreadsheet cell as text: numbers without a trailing ``.0``, dates in ISO 8601."""
    if value is None:
        return None
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if hasattr(value, "isoformat"):
        return value.isoformat(sep=" ") if hasattr(value, "hour") else value.isoformat()
    return str(value)

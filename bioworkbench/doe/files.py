"""Designs from files for the lab: CSV with a YAML sidecar, and Excel workbooks (the reading half).

CSV: ``plan.csv`` holds the run table; the design's facts (factors, ranges, units, kind, seed,
generators, …) go to the sidecar ``plan.design.yaml`` next to it. A sidecar rather than a commented
header because spreadsheet programs mangle comment lines when the lab opens and saves the CSV.

Excel: one workbook with a "design" sheet (the run table) and an "about" sheet (the facts as
``key | value`` rows, lists one item per line, then a table of factors with letters, ranges and units).

:func:`read_design` reads either back into a :class:`Design` (exactly what was written), keeps any
columns the lab added (responses such as ``titer``), and checks every run: numbers where numbers
belong, standard and run orders complete, and natural and coded settings that still agree.

The writers (:func:`write_csv`, :func:`write_excel`, :func:`sidecar_path`) live in
:mod:`bioworkbench.doe.writing`, which :class:`Design`'s ``to_csv``/``to_excel`` call without an
import cycle; they are re-exported here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml

from bioworkbench.doe.design import DESIGN_KINDS, ID_COLUMNS, POINT_TYPES, Design
from bioworkbench.doe.writing import FACTOR_HEADER, FIELDS, FORMAT, sidecar_path, write_csv, write_excel
from bioworkbench.errors import DataReadError, Issue, SchemaError

__all__ = ["read_design", "sidecar_path", "write_csv", "write_excel"]

_TOL = 1e-9  # coded units; generated values carry 15 significant digits


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
def read_design(path: str | os.PathLike) -> Design:
    """Read a design written by :meth:`Design.to_csv` or :meth:`Design.to_excel` back into a :class:`Design`.

    Parameters
    ----------
    path
        ``.csv`` (with its ``.design.yaml`` sidecar) or ``.xlsx``.

    Returns
    -------
    Design
        Equal to the design that was written; columns the lab added (responses) are kept after the
        coded columns, and rows are sorted by run order.

    Raises
    ------
    DataReadError
        A missing file or sidecar, an unsupported suffix, a workbook without "design"/"about" sheets.
    SchemaError
        Missing design columns; a cell that is not a number where one belongs; standard or run orders
        with gaps or repeats; an unknown point type; natural and coded settings of a run that no longer
        agree (a changed cell). Each problem names the file, line, column and run.
    """
    path = Path(path)
    if not path.exists():
        raise DataReadError(f"{path}: file not found.")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        side = sidecar_path(path)
        if not side.exists():
            raise DataReadError(
                f"{path}: the design facts {side.name} are missing; they are written next to the CSV by Design.to_csv "
                "and must travel with it."
            )
        try:
            meta = yaml.safe_load(side.read_text())
        except yaml.YAMLError as exc:
            raise DataReadError(f"{side}: not valid YAML ({exc}).") from exc
        meta = _check_meta(meta, side)
        header = pl.read_csv(path, n_rows=0).columns
        clean = {h: h.lstrip("\ufeff").strip() for h in header}  # a BOM or padded names from spreadsheets
        design_cols = _design_columns(meta)
        raw = pl.read_csv(
            path,
            schema_overrides={h: pl.String for h in header if clean[h] in design_cols},
            infer_schema_length=None,
        ).rename(clean)
        columns = {c: raw[c].to_list() for c in raw.columns}
        extra = {c: raw[c] for c in raw.columns if c not in design_cols}
    elif suffix in (".xlsx", ".xlsm"):
        columns, meta, extra = _read_workbook(path)
    else:
        raise DataReadError(
            f"{path}: unsupported file type {suffix!r}; read_design reads .csv (with sidecar) and .xlsx."
        )
    return _build(path, meta, columns, extra)


def _design_columns(meta: dict[str, Any]) -> list[str]:
    names = [f["name"] for f in meta["factors"]]
    return [*ID_COLUMNS, *names, *(f"{n}_coded" for n in names)]


def _check_meta(meta: Any, where: Path) -> dict[str, Any]:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataReadError(f"{where}: not a bioworkbench design description (no 'format: {FORMAT}').")
    problems = []
    if meta.get("kind") not in DESIGN_KINDS:
        problems.append(
            Issue(
                f"unknown design kind {meta.get('kind')!r}; expected one of {', '.join(DESIGN_KINDS)}.",
                file=str(where),
                column="kind",
            )
        )
    factors = meta.get("factors")
    if not isinstance(factors, list) or not factors:
        problems.append(Issue("no factors listed.", file=str(where), column="factors"))
    else:
        for f in factors:
            if not (
                isinstance(f, dict)
                and isinstance(f.get("name"), str)
                and _is_number(f.get("low"))
                and _is_number(f.get("high"))
            ):
                problems.append(
                    Issue(f"factor entry {f!r} needs name, low and high.", file=str(where), column="factors")
                )
    unknown = [k for k in meta if k not in (*FIELDS, "format", "version", "written_by", "kind", "n_runs", "factors")]
    problems += [Issue(f"unknown key {k!r}.", file=str(where), column=k) for k in unknown]
    if not isinstance(meta.get("n_runs"), int):
        problems.append(Issue("n_runs must be an integer.", file=str(where), column="n_runs"))
    if problems:
        raise SchemaError(problems)
    return meta


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)


def _read_workbook(path: Path) -> tuple[dict[str, list], dict[str, Any], dict[str, pl.Series]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise DataReadError(f"{path}: cannot open the workbook ({exc}).") from exc
    missing = [s for s in ("design", "about") if s not in wb.sheetnames]
    if missing:
        raise DataReadError(
            f"{path}: sheet {missing[0]!r} is missing; a design workbook has sheets 'design' and 'about'."
        )
    meta = _parse_about(list(wb["about"].iter_rows(values_only=True)), path)
    rows = list(wb["design"].iter_rows(values_only=True))
    wb.close()
    header = [str(h) if h is not None else "" for h in (rows[0] if rows else ())]
    while header and header[-1] == "":
        header.pop()
    body = [(i + 2, r) for i, r in enumerate(rows[1:]) if any(v is not None for v in r)]
    columns = {h: [r[j] if j < len(r) else None for _, r in body] for j, h in enumerate(header)}
    lines = [line for line, _ in body]
    if lines != list(range(2, len(lines) + 2)):
        raise DataReadError(
            f"{path}: sheet 'design' has empty rows between runs (before line {lines[-1]}); remove them."
        )
    design_cols = _design_columns(meta)
    extra = {h: pl.Series(h, columns[h], strict=False) for h in header if h not in design_cols}
    return columns, meta, extra


def _parse_about(rows: list[tuple], path: Path) -> dict[str, Any]:
    where = f"{path} (sheet 'about')"
    meta: dict[str, Any] = {"format": FORMAT}
    i = 1
    while i < len(rows) and rows[i] and rows[i][0] is not None:
        key, value = rows[i][0], rows[i][1] if len(rows[i]) > 1 else None
        if key in ("kind", "n_runs"):
            meta[key] = value
        elif key in FIELDS:
            meta[key] = _from_cell(key, value, where, i + 1)
        else:
            raise SchemaError([Issue(f"unknown key {key!r}.", file=where, line=i + 1, column="A")])
        i += 1
    while i < len(rows) and (not rows[i] or rows[i][0] is None):
        i += 1
    if i >= len(rows) or tuple(rows[i][:5]) != FACTOR_HEADER:
        raise SchemaError(
            [Issue(f"expected the factor table header {', '.join(FACTOR_HEADER)}.", file=where, line=i + 1)]
        )
    meta["factors"] = [
        {"name": r[0], "letter": r[1], "low": r[2], "high": r[3], "unit": r[4]}
        for r in rows[i + 1 :]
        if r and r[0] is not None
    ]
    return _check_meta(meta, Path(where))


def _from_cell(key: str, value: Any, where: str, line: int) -> Any:
    kind = FIELDS[key]
    try:
        if kind == "strs":
            return str(value).split("\n")
        if kind == "ints":
            return [int(v) for v in str(value).split("\n")]
        if kind == "bool":
            if not isinstance(value, bool):
                raise ValueError
            return value
        if kind == "int":
            if isinstance(value, float) and value != int(value):
                raise ValueError
            return int(value)
        if kind == "float":
            return float(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise SchemaError(
            [Issue(f"{key}: expected {kind}, found {value!r}.", file=where, line=line, column="B")]
        ) from exc


def _number(value: Any, *, integer: bool) -> float | int | None:
    """A cell as a number, or ``None`` when it is not one (text from CSV, any cell from Excel)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, int | float) or not np.isfinite(value):
        return None
    if integer:
        return int(value) if float(value).is_integer() else None
    return float(value)


def _build(path: Path, meta: dict[str, Any], columns: dict[str, list], extra: dict[str, pl.Series]) -> Design:
    file = str(path)
    ranges = {f["name"]: (float(f["low"]), float(f["high"])) for f in meta["factors"]}
    needed = _design_columns(meta)
    missing = [c for c in needed if c not in columns]
    if missing:
        raise SchemaError(
            [
                Issue("missing design column; it was written with the design and must stay.", file=file, column=c)
                for c in missing
            ]
        )
    n = len(columns["std_order"])
    runs = [columns["run_order"][i] for i in range(n)]
    issues: list[Issue] = []
    parsed: dict[str, list] = {}
    for c in needed:
        if c == "point_type":
            parsed[c] = [None if v is None else str(v) for v in columns[c]]
            for i, v in enumerate(parsed[c]):
                if v not in POINT_TYPES:
                    issues.append(
                        Issue(
                            f"run {runs[i]}: unknown point type {v!r}; expected one of {', '.join(POINT_TYPES)}.",
                            file=file,
                            line=i + 2,
                            column=c,
                        )
                    )
            continue
        integer = c in ("std_order", "run_order", "block")
        parsed[c] = [_number(v, integer=integer) for v in columns[c]]
        for i, v in enumerate(parsed[c]):
            if v is None:
                what = "a whole number" if integer else "a number"
                issues.append(
                    Issue(f"run {runs[i]}: expected {what}, found {columns[c][i]!r}.", file=file, line=i + 2, column=c)
                )
    for c in ("std_order", "run_order"):
        values = [v for v in parsed[c] if v is not None]
        seen: set[int] = set()
        for i, v in enumerate(parsed[c]):
            if v is not None and v in seen:
                issues.append(Issue(f"run {runs[i]}: {c} {v} appears twice.", file=file, line=i + 2, column=c))
            elif v is not None:
                seen.add(v)
        gaps = sorted(set(range(1, meta["n_runs"] + 1)) - set(values))
        if gaps:
            issues.append(
                Issue(
                    f"{c} {', '.join(map(str, gaps[:10]))} missing: the design has {meta['n_runs']} runs (deleted?)",
                    file=file,
                    column=c,
                )
            )
    for i, b in enumerate(parsed["block"]):
        if b is not None and b < 1:
            issues.append(
                Issue(f"run {runs[i]}: block {b}; blocks are numbered from 1.", file=file, line=i + 2, column="block")
            )
    for name, (lo, hi) in ranges.items():
        mid, half = (lo + hi) / 2, (hi - lo) / 2
        for i, (x, xc) in enumerate(zip(parsed[name], parsed[f"{name}_coded"], strict=True)):
            if x is None or xc is None:
                continue
            if abs((x - mid) / half - xc) > _TOL * max(1.0, abs(xc)):
                issues.append(
                    Issue(
                        f"run {runs[i]} (std_order {parsed['std_order'][i]}): {name} = {x:g} is coded "
                        f"{(x - mid) / half:.6g}, but {name}_coded = {xc:g} means {name} = {mid + half * xc:.6g}; "
                        "one of the two cells was changed.",
                        file=file,
                        line=i + 2,
                        column=name,
                        hint=f"expected {name}_coded = ({name} − {mid:g}) / {half:g}; restore the designed value.",
                    )
                )
    if issues:
        raise SchemaError(issues)
    cols: dict[str, pl.Series] = {
        "std_order": pl.Series("std_order", parsed["std_order"], dtype=pl.Int64),
        "run_order": pl.Series("run_order", parsed["run_order"], dtype=pl.Int64),
        "block": pl.Series("block", parsed["block"], dtype=pl.Int64),
        "point_type": pl.Series("point_type", parsed["point_type"], dtype=pl.String),
    }
    for c in needed[4:]:
        cols[c] = pl.Series(c, parsed[c], dtype=pl.Float64)
    cols.update({c: s.alias(c) for c, s in extra.items()})
    frame = pl.DataFrame(list(cols.values())).sort("run_order")
    fields = {}
    for key, kind in FIELDS.items():
        if key not in meta:
            continue
        value = meta[key]
        fields[key] = tuple(value) if kind in ("strs", "ints") else value
    return Design(
        frame=frame,
        factors=ranges,
        units={f["name"]: f.get("unit") for f in meta["factors"]},
        kind=meta["kind"],
        **fields,
    )

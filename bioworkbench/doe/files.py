"""Designs from files for the lab: CSV with a YAML sidecar, and Excel workbooks (the reading half).

CSV: ``plan.csv`` holds the run table; the design's facts (factors, ranges, units, kind, seed,
generators, …) go to the sidecar ``plan.design.yaml`` next to it. A sidecar rather than a commented
header because spreadsheet programs mangle comment lines when the lab opens and saves the CSV.

Excel: one workbook with a "design" sheet (the run table) and an "about" sheet (the facts as
``key | value`` rows, lists one item per line, then a table of factors with letters, ranges and units).

:func:`read_design` reads either back into a :class:`Design` (exactly what was written), keeps any
columns the lab added (responses such as ``titer``), and checks every run: numbers where numbers
belong, standard and run orders complete, and natural and coded settings that still agree.

Planned versus actual: real runs deviate from the plan (the lab sets pH 7.0 and measures 6.95). The
lab records the measured setting in a ``<factor>_actual`` column (an empty cell: run as planned), or,
with ``read_design(path, allow_actual=True)``, overwrites the natural cell and leaves the coded cell as
the plan. Either way the design that comes back describes the runs **as performed**: ``<factor>`` holds
the actual setting and ``<factor>_coded`` its coding, so every analysis of ``design.frame`` (the response
surface, the classical analysis) uses what was run, while ``<factor>_planned`` keeps the plan and
:func:`deviations` tabulates the differences. Coded columns the lab deleted are recomputed from the
natural ones (and a note says so).

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

from bioworkbench.doe.design import DESIGN_KINDS, ID_COLUMNS, POINT_TYPES, Design, sig15
from bioworkbench.doe.writing import FACTOR_HEADER, FIELDS, FORMAT, sidecar_path, write_csv, write_excel
from bioworkbench.errors import DataReadError, Issue, SchemaError

__all__ = ["deviations", "read_design", "sidecar_path", "write_csv", "write_excel"]

_TOL = 1e-9  # coded units; generated values carry 15 significant digits
ACTUAL_SUFFIX = "_actual"
PLANNED_SUFFIX = "_planned"


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
def read_design(path: str | os.PathLike, *, allow_actual: bool = False) -> Design:
    """Read a design written by :meth:`Design.to_csv` or :meth:`Design.to_excel` back into a :class:`Design`.

    Parameters
    ----------
    path
        ``.csv`` (with its ``.design.yaml`` sidecar) or ``.xlsx``.
    allow_actual
        Accept natural settings that no longer match their coded cells as the **measured** settings
        (the coded cells are then the plan). Default ``False``: such a run is an error, because a
        changed cell may be a typo; record measured settings in ``<factor>_actual`` columns instead.

    Returns
    -------
    Design
        Equal to the design that was written when the lab changed no setting; columns the lab added
        (responses) are kept after the coded columns, and rows are sorted by run order. When the file
        carries actual settings (``<factor>_actual`` columns, or changed natural cells with
        ``allow_actual=True``), ``<factor>`` and ``<factor>_coded`` hold the settings as run and a
        ``<factor>_planned`` column per factor the plan (see :func:`deviations`); settings outside the
        studied range are named in ``notes``. Deleted coded columns are recomputed (a note says so).

    Raises
    ------
    DataReadError
        A missing file or sidecar, an unsupported suffix, a workbook without "design"/"about" sheets.
    SchemaError
        Missing design columns; a cell that is not a number where one belongs; standard or run orders
        with gaps or repeats; an unknown point type; natural and coded settings of a run that no longer
        agree (a changed cell; see ``allow_actual``); an ``_actual`` cell that is not a number. Each
        problem names the file, line, column and run.
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
    return _build(path, meta, columns, extra, allow_actual=bool(allow_actual))


def _design_columns(meta: dict[str, Any]) -> list[str]:
    """The columns read as design columns: ids, natural, coded, and the optional actual and planned settings."""
    names = [f["name"] for f in meta["factors"]]
    return [
        *ID_COLUMNS,
        *names,
        *(f"{n}_coded" for n in names),
        *(f"{n}{ACTUAL_SUFFIX}" for n in names),
        *(f"{n}{PLANNED_SUFFIX}" for n in names),
    ]


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


def _build(
    path: Path,
    meta: dict[str, Any],
    columns: dict[str, list],
    extra: dict[str, pl.Series],
    *,
    allow_actual: bool = False,
) -> Design:
    """Check every run and assemble the :class:`Design` (settings as run; see the module docstring)."""
    file = str(path)
    ranges = {f["name"]: (float(f["low"]), float(f["high"])) for f in meta["factors"]}
    names = list(ranges)
    needed = [*ID_COLUMNS, *names]
    missing = [c for c in needed if c not in columns]
    if missing:
        raise SchemaError(
            [
                Issue("missing design column; it was written with the design and must stay.", file=file, column=c)
                for c in missing
            ]
        )
    optional = [c for n in names for c in (f"{n}_coded", f"{n}{ACTUAL_SUFFIX}", f"{n}{PLANNED_SUFFIX}") if c in columns]
    n = len(columns["std_order"])
    runs = [columns["run_order"][i] for i in range(n)]
    issues: list[Issue] = []
    parsed: dict[str, list] = {}
    for c in [*needed, *optional]:
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
        blank_ok = c.endswith((ACTUAL_SUFFIX, PLANNED_SUFFIX, "_coded"))  # empty: as planned / recomputed
        parsed[c] = [_number(v, integer=integer) for v in columns[c]]
        for i, v in enumerate(parsed[c]):
            if v is None and not (blank_ok and _blank(columns[c][i])):
                what = "a whole number" if integer else "a number"
                hint = (
                    "record the measured setting as a number (an empty cell means: run as planned)."
                    if c.endswith(ACTUAL_SUFFIX)
                    else None
                )
                issues.append(
                    Issue(
                        f"run {runs[i]}: expected {what}, found {columns[c][i]!r}.",
                        file=file,
                        line=i + 2,
                        column=c,
                        hint=hint,
                    )
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
    planned, actual = _planned_actual(ranges, parsed, columns, runs, issues, file=file, allow_actual=allow_actual)
    recomputed = [name for name in names if f"{name}_coded" not in columns]
    if issues:
        raise SchemaError(issues)
    has_actual = any(f"{n_}{c}" in columns for n_ in names for c in (ACTUAL_SUFFIX, PLANNED_SUFFIX)) or any(
        a != p for name in names for a, p in zip(actual[name], planned[name], strict=True)
    )
    cols: dict[str, pl.Series] = {
        "std_order": pl.Series("std_order", parsed["std_order"], dtype=pl.Int64),
        "run_order": pl.Series("run_order", parsed["run_order"], dtype=pl.Int64),
        "block": pl.Series("block", parsed["block"], dtype=pl.Int64),
        "point_type": pl.Series("point_type", parsed["point_type"], dtype=pl.String),
    }
    notes = _setting_columns(cols, ranges, parsed, planned, actual, runs)
    if has_actual:
        for name in names:
            cols[f"{name}{PLANNED_SUFFIX}"] = pl.Series(f"{name}{PLANNED_SUFFIX}", planned[name], dtype=pl.Float64)
    if recomputed:
        notes.append(
            f"coded column(s) {', '.join(f'{r}_coded' for r in recomputed)} were not in {path.name}; "
            "recomputed from the natural settings."
        )
    cols.update({c: s.alias(c) for c, s in extra.items()})
    frame = pl.DataFrame(list(cols.values())).sort("run_order")
    fields = {k: tuple(meta[k]) if kind in ("strs", "ints") else meta[k] for k, kind in FIELDS.items() if k in meta}
    if notes:
        kept = [t for t in fields.get("notes", ()) if t not in notes]
        fields["notes"] = (*kept, *notes)
    return Design(
        frame=frame,
        factors=ranges,
        units={f["name"]: f.get("unit") for f in meta["factors"]},
        kind=meta["kind"],
        **fields,
    )


def _planned_actual(
    ranges: dict[str, tuple[float, float]],
    parsed: dict[str, list],
    columns: dict[str, list],
    runs: list[Any],
    issues: list[Issue],
    *,
    file: str,
    allow_actual: bool,
) -> tuple[dict[str, list[float | None]], dict[str, list[float | None]]]:
    """Planned and actual setting of every run and factor (see the module docstring); appends to ``issues``
    every run whose natural and coded settings disagree when that is not read as a measured setting."""
    n = len(parsed["std_order"])
    planned: dict[str, list[float | None]] = {}
    actual: dict[str, list[float | None]] = {}
    for name, (lo, hi) in ranges.items():
        mid, half = (lo + hi) / 2, (hi - lo) / 2
        nat = parsed[name]
        coded = parsed.get(f"{name}_coded", [None] * n)
        act = parsed.get(f"{name}{ACTUAL_SUFFIX}")
        plan = parsed.get(f"{name}{PLANNED_SUFFIX}")
        # the lab overwrote the natural cell with the measured setting: the coded cell is the plan
        overwritten = allow_actual and act is None and plan is None
        planned[name], actual[name] = [], []
        for i in range(n):
            x, xc = nat[i], coded[i]
            if x is None:
                planned[name].append(None)
                actual[name].append(None)
                continue
            agree = xc is None or abs((x - mid) / half - xc) <= _TOL * max(1.0, abs(xc))
            if overwritten:
                planned[name].append(x if agree else float(sig15(mid + half * xc)))
                actual[name].append(x)
                continue
            if not agree:
                issues.append(
                    Issue(
                        f"run {runs[i]} (std_order {parsed['std_order'][i]}): {name} = {x:g} is coded "
                        f"{(x - mid) / half:.6g}, but {name}_coded = {xc:g} means {name} = {mid + half * xc:.6g}; "
                        "one of the two cells was changed.",
                        file=file,
                        line=i + 2,
                        column=name,
                        hint=f"expected {name}_coded = ({name} − {mid:g}) / {half:g}; restore the designed value. "
                        f"A measured setting that differs from the plan goes in a column {name}{ACTUAL_SUFFIX} "
                        "(or read with allow_actual=True to take the natural cells as measured).",
                    )
                )
            if plan is not None:  # a design read back earlier and written again: natural = as run
                planned[name].append(x if plan[i] is None else plan[i])
                actual[name].append(x)
            else:
                planned[name].append(x)
                actual[name].append(x if act is None or act[i] is None else act[i])
    return planned, actual


def _setting_columns(
    cols: dict[str, pl.Series],
    ranges: dict[str, tuple[float, float]],
    parsed: dict[str, list],
    planned: dict[str, list[float | None]],
    actual: dict[str, list[float | None]],
    runs: list[Any],
) -> list[str]:
    """Add the natural (as run) and coded columns to ``cols``; return notes on settings run outside the ranges."""
    n = len(parsed["std_order"])
    notes: list[str] = []
    for name in ranges:
        cols[name] = pl.Series(name, actual[name], dtype=pl.Float64)
    for name, (lo, hi) in ranges.items():
        coded = parsed.get(f"{name}_coded", [None] * n)
        mid, half = (lo + hi) / 2, (hi - lo) / 2
        values = [
            xc if (xc is not None and a == p) else (None if a is None else sig15((a - mid) / half) + 0.0)
            for a, p, xc in zip(actual[name], planned[name], coded, strict=True)
        ]
        cols[f"{name}_coded"] = pl.Series(f"{name}_coded", values, dtype=pl.Float64)
        out = [
            (runs[i], a)
            for i, (a, p) in enumerate(zip(actual[name], planned[name], strict=True))
            if a is not None and a != p and not lo <= a <= hi  # a planned axial point outside is in the plan's notes
        ]
        if out:
            shown = ", ".join(f"run {r}: {a:g}" for r, a in out[:10]) + (" …" if len(out) > 10 else "")
            notes.append(
                f"{name} was run outside its studied range {lo:g}–{hi:g} in {len(out)} run(s) ({shown}); "
                "predictions there extrapolate."
            )
    return notes


def _blank(value: Any) -> bool:
    """An empty cell (``None`` from Excel and CSV; blank text from a CSV read as strings)."""
    return value is None or (isinstance(value, str) and not value.strip())


def deviations(design: Design) -> pl.DataFrame:
    """Planned versus actual settings: one row per run and factor whose setting as run differs from the plan.

    Parameters
    ----------
    design
        A design read by :func:`read_design` from a file with actual settings (``<factor>_planned``
        columns beside the settings as run); any other design has no deviations.

    Returns
    -------
    polars.DataFrame
        ``run_order, std_order, block, factor, planned, actual, deviation, relative, outside_range``,
        sorted by run order and factor order; empty (same columns) when every run followed the plan.

    Notes
    -----
    ``deviation = actual − planned`` (the factor's unit); ``relative = deviation / (high − low)``, the
    deviation as a fraction of the studied range (0.125 = an eighth of the range, i.e. a quarter of a
    coded unit); ``outside_range``: the actual setting lies outside ``[low, high]``. A model fitted on
    ``design.frame`` uses the actual settings, so deviations cost no bias, only a little precision
    (the design is no longer exactly the one optimised); large relative deviations change which
    effects the runs can separate (check the design's correlation of terms again).
    """
    schema = {
        "run_order": pl.Int64,
        "std_order": pl.Int64,
        "block": pl.Int64,
        "factor": pl.String,
        "planned": pl.Float64,
        "actual": pl.Float64,
        "deviation": pl.Float64,
        "relative": pl.Float64,
        "outside_range": pl.Boolean,
    }
    frame = design.frame
    parts = []
    for name, (lo, hi) in design.factors.items():
        col = f"{name}{PLANNED_SUFFIX}"
        if col not in frame.columns:
            continue
        parts.append(
            frame.select(
                "run_order",
                "std_order",
                "block",
                factor=pl.lit(name),
                planned=pl.col(col),
                actual=pl.col(name),
            )
            .with_columns(deviation=pl.col("actual") - pl.col("planned"))
            .with_columns(
                relative=pl.col("deviation") / (hi - lo),
                outside_range=~pl.col("actual").is_between(lo, hi),
            )
            .filter(pl.col("deviation").abs() > _TOL * (hi - lo))
        )
    if not parts:
        return pl.DataFrame(schema=schema)
    order = {n: i for i, n in enumerate(design.factors)}
    out = pl.concat(parts).cast(schema)
    return out.sort(["run_order", pl.col("factor").replace_strict(order, return_dtype=pl.Int64)])

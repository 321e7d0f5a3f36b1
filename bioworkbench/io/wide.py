"""Wide bioreactor exports: one row per sample time, one column per variable, read via a column map.

A *column map* is a small YAML file the user writes once per export format. It says which column
holds the batch and the time, which variable (and unit) every other column is, which columns carry
sample, feed or base volumes, which columns are knowingly ignored, and where the batch metadata
comes from. Bundled examples (``bw.io.column_map("ambr250")``, ``"nistcho"``) read the real
campaigns in ``shared/data``; see ``bioworkbench/io/maps/*.yaml`` for the full syntax.

Every cell keeps its lineage: ``source_file`` and ``source_line`` (the line of a CSV file, or the
row number of a spreadsheet, header = row 1).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import polars as pl

from bioworkbench.errors import ConfigError, DataReadError, Issue, SchemaError
from bioworkbench.io.tidy import flag_values, read_table
from bioworkbench.schema import FRAMES, SOURCES, registry, suggest
from bioworkbench.units import conversion, to_canonical

__all__ = ["ColumnMap", "column_map", "read_wide", "split_header"]

_HEADER_UNIT = re.compile(r"^(?P<name>.*?)\s*[\[(](?P<unit>[^\[\]()]+)[\])]\s*$")
_TIME_UNITS = ("h", "d", "min", "s", "timestamp")
_MAP_KEYS = {
    "name",
    "description",
    "source",
    "read",
    "batch",
    "time",
    "columns",
    "events",
    "ignore",
    "batches",
    "media",
}


def split_header(header: str) -> tuple[str, str | None]:
    """``"Glucose [g/L]"`` -> ``("Glucose", "g/L")``; a header without a unit gives ``None``."""
    m = _HEADER_UNIT.match(header.strip())
    if m:
        return m.group("name").strip(), m.group("unit").strip()
    return header.strip(), None


@dataclass(frozen=True)
class ColumnSpec:
    header: str
    variable: str
    unit: str | None
    source: str


@dataclass(frozen=True)
class EventSpec:
    column: str
    event: str
    unit: str
    medium: str | None
    cumulative: bool


@dataclass
class ColumnMap:
    """A parsed, checked column map (see the module docstring and the bundled YAML examples)."""

    name: str
    path: str | None
    batch: dict[str, Any]
    time: dict[str, Any]
    columns: list[ColumnSpec]
    events: list[EventSpec] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    read: dict[str, Any] = field(default_factory=dict)
    batches: dict[str, Any] | None = None
    media: list[dict[str, Any]] = field(default_factory=list)
    description: str = ""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, path: str | None = None) -> ColumnMap:
        where = path or "column map"
        problems: list[Issue] = []

        def bad(msg: str, hint: str | None = None) -> None:
            problems.append(Issue(msg, file=path, hint=hint))

        unknown = set(raw) - _MAP_KEYS
        for key in sorted(unknown):
            bad(f"unknown key {key!r}.", suggest(key, _MAP_KEYS, what="Valid keys"))
        batch = raw.get("batch") or {}
        if not isinstance(batch, Mapping) or not ({"column", "template", "from_filename", "value"} & set(batch)):
            bad(
                "'batch' must say where the batch id comes from: column, template, from_filename "
                "(a regex with a group named 'batch') or value."
            )
            batch = {}
        time = raw.get("time") or {}
        if not isinstance(time, Mapping) or "column" not in time:
            bad("'time' needs a 'column' (and a 'unit': h, d, min, s or timestamp).")
            time = {}
        elif time.get("unit", "h") not in _TIME_UNITS:
            bad(f"time unit {time.get('unit')!r} is not supported; use one of {', '.join(_TIME_UNITS)}.")
        default_source = raw.get("source", "offline")
        if default_source not in SOURCES:
            bad(f"source {default_source!r} is not one of {', '.join(SOURCES)}.")
        reg = registry()
        columns: list[ColumnSpec] = []
        for header, spec in (raw.get("columns") or {}).items():
            if isinstance(spec, str):
                spec = {"variable": spec}
            if not isinstance(spec, Mapping) or "variable" not in spec:
                bad(f"column {header!r}: give a variable name or {{variable: ..., unit: ...}}.")
                continue
            var = spec["variable"]
            if var not in reg:
                bad(
                    f"column {header!r} maps to unknown variable {var!r}.",
                    suggest(var, reg) + " Register new ones with bw.register_variable().",
                )
                continue
            unit = spec.get("unit") or split_header(str(header))[1]
            if unit is None:
                bad(
                    f"column {header!r} ({var}) has no unit in its header and none in the map; "
                    f"add 'unit:' (canonical: {reg[var].unit}).",
                )
                continue
            columns.append(ColumnSpec(str(header), var, str(unit), spec.get("source", default_source)))
        if not columns:
            bad("'columns' maps no column to a variable.")
        events: list[EventSpec] = []
        for spec in raw.get("events") or []:
            if not isinstance(spec, Mapping) or "column" not in spec or "event" not in spec:
                bad(f"event spec {spec!r}: needs 'column' and 'event'.")
                continue
            unit = spec.get("unit") or split_header(str(spec["column"]))[1]
            if unit is None:
                bad(f"event column {spec['column']!r} has no unit; add 'unit: mL'.")
                continue
            if spec["event"] not in ("sample", "feed", "bolus", "base", "harvest"):
                bad(f"event column {spec['column']!r}: event {spec['event']!r} is not a volume event.")
                continue
            events.append(
                EventSpec(
                    str(spec["column"]),
                    spec["event"],
                    str(unit),
                    spec.get("medium"),
                    bool(spec.get("cumulative", False)),
                )
            )
        if problems:
            raise ConfigError(SchemaError(problems, context=where).args[0])
        return cls(
            name=str(raw.get("name", Path(path).stem if path else "column map")),
            path=path,
            batch=dict(batch),
            time=dict(time),
            columns=columns,
            events=events,
            ignore=[str(x) for x in raw.get("ignore") or []],
            read=dict(raw.get("read") or {}),
            batches=dict(raw["batches"]) if raw.get("batches") else None,
            media=list(raw.get("media") or []),
            description=str(raw.get("description", "")),
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> ColumnMap:
        import yaml

        path = Path(path)
        if not path.exists():
            raise ConfigError(f"column map {path} not found.")
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc}).") from None
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{path}: a column map is a YAML mapping; found {type(raw).__name__}.")
        return cls.from_dict(raw, path=str(path))

    def is_ignored(self, header: str) -> bool:
        return any(header == pat or re.fullmatch(pat, header) for pat in self.ignore)

    def used_columns(self) -> set[str]:
        used = {c.header for c in self.columns} | {e.column for e in self.events}
        used.add(self.time.get("column", ""))
        if "column" in self.batch:
            used.add(self.batch["column"])
        used |= set(re.findall(r"{([^{}]+)}", self.batch.get("template", "")))
        return used


def column_map(name_or_path: str | os.PathLike | Mapping[str, Any] | ColumnMap) -> ColumnMap:
    """Load a column map: a bundled name (``"ambr250"``, ``"nistcho"``), a YAML path or a dict."""
    if isinstance(name_or_path, ColumnMap):
        return name_or_path
    if isinstance(name_or_path, Mapping):
        return ColumnMap.from_dict(name_or_path)
    text = str(name_or_path)
    bundled = resources.files("bioworkbench.io").joinpath("maps", f"{text}.yaml")
    if not text.endswith((".yaml", ".yml")) and bundled.is_file():
        with resources.as_file(bundled) as p:
            return ColumnMap.load(p)
    if not Path(text).exists():
        names = sorted(
            p.name.removesuffix(".yaml")
            for p in resources.files("bioworkbench.io").joinpath("maps").iterdir()
            if p.name.endswith(".yaml")
        )
        raise ConfigError(
            f"column map {text!r} is neither a file nor a bundled map. " + suggest(text, names, what="Bundled maps")
        )
    return ColumnMap.load(text)


def read_wide(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    column_map: str | os.PathLike | Mapping[str, Any] | ColumnMap,
    *,
    batches: pl.DataFrame | str | os.PathLike | None = None,
    media: pl.DataFrame | None = None,
    on_invalid: Literal["raise", "flag"] = "raise",
    name: str | None = None,
    description: str | None = None,
) -> Any:
    """Read wide bioreactor exports (CSV or Excel) into a :class:`~bioworkbench.Campaign`.

    Parameters
    ----------
    paths
        One file per batch or one file per campaign (or several of either).
    column_map
        A bundled map name, a YAML file or a dict: see :class:`ColumnMap`.
    batches
        Batch metadata (a frame or a file); by default taken from the map's ``batches`` section,
        else one row per batch id found, with nothing else known.
    media
        Media compositions (a frame in any convertible unit); by default the map's ``media``.
    on_invalid
        ``"raise"`` (default) or ``"flag"``: what to do with physically impossible values.

    Returns
    -------
    Campaign

    Raises
    ------
    DataReadError
        A file that cannot be read.
    SchemaError
        Every problem in every file: mapped columns missing, unmapped columns, unreadable numbers,
        units that cannot be converted, time going backwards within a batch, duplicate
        (batch, time, variable) rows, impossible values, with file, line, column and batch.

    Notes
    -----
    Cumulative volume columns (``cumulative: true``, e.g. total feed added so far) become one
    event per sampling interval at the interval's midpoint, with the increment as its volume: the
    mass balance over an interval only needs what entered between its two samples. Samples
    are taken before additions at the same time (the campaign convention).
    """
    from bioworkbench.campaign import Campaign, sha256_file

    cmap = column_map_fn(column_map)
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise DataReadError("read_wide: no files given.")
    issues: list[Issue] = []
    obs_parts, ev_parts, rows_parts = [], [], []
    for path in paths:
        df, first_line = read_table(
            path,
            separator=cmap.read.get("separator", ","),
            decimal_comma=bool(cmap.read.get("decimal_comma", False)),
            sheet=cmap.read.get("sheet"),
            encoding=cmap.read.get("encoding", "utf8"),
        )
        df = df.rename({c: str(c).strip() for c in df.columns})
        found = _check_columns(df, cmap, path)
        if found:
            issues.extend(found)
            continue
        df = df.with_row_index("_line", offset=first_line)
        df, found = _batch_and_time(df, cmap, path)
        issues.extend(found)
        if found:
            continue
        obs, found = _melt(df, cmap, path)
        issues.extend(found)
        ev, found = _events(df, cmap, path)
        issues.extend(found)
        obs_parts.append(obs)
        ev_parts.append(ev)
        rows_parts.append(df)
    if issues:
        raise SchemaError(issues, context=str(paths[0]) if len(paths) == 1 else None)
    obs = pl.concat(obs_parts, how="vertical_relaxed")
    obs, found = to_canonical(obs, line_col="source_line")
    issues.extend(found)
    obs, found = flag_values(obs, on_invalid=on_invalid)
    issues.extend(found)
    events = pl.concat(ev_parts, how="vertical_relaxed") if ev_parts else None
    if media is None and cmap.media:
        media = pl.DataFrame(cmap.media)
    if media is not None:
        media = media.with_columns(pl.col("concentration").cast(pl.Float64))
        media, found = to_canonical(media, value_col="concentration", file=cmap.path)
        issues.extend(found)
    batch_frame, found = _batches(pl.concat(rows_parts, how="diagonal_relaxed"), cmap, batches, paths[0])
    issues.extend(found)
    if issues:
        raise SchemaError(issues)
    sources = {str(p): sha256_file(p) for p in paths}
    if cmap.path:
        sources[cmap.path] = sha256_file(cmap.path)
    if isinstance(cmap.batches, Mapping) and cmap.batches.get("file"):
        meta_path = paths[0].parent / cmap.batches["file"]
        if meta_path.exists():
            sources[str(meta_path)] = sha256_file(meta_path)
    return Campaign(
        batches=batch_frame,
        observations=obs,
        events=events,
        media=media,
        name=name or cmap.name,
        description=description if description is not None else cmap.description,
        sources=sources,
    )


column_map_fn = column_map


def _check_columns(df: pl.DataFrame, cmap: ColumnMap, path: Path) -> list[Issue]:
    issues = []
    used = cmap.used_columns() - {""}
    for col in sorted(used - set(df.columns)):
        issues.append(
            Issue(
                f"column {col!r} named in the column map {cmap.name!r} is not in the file.",
                file=str(path),
                line=1,
                column=col,
                hint=suggest(col, df.columns, what="Columns in the file"),
            )
        )
    for col in df.columns:
        if col not in used and not cmap.is_ignored(col):
            issues.append(
                Issue(
                    f"column {col!r} is not in the column map {cmap.name!r}.",
                    file=str(path),
                    line=1,
                    column=col,
                    hint="map it to a variable under 'columns:' or list it under 'ignore:'.",
                )
            )
    return issues


def _batch_and_time(df: pl.DataFrame, cmap: ColumnMap, path: Path) -> tuple[pl.DataFrame, list[Issue]]:
    issues: list[Issue] = []
    b = cmap.batch
    prefix = str(b.get("prefix", ""))
    if "column" in b:
        bid = pl.col(b["column"]).cast(pl.String).str.strip_chars()
    elif "template" in b:
        parts = re.split(r"({[^{}]+})", b["template"])
        bid = pl.concat_str(
            [pl.col(p[1:-1]).cast(pl.String).str.strip_chars() if p.startswith("{") else pl.lit(p) for p in parts if p]
        )
    elif "from_filename" in b:
        m = re.search(b["from_filename"], path.name)
        if not m or "batch" not in m.groupdict():
            return df, [
                Issue(
                    f"cannot find the batch id in the file name with pattern {b['from_filename']!r}"
                    " (it needs a group named 'batch').",
                    file=str(path),
                )
            ]
        bid = pl.lit(m.group("batch"))
    else:
        bid = pl.lit(str(b["value"]))
    df = df.with_columns((pl.lit(prefix) + bid).alias("_batch"))
    for row in df.filter(pl.col("_batch").is_null()).head(20).iter_rows(named=True):
        issues.append(
            Issue(
                "no batch id on this row.",
                file=str(path),
                line=row["_line"],
                column=b.get("column"),
            )
        )
    t = cmap.time
    col, unit = t["column"], t.get("unit", "h")
    raw = df[col]
    if unit == "timestamp":
        ts = _parse_timestamps(raw, t.get("format"))
        inoc = t.get("inoculation", "first")
        if inoc == "first":
            tmp = df.with_columns(_ts=ts).with_columns(_t0=pl.col("_ts").min().over("_batch"))
        elif isinstance(inoc, Mapping) and "column" in inoc:
            tmp = df.with_columns(_ts=ts, _t0=_parse_timestamps(df[inoc["column"]], t.get("format")))
        else:
            tmp = df.with_columns(_ts=ts, _t0=pl.lit(inoc).str.to_datetime(time_zone="UTC"))
        hours = (pl.col("_ts") - pl.col("_t0")).dt.total_microseconds() / 3.6e9
        df = tmp.with_columns(_time_h=hours).drop("_ts", "_t0")
        bad = df["_time_h"].is_null() & raw.is_not_null()
    else:
        num = (
            raw.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
            if raw.dtype == pl.String
            else raw.cast(pl.Float64, strict=False)
        )
        scale, _ = conversion(unit, "h")
        df = df.with_columns(_time_h=num * scale)
        bad = df["_time_h"].is_null() & raw.is_not_null()
    for row in df.filter(bad).head(20).iter_rows(named=True):
        issues.append(
            Issue(
                f"time {row[col]!r} is not readable as "
                f"{'a timestamp' if unit == 'timestamp' else 'a number of ' + unit}.",
                file=str(path),
                line=row["_line"],
                column=col,
                batch=row["_batch"],
            )
        )
    missing_t = df.filter(pl.col("_time_h").is_null() & raw.is_null())
    for row in missing_t.head(20).iter_rows(named=True):
        issues.append(Issue("time is empty.", file=str(path), line=row["_line"], column=col, batch=row["_batch"]))
    # time going backwards within a batch, in file order
    back = df.with_columns(_prev=pl.col("_time_h").shift(1).over("_batch")).filter(pl.col("_time_h") < pl.col("_prev"))
    for row in back.head(20).iter_rows(named=True):
        issues.append(
            Issue(
                f"time goes backwards: {row['_time_h']:g} h after {row['_prev']:g} h in the row before for this batch.",
                file=str(path),
                line=row["_line"],
                column=col,
                batch=row["_batch"],
                hint="rows of a batch must be in time order; check for a pasted or mis-typed time.",
            )
        )
    return df, issues


def _parse_timestamps(s: pl.Series, fmt: str | None) -> pl.Series:
    if s.dtype == pl.String:
        return s.str.strip_chars().str.to_datetime(format=fmt, time_zone="UTC", strict=False, time_unit="us")
    if isinstance(s.dtype, pl.Datetime):
        return s.dt.replace_time_zone("UTC") if s.dtype.time_zone is None else s.dt.convert_time_zone("UTC")
    if s.dtype == pl.Date:
        return s.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    return s.cast(pl.String).str.to_datetime(format=fmt, time_zone="UTC", strict=False, time_unit="us")


def _melt(df: pl.DataFrame, cmap: ColumnMap, path: Path) -> tuple[pl.DataFrame, list[Issue]]:
    issues: list[Issue] = []
    parts = []
    for spec in cmap.columns:
        s = df[spec.header]
        if s.dtype == pl.String:
            txt = s.str.strip_chars()
            val = txt.cast(pl.Float64, strict=False)
            bad = txt.is_not_null() & (txt != "") & val.is_null()
        else:
            val = s.cast(pl.Float64, strict=False)
            bad = s.is_not_null() & val.is_null()
        if bad.any():
            for row in df.filter(bad).head(20).iter_rows(named=True):
                v = str(row[spec.header])
                hint = (
                    "the file uses decimal commas; set read: {decimal_comma: true} in the map."
                    if re.fullmatch(r"-?\d+,\d+", v.strip())
                    else None
                )
                issues.append(
                    Issue(
                        f"expected a number for {spec.variable}, found {v!r}.",
                        file=str(path),
                        line=row["_line"],
                        column=spec.header,
                        batch=row["_batch"],
                        hint=hint,
                    )
                )
        parts.append(
            pl.DataFrame(
                {
                    "batch_id": df["_batch"],
                    "time_h": df["_time_h"],
                    "variable": pl.Series([spec.variable] * df.height, dtype=pl.String),
                    "value": val,
                    "unit": pl.Series([spec.unit] * df.height, dtype=pl.String),
                    "source": pl.Series([spec.source] * df.height, dtype=pl.String),
                    "source_line": df["_line"].cast(pl.Int64),
                    "_present": s.is_not_null() & ~(s.cast(pl.String).str.strip_chars() == "").fill_null(False),
                }
            )
        )
    obs = (
        pl.concat(parts)
        .filter(pl.col("_present"))
        .drop("_present")
        .with_columns(
            flag=pl.lit(None, dtype=pl.String),
            flag_reason=pl.lit(None, dtype=pl.String),
            source_file=pl.lit(str(path)),
        )
        .select([c.name for c in FRAMES["observations"]])
    )
    return obs, issues


def _events(df: pl.DataFrame, cmap: ColumnMap, path: Path) -> tuple[pl.DataFrame, list[Issue]]:
    issues: list[Issue] = []
    parts = []
    for spec in cmap.events:
        s = df[spec.column]
        val = (
            s.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
            if s.dtype == pl.String
            else s.cast(pl.Float64, strict=False)
        )
        try:
            scale, _ = conversion(spec.unit, "mL")
        except ConfigError as exc:
            issues.append(Issue(f"volume unit: {exc}", file=str(path), column=spec.column))
            continue
        x = df.select("_batch", "_time_h", "_line").with_columns(_v=val * scale).filter(pl.col("_v").is_not_null())
        if spec.cumulative:
            x = x.sort("_batch", "_time_h", maintain_order=True).with_columns(
                _prev_v=pl.col("_v").shift(1, fill_value=0.0).over("_batch"),
                _prev_t=pl.col("_time_h").shift(1, fill_value=0.0).over("_batch"),
            )
            for row in x.filter(pl.col("_v") < pl.col("_prev_v") - 1e-9).head(20).iter_rows(named=True):
                issues.append(
                    Issue(
                        f"cumulative {spec.event} volume decreases ({row['_prev_v']:g} -> {row['_v']:g} mL).",
                        file=str(path),
                        line=row["_line"],
                        column=spec.column,
                        batch=row["_batch"],
                    )
                )
            ev = x.filter(pl.col("_v") > pl.col("_prev_v")).select(
                batch_id="_batch",
                time_h=(pl.col("_prev_t") + pl.col("_time_h")) / 2,
                event=pl.lit(spec.event),
                volume_ml=pl.col("_v") - pl.col("_prev_v"),
                medium=pl.lit(spec.medium, dtype=pl.String),
                note=pl.format(
                    "{} added between {} h and {} h (from cumulative column '{}', {} line {})",
                    pl.lit(spec.event),
                    pl.col("_prev_t").round(3),
                    pl.col("_time_h").round(3),
                    pl.lit(spec.column),
                    pl.lit(path.name),
                    pl.col("_line"),
                ),
            )
        else:
            bad = x.filter(pl.col("_v") < 0)
            for row in bad.head(20).iter_rows(named=True):
                issues.append(
                    Issue(
                        f"{spec.event} volume {row['_v']:g} mL is negative.",
                        file=str(path),
                        line=row["_line"],
                        column=spec.column,
                        batch=row["_batch"],
                    )
                )
            ev = x.filter(pl.col("_v") > 0).select(
                batch_id="_batch",
                time_h="_time_h",
                event=pl.lit(spec.event),
                volume_ml="_v",
                medium=pl.lit(spec.medium, dtype=pl.String),
                note=pl.format("{} line {}", pl.lit(path.name), pl.col("_line")),
            )
        parts.append(ev)
    if not parts:
        return pl.DataFrame(schema={c.name: c.dtype for c in FRAMES["events"]}), issues
    return pl.concat(parts, how="vertical_relaxed"), issues


def _batches(rows: pl.DataFrame, cmap: ColumnMap, batches: Any, first_path: Path) -> tuple[pl.DataFrame, list[Issue]]:
    ids = rows.select(batch_id="_batch").unique(maintain_order=True)
    if isinstance(batches, pl.DataFrame):
        return batches, []
    if batches is not None:
        df, _ = read_table(batches)
        return df, []
    spec = cmap.batches
    if not spec:
        return ids, []
    issues: list[Issue] = []
    src_name = spec.get("file")
    if src_name:
        meta_path = first_path.parent / src_name
        meta, _ = read_table(meta_path, sheet=spec.get("sheet"))
        key = spec.get("key")
        if key not in meta.columns:
            return ids, [
                Issue(
                    f"batches key column {key!r} not in {meta_path}.",
                    file=str(meta_path),
                    line=1,
                    hint=suggest(key, meta.columns, what="Columns"),
                )
            ]
        prefix = str(cmap.batch.get("prefix", ""))
        meta = meta.with_columns((pl.lit(prefix) + pl.col(key).cast(pl.String).str.strip_chars()).alias("_batch"))
        missing = ids.filter(~pl.col("batch_id").is_in(meta["_batch"].implode()))
        for b in missing["batch_id"].to_list():
            issues.append(
                Issue(
                    f"batch {b!r} has data but no row in {meta_path.name}.",
                    file=str(meta_path),
                    column=key,
                    batch=b,
                )
            )
        base = meta
    else:
        # metadata from the data rows themselves: first row of each batch
        base = rows.sort("_batch", "_time_h").unique("_batch", keep="first", maintain_order=True)
    exprs = [pl.col("_batch").alias("batch_id")]
    for target, src in (spec.get("columns") or {}).items():
        if isinstance(src, str):
            src = {"column": src}
        if "value" in src:
            exprs.append(pl.lit(src["value"]).alias(target))
            continue
        col = src.get("column")
        if col not in base.columns:
            issues.append(
                Issue(
                    f"batches column {col!r} (for {target}) not found.",
                    file=src_name or str(first_path),
                    line=1,
                    hint=suggest(col, base.columns, what="Columns"),
                )
            )
            continue
        e = pl.col(col)
        if "format" in src:
            e = e.cast(pl.String).str.to_datetime(format=src["format"], time_zone="UTC", strict=False)
        elif "unit" in src and target == "initial_volume_ml":
            scale, _ = conversion(src["unit"], "mL")
            e = e.cast(pl.Float64) * scale
        exprs.append(e.alias(target))
    if issues:
        return ids, issues
    out = base.select(exprs)
    return ids.join(out, on="batch_id", how="left", maintain_order="left"), []

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

import math
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
from bioworkbench.units import conversion, parse_unit, to_canonical

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


_SECTION_KEYS = {
    "batch": ("column", "template", "from_filename", "value", "prefix"),
    "time": ("column", "unit", "format", "inoculation", "timezone"),
    "read": ("separator", "decimal_comma", "sheet", "encoding"),
    "batches": ("file", "sheet", "key", "columns"),
}
_CONTRADICTION_HINT = (
    "remove 'unit:' from the map to use the header's unit, or correct whichever of the two is wrong; "
    "a map unit never silently overrides a header unit."
)


def _compile(pattern: Any, where: str, bad) -> re.Pattern | None:
    """``pattern`` compiled, or ``None`` after reporting why it is not a regular expression."""
    try:
        return re.compile(str(pattern))
    except re.error as exc:
        bad(
            f"{where}: {str(pattern)!r} is not a valid regular expression ({exc.msg} at position {exc.pos}).",
            "escape the characters [ ] ( ) . * + ? with a backslash to match them literally, "
            "e.g. 'CDW_[123] \\[g/L\\]'.",
        )
        return None


def _check_timezone(name: Any, bad) -> None:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(str(name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        bad(
            f"time zone {name!r} is not known.",
            "give an IANA name such as 'Europe/Berlin', 'America/New_York' or 'UTC'.",
        )


def _contradicts(header: str, map_unit: Any, molar_mass: float | None) -> str | None:
    """Why the unit in ``header`` and the map's ``unit`` disagree (``None`` when they agree).

    They agree when either is absent, when the header's bracket is not a unit at all (a label
    such as ``"Glucose (YSI)"``), or when they are the same unit spelled differently (scale 1).
    """
    header_unit = split_header(header)[1]
    if map_unit is None or header_unit is None:
        return None
    try:
        parse_unit(header_unit)
    except ConfigError:
        return None
    try:
        scale, offset = conversion(header_unit, str(map_unit), molar_mass)
    except ConfigError:
        return f"the header says {header_unit!r} but the map says unit: {map_unit!r}, a different kind of unit."
    if math.isclose(scale, 1.0, rel_tol=1e-9) and offset == 0:
        return None
    return (
        f"the header says {header_unit!r} but the map says unit: {map_unit!r} "
        f"(1 {header_unit} = {scale:.6g} {map_unit}); the values would be read in the wrong unit."
    )


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
        for key in sorted(unknown, key=str):
            bad(f"unknown key {key!r}.", suggest(str(key), _MAP_KEYS, what="Valid keys"))
        expected = {
            "batch": (Mapping, "a mapping"),
            "time": (Mapping, "a mapping"),
            "columns": (Mapping, "a mapping of header -> variable"),
            "events": (list, "a list of {column, event, ...}"),
            "ignore": ((list, str), "a list of column names or regular expressions"),
            "read": (Mapping, "a mapping"),
            "batches": (Mapping, "a mapping"),
            "media": (list, "a list of {medium, variable, concentration, unit}"),
        }
        raw = dict(raw)
        for key, (kind, what) in expected.items():
            if raw.get(key) is not None and not isinstance(raw[key], kind):
                bad(f"'{key}' must be {what}; found {type(raw[key]).__name__} {raw[key]!r}.")
                raw[key] = None
        for key, allowed in _SECTION_KEYS.items():
            for sub in sorted(set(raw.get(key) or {}) - set(allowed), key=str):
                bad(f"{key}: unknown key {sub!r}.", suggest(str(sub), allowed, what=f"Valid keys of '{key}'"))
        batch = raw.get("batch") or {}
        if not ({"column", "template", "from_filename", "value"} & set(batch)):
            bad(
                "'batch' must say where the batch id comes from: column, template, from_filename "
                "(a regex with a group named 'batch') or value."
            )
            batch = {}
        elif "from_filename" in batch:
            pattern = _compile(batch["from_filename"], "batch: from_filename", bad)
            if pattern is not None and "batch" not in pattern.groupindex:
                bad(
                    f"batch: from_filename {batch['from_filename']!r} has no group named 'batch'.",
                    "write it as e.g. 'run_(?P<batch>B\\d+)'.",
                )
        time = raw.get("time") or {}
        if "column" not in time:
            bad("'time' needs a 'column' (and a 'unit': h, d, min, s or timestamp).")
            time = {}
        elif time.get("unit", "h") not in _TIME_UNITS:
            bad(f"time unit {time.get('unit')!r} is not supported; use one of {', '.join(_TIME_UNITS)}.")
        if time.get("timezone") is not None:
            _check_timezone(time["timezone"], bad)
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
            contradiction = _contradicts(str(header), spec.get("unit"), reg[var].molar_mass)
            if contradiction:
                bad(f"column {header!r} ({var}): {contradiction}", _CONTRADICTION_HINT)
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
            contradiction = _contradicts(str(spec["column"]), spec.get("unit"), None)
            if contradiction:
                bad(f"event column {spec['column']!r}: {contradiction}", _CONTRADICTION_HINT)
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
        ignore = [raw["ignore"]] if isinstance(raw.get("ignore"), str) else list(raw.get("ignore") or [])
        for pattern in ignore:
            _compile(pattern, "ignore", bad)
        for i, item in enumerate(raw.get("media") or []):
            keys = {"medium", "variable", "concentration", "unit"}
            if not isinstance(item, Mapping) or set(item) != keys:
                bad(f"media entry {i + 1} ({item!r}) must give exactly medium, variable, concentration and unit.")
        if problems:
            raise ConfigError(SchemaError(problems, context=where).args[0])
        return cls(
            name=str(raw.get("name", Path(path).stem if path else "column map")),
            path=path,
            batch=dict(batch),
            time=dict(time),
            columns=columns,
            events=events,
            ignore=[str(x) for x in ignore],
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
    timezone: str | None = None,
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
    timezone
        The time zone of timestamps written without a UTC offset (an IANA name such as
        ``"Europe/Berlin"``, or ``"UTC"``); overrides ``time: {timezone: ...}`` in the map. It is
        required when the time column holds such timestamps: read as UTC, local clock times are
        off by the UTC offset and by one hour across a daylight-saving change. Local times that do
        not exist or occur twice at a change are errors naming their line. Dates of the
        ``batches`` metadata (``format:``) are read in this zone too, else as UTC.
    name, description
        Of the campaign (default: the map's).

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
        (batch, time, variable) rows, impossible values, timestamps without a time zone, with
        file, line, column and batch. Spreadsheet cells are checked as CSV cells are: ``n/a``,
        ``#DIV/0!`` or a formula without a saved result in a number column is an error at its row.

    Notes
    -----
    Cumulative volume columns (``cumulative: true``, e.g. total feed added so far) become one
    event per sampling interval at the interval's midpoint, with the increment as its volume: the
    mass balance over an interval only needs what entered between its two samples. Samples
    are taken before additions at the same time (the campaign convention).

    ``source_line`` is the line of a CSV file or the spreadsheet's own row number; empty rows
    (every cell blank) hold no data and are skipped, without shifting the rows after them.
    """
    from bioworkbench.campaign import Campaign, sha256_file

    cmap = column_map_fn(column_map)
    tz = timezone if timezone is not None else cmap.time.get("timezone")
    if timezone is not None:
        problems: list[Issue] = []
        _check_timezone(timezone, lambda msg, hint=None: problems.append(Issue(msg, column="timezone", hint=hint)))
        if problems:
            raise ConfigError(SchemaError(problems, context="read_wide: timezone").args[0])
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
        # rows with every cell empty hold nothing (their line numbers are not reused)
        cells = [c for c in df.columns if c != "_line"]
        blank = pl.all_horizontal(
            pl.col(c).is_null() | (pl.col(c).cast(pl.String).str.strip_chars() == "") for c in cells
        )
        df = df.filter(~blank)
        df, found = _batch_and_time(df, cmap, path, timezone=tz)
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
    batch_frame, found = _batches(
        pl.concat(rows_parts, how="diagonal_relaxed"), cmap, batches, paths[0], timezone=tz or "UTC"
    )
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


def _batch_and_time(
    df: pl.DataFrame, cmap: ColumnMap, path: Path, *, timezone: str | None = None
) -> tuple[pl.DataFrame, list[Issue]]:
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
        ts, naive = _parse_timestamps(raw, t.get("format"), timezone)
        zone_issues = _zone_issues(df, raw, ts, naive, timezone, path, col)
        if zone_issues:
            return df, zone_issues
        inoc = t.get("inoculation", "first")
        if inoc == "first":
            tmp = df.with_columns(_ts=ts).with_columns(_t0=pl.col("_ts").min().over("_batch"))
        elif isinstance(inoc, Mapping) and "column" in inoc:
            t0, _ = _parse_timestamps(df[inoc["column"]], t.get("format"), timezone)
            tmp = df.with_columns(_ts=ts, _t0=t0)
        else:
            t0, _ = _parse_timestamps(pl.Series([str(inoc)] * df.height, dtype=pl.String), None, timezone or "UTC")
            tmp = df.with_columns(_ts=ts, _t0=t0)
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


def _parse_timestamps(s: pl.Series, fmt: str | None, timezone: str | None) -> tuple[pl.Series, pl.Series]:
    """``(instants in UTC, naive values)`` of a timestamp column.

    Text with a UTC offset (``2026-03-01T08:00:00Z``, ``…+01:00``) is an instant; text and
    spreadsheet date-times without one are local clock times in ``timezone`` (left null without
    it). Every ISO 8601 spelling is accepted cell by cell unless ``fmt`` fixes one. The second
    series holds the naive values (null for cells with an offset), so callers can tell which
    cells needed the time zone and which local times do not exist or are ambiguous there.
    """
    from bioworkbench.schema import parse_iso_datetimes

    def localise(naive: pl.Expr) -> pl.Expr:
        if timezone is None:
            return pl.lit(None, dtype=pl.Datetime("us", "UTC"))
        return naive.dt.replace_time_zone(timezone, ambiguous="null", non_existent="null").dt.convert_time_zone("UTC")

    frame = pl.DataFrame({"x": s})
    if isinstance(s.dtype, pl.Datetime):
        if s.dtype.time_zone is not None:
            aware = pl.col("x").dt.convert_time_zone("UTC").dt.cast_time_unit("us")
            return frame.select(aware).to_series(), pl.Series(s.name, [None] * s.len(), dtype=pl.Datetime("us"))
        naive = pl.col("x").dt.cast_time_unit("us")
        out = frame.select(ts=localise(naive), naive=naive)
        return out["ts"], out["naive"]
    if s.dtype == pl.Date:
        naive = pl.col("x").cast(pl.Datetime("us"))
        out = frame.select(ts=localise(naive), naive=naive)
        return out["ts"], out["naive"]
    text = pl.col("x").cast(pl.String).str.strip_chars()
    if fmt:
        if "%z" in fmt or "%Z" in fmt:
            aware = text.str.to_datetime(format=fmt, time_zone="UTC", strict=False, time_unit="us")
            out = frame.select(ts=aware, naive=pl.lit(None, dtype=pl.Datetime("us")))
        else:
            naive = text.str.to_datetime(format=fmt, strict=False, time_unit="us")
            out = frame.select(ts=localise(naive), naive=naive)
        return out["ts"], out["naive"]
    aware, naive = parse_iso_datetimes(text, time_zone=None)
    out = frame.select(ts=pl.coalesce(aware, localise(naive)), naive=pl.when(aware.is_null()).then(naive))
    return out["ts"], out["naive"]


def _zone_issues(
    df: pl.DataFrame,
    raw: pl.Series,
    ts: pl.Series,
    naive: pl.Series,
    timezone: str | None,
    path: Path,
    col: str,
) -> list[Issue]:
    """Timestamps that need a time zone and have none, or local times that do not exist or repeat."""
    needs = naive.is_not_null() & ts.is_null()
    if not needs.any():
        return []
    rows = df.select("_line", "_batch").with_columns(_raw=raw.cast(pl.String), _naive=naive).filter(needs)
    first = rows.row(0, named=True)
    if timezone is None:
        return [
            Issue(
                f"timestamps without a time zone ({rows.height} rows, e.g. {first['_raw']!r}); their UTC "
                "time is not known.",
                file=str(path),
                line=first["_line"],
                column=col,
                batch=first["_batch"],
                hint="pass timezone='Europe/Berlin' (the zone of the clock that wrote them) or timezone='UTC' "
                "to read_wide, or set time: {timezone: ...} in the column map.",
            )
        ]
    issues = []
    for row in rows.head(20).iter_rows(named=True):
        issues.append(
            Issue(
                f"local time {row['_raw']!r} is ambiguous or does not exist in {timezone} (a daylight-saving "
                "change), so its UTC time is not known.",
                file=str(path),
                line=row["_line"],
                column=col,
                batch=row["_batch"],
                hint="give this timestamp with its UTC offset (e.g. '2026-10-25T02:30+01:00'), or correct it.",
            )
        )
    return issues


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
                hint = None
                if re.fullmatch(r"-?\d+,\d+", v.strip()):
                    hint = "the file uses decimal commas; set read: {decimal_comma: true} in the map."
                elif v.startswith("="):
                    hint = (
                        "the cell holds a formula without a saved result (the program that wrote the file "
                        "did not compute it); open the file in Excel or LibreOffice and save it."
                    )
                elif v.startswith("#"):
                    hint = "the spreadsheet shows an error in this cell; correct the formula or leave the cell empty."
                elif v.strip().lower() in ("n/a", "na", "nan", "-", "--", "nd", "n.d.", "none"):
                    hint = "leave the cell empty for a missing value."
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
        text = s.cast(pl.String).str.strip_chars()
        unreadable = text.is_not_null() & (text != "") & val.is_null()
        for row in df.with_columns(_text=text).filter(unreadable).head(20).iter_rows(named=True):
            issues.append(
                Issue(
                    f"expected a number for the {spec.event} volume, found {row['_text']!r}.",
                    file=str(path),
                    line=row["_line"],
                    column=spec.column,
                    batch=row["_batch"],
                    hint="leave the cell empty when nothing was added or removed.",
                )
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


def _batches(
    rows: pl.DataFrame, cmap: ColumnMap, batches: Any, first_path: Path, *, timezone: str = "UTC"
) -> tuple[pl.DataFrame, list[Issue]]:
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
            e = e.cast(pl.String).str.to_datetime(format=src["format"], strict=False, time_unit="us")
            if "%z" not in src["format"]:
                e = e.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")
            e = e.dt.convert_time_zone("UTC")
        elif "unit" in src and target == "initial_volume_ml":
            scale, _ = conversion(src["unit"], "mL")
            e = e.cast(pl.Float64) * scale
        exprs.append(e.alias(target))
    if issues:
        return ids, issues
    try:
        out = base.select(exprs)
    except pl.exceptions.PolarsError as exc:  # e.g. a volume column holding text
        where = src_name or str(first_path)
        return ids, [
            Issue(
                f"the batches metadata cannot be read as the map says ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0]}).",
                file=str(first_path.parent / src_name) if src_name else where,
                hint="check the columns named under batches: columns: in the map (numbers, dates and their format).",
            )
        ]
    return ids.join(out, on="batch_id", how="left", maintain_order="left"), []

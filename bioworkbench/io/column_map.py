"""Column maps: how a wide export's columns map to batches, times, variables and events.

A *column map* is a small YAML file the user writes once per export format. It says which column
holds the batch and the time, which variable (and unit) every other column is, which columns carry
sample, feed or base volumes, which columns are knowingly ignored, and where the batch metadata
comes from. Bundled examples (``bw.io.column_map("ambr250")``, ``"nistcho"``) read the real
campaigns in ``shared/data``; see ``bioworkbench/io/maps/*.yaml`` for the full syntax.
:func:`bioworkbench.io.read_wide` reads exports with one.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from bioworkbench.errors import ConfigError, Issue, SchemaError, suggest
from bioworkbench.schema import SOURCES
from bioworkbench.store import load_yaml
from bioworkbench.units import conversion, parse_unit, split_header
from bioworkbench.variables import registry

__all__ = ["REPLICATES", "ColumnMap", "ColumnSpec", "EventSpec", "column_map", "pattern_gives_time"]

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
    "replicates",
}
#: what to do with repeated measurements of one (batch, time, variable, source)
REPLICATES = ("error", "keep", "mean")

_SECTION_KEYS = {
    "batch": ("column", "template", "from_filename", "value", "prefix", "pattern"),
    "time": ("column", "unit", "format", "inoculation", "timezone", "sort"),
    "read": ("separator", "decimal_comma", "sheet", "encoding", "max_junk"),
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
    """One mapped column: its header, the variable it holds, the unit of its values and their source.

    Attributes
    ----------
    header
        The column header in the file.
    variable
        The registry variable it holds.
    unit
        The unit of its values (``None``: the variable's canonical unit).
    source
        ``"offline"`` or ``"online"``.
    """

    header: str
    variable: str
    unit: str | None
    source: str


@dataclass(frozen=True)
class EventSpec:
    """One volume column: the event it records, its unit, the medium added, and whether it is cumulative.

    Attributes
    ----------
    column
        The column header in the file.
    event
        The event it records (e.g. ``feed``, ``base``).
    unit
        The unit of its volumes.
    medium
        The medium added (``None`` when not named).
    cumulative
        The column holds the total added so far rather than each addition.
    """

    column: str
    event: str
    unit: str
    medium: str | None
    cumulative: bool


#: reports one problem of a column map: ``bad(message, hint=None)``
Bad = Callable[..., None]

#: the type each top-level key of a map must have, and how to say it
_EXPECTED = {
    "batch": (Mapping, "a mapping"),
    "time": (Mapping, "a mapping"),
    "columns": (Mapping, "a mapping of header -> variable"),
    "events": (list, "a list of {column, event, ...}"),
    "ignore": ((list, str), "a list of column names or regular expressions"),
    "read": (Mapping, "a mapping"),
    "batches": (Mapping, "a mapping"),
    "media": (list, "a list of {medium, variable, concentration, unit}"),
}


@dataclass
class ColumnMap:
    """A parsed, checked column map (see the module docstring and the bundled YAML examples).

    Build one with :func:`column_map` (a bundled name, a YAML file or a dict).

    Attributes
    ----------
    name, description
        Of the map (and of the campaign read with it, by default).
    path
        The file the map was read from (``None`` for a dict).
    batch
        Where the batch id is: the ``batch`` section.
    time
        The time column, its unit or format and time zone: the ``time`` section.
    columns
        The mapped columns.
    events
        The volume columns that become events.
    ignore
        Columns (names or regular expressions) read and left out.
    read
        Options of the file reader (``sheet``, ``skip_rows``, ...).
    batches
        Batch metadata given in the map, or ``None``.
    media
        Media compositions given in the map.
    replicates
        ``"error"`` (default), ``"keep"`` or ``"mean"``: what :func:`~bioworkbench.io.read_wide`
        does with repeated measurements of one batch, time, variable and source.
    """

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
    replicates: str = "error"

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, path: str | None = None) -> ColumnMap:
        """A column map from its YAML content.

        Parameters
        ----------
        raw
            The map's keys (``name``, ``batch``, ``time``, ``columns``, ``events``, ``ignore``...).
        path
            The file it was read from, named in the errors.

        Returns
        -------
        ColumnMap

        Raises
        ------
        ConfigError
            Every problem of the map at once: unknown keys (with the closest valid one), a batch or
            time section that does not say where its values come from, unknown variables, units
            missing or contradicting the header's, invalid regular expressions or time zones.
        """
        problems: list[Issue] = []

        def bad(msg: str, hint: str | None = None) -> None:
            problems.append(Issue(msg, file=path, hint=hint))

        raw = _checked_sections(raw, bad)
        batch = _batch_section(raw.get("batch") or {}, bad)
        time = _time_section(raw.get("time") or {}, bad) if raw.get("time") or not pattern_gives_time(batch) else {}
        replicates = raw.get("replicates", "error")
        if replicates not in REPLICATES:
            bad(f"replicates {replicates!r} is not one of {', '.join(REPLICATES)}.")
        junk = (raw.get("read") or {}).get("max_junk", 0.0)
        if isinstance(junk, bool) or not isinstance(junk, (int, float)) or not 0.0 <= junk <= 1.0:
            bad(f"read: max_junk must be a fraction between 0 and 1; found {junk!r}.")
        default_source = raw.get("source", "offline")
        if default_source not in SOURCES:
            bad(f"source {default_source!r} is not one of {', '.join(SOURCES)}.")
        columns = _column_specs(raw.get("columns") or {}, default_source, bad)
        events = _event_specs(raw.get("events") or [], bad)
        ignore = [raw["ignore"]] if isinstance(raw.get("ignore"), str) else list(raw.get("ignore") or [])
        for pattern in ignore:
            _compile(pattern, "ignore", bad)
        for i, item in enumerate(raw.get("media") or []):
            keys = {"medium", "variable", "concentration", "unit"}
            if not isinstance(item, Mapping) or set(item) != keys:
                bad(f"media entry {i + 1} ({item!r}) must give exactly medium, variable, concentration and unit.")
        if problems:
            raise ConfigError(SchemaError(problems, context=path or "column map").args[0])
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
            replicates=str(replicates),
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> ColumnMap:
        """A column map from a YAML file.

        Parameters
        ----------
        path
            The file.

        Returns
        -------
        ColumnMap

        Raises
        ------
        ConfigError
            The file is missing, not valid YAML, a key given twice (both lines), not a mapping, or
            the map is invalid (:meth:`from_dict`).
        """
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"column map {path} not found.")
        raw = load_yaml(path.read_text(), source=str(path), error=ConfigError)
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{path}: a column map is a YAML mapping; found {type(raw).__name__}.")
        return cls.from_dict(raw, path=str(path))

    def is_ignored(self, header: str) -> bool:
        """Whether a column is knowingly ignored (named under ``ignore:`` or matching one of its patterns).

        Parameters
        ----------
        header
            The column's header.

        Returns
        -------
        bool
        """
        return any(header == pat or re.fullmatch(pat, header) for pat in self.ignore)

    def used_columns(self) -> set[str]:
        """The headers the map reads: mapped columns, event columns, the time and batch columns.

        Returns
        -------
        set[str]
        """
        used = {c.header for c in self.columns} | {e.column for e in self.events}
        used.add(self.time.get("column", ""))
        if "column" in self.batch:
            used.add(self.batch["column"])
        used |= set(re.findall(r"{([^{}]+)}", self.batch.get("template", "")))
        return used


def _checked_sections(raw: Mapping[str, Any], bad: Bad) -> dict[str, Any]:
    """``raw`` with sections of the wrong type removed (each reported), and unknown keys reported."""
    for key in sorted(set(raw) - _MAP_KEYS, key=str):
        bad(f"unknown key {key!r}.", suggest(str(key), _MAP_KEYS, what="Valid keys"))
    raw = dict(raw)
    for key, (kind, what) in _EXPECTED.items():
        if raw.get(key) is not None and not isinstance(raw[key], kind):
            bad(f"'{key}' must be {what}; found {type(raw[key]).__name__} {raw[key]!r}.")
            raw[key] = None
    for key, allowed in _SECTION_KEYS.items():
        for sub in sorted(set(raw.get(key) or {}) - set(allowed), key=str):
            bad(f"{key}: unknown key {sub!r}.", suggest(str(sub), allowed, what=f"Valid keys of '{key}'"))
    return raw


def pattern_gives_time(batch: Mapping[str, Any]) -> bool:
    """Whether a ``batch`` section's ``pattern`` has a ``day`` or ``hour`` group (the culture time).

    Parameters
    ----------
    batch
        The ``batch`` section of a map (or ``read_wide``'s ``batch_from``).

    Returns
    -------
    bool
        False without a pattern, or for a pattern that is not a regular expression.
    """
    try:
        groups = re.compile(str(batch["pattern"])).groupindex if "pattern" in batch else {}
    except re.error:
        return False
    return "day" in groups or "hour" in groups


def _batch_section(batch: Mapping[str, Any], bad: Bad) -> Mapping[str, Any]:
    """The ``batch`` section, checked (``{}`` when it does not say where the batch id comes from)."""
    if not ({"column", "template", "from_filename", "value"} & set(batch)):
        bad(
            "'batch' must say where the batch id comes from: column, template, from_filename "
            "(a regex with a group named 'batch') or value."
        )
        return {}
    if "pattern" in batch:
        if "column" not in batch:
            bad("batch: pattern is searched in a column; give batch: {column: ..., pattern: ...}.")
        pattern = _compile(batch["pattern"], "batch: pattern", bad)
        if pattern is not None and not {"batch_id", "batch"} & set(pattern.groupindex):
            bad(
                f"batch: pattern {batch['pattern']!r} has no group named 'batch_id'.",
                "write it as e.g. '(?P<batch_id>B\\d+)-D(?P<day>\\d+)' (day or hour: the culture time).",
            )
    if "from_filename" in batch:
        pattern = _compile(batch["from_filename"], "batch: from_filename", bad)
        if pattern is not None and "batch" not in pattern.groupindex:
            bad(
                f"batch: from_filename {batch['from_filename']!r} has no group named 'batch'.",
                "write it as e.g. 'run_(?P<batch>B\\d+)'.",
            )
    return batch


def _time_section(time: Mapping[str, Any], bad: Bad) -> Mapping[str, Any]:
    """The ``time`` section, checked (``{}`` without a column)."""
    if "column" not in time:
        bad("'time' needs a 'column' (and a 'unit': h, d, min, s or timestamp).")
        return {}
    if time.get("unit", "h") not in _TIME_UNITS:
        bad(f"time unit {time.get('unit')!r} is not supported; use one of {', '.join(_TIME_UNITS)}.")
    if time.get("timezone") is not None:
        _check_timezone(time["timezone"], bad)
    return time


def _column_specs(columns: Mapping[str, Any], default_source: str, bad: Bad) -> list[ColumnSpec]:
    """The mapped columns, each checked: a registered variable, a unit that agrees with the header's."""
    reg = registry()
    specs: list[ColumnSpec] = []
    for header, spec in columns.items():
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
        specs.append(ColumnSpec(str(header), var, str(unit), spec.get("source", default_source)))
    if not specs:
        bad("'columns' maps no column to a variable.")
    return specs


def _event_specs(events: list[Any], bad: Bad) -> list[EventSpec]:
    """The volume columns, each checked: a unit, and a volume event."""
    specs: list[EventSpec] = []
    for spec in events:
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
        specs.append(
            EventSpec(
                str(spec["column"]),
                spec["event"],
                str(unit),
                spec.get("medium"),
                bool(spec.get("cumulative", False)),
            )
        )
    return specs


def column_map(name_or_path: str | os.PathLike | Mapping[str, Any] | ColumnMap) -> ColumnMap:
    """Load a column map.

    Parameters
    ----------
    name_or_path
        A bundled name (``"ambr250"``, ``"nistcho"``), a YAML file, a dict, or a :class:`ColumnMap`
        (returned as it is).

    Returns
    -------
    ColumnMap

    Raises
    ------
    ConfigError
        Neither a file nor a bundled map (the bundled ones are listed), or an invalid map.
    """
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

"""The inputs and options of :func:`bioworkbench.io.read_wide`, apart from reading the table itself.

What a call asks for besides a file and a map: the sources (files, or polars frames with the name
the caller gives them), the keywords that override the map's keys (``sort``, ``max_junk``,
``replicates``, ``batch_from``), the warning for cells kept flagged ``unreadable``, and repeated
measurements numbered or averaged. Kept apart from :mod:`bioworkbench.io.wide` so that each
module stays readable in one sitting.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from bioworkbench.errors import ArgumentError, BioWorkbenchWarning, ConfigError, DataReadError, Issue, SchemaError
from bioworkbench.io.column_map import REPLICATES, ColumnMap, _batch_section

__all__ = [
    "FLAG_UNREADABLE",
    "Options",
    "Source",
    "options",
    "replicates_of",
    "sources_of",
    "warn_junk",
    "with_batch_from",
]

#: the flag of a cell whose text is not a number, kept under ``max_junk``
FLAG_UNREADABLE = "unreadable"


@dataclass(frozen=True, slots=True)
class Source:
    """One input of :func:`read_wide`: a file, or a polars frame with the name the caller gave it."""

    name: str
    path: Path | None = None
    frame: pl.DataFrame | None = None


@dataclass(frozen=True, slots=True)
class Options:
    """The reading options of one :func:`read_wide` call (keywords over the map's keys)."""

    timezone: str | None
    sort: bool
    max_junk: float
    replicates: str


def with_batch_from(cmap: ColumnMap, batch_from: Mapping[str, str]) -> ColumnMap:
    """``cmap`` with its ``batch`` section replaced by ``batch_from`` (checked as a map's would be)."""
    if not isinstance(batch_from, Mapping):
        raise ArgumentError(
            "read_wide: batch_from must be a mapping such as "
            f"{{'column': 'Sample ID', 'pattern': r'(?P<batch_id>B\\d+)-D(?P<day>\\d+)'}}; found {batch_from!r}."
        )
    problems: list[Issue] = []
    unknown = set(batch_from) - {"column", "pattern", "prefix"}
    if unknown:
        problems.append(Issue(f"unknown key {sorted(unknown)[0]!r}; valid keys: column, pattern, prefix."))
    if "pattern" not in batch_from:
        problems.append(Issue("batch_from needs a 'pattern' (and the 'column' it is searched in)."))
    _batch_section(batch_from, lambda msg, hint=None: problems.append(Issue(msg, hint=hint)))
    if problems:
        raise ConfigError(SchemaError(problems, context="read_wide: batch_from").args[0])
    return dataclasses.replace(cmap, batch=dict(batch_from))


def options(
    cmap: ColumnMap, timezone: str | None, *, sort: bool | None, max_junk: float | None, replicates: str | None
) -> Options:
    """The keywords of :func:`read_wide` over the map's keys, checked."""
    junk = max_junk if max_junk is not None else cmap.read.get("max_junk", 0.0)
    if isinstance(junk, bool) or not isinstance(junk, (int, float)) or not 0.0 <= junk <= 1.0:
        raise ArgumentError(f"read_wide: max_junk must be a fraction between 0 and 1; found {junk!r}.")
    rep = replicates if replicates is not None else cmap.replicates
    if rep not in REPLICATES:
        raise ArgumentError(f"read_wide: replicates must be one of {', '.join(REPLICATES)}; found {rep!r}.")
    return Options(
        timezone=timezone,
        sort=bool(sort if sort is not None else cmap.time.get("sort", False)),
        max_junk=float(junk),
        replicates=str(rep),
    )


def sources_of(paths: Any, source_name: str | None) -> list[Source]:
    """The files and frames to read, each with its name."""
    items = [paths] if isinstance(paths, (str, os.PathLike, pl.DataFrame)) else list(paths)
    if not items:
        raise DataReadError("read_wide: no files given.")
    frames = sum(isinstance(x, pl.DataFrame) for x in items)
    if frames and not source_name:
        raise ArgumentError(
            "read_wide: a polars frame needs source_name= (e.g. the LIMS query or export it came from), "
            "the name its rows are traced to in source_file and the errors."
        )
    out = []
    for item in items:
        if isinstance(item, pl.DataFrame):
            name = source_name if frames == 1 else f"{source_name}[{len([s for s in out if s.frame is not None])}]"
            out.append(Source(str(name), frame=item))
        elif isinstance(item, (str, os.PathLike)):
            out.append(Source(str(Path(item)), path=Path(item)))
        else:
            raise ArgumentError(f"read_wide: expected a file path or a polars frame; found {type(item).__name__}.")
    return out


def warn_junk(obs: pl.DataFrame) -> None:
    """Warn how many cells were kept flagged ``unreadable``, naming the first few."""
    junk = obs.filter(pl.col("flag") == FLAG_UNREADABLE)
    if junk.is_empty():
        return
    first = "; ".join(
        f"{f} line {ln}: {r}"
        for f, ln, r in junk.select("source_file", "source_line", "flag_reason").head(5).iter_rows()
    )
    warnings.warn(
        f"read_wide: {junk.height} cell{'s' if junk.height != 1 else ''} in number columns hold text and were kept "
        f"without a value, flagged {FLAG_UNREADABLE!r} (within max_junk): {first}{' …' if junk.height > 5 else ''}.",
        BioWorkbenchWarning,
        stacklevel=3,
    )


def replicates_of(obs: pl.DataFrame, how: str) -> pl.DataFrame:
    """Repeated (batch, time, variable, source) rows numbered (``keep``) or averaged (``mean``)."""
    keys = ["batch_id", "time_h", "variable", "source"]
    if how == "error":
        return obs
    if how == "keep":
        return obs.with_columns(
            replicate=pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over(keys, order_by=["source_file", "source_line"])
        )
    free = pl.col("flag").is_null() & pl.col("value").is_not_null()
    kept = pl.when(free.any()).then(free).otherwise(pl.col("value").is_not_null())
    columns = [c for c in obs.columns if c not in (*keys, "value", "flag", "flag_reason")]
    return (
        obs.with_row_index("_order")
        .sort("source_file", "source_line", maintain_order=True)
        .group_by(keys, maintain_order=True)
        .agg(
            pl.col("_order").min(),
            *[pl.col(c).first() for c in columns],
            value=pl.col("value").filter(kept).mean(),
            flag=pl.when(free.any()).then(pl.lit(None, dtype=pl.String)).otherwise(pl.col("flag").first()),
            flag_reason=pl.when(free.any())
            .then(pl.lit(None, dtype=pl.String))
            .otherwise(pl.col("flag_reason").first()),
            n_replicates=kept.sum().cast(pl.Int32),
            replicate_sd=pl.col("value").filter(kept).std(),
        )
        .sort("_order")
        .select(*obs.columns, "n_replicates", "replicate_sd")
    )

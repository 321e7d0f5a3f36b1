"""The specification of every campaign frame: columns, types, which may be null, and the vocabularies.

:data:`FRAMES` says which columns each frame has and their types; the constants name the values
categorical columns may take (:data:`SOURCES`, :data:`EVENT_KINDS`, :data:`STATUSES`,
:data:`SPEC_KINDS`) and the flags readers set (:data:`FLAG_INVALID`, :data:`FLAG_SUSPECT`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

__all__ = [
    "ADDITIONS",
    "BATCH_ID_CHARACTERS",
    "BATCH_ID_MAX_LENGTH",
    "BATCH_ID_PATTERN",
    "EVENT_KINDS",
    "FLAG_INVALID",
    "FLAG_SUSPECT",
    "FRAMES",
    "MEDIUM_EVENTS",
    "REMOVALS",
    "SCHEMA_VERSION",
    "SOURCES",
    "SPEC_KINDS",
    "STATUSES",
    "UTC",
    "Column",
    "empty_frame",
    "schema_of",
]

SCHEMA_VERSION = 1

EVENT_KINDS = ("inoculation", "sample", "feed", "bolus", "base", "shift", "harvest", "note")
#: events whose ``volume_ml`` leaves the reactor / enters it
REMOVALS = ("sample", "harvest")
ADDITIONS = ("feed", "bolus", "base")
#: additions whose medium must be named (so that kinetics count what they brought)
MEDIUM_EVENTS = ("feed", "bolus")
SOURCES = ("online", "offline", "atline")
SPEC_KINDS = ("spec", "alarm", "PAR")
STATUSES = ("planned", "running", "completed", "aborted", "failed")
#: what a batch id may hold besides letters and decimal digits (any script) and single inner spaces. Ids
#: reach plot data, Markdown, HTML and (sanitised) run-folder names: the set keeps what lab ids use
#: (``FB2-A-R1``, ``Lot 2023/041``, ``Run #3 (rerun)``) and leaves out what HTML, Markdown tables or
#: a quoted string give a meaning (``<>&"'`\\|[]{}*$%;=!?@,``), control characters, tabs and line
#: breaks, and a space at either end (``"B01 "`` would be a second batch that looks like ``"B01"``)
BATCH_ID_CHARACTERS = "_-.:+#/()"
BATCH_ID_MAX_LENGTH = 64
#: a whole batch id: words of letters, digits and :data:`BATCH_ID_CHARACTERS`, joined by single spaces
BATCH_ID_PATTERN = r"^[\p{L}\p{Nd}_.:+#/()-]+(?: [\p{L}\p{Nd}_.:+#/()-]+)*$"
FLAG_INVALID = "invalid"
FLAG_SUSPECT = "suspect"


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a campaign frame.

    ``nullable``: whether a cell may be empty; ``required``: whether the column must be present
    (columns in ``_OPTIONAL_ON_READ`` may still be left out of a file and are added as nulls).
    """

    name: str
    dtype: Any
    nullable: bool = True
    required: bool = True


UTC = pl.Datetime("us", "UTC")

FRAMES: dict[str, tuple[Column, ...]] = {
    "batches": (
        Column("batch_id", pl.String, nullable=False),
        Column("product", pl.String),
        Column("cell_line", pl.String),
        Column("scale_l", pl.Float64),
        Column("process", pl.String),
        Column("status", pl.String),
        Column("start", UTC),
        Column("initial_volume_ml", pl.Float64),
    ),
    "observations": (
        Column("batch_id", pl.String, nullable=False),
        Column("time_h", pl.Float64, nullable=False),
        Column("variable", pl.String, nullable=False),
        Column("value", pl.Float64),
        Column("unit", pl.String, nullable=False),
        Column("source", pl.String, nullable=False),
        Column("flag", pl.String),
        Column("flag_reason", pl.String),
        Column("source_file", pl.String),
        Column("source_line", pl.Int64),
    ),
    "events": (
        Column("batch_id", pl.String, nullable=False),
        Column("time_h", pl.Float64, nullable=False),
        Column("event", pl.String, nullable=False),
        Column("volume_ml", pl.Float64),
        Column("medium", pl.String),
        Column("note", pl.String),
    ),
    "media": (
        Column("medium", pl.String, nullable=False),
        Column("variable", pl.String, nullable=False),
        Column("concentration", pl.Float64, nullable=False),
        Column("unit", pl.String, nullable=False),
    ),
    "quality": (
        Column("batch_id", pl.String, nullable=False),
        Column("attribute", pl.String, nullable=False),
        Column("value", pl.Float64),
        Column("unit", pl.String),
        Column("method", pl.String),
    ),
    "specs": (
        Column("name", pl.String, nullable=False),
        Column("lower", pl.Float64),
        Column("upper", pl.Float64),
        Column("kind", pl.String, nullable=False),
        Column("unit", pl.String, required=False),
    ),
}

#: columns a user may leave out of a file; they are added as nulls
_OPTIONAL_ON_READ: dict[str, set[str]] = {
    "batches": {
        "product",
        "cell_line",
        "scale_l",
        "process",
        "status",
        "start",
        "initial_volume_ml",
    },
    "observations": {"source", "flag", "flag_reason", "source_file", "source_line"},
    "events": {"volume_ml", "medium", "note"},
    "media": set(),
    "quality": {"unit", "method"},
    "specs": {"unit"},
}


def schema_of(name: str) -> dict[str, Any]:
    """The column names and polars types of frame ``name``.

    Parameters
    ----------
    name
        One of the keys of :data:`FRAMES`.

    Returns
    -------
    dict[str, polars.DataType]
        Column name -> type, in the frame's column order.
    """
    return {c.name: c.dtype for c in FRAMES[name]}


def empty_frame(name: str) -> pl.DataFrame:
    """An empty frame with the columns and types of frame ``name``.

    Parameters
    ----------
    name
        One of the keys of :data:`FRAMES`.

    Returns
    -------
    polars.DataFrame
        No rows; the columns of :func:`schema_of`.
    """
    return pl.DataFrame(schema=schema_of(name))

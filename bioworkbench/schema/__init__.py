"""The specification of every campaign frame, and the checks that hold data to it.

Frame specifications say which columns each frame has, their types, and which may be null
(:data:`FRAMES`); :func:`coerce_frame` checks the columns and casts them, :func:`validate_frame`
checks the content rules and returns every :class:`~bioworkbench.errors.Issue` found (it never
raises, never changes the data), and :func:`flag_values` / :func:`flag_fractions` flag values the
variable registry says are impossible or implausible.

Modules: :mod:`~bioworkbench.schema.frames` (specifications and vocabularies),
:mod:`~bioworkbench.schema.coerce` (columns and types, ISO 8601 date-times),
:mod:`~bioworkbench.schema.rules` (content rules), :mod:`~bioworkbench.schema.flags` (value flags)
and :mod:`~bioworkbench.schema.report` (how rows that break a rule are reported).

Layer: builds on :mod:`bioworkbench.variables` (the variable registry) and
:mod:`bioworkbench.units`. The registry names (:class:`Variable`, :func:`register_variable`,
:func:`variables`, :func:`get_variable`, :func:`registry`) and :func:`suggest` are re-exported
here for code written before they moved to :mod:`bioworkbench.variables` and
:mod:`bioworkbench.errors`; new code imports them from there.
"""

from __future__ import annotations

from bioworkbench.errors import suggest  # compatibility: moved to bioworkbench.errors
from bioworkbench.schema.coerce import ParsedDatetimes, coerce_frame, parse_iso_datetimes
from bioworkbench.schema.flags import flag_fractions, flag_values
from bioworkbench.schema.frames import (
    ADDITIONS,
    EVENT_KINDS,
    FLAG_INVALID,
    FLAG_SUSPECT,
    FRAMES,
    MEDIUM_EVENTS,
    REMOVALS,
    SCHEMA_VERSION,
    SOURCES,
    SPEC_KINDS,
    STATUSES,
    UTC,
    Column,
    empty_frame,
    schema_of,
)
from bioworkbench.schema.rules import validate_frame

# compatibility: the variable registry moved to bioworkbench.variables
from bioworkbench.variables import Variable, get_variable, register_variable, registry, variables

__all__ = [
    "ADDITIONS",
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
    "ParsedDatetimes",
    "Variable",
    "coerce_frame",
    "empty_frame",
    "flag_fractions",
    "flag_values",
    "get_variable",
    "parse_iso_datetimes",
    "register_variable",
    "registry",
    "schema_of",
    "suggest",
    "validate_frame",
    "variables",
]

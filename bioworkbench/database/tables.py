"""The store's tables: the six campaign frames with their audit columns, and the ingest log.

Every frame table has the columns of :data:`bioworkbench.schema.FRAMES`, the extra columns listed
in :data:`EXTRA_COLUMNS` (instrument lineage kept with observations; other columns of batches,
such as ``cpp_*`` set points, as JSON in ``extra``), and four audit columns:

``row_id``
    A number unique in the store (one sequence for all tables).
``ingest_id``
    The :data:`INGEST_LOG` row that added it.
``superseded_at``, ``superseded_by``
    Null while the row is current; when a later ingest brings another value for the same key
    (:data:`KEYS`), the time of that ingest and the ``row_id`` of the row that replaced it. Rows
    are never deleted or changed otherwise.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from bioworkbench.database.backends import sql_type
from bioworkbench.schema import FRAMES, UTC, schema_of

__all__ = ["AUDIT_COLUMNS", "EXTRA_COLUMNS", "INGEST_LOG", "KEYS", "create_schema", "table_columns"]

#: what identifies "the same value" in each table: a row with the same key and other values
#: supersedes the current one
KEYS: dict[str, tuple[str, ...]] = {
    "batches": ("batch_id",),
    "observations": ("batch_id", "variable", "time_h", "source", "replicate"),
    "events": ("batch_id", "time_h", "event"),
    "media": ("medium", "variable"),
    "quality": ("batch_id", "attribute"),
    "specs": ("name", "kind"),
}

#: columns kept besides the data model's (instrument lineage; batches' own extra columns as JSON)
EXTRA_COLUMNS: dict[str, dict[str, Any]] = {
    "batches": {"extra": pl.String},
    "observations": {
        "replicate": pl.Int64,
        "sample_id": pl.String,
        "instrument": pl.String,
        "raw_value": pl.String,
        "raw_unit": pl.String,
        "source_cell": pl.String,
    },
    "events": {},
    "media": {},
    "quality": {},
    "specs": {},
}

AUDIT_COLUMNS: dict[str, Any] = {
    "row_id": pl.Int64,
    "ingest_id": pl.Int64,
    "superseded_at": UTC,
    "superseded_by": pl.Int64,
}

#: the append-only record of every ingest: who, when, which file and its sha256, what it changed
INGEST_LOG: dict[str, Any] = {
    "ingest_id": pl.Int64,
    "ingested_at": UTC,
    "who": pl.String,
    "source": pl.String,
    "sha256": pl.String,
    "kind": pl.String,
    "rows_added": pl.Int64,
    "rows_superseded": pl.Int64,
    "rows_unchanged": pl.Int64,
    "note": pl.String,
}

#: the store's schema version, kept in ``bw_meta``
STORE_VERSION = 1


def table_columns(name: str) -> dict[str, Any]:
    """The data columns of table ``name`` (frame columns, then extra columns), without audit columns.

    Parameters
    ----------
    name
        One of the six frames.

    Returns
    -------
    dict[str, polars.DataType]
        Column name -> type.
    """
    return {**schema_of(name), **EXTRA_COLUMNS[name]}


def _not_null(name: str) -> set[str]:
    return {c.name for c in FRAMES[name] if not c.nullable}


def create_schema(backend: Any) -> None:
    """Create the store's tables, sequences and indexes where they do not exist (idempotent).

    Parameters
    ----------
    backend
        An open :class:`~bioworkbench.database.backends.Backend`.
    """
    backend.execute("CREATE SEQUENCE IF NOT EXISTS bw_row_id")
    backend.execute("CREATE SEQUENCE IF NOT EXISTS bw_ingest_id")
    backend.execute("CREATE TABLE IF NOT EXISTS bw_meta (key TEXT NOT NULL, value TEXT)")
    for name in FRAMES:
        required = _not_null(name)
        cols = ["row_id BIGINT NOT NULL DEFAULT nextval('bw_row_id')"]
        cols += [
            f"{col} {sql_type(dtype)}{' NOT NULL' if col in required else ''}"
            for col, dtype in table_columns(name).items()
        ]
        cols += ["ingest_id BIGINT NOT NULL", "superseded_at TIMESTAMPTZ", "superseded_by BIGINT"]
        backend.execute(f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(cols)})")
    log_cols = ", ".join(f"{col} {sql_type(dtype)}" for col, dtype in INGEST_LOG.items())
    backend.execute(f"CREATE TABLE IF NOT EXISTS ingest_log ({log_cols})")
    if backend.kind == "postgresql":
        # DuckDB prunes by its zone maps (rows arrive batch by batch); PostgreSQL needs indexes
        for name, cols in {
            "observations": "batch_id, variable",
            "events": "batch_id",
            "quality": "batch_id",
            "batches": "batch_id",
        }.items():
            backend.execute(f"CREATE INDEX IF NOT EXISTS {name}_key ON {name} ({cols})")
        backend.execute("CREATE INDEX IF NOT EXISTS ingest_log_sha ON ingest_log (sha256)")
        for name in FRAMES:  # the rows of one ingest, found when it supersedes older ones
            backend.execute(f"CREATE INDEX IF NOT EXISTS {name}_ingest ON {name} (ingest_id)")
    found = backend.query("SELECT value FROM bw_meta WHERE key = 'store_version'")
    if found.height == 0:
        backend.execute("INSERT INTO bw_meta VALUES ('store_version', ?)", [str(STORE_VERSION)])

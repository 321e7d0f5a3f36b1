"""A campaign store in a database: DuckDB (embedded, the default) or PostgreSQL (a lab server).

:func:`open_store` opens a :class:`Store`; :meth:`Store.add` appends a Campaign or some of its
frames (a correction supersedes the old value and keeps it), :meth:`Store.campaign` reads the
batches asked for back as a Campaign, and :func:`ingest_files` adds instrument exports, wide
exports and LIMS quality results that are new (a file whose sha256 was ingested before is skipped).

Modules: :mod:`~bioworkbench.database.backends` (the DuckDB and PostgreSQL connections, through
the ``duckdb`` and ``psycopg`` packages), :mod:`~bioworkbench.database.tables` (the schema),
:mod:`~bioworkbench.database.store` (the store), :mod:`~bioworkbench.database.ingest` (files
in) and :mod:`~bioworkbench.database.selection` (a store URL with a batch selection, as a report's
``campaign`` names it).

Layer: imports :mod:`bioworkbench.instruments`, :mod:`bioworkbench.io`,
:mod:`bioworkbench.campaign` and :mod:`bioworkbench.schema`.
"""

from __future__ import annotations

from bioworkbench.database.ingest import ingest_files, read_batch_records, read_quality
from bioworkbench.database.selection import SELECTION_KEYS, StoreQuery, is_store_url, parse_store_url
from bioworkbench.database.store import DEFAULT_URL, IngestResult, Store, open_store

__all__ = [
    "DEFAULT_URL",
    "SELECTION_KEYS",
    "IngestResult",
    "Store",
    "StoreQuery",
    "ingest_files",
    "is_store_url",
    "open_store",
    "parse_store_url",
    "read_batch_records",
    "read_quality",
]

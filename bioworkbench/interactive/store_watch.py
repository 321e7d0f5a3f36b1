"""A campaign store watched for new data: the dashboard's source when it serves ``--store URL``.

:class:`StoreWatch` has the interface of :class:`~bioworkbench.interactive.live.FolderWatch`
(``refresh()``, ``snapshot``, ``error``, ``read_at``, ``name``, ``label``, ``forecast()``), so the
dashboard does not care which of the two it watches. It asks the store for its latest ingest (one
row of the ingest log per :meth:`~bioworkbench.database.Store.add`) and reads the campaign again
only when that changed.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from bioworkbench.database.backends import _redact
from bioworkbench.errors import ArgumentError, BioWorkbenchError, DataReadError
from bioworkbench.interactive.live import ForecastService, LiveSnapshot, snapshot

__all__ = ["StoreWatch"]


def _duckdb_file(url: str) -> str | None:
    """The DuckDB file a store URL names (as :func:`bioworkbench.database.backends.connect` reads it), else None."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "duckdb":
        path = unquote(url[len("duckdb://") :]).split("?", 1)[0]
        # duckdb:///data/x -> data/x (relative); duckdb:////abs/x -> /abs/x (as the store reads it)
        return path[1:] if path.startswith("/") else path
    if not scheme and url.endswith((".duckdb", ".db")):
        return url
    return None


def _database_errors() -> tuple[type[BaseException], ...]:
    """The errors of the database drivers that are installed (a query that fails mid-read)."""
    errors: list[type[BaseException]] = [BioWorkbenchError]
    try:
        import duckdb

        errors.append(duckdb.Error)
    except ImportError:  # pragma: no cover - a dependency
        pass
    try:
        import psycopg

        errors.append(psycopg.Error)
    except ImportError:
        pass
    return tuple(errors)


class StoreWatch:
    """A campaign store, re-read (and its dashboard snapshot recomputed) only when new data arrive.

    Each :meth:`refresh` opens the store, asks for its latest ingest and closes it again, so that
    other processes (``bioworkbench ingest``) can write to a DuckDB file between two checks; only
    when the latest ingest changed is the whole campaign read (:meth:`Store.campaign
    <bioworkbench.database.Store.campaign>`) and its
    :func:`~bioworkbench.interactive.live.snapshot` computed.

    Parameters
    ----------
    url
        The store's URL, as for :func:`bioworkbench.open_store`: ``duckdb:///data/plant.duckdb``
        or ``postgresql://user@host/dbname``.
    name
        The campaign's name on the page (default: the DuckDB file's or the database's name).

    Raises
    ------
    ArgumentError
        ``url`` is not a string, or names an in-memory store (a new, empty one at every open).
    DataReadError
        The DuckDB file does not exist (a watch does not create a store).
    """

    def __init__(self, url: str, *, name: str | None = None) -> None:
        if not isinstance(url, str) or not url:
            raise ArgumentError(
                f"StoreWatch: url must be a store URL such as 'duckdb:///data/plant.duckdb'; got {url!r}."
            )
        path = _duckdb_file(url)
        if path == ":memory:":
            raise ArgumentError(
                "StoreWatch: an in-memory store (duckdb:///:memory:) is new and empty at every open and "
                "cannot be watched; write the store to a file (duckdb:///data/plant.duckdb)."
            )
        if path is not None and not Path(path).is_file():
            raise DataReadError(
                f"store file {path} (from {url}) does not exist; fill one with "
                "`bioworkbench ingest --store URL FILES` or bw.open_store(url).add(campaign)."
            )
        self.url = url
        stem = Path(path).stem if path is not None else urlsplit(url).path.strip("/").rsplit("/", 1)[-1]
        self._name = name or stem or "store"
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._shown_url = _redact(url)
        self.snapshot: LiveSnapshot | None = None
        self.error: str | None = None
        self.read_at: float | None = None
        #: how many times the campaign was read from the store (a check that finds nothing new reads none)
        self.reads = 0

    @property
    def name(self) -> str:
        """The campaign's name on the page."""
        return self._name

    @property
    def label(self) -> str:
        """What is watched, in words: ``store duckdb:///data/plant.duckdb`` (a password masked)."""
        return f"store {self._shown_url}"

    def forecast(self, service: ForecastService) -> dict[str, Any] | None:
        """Ask ``service`` for the forecast of the running batches of the current snapshot.

        Parameters
        ----------
        service
            The forecast service; the snapshot's campaign is sent to its worker process (which
            then need not open the store).

        Returns
        -------
        dict or None
            :meth:`ForecastService.get`'s result (``None`` while being computed, or before the
            first snapshot).
        """
        snap = self.snapshot
        return None if snap is None else service.get(self.url, snap.known_h, campaign=snap.campaign)

    def refresh(self) -> bool:
        """Re-read the store if something was added since the last read.

        Returns
        -------
        bool
            Whether a new snapshot (or a new error) was made.

        Notes
        -----
        What tells a change is the ingest log: its latest ``ingest_id`` and its number of rows
        (every :meth:`Store.add <bioworkbench.database.Store.add>` writes one row, in the same
        transaction as its data, so a read never sees half an ingest). A store that cannot be
        opened or read (a DuckDB file being written by another process, a PostgreSQL server that
        does not answer) keeps the previous snapshot; the error is in :attr:`error`, and the next
        refresh tries again. The store is opened read-write for the moment of the check, not
        read-only: DuckDB refuses a second connection to a file with another configuration in the
        same process (a notebook or test that writes to the store while serving it).
        """
        from bioworkbench.database import open_store

        with self._lock:
            try:
                with open_store(self.url) as store:
                    stamp = store.latest_ingest()
                    if stamp == self._stamp and self.snapshot is not None:
                        return False
                    self.reads += 1
                    campaign = store.campaign(name=self._name)
                snap = snapshot(campaign)
            except _database_errors() as exc:
                error = f"{type(exc).__name__}: {exc}".strip()
                changed = error != self.error
                self.error = error
                return changed
            self._stamp, self.snapshot, self.error, self.read_at = stamp, snap, None, time.time()
            return True

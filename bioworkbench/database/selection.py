"""A store and a selection of its batches, written as one URL: what a report's ``campaign`` may name.

``duckdb:///data/plant.duckdb?batch_ids=B01,B02`` is the DuckDB file ``data/plant.duckdb`` and
its batches B01 and B02; ``postgresql:///plant?host=/run/postgresql&since=2024-03-01`` the
PostgreSQL database ``plant`` over a Unix socket and the batches that started on or after
1 March 2024. :func:`parse_store_url` splits such a URL into the store's own URL and the
selection (:data:`SELECTION_KEYS`), refusing keys that are neither; :class:`StoreQuery` reads the
selection (:meth:`StoreQuery.campaign`) and gives the stamp that says whether it changed
(:meth:`StoreQuery.stamp`).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from bioworkbench.errors import ArgumentError, suggest

__all__ = ["SELECTION_KEYS", "StoreQuery", "is_store_url", "parse_store_url"]

#: the query keys that select batches (the arguments of :meth:`~bioworkbench.database.Store.campaign`)
SELECTION_KEYS = ("batch_ids", "since", "variables")

_SCHEMES = ("duckdb", "postgresql", "postgres")


def is_store_url(value: Any) -> bool:
    """Whether ``value`` is written as a store URL (``duckdb://``, ``postgresql://``, ``postgres://``).

    Parameters
    ----------
    value
        Anything (a parameter's value).

    Returns
    -------
    bool
        True for a string whose scheme is one of the store's; a folder path is not.
    """
    return isinstance(value, str) and urlsplit(value.strip()).scheme.lower() in _SCHEMES and "://" in value


@dataclass(frozen=True)
class StoreQuery:
    """A store's URL and the batches selected from it.

    Parameters
    ----------
    url
        The store's URL as :func:`~bioworkbench.database.open_store` takes it (the selection keys
        removed; PostgreSQL connection keys such as ``host`` kept).
    batch_ids
        The batches asked for, in the order given, or ``None`` (all).
    since
        Only batches that started at or after this ISO date or date-time, or ``None``.
    variables
        Only these observation variables, or ``None`` (all).
    """

    url: str
    batch_ids: tuple[str, ...] | None = None
    since: str | None = None
    variables: tuple[str, ...] | None = None

    @property
    def selection(self) -> dict[str, Any]:
        """The selection keys given, as plain values (``{"batch_ids": ["B01", "B02"]}``)."""
        out: dict[str, Any] = {}
        if self.batch_ids is not None:
            out["batch_ids"] = list(self.batch_ids)
        if self.since is not None:
            out["since"] = self.since
        if self.variables is not None:
            out["variables"] = list(self.variables)
        return out

    @property
    def kind(self) -> str:
        """``"duckdb"`` or ``"postgresql"``."""
        return "duckdb" if self.url.lower().startswith("duckdb:") else "postgresql"

    @property
    def path(self) -> Path | None:
        """The DuckDB file (``None`` for PostgreSQL and for ``:memory:``)."""
        if self.kind != "duckdb":
            return None
        path = _duckdb_path(self.url)
        return None if path == ":memory:" else Path(path)

    def __str__(self) -> str:
        parts = []
        for key, value in self.selection.items():
            text = ",".join(value) if isinstance(value, list) else value
            parts.append(f"{key}={quote(text, safe=',:+-._')}")
        if not parts:
            return self.url
        return self.url + ("&" if "?" in self.url else "?") + "&".join(parts)

    def open(self) -> Any:
        """Open the store for reading (a DuckDB file read-only, so that many reports may read it at once).

        Returns
        -------
        Store
            Close it after use (a context manager).

        Raises
        ------
        DataReadError
            The store cannot be opened, or a DuckDB file is missing or is not a store.
        """
        from bioworkbench.database.store import open_store
        from bioworkbench.errors import DataReadError

        path = self.path
        if path is not None and not path.is_file():
            raise DataReadError(
                f"store file {path} does not exist. Add data to it first: bioworkbench ingest FILES --store {self.url}"
            )
        return open_store(self.url, read_only=self.kind == "duckdb")

    def campaign(self, store: Any, *, name: str | None = None) -> Any:
        """Read the selection from an open store as a Campaign.

        Parameters
        ----------
        store
            The store this query names, open (:meth:`open`).
        name
            The campaign's name (default: the DuckDB file's stem or the PostgreSQL database's name).

        Returns
        -------
        Campaign
            As :meth:`~bioworkbench.database.Store.campaign` returns it.
        """
        return store.campaign(
            self.batch_ids,
            since=self.since,
            variables=self.variables,
            name=name or self.store_name,
        )

    def stamp(self, store: Any) -> dict[str, Any]:
        """What identifies the selection's data now: see :meth:`~bioworkbench.database.Store.stamp`.

        Parameters
        ----------
        store
            The store this query names, open.

        Returns
        -------
        dict
            The stamp.
        """
        return store.stamp(self.batch_ids, since=self.since, variables=self.variables)

    def selected_batch_ids(self, store: Any) -> list[str]:
        """The ids of the batches the selection names that the store holds, sorted.

        Parameters
        ----------
        store
            The store this query names, open.

        Returns
        -------
        list[str]
            Batch ids.
        """
        return store.selected_batch_ids(self.batch_ids, since=self.since)

    @property
    def store_name(self) -> str:
        """A short name of the store: the DuckDB file's stem or the PostgreSQL database's name."""
        path = self.path
        if path is not None:
            return path.stem
        return urlsplit(self.url).path.strip("/") or "store"


def _duckdb_path(url: str) -> str:
    path = unquote(url[len("duckdb://") :]).split("?", 1)[0]
    if path.startswith("/"):
        path = path[1:]  # duckdb:///data/x -> data/x (relative); duckdb:////abs/x -> /abs/x
    return path


def _list(key: str, text: str) -> tuple[str, ...]:
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise ArgumentError(f"{key}={text!r} holds an empty item; write {key}=B01,B02 (comma-separated, no blanks).")
    return tuple(dict.fromkeys(items))


def _since(text: str) -> str:
    try:
        dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ArgumentError(f"since={text!r} is not an ISO date or date-time such as 2024-03-01.") from None
    return text.strip()


def _libpq_keys() -> list[str]:
    """The connection keywords libpq knows (``host``, ``port``, ``sslmode``, ...)."""
    try:
        from psycopg import pq

        return sorted(o.keyword.decode() for o in pq.Conninfo.get_defaults())
    except Exception:  # psycopg missing: open_store will say so
        return []


def parse_store_url(value: str, *, base: str | os.PathLike | None = None) -> StoreQuery:
    """Split a store URL with a batch selection into the store's URL and the selection.

    Parameters
    ----------
    value
        ``duckdb:///path/plant.duckdb?batch_ids=B01,B02&since=2024-03-01&variables=vcd,titer``,
        or the same with ``postgresql://...`` (whose connection keys, such as ``host`` or
        ``sslmode``, stay in the store's URL).
    base
        Make a relative DuckDB path absolute against this folder (``duckdb:///data/x.duckdb``
        names ``data/x.duckdb`` relative to the working folder; ``duckdb:////abs/x.duckdb`` an
        absolute path). ``None`` leaves it as written.

    Returns
    -------
    StoreQuery
        The store's URL and the selection.

    Raises
    ------
    ArgumentError
        Not a store URL; a key given twice; a key that is neither a selection key
        (:data:`SELECTION_KEYS`) nor, for PostgreSQL, a libpq connection key (the message
        names it, the nearest valid key and all of them); an empty list item; a ``since`` that
        is not an ISO date.
    """
    if not is_store_url(value):
        raise ArgumentError(
            f"{value!r} is not a store URL; expected duckdb:///path/to/plant.duckdb or postgresql://user@host/dbname."
        )
    value = value.strip()
    head, _, query = value.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True) if query else []
    scheme = urlsplit(value).scheme.lower()
    valid_other = _libpq_keys() if scheme != "duckdb" else []
    seen: dict[str, str] = {}
    kept: list[tuple[str, str]] = []
    for key, text in pairs:
        if key in seen:
            raise ArgumentError(f"query key {key!r} is given twice; give it once (lists are comma-separated).")
        seen[key] = text
        if key in SELECTION_KEYS:
            continue
        if key in valid_other:
            kept.append((key, text))
            continue
        valid = list(SELECTION_KEYS) + valid_other
        hint = suggest(key, valid, what="Valid keys").split(" Valid keys")[0]
        what = (
            "the selection keys batch_ids, since, variables"
            if scheme == "duckdb"
            else "the selection keys batch_ids, since, variables, or a libpq connection key "
            f"({', '.join(k for k in valid_other if k in ('host', 'port', 'user', 'dbname', 'sslmode'))}, ...)"
        )
        raise ArgumentError(f"unknown query key {key!r}. {hint + ' ' if hint.startswith('Did') else ''}Valid: {what}.")
    if scheme == "duckdb":
        path = _duckdb_path(head)
        if not path:
            raise ArgumentError(f"{value!r} names no file; write duckdb:///data/plant.duckdb.")
        if base is not None and path != ":memory:" and not Path(path).is_absolute():
            path = str((Path(base) / path).resolve())
        url = "duckdb:///" + path if path != ":memory:" else "duckdb:///:memory:"
    else:
        url = head + ("?" + "&".join(f"{k}={quote(v, safe='/:@,.-_')}" for k, v in kept) if kept else "")
    return StoreQuery(
        url=url,
        batch_ids=_list("batch_ids", seen["batch_ids"]) if "batch_ids" in seen else None,
        since=_since(seen["since"]) if "since" in seen else None,
        variables=_list("variables", seen["variables"]) if "variables" in seen else None,
    )

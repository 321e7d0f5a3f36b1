"""Connections to the two kinds of store: a DuckDB file (embedded) and a PostgreSQL server.

Both speak the same SQL here (the store's statements use only what DuckDB and PostgreSQL share:
sequences, ``UPDATE ... FROM``, ``IS NOT DISTINCT FROM``, ``TIMESTAMPTZ``); a backend adds what
differs: how to connect, how placeholders are written, how a frame is loaded into a temporary
table and how a query's rows come back as a polars frame. The drivers are the maintained ones:
the ``duckdb`` package and ``psycopg`` 3 (libpq). Both are imported only when a store is opened.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import polars as pl

from bioworkbench.errors import ArgumentError, DataReadError, MissingDependencyError

__all__ = ["Backend", "DuckDBBackend", "PostgresBackend", "connect", "sql_type"]

_SQL_TYPES = {
    pl.String: "TEXT",
    pl.Float64: "DOUBLE PRECISION",
    pl.Int64: "BIGINT",
    pl.Boolean: "BOOLEAN",
}


def sql_type(dtype: Any) -> str:
    """The SQL type (shared by DuckDB and PostgreSQL) that holds a polars type of the data model.

    Parameters
    ----------
    dtype
        A polars type used in :data:`bioworkbench.schema.FRAMES` (string, float, integer, boolean
        or a UTC date-time).

    Returns
    -------
    str
        ``TEXT``, ``DOUBLE PRECISION``, ``BIGINT``, ``BOOLEAN`` or ``TIMESTAMPTZ``.

    Raises
    ------
    ArgumentError
        A type the store has no column type for.
    """
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMPTZ"
    for pl_type, name in _SQL_TYPES.items():
        if dtype == pl_type:
            return name
    raise ArgumentError(f"store: no SQL column type for polars type {dtype}.")


class Backend:
    """What the store needs from a database connection (see :class:`DuckDBBackend`, :class:`PostgresBackend`)."""

    #: ``duckdb`` or ``postgresql``
    kind: str = ""
    #: the URL the store was opened with (without a password)
    url: str = ""
    #: opened read-only (a DuckDB file several processes may read at once)
    read_only: bool = False

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement written with ``?`` placeholders; return the rows it changed (or -1).

        Parameters
        ----------
        sql
            The statement.
        params
            The values of its placeholders, in order.

        Returns
        -------
        int
            Rows inserted, updated or deleted (``-1`` when the statement changes none).
        """
        raise NotImplementedError

    def query(self, sql: str, params: Sequence[Any] = (), schema: dict[str, Any] | None = None) -> pl.DataFrame:
        """Run a query written with ``?`` placeholders and return its rows as a polars frame.

        Parameters
        ----------
        sql
            The query.
        params
            The values of its placeholders, in order.
        schema
            Column name -> polars type for the result (date-times come back in UTC).

        Returns
        -------
        polars.DataFrame
            The rows, with the columns of the query.
        """
        raise NotImplementedError

    def load(self, table: str, frame: pl.DataFrame, columns: dict[str, Any]) -> None:
        """Create temporary table ``table`` with ``columns`` and fill it with ``frame``.

        Parameters
        ----------
        table
            The temporary table's name (dropped first if it exists).
        frame
            The rows; it has every column of ``columns``, cast to their types.
        columns
            Column name -> polars type.
        """
        raise NotImplementedError

    def insert(self, table: str, frame: pl.DataFrame, columns: dict[str, Any]) -> int:
        """Append ``frame``'s rows to table ``table`` as they are, in bulk.

        Parameters
        ----------
        table
            A table of the store.
        frame
            The rows; it has every column of ``columns``.
        columns
            The columns written (the others take their defaults).

        Returns
        -------
        int
            Rows inserted.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Close the connection."""
        raise NotImplementedError

    def analyze(self, table: str) -> None:
        """Refresh the planner's statistics of ``table`` after a large change.

        Parameters
        ----------
        table
            The table.
        """
        self.execute(f"ANALYZE {table}")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the statements of the ``with`` block in one transaction (rolled back on error).

        Yields
        ------
        None
            Inside the transaction.
        """
        self.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.execute("ROLLBACK")
            raise
        self.execute("COMMIT")


def _inherit_docs(cls: type) -> type:
    """Give the methods a backend overrides the docstrings of :class:`Backend`'s."""
    for name, member in vars(cls).items():
        if callable(member) and not member.__doc__ and hasattr(Backend, name):
            member.__doc__ = getattr(Backend, name).__doc__
    return cls


def _cast_result(frame: pl.DataFrame, schema: dict[str, Any] | None) -> pl.DataFrame:
    if not schema:
        return frame
    exprs = []
    for name in frame.columns:
        dtype = schema.get(name)
        if dtype is None:
            continue
        if isinstance(dtype, pl.Datetime):
            col = pl.col(name)
            current = frame.schema[name]
            if isinstance(current, pl.Datetime) and current.time_zone is not None:
                exprs.append(col.dt.convert_time_zone("UTC").dt.cast_time_unit("us"))
            elif isinstance(current, pl.Datetime):
                exprs.append(col.dt.replace_time_zone("UTC").dt.cast_time_unit("us"))
            else:
                exprs.append(col.cast(dtype))
        elif frame.schema[name] != dtype:
            exprs.append(pl.col(name).cast(dtype))
    return frame.with_columns(exprs) if exprs else frame


@_inherit_docs
class DuckDBBackend(Backend):
    """A DuckDB database file (or ``:memory:``), through the ``duckdb`` package.

    Parameters
    ----------
    path
        The database file (created with its folder when missing) or ``":memory:"``.
    read_only
        Open the file read-only (several processes may then read it at once).
    """

    kind = "duckdb"

    def __init__(self, path: str, *, read_only: bool = False) -> None:
        try:
            import duckdb
        except ImportError as exc:  # pragma: no cover - a dependency
            raise MissingDependencyError(
                "open_store: the duckdb package is needed for a DuckDB store; pip install duckdb."
            ) from exc
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(path, read_only=read_only)
        except duckdb.Error as exc:
            raise DataReadError(f"open_store: cannot open DuckDB file {path}: {exc}") from exc
        self._con.execute("SET TimeZone = 'UTC'")
        self.read_only = read_only
        self.url = f"duckdb:///{path}" if path != ":memory:" else "duckdb:///:memory:"
        self.path = path

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = self._con.execute(sql, list(params))
        if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            row = cur.fetchone()
            return int(row[0]) if row else 0
        return -1

    def query(self, sql: str, params: Sequence[Any] = (), schema: dict[str, Any] | None = None) -> pl.DataFrame:
        return _cast_result(self._con.sql(sql, params=list(params) or None).pl(), schema)

    def analyze(self, table: str) -> None:
        """Nothing to do: DuckDB keeps a table's statistics (row counts, per-row-group min/max) as rows
        are inserted; its ``ANALYZE`` would only refresh distinct counts, reading the whole table.

        Parameters
        ----------
        table
            The table.
        """

    def load(self, table: str, frame: pl.DataFrame, columns: dict[str, Any]) -> None:
        self._con.execute(f"DROP TABLE IF EXISTS {table}")
        cols = ", ".join(f"{name} {sql_type(dtype)}" for name, dtype in columns.items())
        self._con.execute(f"CREATE TEMP TABLE {table} ({cols})")
        view = f"{table}_src"
        self._con.register(view, frame.select(list(columns)))
        try:
            self._con.execute(f"INSERT INTO {table} SELECT * FROM {view}")
        finally:
            self._con.unregister(view)

    def insert(self, table: str, frame: pl.DataFrame, columns: dict[str, Any]) -> int:
        view = f"{table}_src"
        names = ", ".join(columns)
        self._con.register(view, frame.select(list(columns)))
        try:
            return self.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {view}")
        finally:
            self._con.unregister(view)

    def close(self) -> None:
        self._con.close()


@_inherit_docs
class PostgresBackend(Backend):
    """A PostgreSQL database, through ``psycopg`` 3 (libpq).

    Parameters
    ----------
    url
        A libpq connection URI: ``postgresql://user@host:5432/dbname``, or over a Unix socket
        ``postgresql:///dbname?host=/run/postgresql`` (the socket's folder).
    """

    kind = "postgresql"

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError as exc:
            raise MissingDependencyError(
                "open_store: the psycopg package is needed for a PostgreSQL store; pip install 'psycopg[binary]'."
            ) from exc
        try:
            self._con = psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:
            raise DataReadError(f"open_store: cannot connect to {_redact(url)}: {str(exc).strip()}") from exc
        self._con.execute("SET TIME ZONE 'UTC'")
        self._con.execute("SET client_min_messages = warning")
        self.url = _redact(url)

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("?", "%s")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = self._con.execute(self._sql(sql), list(params) or None)
        return cur.rowcount

    def query(self, sql: str, params: Sequence[Any] = (), schema: dict[str, Any] | None = None) -> pl.DataFrame:
        if schema:  # rows for a frame: in bulk, as CSV through COPY, parsed by polars
            return self._query_copy(sql, params, schema)
        with self._con.cursor() as cur:
            cur.execute(self._sql(sql), list(params) or None)
            names = [d.name for d in cur.description]
            chunks = []
            while rows := cur.fetchmany(100_000):
                chunks.append(
                    pl.DataFrame(
                        rows,
                        schema={n: (schema or {}).get(n) for n in names} if schema else names,
                        orient="row",
                    )
                )
        if not chunks:
            return pl.DataFrame(schema={n: (schema or {}).get(n, pl.String) for n in names})
        return _cast_result(pl.concat(chunks), schema)

    def _query_copy(self, sql: str, params: Sequence[Any], schema: dict[str, Any]) -> pl.DataFrame:
        """A query's rows through ``COPY (query) TO STDOUT`` as CSV: the server writes text in bulk
        and polars parses it, instead of one Python tuple per row. The parameters are bound on the
        client by psycopg (``ClientCursor.mogrify``, which quotes them), as COPY takes none."""
        import psycopg

        text = psycopg.ClientCursor(self._con).mogrify(self._sql(sql), list(params) or None)
        buffer = io.BytesIO()
        with self._con.cursor() as cur, cur.copy(f"COPY ({text}) TO STDOUT (FORMAT csv, HEADER)") as copy:
            for block in copy:
                buffer.write(block)
        buffer.seek(0)
        frame = pl.read_csv(buffer, infer_schema=False)  # every column as text; cast below
        exprs = []
        for name in frame.columns:
            dtype = schema.get(name)
            col = pl.col(name)
            if dtype is None:
                continue
            if isinstance(dtype, pl.Datetime):  # ISO with the session's zone, UTC: 2024-01-01 03:04:05.123+00
                exprs.append(col.str.to_datetime("%Y-%m-%d %H:%M:%S%.f%#z", time_zone="UTC", time_unit="us"))
            elif dtype == pl.Boolean:
                exprs.append(col.replace_strict({"t": True, "f": False}, default=None, return_dtype=pl.Boolean))
            else:  # numbers as PostgreSQL writes them (shortest exact; NaN, Infinity)
                exprs.append(col.cast(dtype))
        return frame.with_columns(exprs) if exprs else frame

    def load(self, table: str, frame: pl.DataFrame, columns: dict[str, Any]) -> None:
        self._con.execute(f"DROP TABLE IF EXISTS {table}")
        cols = ", ".join(f"{name} {sql_type(dtype)}" for name, dtype in columns.items())
        self._con.execute(f"CREATE TEMP TABLE {table} ({cols})")
        self._copy_in(table, frame, columns)
        self._con.execute(f"ANALYZE {table}")

    def _copy_in(self, table: str, frame: pl.DataFrame, columns: dict[str, Any]) -> None:
        """CSV in blocks of rows through ``COPY FROM STDIN``: polars writes the text (null unquoted
        and empty, an empty string quoted, date-times ISO with their offset), the server parses it."""
        names = list(columns)
        with self._con.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN (FORMAT csv)") as copy:
            for block in frame.select(names).iter_slices(_COPY_ROWS):
                copy.write(block.write_csv(include_header=False).encode())

    def insert(self, table: str, frame: pl.DataFrame, columns: dict[str, Any]) -> int:
        self._copy_in(table, frame, columns)
        return frame.height

    def close(self) -> None:
        self._con.close()


#: rows written to COPY at a time (a block's CSV text is held in memory once)
_COPY_ROWS = 200_000


def _redact(url: str) -> str:
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def connect(url: str, *, read_only: bool = False) -> Backend:
    """Open the database a store URL names.

    Parameters
    ----------
    url
        ``duckdb:///relative/or/absolute.duckdb`` (``duckdb:///:memory:`` for a throw-away store;
        a plain path ending in ``.duckdb`` or ``.db`` is taken as a DuckDB file), or a PostgreSQL
        URI ``postgresql://...`` / ``postgres://...`` (a Unix socket: ``postgresql:///db?host=/dir``).
    read_only
        Open a DuckDB file read-only (PostgreSQL: ignored; use a read-only role).

    Returns
    -------
    Backend
        The open connection.

    Raises
    ------
    ArgumentError
        A URL of another scheme.
    DataReadError
        The database cannot be opened or reached.
    MissingDependencyError
        The driver is not installed.
    """
    if not isinstance(url, str | Path):
        raise ArgumentError(f"open_store: url must be a string such as 'duckdb:///data/plant.duckdb'; got {url!r}.")
    url = str(url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "duckdb":
        path = unquote(url[len("duckdb://") :])
        if path.startswith("/"):
            # duckdb:///data/plant.duckdb -> data/plant.duckdb (relative); duckdb:////abs/x -> /abs/x
            path = path[1:]
        path = path.split("?", 1)[0]
        if not path:
            raise ArgumentError(f"open_store: {url!r} names no file; write duckdb:///data/plant.duckdb.")
        return DuckDBBackend(path, read_only=read_only)
    if scheme in ("postgresql", "postgres"):
        return PostgresBackend(url)
    if not scheme and url.endswith((".duckdb", ".db")):
        return DuckDBBackend(url, read_only=read_only)
    raise ArgumentError(
        f"open_store: cannot open {url!r}: expected duckdb:///path/to/file.duckdb or "
        "postgresql://user@host/dbname (postgresql:///dbname?host=/socket/dir for a Unix socket)."
    )

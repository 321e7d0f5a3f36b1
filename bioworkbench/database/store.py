"""The :class:`Store`: campaigns in a database, appended to, corrected with history, read back by query.

:func:`open_store` opens (and creates) a store in a DuckDB file or a PostgreSQL database;
:meth:`Store.add` appends a campaign or some of its frames, :meth:`Store.campaign` reads the
current rows of the batches asked for as a :class:`~bioworkbench.Campaign`, :meth:`Store.history`
shows every value a measurement has had, and :meth:`Store.ingest_log` who added what, when, from
which file.
"""

from __future__ import annotations

import datetime as dt
import getpass
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from bioworkbench.campaign import Campaign
from bioworkbench.checks import describe_type
from bioworkbench.database.backends import Backend, connect, sql_type
from bioworkbench.database.tables import AUDIT_COLUMNS, INGEST_LOG, KEYS, create_schema, table_columns
from bioworkbench.errors import ArgumentError, BioWorkbenchWarning, DataReadError, Issue, SchemaError, suggest
from bioworkbench.schema import FRAMES, UTC, coerce_frame, empty_frame

__all__ = ["DEFAULT_URL", "IngestResult", "Store", "open_store"]

DEFAULT_URL = "duckdb:///data/plant.duckdb"

#: frames whose rows belong to a batch
_BATCH_FRAMES = ("observations", "events", "quality")


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one :meth:`Store.add` (or one file of :func:`~bioworkbench.database.ingest_files`) did.

    ``rows_added`` counts every row written (new values and corrections), ``rows_superseded`` the
    current rows that corrections replaced, ``rows_unchanged`` the rows given that the store
    already held with the same values; ``batches_created`` the batches that were new to the store
    and known only by their id; ``skipped`` is set (with ``reason``) when nothing was read.
    """

    source: str
    sha256: str | None = None
    ingest_id: int | None = None
    rows_added: int = 0
    rows_superseded: int = 0
    rows_unchanged: int = 0
    by_table: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    batches_created: tuple[str, ...] = ()
    skipped: bool = False
    reason: str = ""

    def __str__(self) -> str:
        if self.skipped:
            return f"{self.source}: skipped ({self.reason})"
        text = (
            f"{self.source}: {self.rows_added:,} rows added, {self.rows_superseded:,} superseded, "
            f"{self.rows_unchanged:,} already in the store"
        )
        if self.batches_created:
            shown = ", ".join(self.batches_created[:5]) + (" ..." if len(self.batches_created) > 5 else "")
            text += f"; {len(self.batches_created)} new batch(es) known by id only: {shown}"
        return text


def _frames_of(data: Campaign | Mapping[str, Any]) -> dict[str, pl.DataFrame]:
    if isinstance(data, Campaign):
        return {name: frame for name, frame in data.frames().items() if frame.height}
    if not isinstance(data, Mapping):
        raise ArgumentError(
            f"Store.add: expected a Campaign or a mapping of frame name -> frame; got {describe_type(data)}."
        )
    unknown = [k for k in data if k not in FRAMES]
    if unknown:
        raise ArgumentError(f"Store.add: unknown frame {unknown[0]!r}. {suggest(unknown[0], FRAMES)}")
    frames: dict[str, pl.DataFrame] = {}
    issues: list[Issue] = []
    for name, obj in data.items():
        if obj is None:
            continue
        frame = obj.collect() if isinstance(obj, pl.LazyFrame) else obj
        if not isinstance(frame, pl.DataFrame):
            raise ArgumentError(f"Store.add: {name} must be a polars DataFrame; got {describe_type(frame)}.")
        if name == "observations" and "source" not in frame.columns:
            frame = frame.with_columns(source=pl.lit("offline"))
        frame, found = coerce_frame(name, frame)
        issues.extend(found)
        if frame.height:
            frames[name] = frame
    if issues:
        raise SchemaError(issues, context="Store.add")
    return frames


def _to_table(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with exactly the table's data columns (batches' extra columns as JSON)."""
    cols = table_columns(name)
    extra = [c for c in frame.columns if c not in cols]
    if name == "batches":
        if extra:
            frame = frame.with_columns(extra=pl.struct(extra).struct.json_encode())
        else:
            frame = frame.with_columns(extra=pl.lit(None, pl.String))
    else:
        # a Campaign converts units and keeps what was given in raw_value (a number) / raw_unit
        if "raw_value" in frame.columns and frame.schema["raw_value"] != pl.String:
            frame = frame.with_columns(pl.col("raw_value").cast(pl.String))
        dropped = [c for c in extra if frame[c].null_count() < frame.height]
        if dropped:
            warnings.warn(
                f"Store.add: {name} columns the store does not keep were left out: {', '.join(dropped)} "
                f"(kept: {', '.join(cols)}).",
                BioWorkbenchWarning,
                stacklevel=3,
            )
    missing = {c: pl.lit(None, dtype) for c, dtype in cols.items() if c not in frame.columns}
    if missing:
        frame = frame.with_columns(**missing)
    return frame.select([pl.col(c).cast(dtype) for c, dtype in cols.items()])


#: stands for null in a nullable key column, so that keys compare with ``=`` (hash joins in both
#: databases; ``IS NOT DISTINCT FROM`` leaves PostgreSQL a nested loop)
_NULL_KEY = {"BIGINT": "-9223372036854775807", "DOUBLE PRECISION": "CAST('NaN' AS DOUBLE PRECISION)", "TEXT": "'\x01'"}


def _match_key(left: str, right: str, name: str, not_null: set[str]) -> str:
    types = table_columns(name)
    parts = []
    for c in KEYS[name]:
        if c in not_null:
            parts.append(f"{left}.{c} = {right}.{c}")
        else:
            null = _NULL_KEY[sql_type(types[c])]
            parts.append(f"COALESCE({left}.{c}, {null}) = COALESCE({right}.{c}, {null})")
    return " AND ".join(parts)


def _match(left: str, right: str, columns: Iterable[str]) -> str:
    return " AND ".join(f"{left}.{c} IS NOT DISTINCT FROM {right}.{c}" for c in columns)


def _placeholders(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


class Store:
    """Campaign data in a database: append-only, corrected with history, read by query.

    Open one with :func:`open_store`. The store holds the six campaign frames (batches,
    observations, events, media, quality, specs; :data:`bioworkbench.schema.FRAMES`) in one table
    each, and ``ingest_log``, one row per :meth:`add`: who (the operating-system user), when, from
    which file and its sha256, and how many rows were added, superseded and already there.

    Parameters
    ----------
    backend
        The open connection (:func:`bioworkbench.database.backends.connect`).

    Notes
    -----
    A row is never deleted or edited. A value given again with the same key
    (:data:`bioworkbench.database.tables.KEYS`: for an observation the batch, variable, time,
    source and replicate) but other values (value, unit, flag, ...) is a correction: the new row
    is written, and the old one is marked ``superseded_at`` (the time of the correcting ingest)
    and ``superseded_by`` (the new row's ``row_id``). Queries read the current rows;
    :meth:`history` shows all of them.
    """

    def __init__(self, backend: Backend) -> None:
        self._db = backend
        if backend.read_only:  # the schema cannot be created: it must be there
            found = backend.query(
                "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'ingest_log'"
            ).row(0)[0]
            if not found:
                backend.close()
                raise DataReadError(
                    f"open_store: {backend.url} is not a bioworkbench store (it has no ingest_log table); "
                    "open it without read_only=True to create one."
                )
            return
        with self._db.transaction():
            create_schema(self._db)

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The URL the store was opened with (a password is masked)."""
        return self._db.url

    @property
    def kind(self) -> str:
        """``"duckdb"`` or ``"postgresql"``."""
        return self._db.kind

    def close(self) -> None:
        """Close the connection (the store cannot be used afterwards)."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    # -- writing --------------------------------------------------------------------------
    def add(
        self,
        data: Campaign | Mapping[str, Any],
        *,
        source: str = "<python>",
        sha256: str | None = None,
        kind: str = "campaign",
        note: str = "",
    ) -> IngestResult:
        """Append a campaign, or some of its frames, to the store; corrections supersede old values.

        Parameters
        ----------
        data
            A :class:`~bioworkbench.Campaign`, or a mapping frame name -> polars frame with the
            columns of that frame (e.g. ``{"quality": lims_results}``); a mapping's frames are
            checked for their columns and types (:func:`bioworkbench.schema.coerce_frame`).
        source
            Where the data came from (a file, a folder, a notebook), for the ingest log.
        sha256
            The source file's sha256 (the ingest log keeps it; :func:`ingest_files` skips a file
            whose sha256 is already there).
        kind
            What the data was read as (``campaign``, ``instrument``, ``wide``, ``quality``).
        note
            Free text for the ingest log.

        Returns
        -------
        IngestResult
            Rows added, superseded and unchanged, in total and per table.

        Raises
        ------
        ArgumentError
            Neither a Campaign nor a mapping of known frame names; a store opened read-only.
        SchemaError
            Missing columns, cells of the wrong type, or two rows with the same key in one frame
            (which of them is the value?), each located.

        Notes
        -----
        Batches that rows refer to and the store does not hold are added with their id only (and
        listed in the result), so that instrument results may arrive before the batch record.
        Everything happens in one transaction: a failed add leaves the store as it was.
        """
        if self._db.read_only:
            raise ArgumentError(f"Store.add: {self.url} was opened read-only (open_store(url, read_only=True)).")
        frames = {name: _to_table(name, frame) for name, frame in _frames_of(data).items()}
        issues = []
        for name, frame in frames.items():
            key = list(KEYS[name])
            dup = frame.filter(pl.struct(key).is_duplicated())
            if dup.height:
                first = dup.row(0, named=True)
                issues.append(
                    Issue(
                        f"{dup.height:,} rows of {name} share a key with another row, first "
                        + ", ".join(f"{k}={first[k]!r}" for k in key)
                        + ".",
                        batch=first.get("batch_id"),
                        hint="a store keeps one current value per key; aggregate replicates or number them "
                        "in 'replicate' (observations).",
                    )
                )
        if issues:
            raise SchemaError(issues, context=f"Store.add ({source})")
        now = dt.datetime.now(dt.UTC)
        who = _who()
        by_table: dict[str, tuple[int, int, int]] = {}
        with self._db.transaction():
            ingest_id = int(self._db.query("SELECT nextval('bw_ingest_id') AS id")["id"][0])
            created = self._create_missing_batches(frames)
            for name, frame in frames.items():
                by_table[name] = self._append(name, frame, ingest_id, now)
            added = sum(v[0] for v in by_table.values())
            superseded = sum(v[1] for v in by_table.values())
            unchanged = sum(v[2] for v in by_table.values())
            self._db.execute(
                f"INSERT INTO ingest_log ({', '.join(INGEST_LOG)}) VALUES ({_placeholders(INGEST_LOG)})",
                [ingest_id, now, who, source, sha256, kind, added, superseded, unchanged, note or None],
            )
        return IngestResult(
            source=source,
            sha256=sha256,
            ingest_id=ingest_id,
            rows_added=added,
            rows_superseded=superseded,
            rows_unchanged=unchanged,
            by_table=by_table,
            batches_created=tuple(created),
        )

    def _create_missing_batches(self, frames: dict[str, pl.DataFrame]) -> list[str]:
        referred = pl.concat(
            [frames[n].select("batch_id") for n in _BATCH_FRAMES if n in frames] or [pl.DataFrame({"batch_id": []})],
            how="vertical_relaxed",
        )["batch_id"].unique()
        if "batches" in frames:
            referred = referred.filter(~referred.is_in(frames["batches"]["batch_id"].implode()))
        if referred.len() == 0:
            return []
        self._db.load("bw_refs", pl.DataFrame({"batch_id": referred.cast(pl.String)}), {"batch_id": pl.String})
        known = self._db.query(
            "SELECT DISTINCT r.batch_id FROM bw_refs r JOIN batches b ON b.batch_id = r.batch_id "
            "WHERE b.superseded_at IS NULL"
        )["batch_id"]
        missing = sorted(set(referred.to_list()) - set(known.to_list()))
        if missing:
            frames["batches"] = pl.concat(
                [frames.get("batches", _to_table("batches", empty_frame("batches"))), _new_batches(missing)],
                how="vertical_relaxed",
            )
        return missing

    def _append(self, name: str, frame: pl.DataFrame, ingest_id: int, now: dt.datetime) -> tuple[int, int, int]:
        cols = table_columns(name)
        key = KEYS[name]
        values = [c for c in cols if c not in key]
        not_null = {c.name for c in FRAMES[name] if not c.nullable}
        if "batch_id" in key and not self._holds_batches(name, frame["batch_id"]):
            # batches the table holds no row of: nothing to compare with, every row is new and is
            # written straight into the table (DuckDB from the frame, PostgreSQL by COPY)
            added = self._db.insert(
                name, frame.with_columns(ingest_id=pl.lit(ingest_id)), {**cols, "ingest_id": pl.Int64}
            )
            self._after_append(name, added)
            return added, 0, frame.height - added
        self._db.load("bw_stage", frame, cols)
        key_match = _match_key("c", "s", name, not_null)
        same_values = _match("c", "s", values) if values else "TRUE"
        # the current rows that this ingest corrects: same key, other values
        self._db.execute("DROP TABLE IF EXISTS bw_old")
        self._db.execute(
            f"CREATE TEMP TABLE bw_old AS SELECT c.row_id AS old_id, {', '.join('s.' + k for k in key)} "
            f"FROM {name} c JOIN bw_stage s ON {key_match} WHERE c.superseded_at IS NULL AND NOT ({same_values})"
        )
        added = self._db.execute(
            f"INSERT INTO {name} ({', '.join(cols)}, ingest_id) "
            f"SELECT {', '.join('s.' + c for c in cols)}, ? FROM bw_stage s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {name} c "
            f"WHERE c.superseded_at IS NULL AND {key_match} AND {same_values})",
            [ingest_id],
        )
        superseded = 0
        if int(self._db.query("SELECT count(*) AS n FROM bw_old")["n"][0]):
            superseded = self._db.execute(
                f"UPDATE {name} AS o SET superseded_at = ?, superseded_by = c.row_id FROM bw_old s, {name} AS c "
                f"WHERE o.row_id = s.old_id AND c.ingest_id = ? AND {key_match}",
                [now, ingest_id],
            )
        self._after_append(name, added)
        self._db.execute("DROP TABLE IF EXISTS bw_old")
        return added, superseded, frame.height - added

    def _holds_batches(self, name: str, batch_ids: pl.Series) -> bool:
        """Whether table ``name`` holds a row (current or not) of one of these batches. A cheap
        probe: the ids prune the table's row groups (DuckDB) or use its index (PostgreSQL)."""
        ids = pl.DataFrame({"batch_id": batch_ids.unique().cast(pl.String)})
        self._db.load("bw_ids", ids, {"batch_id": pl.String})
        found = self._db.query(f"SELECT 1 AS found FROM {name} WHERE batch_id IN (SELECT batch_id FROM bw_ids) LIMIT 1")
        self._db.execute("DROP TABLE IF EXISTS bw_ids")
        return found.height > 0

    def _after_append(self, name: str, added: int) -> None:
        if added > 10_000:
            self._db.analyze(name)
        self._db.execute("DROP TABLE IF EXISTS bw_stage")

    # -- reading --------------------------------------------------------------------------
    def seen(self, sha256: str) -> pl.DataFrame:
        """The ingest-log rows of earlier ingests of a file with this sha256.

        Parameters
        ----------
        sha256
            The file's sha256 (hex).

        Returns
        -------
        polars.DataFrame
            Empty when the file was never ingested.
        """
        return self._db.query(
            f"SELECT {', '.join(INGEST_LOG)} FROM ingest_log WHERE sha256 = ? ORDER BY ingest_id",
            [sha256],
            INGEST_LOG,
        )

    def ingest_log(self) -> pl.DataFrame:
        """Every ingest, oldest first: who, when, source file, sha256, kind and rows changed.

        Returns
        -------
        polars.DataFrame
            The columns of :data:`bioworkbench.database.tables.INGEST_LOG`.
        """
        return self._db.query(f"SELECT {', '.join(INGEST_LOG)} FROM ingest_log ORDER BY ingest_id", (), INGEST_LOG)

    def latest_ingest(self) -> tuple[int | None, int]:
        """The latest ingest's id and the number of ingests, read as one row whatever the log's length.

        A cheap stamp for watchers: it changes exactly when something was added.

        Returns
        -------
        (int or None, int)
            ``(latest ingest_id, number of ingests)``; ``(None, 0)`` for an empty store.
        """
        row = self._db.query("SELECT max(ingest_id) AS last, count(*) AS n FROM ingest_log").row(0)
        return (None if row[0] is None else int(row[0]), int(row[1]))

    def stamp(
        self,
        batch_ids: Sequence[str] | None = None,
        *,
        since: dt.datetime | dt.date | str | None = None,
        variables: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """What identifies the data :meth:`campaign` would return for the same selection, cheaply.

        Parameters
        ----------
        batch_ids, since, variables
            The selection, as for :meth:`campaign`.

        Returns
        -------
        dict
            ``batches`` (how many are selected) and ``batches_sha256`` (of their sorted ids),
            ``last_ingest`` (the newest ingest that wrote a row of the selection, current or
            superseded, or ``None``) and ``rows`` (how many rows of the selection the store
            holds, superseded ones included).

        Notes
        -----
        The store only appends: an ingest that adds or corrects a value of a selected batch
        writes a row with a new ``ingest_id``, so ``last_ingest`` and ``rows`` change; a batch
        entering or leaving the selection (``since``) changes the batches' digest. An ingest
        that touches only other batches changes nothing here, which is what lets
        ``bioworkbench run --changed`` skip the reports that do not read them. Media and specs
        belong to every selection. One aggregate query; no row is sent to the client.
        """
        import hashlib

        selected, params = self._selection_sql(batch_ids, since, what="Store.stamp")
        ids = sorted(self._db.query(selected, params)["batch_id"].to_list())
        parts, p = [], []
        for fname in ("batches", *_BATCH_FRAMES):
            cond = f"batch_id IN ({selected})"
            args = list(params)
            if fname == "observations" and variables is not None:
                variables = [variables] if isinstance(variables, str) else list(variables)
                cond += f" AND variable IN ({_placeholders(variables)})" if variables else " AND FALSE"
                args += variables
            parts.append(f"SELECT ingest_id FROM {fname} WHERE {cond}")
            p += args
        parts += ["SELECT ingest_id FROM media", "SELECT ingest_id FROM specs"]
        row = self._db.query(
            f"SELECT max(ingest_id) AS last, count(*) AS n FROM ({' UNION ALL '.join(parts)}) AS rows_of_selection",
            p,
        ).row(0)
        return {
            "batches": len(ids),
            "batches_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest(),
            "last_ingest": None if row[0] is None else int(row[0]),
            "rows": int(row[1]),
        }

    def _selection_sql(self, batch_ids: Sequence[str] | None, since: Any, *, what: str) -> tuple[str, list[Any]]:
        """The query of the current batch ids a selection names, and its parameters."""
        where, params = ["superseded_at IS NULL"], []
        if batch_ids is not None:
            batch_ids = [batch_ids] if isinstance(batch_ids, str) else list(dict.fromkeys(batch_ids))
            if not batch_ids:
                raise ArgumentError(f"{what}: batch_ids is empty; give at least one batch id, or None for all.")
            where.append(f"batch_id IN ({_placeholders(batch_ids)})")
            params += batch_ids
        if since is not None:
            where.append("start >= ?")
            params.append(_as_utc(since))
        return f"SELECT batch_id FROM batches WHERE {' AND '.join(where)}", params

    def selected_batch_ids(
        self, batch_ids: Sequence[str] | None = None, *, since: dt.datetime | dt.date | str | None = None
    ) -> list[str]:
        """The ids of the batches a selection names that the store holds, sorted.

        Parameters
        ----------
        batch_ids, since
            As for :meth:`campaign` (ids the store does not hold are left out, not refused).

        Returns
        -------
        list[str]
            Batch ids.
        """
        sql, params = self._selection_sql(batch_ids, since, what="Store.selected_batch_ids")
        return sorted(self._db.query(sql, params)["batch_id"].to_list())

    def batch_ids(self) -> list[str]:
        """The ids of the batches the store holds (current rows), sorted.

        Returns
        -------
        list[str]
            Batch ids.
        """
        return self._db.query("SELECT batch_id FROM batches WHERE superseded_at IS NULL ORDER BY batch_id")[
            "batch_id"
        ].to_list()

    def batch_starts(self) -> pl.DataFrame:
        """The batches whose start the store knows: ``batch_id`` and ``start`` (UTC).

        Returns
        -------
        polars.DataFrame
            One row per batch with a start, sorted by batch id.
        """
        return self._db.query(
            "SELECT batch_id, start FROM batches WHERE superseded_at IS NULL AND start IS NOT NULL ORDER BY batch_id",
            (),
            {"batch_id": pl.String, "start": UTC},
        )

    def history(self, batch_id: str, variable: str | None = None, *, frame: str = "observations") -> pl.DataFrame:
        """Every row a batch's values have had, current and superseded, with who added each and when.

        Parameters
        ----------
        batch_id
            The batch.
        variable
            Only this variable (an observation's ``variable``; with ``frame="quality"`` an
            ``attribute``); default: all.
        frame
            ``"observations"``, ``"events"`` or ``"quality"``.

        Returns
        -------
        polars.DataFrame
            The frame's columns, ``row_id``, ``superseded_at``, ``superseded_by``, and from the
            ingest log ``ingest_id``, ``ingested_at``, ``who``, ``ingest_source`` and ``sha256``;
            sorted by key, then oldest first. A current row has a null ``superseded_at``.

        Raises
        ------
        ArgumentError
            Another ``frame``.
        """
        if frame not in _BATCH_FRAMES:
            raise ArgumentError(f"Store.history: frame must be one of {', '.join(_BATCH_FRAMES)}; got {frame!r}.")
        cols = table_columns(frame)
        where, params = "t.batch_id = ?", [batch_id]
        if variable is not None:
            where += f" AND t.{'attribute' if frame == 'quality' else 'variable'} = ?"
            params.append(variable)
        order = ", ".join(f"t.{c}" for c in KEYS[frame])
        schema = {**cols, **AUDIT_COLUMNS, "ingested_at": UTC, "who": pl.String, "ingest_source": pl.String}
        return self._db.query(
            f"SELECT {', '.join('t.' + c for c in cols)}, t.row_id, t.superseded_at, t.superseded_by, t.ingest_id, "
            f"l.ingested_at, l.who, l.source AS ingest_source, l.sha256 FROM {frame} t "
            f"JOIN ingest_log l ON l.ingest_id = t.ingest_id WHERE {where} ORDER BY {order}, t.row_id",
            params,
            {**schema, "sha256": pl.String},
        )

    def campaign(
        self,
        batch_ids: Sequence[str] | None = None,
        *,
        since: dt.datetime | dt.date | str | None = None,
        variables: Sequence[str] | None = None,
        name: str = "store",
        validate: bool = True,
    ) -> Campaign:
        """The current rows of the batches asked for, as a Campaign; only those rows are read.

        Parameters
        ----------
        batch_ids
            The batches (default: all, or all that ``since`` selects).
        since
            Only batches that started at or after this date-time (a date, a date-time, naive
            taken as UTC, or ISO text).
        variables
            Only these observation variables (default: all).
        name
            The campaign's name.
        validate
            Check the campaign against the data model (default), as any Campaign is.

        Returns
        -------
        Campaign
            Its ``sources`` map each file that contributed a returned row to its sha256.

        Raises
        ------
        ArgumentError
            Batch ids the store does not hold (listed, with the nearest known ones), or a
            ``since`` that is not a date.

        Notes
        -----
        The filters are part of the SQL the database runs (``WHERE batch_id IN (...) AND variable
        IN (...)``), so memory holds what is asked for, not the store: DuckDB skips row groups by
        their min/max, PostgreSQL uses the ``(batch_id, variable)`` index.
        """
        where, params = ["superseded_at IS NULL"], []
        if batch_ids is not None:
            if isinstance(batch_ids, str):
                batch_ids = [batch_ids]
            batch_ids = list(dict.fromkeys(batch_ids))
            if not batch_ids:
                raise ArgumentError("Store.campaign: batch_ids is empty; give at least one batch id, or None for all.")
            where.append(f"batch_id IN ({_placeholders(batch_ids)})")
            params += batch_ids
        if since is not None:
            where.append("start >= ?")
            params.append(_as_utc(since))
        bcols = table_columns("batches")
        batches = self._db.query(
            f"SELECT {', '.join(bcols)}, ingest_id FROM batches WHERE {' AND '.join(where)} ORDER BY batch_id",
            params,
            {**bcols, "ingest_id": pl.Int64},
        )
        if batch_ids is not None:
            missing = sorted(set(batch_ids) - set(batches["batch_id"].to_list()))
            if missing:
                raise ArgumentError(
                    f"Store.campaign: {len(missing)} batch id(s) not in {self.url}: {', '.join(missing[:10])}. "
                    + suggest(missing[0], self.batch_ids(), what="Known batches")
                )
        ids = batches["batch_id"].to_list()
        everything = batch_ids is None and since is None
        frames: dict[str, pl.DataFrame] = {"batches": _decode_extra(batches)}
        for fname in ("observations", "events", "quality"):
            cols = table_columns(fname)
            w, p = ["superseded_at IS NULL"], []
            if not everything:
                if not ids:
                    frames[fname] = pl.DataFrame(schema={**cols, "ingest_id": pl.Int64})
                    continue
                w.append(f"batch_id IN ({_placeholders(ids)})")
                p += ids
            if fname == "observations" and variables is not None:
                variables = [variables] if isinstance(variables, str) else list(variables)
                w.append(f"variable IN ({_placeholders(variables)})" if variables else "FALSE")
                p += variables
            # sorted by polars (in parallel, and cheaper than the database's sort of wide string rows)
            frames[fname] = self._db.query(
                f"SELECT {', '.join(cols)}, ingest_id FROM {fname} WHERE {' AND '.join(w)}",
                p,
                {**cols, "ingest_id": pl.Int64},
            ).sort(list(KEYS[fname]), nulls_last=True)
        for fname in ("media", "specs"):
            cols = table_columns(fname)
            frames[fname] = self._db.query(
                f"SELECT {', '.join(cols)}, ingest_id FROM {fname} WHERE superseded_at IS NULL "
                f"ORDER BY {', '.join(KEYS[fname])}",
                (),
                {**cols, "ingest_id": pl.Int64},
            )
        ingest_ids = pl.concat([f.select("ingest_id") for f in frames.values()])["ingest_id"].unique().to_list()
        sources: dict[str, str] = {}
        if ingest_ids:
            log = self._db.query(
                f"SELECT source, sha256 FROM ingest_log WHERE ingest_id IN ({_placeholders(ingest_ids)}) "
                "ORDER BY ingest_id",
                ingest_ids,
                {"source": pl.String, "sha256": pl.String},
            )
            sources = {s: h or "" for s, h in log.iter_rows()}
        frames = {k: v.drop("ingest_id") for k, v in frames.items()}
        obs = frames["observations"]
        empty_extras = [
            c
            for c in ("replicate", "sample_id", "instrument", "raw_value", "raw_unit", "source_cell")
            if obs[c].null_count() == obs.height
        ]
        frames["observations"] = obs.drop(empty_extras)
        _register_instrument_variables(frames["observations"])
        return Campaign(**frames, name=name, sources=sources, validate=validate)


def _new_batches(ids: list[str]) -> pl.DataFrame:
    frame = empty_frame("batches").extend(
        pl.DataFrame({"batch_id": ids})
        .with_columns(
            [
                pl.lit(None, dtype).alias(c.name)
                for c in FRAMES["batches"]
                if c.name != "batch_id"
                for dtype in [c.dtype]
            ]
        )
        .select([c.name for c in FRAMES["batches"]])
    )
    return _to_table("batches", frame)


def _decode_extra(batches: pl.DataFrame) -> pl.DataFrame:
    extra = batches["extra"]
    batches = batches.drop("extra")
    if extra.null_count() == extra.len():
        return batches
    decoded = extra.str.json_decode(infer_schema_length=None).struct.unnest()
    return pl.concat([batches, decoded], how="horizontal")


def _register_instrument_variables(observations: pl.DataFrame) -> None:
    from bioworkbench.instruments import EXTRA_VARIABLES, register_instrument_variables

    if observations.height and observations["variable"].is_in(list(EXTRA_VARIABLES)).any():
        register_instrument_variables()


def _as_utc(value: dt.datetime | dt.date | str) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise ArgumentError(f"Store.campaign: since={value!r} is not an ISO date such as '2024-03-01'.") from exc
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, dt.datetime):
        raise ArgumentError(f"Store.campaign: since must be a date or date-time; got {describe_type(value)}.")
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name (a container without /etc/passwd entry)
        import os

        return f"uid {os.getuid()}"


def open_store(url: str = DEFAULT_URL, *, read_only: bool = False) -> Store:
    """Open a campaign store (created on first use): a DuckDB file by default, or PostgreSQL.

    Parameters
    ----------
    url
        ``duckdb:///data/plant.duckdb`` (default: a DuckDB file ``data/plant.duckdb`` relative to
        the working folder; ``duckdb:////abs/path.duckdb`` for an absolute path;
        ``duckdb:///:memory:`` for a throw-away store), or a PostgreSQL URI:
        ``postgresql://user@host:5432/dbname``, or over a Unix socket
        ``postgresql:///dbname?host=/run/postgresql``. The password, if any, is best kept in
        ``~/.pgpass`` rather than in the URL.
    read_only
        Open a DuckDB file read-only (several readers may share it while no one writes).

    Returns
    -------
    Store
        Use it as a context manager (``with bw.open_store(...) as store:``) or call
        :meth:`Store.close`.

    Raises
    ------
    ArgumentError
        A URL of another kind.
    DataReadError
        The database cannot be opened or reached.
    MissingDependencyError
        The driver (``duckdb`` or ``psycopg``) is not installed.

    Examples
    --------
    >>> import bioworkbench as bw
    >>> with bw.open_store("duckdb:///:memory:") as store:
    ...     result = store.add(bw.simulate_campaign(n_batches=2, random_seed=1), source="demo")
    ...     store.campaign(["B01"]).batch_ids
    ['B01']
    """
    backend = connect(url, read_only=read_only)
    try:
        return Store(backend)
    except BaseException:
        backend.close()
        raise

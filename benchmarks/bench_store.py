"""Benchmark: campaigns into a store and a few batches back, at plant scale (issue 17, item 5).

Three measurements, each printed as a table row:

1. **1,000 batches into DuckDB and PostgreSQL** (``--n-batches``; ~16 M observation rows): the
   campaign is simulated in chunks (:func:`bioworkbench.simulate_campaign`, batch ids prefixed by
   the chunk so they stay unique) and each chunk is added with
   :meth:`~bioworkbench.database.Store.add` to both stores, so memory holds one chunk, never the
   campaign. PostgreSQL receives the rows through ``COPY ... FROM STDIN`` in CSV blocks (psycopg's
   copy protocol) and returns a query's rows through ``COPY ... TO STDOUT``. The PostgreSQL server
   is ``--pg-url``, or a throw-away one started on a Unix socket in a temporary folder from the
   programs ``tests/database_server.py`` finds (``--no-pg`` skips it).
2. **10,000 batches in DuckDB** (``--big``; ~160 M observation rows) in a file under ``--big-dir``
   (default: the system's temporary folder; the free space is checked first and the file removed
   at the end unless ``--keep``). Simulating 10,000 batches would take longer than storing them, so
   ``--pool`` batches (default 200) are simulated once and each chunk is a copy of some of them
   with new batch ids, starts moved by a day per chunk, and every observed value of a batch scaled
   by a factor of its own (log-normal, 5 %; amounts only, not percentages, pH or temperature). The store sees 10,000 distinct batches and 160 M
   distinct rows; the kinetics of the copies repeat. ``--skip-big`` skips this part.
3. **A query of 24 batches to a Campaign** from each store (:meth:`~bioworkbench.database.Store.campaign`,
   validated as any Campaign), spread over the store's batches, timed three times (the first is
   the cold one).

Targets (the issue): the 24-batch query from the 10,000-batch store under 2 s, peak memory under
4 GB for the whole run. Peak memory is the process's maximum resident set size
(``resource.getrusage``), which includes DuckDB's own buffers (DuckDB's memory limit is left at its
default, 80 % of RAM; the PostgreSQL server is another process and not counted).

Usage::

    PYTHONPATH=. python benchmarks/bench_store.py                              # everything (~25 min)
    PYTHONPATH=. python benchmarks/bench_store.py --skip-big                   # 1,000 batches only
    PYTHONPATH=. python benchmarks/bench_store.py --n-batches 100 --big 400 --chunk 50 --no-pg  # smoke run
    PYTHONPATH=. python benchmarks/bench_store.py --pg-url 'postgresql:///bw?host=/run/postgresql'
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl

import bioworkbench as bw
from bioworkbench.database import open_store

#: bytes of DuckDB file per observation row, measured on the 1,000-batch store (with a margin)
_BYTES_PER_ROW = 30


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def simulated(n: int, seed: int) -> dict[str, pl.DataFrame]:
    """The frames of ``n`` simulated batches (warnings of the simulation silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dict(bw.simulate_campaign(n_batches=n, random_seed=seed).frames())


def prefixed(frames: dict[str, pl.DataFrame], prefix: str) -> dict[str, pl.DataFrame]:
    """The frames with every batch id prefixed (so that chunks do not collide)."""
    return {
        name: frame.with_columns(batch_id=pl.lit(prefix) + pl.col("batch_id")) if "batch_id" in frame.columns else frame
        for name, frame in frames.items()
    }


def copied_chunk(pool: dict[str, pl.DataFrame], i: int, n: int, rng: np.random.Generator) -> dict[str, pl.DataFrame]:
    """Chunk ``i`` of the big store: ``n`` batches copied from the pool (see the module docstring)."""
    ids = pool["batches"]["batch_id"].to_list()
    chosen = [ids[(i * n + j) % len(ids)] for j in range(n)]
    mapping = pl.DataFrame(
        {
            "batch_id": chosen,
            "new_id": [f"K{i:04d}-{j:03d}" for j in range(n)],
            "scale": np.exp(rng.normal(0.0, 0.05, n)),
        }
    )
    out = {}
    for name in ("batches", "observations", "events", "quality"):
        frame = pool[name].join(mapping, on="batch_id", how="inner")
        if name == "observations":
            # amounts only: a percentage, pH or temperature scaled could leave its range
            amount = ~pl.col("unit").is_in(["%", "degC", ""]) & (pl.col("variable") != "ph")
            frame = frame.with_columns(pl.when(amount).then(pl.col("value") * pl.col("scale")).otherwise("value"))
        if name == "batches":
            frame = frame.with_columns(pl.col("start").dt.offset_by(f"{i}d"))
        out[name] = frame.drop("batch_id", "scale").rename({"new_id": "batch_id"}).select(pool[name].columns)
    if i == 0:
        out["media"], out["specs"] = pool["media"], pool["specs"]
    return out


def time_query(store, n: int) -> tuple[list[float], int, int]:
    """Query ``n`` batches spread over the store three times: (seconds per run, batches, observations)."""
    ids = store.batch_ids()
    pick = ids[:: max(1, len(ids) // n)][:n]
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        c = store.campaign(pick)
        times.append(time.perf_counter() - t0)
    return times, len(pick), c.observations.height


def start_postgres():
    """A throw-away PostgreSQL server (tests/database_server.py), or ``(None, why)``."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from database_server import PostgresServer, find_pg_bin

    bin_dir, why = find_pg_bin()
    if bin_dir is None:
        return None, why
    server = PostgresServer(bin_dir)
    return server, ""


def build_1000(args, duck_url: str, pg_url: str | None) -> dict:
    """Simulate ``--n-batches`` in chunks and add each chunk to DuckDB (and PostgreSQL)."""
    res = {"rows": 0, "sim": 0.0, "duck": 0.0, "pg": 0.0}
    stores = {"duck": open_store(duck_url)}
    if pg_url:
        stores["pg"] = open_store(pg_url)
    n_chunks = -(-args.n_batches // args.chunk)
    try:
        for i in range(n_chunks):
            n = min(args.chunk, args.n_batches - i * args.chunk)
            t0 = time.perf_counter()
            frames = prefixed(simulated(n, args.seed + i), f"C{i:03d}-")
            res["sim"] += time.perf_counter() - t0
            line = f"chunk {i + 1}/{n_chunks}: {n} batches, {frames['observations'].height:,} observations"
            for key, store in stores.items():
                t0 = time.perf_counter()
                store.add(frames, source=f"chunk {i}")
                dt = time.perf_counter() - t0
                res[key] += dt
                line += f"; {store.kind} {dt:.1f} s"
            res["rows"] += frames["observations"].height
            print(f"{line}; peak RSS {peak_rss_mb():,.0f} MB", flush=True)
            del frames
        res["chunks"] = n_chunks
        for key, store in stores.items():
            res[f"{key}_query"] = time_query(store, args.query)
    finally:
        for store in stores.values():
            store.close()
    return res


def build_big(args, path: Path) -> dict:
    """The ``--big``-batch DuckDB store, chunk by chunk from the pool (see the module docstring)."""
    t0 = time.perf_counter()
    pool = simulated(args.pool, args.seed + 10_000)
    t_pool = time.perf_counter() - t0
    rng = np.random.default_rng(args.seed)
    n_chunks = -(-args.big // args.big_chunk)
    rows, t_add = 0, 0.0
    with open_store(f"duckdb:///{path}") as store:
        for i in range(n_chunks):
            n = min(args.big_chunk, args.big - i * args.big_chunk)
            frames = copied_chunk(pool, i, n, rng)
            t0 = time.perf_counter()
            store.add(frames, source=f"big chunk {i}")
            dt = time.perf_counter() - t0
            t_add += dt
            rows += frames["observations"].height
            print(
                f"big chunk {i + 1}/{n_chunks}: {n} batches, {frames['observations'].height:,} observations, "
                f"add {dt:.1f} s; {rows:,} rows so far; peak RSS {peak_rss_mb():,.0f} MB",
                flush=True,
            )
            del frames
    del pool
    # the query from a fresh connection, read-only, as a report or the dashboard opens it
    with open_store(f"duckdb:///{path}", read_only=True) as store:
        query = time_query(store, args.query)
    return {"rows": rows, "pool": t_pool, "add": t_add, "chunks": n_chunks, "query": query, "size": path.stat().st_size}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-batches", type=int, default=1000, help="batches of the DuckDB/PostgreSQL ingest")
    parser.add_argument("--chunk", type=int, default=100, help="batches simulated and added at a time")
    parser.add_argument("--query", type=int, default=24, help="batches read back")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pg-url", default=None, help="PostgreSQL store URL (default: start a throw-away server)")
    parser.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--big", type=int, default=10_000, help="batches of the big DuckDB store")
    parser.add_argument("--big-chunk", type=int, default=100, help="batches added at a time to the big store")
    parser.add_argument("--pool", type=int, default=200, help="batches simulated for the big store's copies")
    parser.add_argument("--big-dir", default=None, help="folder of the big store's file (default: system temp)")
    parser.add_argument("--skip-big", action="store_true", help="skip the big store")
    parser.add_argument("--keep", action="store_true", help="keep the big store's file")
    args = parser.parse_args()

    big_dir = Path(args.big_dir or tempfile.gettempdir())
    need = args.big * 16_000 * _BYTES_PER_ROW
    if not args.skip_big:
        free = shutil.disk_usage(big_dir).free
        if free < 1.5 * need:
            print(
                f"{big_dir} has {free / 1e9:.1f} GB free; the {args.big:,}-batch store needs about {need / 1e9:.1f} GB "
                "(and room to spare). Give --big-dir elsewhere or --skip-big.",
                file=sys.stderr,
            )
            return 2
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} cores")
    tmp = tempfile.TemporaryDirectory(prefix="bw-bench-store-")
    server, pg_url = None, args.pg_url
    if not args.no_pg and pg_url is None:
        server, why = start_postgres()
        if server is None:
            print(f"PostgreSQL skipped: {why}", file=sys.stderr)
        else:
            pg_url = server.new_database()
    if args.no_pg:
        pg_url = None
    rows_out = []
    try:
        duck_url = f"duckdb:///{tmp.name}/plant.duckdb"
        small = build_1000(args, duck_url, pg_url)
        n, r = args.n_batches, small["rows"]
        size = Path(tmp.name, "plant.duckdb").stat().st_size / 1e6
        rows_out += [
            (f"{n:,} batches simulated ({small['chunks']} chunks; not the store's time)", f"{small['sim']:.1f} s"),
            (
                f"ingest {n:,} batches / {r / 1e6:.1f} M rows into DuckDB",
                f"{small['duck']:.1f} s ({r / small['duck'] / 1e6:.2f} M rows/s); file {size:,.0f} MB",
            ),
        ]
        if pg_url:
            rows_out.append(
                (
                    f"ingest {n:,} batches / {r / 1e6:.1f} M rows into PostgreSQL (COPY)",
                    f"{small['pg']:.1f} s ({r / small['pg'] / 1e6:.2f} M rows/s)",
                )
            )
        for key, label in (("duck", "DuckDB"), ("pg", "PostgreSQL")):
            if f"{key}_query" in small:
                times, k, obs = small[f"{key}_query"]
                rows_out.append(
                    (
                        f"query {k} batches -> Campaign, {n:,}-batch {label} store",
                        f"{min(times):.2f} s best (runs {', '.join(f'{t:.2f}' for t in times)}); {obs:,} observations",
                    )
                )
        if not args.skip_big:
            path = big_dir / f"bw-bench-store-{os.getpid()}.duckdb"
            try:
                big = build_big(args, path)
            finally:
                if not args.keep:
                    path.unlink(missing_ok=True)
                    Path(f"{path}.wal").unlink(missing_ok=True)
            times, k, obs = big["query"]
            rows_out += [
                (
                    f"build {args.big:,} batches / {big['rows'] / 1e6:.0f} M rows into DuckDB "
                    f"({big['chunks']} chunks of copies of {args.pool} simulated)",
                    f"{big['add']:.0f} s ({big['rows'] / big['add'] / 1e6:.2f} M rows/s); simulate the pool "
                    f"{big['pool']:.0f} s; file {big['size'] / 1e9:.1f} GB",
                ),
                (
                    f"query {k} batches -> Campaign, {args.big:,}-batch DuckDB store (read-only)",
                    f"{min(times):.2f} s best, first {times[0]:.2f} s (runs {', '.join(f'{t:.2f}' for t in times)}); "
                    f"{obs:,} observations",
                ),
            ]
    finally:
        if server is not None:
            server.stop()
        tmp.cleanup()
    rows_out.append(("peak RSS, whole run (this process)", f"{peak_rss_mb():,.0f} MB"))
    rows_out.append(("load average at end", ", ".join(f"{x:.2f}" for x in os.getloadavg())))
    print()
    print("| measurement | result |")
    print("|---|---|")
    for label, value in rows_out:
        print(f"| {label} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

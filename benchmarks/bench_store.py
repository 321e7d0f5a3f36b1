"""Benchmark: ingest a large simulated campaign into a DuckDB store, then query a few batches back.

The issue's targets: a 10,000-batch store (~160 M observation rows) built in chunks, a query of 24
batches to a Campaign in under 2 s, and peak memory under 4 GB for the whole run. The campaign is
simulated in chunks (:func:`bioworkbench.simulate_campaign`, batch ids prefixed by chunk so they
stay unique) and each chunk is added with :meth:`~bioworkbench.database.Store.add`, so memory holds
one chunk, never the campaign. The query reads 24 batches with
:meth:`~bioworkbench.database.Store.campaign` (validated, as any Campaign) and is timed best of 3.

Usage::

    PYTHONPATH=. python benchmarks/bench_store.py --n-batches 1000            # ~16 M rows
    PYTHONPATH=. python benchmarks/bench_store.py --n-batches 100 --chunk 50  # a smoke run
    PYTHONPATH=. python benchmarks/bench_store.py --url postgresql:///bw?host=/tmp/dir

Peak memory is the process's maximum resident set size (``resource.getrusage``), which includes
DuckDB's own buffers; DuckDB's memory limit is left at its default (80 % of RAM).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

import polars as pl

import bioworkbench as bw
from bioworkbench.database import open_store


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def chunk_campaign(i: int, n: int, seed: int) -> dict[str, pl.DataFrame]:
    """Simulate ``n`` batches; their ids prefixed with the chunk number to stay unique."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = bw.simulate_campaign(n_batches=n, random_seed=seed + i)
    frames = {}
    for name, frame in c.frames().items():
        if "batch_id" in frame.columns:
            frame = frame.with_columns(batch_id=pl.lit(f"C{i:03d}-") + pl.col("batch_id"))
        frames[name] = frame
    return frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-batches", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=100, help="batches simulated and added at a time")
    parser.add_argument("--query", type=int, default=24, help="batches read back")
    parser.add_argument("--url", default=None, help="store URL (default: a DuckDB file in a temporary folder)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="bw-bench-store-")
    url = args.url or f"duckdb:///{tmp.name}/plant.duckdb"
    rows = 0
    t_sim = t_add = 0.0
    with open_store(url) as store:
        n_chunks = -(-args.n_batches // args.chunk)
        for i in range(n_chunks):
            n = min(args.chunk, args.n_batches - i * args.chunk)
            t0 = time.perf_counter()
            frames = chunk_campaign(i, n, args.seed)
            t1 = time.perf_counter()
            result = store.add(frames, source=f"chunk {i}")
            t2 = time.perf_counter()
            t_sim += t1 - t0
            t_add += t2 - t1
            rows += frames["observations"].height
            print(
                f"chunk {i + 1}/{n_chunks}: {n} batches, {frames['observations'].height:,} observations, "
                f"add {t2 - t1:.1f} s ({result.rows_added:,} rows), peak RSS {peak_rss_mb():,.0f} MB",
                flush=True,
            )
            del frames
        ids = store.batch_ids()
        pick = ids[:: max(1, len(ids) // args.query)][: args.query]
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            c = store.campaign(pick)
            times.append(time.perf_counter() - t0)
        size = Path(tmp.name, "plant.duckdb").stat().st_size / 1e6 if args.url is None else float("nan")
        print()
        print(f"| store | {store.kind} ({url}) |")
        print("|---|---|")
        print(f"| batches / observation rows | {len(ids):,} / {rows:,} |")
        print(f"| simulate (not the store's) | {t_sim:.1f} s |")
        print(f"| ingest (Store.add, {n_chunks} chunks) | {t_add:.1f} s ({rows / t_add / 1e6:.2f} M rows/s) |")
        print(f"| database file | {size:,.0f} MB |")
        print(
            f"| query {len(pick)} batches -> Campaign | best {min(times):.2f} s (runs: "
            f"{', '.join(f'{t:.2f}' for t in times)}); {c.observations.height:,} observations |"
        )
        print(f"| peak RSS, whole run | {peak_rss_mb():,.0f} MB |")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Many reports in parallel: every parameter file under some folders, run through Dask.

:func:`run_many` runs each parameter file with :func:`~bioworkbench.reports.run.run_report` on a
Dask cluster (a local one by default; a scheduler address runs the same jobs elsewhere). One failure
does not stop the others: a file refused before its kernel started is recorded as a run folder
holding a ``refused`` manifest, so the index lists it.

Order (issue 19): the runs of one notebook fit models of the same structure, so they are run back
to back in the same worker (:class:`_Lanes`): each worker takes a notebook's runs one after the
other, the notebooks that took longest last time (``duration_s`` of their manifests in the output
folder; else the number of runs) first; a worker whose notebook is done takes an untouched notebook,
and only when none is left shares the runs of the one with most runs left. The first run of a
notebook compiles its model and keeps it in the compile cache
(:mod:`bioworkbench.models.compile_cache`); the next runs in that worker load it instead of
compiling, and two workers never compile the same model at once (the cache's file lock makes the
second one wait for the first one's entry). Jobs are handed to the workers one at a time, so a
worker is never left with a queue while another is idle.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bioworkbench.errors import ConfigError
from bioworkbench.reports.index import write_index
from bioworkbench.reports.provenance import versions
from bioworkbench.reports.run import run_report

__all__ = ["parameter_files", "run_many"]


def parameter_files(paths: Iterable[str | os.PathLike]) -> list[tuple[str, Path]]:
    """The parameter files under ``paths``, each with the report it is for.

    Parameters
    ----------
    paths
        YAML files, or folders laid out as ``parameters/<report>/*.yaml`` (searched recursively for
        ``*.yaml`` and ``*.yml``).

    Returns
    -------
    list of (str, pathlib.Path)
        ``(report name, file)``: the report is the name of the file's folder.

    Raises
    ------
    ConfigError
        A path does not exist, or no parameter file was found.
    """
    found: list[tuple[str, Path]] = []
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(p.rglob("*.yaml")) + sorted(p.rglob("*.yml"))
        elif p.exists():
            files = [p]
        else:
            raise ConfigError(f"parameter file or folder {p} not found.")
        for f in files:
            found.append((f.parent.name, f))
    if not found:
        raise ConfigError(f"no parameter files (*.yaml) under {', '.join(map(str, paths))}.")
    return found


def _run_one(name: str, path: str, output_dir: str, kernel: str | None, cwd: str) -> dict[str, Any]:
    os.chdir(cwd)
    try:
        res = run_report(
            name,
            parameter_file=path,
            output_dir=output_dir,
            kernel=kernel,
            write_index_file=False,
            raise_on_failure=False,
            fork_kernel=True,
        )
        return {
            "name": name,
            "file": path,
            "status": res.status,
            "run_dir": str(res.run_dir),
            "error": res.manifest.get("error"),
        }
    except Exception as exc:  # refused before the kernel: record it, never stop the others
        run_dir = _record_refusal(name, path, output_dir, exc)
        return {
            "name": name,
            "file": path,
            "status": "refused",
            "run_dir": str(run_dir),
            "error": {"ename": type(exc).__name__, "evalue": str(exc)},
        }


def _record_refusal(name: str, path: str, output_dir: str, exc: Exception) -> Path:
    """A run folder holding only a manifest with status ``refused``, so the index lists it."""
    now = dt.datetime.now(dt.UTC)
    run_id = f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z-{Path(path).stem}-refused"
    run_dir = Path(output_dir) / name / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest = {
        "report": name,
        "run": run_id,
        "status": "refused",
        "error": {"cell": None, "source": None, "ename": type(exc).__name__, "evalue": str(exc)},
        "parameters": {},
        "parameter_file": path,
        "started": now.isoformat(timespec="seconds"),
        "ended": now.isoformat(timespec="seconds"),
        "duration_s": 0.0,
        "versions": versions(),
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    return run_dir


def _estimates(jobs: Sequence[tuple[str, Path]], output_dir: Path) -> dict[str, float]:
    """Expected seconds of each notebook's runs: the last recorded ``duration_s`` of each parameter
    file under ``output_dir`` (the median of the known ones for a file never run; 1 s per run when
    nothing is known), summed per notebook."""
    last: dict[str, float] = {}
    for name in {n for n, _ in jobs}:
        for m in sorted((output_dir / name).glob("*/manifest.json")):
            try:
                rec = json.loads(m.read_text())
                last[str(Path(rec["parameter_file"]).resolve())] = float(rec["duration_s"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
    known = sorted(last.values())
    default = known[len(known) // 2] if known else 1.0
    out: dict[str, float] = {}
    for name, f in jobs:
        out[name] = out.get(name, 0.0) + last.get(str(f.resolve()), default)
    return out


class _Lanes:
    """Which job a free worker runs next: the next run of the notebook it is on, else the first run of
    the untouched notebook expected to take longest, else a run of the notebook with most runs left."""

    def __init__(self, jobs: Sequence[tuple[str, Path]], estimates: dict[str, float]) -> None:
        groups: dict[str, list[tuple[int, str, Path]]] = {}
        for i, (name, f) in enumerate(jobs):
            groups.setdefault(name, []).append((i, name, f))
        order = sorted(groups, key=lambda n: (-estimates.get(n, 0.0), n))
        self.untouched = [groups[n] for n in order]
        self.started: list[list[tuple[int, str, Path]]] = []
        self.current: dict[Any, list[tuple[int, str, Path]]] = {}

    def next_for(self, worker: Any) -> tuple[int, str, Path] | None:
        """The job ``worker`` runs next, or ``None`` when every job has been handed out."""
        group = self.current.get(worker)
        if group:
            return group.pop(0)
        if self.untouched:
            group = self.untouched.pop(0)
            self.started.append(group)
            self.current[worker] = group
            return group.pop(0)
        left = [g for g in self.started if g]
        if not left:
            return None
        group = max(left, key=len)  # shared with the worker on it: take from the other end
        return group.pop()


# The local cluster's work happens in the report kernels, which are processes of their own; Dask's
# housekeeping competes with them for the same cores. Without a dashboard nobody reads the workers'
# statistical profiler (a stack sample of every thread every 10 ms) or the system monitor;
# event-loop health ticks every 20 ms and memory checks every 100 ms are more often than jobs that
# take seconds need; and work stealing has nothing to do when the scheduler queues each job until a
# worker is free. What this saves is measured in benchmarks/bench_reports.py.
_QUIET_CLUSTER = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.admin.tick.interval": "500ms",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.scheduler.work-stealing": False,
}


def run_many(
    paths: Iterable[str | os.PathLike],
    *,
    output_dir: str | os.PathLike = "reports",
    scheduler: str | None = None,
    n_workers: int | None = None,
    kernel: str | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run every parameter file under ``paths`` through Dask; one failure does not stop the others.

    Parameters
    ----------
    paths
        Parameter files or folders (see :func:`parameter_files`).
    output_dir
        The reports folder; the index is rewritten after each job.
    scheduler
        The address of an existing Dask scheduler; by default a local cluster of ``n_workers``
        single-threaded worker processes is started (and closed at the end).
    n_workers
        Workers of the local cluster (default: one per CPU core).
    kernel
        Jupyter kernel of every run (see :func:`~bioworkbench.reports.run.run_report`).
    progress
        Show a progress bar on stderr, with a line per run that did not complete.

    Returns
    -------
    list of dict
        One record per job, sorted by file: ``name, file, status`` (``completed``, ``failed`` or
        ``refused``), ``run_dir`` and ``error``.

    Raises
    ------
    ConfigError
        A path does not exist, or no parameter file was found (before any job starts).

    Notes
    -----
    The runs of one notebook go back to back to one worker, the notebooks that took longest last
    time first, so that a model is compiled once and then loaded from the compile cache (see the
    module docstring).
    """
    from dask.distributed import Client, LocalCluster, as_completed

    jobs = parameter_files(paths)
    out = str(Path(output_dir).resolve())
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        import dask

        n = n_workers or os.cpu_count() or 1
        with dask.config.set(_QUIET_CLUSTER):
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    results = []
    try:
        workers: list[Any] = list(client.scheduler_info().get("workers", {}))
        workers = workers or [None] * (n_workers or os.cpu_count() or 1)
        lanes = _Lanes(jobs, _estimates(jobs, Path(out)))
        running: dict[Any, Any] = {}

        def submit(worker: Any) -> Any:
            job = lanes.next_for(worker)
            if job is None:
                return None
            i, name, f = job
            fut = client.submit(
                _run_one,
                name,
                str(f.resolve()),
                out,
                kernel,
                os.getcwd(),
                pure=False,
                key=f"{name}-{f.stem}-{i}",
                workers=[worker] if worker is not None else None,
                allow_other_workers=True,  # a worker that left: run it elsewhere rather than wait
            )
            running[fut] = worker
            return fut

        pending = as_completed([f for f in map(submit, workers) if f is not None])
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(jobs), desc="reports", unit="report", file=sys.stderr)
        for fut in pending:
            res = fut.result()
            nxt = submit(running.pop(fut))
            if nxt is not None:
                pending.add(nxt)
            results.append(res)
            write_index(out)
            if bar is not None:
                bar.update(1)
                if res["status"] != "completed":
                    bar.write(
                        f"  {res['status']}: {res['name']} {Path(res['file']).name}: "
                        f"{(res['error'] or {}).get('ename')}: {(res['error'] or {}).get('evalue')}"
                    )
        if bar is not None:
            bar.close()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return sorted(results, key=lambda r: r["file"])

"""Run folders: where a run works, how it is moved into place, and how a dead run is recorded.

A run works in a temporary folder ``<output_dir>/<report>/.<run id>-<random>`` that carries a
marker (:data:`MARKER`: process id, its start time and host). When the run is complete the folder
is renamed to ``<output_dir>/<report>/<run id>`` (:func:`move_into_place`; a run is never
overwritten), so a reader never sees a half-written run.

A run stopped by Ctrl-C or SIGTERM records itself (:mod:`bioworkbench.reports.run`). A run killed
outright (SIGKILL, out of memory) cannot: the next :func:`recover_interrupted` (called by every
:func:`~bioworkbench.reports.index.write_index`) that finds its process gone from this host records
it as ``interrupted`` and removes the debris, listing it. A folder of a live process, or of another
host, is ``running``; one without a readable marker ``unknown`` (:func:`run_state`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bioworkbench.reports.provenance import write_json

__all__ = [
    "MARKER",
    "TEMP_RUN",
    "clear_debris",
    "move_into_place",
    "process_alive",
    "read_marker",
    "recover_interrupted",
    "run_state",
    "write_marker",
]

#: the marker a run keeps in its temporary folder until it is moved into place
MARKER = ".run.json"
#: a run's temporary folder: ``.<run id>-<random>`` (see :func:`~bioworkbench.reports.run_report`)
TEMP_RUN = re.compile(r"^\.\d{8}T\d{9}Z-")


def move_into_place(tmp: Path, final: Path) -> Path:
    """Rename a finished run's temporary folder to its run folder.

    Parameters
    ----------
    tmp
        The temporary folder.
    final
        The run folder wanted.

    Returns
    -------
    pathlib.Path
        ``final``, or ``final-2``, ``final-3``… when it exists: a run is never overwritten.

    Raises
    ------
    OSError
        The rename failed for another reason than the target existing.
    """
    base, n = final, 2
    while True:
        if not final.exists():
            try:
                tmp.rename(final)
                return final
            except OSError:
                if not final.exists():
                    raise
        final = base.with_name(f"{base.name}-{n}")
        n += 1


def write_marker(tmp: Path, record: Mapping[str, Any]) -> None:
    """Write who runs in ``tmp``, so a later index can tell a dead run's debris from a live run.

    Parameters
    ----------
    tmp
        The run's temporary folder.
    record
        The run's record (``report, run, started, parameters, parameter_file, notebook, kernel,
        inputs_sha256``), kept in the marker so that a dead run's manifest can be written from it.

    Notes
    -----
    The marker adds this process's id, its start time (``psutil``; pids are reused) and the host.
    """
    marker = {
        "pid": os.getpid(),
        "process_started": _process_started(os.getpid()),
        "host": platform.node(),
        **{
            k: record[k]
            for k in (
                "report",
                "run",
                "started",
                "parameters",
                "parameter_file",
                "notebook",
                "kernel",
                "inputs_sha256",
            )
        },
    }
    write_json(tmp / MARKER, marker)


def _process_started(pid: int) -> float | None:
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except Exception:
        return None


def process_alive(pid: Any, started: Any) -> bool:
    """Whether process ``pid`` of this host still runs, and is the same process.

    Parameters
    ----------
    pid
        The process id recorded (anything else than a positive int: not alive).
    started
        Its start time as recorded (seconds since the epoch), or ``None``: a process of that id
        that started more than a second apart is another one (pids are reused).

    Returns
    -------
    bool
        ``False`` for a gone or zombie process; ``True`` when it cannot be told (no permission).
    """
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with distributed
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return not (isinstance(started, int | float) and abs(proc.create_time() - started) > 1.0)
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


def clear_debris(folder: Path, *, ignore_errors: bool = False) -> list[dict[str, Any]]:
    """Remove what a stopped run left in its folder (but its marker), and say what it was.

    Parameters
    ----------
    folder
        The run's temporary folder.
    ignore_errors
        Go on when a file cannot be removed (else the ``OSError`` is raised).

    Returns
    -------
    list of dict
        ``{"file", "bytes"}`` of every file found (paths relative to ``folder``), listed before
        anything was removed.
    """
    found = [
        {"file": p.relative_to(folder).as_posix(), "bytes": p.stat().st_size}
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MARKER
    ]
    for p in sorted(folder.iterdir()):
        if p.name != MARKER:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=ignore_errors)
            elif ignore_errors:
                p.unlink(missing_ok=True)
            else:
                p.unlink()
    return found


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker of a run's temporary folder.

    Parameters
    ----------
    folder
        The temporary folder.

    Returns
    -------
    dict or None
        The marker, or ``None`` when it is missing or not a JSON object.
    """
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _recovering_alive(folder: Path) -> bool:
    m = re.search(r"\.recovering-(\d+)$", folder.name)
    return m is not None and process_alive(int(m.group(1)), None)


def run_state(folder: Path, marker: Mapping[str, Any] | None) -> str:
    """The state of a run's temporary folder.

    Parameters
    ----------
    folder
        The temporary folder (a name ending ``.recovering-<pid>`` is being recovered by that process).
    marker
        :func:`read_marker`.

    Returns
    -------
    str
        ``"dead"`` (its process on this host is gone), ``"running"`` (alive, being recovered, or on
        another host: it cannot be told) or ``"unknown"`` (no readable marker).
    """
    if marker is None:
        return "unknown"
    if _recovering_alive(folder):
        return "running"
    if marker.get("host") != platform.node():
        return "running"
    return "running" if process_alive(marker.get("pid"), marker.get("process_started")) else "dead"


def recover_interrupted(output_dir: str | os.PathLike = "reports") -> list[Path]:
    """Record runs whose process died without finishing (SIGKILL, out of memory, a crash) as ``interrupted``.

    A run keeps a marker (process id, its start time, host) in its temporary folder
    ``<output_dir>/<report>/.<run>-*``. When that process is gone from this host, the folder's
    files are removed (and listed in the manifest as ``debris_removed``), a manifest with status
    ``interrupted`` is written, and the folder becomes ``<output_dir>/<report>/<run>``. Folders of
    live processes, of other hosts and without a marker are left alone (the index lists them).

    Parameters
    ----------
    output_dir
        The reports folder.

    Returns
    -------
    list of pathlib.Path
        The run folders recorded.

    Notes
    -----
    The folder is first renamed to ``….recovering-<pid>``: the rename is the claim, so of two
    processes recovering at once one wins.
    """
    root = Path(output_dir)
    recovered: list[Path] = []
    for folder in sorted(root.glob("*/.*")):
        if not folder.is_dir() or not TEMP_RUN.match(folder.name):
            continue
        marker = read_marker(folder)
        if run_state(folder, marker) != "dead":
            continue
        base = re.sub(r"(\.recovering-\d+)+$", "", folder.name)
        claimed = folder.with_name(f"{base}.recovering-{os.getpid()}")
        try:  # the rename is the claim: of two processes recovering at once, one wins
            folder.rename(claimed)
        except OSError:
            continue
        run = str(marker.get("run") or base.lstrip(".") or "run")
        run = re.sub(r"[^A-Za-z0-9_.-]+", "-", run).strip("-.") or "run"
        write_json(claimed / "manifest.json", _died_manifest(marker, run, clear_debris(claimed, ignore_errors=True)))
        (claimed / MARKER).unlink(missing_ok=True)
        try:
            recovered.append(move_into_place(claimed, folder.parent / run))
        except OSError:  # pragma: no cover - left named .recovering-<pid>, listed by the index
            continue
    return recovered


def _died_manifest(marker: Mapping[str, Any], run: str, removed: list[dict[str, Any]]) -> dict[str, Any]:
    """The manifest of a run whose process died: its marker's record, status ``interrupted``."""
    now = dt.datetime.now(dt.UTC)
    pid, host = marker.get("pid"), marker.get("host")
    return {k: v for k, v in marker.items() if k not in ("pid", "process_started", "host")} | {
        "run": run,
        "status": "interrupted",
        "error": {
            "cell": None,
            "source": None,
            "ename": "ProcessDied",
            "evalue": (
                f"the process that ran this report (pid {pid} on {host}) ended before the run finished "
                f"(killed, e.g. by SIGKILL or for lack of memory, or crashed); found on "
                f"{now:%Y-%m-%d %H:%M:%S} UTC"
            ),
        },
        "ended": None,
        "duration_s": None,
        "debris_removed": removed,
        "host": host,
        "pid": pid,
    }

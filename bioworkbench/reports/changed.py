"""Which reports to run again: those whose inputs changed since their last completed run.

``bioworkbench run parameters/ --changed`` (:func:`changed_reports`) reads, for each parameter
file, the manifest of its newest run under the output folder and compares what the run recorded
with what the inputs are now: the parameter file's bytes, the notebook's, every file of a
campaign folder and every file parameter (sha256), the checked parameters, the kernel and the
versions of the packages that change numbers; for a campaign read from a store, the selection's
stamp (:meth:`bioworkbench.database.Store.stamp`: the newest ingest that wrote one of its rows).
A report never run, or whose newest run did not complete (failed, interrupted, refused), is run.
So a scheduled run after each ingest re-renders only what the new data touches.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bioworkbench.errors import BioWorkbenchError, ConfigError
from bioworkbench.reports.params import check_parameters, find_notebook, notebook_parameters, read_parameter_file
from bioworkbench.reports.provenance import hash_inputs, versions

__all__ = ["Decision", "changed_reports", "last_runs"]


@dataclass(frozen=True)
class Decision:
    """Whether one parameter file's report is run again, and why.

    Parameters
    ----------
    name
        The report.
    file
        The parameter file.
    run
        Run it (``False``: skipped, nothing it reads changed).
    reason
        Why, in words (``"the store has new data for its selection (newest ingest 7, was 5)"``).
    last_run
        The run folder compared with, or ``None`` when there is none.
    """

    name: str
    file: Path
    run: bool
    reason: str
    last_run: Path | None = None

    def __str__(self) -> str:
        what = "run" if self.run else "skipped"
        return f"{what}: {self.name}/{self.file.name}: {self.reason}"


def last_runs(output_dir: str | os.PathLike, name: str) -> dict[str, tuple[Path, dict[str, Any]]]:
    """The newest run of report ``name`` for each parameter file, from the run manifests.

    Parameters
    ----------
    output_dir
        The reports folder (runs are ``<output_dir>/<name>/<run>/manifest.json``).
    name
        The report.

    Returns
    -------
    dict
        Resolved parameter-file path -> ``(run folder, manifest)`` of its newest run (by start time,
        then run id); runs without a parameter file and unreadable manifests are left out.
    """
    found: dict[str, tuple[Path, dict[str, Any]]] = {}
    folder = Path(output_dir) / name
    if not folder.is_dir():
        return found
    for manifest_path in folder.glob("*/manifest.json"):
        run_dir = manifest_path.parent
        if run_dir.name.startswith("."):
            continue  # a run still in its temporary folder
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        pfile = manifest.get("parameter_file")
        if not pfile:
            continue
        key = str(Path(pfile).resolve())
        order = (str(manifest.get("started") or ""), run_dir.name)
        if key not in found or order > (str(found[key][1].get("started") or ""), found[key][0].name):
            found[key] = (run_dir, manifest)
    return found


def _differences(recorded: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    out = []
    for path in sorted(set(recorded) | set(now)):
        before, after = recorded.get(path), now.get(path)
        if before == after:
            continue
        what = "added" if before is None else "removed" if after is None else "changed"
        out.append(f"{path} ({what})")
    return out


def _listed(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def _store_change(campaign: str, recorded: Mapping[str, Any] | None) -> str | None:
    """Why a store input differs from what the last run recorded, or ``None``."""
    from bioworkbench.database.selection import parse_store_url

    if not recorded or "stamp" not in recorded:
        return "its last run recorded no store stamp"
    query = parse_store_url(campaign)
    with query.open() as store:
        stamp = query.stamp(store)
    before = recorded["stamp"]
    if stamp == before:
        return None
    if stamp.get("batches_sha256") != before.get("batches_sha256"):
        return f"the batches its selection names changed ({before.get('batches')} -> {stamp['batches']} batches)"
    return (
        f"the store has new data for its selection (newest ingest {stamp['last_ingest']}, was "
        f"{before.get('last_ingest')}; {stamp['rows']:,} rows, were {before.get('rows', 0):,})"
    )


def _version_changes(recorded: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    return [
        f"{pkg} {recorded[pkg]} -> {now[pkg]}"
        for pkg in sorted(set(recorded) & set(now))
        if pkg != "kernel_versions_error" and recorded[pkg] != now[pkg]
    ]


def _decide(
    name: str,
    file: Path,
    last: tuple[Path, dict[str, Any]] | None,
    *,
    kernel: str,
    spec: Any,
    notebooks: str | os.PathLike | None,
) -> Decision:
    if last is None:
        return Decision(name, file, True, "never run (no run in the output folder names this parameter file)")
    run_dir, m = last
    status = m.get("status")
    if status != "completed":
        return Decision(name, file, True, f"its last run {run_dir.name} is {status}", run_dir)
    try:
        pfile = read_parameter_file(file)
        notebook = find_notebook(name, notebooks)
        params = check_parameters(name, pfile.values, notebook_parameters(notebook), source=str(file))
    except BioWorkbenchError as exc:  # run it: the run records the refusal with its reason
        return Decision(name, file, True, f"its parameters no longer pass the checks ({exc})", run_dir)
    recorded = dict(m.get("inputs_sha256") or {})
    resolved = str(file.resolve())
    if recorded.pop(resolved, None) != pfile.sha256:
        return Decision(name, file, True, "the parameter file changed", run_dir)
    from_store = _is_store(params.get("campaign"))
    if from_store:  # the selection's files were a temporary copy: the store is compared by its stamp below
        recorded = {k: v for k, v in recorded.items() if not k.startswith(f"{params['campaign']}#")}
    now = hash_inputs(notebook, {k: v for k, v in params.items() if not (from_store and k == "campaign")})
    if changed := _differences(recorded, now):
        return Decision(name, file, True, f"input files changed: {_listed(changed)}", run_dir)
    before = m.get("parameters") or {}
    if keys := sorted(k for k in set(params) | set(before) if _json(params.get(k)) != _json(before.get(k))):
        return Decision(name, file, True, f"parameters differ: {_listed(keys)}", run_dir)
    if from_store:
        try:
            why = _store_change(params["campaign"], m.get("store_input"))
        except BioWorkbenchError as exc:
            return Decision(name, file, True, f"its store cannot be read now ({exc})", run_dir)
        if why:
            return Decision(name, file, True, why, run_dir)
    if kernel != m.get("kernel"):
        return Decision(name, file, True, f"another kernel ({m.get('kernel')} -> {kernel})", run_dir)
    if changed := _version_changes(m.get("versions") or {}, versions(spec)):
        return Decision(name, file, True, f"package versions changed: {_listed(changed)}", run_dir)
    return Decision(
        name, file, False, f"unchanged since its last completed run {run_dir.name} ({m.get('started')})", run_dir
    )


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _is_store(value: Any) -> bool:
    from bioworkbench.database.selection import is_store_url

    return is_store_url(value)


def changed_reports(
    paths: Iterable[str | os.PathLike],
    *,
    output_dir: str | os.PathLike = "reports",
    kernel: str | None = None,
    notebooks: str | os.PathLike | None = None,
) -> list[Decision]:
    """Decide, for every parameter file under ``paths``, whether its report must run again.

    Parameters
    ----------
    paths
        Parameter files or folders laid out as ``parameters/<report>/*.yaml``
        (:func:`~bioworkbench.reports.parameter_files`).
    output_dir
        The reports folder whose run manifests are compared.
    kernel
        The kernel the runs would use (default ``$BW_KERNEL`` or ``bioworkbench``): a run made
        in another kernel, or with other package versions in it, is run again.
    notebooks
        The folder of the report notebooks (default: :func:`~bioworkbench.reports.notebooks_dir`).

    Returns
    -------
    list of Decision
        One per parameter file, in the order of :func:`~bioworkbench.reports.parameter_files`.

    Raises
    ------
    ConfigError
        A path does not exist, no parameter file was found, or the kernel is not registered.

    Notes
    -----
    Run again when: no run of the file is in ``output_dir``; its newest run is not
    ``completed``; the parameter file, the notebook, a campaign folder's file or a file
    parameter has another sha256 (or a file was added or removed); the checked parameters
    differ; the store's stamp for the selection differs (a newer ingest wrote a row of a
    selected batch, or the batches selected changed); the kernel or a recorded package version
    differs. Otherwise skipped. Only the manifests and the inputs are read: no kernel starts.
    """
    from bioworkbench.reports.parallel import parameter_files
    from bioworkbench.reports.run import KERNEL_NAME, _check_kernel

    jobs = parameter_files(paths)
    kernel = kernel or os.environ.get("BW_KERNEL", KERNEL_NAME)
    spec = _check_kernel(kernel)
    runs: dict[str, dict[str, tuple[Path, dict[str, Any]]]] = {}
    decisions = []
    for name, file in jobs:
        if name not in runs:
            runs[name] = last_runs(output_dir, name)
        try:
            decisions.append(
                _decide(name, file, runs[name].get(str(file.resolve())), kernel=kernel, spec=spec, notebooks=notebooks)
            )
        except ConfigError as exc:
            decisions.append(Decision(name, file, True, f"cannot be compared ({exc})"))
    return decisions

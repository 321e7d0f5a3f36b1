"""Running one report: checks before the kernel, papermill, the page, the manifest, the run folder.

:func:`run_report` checks the parameters *before* a kernel starts
(:mod:`bioworkbench.reports.params`), hashes the inputs, runs the notebook in the project's kernel
into a temporary folder, checks the inputs did not change, renders the safe page
(:mod:`bioworkbench.reports.render`), writes ``manifest.json``
(:mod:`bioworkbench.reports.provenance`) and moves the folder into place
(:mod:`bioworkbench.reports.folders`). A failed run keeps its executed notebook with the error, is
marked failed in the index and raises :class:`~bioworkbench.errors.ReportError` with the failing cell.

A run stopped by Ctrl-C or SIGTERM is recorded as ``interrupted`` (its half-written files removed
and listed in the manifest) before the signal takes its course; an error of the runner itself (a
full disk while writing the page) is recorded as ``failed`` the same way.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bioworkbench.reports.warmserver as warmserver
from bioworkbench._imports import without_iri_grammar
from bioworkbench.errors import ConfigError, ReportError, suggest
from bioworkbench.reports.folders import MARKER, clear_debris, move_into_place, write_marker
from bioworkbench.reports.forkserver import ForkServer, forked_kernel_options, prompt_kernel_options, shared_server
from bioworkbench.reports.index import write_index
from bioworkbench.reports.params import check_parameters, find_notebook, notebook_parameters, read_parameter_file
from bioworkbench.reports.provenance import (
    build_manifest,
    changed_inputs,
    changed_text,
    file_sha256,
    hash_inputs,
    local_versions,
    write_json,
)
from bioworkbench.reports.render import render_html

__all__ = ["KERNEL_NAME", "RunResult", "is_store_url", "read_store_selection", "run_report"]

#: the Jupyter kernel reports run in unless ``kernel=`` or ``$BW_KERNEL`` says otherwise
KERNEL_NAME = "bioworkbench"


@dataclass
class RunResult:
    """Where a run landed and how it went.

    Parameters
    ----------
    name
        The report.
    run_dir
        The run folder ``<output_dir>/<name>/<run id>``.
    status
        ``"completed"`` or ``"failed"``.
    manifest
        The run's ``manifest.json``.
    """

    name: str
    run_dir: Path
    status: str
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def html(self) -> Path:
        """The rendered page, ``<run_dir>/report.html``."""
        return self.run_dir / "report.html"


class _Terminated(SystemExit):
    """SIGTERM arrived while a report ran. A :class:`SystemExit` (status 143 = 128 + SIGTERM), so
    that asyncio (inside papermill) lets it through and an uncaught one ends the process as SIGTERM
    would, after the run was recorded."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


class _SigtermAsExit:
    """While active (main thread only), SIGTERM raises :class:`_Terminated`; the previous handler
    is restored on exit and kept in ``previous`` (a process that ignores SIGTERM is left alone)."""

    def __init__(self) -> None:
        self.previous: Any = None
        self.active = False

    def __enter__(self) -> _SigtermAsExit:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.getsignal(signal.SIGTERM)
            if self.previous is not signal.SIG_IGN:

                def handler(signum: int, frame: Any) -> None:
                    raise _Terminated()

                signal.signal(signal.SIGTERM, handler)
                self.active = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self.active:
            signal.signal(signal.SIGTERM, self.previous if self.previous is not None else signal.SIG_DFL)
            self.active = False


def run_report(
    name: str,
    *,
    parameter_file: str | os.PathLike | None = None,
    parameters: Mapping[str, Any] | None = None,
    output_dir: str | os.PathLike = "reports",
    kernel: str | None = None,
    notebooks: str | os.PathLike | None = None,
    write_index_file: bool = True,
    raise_on_failure: bool = True,
    fork_kernel: bool | str = False,
) -> RunResult:
    """Run report ``name`` with a parameter file and/or parameters; return where it was written.

    Parameters
    ----------
    name
        The notebook ``notebooks/<name>.ipynb``.
    parameter_file, parameters
        A YAML parameter file and/or a mapping (which wins where both give a key).
    output_dir
        Runs land in ``<output_dir>/<name>/<run>/``; ``<output_dir>/index.html`` lists them.
    kernel
        Jupyter kernel (default ``$BW_KERNEL`` or ``bioworkbench``).
    notebooks
        The folder of the notebooks (default :func:`~bioworkbench.reports.params.notebooks_dir`).
    write_index_file, raise_on_failure
        Rewrite the index after the run; raise :class:`ReportError` when the notebook failed.
    fork_kernel
        Fork the kernel from this process's report fork server, which has imported the report
        stack once (:mod:`bioworkbench.reports.forkserver`; started on first use). Pays off for
        many runs in one process (:func:`~bioworkbench.reports.parallel.run_many` does it); where
        kernels cannot be forked the run uses a plain kernel. The manifest records which.
        ``"warm"`` (``bioworkbench report``): fork it from a server an earlier command left running,
        or run a plain kernel and then leave such a server (:mod:`bioworkbench.reports.warmserver`).

    Returns
    -------
    RunResult
        The run folder, its status and its manifest.

    Raises
    ------
    ConfigError
        Unknown parameter keys, wrong types, values outside their constraint, a missing campaign,
        an unreadable batches file, an unknown batch or an unregistered kernel (before the kernel
        starts; nothing is written).
    ReportError
        The notebook failed, or an input file changed while it ran; the message names the failing
        cell and the error. The run folder still holds the executed notebook, its HTML and a
        manifest with status ``failed``.
    KeyboardInterrupt, SystemExit
        Ctrl-C or SIGTERM (exit status 143) during the run, after it was recorded as ``interrupted``.

    Notes
    -----
    Inputs are hashed (sha256) before the kernel starts and again after it finished; see
    :mod:`bioworkbench.reports.provenance` for everything the manifest records.
    """
    started = dt.datetime.now(dt.UTC)
    notebook = find_notebook(name, notebooks)
    declared = notebook_parameters(notebook)
    pfile = read_parameter_file(parameter_file) if parameter_file is not None else None
    given = (dict(pfile.values) if pfile is not None else {}) | dict(parameters or {})
    params = check_parameters(name, given, declared, source=str(parameter_file) if pfile is not None else None)
    kernel = kernel or os.environ.get("BW_KERNEL", KERNEL_NAME)
    spec = _check_kernel(kernel)
    out_root = Path(output_dir).resolve()
    run_id = _run_id(started, params, parameter_file)
    final = out_root / name / run_id
    final.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    snapshot = Path(tempfile.mkdtemp(prefix="bw-store-campaign-")) if is_store_url(params.get("campaign")) else None
    try:
        res = _run(
            name,
            notebook=notebook,
            params=params,
            pfile=pfile,
            parameter_file=parameter_file,
            kernel=kernel,
            spec=spec,
            out_root=out_root,
            run_id=run_id,
            final=final,
            started=started,
            t0=t0,
            snapshot=snapshot,
            write_index_file=write_index_file,
            raise_on_failure=raise_on_failure,
            fork_kernel=fork_kernel,
        )
    finally:
        if snapshot is not None:
            shutil.rmtree(snapshot, ignore_errors=True)
    if fork_kernel == "warm" and not res.manifest.get("kernel_forked"):  # leave a server for the next command
        warmserver.start(spec.argv, os.environ | spec.env)
    return res


def _run(
    name: str,
    *,
    notebook: Path,
    params: dict[str, Any],
    pfile: Any,
    parameter_file: Any,
    kernel: str,
    spec: Any,
    out_root: Path,
    run_id: str,
    final: Path,
    started: dt.datetime,
    t0: float,
    snapshot: Path | None,
    write_index_file: bool,
    raise_on_failure: bool,
    fork_kernel: bool | str,
) -> RunResult:
    """The run itself, once the parameters passed their checks (see :func:`run_report`)."""
    store_input = None
    kernel_params = params
    if snapshot is not None:  # the store's selection, as the campaign folder the notebook reads
        store_input = read_store_selection(params["campaign"], snapshot / "campaign")
        kernel_params = dict(params) | {"campaign": str(snapshot / "campaign")}
    inputs = _store_keys(hash_inputs(notebook, kernel_params, exclude=out_root), snapshot, params)  # before the kernel
    skip = []
    if pfile is not None:  # the bytes the parameters were read from, not a later reading
        skip = [str(pfile.path.resolve())]
        inputs[skip[0]] = pfile.sha256
    tmp = Path(tempfile.mkdtemp(prefix=f".{run_id}-", dir=final.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a report is meant to be shared
    record: dict[str, Any] = {
        "report": name,
        "run": run_id,
        "parameters": params,
        "parameter_file": str(parameter_file) if parameter_file else None,
        "notebook": str(notebook),
        "kernel": kernel,
        "inputs_sha256": inputs,
        "random_seeds": {k: v for k, v in params.items() if "seed" in k},
        "started": started.isoformat(timespec="seconds"),
    }
    if store_input is not None:
        record["store_input"] = store_input
    if fork_kernel == "warm":
        server: ForkServer | warmserver.WarmServer | None = warmserver.find(spec.argv, os.environ | spec.env)
    else:
        server = shared_server(spec.argv, spec.env) if fork_kernel else None
    record["kernel_forked"] = server is not None
    with _SigtermAsExit() as sigterm:
        try:
            write_marker(tmp, record)
            error = _execute(notebook, tmp / f"{name}.ipynb", kernel_params, kernel, server)
            after = _store_keys(hash_inputs(notebook, kernel_params, exclude=out_root), snapshot, params)
            changed = changed_inputs(inputs, after, skip=skip)
            if changed and error is None:
                error = {"cell": None, "source": None, "ename": "InputsChanged", "evalue": changed_text(changed)}
            manifest = _finish(tmp, record, spec=spec, t0=t0, error=error, changed=changed)
            final = move_into_place(tmp, final)
        except BaseException as exc:
            stopped = _record_stopped(tmp, final, record, exc, seconds=time.perf_counter() - t0)
            if isinstance(exc, _Terminated) and callable(sigterm.previous):
                sigterm.__exit__()
                sigterm.previous(signal.SIGTERM, None)  # the caller's own SIGTERM handler
            if stopped is not None and write_index_file:
                _try_write_index(out_root)
            raise
    if write_index_file:
        write_index(out_root)
    status = manifest["status"]
    if status == "failed" and raise_on_failure:
        raise ReportError(_failure_message(name, final, error, changed))
    return RunResult(name, final, status, manifest)


def is_store_url(value: Any) -> bool:
    """Whether a ``campaign`` parameter names a store (``duckdb://...``, ``postgresql://...``) rather than a folder.

    Parameters
    ----------
    value
        The parameter's value.

    Returns
    -------
    bool
        As :func:`bioworkbench.database.is_store_url`.
    """
    from bioworkbench.database.selection import is_store_url as _is

    return _is(value)


def read_store_selection(campaign: str, folder: Path) -> dict[str, Any]:
    """Read the batches a store URL selects and write them as a campaign folder for the notebook.

    Parameters
    ----------
    campaign
        The checked ``campaign`` parameter: a store URL with its selection
        (:func:`bioworkbench.database.parse_store_url`).
    folder
        The campaign folder to write (:meth:`Campaign.write`).

    Returns
    -------
    dict
        What the manifest records of the store input: ``campaign`` (the URL as given to the
        notebook's parameter), ``store`` (its URL, a password masked), ``selection``,
        ``stamp`` (:meth:`~bioworkbench.database.Store.stamp`, taken before the rows are read),
        ``latest_ingest`` (id and number of ingests of the whole store) and ``batches`` (the ids
        read).

    Raises
    ------
    DataReadError
        The store cannot be opened.
    ArgumentError, SchemaError
        The selection cannot be read (a batch no longer in the store) or is not a valid campaign.

    Notes
    -----
    The stamp is taken first: data added between the stamp and the read can only make a later
    ``bioworkbench run --changed`` run the report again, never skip a change. The store only
    appends, so the rows a run read are those of ingests up to ``stamp["last_ingest"]``;
    :meth:`~bioworkbench.database.Store.history` shows them later.
    """
    from bioworkbench.database.selection import parse_store_url

    query = parse_store_url(campaign)
    with query.open() as store:
        stamp = query.stamp(store)
        latest = store.latest_ingest()
        data = query.campaign(store)
        url = store.url
    data.write(folder)
    return {
        "campaign": campaign,
        "store": url,
        "selection": query.selection,
        "stamp": stamp,
        "latest_ingest": list(latest),
        "batches": data.batch_ids,
    }


def _store_keys(inputs: dict[str, str], snapshot: Path | None, params: Mapping[str, Any]) -> dict[str, str]:
    """Name the files of a store selection's temporary campaign folder by the store URL (``URL#file``)."""
    if snapshot is None:
        return inputs
    out = {}
    for path, digest in inputs.items():
        p = Path(path)
        out[f"{params['campaign']}#{p.relative_to(snapshot / 'campaign')}" if p.is_relative_to(snapshot) else path] = (
            digest
        )
    return out


def _execute(
    notebook: Path,
    executed: Path,
    params: Mapping[str, Any],
    kernel: str,
    server: ForkServer | warmserver.WarmServer | None = None,
) -> dict[str, Any] | None:
    """Run the notebook with papermill into ``executed``; the error of the failing cell (or of the
    kernel: died, timed out), or ``None`` when every cell ran. With ``server`` the kernel is forked
    by that fork server."""
    with without_iri_grammar():  # jsonschema's IRI grammar is not built: see bioworkbench._imports
        import papermill as pm
        from papermill.exceptions import PapermillExecutionError

    _quiet_papermill_parameter_guess()
    sockets = tempfile.mkdtemp(prefix="bw-kernel-") if os.name == "posix" else None
    try:
        pm.execute_notebook(
            str(notebook),
            str(executed),
            parameters=dict(params),
            kernel_name=kernel,
            cwd=str(notebook.parent),
            progress_bar=False,
            log_output=False,
            request_save_on_cell_execute=False,
            # every output has arrived once the last cell replied: kill the kernel's process group
            # rather than wait for its atexit hooks and interpreter teardown (see benchmarks/bench_reports.py)
            shutdown_kernel="immediate",
            **_kernel_transport(sockets),
            **(forked_kernel_options(server) if server is not None else prompt_kernel_options()),
        )
    except PapermillExecutionError as exc:
        return {
            "cell": exc.cell_index,
            "execution_count": exc.exec_count,
            "source": exc.source,
            "ename": exc.ename,
            "evalue": exc.evalue,
        }
    except Exception as exc:  # kernel died, timeout...
        return {"cell": None, "source": None, "ename": type(exc).__name__, "evalue": str(exc)}
    finally:
        if sockets is not None:
            shutil.rmtree(sockets, ignore_errors=True)
    return None


def _kernel_transport(sockets: str | None) -> dict[str, Any]:
    """Papermill's options that make the report kernel listen on Unix-domain sockets in ``sockets``.

    Over TCP the kernel's ports on 127.0.0.1 are open to every user of the machine, and ipykernel
    (7.4) logs a warning about unencrypted traffic at every start. ZeroMQ's IPC transport uses
    socket files instead: they live in a folder of this run (``mkdtemp``: mode 0700, so no other user
    can connect; parallel workers never share one, whereas jupyter_client's default IPC name is
    relative to the working folder). Windows has no IPC transport: TCP there (``sockets`` is ``None``).
    """
    if sockets is None:
        return {}
    from traitlets.config import Config

    return {"config": Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(sockets, "kernel")}})}


def _finish(
    tmp: Path,
    record: Mapping[str, Any],
    *,
    spec: Any,
    t0: float,
    error: Mapping[str, Any] | None,
    changed: list[dict[str, Any]],
) -> dict[str, Any]:
    """Render the page (when the notebook was written), write the manifest and drop the marker."""
    executed = tmp / f"{record['report']}.ipynb"
    page = tmp / "report.html"
    rendering = render_html(executed, page, title=f"{record['report']} – {record['run']}") if executed.exists() else {}
    manifest = build_manifest(
        record,
        spec=spec,
        ended=dt.datetime.now(dt.UTC),
        seconds=time.perf_counter() - t0,
        status="completed" if error is None else "failed",
        error=error,
        outputs={p.name: file_sha256(p) for p in (executed, page) if p.exists()},
        inputs_changed=changed,
        rendering=rendering,
    )
    write_json(tmp / "manifest.json", manifest)
    (tmp / MARKER).unlink(missing_ok=True)
    return manifest


def _quiet_papermill_parameter_guess() -> None:
    """Drop papermill's "Passed unknown parameter" warning: its regex cannot read annotations such as
    ``float | None``, and every key was already checked against the parameters cell by
    :func:`check_parameters` (which refuses unknown keys) before the kernel started."""
    import logging

    log = logging.getLogger("papermill")
    if not any(getattr(f, "_bioworkbench", False) for f in log.filters):

        def keep(record: logging.LogRecord) -> bool:
            return not str(record.msg).startswith("Passed unknown parameter")

        keep._bioworkbench = True  # type: ignore[attr-defined]
        log.addFilter(keep)


def _try_write_index(root: Path) -> None:
    try:
        write_index(root)
    except Exception:  # pragma: no cover - never hide the interruption behind an index problem
        pass


def _record_stopped(
    tmp: Path, final: Path, record: Mapping[str, Any], exc: BaseException, *, seconds: float
) -> Path | None:
    """Turn the temporary folder of a run stopped by ``exc`` into a run folder holding only a
    manifest (status ``interrupted``, or ``failed`` for an error of the runner itself); the
    half-written files are removed and listed. Returns the folder, or ``None`` if even that failed
    (the temporary folder is then removed)."""
    interrupted = isinstance(exc, KeyboardInterrupt | _Terminated)
    ename = "SIGTERM" if isinstance(exc, _Terminated) else type(exc).__name__
    what = {"SIGTERM": "stopped by SIGTERM", "KeyboardInterrupt": "stopped by Ctrl-C (KeyboardInterrupt)"}
    evalue = (
        f"the run was {what.get(ename, 'interrupted')} after {seconds:.1f} s, before it finished"
        if interrupted
        else f"the runner failed after {seconds:.1f} s: {exc}"
    )
    try:
        removed = clear_debris(tmp)
        now = dt.datetime.now(dt.UTC)
        manifest = dict(record) | {
            "status": "interrupted" if interrupted else "failed",
            "error": {"cell": None, "source": None, "ename": ename, "evalue": evalue},
            "ended": now.isoformat(timespec="seconds"),
            "duration_s": round(seconds, 2),
            "debris_removed": removed,
            "versions": local_versions(),
            "host": platform.node(),
        }
        write_json(tmp / "manifest.json", manifest)
        (tmp / MARKER).unlink(missing_ok=True)
        return move_into_place(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        return None


def _failure_message(
    name: str, run_dir: Path, error: Mapping[str, Any] | None, changed: list[dict[str, Any]] | None = None
) -> str:
    error = error or {}
    if error.get("ename") == "InputsChanged":
        return f"report {name} failed: {error.get('evalue')} The run is in {run_dir}/."
    where = f"cell {error['cell']}" if error.get("cell") is not None else "the kernel"
    src = (error.get("source") or "").strip().splitlines()
    first = f" (`{src[0][:80]}`)" if src else ""
    also = f" Also: {changed_text(changed)}" if changed else ""
    return (
        f"report {name} failed in {where}{first}: {error.get('ename')}: {str(error.get('evalue')).rstrip('.')}. "
        f"The executed notebook with the error is in {run_dir}/.{also}"
    )


def _check_kernel(kernel: str) -> Any:
    """The spec of a registered Jupyter kernel, or a :class:`ConfigError` saying how to register it."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        return KernelSpecManager().get_kernel_spec(kernel)
    except NoSuchKernel:
        names = sorted(KernelSpecManager().find_kernel_specs())
        raise ConfigError(
            f"Jupyter kernel {kernel!r} is not registered. Run `make kernel` (or `python -m ipykernel install "
            f"--sys-prefix --name {kernel}`). " + suggest(kernel, names, what="Registered kernels")
        ) from None


def _run_id(started: dt.datetime, params: Mapping[str, Any], parameter_file: Any) -> str:
    label = params.get("batch_id") or (Path(parameter_file).stem if parameter_file else "run")
    label = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(label)).strip("-.") or "run"
    return f"{started:%Y%m%dT%H%M%S}{started.microsecond // 1000:03d}Z-{label[:60]}"

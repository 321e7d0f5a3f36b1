"""Run report notebooks with papermill, render offline HTML, keep provenance, fan out with Dask.

A report is a notebook in ``notebooks/`` whose first code cell is tagged ``parameters`` and written
``name: type = default  # help``. :func:`run_report` checks the parameters *before* a kernel starts
(unknown keys, wrong types, a missing campaign or batch are refused with the valid choices), runs
the notebook in the project's kernel into a temporary folder, renders a self-contained HTML with the
code hidden, writes ``manifest.json`` (parameters, sha256 of every input, package versions, git
commit, seeds, times, status, error) and moves the folder to ``reports/<name>/<run>/`` when complete.
A failed run keeps its executed notebook with the error, is marked failed in ``reports/index.html``
and raises :class:`~bioworkbench.errors.ReportError` with the failing cell. :func:`run_many` runs
many parameter files in parallel on a Dask cluster (local by default).
"""

from __future__ import annotations

import ast
import datetime as dt
import html
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tokenize
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from bioworkbench._imports import without_iri_grammar
from bioworkbench.errors import ConfigError, ReportError
from bioworkbench.schema import suggest

__all__ = [
    "KERNEL_NAME",
    "Parameter",
    "check_parameters",
    "find_notebook",
    "load_parameter_file",
    "notebook_parameters",
    "run_many",
    "run_report",
    "write_index",
]

KERNEL_NAME = "bioworkbench"
_TYPES = {"str": str, "int": int, "float": float, "bool": bool, "list": list, "dict": dict}
_PACKAGES = (
    "bioworkbench",
    "polars",
    "numpy",
    "pymc",
    "arviz",
    "hvplot",
    "holoviews",
    "bokeh",
    "papermill",
    "nbconvert",
    "dask",
)


@dataclass(frozen=True)
class Parameter:
    """One parameter of a report notebook: ``name: type = default  # help``."""

    name: str
    type: str
    default: Any
    help: str = ""
    optional: bool = False

    def check(self, value: Any) -> str | None:
        """A message if ``value`` does not fit the declared type, else ``None``."""
        if value is None:
            return None if self.optional else f"{self.name} must be a {self.type}; got null."
        want = _TYPES.get(self.type)
        if want is None:
            return None
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            return None
        if want is int and isinstance(value, bool):
            return f"{self.name} must be an int; got the bool {value!r}."
        if not isinstance(value, want):
            return f"{self.name} must be a {self.type}; got {type(value).__name__} {value!r}."
        return None


def notebooks_dir() -> Path:
    """``notebooks/`` of the project: ``$BW_NOTEBOOKS``, next to the package source, or ``./notebooks``."""
    env = os.environ.get("BW_NOTEBOOKS")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parents[1] / "notebooks"
    return here if here.is_dir() else Path.cwd() / "notebooks"


def find_notebook(name: str, directory: str | os.PathLike | None = None) -> Path:
    """The report notebook called ``name`` (``notebooks/<name>.ipynb``)."""
    directory = Path(directory) if directory else notebooks_dir()
    path = directory / f"{name}.ipynb"
    if not path.exists():
        names = sorted(p.stem for p in directory.glob("*.ipynb"))
        raise ConfigError(f"no report notebook {name!r} in {directory}. " + suggest(name, names, what="Reports"))
    return path


def notebook_parameters(notebook: str | os.PathLike) -> dict[str, Parameter]:
    """Parse the ``parameters`` cell of a notebook (``name: type = default  # help`` lines)."""
    nb = json.loads(Path(notebook).read_text())
    cells = [
        c for c in nb["cells"] if c["cell_type"] == "code" and "parameters" in c.get("metadata", {}).get("tags", [])
    ]
    if not cells:
        raise ConfigError(f"{notebook}: no code cell tagged 'parameters'.")
    source = "".join(cells[0]["source"]) if isinstance(cells[0]["source"], list) else cells[0]["source"]
    comments = {
        tok.start[0]: tok.string.lstrip("# ").strip()
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    }
    params: dict[str, Parameter] = {}
    for node in ast.parse(source).body:
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            raise ConfigError(
                f"{notebook}: the parameters cell may only hold lines 'name: type = default  # help'; "
                f"found {ast.unparse(node)!r}."
            )
        ann = ast.unparse(node.annotation)
        optional = ann.endswith("| None") or ann.startswith("None |")
        base = ann.replace("| None", "").replace("None |", "").strip()
        params[node.target.id] = Parameter(
            node.target.id,
            base,
            ast.literal_eval(node.value) if node.value is not None else None,
            comments.get(node.lineno, ""),
            optional,
        )
    return params


def load_parameter_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML parameter set (a mapping)."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"parameter file {path} not found.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc}).") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: a parameter file is a YAML mapping of name: value; found {type(data).__name__}.")
    return dict(data)


def check_parameters(
    name: str,
    parameters: Mapping[str, Any],
    declared: Mapping[str, Parameter],
    *,
    source: str | None = None,
) -> dict[str, Any]:
    """Refuse unknown keys, wrong types and missing inputs before any kernel starts.

    Returns the full parameter set (defaults filled in, ``campaign`` made absolute).
    """
    where = source or f"report {name!r}"
    valid = ", ".join(sorted(declared))
    problems = []
    for key in parameters:
        if key not in declared:
            hint = suggest(key, declared, what="Valid keys").split(" Valid keys")[0]
            problems.append(f"unknown key {key!r}. {hint + ' ' if hint.startswith('Did') else ''}Valid keys: {valid}.")
    for key, value in parameters.items():
        if key in declared and (msg := declared[key].check(value)):
            problems.append(msg)
    if problems:
        raise ConfigError(f"{where}: " + " ".join(problems))
    full = {k: p.default for k, p in declared.items()} | dict(parameters)
    if "campaign" in declared:
        full["campaign"] = str(
            _check_campaign(full["campaign"], where, full.get("batch_id") if "batch_id" in declared else None)
        )
    for key in FILE_PARAMETERS:
        if key in declared and full.get(key):
            full[key] = str(_check_file(full[key], where, key))
    return full


#: parameters that name one input file (made absolute, checked before the kernel, hashed in the manifest)
FILE_PARAMETERS = ("study",)


def _check_file(file: Any, where: str, key: str) -> Path:
    path = Path(str(file)).expanduser()
    if not path.is_absolute():
        path = (Path.cwd() / path).resolve()
    if not path.is_file():
        raise ConfigError(f"{where}: {key} file {file!r} does not exist ({path}).")
    return path


def _check_campaign(folder: Any, where: str, batch_id: str | None) -> Path:
    path = Path(str(folder)).expanduser()
    if not path.is_absolute():
        path = (Path.cwd() / path).resolve()
    if not path.is_dir():
        raise ConfigError(
            f"{where}: campaign folder {folder!r} does not exist ({path}). Run `make demo` to write the "
            "demo campaign to data/demo, or pass -p campaign PATH."
        )
    files = [path / f"batches.{ext}" for ext in ("parquet", "csv")]
    batches_file = next((f for f in files if f.exists()), None)
    if batches_file is None:
        raise ConfigError(f"{where}: {path} is not a campaign folder (no batches.parquet or batches.csv).")
    if batch_id:
        import polars as pl

        ids = (
            pl.read_parquet(batches_file, columns=["batch_id"])
            if batches_file.suffix == ".parquet"
            else pl.read_csv(batches_file, columns=["batch_id"], infer_schema=False)
        )["batch_id"].to_list()
        if batch_id not in ids:
            raise ConfigError(
                f"{where}: batch {batch_id!r} is not in the campaign {path}. " + suggest(batch_id, ids, what="Batches")
            )
    return path


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


# ---------------------------------------------------------------------------------------------
# running one report
# ---------------------------------------------------------------------------------------------
@dataclass
class RunResult:
    """Where a run landed and how it went."""

    name: str
    run_dir: Path
    status: str
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def html(self) -> Path:
        return self.run_dir / "report.html"


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
) -> RunResult:
    """Run report ``name`` with a parameter file and/or parameters; return where it was written.

    Raises
    ------
    ConfigError
        Unknown parameter keys, wrong types, a missing campaign or batch (before the kernel starts).
    ReportError
        The notebook failed; the message names the failing cell and the error. The run folder
        still holds the executed notebook, its HTML and a manifest with status ``failed``.
    """
    started = dt.datetime.now(dt.UTC)
    notebook = find_notebook(name, notebooks)
    declared = notebook_parameters(notebook)
    given: dict[str, Any] = {}
    source = None
    if parameter_file is not None:
        given.update(load_parameter_file(parameter_file))
        source = str(parameter_file)
    given.update(parameters or {})
    params = check_parameters(name, given, declared, source=source)
    kernel = kernel or os.environ.get("BW_KERNEL", KERNEL_NAME)
    _check_kernel(kernel)
    out_root = Path(output_dir).resolve()
    run_id = _run_id(started, params, parameter_file)
    final = out_root / name / run_id
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{run_id}-", dir=final.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a report is meant to be shared
    executed = tmp / f"{name}.ipynb"
    status, error = "completed", None
    t0 = time.perf_counter()
    try:
        with without_iri_grammar():  # 2.5 s of CPU saved: see bioworkbench._imports
            import papermill as pm
            from papermill.exceptions import PapermillExecutionError

        _quiet_papermill_parameter_guess()
        try:
            pm.execute_notebook(
                str(notebook),
                str(executed),
                parameters=params,
                kernel_name=kernel,
                cwd=str(notebook.parent),
                progress_bar=False,
                log_output=False,
                request_save_on_cell_execute=False,
                # every output has arrived once the last cell replied: kill the kernel's process
                # group rather than wait ~1.5 s for its atexit hooks and interpreter teardown
                shutdown_kernel="immediate",
            )
        except PapermillExecutionError as exc:
            status = "failed"
            error = {
                "cell": exc.cell_index,
                "execution_count": exc.exec_count,
                "source": exc.source,
                "ename": exc.ename,
                "evalue": exc.evalue,
            }
        except Exception as exc:  # kernel died, timeout...
            status = "failed"
            error = {"cell": None, "source": None, "ename": type(exc).__name__, "evalue": str(exc)}
        if executed.exists():
            _render_html(executed, tmp / "report.html", title=f"{name} – {run_id}")
        ended = dt.datetime.now(dt.UTC)
        manifest = _manifest(
            name,
            run_id,
            notebook,
            parameter_file,
            params,
            kernel,
            started,
            ended,
            time.perf_counter() - t0,
            status,
            error,
        )
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
        n = 2
        while final.exists():  # the same run id twice (same batch, same millisecond): never overwrite
            final = final.with_name(f"{run_id}-{n}")
            n += 1
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if write_index_file:
        write_index(out_root)
    result = RunResult(name, final, status, manifest)
    if status == "failed" and raise_on_failure:
        raise ReportError(_failure_message(name, final, error))
    return result


def _failure_message(name: str, run_dir: Path, error: Mapping[str, Any] | None) -> str:
    error = error or {}
    where = f"cell {error['cell']}" if error.get("cell") is not None else "the kernel"
    src = (error.get("source") or "").strip().splitlines()
    first = f" (`{src[0][:80]}`)" if src else ""
    return (
        f"report {name} failed in {where}{first}: {error.get('ename')}: {str(error.get('evalue')).rstrip('.')}. "
        f"The executed notebook with the error is in {run_dir}/."
    )


def _check_kernel(kernel: str) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel)
    except NoSuchKernel:
        names = sorted(KernelSpecManager().find_kernel_specs())
        raise ConfigError(
            f"Jupyter kernel {kernel!r} is not registered. Run `make kernel` (or `python -m ipykernel install "
            f"--sys-prefix --name {kernel}`). " + suggest(kernel, names, what="Registered kernels")
        ) from None


def _run_id(started: dt.datetime, params: Mapping[str, Any], parameter_file: Any) -> str:
    label = params.get("batch_id") or (Path(parameter_file).stem if parameter_file else "run")
    label = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(label)).strip("-") or "run"
    return f"{started:%Y%m%dT%H%M%S}{started.microsecond // 1000:03d}Z-{label}"


def _render_html(executed: Path, target: Path, *, title: str) -> None:
    """Self-contained HTML: code hidden, no CDN (Bokeh is inlined by ``bw.plots.setup``)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(executed, as_version=4)
    for cell in nb.cells:  # empty display outputs (HoloViews comms) cannot be rendered: drop them
        if cell.get("outputs"):
            cell["outputs"] = [o for o in cell["outputs"] if o.get("output_type") != "display_data" or o.get("data")]
    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    exporter.mathjax_url = ""
    exporter.require_js_url = ""
    exporter.mermaid_js_url = ""
    exporter.mermaid_layout_elk_js_url = ""
    exporter.widget_renderer_url = ""
    exporter.jquery_url = ""
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    # nothing may reach out to the internet when the report is opened offline
    body = re.sub(r'<script[^>]+src="https?://[^"]*"[^>]*>\s*</script>', "", body)
    body = re.sub(r'<link[^>]+href="https?://[^"]*"[^>]*>', "", body)
    target.write_text(_inline_cdn(body))


_CDN = re.compile(r"https://cdn\.holoviz\.org/panel/[^/\s\"']+/dist/([^\s\"'?)\\]+)(\?[^\s\"')\\]*)?")
_MIME = {
    ".css": "text/css",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
}


def _inline_cdn(body: str) -> str:
    """Replace Panel's CDN stylesheet and script URLs by data URIs of the same files shipped in the
    installed ``panel`` package, so the page never asks the internet for them."""
    try:
        import panel
    except ImportError:  # pragma: no cover - panel comes with hvplot/holoviews
        return body
    import base64

    dist = Path(panel.__file__).parent / "dist"
    cache: dict[str, str] = {}

    def repl(m: re.Match) -> str:
        rel = m.group(1)
        if rel not in cache:
            f = dist / rel
            if not f.is_file():
                cache[rel] = m.group(0)
            else:
                mime = _MIME.get(f.suffix, "application/octet-stream")
                cache[rel] = f"data:{mime};base64,{base64.b64encode(f.read_bytes()).decode()}"
        return cache[rel]

    body = _CDN.sub(repl, body)
    # Panel's base URL for resources it would fetch lazily: point it nowhere rather than to a CDN
    return re.sub(r"https://cdn\.holoviz\.org/panel/[^/\s\"']+/dist/(?=[\"'])", "", body)


def _sha256(path: Path) -> str:
    from bioworkbench.campaign import sha256_file

    return sha256_file(path)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in _PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _git_commit(path: Path) -> dict[str, Any] | None:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def _manifest(name, run_id, notebook, parameter_file, params, kernel, started, ended, seconds, status, error):
    inputs: dict[str, str] = {str(notebook): _sha256(notebook)}
    if parameter_file is not None:
        inputs[str(Path(parameter_file).resolve())] = _sha256(Path(parameter_file))
    if "campaign" in params:
        for f in sorted(Path(params["campaign"]).rglob("*")):
            if f.is_file():
                inputs[str(f)] = _sha256(f)
    for key in FILE_PARAMETERS:
        if params.get(key):
            inputs[str(params[key])] = _sha256(Path(params[key]))
    seeds = {k: v for k, v in params.items() if "seed" in k}
    return {
        "report": name,
        "run": run_id,
        "status": status,
        "error": error,
        "parameters": params,
        "parameter_file": str(parameter_file) if parameter_file else None,
        "notebook": str(notebook),
        "kernel": kernel,
        "inputs_sha256": inputs,
        "random_seeds": seeds,
        "versions": _versions(),
        "git": _git_commit(Path(notebook).parent),
        "host": platform.node(),
        "started": started.isoformat(timespec="seconds"),
        "ended": ended.isoformat(timespec="seconds"),
        "duration_s": round(seconds, 2),
        "files": {"notebook": f"{name}.ipynb", "html": "report.html"},
    }


# ---------------------------------------------------------------------------------------------
# the index
# ---------------------------------------------------------------------------------------------
def write_index(output_dir: str | os.PathLike = "reports") -> Path:
    """Rewrite ``<output_dir>/index.html``: every run, newest first, with status and a link."""
    root = Path(output_dir)
    runs = []
    for mf in root.glob("*/*/manifest.json"):
        try:
            m = json.loads(mf.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        m["_dir"] = mf.parent.relative_to(root).as_posix()
        runs.append(m)
    runs.sort(key=lambda m: (m.get("started", ""), m.get("run", "")), reverse=True)
    rows = []
    for m in runs:
        params = ", ".join(f"{k}={v}" for k, v in (m.get("parameters") or {}).items() if k != "campaign")
        link = f"{m['_dir']}/report.html"
        err = m.get("error") or {}
        status = html.escape(m.get("status", "?"))
        detail = html.escape(f"{err.get('ename')}: {err.get('evalue')}") if err else ""
        rows.append(
            f'<tr class="{status}"><td>{html.escape(m.get("report", ""))}</td><td>{html.escape(params)}</td>'
            f'<td class="status">{status}</td><td>{html.escape(m.get("started", ""))}</td>'
            f'<td>{m.get("duration_s", "")} s</td><td><a href="{html.escape(link)}">report</a> · '
            f'<a href="{html.escape(m["_dir"])}/manifest.json">manifest</a></td><td>{detail}</td></tr>'
        )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>bioworkbench reports</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}}tr.failed .status{{color:#b00;font-weight:bold}}
tr.completed .status{{color:#070}}</style></head>
<body><h1>bioworkbench reports</h1>
<p>{len(runs)} run(s), newest first. Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC.</p>
<table><thead><tr><th>report</th><th>parameters</th><th>status</th><th>started (UTC)</th><th>time</th>
<th>files</th><th>error</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""
    root.mkdir(parents=True, exist_ok=True)
    target = root / "index.html"
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(page)
    os.replace(tmp, target)
    return target


# ---------------------------------------------------------------------------------------------
# many reports in parallel
# ---------------------------------------------------------------------------------------------
def parameter_files(paths: Iterable[str | os.PathLike]) -> list[tuple[str, Path]]:
    """``(report name, file)`` for YAML files or folders laid out as ``parameters/<report>/*.yaml``."""
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
        "versions": _versions(),
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    return run_dir


# The local cluster's work happens in the report kernels, which are processes of their own; Dask's
# housekeeping competes with them for the same cores. Without a dashboard nobody reads the workers'
# statistical profiler (a stack sample of every thread every 10 ms: ~0.5 s of CPU per report) or
# the system monitor; event-loop health ticks every 20 ms and memory checks every 100 ms are more
# often than jobs of 10 s need; and work stealing has nothing to do when the scheduler queues each
# job until a worker is free. Together this halves the CPU the runner's own processes use.
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

    ``scheduler`` is the address of an existing Dask scheduler; by default a local cluster of
    ``n_workers`` single-threaded worker processes (default: one per CPU core) is started.
    Returns one record per job (``name, file, status, run_dir, error``); the index is rewritten
    after each job.
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
        futures = [
            client.submit(
                _run_one,
                name,
                str(f.resolve()),
                out,
                kernel,
                os.getcwd(),
                pure=False,
                key=f"{name}-{f.stem}-{i}",
            )
            for i, (name, f) in enumerate(jobs)
        ]
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(futures), desc="reports", unit="report", file=sys.stderr)
        for fut in as_completed(futures):
            res = fut.result()
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

"""What a run records: the hashes of its inputs and outputs, and what changes a report's numbers.

``manifest.json`` holds the parameters, the sha256 of every input (the notebook, the parameter
file, every file of the campaign folder, any file parameter) taken *before* the kernel starts and
checked again after it finished (a file that changed meanwhile fails the run: the report may show
other data than the manifest names), the sha256 of the outputs (executed notebook and HTML), the
random seeds, the versions of the packages that change numbers (in the kernel's environment), the
environment variables that do (``PYTENSOR_FLAGS``, thread counts…), the platform, git commit, times,
status and error (:func:`build_manifest`). A campaign read from a store adds ``store_input``: the
store, the selection and its stamp (the newest ingest that wrote a row of it), which is what
``bioworkbench run --changed`` compares.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from bioworkbench.reports.params import FILE_PARAMETERS

__all__ = [
    "build_manifest",
    "changed_inputs",
    "changed_text",
    "file_sha256",
    "hash_inputs",
    "kernel_python",
    "local_versions",
    "versions",
    "write_json",
]

#: packages whose versions are recorded: the runner's and those that change a report's numbers
_PACKAGES = (
    "bioworkbench",
    "polars",
    "pyarrow",
    "numpy",
    "scipy",
    "pint",
    "pymc",
    "pytensor",
    "nutpie",
    "numba",
    "arviz",
    "statsmodels",
    "hvplot",
    "holoviews",
    "bokeh",
    "panel",
    "papermill",
    "nbconvert",
    "ipykernel",
    "dask",
)
#: environment variables that change numbers (compilation, threads, hashing, devices)
_ENVIRONMENT = (
    "PYTENSOR_FLAGS",
    "PYTHONHASHSEED",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "NUMBA_DISABLE_JIT",
    "POLARS_MAX_THREADS",
    "XLA_FLAGS",
    "JAX_ENABLE_X64",
    "CUDA_VISIBLE_DEVICES",
)


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON atomically: a reader never sees half a file.

    Parameters
    ----------
    path
        The target file (replaced).
    data
        A JSON-able mapping; other values are written with ``str``.

    Notes
    -----
    Written to ``.<name>.<pid>.part`` beside the target, then renamed over it (``os.replace``).
    """
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    part.write_text(json.dumps(data, indent=2, default=str))
    os.replace(part, path)


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, as hex (the digest campaign folders record).

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    str
        64 hex digits.
    """
    from bioworkbench.store import sha256_file

    return sha256_file(path)


def hash_inputs(notebook: Path, params: Mapping[str, Any], *, exclude: Path | None = None) -> dict[str, str]:
    """The sha256 of every input of a run.

    Parameters
    ----------
    notebook
        The report notebook.
    params
        The checked parameters: ``campaign`` (a folder) and the file parameters
        (:data:`~bioworkbench.reports.params.FILE_PARAMETERS`) are hashed.
    exclude
        A folder left out (the output folder, should it lie inside the campaign folder).

    Returns
    -------
    dict of str to str
        Path → sha256 of the notebook, every file of the campaign folder and every file parameter.
    """
    inputs: dict[str, str] = {str(notebook): file_sha256(notebook)}
    if params.get("campaign"):
        for f in sorted(Path(params["campaign"]).rglob("*")):
            if exclude is not None and f.is_relative_to(exclude):
                continue
            if f.is_file():
                inputs[str(f)] = file_sha256(f)
    for key in FILE_PARAMETERS:
        if params.get(key):
            inputs[str(params[key])] = file_sha256(Path(params[key]))
    return inputs


def changed_inputs(
    before: Mapping[str, str], after: Mapping[str, str], *, skip: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """The input files whose sha256 after the run differs from before it.

    Parameters
    ----------
    before, after
        :func:`hash_inputs` before the kernel started and after it finished.
    skip
        Paths not compared (the parameter file: its bytes were read once, before the kernel).

    Returns
    -------
    list of dict
        ``{"file", "sha256_before", "sha256_after"}`` per changed file, sorted by path; an added file
        has ``sha256_before`` ``None``, a removed one ``sha256_after`` ``None``.
    """
    changes = []
    for path in sorted((set(before) | set(after)) - set(skip)):
        b, a = before.get(path), after.get(path)
        if b != a:
            changes.append({"file": path, "sha256_before": b, "sha256_after": a})
    return changes


def changed_text(changed: list[dict[str, Any]] | None) -> str:
    """The sentence a failed run gives for inputs that changed while it ran.

    Parameters
    ----------
    changed
        :func:`changed_inputs`.

    Returns
    -------
    str
        The count, the first 10 files (added, removed, or both digests' first 12 digits) and what to do.
    """
    changed = changed or []
    parts = []
    for c in changed[:10]:
        if c["sha256_before"] is None:
            parts.append(f"{c['file']} (added)")
        elif c["sha256_after"] is None:
            parts.append(f"{c['file']} (removed)")
        else:
            parts.append(f"{c['file']} (sha256 {c['sha256_before'][:12]}… before, {c['sha256_after'][:12]}… after)")
    more = f" and {len(changed) - 10} more" if len(changed) > 10 else ""
    n = len(changed)
    return (
        f"{n} input file{'s' if n != 1 else ''} changed while the report ran: {'; '.join(parts)}{more}. "
        "The report may show other data than its manifest names; run it again."
    )


def local_versions() -> dict[str, str]:
    """The versions of Python and of the packages that change numbers, in this process's environment.

    Returns
    -------
    dict of str to str
        ``python`` and each package of ``_PACKAGES``; ``"not installed"`` for a missing one.
    """
    out = {"python": platform.python_version()}
    for pkg in _PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


_VERSIONS_SCRIPT = """
import json, platform, sys
from importlib import metadata
out = {"python": platform.python_version()}
for pkg in sys.argv[1:]:
    try:
        out[pkg] = metadata.version(pkg)
    except metadata.PackageNotFoundError:
        out[pkg] = "not installed"
print(json.dumps(out))
"""
_KERNEL_VERSIONS: dict[str, dict[str, str]] = {}


def kernel_python(spec: Any) -> str | None:
    """The Python a kernel spec starts.

    Parameters
    ----------
    spec
        A kernel spec (``jupyter_client``), or ``None``.

    Returns
    -------
    str or None
        The first word of the spec's ``argv``; ``None`` without a spec or an ``argv``.
    """
    argv = list(getattr(spec, "argv", None) or [])
    return argv[0] if argv else None


def versions(spec: Any = None) -> dict[str, str]:
    """The package versions in a kernel's environment.

    Parameters
    ----------
    spec
        The kernel spec (``jupyter_client``); ``None``: this process.

    Returns
    -------
    dict of str to str
        :func:`local_versions` when the kernel runs this Python, else those of the kernel's Python
        (asked once per process); when that fails, the runner's own with ``kernel_versions_error``.
    """
    python = kernel_python(spec)
    if python is None or python in ("python", "python3") or os.path.abspath(python) == os.path.abspath(sys.executable):
        return local_versions()
    if python not in _KERNEL_VERSIONS:
        try:
            proc = subprocess.run(
                [python, "-c", _VERSIONS_SCRIPT, *_PACKAGES], capture_output=True, text=True, timeout=60, check=True
            )
            _KERNEL_VERSIONS[python] = json.loads(proc.stdout.strip().splitlines()[-1])
        except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
            return local_versions() | {"kernel_versions_error": f"{python}: {exc}; these are the runner's versions"}
    return dict(_KERNEL_VERSIONS[python])


def _environment(spec: Any = None) -> dict[str, str | None]:
    """The environment variables that change numbers, as the kernel sees them (its spec's ``env``
    over the runner's environment; ``None``: not set), and every ``BW_*`` variable."""
    env = dict(os.environ) | dict(getattr(spec, "env", None) or {})
    names = list(_ENVIRONMENT) + sorted(k for k in env if k.startswith("BW_"))
    return {k: env.get(k) for k in names}


def _git_commit(path: Path) -> dict[str, Any] | None:
    """The commit checked out where ``path`` lies and whether tracked files differ from it, or ``None``."""
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


def build_manifest(
    record: Mapping[str, Any],
    *,
    spec: Any,
    ended: dt.datetime,
    seconds: float,
    status: str,
    error: Mapping[str, Any] | None,
    outputs: Mapping[str, str],
    inputs_changed: list[dict[str, Any]],
    rendering: Mapping[str, int],
) -> dict[str, Any]:
    """Everything a reader needs to trust and reproduce a run (see the module docstring).

    Parameters
    ----------
    record
        What the run knew before the kernel: ``report, run, parameters, parameter_file, notebook,
        kernel, inputs_sha256, random_seeds, started``, ``kernel_forked`` (whether the kernel was
        forked by the report fork server) and, for a campaign from a store, ``store_input``.
    spec
        The kernel spec (versions, Python and environment are the kernel's).
    ended, seconds
        When the run ended, and how long it took.
    status, error
        ``"completed"`` or ``"failed"``, and the failing cell's error (``None`` when completed).
    outputs
        File name → sha256 of the executed notebook and the HTML.
    inputs_changed
        :func:`changed_inputs`.
    rendering
        What sanitising the page did (:func:`~bioworkbench.reports.render.render_html`).

    Returns
    -------
    dict
        The manifest, ready for :func:`write_json`.
    """
    found = versions(spec)
    return {
        "report": record["report"],
        "run": record["run"],
        "status": status,
        "error": error,
        "parameters": record["parameters"],
        "parameter_file": record["parameter_file"],
        "notebook": record["notebook"],
        "kernel": record["kernel"],
        "kernel_python": kernel_python(spec),
        # forked by the report fork server, which had imported the report stack (reports.forkserver)
        "kernel_forked": bool(record.get("kernel_forked", False)),
        "inputs_sha256": record["inputs_sha256"],
        # a campaign read from a store: its URL, selection and stamp (see reports.run.read_store_selection)
        "store_input": record.get("store_input"),
        "inputs_changed": inputs_changed,
        "outputs_sha256": dict(outputs),
        "random_seeds": record["random_seeds"],
        "versions": found,
        # the backend BayesModel's default sampler setting ("auto") picks in the kernel's environment
        "sampler": {"auto_backend": "pymc" if found.get("nutpie", "not installed") == "not installed" else "nutpie"},
        "environment": _environment(spec),
        "platform": {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
        },
        "git": _git_commit(Path(record["notebook"]).parent),
        "host": platform.node(),
        "started": record["started"],
        "ended": ended.isoformat(timespec="seconds"),
        "duration_s": round(seconds, 2),
        "rendering": dict(rendering),
        "files": {"notebook": f"{record['report']}.ipynb", "html": "report.html"},
    }

"""Run report notebooks with papermill, render safe offline HTML, keep provenance, fan out with Dask.

A report is a notebook in ``notebooks/`` whose first code cell is tagged ``parameters``.
:func:`run_report` checks the parameters *before* a kernel starts, runs the notebook in the
project's kernel into a temporary folder, renders a self-contained HTML with the code hidden, writes
``manifest.json`` and moves the folder to ``reports/<name>/<run>/`` when complete. A failed run
keeps its executed notebook with the error, is marked failed in ``reports/index.html`` and raises
:class:`~bioworkbench.errors.ReportError` with the failing cell. :func:`run_many` runs many
parameter files in parallel on a Dask cluster (local by default).

The parameters cell
-------------------
One line per parameter, ``name: type = default  # help [constraint]``::

    campaign: str = "../data/demo"  # path of the campaign folder
    batch_id: str = "B01"  # the batch to report on
    prob: float = 0.9  # central share of the other batches in the envelope (0, 1)
    known_days: float = 0.0  # forecast from the first days (0: no forecast) [0, inf)
    draws: int = 500  # posterior draws per chain [1, inf)
    storage: str = "room"  # ICH Q1E extrapolation rules {room, refrigerated, frozen}
    lower: float | None = 95.0  # lower limit (None: none)

``type`` is ``str``, ``int``, ``float``, ``bool``, ``list`` or ``dict``; ``T | None`` also accepts
``null``. The comment is the help text, optionally ending with one constraint:

* an interval for ``int`` and ``float``: ``[lo, hi]``, ``[lo, hi)``, ``(lo, hi]`` or ``(lo, hi)``,
  square brackets closed, round ones open, bounds numbers or ``-inf``/``inf`` (``[0, inf)``: zero or
  more; ``(0, 1)``: a probability strictly between 0 and 1). NaN is never inside.
* a set of choices for ``str``: ``{a, b, c}``.

A ``str`` parameter whose default is not empty may not be given as an empty (or blank) string: an
empty default declares that "empty" means something (``batch_id: str = ""  # empty: the first
batch``). The notebook's own defaults must satisfy their constraints.

Checked before any kernel starts
--------------------------------
The parameter file is read as UTF-8 YAML (a UTF-16 file, a byte that is not UTF-8, invalid YAML or a
key given twice is a :class:`~bioworkbench.errors.ConfigError` naming the file, line and key);
unknown keys, wrong types, values outside their interval or choices, empty required strings, a
missing campaign folder, an unreadable batches file (named with the reason) and an unknown batch are
refused with the valid choices.

What a run records
------------------
``manifest.json`` holds the parameters, the sha256 of every input (the notebook, the parameter
file, every file of the campaign folder, any file parameter) taken *before* the kernel starts and
checked again after it finished (a file that changed meanwhile fails the run: the report may show
other data than the manifest names), the sha256 of the outputs (executed notebook and HTML), the
random seeds, the versions of the packages that change numbers (in the kernel's environment), the
environment variables that do (``PYTENSOR_FLAGS``, thread counts…), the platform, git commit, times,
status and error.

A run stopped by Ctrl-C or SIGTERM is recorded as ``interrupted`` (its half-written files removed and
listed in the manifest) before the signal takes its course. A run killed outright (SIGKILL, out of
memory) cannot record itself: its temporary folder carries a marker with the process id and host,
and the next :func:`write_index` that finds the process gone records the run as ``interrupted`` and
removes the debris. A run of a live process, or of another host, is listed as ``running``. A
manifest that cannot be read is listed as ``corrupt``, never dropped.

The rendered page
-----------------
Only the plotting library's own outputs may run script. Every other output is sanitised with
bleach (the library behind nbconvert's ``sanitize_html``): a fixed set of formatting and table tags
and attributes, no ``hidden``, no inline ``style``, classes only from the package (``bw-*``);
Markdown outputs are rendered and then sanitised the same way. ``<style>`` sheets in outputs are
kept only when each rule styles the package's own classes. Inside plot outputs the embedded Bokeh
documents are JSON whose every ``<`` is written ``\\u003c``, so no text in the data can close the
script around them; a plot output that still does not have the expected shape is withheld (and
counted in the manifest).
"""

from __future__ import annotations

import ast
import datetime as dt
import hashlib
import html
import io
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tokenize
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bioworkbench._imports import without_iri_grammar
from bioworkbench.errors import ConfigError, DataReadError, ReportError
from bioworkbench.schema import suggest

__all__ = [
    "KERNEL_NAME",
    "Parameter",
    "check_parameters",
    "find_notebook",
    "load_parameter_file",
    "notebook_parameters",
    "recover_interrupted",
    "run_many",
    "run_report",
    "write_index",
]

KERNEL_NAME = "bioworkbench"
_TYPES = {"str": str, "int": int, "float": float, "bool": bool, "list": list, "dict": dict}
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
#: the marker a run keeps in its temporary folder until it is moved into place
_MARKER = ".run.json"


# ---------------------------------------------------------------------------------------------
# parameters: declared in the notebook, checked before the kernel
# ---------------------------------------------------------------------------------------------
_NUMBER = r"[-+]?(?:inf|(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)"
_INTERVAL = re.compile(rf"\s*([\[(])\s*({_NUMBER})\s*,\s*({_NUMBER})\s*([\])])\s*$", re.IGNORECASE)
_CHOICES = re.compile(r"\s*\{([^{}]*)\}\s*$")


@dataclass(frozen=True)
class Parameter:
    """One parameter of a report notebook: ``name: type = default  # help [constraint]``.

    ``interval`` is ``(low, high, low_closed, high_closed)`` for numbers, ``choices`` the allowed
    values of a string (see the module docstring for the syntax).
    """

    name: str
    type: str
    default: Any
    help: str = ""
    optional: bool = False
    interval: tuple[float, float, bool, bool] | None = None
    choices: tuple[str, ...] | None = None

    @property
    def required(self) -> bool:
        """A non-optional ``str`` whose default is not empty: an empty value is refused."""
        return self.type == "str" and not self.optional and isinstance(self.default, str) and bool(self.default.strip())

    @property
    def constraint(self) -> str:
        """The constraint as written in the notebook (``"[0, inf)"``, ``"{a, b}"``) or ``""``."""
        if self.interval is not None:
            lo, hi, lo_closed, hi_closed = self.interval
            return f"{'[' if lo_closed else '('}{_num(lo)}, {_num(hi)}{']' if hi_closed else ')'}"
        if self.choices is not None:
            return "{" + ", ".join(self.choices) + "}"
        return ""

    def check(self, value: Any) -> str | None:
        """A message if ``value`` does not fit the declared type and constraint, else ``None``."""
        if value is None:
            return None if self.optional else f"{self.name} must be a {self.type}; got null."
        want = _TYPES.get(self.type)
        if want is None:
            return None
        if want is int and isinstance(value, bool):
            return f"{self.name} must be an int; got the bool {value!r}."
        if want is float and isinstance(value, bool):
            return f"{self.name} must be a float; got the bool {value!r}."
        if not (want is float and isinstance(value, int)) and not isinstance(value, want):
            return f"{self.name} must be a {self.type}; got {type(value).__name__} {value!r}."
        if self.interval is not None and not _inside(float(value), self.interval):
            return f"{self.name} must lie in {self.constraint}; got {value!r}."
        if isinstance(value, str):
            if self.choices is not None and value not in self.choices:
                hint = suggest(value, self.choices, what="Choices")
                return f"{self.name} must be one of {', '.join(self.choices)}; got {value!r}." + (
                    " " + hint.split(" Choices:")[0] if hint.startswith("Did") else ""
                )
            if self.required and not value.strip():
                return (
                    f"{self.name} must not be empty (the notebook's default is {self.default!r}); "
                    f"give a value or leave the key out."
                )
        return None


def _num(x: float) -> str:
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _inside(value: float, interval: tuple[float, float, bool, bool]) -> bool:
    lo, hi, lo_closed, hi_closed = interval
    if math.isnan(value):
        return False
    above = value >= lo if lo_closed else value > lo
    below = value <= hi if hi_closed else value < hi
    return above and below


def _constraint(comment: str, *, where: str, name: str, type_: str) -> tuple[str, Any, Any]:
    """Split a parameter's comment into help text, interval and choices."""
    a = "an" if type_[:1] in "aeiou" else "a"
    if m := _INTERVAL.search(comment):
        lo, hi = float(m.group(2)), float(m.group(3))
        if type_ not in ("int", "float"):
            raise ConfigError(
                f"{where}: parameter {name!r} is {a} {type_}; an interval {m.group(0).strip()} fits numbers only."
            )
        if lo > hi:
            raise ConfigError(
                f"{where}: parameter {name!r} has the empty interval {m.group(0).strip()} (low above high)."
            )
        return comment[: m.start()].rstrip(), (lo, hi, m.group(1) == "[", m.group(4) == "]"), None
    if m := _CHOICES.search(comment):
        if type_ != "str":
            raise ConfigError(f"{where}: parameter {name!r} is {a} {type_}; choices {m.group(0).strip()} fit str only.")
        choices = tuple(c.strip().strip("'\"") for c in m.group(1).split(",") if c.strip())
        if not choices:
            raise ConfigError(f"{where}: parameter {name!r} declares no choices in {m.group(0).strip()}.")
        return comment[: m.start()].rstrip(), None, choices
    return comment, None, None


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
    """Parse the ``parameters`` cell of a notebook (``name: type = default  # help [constraint]``).

    Raises
    ------
    ConfigError
        No cell tagged ``parameters``; a line that is not ``name: type = default``; a constraint
        that does not fit the type; a default outside its own constraint.
    """
    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
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
        name = node.target.id
        where = f"{notebook}, parameters cell line {node.lineno}"
        help_text, interval, choices = _constraint(comments.get(node.lineno, ""), where=where, name=name, type_=base)
        param = Parameter(
            name,
            base,
            ast.literal_eval(node.value) if node.value is not None else None,
            help_text,
            optional,
            interval,
            choices,
        )
        if (msg := param.check(param.default)) is not None:
            raise ConfigError(f"{where}: the default does not fit its declaration: {msg}")
        params[name] = param
    return params


def load_parameter_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML parameter set (a mapping of name: value).

    Raises
    ------
    ConfigError
        The file is missing, not UTF-8 (a UTF-16 export, a stray byte), not valid YAML, gives a key
        twice, or is not a mapping; the message names the file, line and column.
    """
    return _read_parameter_file(Path(path))[0]


def _read_parameter_file(path: Path) -> tuple[dict[str, Any], str]:
    """The parameters and the sha256 of the very bytes they were read from."""
    if not path.is_file():
        raise ConfigError(f"parameter file {path} not found{' (it is a folder)' if path.is_dir() else ''}.")
    raw = path.read_bytes()
    text = _utf8_text(raw, path, what="a parameter file")
    data = _yaml_mapping(text, path)
    return data, hashlib.sha256(raw).hexdigest()


_BOMS = {
    b"\xff\xfe\x00\x00": "UTF-32 (byte-order mark FF FE 00 00)",
    b"\x00\x00\xfe\xff": "UTF-32 (byte-order mark 00 00 FE FF)",
    b"\xff\xfe": "UTF-16 (byte-order mark FF FE)",
    b"\xfe\xff": "UTF-16 (byte-order mark FE FF)",
}


def _not_utf8(raw: bytes) -> str | None:
    """Why ``raw`` is not UTF-8 text, from its first bytes, or ``None``."""
    for bom, what in _BOMS.items():
        if raw.startswith(bom):
            return f"it is {what}"
    if b"\x00" in raw[:65536]:
        at = raw.index(b"\x00")
        return f"it holds a NUL byte at byte {at} (UTF-16 without a byte-order mark, or a binary file)"
    return None


def _utf8_text(raw: bytes, path: Path, *, what: str) -> str:
    if why := _not_utf8(raw):
        raise ConfigError(f"{path}: {what} must be UTF-8 text; {why}. Save it as UTF-8.")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            f"{path}, line {line}, column {column}: byte 0x{raw[exc.start]:02X} is not UTF-8; {what} must be "
            "UTF-8 text. Save it as UTF-8."
        ) from None


def _yaml_mapping(text: str, path: Path) -> dict[str, Any]:
    import yaml

    class _Duplicate(Exception):
        pass

    class UniqueKeyLoader(yaml.SafeLoader):
        """SafeLoader that refuses a key given twice in one mapping (YAML 1.2 requires unique keys)."""

    def construct_mapping(loader, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the constructor below says so
                continue
            if first is not None:
                raise _Duplicate(
                    f"{path}, line {line}: key {key!r} is given twice (first on line {first}); "
                    "give each parameter once."
                )
            seen[key] = line
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader subclass
    except _Duplicate as exc:
        raise ConfigError(str(exc)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        raise ConfigError(f"{where}: not valid YAML: {problem}{f' ({context})' if context else ''}.") from None
    if data is None:
        return {}
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
    """Refuse unknown keys, wrong types, values outside their constraint and missing inputs before
    any kernel starts.

    Returns the full parameter set (defaults filled in, ``campaign`` and file parameters made
    absolute).

    Raises
    ------
    ConfigError
        Naming the parameter file (or the report), every problem found, and the valid keys.
    """
    where = source or f"report {name!r}"
    valid = ", ".join(sorted(declared))
    problems = []
    for key in parameters:
        if key not in declared:
            hint = suggest(str(key), declared, what="Valid keys").split(" Valid keys")[0]
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
        ids = _batch_ids(batches_file, where)
        if batch_id not in ids:
            raise ConfigError(
                f"{where}: batch {batch_id!r} is not in the campaign {path}. " + suggest(batch_id, ids, what="Batches")
            )
    return path


def _batch_ids(batches_file: Path, where: str) -> list[str]:
    """The batch ids of a campaign's batches file, read as the notebook will read it, or a
    :class:`ConfigError` that names the file and why it cannot be read."""
    from bioworkbench.io.tidy import read_frame_file

    if batches_file.suffix == ".csv":
        with open(batches_file, "rb") as fh:
            head = fh.read(65536)
        if why := _not_utf8(head):
            raise ConfigError(
                f"{where}: {batches_file} cannot be read: {why}. A campaign's CSV files are UTF-8; save it as "
                "UTF-8 (or write the campaign with Campaign.write, which uses Parquet)."
            )
    try:
        frame, first_line = read_frame_file(batches_file, "batches")
    except DataReadError as exc:
        raise ConfigError(f"{where}: the campaign's batches cannot be read: {exc}") from None
    except Exception as exc:  # any other reader failure is still this file's
        raise ConfigError(
            f"{where}: the campaign's batches cannot be read: {batches_file}: {type(exc).__name__}: {exc}"
        ) from None
    if "batch_id" not in frame.columns:
        raise ConfigError(
            f"{where}: {batches_file}, line {max(first_line - 1, 1)}: no column 'batch_id'; columns found: "
            f"{', '.join(map(repr, frame.columns)) or 'none'}."
        )
    import polars as pl

    return frame["batch_id"].cast(pl.String).to_list()


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
    write_index_file, raise_on_failure
        Rewrite the index after the run; raise :class:`ReportError` when the notebook failed.

    Returns
    -------
    RunResult
        The run folder, its status and its manifest.

    Raises
    ------
    ConfigError
        Unknown parameter keys, wrong types, values outside their constraint, a missing campaign,
        an unreadable batches file or an unknown batch (before the kernel starts).
    ReportError
        The notebook failed, or an input file changed while it ran; the message names the failing
        cell and the error. The run folder still holds the executed notebook, its HTML and a
        manifest with status ``failed``.
    KeyboardInterrupt, SystemExit
        Ctrl-C or SIGTERM (exit status 143) during the run, after it was recorded as ``interrupted``.

    Notes
    -----
    Inputs are hashed (sha256) before the kernel starts and again after it finished; see the
    module docstring for everything the manifest records.
    """
    started = dt.datetime.now(dt.UTC)
    notebook = find_notebook(name, notebooks)
    declared = notebook_parameters(notebook)
    given: dict[str, Any] = {}
    source = None
    parameter_sha = None
    if parameter_file is not None:
        data, parameter_sha = _read_parameter_file(Path(parameter_file))
        given.update(data)
        source = str(parameter_file)
    given.update(parameters or {})
    params = check_parameters(name, given, declared, source=source)
    kernel = kernel or os.environ.get("BW_KERNEL", KERNEL_NAME)
    spec = _check_kernel(kernel)
    out_root = Path(output_dir).resolve()
    run_id = _run_id(started, params, parameter_file)
    final = out_root / name / run_id
    final.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    inputs = _hash_inputs(notebook, params, exclude=out_root)  # before the kernel starts
    if parameter_file is not None:  # the bytes the parameters were read from
        inputs[str(Path(parameter_file).resolve())] = parameter_sha
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
    executed = tmp / f"{name}.ipynb"
    status, error = "completed", None
    with _SigtermAsExit() as sigterm:
        try:
            _write_marker(tmp, record)
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
            changed = _changed_inputs(
                inputs,
                _hash_inputs(notebook, params, exclude=out_root),
                skip=[str(Path(parameter_file).resolve())] if parameter_file is not None else [],
            )
            if changed:
                status = "failed"
                error = error or {
                    "cell": None,
                    "source": None,
                    "ename": "InputsChanged",
                    "evalue": _changed_text(changed),
                }
            rendering: dict[str, int] = {}
            if executed.exists():
                rendering = _render_html(executed, tmp / "report.html", title=f"{name} – {run_id}")
            ended = dt.datetime.now(dt.UTC)
            manifest = _manifest(
                record,
                spec=spec,
                ended=ended,
                seconds=time.perf_counter() - t0,
                status=status,
                error=error,
                outputs={p.name: _sha256(p) for p in (executed, tmp / "report.html") if p.exists()},
                inputs_changed=changed,
                rendering=rendering,
            )
            _write_json(tmp / "manifest.json", manifest)
            (tmp / _MARKER).unlink(missing_ok=True)
            final = _move_into_place(tmp, final)
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
    result = RunResult(name, final, status, manifest)
    if status == "failed" and raise_on_failure:
        raise ReportError(_failure_message(name, final, error, changed))
    return result


def _try_write_index(root: Path) -> None:
    try:
        write_index(root)
    except Exception:  # pragma: no cover - never hide the interruption behind an index problem
        pass


def _move_into_place(tmp: Path, final: Path) -> Path:
    """Rename ``tmp`` to ``final``, or ``final-2``, ``final-3``… (a run is never overwritten)."""
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


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON atomically (a reader never sees half a file)."""
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    part.write_text(json.dumps(data, indent=2, default=str))
    os.replace(part, path)


def _write_marker(tmp: Path, record: Mapping[str, Any]) -> None:
    """Who runs in ``tmp``: process id, its start time and host, so a later index can tell a dead
    run's debris from a live run."""
    marker = {
        "pid": os.getpid(),
        "process_started": _process_started(os.getpid()),
        "host": platform.node(),
        "report": record["report"],
        "run": record["run"],
        "started": record["started"],
        "parameters": record["parameters"],
        "parameter_file": record["parameter_file"],
        "notebook": record["notebook"],
        "kernel": record["kernel"],
        "inputs_sha256": record["inputs_sha256"],
    }
    _write_json(tmp / _MARKER, marker)


def _process_started(pid: int) -> float | None:
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except Exception:
        return None


def _alive(pid: Any, started: Any) -> bool:
    """Whether process ``pid`` of this host still runs (and is the same process: pids are reused)."""
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


def _debris(folder: Path) -> list[dict[str, Any]]:
    """Every file a stopped run left in ``folder`` (but its marker): name and size."""
    return [
        {"file": p.relative_to(folder).as_posix(), "bytes": p.stat().st_size}
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != _MARKER
    ]


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
        removed = _debris(tmp)
        for p in sorted(tmp.iterdir()):
            if p.name != _MARKER:
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        now = dt.datetime.now(dt.UTC)
        manifest = dict(record) | {
            "status": "interrupted" if interrupted else "failed",
            "error": {"cell": None, "source": None, "ename": ename, "evalue": evalue},
            "ended": now.isoformat(timespec="seconds"),
            "duration_s": round(seconds, 2),
            "debris_removed": removed,
            "versions": _local_versions(),
            "host": platform.node(),
        }
        _write_json(tmp / "manifest.json", manifest)
        (tmp / _MARKER).unlink(missing_ok=True)
        return _move_into_place(tmp, final)
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
    also = f" Also: {_changed_text(changed)}" if changed else ""
    return (
        f"report {name} failed in {where}{first}: {error.get('ename')}: {str(error.get('evalue')).rstrip('.')}. "
        f"The executed notebook with the error is in {run_dir}/.{also}"
    )


def _check_kernel(kernel: str) -> Any:
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


# ---------------------------------------------------------------------------------------------
# inputs, outputs and what changes numbers
# ---------------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    from bioworkbench.campaign import sha256_file

    return sha256_file(path)


def _hash_inputs(notebook: Path, params: Mapping[str, Any], *, exclude: Path | None = None) -> dict[str, str]:
    """sha256 of the notebook, every file of the campaign folder (but ``exclude``, the output
    folder, should it lie inside) and every file parameter."""
    inputs: dict[str, str] = {str(notebook): _sha256(notebook)}
    if params.get("campaign"):
        for f in sorted(Path(params["campaign"]).rglob("*")):
            if exclude is not None and f.is_relative_to(exclude):
                continue
            if f.is_file():
                inputs[str(f)] = _sha256(f)
    for key in FILE_PARAMETERS:
        if params.get(key):
            inputs[str(params[key])] = _sha256(Path(params[key]))
    return inputs


def _changed_inputs(
    before: Mapping[str, str], after: Mapping[str, str], *, skip: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """Input files whose sha256 after the run differs from before it (added and removed files too),
    but those in ``skip`` (the parameter file: its bytes were read once, before the kernel)."""
    changes = []
    for path in sorted((set(before) | set(after)) - set(skip)):
        b, a = before.get(path), after.get(path)
        if b != a:
            changes.append({"file": path, "sha256_before": b, "sha256_after": a})
    return changes


def _changed_text(changed: list[dict[str, Any]] | None) -> str:
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


def _local_versions() -> dict[str, str]:
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


def _kernel_python(spec: Any) -> str | None:
    argv = list(getattr(spec, "argv", None) or [])
    return argv[0] if argv else None


def _versions(spec: Any = None) -> dict[str, str]:
    """Package versions in the kernel's environment: the runner's own when the kernel runs this
    Python, else asked of the kernel's Python once per process."""
    python = _kernel_python(spec)
    if python is None or python in ("python", "python3") or os.path.abspath(python) == os.path.abspath(sys.executable):
        return _local_versions()
    if python not in _KERNEL_VERSIONS:
        try:
            proc = subprocess.run(
                [python, "-c", _VERSIONS_SCRIPT, *_PACKAGES], capture_output=True, text=True, timeout=60, check=True
            )
            _KERNEL_VERSIONS[python] = json.loads(proc.stdout.strip().splitlines()[-1])
        except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
            return _local_versions() | {"kernel_versions_error": f"{python}: {exc}; these are the runner's versions"}
    return dict(_KERNEL_VERSIONS[python])


def _environment(spec: Any = None) -> dict[str, str | None]:
    """The environment variables that change numbers, as the kernel sees them (its spec's ``env``
    over the runner's environment; ``None``: not set), and every ``BW_*`` variable."""
    env = dict(os.environ) | dict(getattr(spec, "env", None) or {})
    names = list(_ENVIRONMENT) + sorted(k for k in env if k.startswith("BW_"))
    return {k: env.get(k) for k in names}


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


def _manifest(
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
    """Everything a reader needs to trust and reproduce the run (see the module docstring)."""
    versions = _versions(spec)
    return {
        "report": record["report"],
        "run": record["run"],
        "status": status,
        "error": error,
        "parameters": record["parameters"],
        "parameter_file": record["parameter_file"],
        "notebook": record["notebook"],
        "kernel": record["kernel"],
        "kernel_python": _kernel_python(spec),
        "inputs_sha256": record["inputs_sha256"],
        "inputs_changed": inputs_changed,
        "outputs_sha256": dict(outputs),
        "random_seeds": record["random_seeds"],
        "versions": versions,
        # the backend BayesModel's default sampler setting ("auto") picks in the kernel's environment
        "sampler": {"auto_backend": "pymc" if versions.get("nutpie", "not installed") == "not installed" else "nutpie"},
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


# ---------------------------------------------------------------------------------------------
# the rendered page: only the plotting library's own outputs may run script
# ---------------------------------------------------------------------------------------------
#: outputs of HoloViews/Panel (and Bokeh) that draw plots: their script is kept, their JSON escaped
_PLOT_MIMES = (
    "application/vnd.holoviews_exec.v0+json",
    "application/vnd.holoviews_load.v0+json",
    "application/vnd.bokehjs_exec.v0+json",
    "application/vnd.bokehjs_load.v0+json",
)
#: the output types rendered for every other output (the rest are dropped)
_PLAIN_MIMES = frozenset({"text/plain", "text/html", "text/markdown", "image/png", "image/jpeg", "image/svg+xml"})
#: Panel's notebook preamble (static: es-module-shims options, its CSS, an empty alert div)
_PANEL_PREAMBLE = re.compile(
    r'<script type="esms-options">\{"shimMode": true\}</script><style>[^<]*</style>'
    r'<div id="[0-9A-Za-z_-]+" role="alert" hidden></div>'
)
_JSON_VARS = re.compile(r"\b(?:var|let|const)\s+(?:docs_json|render_items)\s*=\s*")
_SCRIPT_OPEN = re.compile(r"<script\b[^>]*>", re.IGNORECASE)
_SCRIPT_CLOSE = re.compile(r"</script\s*>", re.IGNORECASE)
_WITHHELD = (
    "[bioworkbench: a plot was left out of this report: its embedded script did not have the shape "
    "expected of a HoloViews plot, so it could not be shown safely]"
)

_TEXT_TAGS = frozenset(
    {"a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "dl", "dt", "em", "hr", "i", "li", "ol", "p", "pre"}
    | {"s", "small", "span", "strong", "sub", "sup", "u", "ul", "h1", "h2", "h3", "h4", "h5", "h6"}
    | {"table", "caption", "colgroup", "col", "thead", "tbody", "tfoot", "tr", "th", "td"}
)
#: text/html outputs may also collapse a section and wrap blocks
_HTML_TAGS = _TEXT_TAGS | {"details", "summary", "div"}
_CLASSES = re.compile(r"(?:bw-[A-Za-z0-9_-]+|dataframe|anchor-link)")


def _attribute_ok(tag: str, name: str, value: str) -> bool:
    """Attributes kept by the sanitiser: never ``hidden``, ``style`` or event handlers; classes only
    the package's own (page classes such as ``lm-mod-hidden`` could hide text)."""
    if name == "class":
        return all(_CLASSES.fullmatch(c) for c in value.split())
    if name == "id":
        return tag in ("h1", "h2", "h3", "h4", "h5", "h6")  # nbconvert's heading anchors
    if name == "href":
        return tag == "a"  # bleach checks the protocol (http, https, mailto, or a fragment)
    if name in ("colspan", "rowspan"):
        return tag in ("td", "th") and value.isdigit()
    if name == "scope":
        return tag == "th"
    if name == "border":
        return tag == "table" and value.isdigit()
    if name == "open":
        return tag == "details"
    return name == "title"


_CLEANERS: dict[str, Any] = {}


def _cleaner(kind: str) -> Any:
    if kind not in _CLEANERS:
        import bleach

        tags = _HTML_TAGS if kind == "html" else _TEXT_TAGS
        _CLEANERS[kind] = bleach.Cleaner(tags=tags, attributes=_attribute_ok, strip=False, strip_comments=True)
    return _CLEANERS[kind]


def _clean_markdown_html(text: str) -> str:
    """Sanitise the HTML rendered from a Markdown output (nbconvert's ``markdown2html``)."""
    return _cleaner("markdown").clean(str(text))


def _style_ok(css: str) -> bool:
    """A style sheet kept in an output: plain rules whose every selector starts with a class of the
    package (``.bw-…``) or of a polars frame (``.dataframe``); no at-rule, no ``url()``."""
    import tinycss2

    rules = tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True)
    if not rules:
        return False
    for rule in rules:
        if rule.type != "qualified-rule":
            return False
        selectors = tinycss2.serialize(rule.prelude).split(",")
        if not all(re.match(r"\s*\.(?:bw-[A-Za-z0-9_-]+|dataframe)\b", s) for s in selectors):
            return False
        if "url(" in tinycss2.serialize(rule.content).lower():
            return False
    return True


def _clean_html(text: str) -> str:
    """Sanitise a text/html output that is not a plot: allowed tags and attributes only, and the
    style sheets of :func:`_style_ok` (any other ``<style>`` is shown as text)."""
    kept: dict[str, str] = {}
    token = f"bwstyle{os.urandom(8).hex()}n"

    def keep(m: re.Match) -> str:
        if not _style_ok(m.group(1)):
            return m.group(0)
        key = f"{token}{len(kept)}x"
        kept[key] = f"<style>{m.group(1)}</style>"
        return key

    text = re.sub(r"<style\b[^>]*>(.*?)</style\s*>", keep, str(text), flags=re.IGNORECASE | re.DOTALL)
    clean = _cleaner("html").clean(text)
    for key, style in kept.items():
        clean = clean.replace(key, style)
    return clean


def _escape_embedded_json(text: str) -> str | None:
    """Write every ``<`` of the JSON assigned to ``docs_json``/``render_items`` as ``\\u003c``: the
    same JSON to JavaScript, but no ``</script>`` or ``<!--`` in the data can end the script.
    ``None`` when such an assignment is not followed by JSON."""
    decoder = json.JSONDecoder()
    out, pos = [], 0
    while m := _JSON_VARS.search(text, pos):
        try:
            _, end = decoder.raw_decode(text, m.end())
        except ValueError:
            return None
        out += [text[pos : m.end()], text[m.end() : end].replace("<", "\\u003c")]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _plot_html_ok(text: str) -> bool:
    """A plot's HTML: scripts that cannot end early (no ``<!--``, no nested ``<script``, every one
    closed) and, outside them, only empty ``div`` containers."""
    from html.parser import HTMLParser

    outside, pos = [], 0
    while m := _SCRIPT_OPEN.search(text, pos):
        outside.append(text[pos : m.start()])
        close = _SCRIPT_CLOSE.search(text, m.end())
        if close is None:
            return False
        body = text[m.end() : close.start()]
        if re.search(r"<!--|<script", body, re.IGNORECASE):
            return False
        pos = close.end()
    outside.append(text[pos:])

    class Shape(HTMLParser):
        ok = True

        def handle_starttag(self, tag, attrs):
            allowed = {"id", "class", "data-root-id", "style"}
            if tag != "div" or any(k not in allowed for k, _ in attrs):
                self.ok = False
            if any(k == "style" and v != "display: contents;" for k, v in attrs):
                self.ok = False

        def handle_endtag(self, tag):
            self.ok = self.ok and tag == "div"

        def handle_data(self, data):
            self.ok = self.ok and not data.strip()

        def handle_comment(self, data):
            self.ok = False

    shape = Shape()
    shape.feed("".join(outside))
    shape.close()
    return shape.ok


def _safe_outputs(nb: Any) -> dict[str, int]:
    """Make every code cell's outputs safe to put on the page (in place); count what was done."""
    counts = {"plots": 0, "sanitized": 0, "withheld": 0, "dropped": 0}
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        outputs = []
        for out in cell.get("outputs", []):
            data = out.get("data")
            if out.get("output_type") not in ("display_data", "execute_result") or not data:
                outputs.append(out)
                continue
            for key, value in list(data.items()):
                if isinstance(value, list) and key.startswith("text/"):
                    data[key] = "".join(value)
            if any(m in data for m in _PLOT_MIMES):
                if "text/html" in data:
                    escaped = _escape_embedded_json(data["text/html"])
                    if escaped is None or not _plot_html_ok(escaped):
                        out["data"] = {"text/plain": _WITHHELD}
                        counts["withheld"] += 1
                    else:
                        data["text/html"] = escaped
                        counts["plots"] += 1
            elif set(data) == {"text/html"} and _PANEL_PREAMBLE.fullmatch(data["text/html"]):
                pass
            else:
                for key in [k for k in data if k not in _PLAIN_MIMES]:
                    del data[key]
                    counts["dropped"] += 1
                if "text/html" in data:
                    data["text/html"] = _clean_html(data["text/html"])
                    counts["sanitized"] += 1
                if "text/markdown" in data:  # rendered, then cleaned by the template's filter
                    counts["sanitized"] += 1
            if out.get("data"):
                outputs.append(out)
        cell["outputs"] = outputs
    return counts


#: the lab template, with Markdown outputs sanitised after they are rendered to HTML
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{% block data_markdown scoped -%}
<div class="jp-RenderedHTMLCommon jp-RenderedMarkdown jp-OutputArea-output {{ extra_class }}" \
data-mime-type="text/markdown">
{{ output.data['text/markdown'] | markdown2html | bw_clean_markdown_html }}
</div>
{%- endblock data_markdown %}
"""


def _render_html(executed: Path, target: Path, *, title: str) -> dict[str, int]:
    """Self-contained, safe HTML: code hidden, no CDN (Bokeh is inlined by ``bw.plots.setup``),
    only plot outputs run script (see the module docstring). Returns what the sanitising did."""
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(executed, as_version=4)
    for cell in nb.cells:  # empty display outputs (HoloViews comms) cannot be rendered: drop them
        if cell.get("outputs"):
            cell["outputs"] = [o for o in cell["outputs"] if o.get("output_type") != "display_data" or o.get("data")]
    counts = _safe_outputs(nb)
    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({"bw_report.html.j2": _TEMPLATE})],
        template_file="bw_report.html.j2",
    )
    exporter.register_filter("bw_clean_markdown_html", _clean_markdown_html)
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
    target.write_text(_inline_cdn(body), encoding="utf-8")
    return counts


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


# ---------------------------------------------------------------------------------------------
# runs that died, and the index
# ---------------------------------------------------------------------------------------------
#: a run's temporary folder: ``.<run id>-<random>`` (see :func:`run_report`)
_TEMP_RUN = re.compile(r"^\.\d{8}T\d{9}Z-")


def _read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        marker = json.loads((folder / _MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _recovering_alive(folder: Path) -> bool:
    m = re.search(r"\.recovering-(\d+)$", folder.name)
    return m is not None and _alive(int(m.group(1)), None)


def _run_state(folder: Path, marker: Mapping[str, Any] | None) -> str:
    """``"dead"`` (its process on this host is gone), ``"running"`` (alive, or on another host: we
    cannot tell) or ``"unknown"`` (no readable marker)."""
    if marker is None:
        return "unknown"
    if _recovering_alive(folder):
        return "running"
    if marker.get("host") != platform.node():
        return "running"
    return "running" if _alive(marker.get("pid"), marker.get("process_started")) else "dead"


def recover_interrupted(output_dir: str | os.PathLike = "reports") -> list[Path]:
    """Record runs whose process died without finishing (SIGKILL, out of memory, a crash) as
    ``interrupted``; return their run folders.

    A run keeps a marker (process id, its start time, host) in its temporary folder
    ``<output_dir>/<report>/.<run>-*``. When that process is gone from this host, the folder's
    files are removed (and listed in the manifest as ``debris_removed``), a manifest with status
    ``interrupted`` is written, and the folder becomes ``<output_dir>/<report>/<run>``. Folders of
    live processes, of other hosts and without a marker are left alone (the index lists them).
    """
    root = Path(output_dir)
    recovered: list[Path] = []
    for folder in sorted(root.glob("*/.*")):
        if not folder.is_dir() or not _TEMP_RUN.match(folder.name):
            continue
        marker = _read_marker(folder)
        if _run_state(folder, marker) != "dead":
            continue
        base = re.sub(r"(\.recovering-\d+)+$", "", folder.name)
        claimed = folder.with_name(f"{base}.recovering-{os.getpid()}")
        try:  # the rename is the claim: of two processes recovering at once, one wins
            folder.rename(claimed)
        except OSError:
            continue
        run = str(marker.get("run") or base.lstrip(".") or "run")
        run = re.sub(r"[^A-Za-z0-9_.-]+", "-", run).strip("-.") or "run"
        removed = _debris(claimed)
        for p in sorted(claimed.iterdir()):
            if p.name != _MARKER:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        now = dt.datetime.now(dt.UTC)
        pid, host = marker.get("pid"), marker.get("host")
        manifest = {k: v for k, v in marker.items() if k not in ("pid", "process_started", "host")} | {
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
        _write_json(claimed / "manifest.json", manifest)
        (claimed / _MARKER).unlink(missing_ok=True)
        try:
            recovered.append(_move_into_place(claimed, folder.parent / run))
        except OSError:  # pragma: no cover - left named .recovering-<pid>, listed by the index
            continue
    return recovered


def _text(value: Any) -> str:
    """Any value of a manifest as escaped HTML text (a tampered manifest is data)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = json.dumps(value, default=str, ensure_ascii=False) if isinstance(value, dict | list) else str(value)
    return html.escape(value, quote=True)


def _index_entries(root: Path) -> list[dict[str, Any]]:
    """One entry per run folder (manifest, corrupt manifest or none) and per temporary folder."""
    entries: list[dict[str, Any]] = []
    for folder in sorted(p for p in root.glob("*/*") if p.is_dir()):
        rel = folder.relative_to(root).as_posix()
        base = {"report": folder.parent.name, "run": folder.name, "_dir": rel}
        if folder.name.startswith("."):
            if not _TEMP_RUN.match(folder.name):  # not a run's (e.g. .ipynb_checkpoints)
                continue
            marker = _read_marker(folder)
            state = _run_state(folder, marker)
            if marker is not None:
                entries.append(
                    base
                    | {k: marker.get(k) for k in ("report", "started", "parameters")}
                    | {
                        "status": "running",
                        "detail": f"pid {marker.get('pid')} on {marker.get('host')}; temporary folder {rel}",
                    }
                )
            else:
                entries.append(
                    base
                    | {
                        "status": state,
                        "detail": f"temporary folder {rel} without a readable run marker (from an older "
                        "bioworkbench, or a run stopped as it began); left in place",
                    }
                )
            continue
        mf = folder / "manifest.json"
        if not mf.exists():
            entries.append(base | {"status": "incomplete", "detail": f"{rel} holds no manifest.json"})
            continue
        try:
            m = json.loads(mf.read_text(encoding="utf-8"))
            if not isinstance(m, dict):
                raise ValueError(f"a manifest is a JSON object; found {type(m).__name__}")
        except (OSError, ValueError) as exc:
            reason = str(exc)
            if isinstance(exc, json.JSONDecodeError):
                reason = f"not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}"
            elif isinstance(exc, UnicodeDecodeError):
                reason = f"not UTF-8 text (byte {exc.start})"
            entries.append(base | {"status": "corrupt", "detail": f"{rel}/manifest.json cannot be read: {reason}"})
            continue
        err = m.get("error")
        detail = f"{err.get('ename')}: {err.get('evalue')}" if isinstance(err, dict) else (err or "")
        entries.append(m | base | {"report": m.get("report", base["report"]), "detail": detail})
    entries.sort(key=lambda e: (str(e.get("started") or ""), str(e.get("run") or "")), reverse=True)
    return entries


#: the statuses the index knows (a row's CSS class; any other status is shown, classed "other")
_STATUSES = ("completed", "failed", "refused", "interrupted", "running", "corrupt", "incomplete", "unknown")


def write_index(output_dir: str | os.PathLike = "reports") -> Path:
    """Rewrite ``<output_dir>/index.html``: every run, newest first, with status and links.

    Dead runs are recorded first (:func:`recover_interrupted`). Every run folder is listed: a
    manifest that cannot be read as ``corrupt``, a folder without one as ``incomplete``, a live
    run's temporary folder as ``running``, one without a marker as ``unknown``. Every value taken
    from a manifest is escaped.
    """
    root = Path(output_dir)
    if root.is_dir():
        recover_interrupted(root)
    entries = _index_entries(root) if root.is_dir() else []
    rows = []
    for e in entries:
        params = e.get("parameters")
        if isinstance(params, dict):
            params = ", ".join(f"{k}={v}" for k, v in params.items() if k != "campaign")
        status = str(e.get("status") or "?")
        css = status if status in _STATUSES else "other"
        duration = e.get("duration_s")
        duration = (
            f"{duration:.2f} s" if isinstance(duration, int | float) and not isinstance(duration, bool) else duration
        )
        folder = root / e["_dir"]
        links = []
        for label, file in (("report", "report.html"), ("manifest", "manifest.json")):
            if (folder / file).is_file():
                links.append(f'<a href="{html.escape(quote(e["_dir"] + "/" + file), quote=True)}">{label}</a>')
        rows.append(
            f'<tr class="{css}"><td>{_text(e.get("report"))}</td><td>{_text(params)}</td>'
            f'<td class="status">{_text(status)}</td><td>{_text(e.get("started"))}</td>'
            f"<td>{_text(duration)}</td><td>{' · '.join(links)}</td><td>{_text(e.get('detail'))}</td></tr>"
        )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>bioworkbench reports</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}}
tr.failed .status,tr.corrupt .status,tr.interrupted .status{{color:#b00;font-weight:bold}}
tr.completed .status{{color:#070}}</style></head>
<body><h1>bioworkbench reports</h1>
<p>{len(entries)} run(s), newest first. Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC.</p>
<table><thead><tr><th>report</th><th>parameters</th><th>status</th><th>started (UTC)</th><th>time</th>
<th>files</th><th>error</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""
    root.mkdir(parents=True, exist_ok=True)
    target = root / "index.html"
    tmp = root / f".index.html.{os.getpid()}.part"
    tmp.write_text(page, encoding="utf-8")
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

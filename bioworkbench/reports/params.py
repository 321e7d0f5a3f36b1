"""A report's parameters: declared in the notebook's ``parameters`` cell, checked before a kernel starts.

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

A campaign from a store
-----------------------
``campaign`` may name a store and a selection of its batches instead of a folder:
``duckdb:///data/plant.duckdb?batch_ids=B01,B02`` (``since=2024-03-01`` and ``variables=vcd,titer``
select too; ``postgresql://user@host/db?batch_ids=...`` for a server;
:func:`bioworkbench.database.parse_store_url`). The checks open the store read-only: an unknown
query key, a password in the URL (it would be recorded in every manifest: keep it in
``~/.pgpass``), a missing store file, a batch the store does not hold, or a ``batch_id`` outside
the selection is refused naming the parameter file. The value is returned with a relative DuckDB path
made absolute; :func:`~bioworkbench.reports.run_report` reads the selection and gives the notebook
a campaign folder holding exactly it.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import math
import os
import re
import tokenize
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bioworkbench.checks import require_columns
from bioworkbench.errors import ConfigError, DataReadError, SchemaError, suggest

__all__ = [
    "FILE_PARAMETERS",
    "Parameter",
    "ParameterFile",
    "check_parameters",
    "find_notebook",
    "load_parameter_file",
    "notebook_parameters",
    "notebooks_dir",
    "read_parameter_file",
]

_TYPES = {"str": str, "int": int, "float": float, "bool": bool, "list": list, "dict": dict}
_NUMBER = r"[-+]?(?:inf|(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)"
_INTERVAL = re.compile(rf"\s*([\[(])\s*({_NUMBER})\s*,\s*({_NUMBER})\s*([\])])\s*$", re.IGNORECASE)
_CHOICES = re.compile(r"\s*\{([^{}]*)\}\s*$")


@dataclass(frozen=True)
class Parameter:
    """One parameter of a report notebook: ``name: type = default  # help [constraint]``.

    Parameters
    ----------
    name, type, default, help
        As declared (``type`` without ``| None``).
    optional
        Declared ``T | None``: ``null`` is accepted.
    interval
        ``(low, high, low_closed, high_closed)`` for numbers, or ``None``.
    choices
        The allowed values of a string, or ``None`` (see the module docstring for the syntax).
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
        """Whether an empty value is refused: a non-optional ``str`` whose default is not empty."""
        return self.type == "str" and not self.optional and isinstance(self.default, str) and bool(self.default.strip())

    @property
    def constraint(self) -> str:
        """The constraint as written in the notebook (``"[0, inf)"``, ``"{a, b}"``), or ``""``."""
        if self.interval is not None:
            lo, hi, lo_closed, hi_closed = self.interval
            return f"{'[' if lo_closed else '('}{_num(lo)}, {_num(hi)}{']' if hi_closed else ')'}"
        if self.choices is not None:
            return "{" + ", ".join(self.choices) + "}"
        return ""

    def check(self, value: Any) -> str | None:
        """Whether ``value`` fits the declared type and constraint.

        Parameters
        ----------
        value
            A value read from a parameter file or given by the caller.

        Returns
        -------
        str or None
            ``None`` when it fits, else the message saying what was expected and what was found
            (``"prob must lie in (0, 1); got 1.5."``); a ``None`` of a non-optional parameter, a
            bool for a number, a value outside its interval or choices and an empty required string
            do not fit.
        """
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
    """The folder of the report notebooks.

    Returns
    -------
    pathlib.Path
        ``$BW_NOTEBOOKS`` when set, else ``notebooks/`` next to the package source (a checkout),
        else ``./notebooks``.
    """
    env = os.environ.get("BW_NOTEBOOKS")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parents[2] / "notebooks"  # bioworkbench/reports/params.py
    return here if here.is_dir() else Path.cwd() / "notebooks"


def find_notebook(name: str, directory: str | os.PathLike | None = None) -> Path:
    """The report notebook called ``name``.

    Parameters
    ----------
    name
        The report (``batch_report``).
    directory
        Where the notebooks are; by default :func:`notebooks_dir`.

    Returns
    -------
    pathlib.Path
        ``<directory>/<name>.ipynb``.

    Raises
    ------
    ConfigError
        No such notebook; the message suggests the closest names and lists the reports.
    """
    directory = Path(directory) if directory else notebooks_dir()
    path = directory / f"{name}.ipynb"
    if not path.exists():
        names = sorted(p.stem for p in directory.glob("*.ipynb"))
        raise ConfigError(f"no report notebook {name!r} in {directory}. " + suggest(name, names, what="Reports"))
    return path


def notebook_parameters(notebook: str | os.PathLike) -> dict[str, Parameter]:
    """Parse the ``parameters`` cell of a notebook (``name: type = default  # help [constraint]``).

    Parameters
    ----------
    notebook
        Path of the ``.ipynb`` file.

    Returns
    -------
    dict of str to Parameter
        The parameters in their order in the cell.

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

    Parameters
    ----------
    path
        The YAML file.

    Returns
    -------
    dict
        The parameters as given (not yet checked against a notebook: see :func:`check_parameters`).

    Raises
    ------
    ConfigError
        The file is missing, not UTF-8 (a UTF-16 export, a stray byte), not valid YAML, gives a key
        twice, or is not a mapping; the message names the file, line and column.
    """
    return read_parameter_file(path).values


@dataclass(frozen=True)
class ParameterFile:
    """A parameter file as read: its path, its values and the sha256 of the very bytes they came from.

    Parameters
    ----------
    path
        The file, as given.
    values
        The mapping read from it.
    sha256
        Hex digest of the file's bytes at the moment they were read (a manifest records this, not a
        later reading).
    """

    path: Path
    values: dict[str, Any]
    sha256: str


def read_parameter_file(path: str | os.PathLike) -> ParameterFile:
    """Read a YAML parameter set once, keeping the sha256 of the bytes read.

    Parameters
    ----------
    path
        The YAML file.

    Returns
    -------
    ParameterFile
        Path, values and sha256.

    Raises
    ------
    ConfigError
        As :func:`load_parameter_file`.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"parameter file {path} not found{' (it is a folder)' if path.is_dir() else ''}.")
    raw = path.read_bytes()
    text = _utf8_text(raw, path, what="a parameter file")
    return ParameterFile(path, _yaml_mapping(text, path), hashlib.sha256(raw).hexdigest())


def _not_utf8(raw: bytes) -> str | None:
    """Why ``raw`` is not UTF-8 text, from its first bytes, or ``None`` (:func:`bioworkbench.io.tidy.not_utf8`)."""
    from bioworkbench.io.tidy import not_utf8

    return not_utf8(raw)


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
    from bioworkbench.store import load_yaml

    data = load_yaml(text, source=str(path), error=ConfigError, advice="give each parameter once.")
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

    Parameters
    ----------
    name
        The report (named in messages when ``source`` is not given).
    parameters
        The values given (from a file and/or the caller).
    declared
        The notebook's parameters (:func:`notebook_parameters`).
    source
        The parameter file, named at the head of the message.

    Returns
    -------
    dict
        The full parameter set: defaults filled in, ``campaign`` and file parameters
        (:data:`FILE_PARAMETERS`) made absolute.

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
        batch_id = full.get("batch_id") if "batch_id" in declared else None
        if _is_store_url(full["campaign"]):
            full["campaign"] = str(_check_store(full["campaign"], where, batch_id))
        else:
            full["campaign"] = str(_check_campaign(full["campaign"], where, batch_id))
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


def _is_store_url(value: Any) -> bool:
    from bioworkbench.database.selection import is_store_url

    return is_store_url(value)


def _check_store(value: str, where: str, batch_id: str | None) -> Any:
    """The campaign named as a store URL with a selection, checked: the keys known, the store
    reachable, the batches asked for in it, and the report's ``batch_id`` among those selected.
    Returns the :class:`~bioworkbench.database.StoreQuery` (a relative DuckDB path made absolute)."""
    from urllib.parse import urlsplit

    from bioworkbench.database.selection import parse_store_url
    from bioworkbench.errors import ArgumentError

    try:
        query = parse_store_url(value, base=Path.cwd())
    except ArgumentError as exc:
        raise ConfigError(f"{where}: campaign {value!r}: {exc}") from None
    if urlsplit(query.url).password is not None or "password=" in query.url:
        raise ConfigError(
            f"{where}: campaign names a store URL with a password; a parameter is recorded in every run's "
            "manifest and page. Keep the password in ~/.pgpass (or the file $PGPASSFILE names) and leave it "
            "out of the URL."
        )
    try:
        with query.open() as store:
            ids = store.batch_ids()
            if query.batch_ids is not None:
                missing = [b for b in query.batch_ids if b not in ids]
                if missing:
                    raise ConfigError(
                        f"{where}: campaign {value!r}: {len(missing)} batch id(s) not in the store "
                        f"{query.url}: {', '.join(missing[:10])}. " + suggest(missing[0], ids, what="Batches")
                    )
            selected = query.selected_batch_ids(store) if batch_id else []
    except DataReadError as exc:
        raise ConfigError(f"{where}: campaign {value!r}: {exc}") from None
    if batch_id and batch_id not in selected:
        raise ConfigError(
            f"{where}: batch {batch_id!r} is not among the batches that campaign {value!r} selects "
            f"({len(selected)}: {', '.join(selected[:10])}{' ...' if len(selected) > 10 else ''}). "
            + suggest(batch_id, selected, what="Batches")
        )
    return query


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
        table = read_frame_file(batches_file, "batches")
    except DataReadError as exc:
        raise ConfigError(f"{where}: the campaign's batches cannot be read: {exc}") from None
    except Exception as exc:  # any other reader failure is still this file's
        raise ConfigError(
            f"{where}: the campaign's batches cannot be read: {batches_file}: {type(exc).__name__}: {exc}"
        ) from None
    frame = table.frame
    try:  # the header is the line before the first data row
        require_columns(frame, ["batch_id"], what=f"{where}: {batches_file}, line {max(table.first_line - 1, 1)}")
    except SchemaError as exc:
        raise ConfigError(exc.issues[0].message) from None
    import polars as pl

    return frame["batch_id"].cast(pl.String).to_list()

"""Campaign folders on disk: the record in ``campaign.yaml``, file hashes, the signature, atomic writes.

A campaign folder holds one file per frame (``batches``, ``observations``, ``events``, ``media``,
``quality``, ``specs``; CSV or Parquet) plus ``campaign.yaml`` (name, description, schema version
and, for a folder written by :meth:`~bioworkbench.Campaign.write`, each frame's file, row count and
sha256, whether the campaign was validated, and a signature). :func:`write_folder` writes such a
folder; :func:`read_meta` reads and checks the record; :func:`is_signed` says whether a record was
signed with this user's key, which lets :func:`bioworkbench.read_campaign` trust the folder.

**Which folders are trusted.** A hash recorded next to the data proves nothing to whoever can edit
the folder: recompute it and the record agrees again. So a folder is read without re-validation
only when (1) every frame has the row count and sha256 that ``campaign.yaml`` records, (2)
``campaign.yaml`` says the campaign was validated, and (3) its signature, an HMAC-SHA256 of (1)
and (2) with a secret key kept outside the folder (in this user's data folder,
``$XDG_DATA_HOME/bioworkbench/campaign.key``, created on the first write; or the file named by
``$BIOWORKBENCH_KEY_FILE``), matches. The signature cannot be forged by editing the folder, as
Jupyter's notebook signatures cannot.

Layer: below :mod:`bioworkbench.campaign` (which writes through it) and
:mod:`bioworkbench.io.folder` (which reads through it); imports :mod:`bioworkbench.errors` and
:mod:`bioworkbench.schema` only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import shutil
import sys
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from bioworkbench.errors import DataReadError, Issue, SchemaError, suggest
from bioworkbench.schema import FRAMES, SCHEMA_VERSION

__all__ = ["FRAME_NAMES", "KEY_FILE_ENV", "is_signed", "load_yaml", "read_meta", "sha256_file", "write_folder"]

#: the frames of a campaign, in their order
FRAME_NAMES = tuple(FRAMES)


def load_yaml(
    text: str,
    *,
    source: str,
    error: type[Exception] = DataReadError,
    advice: str = "YAML keeps only the last, so give it once.",
) -> Any:
    """Parse YAML ``text`` safely, refusing a key given twice in one mapping.

    Parameters
    ----------
    text
        The YAML document.
    source
        The file it came from, to locate problems.
    error
        The exception raised (a :class:`~bioworkbench.errors.BioWorkbenchError` subclass taking one
        message): :class:`~bioworkbench.errors.DataReadError` for data, ``ConfigError`` for settings.
    advice
        The sentence that follows the message about a key given twice (what the reader should do).

    Returns
    -------
    Any
        The document (``None`` when empty).

    Raises
    ------
    error
        Not valid YAML (line and column of the problem), or a key given twice in one mapping
        (the lines of both): PyYAML keeps the last silently, so that a column map listing a header
        twice would read the column as the second variable without a word.

    Notes
    -----
    YAML 1.2 (section 3.2.1.1) requires the keys of a mapping to be unique; PyYAML's safe loader
    does not enforce it. Only safe tags are constructed (``yaml.SafeLoader``).
    """
    import yaml

    class _Duplicate(Exception):
        pass

    class UniqueKeyLoader(yaml.SafeLoader):
        """SafeLoader that refuses a key given twice in one mapping."""

    def construct_mapping(loader, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the safe constructor below says so
                continue
            if first is not None:
                raise _Duplicate(f"{source}, line {line}: key {key!r} is given twice (first on line {first}); {advice}")
            seen[key] = line
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader subclass
    except _Duplicate as exc:
        raise error(str(exc)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        raise error(f"{where}: not valid YAML: {problem}{f' ({context})' if context else ''}.") from None


def write_folder(
    frames: Mapping[str, pl.DataFrame],
    folder: str | os.PathLike,
    *,
    name: str,
    description: str,
    sources: Mapping[str, str],
    validated: bool,
    overwrite: bool = False,
) -> Path:
    """Write ``frames`` as a campaign folder of Parquet files plus ``campaign.yaml``, atomically.

    Parameters
    ----------
    frames
        The six frames by name.
    folder
        Where to write; it must not exist or be empty, unless ``overwrite``.
    name, description, sources
        Recorded in ``campaign.yaml``.
    validated
        Whether every rule of the data model was checked; only then is the record signed.
    overwrite
        Replace a non-empty ``folder``.

    Returns
    -------
    pathlib.Path
        ``folder``.

    Raises
    ------
    FileExistsError
        If ``folder`` is a file, or exists and is not empty, unless ``overwrite``.

    Notes
    -----
    The folder is written next to its destination and moved into place when complete; an existing
    folder (``overwrite``) is moved aside first and deleted only once the new one is in place, so a
    failure at any step leaves the old campaign as it was.
    """
    import yaml

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} exists and is a file, not a folder.")
    if folder.exists() and any(folder.iterdir()) and not overwrite:
        raise FileExistsError(f"{folder} exists and is not empty; pass overwrite=True to replace it.")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-new-", dir=folder.parent))
    try:
        meta: dict[str, Any] = {
            "name": name,
            "description": description,
            "schema_version": SCHEMA_VERSION,
            "written_by": f"bioworkbench {_version()}",
            "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "sources": dict(sources),
            "frames": {},
        }
        for fname, frame in frames.items():
            path = tmp / f"{fname}.parquet"
            frame.write_parquet(path, statistics=True)
            meta["frames"][fname] = {
                "file": path.name,
                "rows": frame.height,
                "sha256": sha256_file(path),
            }
        meta["validated"] = bool(validated)
        key = _secret_key(create=True) if validated else None
        if key is not None:
            meta["signature"] = _signature(meta, key)
        (tmp / "campaign.yaml").write_text(yaml.safe_dump(meta, sort_keys=False, allow_unicode=True))
        _replace_folder(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _version() -> str:
    """The package's ``__version__``, read from the loaded package (a module of it is running, so it
    is loaded) rather than imported: this module sits below the package's ``__init__``."""
    return str(getattr(sys.modules.get("bioworkbench"), "__version__", "unknown"))


def _replace_folder(new: Path, folder: Path) -> None:
    """Move the complete ``new`` folder to ``folder``; an old ``folder`` goes only once ``new`` is there."""
    if not folder.exists():
        new.rename(folder)
        return
    old = folder.with_name(f".{folder.name}-old-{uuid.uuid4().hex[:8]}")
    folder.rename(old)
    try:
        new.rename(folder)
    except BaseException:
        old.rename(folder)
        raise
    shutil.rmtree(old, ignore_errors=True)


def sha256_file(path: str | os.PathLike, *, chunk: int = 1 << 22) -> str:
    """The sha256 of a file's bytes.

    Parameters
    ----------
    path
        The file.
    chunk
        Bytes read at a time.

    Returns
    -------
    str
        64 hex digits.
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# the signature of a validated campaign folder
# ---------------------------------------------------------------------------------------------
#: environment variable naming the key file (default: ``$XDG_DATA_HOME/bioworkbench/campaign.key``)
KEY_FILE_ENV = "BIOWORKBENCH_KEY_FILE"


def _key_path() -> Path:
    if os.environ.get(KEY_FILE_ENV):
        return Path(os.environ[KEY_FILE_ENV])
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "bioworkbench" / "campaign.key"


def _secret_key(*, create: bool) -> bytes | None:
    """This user's secret key (created, readable by the user only, on first use when ``create``).

    ``None`` when there is none and none can be made (a read-only home): folders are then
    written unsigned and validated when read.
    """
    path = _key_path()
    try:
        return bytes.fromhex(path.read_text().strip()) or None
    except FileNotFoundError:
        if not create:
            return None
    except (OSError, ValueError):
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    except FileExistsError:
        pass  # another process made it first
    except OSError:
        return None
    return _secret_key(create=False)


def _signature(meta: Mapping[str, Any], key: bytes) -> str:
    """HMAC-SHA256 of what a trusted read relies on: schema version, frames (file, rows, sha256)."""
    payload = {
        "schema_version": meta.get("schema_version"),
        "frames": meta.get("frames"),
        "validated": meta.get("validated") is True,
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def is_signed(meta: Mapping[str, Any]) -> bool:
    """Whether a ``campaign.yaml`` record says "validated" and carries this user's signature of it.

    Parameters
    ----------
    meta
        The record, as :func:`read_meta` returns it.

    Returns
    -------
    bool
        ``True`` only when the signature matches the HMAC-SHA256, with this user's key, of the
        schema version, the frames (file, rows, sha256) and the validated mark (module docstring).
    """
    signature = meta.get("signature")
    if meta.get("validated") is not True or not isinstance(signature, str):
        return False
    key = _secret_key(create=False)
    return key is not None and hmac.compare_digest(signature, _signature(meta, key))


# ---------------------------------------------------------------------------------------------
# campaign.yaml
# ---------------------------------------------------------------------------------------------
_META_KEYS = (
    "name",
    "description",
    "schema_version",
    "written_by",
    "written_at",
    "sources",
    "frames",
    "validated",
    "signature",
)
_FRAME_KEYS = ("file", "rows", "sha256")


def read_meta(path: Path) -> dict[str, Any]:
    """``campaign.yaml`` as a dict, its structure checked.

    Parameters
    ----------
    path
        The ``campaign.yaml`` file.

    Returns
    -------
    dict
        Its keys (``{}`` for an empty file).

    Raises
    ------
    DataReadError
        Not valid YAML, not a mapping, unknown keys, or values of the wrong kind (a schema version
        this bioworkbench does not read, frames without file, rows and sha256...): every problem
        located by line and key.
    """
    import yaml

    text = path.read_text()
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise DataReadError(f"{path}: {where}not valid YAML ({getattr(exc, 'problem', None) or exc}).") from None
    raw = load_yaml(text, source=str(path))
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        kind = {list: "a list", str: "a text", int: "a number", float: "a number"}.get(type(raw), type(raw).__name__)
        raise DataReadError(
            f"{path}: line {node.start_mark.line + 1}: campaign.yaml must be a mapping of keys "
            f"({', '.join(_META_KEYS)}); found {kind}. Hint: write the folder with Campaign.write, or give "
            "e.g. 'name: my campaign' on its own line."
        )
    lines = {k.value: k.start_mark.line + 1 for k, _ in node.value} if isinstance(node, yaml.MappingNode) else {}
    issues: list[Issue] = []

    def bad(key: str, message: str, hint: str | None = None) -> None:
        issues.append(Issue(message, file=str(path), line=lines.get(key), column=key, hint=hint))

    for key in raw:
        if key not in _META_KEYS:
            bad(str(key), f"unknown key {key!r}.", suggest(str(key), _META_KEYS, what="Valid keys"))
    for key in ("name", "description", "written_by", "written_at", "signature"):
        if key in raw and raw[key] is not None and not isinstance(raw[key], str | dt.datetime):
            bad(key, f"{key} must be text; found {raw[key]!r}.")
    if "schema_version" in raw and raw["schema_version"] != SCHEMA_VERSION:
        bad(
            "schema_version",
            f"schema_version {raw['schema_version']!r} is not supported; this bioworkbench reads "
            f"schema_version {SCHEMA_VERSION}.",
        )
    if "validated" in raw and not isinstance(raw["validated"], bool):
        bad("validated", f"validated must be true or false; found {raw['validated']!r}.")
    if raw.get("sources") is not None and not isinstance(raw["sources"], Mapping):
        bad("sources", f"sources must be a mapping of file -> sha256; found {type(raw['sources']).__name__}.")
    frames = raw.get("frames")
    if frames is not None and not isinstance(frames, Mapping):
        bad("frames", f"frames must be a mapping of frame -> (file, rows, sha256); found {type(frames).__name__}.")
    elif frames:
        for fname, rec in frames.items():
            if fname not in FRAME_NAMES:
                bad("frames", f"frames: unknown frame {fname!r}.", suggest(str(fname), FRAME_NAMES, what="Frames"))
            elif not isinstance(rec, Mapping) or set(rec) != set(_FRAME_KEYS):
                bad("frames", f"frames: {fname} must give exactly {', '.join(_FRAME_KEYS)}; found {rec!r}.")
            elif not (
                isinstance(rec["file"], str)
                and isinstance(rec["rows"], int)
                and not isinstance(rec["rows"], bool)
                and rec["rows"] >= 0
                and isinstance(rec["sha256"], str)
                and len(rec["sha256"]) == 64
            ):
                bad("frames", f"frames: {fname}: expected file (text), rows (a count) and sha256 (64 hex digits).")
    if issues:
        raise DataReadError(SchemaError(issues, context=str(path)).args[0])
    return dict(raw)

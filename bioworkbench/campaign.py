"""The :class:`Campaign`: validated tidy frames of a set of batches, and campaign folders on disk.

A campaign folder holds one file per frame (``batches``, ``observations``, ``events``, ``media``,
``quality``, ``specs``; CSV or Parquet) plus ``campaign.yaml`` (name, description, schema version
and the sha256 of every source file). :meth:`Campaign.write` always writes Parquet and records
each frame's file, row count and sha256; :func:`read_campaign` reads either kind and checks a
written folder against that record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import math
import os
import secrets
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import polars as pl

from bioworkbench.errors import BioWorkbenchWarning, DataReadError, IntegrityError, Issue, SchemaError
from bioworkbench.schema import (
    EVENT_KINDS,
    FRAMES,
    SCHEMA_VERSION,
    SOURCES,
    SPEC_KINDS,
    STATUSES,
    coerce_frame,
    empty_frame,
    registry,
    suggest,
    validate_frame,
)

__all__ = ["FRAME_NAMES", "Campaign", "read_campaign", "sha256_file"]

FRAME_NAMES = tuple(FRAMES)

FrameLike = pl.DataFrame | pl.LazyFrame | Mapping[str, Any] | None

#: categorical columns matched case-insensitively by the constructor: (frame, column) -> valid values
_CATEGORIES: dict[tuple[str, str], Any] = {
    ("observations", "source"): SOURCES,
    ("observations", "variable"): None,  # the variable registry
    ("media", "variable"): None,
    ("events", "event"): EVENT_KINDS,
    ("batches", "status"): STATUSES,
    ("specs", "kind"): SPEC_KINDS,
}


def _as_frame(obj: FrameLike, name: str) -> pl.DataFrame:
    if obj is None:
        return empty_frame(name)
    if isinstance(obj, pl.LazyFrame):
        return obj.collect()
    if isinstance(obj, pl.DataFrame):
        return obj
    if isinstance(obj, Mapping):
        return pl.DataFrame(dict(obj))
    if type(obj).__module__.startswith("pandas"):
        return pl.from_pandas(obj)
    raise TypeError(f"{name} must be a polars DataFrame (or None); got {type(obj).__name__}")


class Campaign:
    """A campaign of batches: six validated tidy polars frames and where they came from.

    Parameters
    ----------
    batches, observations, events, media, quality, specs
        Polars frames with the columns of :data:`bioworkbench.schema.FRAMES` (extra columns are
        kept, e.g. ``cpp_*`` setpoints in ``batches``). Omitted frames are empty.
    name, description
        Shown in reports and written to ``campaign.yaml``.
    sources
        ``{path: sha256}`` of the files the campaign was built from (lineage).
    validate
        Check every rule of the data model (default). ``False`` only checks column types; use it
        for frames that were validated before (e.g. written by :meth:`write` and not modified).
        Only a validated campaign is written as a trusted folder (see :func:`read_campaign`).

    Raises
    ------
    SchemaError
        Listing every problem found in all frames (the first 20 are shown): each problem once,
        with the number of rows it affects and the first of them (by line when the frame was read
        from a file, by position, counted from 0, when it was built in code).

    Warns
    -----
    BioWorkbenchWarning
        Once, listing what the constructor did to the input (see Notes); the same text is kept in
        :attr:`adjustments`.

    Notes
    -----
    With ``validate`` (the default) the constructor forgives natural mistakes, says so, and never
    changes a raw value silently:

    - observations without a ``source`` column are taken as ``offline`` (the usual case for
      sampled data);
    - categorical values are matched case-insensitively and without surrounding spaces
      (``"Offline"`` → ``offline``, ``"Glucose"`` → ``glucose``, ``"Completed"`` → ``completed``,
      ``"par"`` → ``PAR``); values matching nothing are errors that list the valid ones;
    - observations and media in a unit that converts to the variable's canonical unit
      (``10^6 cells/mL``, glucose in ``g/L``) are converted as the readers convert them
      (:func:`bioworkbench.units.to_canonical`), and the original value and unit of every
      converted row are kept in ``raw_value``/``raw_unit`` (``raw_concentration``/``raw_unit`` in
      media); a unit that cannot be converted is an error;
    - a percentage that looks like a fraction (viability 0.95 %) is kept and flagged ``suspect``
      with the reason (see :func:`bioworkbench.io.tidy.flag_fractions`).

    Observations are then in canonical units; flagged rows are kept and never count as duplicates
    or impossible values. Analyses exclude flagged rows and say how many they excluded.
    """

    #: whether every rule of the data model was checked (only such a campaign is written trusted)
    _validated: bool = False
    #: what the constructor did to its input (filled sources, matched case, converted units, flags)
    adjustments: tuple[str, ...] = ()

    def __init__(
        self,
        batches: FrameLike = None,
        observations: FrameLike = None,
        events: FrameLike = None,
        media: FrameLike = None,
        quality: FrameLike = None,
        specs: FrameLike = None,
        *,
        name: str = "campaign",
        description: str = "",
        sources: Mapping[str, str] | None = None,
        validate: bool = True,
        _files: Mapping[str, tuple[str, int]] | None = None,
    ) -> None:
        given = {
            "batches": batches,
            "observations": observations,
            "events": events,
            "media": media,
            "quality": quality,
            "specs": specs,
        }
        files = dict(_files or {})
        issues: list[Issue] = []
        notes: list[str] = []
        frames: dict[str, pl.DataFrame] = {}
        for fname, obj in given.items():
            frame = _as_frame(obj, fname)
            if validate and fname == "observations" and "source" not in frame.columns and frame.height:
                frame = frame.with_columns(source=pl.lit("offline"))
                notes.append(f"observations have no 'source' column: all {frame.height:,} taken as 'offline'")
            file, first_line = files.get(fname, (None, None))
            frame, found = coerce_frame(fname, frame, file=file, first_line=first_line)
            issues.extend(found)
            frames[fname] = frame
        if not issues and validate:
            frames, found, done = _forgive(frames, files)
            issues.extend(found)
            notes.extend(done)
        if not issues and validate:
            batch_ids = frames["batches"]["batch_id"]
            for fname, frame in frames.items():
                file, first_line = files.get(fname, (None, None))
                issues.extend(
                    validate_frame(
                        fname,
                        frame,
                        file=file,
                        first_line=first_line,
                        batch_ids=batch_ids if fname != "batches" else None,
                        media=frames["media"] if fname == "events" else None,
                    )
                )
        if issues:
            files_involved = {i.file for i in issues if i.file}
            context = next(iter(files_involved)) if len(files_involved) == 1 else f"campaign {name!r}"
            raise SchemaError(issues, context=context)
        self._frames = frames
        self.name = name
        self.description = description
        self.sources: dict[str, str] = dict(sources or {})
        self._validated = bool(validate)
        self.adjustments = tuple(notes)
        if notes:
            warnings.warn(
                f"Campaign {name!r}: " + "; ".join(notes) + ".",
                BioWorkbenchWarning,
                stacklevel=2,
            )

    # -- frames ---------------------------------------------------------------------------
    @property
    def batches(self) -> pl.DataFrame:
        return self._frames["batches"]

    @property
    def observations(self) -> pl.DataFrame:
        return self._frames["observations"]

    @property
    def events(self) -> pl.DataFrame:
        return self._frames["events"]

    @property
    def media(self) -> pl.DataFrame:
        return self._frames["media"]

    @property
    def quality(self) -> pl.DataFrame:
        return self._frames["quality"]

    @property
    def specs(self) -> pl.DataFrame:
        return self._frames["specs"]

    def frames(self) -> dict[str, pl.DataFrame]:
        """All six frames by name."""
        return dict(self._frames)

    @property
    def batch_ids(self) -> list[str]:
        return self.batches["batch_id"].to_list()

    @property
    def cpps(self) -> list[str]:
        """Names of the CPP setpoint columns (``cpp_*``) of ``batches``."""
        return [c for c in self.batches.columns if c.startswith("cpp_")]

    def __len__(self) -> int:
        return self.batches.height

    def __repr__(self) -> str:
        obs = self.observations
        n_flag = obs.filter(pl.col("flag").is_not_null()).height
        return (
            f"<Campaign {self.name!r}: {self.batches.height} batches, {obs.height:,} observations "
            f"({n_flag:,} flagged), {self.events.height:,} events, {self.quality.height} quality "
            f"results, {self.specs.height} specs>"
        )

    # -- selection --------------------------------------------------------------------------
    def select(self, batch_ids: str | Iterable[str]) -> Campaign:
        """A campaign of only the given batches (media and specs are kept)."""
        ids = [batch_ids] if isinstance(batch_ids, str) else list(batch_ids)
        unknown = sorted(set(ids) - set(self.batch_ids))
        if unknown:
            raise SchemaError(
                [
                    Issue(
                        f"batch {b!r} is not in campaign {self.name!r}.",
                        hint=suggest(b, self.batch_ids, what="Batches"),
                    )
                    for b in unknown
                ]
            )
        keep = pl.col("batch_id").is_in(ids)
        new = object.__new__(Campaign)
        new._frames = {k: (v.filter(keep) if "batch_id" in v.columns else v) for k, v in self._frames.items()}
        new.name, new.description, new.sources = self.name, self.description, dict(self.sources)
        # a subset of whole batches of a valid campaign breaks no rule (media and specs are kept)
        new._validated, new.adjustments = self._validated, self.adjustments
        return new

    def as_of(self, known_h: float | Mapping[str, float], *, batch_ids: str | Iterable[str] | None = None) -> Campaign:
        """The campaign as it was known ``known_h`` hours into the culture of ``batch_ids``.

        For each given batch (default: every batch), observations and events after its
        ``known_h`` are removed, its quality results are removed (they are measured at harvest)
        and its status becomes ``running``. Other batches, media and specs are unchanged. Use it to
        look at a completed batch as it stood on day N, or to make sure a forecast reads nothing
        from a batch's future.

        Parameters
        ----------
        known_h
            Culture time in hours since inoculation, one value for all given batches or one per
            batch (``{"B14": 120.0}``; the batches are then the mapping's keys unless given).
        batch_ids
            The batches to cut.

        Returns
        -------
        Campaign
            A new campaign; the original is not changed.

        Raises
        ------
        SchemaError
            An unknown batch, or a ``known_h`` that is not a finite number of hours >= 0.
        """
        if isinstance(known_h, Mapping):
            cuts = dict(known_h)
            ids = list(cuts) if batch_ids is None else ([batch_ids] if isinstance(batch_ids, str) else list(batch_ids))
            missing = [b for b in ids if b not in cuts]
            if missing:
                raise SchemaError(f"known_h gives no time for batch(es) {', '.join(missing)}.")
        else:
            ids = (
                self.batch_ids
                if batch_ids is None
                else ([batch_ids] if isinstance(batch_ids, str) else list(batch_ids))
            )
            cuts = dict.fromkeys(ids, known_h)
        problems = []
        for b in ids:
            if b not in self.batch_ids:
                problems.append(
                    Issue(
                        f"batch {b!r} is not in campaign {self.name!r}.",
                        hint=suggest(b, self.batch_ids, what="Batches"),
                    )
                )
            v = cuts[b]
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                problems.append(
                    Issue(f"known_h must be a finite number of hours >= 0; got {v!r}.", column="known_h", batch=b)
                )
        if problems:
            raise SchemaError(problems)
        cut = pl.DataFrame(
            {"batch_id": ids, "_cut": [float(cuts[b]) for b in ids]}, schema_overrides={"batch_id": pl.String}
        )

        def keep_known(frame: pl.DataFrame) -> pl.DataFrame:
            return (
                frame.join(cut, on="batch_id", how="left")
                .filter(pl.col("_cut").is_null() | (pl.col("time_h") <= pl.col("_cut")))
                .drop("_cut")
            )

        frames = dict(self._frames)
        frames["observations"] = keep_known(frames["observations"])
        frames["events"] = keep_known(frames["events"])
        frames["quality"] = frames["quality"].filter(~pl.col("batch_id").is_in(ids))
        frames["batches"] = frames["batches"].with_columns(
            status=pl.when(pl.col("batch_id").is_in(ids)).then(pl.lit("running")).otherwise(pl.col("status"))
        )
        new = object.__new__(Campaign)
        new._frames = frames
        new.name, new.description, new.sources = self.name, self.description, dict(self.sources)
        # whole rows removed and a valid status set: a valid campaign stays valid
        new._validated, new.adjustments = self._validated, self.adjustments
        return new

    def flagged(self) -> pl.DataFrame:
        """Observations carrying a flag, with why and where they came from."""
        return self.observations.filter(pl.col("flag").is_not_null())

    def to_wide(
        self,
        *,
        source: str | None = "offline",
        batch_ids: Iterable[str] | None = None,
        include_flagged: bool = False,
    ) -> pl.DataFrame:
        """A wide view for people and plots: one row per (batch, time), one column per variable.

        Flagged values are left out unless ``include_flagged``; units are canonical (see
        :func:`bioworkbench.schema.variables`).
        """
        obs = self.observations
        if source is not None:
            obs = obs.filter(pl.col("source") == source)
        if batch_ids is not None:
            obs = obs.filter(pl.col("batch_id").is_in(list(batch_ids)))
        if not include_flagged:
            obs = obs.filter(pl.col("flag").is_null())
        if obs.is_empty():
            return pl.DataFrame(schema={"batch_id": pl.String, "time_h": pl.Float64})
        return obs.pivot(on="variable", index=["batch_id", "time_h"], values="value", aggregate_function="first").sort(
            "batch_id", "time_h"
        )

    def summary(self) -> pl.DataFrame:
        """One row per batch: status, process, scale, sample and flag counts, peak biomass, final
        product, duration (see :func:`bioworkbench.outcomes.batch_summary`)."""
        from bioworkbench.outcomes import batch_summary

        return batch_summary(self)

    def describe(self) -> str:
        """A short plain-text summary (printed by ``bioworkbench summary``)."""
        b = self.batches
        obs = self.observations
        status = b.group_by("status").len().sort("status")
        st = ", ".join(f"{r['len']} {r['status']}" for r in status.iter_rows(named=True))
        variables = obs["variable"].unique().sort().to_list()
        flags = obs.filter(pl.col("flag").is_not_null()).group_by("flag").len().sort("flag")
        fl = ", ".join(f"{r['len']} {r['flag']}" for r in flags.iter_rows(named=True)) or "none"
        lines = [
            f"Campaign {self.name!r}" + (f": {self.description}" if self.description else ""),
            f"  batches:      {b.height} ({st})",
            f"  CPPs:         {', '.join(self.cpps) or 'none'}",
            f"  observations: {obs.height:,} ({(obs['source'] == 'online').sum():,} online) of "
            f"{len(variables)} variables: {', '.join(variables)}",
            f"  flagged:      {fl}",
            f"  events:       {self.events.height:,}; media: {self.media['medium'].n_unique()}; "
            f"quality results: {self.quality.height}; specs: {self.specs.height}",
        ]
        if not obs.is_empty():
            lines.append(f"  culture time: up to {obs['time_h'].max() / 24:.1f} days")
        return "\n".join(lines)

    # -- persistence ------------------------------------------------------------------------
    def write(self, folder: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the campaign as a folder of Parquet files plus ``campaign.yaml``.

        ``campaign.yaml`` records each frame's file, row count and sha256, and, for a validated
        campaign, a signature that lets :func:`read_campaign` skip re-validating it (see its
        Notes). The folder is written next to its destination and moved into place when complete;
        an existing folder (``overwrite``) is moved aside first and deleted only once the new one
        is in place, so a failure at any step leaves the old campaign as it was.

        Parameters
        ----------
        folder
            Where to write; it must not exist or be empty, unless ``overwrite``.
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
        """
        import yaml

        from bioworkbench import __version__

        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            raise FileExistsError(f"{folder} exists and is a file, not a folder.")
        if folder.exists() and any(folder.iterdir()) and not overwrite:
            raise FileExistsError(f"{folder} exists and is not empty; pass overwrite=True to replace it.")
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-new-", dir=folder.parent))
        try:
            meta: dict[str, Any] = {
                "name": self.name,
                "description": self.description,
                "schema_version": SCHEMA_VERSION,
                "written_by": f"bioworkbench {__version__}",
                "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "sources": dict(self.sources),
                "frames": {},
            }
            for fname, frame in self._frames.items():
                path = tmp / f"{fname}.parquet"
                frame.write_parquet(path, statistics=True)
                meta["frames"][fname] = {
                    "file": path.name,
                    "rows": frame.height,
                    "sha256": sha256_file(path),
                }
            meta["validated"] = self._validated
            key = _secret_key(create=True) if self._validated else None
            if key is not None:
                meta["signature"] = _signature(meta, key)
            (tmp / "campaign.yaml").write_text(yaml.safe_dump(meta, sort_keys=False, allow_unicode=True))
            _replace_folder(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return folder


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
    """Hex sha256 of a file's bytes."""
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


def _signed(meta: Mapping[str, Any]) -> bool:
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


def _read_meta(path: Path) -> dict[str, Any]:
    """``campaign.yaml`` as a dict, its structure checked; every problem located by line and key."""
    import yaml

    text = path.read_text()
    try:
        raw = yaml.safe_load(text)
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise DataReadError(f"{path}: {where}not valid YAML ({getattr(exc, 'problem', None) or exc}).") from None
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


def read_campaign(
    folder: str | os.PathLike,
    *,
    separator: str = ",",
    decimal_comma: bool = False,
    on_invalid: Literal["raise", "flag"] = "raise",
    validate: bool | Literal["auto"] = "auto",
    verify: bool = True,
) -> Campaign:
    """Read a campaign folder (CSV or Parquet per frame, plus an optional ``campaign.yaml``).

    Parameters
    ----------
    folder
        Holds ``batches``, ``observations`` and optionally ``events``, ``media``, ``quality``,
        ``specs`` as ``.parquet`` or ``.csv`` files.
    separator, decimal_comma
        How CSV files are written (``;`` and decimal commas are common in European exports).
    on_invalid
        What to do with a physically impossible observation (negative concentration, viability
        above 100 %): ``"raise"`` (default) lists them in the error; ``"flag"`` keeps each row,
        flagged ``invalid`` with the reason, and counts them in the campaign's flags.
    validate
        ``"auto"`` (default) checks every rule of the data model unless the folder is trusted
        (see Notes); ``True`` always checks; ``False`` checks column types only.
    verify
        Check the folder against what ``campaign.yaml`` records (default). ``False`` reads the
        files as they are, e.g. after a deliberate edit; they are then validated.

    Returns
    -------
    Campaign

    Raises
    ------
    DataReadError
        The folder or a required frame is missing, a file cannot be parsed, or ``campaign.yaml``
        is not a mapping of the known keys (its line and key named).
    IntegrityError
        A :class:`DataReadError`: the folder differs from what ``campaign.yaml`` records: a listed
        frame missing, a frame not listed, a row count or sha256 that differs (each frame named
        with what differs). Changed data is never re-read silently.
    SchemaError
        Any rule of the data model is broken; every problem names the file, line, column and batch.

    Notes
    -----
    **Which folders are trusted.** A hash recorded next to the data proves nothing to whoever
    can edit the folder: recompute it and the record agrees again. So a folder is read without
    re-validation only when (1) every frame has the row count and sha256 that ``campaign.yaml``
    records, (2) ``campaign.yaml`` says the campaign was validated, and (3) its signature, an
    HMAC-SHA256 of (1) and (2) with a secret key kept outside the folder (in this user's data
    folder, ``$XDG_DATA_HOME/bioworkbench/campaign.key``, created on the first
    :meth:`Campaign.write`; or the file named by ``$BIOWORKBENCH_KEY_FILE``), matches. The
    signature cannot be forged by editing the folder, as Jupyter's notebook signatures cannot.
    Every other folder (signed with another key, e.g. written by a colleague, edited and
    re-hashed, written before signatures, or written from a campaign built with
    ``validate=False``) is validated in full, and a folder that differs from its record is an
    :class:`IntegrityError`.

    **Why not validate always.** Measured on this 2-core machine while other jobs ran (times vary
    by up to 2x; best of 3): the 24-batch demo (384,000 observation rows) reads in 0.02 s trusted
    and 0.12 s validated, cheap either way; a simulated campaign of 1,000 batches × 14 days
    (16.2 M observation rows, ``benchmarks/bench_campaign.py``) reads in 1.1–1.9 s trusted (its
    target is < 2 s) but 9.5 s validated (unit and flag checks 5 s, the rules 4 s, of which the
    duplicate check over 16 M keys takes 3 s). Validation itself was made 3x faster for this (one
    vectorised pass per frame, rows listed only for broken rules), yet it stays several times the
    cost of reading. The signature keeps a campaign that was validated when it was written as fast
    to read back as Parquet allows, and the data a trusted read does not re-check is exactly the
    data that was checked when written.
    """
    from bioworkbench.io.tidy import read_frame_file

    folder = Path(folder)
    if not folder.is_dir():
        raise DataReadError(
            f"campaign folder {folder} does not exist (or is not a folder). "
            "A campaign folder holds "
            "batches, observations, events, media, quality and specs as .parquet or .csv files."
        )
    meta_path = folder / "campaign.yaml"
    meta: dict[str, Any] = _read_meta(meta_path) if meta_path.exists() else {}
    recorded: dict[str, Any] = dict(meta.get("frames") or {})
    present: dict[str, Path] = {}
    for fname in FRAME_NAMES:
        found = [p for p in (folder / f"{fname}.parquet", folder / f"{fname}.csv") if p.exists()]
        if len(found) > 1:
            raise DataReadError(f"{folder}: both {found[0].name} and {found[1].name} exist; keep one.")
        if found:
            present[fname] = found[0]
    hint = (
        "the folder was changed after Campaign.write. Restore the file, or, if the change is meant, read "
        "the folder with read_campaign(folder, verify=False) (the files are then validated) and write it again."
    )
    if verify and recorded:
        problems = []
        for fname, rec in recorded.items():
            path = present.get(fname)
            if path is None or path.name != rec["file"]:
                instead = "the file is missing" if path is None else f"the folder holds {path.name} instead"
                problems.append(
                    Issue(
                        f"campaign.yaml lists {fname} ({rec['file']}, {rec['rows']:,} rows) but {instead}.",
                        file=str(folder / rec["file"]),
                        hint=hint,
                    )
                )
        for fname, path in present.items():
            if fname not in recorded:
                problems.append(
                    Issue(
                        f"{path.name} is not listed in campaign.yaml (which lists {', '.join(recorded)}).",
                        file=str(path),
                        hint=hint,
                    )
                )
        if problems:
            raise IntegrityError(problems, context=str(folder))
    for fname in ("batches", "observations"):
        if fname not in present:
            raise DataReadError(
                f"{folder}: no {fname}.parquet or {fname}.csv. Found: "
                f"{', '.join(sorted(p.name for p in folder.iterdir())) or 'nothing'}."
            )
    frames: dict[str, pl.DataFrame] = {}
    files: dict[str, tuple[str, int | None]] = {}
    problems = []
    for fname, path in present.items():
        digest = sha256_file(path) if verify and recorded else None
        frame, first_line = read_frame_file(path, fname, separator=separator, decimal_comma=decimal_comma)
        frames[fname] = frame
        files[fname] = (str(path), first_line)
        if digest is None:
            continue
        rec = recorded[fname]
        differs = []
        if frame.height != rec["rows"]:
            differs.append(f"it has {frame.height:,} rows where campaign.yaml records {rec['rows']:,}")
        if digest != rec["sha256"]:
            differs.append(f"its sha256 is {digest[:12]}… where campaign.yaml records {rec['sha256'][:12]}…")
        if differs:
            problems.append(Issue(f"{fname} changed: {' and '.join(differs)}.", file=str(path), hint=hint))
    if problems:
        raise IntegrityError(problems, context=str(folder))
    trusted = validate == "auto" and verify and bool(recorded) and _signed(meta)
    issues: list[Issue] = []
    if not trusted:
        from bioworkbench.io.tidy import prepare_observations

        frames, issues = prepare_observations(frames, files, on_invalid=on_invalid)
    if issues:
        raise SchemaError(issues, context=str(folder))
    do_validate = validate is True or (validate == "auto" and not trusted)
    campaign = Campaign(
        **frames,
        name=meta.get("name") or folder.name,
        description=meta.get("description") or "",
        sources=meta.get("sources") or {},
        validate=do_validate,
        _files=files,
    )
    campaign._validated = do_validate or trusted
    return campaign


# ---------------------------------------------------------------------------------------------
# what the constructor forgives
# ---------------------------------------------------------------------------------------------
def _forgive(
    frames: dict[str, pl.DataFrame], files: Mapping[str, tuple[str, int]]
) -> tuple[dict[str, pl.DataFrame], list[Issue], list[str]]:
    """Match categories case-insensitively, convert known units, flag fractions; say what was done."""
    from bioworkbench.io.tidy import flag_fractions
    from bioworkbench.units import conversions, to_canonical

    frames = dict(frames)
    issues: list[Issue] = []
    notes: list[str] = []
    names = list(registry())
    for (fname, column), valid in _CATEGORIES.items():
        frames[fname], note = _match_case(frames[fname], fname, column, names if valid is None else valid)
        if note:
            notes.append(note)
    for fname, value_col in (("observations", "value"), ("media", "concentration")):
        df = frames[fname]
        if df.is_empty():
            continue
        groups = df.group_by("variable", "unit").len()
        if all(v not in names or u == registry()[v].unit for v, u, _ in groups.iter_rows()):
            continue  # all canonical (or unknown variables, which validation reports)
        todo = conversions(df)
        file, first_line = files.get(fname, (None, None))
        line_col = None
        if first_line is not None:
            df = df.with_columns(_line=pl.int_range(pl.len(), dtype=pl.Int64) + first_line)
            line_col = "_line"
        converted, found = to_canonical(
            df, value_col=value_col, file=file, line_col=line_col, keep_raw=file is None and not todo.is_empty()
        )
        frames[fname] = converted.drop("_line", strict=False)
        issues.extend(found)
        for r in todo.iter_rows(named=True):
            factor = f"x{r['scale']:.6g}" + (f" {r['offset']:+.6g}" if r["offset"] else "")
            notes.append(
                f"{fname}: {r['rows']:,} {r['variable']} value{'s' if r['rows'] != 1 else ''} converted from "
                f"{r['unit']!r} to {r['canonical']!r} ({factor})"
                + ("" if file else f"; the originals are kept in raw_{value_col}/raw_unit")
            )
    obs = frames["observations"]
    if not issues and not obs.is_empty():
        before = obs["flag"].null_count()
        obs = flag_fractions(obs)
        n = before - obs["flag"].null_count()
        if n:
            notes.append(
                f"{n:,} percentage value{'s' if n != 1 else ''} that look{'s' if n == 1 else ''} like a fraction "
                "(e.g. viability 0.95 %) flagged 'suspect'; enter percentages as 0–100, or give the unit "
                "'fraction' to convert them"
            )
        frames["observations"] = obs
    return frames, issues, notes


def _match_case(df: pl.DataFrame, frame: str, column: str, valid) -> tuple[pl.DataFrame, str | None]:
    """Replace values of ``column`` that equal a valid value up to case and surrounding spaces."""
    if column not in df.columns or df.schema[column] != pl.String or df.is_empty():
        return df, None
    lookup = {str(v).lower(): v for v in valid}
    found = df[column].drop_nulls().unique().to_list()
    fix = {v: lookup[v.strip().lower()] for v in found if v not in lookup.values() and v.strip().lower() in lookup}
    if not fix:
        return df, None
    n = df.select(pl.col(column).is_in(list(fix)).sum()).item()
    shown = ", ".join(f"{k!r} -> {v!r}" for k, v in list(fix.items())[:5]) + (" …" if len(fix) > 5 else "")
    return (
        df.with_columns(pl.col(column).replace(fix)),
        f"{frame}.{column}: {n:,} value{'s' if n != 1 else ''} matched case-insensitively ({shown})",
    )

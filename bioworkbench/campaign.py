"""The :class:`Campaign`: validated tidy frames of a set of batches, and campaign folders on disk.

A campaign folder holds one file per frame (``batches``, ``observations``, ``events``, ``media``,
``quality``, ``specs``; CSV or Parquet) plus ``campaign.yaml`` (name, description, schema version
and the sha256 of every source file). :meth:`Campaign.write` always writes Parquet;
:func:`read_campaign` reads either.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import polars as pl

from bioworkbench.errors import DataReadError, Issue, SchemaError
from bioworkbench.schema import (
    FRAMES,
    SCHEMA_VERSION,
    coerce_frame,
    empty_frame,
    suggest,
    validate_frame,
)

__all__ = ["FRAME_NAMES", "Campaign", "read_campaign", "sha256_file"]

FRAME_NAMES = tuple(FRAMES)

FrameLike = pl.DataFrame | pl.LazyFrame | Mapping[str, Any] | None


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

    Raises
    ------
    SchemaError
        Listing every problem found in all frames (the first 20 are shown).

    Notes
    -----
    Observations must be in canonical units (the readers convert); flagged rows are kept and
    never count as duplicates or impossible values. Analyses exclude flagged rows and say how
    many they excluded.
    """

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
        frames: dict[str, pl.DataFrame] = {}
        for fname, obj in given.items():
            file, first_line = files.get(fname, (None, None))
            frame, found = coerce_frame(fname, _as_frame(obj, fname), file=file, first_line=first_line)
            issues.extend(found)
            frames[fname] = frame
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
        """One row per batch: status, duration, sample and flag counts, peak VCD, final titer."""
        obs = self.observations
        good = obs.filter(pl.col("flag").is_null())
        per = obs.group_by("batch_id").agg(
            n_offline=(pl.col("source") != "online").sum(),
            n_online=(pl.col("source") == "online").sum(),
            n_flagged=pl.col("flag").is_not_null().sum(),
            last_h=pl.col("time_h").max(),
        )
        peak = (
            good.filter(pl.col("variable") == "vcd")
            .sort("value", descending=True)
            .group_by("batch_id")
            .agg(peak_vcd=pl.col("value").first(), peak_vcd_day=pl.col("time_h").first() / 24)
        )
        titer = (
            good.filter(pl.col("variable") == "titer")
            .sort("time_h")
            .group_by("batch_id")
            .agg(final_titer=pl.col("value").last())
        )
        cols = [c for c in ("batch_id", "status", "process", "scale_l") if c in self.batches.columns]
        return (
            self.batches.select(cols)
            .join(per, on="batch_id", how="left")
            .join(peak, on="batch_id", how="left")
            .join(titer, on="batch_id", how="left")
            .with_columns(
                duration_d=pl.col("last_h") / 24,
                n_offline=pl.col("n_offline").fill_null(0),
                n_online=pl.col("n_online").fill_null(0),
                n_flagged=pl.col("n_flagged").fill_null(0),
            )
            .drop("last_h")
        )

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

        The folder is written next to its destination and moved into place when complete, so a
        reader never sees half a campaign.

        Raises
        ------
        FileExistsError
            If ``folder`` exists and is not empty, unless ``overwrite``.
        """
        import yaml

        from bioworkbench import __version__

        folder = Path(folder)
        if folder.exists() and any(folder.iterdir()) and not overwrite:
            raise FileExistsError(f"{folder} exists and is not empty; pass overwrite=True to replace it.")
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
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
            (tmp / "campaign.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
            if folder.exists():
                shutil.rmtree(folder)
            tmp.rename(folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return folder


def sha256_file(path: str | os.PathLike, *, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_campaign(
    folder: str | os.PathLike,
    *,
    separator: str = ",",
    decimal_comma: bool = False,
    on_invalid: Literal["raise", "flag"] = "raise",
    validate: bool | Literal["auto"] = "auto",
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
        ``"auto"`` (default) re-checks content rules unless every frame file is unchanged since
        :meth:`Campaign.write` wrote it (its sha256 matches ``campaign.yaml``); ``True`` always
        checks; ``False`` checks column types only.

    Raises
    ------
    DataReadError
        The folder or a required frame is missing, or a file cannot be parsed.
    SchemaError
        Any rule of the data model is broken; every problem names the file, line, column and batch.
    """
    import yaml

    from bioworkbench.io.tidy import read_frame_file

    folder = Path(folder)
    if not folder.is_dir():
        raise DataReadError(
            f"campaign folder {folder} does not exist (or is not a folder). "
            "A campaign folder holds "
            "batches, observations, events, media, quality and specs as .parquet or .csv files."
        )
    meta: dict[str, Any] = {}
    meta_path = folder / "campaign.yaml"
    if meta_path.exists():
        try:
            meta = yaml.safe_load(meta_path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise DataReadError(f"{meta_path}: not valid YAML ({exc}).") from None
        version = meta.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise DataReadError(
                f"{meta_path}: schema_version {version} is not supported; this bioworkbench "
                f"reads schema_version {SCHEMA_VERSION}."
            )
    frames: dict[str, pl.DataFrame] = {}
    files: dict[str, tuple[str, int | None]] = {}
    trusted = validate == "auto" and bool(meta.get("frames"))
    for fname in FRAME_NAMES:
        candidates = [folder / f"{fname}.parquet", folder / f"{fname}.csv"]
        present = [p for p in candidates if p.exists()]
        if len(present) > 1:
            raise DataReadError(f"{folder}: both {present[0].name} and {present[1].name} exist; keep one.")
        if not present:
            if fname in ("batches", "observations"):
                raise DataReadError(
                    f"{folder}: no {fname}.parquet or {fname}.csv. Found: "
                    f"{', '.join(sorted(p.name for p in folder.iterdir())) or 'nothing'}."
                )
            continue
        path = present[0]
        recorded = (meta.get("frames") or {}).get(fname, {})
        if trusted and not (recorded.get("file") == path.name and recorded.get("sha256") == sha256_file(path)):
            trusted = False
        frame, first_line = read_frame_file(path, fname, separator=separator, decimal_comma=decimal_comma)
        frames[fname] = frame
        files[fname] = (str(path), first_line)
    issues: list[Issue] = []
    if not trusted:
        from bioworkbench.io.tidy import prepare_observations

        frames, issues = prepare_observations(frames, files, on_invalid=on_invalid)
    if issues:
        raise SchemaError(issues, context=str(folder))
    do_validate = True if validate in ("auto", True) and not trusted else bool(validate is True)
    return Campaign(
        **frames,
        name=meta.get("name", folder.name),
        description=meta.get("description", ""),
        sources=meta.get("sources") or {},
        validate=do_validate,
        _files=files,
    )

"""The :class:`Campaign`: validated tidy frames of a set of batches, their lineage, and views of them.

A campaign holds six frames (``batches``, ``observations``, ``events``, ``media``, ``quality``,
``specs``; :data:`bioworkbench.schema.FRAMES`), checked against the data model when it is built.
Analyses read observations through :meth:`Campaign.offline`, :meth:`Campaign.online` and
:meth:`Campaign.measurements` (flagged rows left out unless asked), and subsets of batches through
:meth:`Campaign.filter_batches` and :meth:`Campaign.as_of`.

On disk a campaign is a folder (:meth:`Campaign.write`, :mod:`bioworkbench.store`), read back
with :func:`bioworkbench.read_campaign` (:mod:`bioworkbench.io.folder`).

Layer: builds on :mod:`bioworkbench.schema`, :mod:`bioworkbench.variables` and
:mod:`bioworkbench.store`; the readers (:mod:`bioworkbench.io`) build on it. ``read_campaign``
and ``sha256_file`` are still reachable from this module for code written before they moved.
"""

from __future__ import annotations

import importlib
import math
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from bioworkbench.checks import describe_type
from bioworkbench.errors import ArgumentError, BioWorkbenchWarning, Issue, SchemaError, suggest
from bioworkbench.schema import (
    EVENT_KINDS,
    SOURCES,
    SPEC_KINDS,
    STATUSES,
    coerce_frame,
    empty_frame,
    flag_fractions,
    validate_frame,
)
from bioworkbench.store import FRAME_NAMES, sha256_file, write_folder
from bioworkbench.variables import conversions, registry, to_canonical

__all__ = ["FRAME_NAMES", "Campaign", "sha256_file"]

#: names that moved to :mod:`bioworkbench.io.folder` (compatibility only, resolved lazily: the
#: readers import this module, so this module cannot import them)
_MOVED = {"read_campaign": "bioworkbench.io.folder"}


def __getattr__(name: str) -> Any:
    """``bioworkbench.campaign.read_campaign``: moved to :mod:`bioworkbench.io.folder` (compatibility)."""
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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

#: observations that carry no flag
_UNFLAGGED = pl.col("flag").is_null()


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
    raise ArgumentError(f"Campaign: {name} must be a polars DataFrame (or None); got {describe_type(obj)}.")


def _names(value: str | Iterable[str] | None, *, argument: str) -> list[str] | None:
    """``None``, or a list of names from one name or an iterable of names."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, pl.Series):
        return value.to_list()
    if not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise ArgumentError(f"{argument} must be a name or a list of names; got {describe_type(value)}.")
    names = list(value)
    if not all(isinstance(v, str) for v in names):
        raise ArgumentError(f"{argument} must be a name or a list of names; got {names!r}.")
    return names


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
        Only a validated campaign is written as a trusted folder (see
        :func:`bioworkbench.read_campaign`).

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
      (:func:`bioworkbench.variables.to_canonical`), and the original value and unit of every
      converted row are kept in ``raw_value``/``raw_unit`` (``raw_concentration``/``raw_unit`` in
      media); a unit that cannot be converted is an error;
    - a percentage that looks like a fraction (viability 0.95 %) is kept and flagged ``suspect``
      with the reason (see :func:`bioworkbench.schema.flag_fractions`).

    Observations are then in canonical units; flagged rows are kept and never count as duplicates
    or impossible values. Analyses take their observations from :meth:`offline`, :meth:`online`
    or :meth:`measurements`, which leave flagged rows out unless asked, and say how many they
    excluded (:meth:`flagged`).
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
        """One row per batch: ``batch_id``, product, cell line, scale, process, status, start,
        initial volume and any ``cpp_*`` set points."""
        return self._frames["batches"]

    @property
    def observations(self) -> pl.DataFrame:
        """Every observation, flagged ones included, in canonical units with its lineage (all rows;
        analyses use :meth:`offline`, :meth:`online` or :meth:`measurements`)."""
        return self._frames["observations"]

    @property
    def events(self) -> pl.DataFrame:
        """Inoculation, samples, feeds, boluses, base additions, shifts, harvest and notes."""
        return self._frames["events"]

    @property
    def media(self) -> pl.DataFrame:
        """The composition of every medium added, one row per (medium, variable)."""
        return self._frames["media"]

    @property
    def quality(self) -> pl.DataFrame:
        """Quality attributes measured per batch (harvest CQAs)."""
        return self._frames["quality"]

    @property
    def specs(self) -> pl.DataFrame:
        """Specifications, alarm limits and PARs, one row per (name, kind)."""
        return self._frames["specs"]

    def frames(self) -> dict[str, pl.DataFrame]:
        """All six frames.

        Returns
        -------
        dict[str, polars.DataFrame]
            Frame name -> frame (a new dict; the frames themselves are not copied).
        """
        return dict(self._frames)

    @property
    def batch_ids(self) -> list[str]:
        """The batch ids, in the order of ``batches``."""
        return self.batches["batch_id"].to_list()

    @property
    def cpps(self) -> list[str]:
        """Names of the CPP set-point columns (``cpp_*``) of ``batches``."""
        return [c for c in self.batches.columns if c.startswith("cpp_")]

    @property
    def products(self) -> list[str]:
        """The products named in ``batches.product``, sorted (``[]`` when none is)."""
        if "product" not in self.batches.columns:
            return []
        return self.batches["product"].drop_nulls().unique().sort().to_list()

    def __len__(self) -> int:
        return self.batches.height

    def __repr__(self) -> str:
        obs = self.observations
        n_flag = self.flagged().height
        return (
            f"<Campaign {self.name!r}: {self.batches.height} batches, {obs.height:,} observations "
            f"({n_flag:,} flagged), {self.events.height:,} events, {self.quality.height} quality "
            f"results, {self.specs.height} specs>"
        )

    # -- observations as analyses use them -----------------------------------------------
    def measurements(
        self,
        *,
        online: bool | None = None,
        include_flagged: bool = False,
        variables: str | Iterable[str] | None = None,
        batch_ids: str | Iterable[str] | None = None,
    ) -> pl.DataFrame:
        """The observations an analysis uses: those with a value, flagged rows left out.

        Parameters
        ----------
        online
            ``True``: online records only (source ``online``); ``False``: sampled observations
            only (sources ``offline`` and ``atline``); ``None`` (default): both.
        include_flagged
            Keep flagged rows too (default: leave them out; :meth:`flagged` lists them).
        variables
            Only these variables (one name or several; default: all).
        batch_ids
            Only these batches (default: all).

        Returns
        -------
        polars.DataFrame
            Rows of :attr:`observations` with all their columns, in their order.

        Raises
        ------
        SchemaError
            A batch id that is not in the campaign (the closest one is suggested) or a variable
            that is not registered.
        ArgumentError
            ``variables`` or ``batch_ids`` is not a name or a list of names.

        See Also
        --------
        offline, online : the two usual cases.
        """
        keep = pl.col("value").is_not_null() & self._where(online=online, variables=variables, batch_ids=batch_ids)
        if not include_flagged:
            keep = keep & _UNFLAGGED
        return self.observations.filter(keep)

    def offline(
        self,
        *,
        include_flagged: bool = False,
        variables: str | Iterable[str] | None = None,
        batch_ids: str | Iterable[str] | None = None,
    ) -> pl.DataFrame:
        """Sampled observations with a value (sources ``offline`` and ``atline``), flagged rows left out.

        ``campaign.offline(variables="vcd")`` is ``campaign.measurements(online=False, variables="vcd")``;
        parameters, result and errors as for :meth:`measurements`.

        Parameters
        ----------
        include_flagged, variables, batch_ids
            As for :meth:`measurements`.

        Returns
        -------
        polars.DataFrame
        """
        return self.measurements(
            online=False, include_flagged=include_flagged, variables=variables, batch_ids=batch_ids
        )

    def online(
        self,
        *,
        include_flagged: bool = False,
        variables: str | Iterable[str] | None = None,
        batch_ids: str | Iterable[str] | None = None,
    ) -> pl.DataFrame:
        """Online records with a value (source ``online``), flagged rows left out.

        ``campaign.online(variables="ph")`` is ``campaign.measurements(online=True, variables="ph")``;
        parameters, result and errors as for :meth:`measurements`.

        Parameters
        ----------
        include_flagged, variables, batch_ids
            As for :meth:`measurements`.

        Returns
        -------
        polars.DataFrame
        """
        return self.measurements(online=True, include_flagged=include_flagged, variables=variables, batch_ids=batch_ids)

    def flagged(
        self,
        *,
        online: bool | None = None,
        variables: str | Iterable[str] | None = None,
        batch_ids: str | Iterable[str] | None = None,
    ) -> pl.DataFrame:
        """Observations carrying a flag, with why and where they came from.

        Parameters
        ----------
        online, variables, batch_ids
            Narrow the rows as for :meth:`measurements` (default: every flagged observation).

        Returns
        -------
        polars.DataFrame
            Rows of :attr:`observations` whose ``flag`` is set (their ``value`` may be null).
        """
        where = self._where(online=online, variables=variables, batch_ids=batch_ids)
        return self.observations.filter(~_UNFLAGGED & where)

    def _where(
        self,
        *,
        online: bool | None,
        variables: str | Iterable[str] | None,
        batch_ids: str | Iterable[str] | None,
    ) -> pl.Expr:
        """The row filter of :meth:`measurements` and :meth:`flagged` (checked names)."""
        keep = pl.lit(True)
        if online is not None:
            if not isinstance(online, bool):
                raise ArgumentError(f"online must be True, False or None; got {describe_type(online)}.")
            is_online = pl.col("source") == "online"
            keep = keep & (is_online if online else ~is_online)
        names = _names(variables, argument="variables")
        if names is not None:
            reg = registry()
            unknown = [v for v in names if v not in reg]
            if unknown:
                raise SchemaError(
                    [Issue(f"unknown variable {v!r}.", column="variable", hint=suggest(v, reg)) for v in unknown]
                )
            keep = keep & pl.col("variable").is_in(names)
        ids = self._known_ids(batch_ids, argument="batch_ids")
        if ids is not None:
            keep = keep & pl.col("batch_id").is_in(ids)
        return keep

    def _known_ids(self, batch_ids: str | Iterable[str] | None, *, argument: str) -> list[str] | None:
        """``batch_ids`` as a list, every id checked against the campaign's batches."""
        ids = _names(batch_ids, argument=argument)
        if ids is None:
            return None
        known = set(self.batch_ids)
        unknown = list(dict.fromkeys(b for b in ids if b not in known))
        if unknown:
            raise SchemaError(
                [
                    Issue(
                        f"batch {b!r} is not in campaign {self.name!r}.",
                        hint=suggest(b, self.batch_ids, what="Batches"),
                    )
                    for b in sorted(unknown)
                ]
            )
        return ids

    # -- subsets of batches -----------------------------------------------------------------
    def filter_batches(self, batch_ids: str | Iterable[str]) -> Campaign:
        """A campaign of only the given batches (media and specs are kept).

        Parameters
        ----------
        batch_ids
            One batch id or several.

        Returns
        -------
        Campaign
            A new campaign; the original is not changed. It keeps the validated mark: a subset of
            whole batches of a valid campaign breaks no rule.

        Raises
        ------
        SchemaError
            A batch id that is not in the campaign (each one named, the closest suggested).
        """
        ids = self._known_ids(batch_ids, argument="batch_ids")
        keep = pl.col("batch_id").is_in(ids)
        return self._derived({k: (v.filter(keep) if "batch_id" in v.columns else v) for k, v in self._frames.items()})

    def select(self, batch_ids: str | Iterable[str]) -> Campaign:
        """Deprecated name of :meth:`filter_batches` (polars users read ``select`` as columns).

        Parameters
        ----------
        batch_ids
            One batch id or several.

        Returns
        -------
        Campaign
            As :meth:`filter_batches`.

        Warns
        -----
        DeprecationWarning
            Always: call :meth:`filter_batches` instead.
        """
        warnings.warn(
            "Campaign.select(batch_ids) is deprecated; use Campaign.filter_batches(batch_ids).",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.filter_batches(batch_ids)

    def _derived(self, frames: dict[str, pl.DataFrame]) -> Campaign:
        """A campaign of ``frames`` with this one's name, description, lineage and validated mark.

        Only for frames derived from this campaign's without breaking a rule (whole rows removed,
        a valid status set), which therefore need no new validation.
        """
        new = object.__new__(Campaign)
        new._frames = frames
        new.name, new.description, new.sources = self.name, self.description, dict(self.sources)
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
        given = _names(batch_ids, argument="batch_ids")
        if isinstance(known_h, Mapping):
            cuts = dict(known_h)
            ids = list(cuts) if given is None else given
            missing = [b for b in ids if b not in cuts]
            if missing:
                raise SchemaError(f"known_h gives no time for batch(es) {', '.join(missing)}.")
        else:
            ids = self.batch_ids if given is None else given
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
        # whole rows removed and a valid status set: a valid campaign stays valid
        return self._derived(frames)

    # -- views for people -----------------------------------------------------------------
    def to_wide(
        self,
        *,
        source: str | None = "offline",
        batch_ids: Iterable[str] | None = None,
        include_flagged: bool = False,
    ) -> pl.DataFrame:
        """A wide view for people and plots: one row per (batch, time), one column per variable.

        Parameters
        ----------
        source
            Only observations of this source (``"offline"``, ``"online"``, ``"atline"``; ``None``:
            all).
        batch_ids
            Only these batches (default: all).
        include_flagged
            Keep flagged values (default: left out).

        Returns
        -------
        polars.DataFrame
            ``batch_id, time_h`` and one column per variable, in canonical units (see
            :func:`bioworkbench.variables.variables`), sorted by batch and time; the first value
            where a (batch, time, variable) has several.
        """
        keep = pl.lit(True)
        if source is not None:
            keep = keep & (pl.col("source") == source)
        if batch_ids is not None:
            keep = keep & pl.col("batch_id").is_in(list(batch_ids))
        if not include_flagged:
            keep = keep & _UNFLAGGED
        obs = self.observations.filter(keep)
        if obs.is_empty():
            return pl.DataFrame(schema={"batch_id": pl.String, "time_h": pl.Float64})
        return obs.pivot(on="variable", index=["batch_id", "time_h"], values="value", aggregate_function="first").sort(
            "batch_id", "time_h"
        )

    def summary(self) -> pl.DataFrame:
        """One row per batch: status, process, scale, sample and flag counts, peak biomass, final
        product, duration.

        Returns
        -------
        polars.DataFrame
            :func:`bioworkbench.outcomes.batch_summary` of this campaign.
        """
        from bioworkbench.outcomes import batch_summary

        return batch_summary(self)

    def describe(self) -> str:
        """A short plain-text summary (printed by ``bioworkbench summary``).

        Returns
        -------
        str
            Name, batches by status, CPPs, observations and variables, flags by kind, events,
            media, quality results, specs and the longest culture time, one line each.
        """
        b = self.batches
        obs = self.observations
        status = b.group_by("status").len().sort("status")
        st = ", ".join(f"{r['len']} {r['status']}" for r in status.iter_rows(named=True))
        variables = obs["variable"].unique().sort().to_list()
        flags = self.flagged().group_by("flag").len().sort("flag")
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
        campaign, a signature that lets :func:`bioworkbench.read_campaign` skip re-validating it
        (see :mod:`bioworkbench.store`). The folder is written next to its destination and moved
        into place when complete; an existing folder (``overwrite``) is moved aside first and
        deleted only once the new one is in place, so a failure at any step leaves the old
        campaign as it was.

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
        return write_folder(
            self._frames,
            folder,
            name=self.name,
            description=self.description,
            sources=self.sources,
            validated=self._validated,
            overwrite=overwrite,
        )


# ---------------------------------------------------------------------------------------------
# what the constructor forgives
# ---------------------------------------------------------------------------------------------
def _forgive(
    frames: dict[str, pl.DataFrame], files: Mapping[str, tuple[str, int]]
) -> tuple[dict[str, pl.DataFrame], list[Issue], list[str]]:
    """Match categories case-insensitively, convert known units, flag fractions; say what was done."""
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

"""The :class:`Campaign` class: six validated tidy frames of a set of batches and their lineage.

The constructor checks the frames against the data model (:mod:`bioworkbench.schema`), forgives
natural mistakes and says so (see :class:`Campaign`, Notes), and never changes a raw value
silently; :meth:`Campaign.write` writes a campaign folder through :mod:`bioworkbench.store`. The
views (observations analyses use, subsets, tables) come from
:class:`~bioworkbench.campaign.views.CampaignViews`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from bioworkbench.campaign.views import CampaignViews
from bioworkbench.checks import describe_type
from bioworkbench.errors import ArgumentError, BioWorkbenchWarning, Issue, SchemaError
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
from bioworkbench.store import write_folder
from bioworkbench.variables import conversions, registry, to_canonical

__all__ = ["Campaign", "FrameLike"]

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
    raise ArgumentError(f"Campaign: {name} must be a polars DataFrame (or None); got {describe_type(obj)}.")


class Campaign(CampaignViews):
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

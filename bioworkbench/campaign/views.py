"""What a :class:`~bioworkbench.Campaign` shows: the observations analyses use, subsets of batches
(:meth:`~CampaignViews.filter_batches`, :meth:`~CampaignViews.as_of`) and views for people.

:class:`CampaignViews` holds these methods; :class:`~bioworkbench.Campaign` inherits them. None of
them changes the campaign: subsets are new campaigns that keep its name, lineage and validated mark.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import polars as pl

from bioworkbench.campaign.summary import batch_summary
from bioworkbench.checks import describe_type
from bioworkbench.errors import ArgumentError, Issue, SchemaError, suggest
from bioworkbench.variables import registry

if TYPE_CHECKING:
    from bioworkbench.campaign.model import Campaign

__all__ = ["CampaignViews"]

#: observations that carry no flag
_UNFLAGGED = pl.col("flag").is_null()


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


class CampaignViews:
    """The views of a campaign's frames; mixed into :class:`~bioworkbench.Campaign`."""

    _frames: dict[str, pl.DataFrame]
    name: str
    description: str
    sources: dict[str, str]
    _validated: bool
    adjustments: tuple[str, ...]

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
        new = object.__new__(type(self))
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
            :func:`~bioworkbench.campaign.summary.batch_summary` of this campaign (also
            :func:`bioworkbench.outcomes.batch_summary`).
        """
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

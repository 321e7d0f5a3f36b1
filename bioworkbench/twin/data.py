"""A campaign's batches as the twin's arrays: solver events, observations (censored below the LOD), initial state.

Notes
-----
**Observed variables**: the offline readings of :data:`OBSERVED` (``vcd, viability, glucose,
glutamine, lactate, ammonium, titer``), each with a lognormal (multiplicative) error. A reading
flagged ``"<LOD"`` is left-censored at the limit of detection that its ``flag_reason`` states
(``"below the limit of detection (0.3 mmol/L)"``); a titer of 0 (not yet measurable) is left out
(counted in ``dropped``).

**Initial state**: the offline readings before :data:`INITIAL_WINDOW_H` (the inoculation sample)
give :math:`X_v`, :math:`X_d = \\mathrm{TCD} - X_v` (or :math:`X_v (100/\\mathrm{viability} - 1)`),
glucose, glutamine, lactate, ammonium and titer (0 when not measured); the volume is the batch's
``initial_volume_ml``; the culture age is 0; the hidden amino-acid pool starts at the parameter
``n0`` (the kernels put it in; its entry here is a placeholder). An analyte not measured at a
batch's inoculation takes the campaign's median inoculation reading (listed in
``BatchData.imputed``). These readings define ``y0`` and are not used again in the likelihood. A
substrate reading below its LOD enters as half the LOD.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from bioworkbench.errors import ConfigError, suggest
from bioworkbench.twin import _kernels as K
from bioworkbench.twin.feeds import FeedPlan
from bioworkbench.twin.solver import Observations, SolverEvents

__all__ = [
    "INITIAL_WINDOW_H",
    "OBSERVED",
    "BatchData",
    "batch_data",
    "gaps",
    "initial_state",
    "readiness",
    "require_ready",
]

#: the offline variables the twin's likelihood uses (all with a lognormal error)
OBSERVED: tuple[str, ...] = ("vcd", "viability", "glucose", "glutamine", "lactate", "ammonium", "titer")
#: readings before this time (h) are the initial state
INITIAL_WINDOW_H = 1.0
#: the inoculation readings the initial state needs
_NEEDED = ("vcd", "glucose", "glutamine", "lactate", "ammonium")
#: biomass variables of a microbial culture (the twin models mammalian cells: viable and dead densities)
_MICROBIAL = ("cdw", "od600", "wet_cell_weight")
_LOD_REASON = re.compile(r"limit of detection \((-?\d+(?:\.\d+)?(?:[eE]-?\d+)?)")


@dataclass(frozen=True)
class BatchData:
    """One batch as the twin sees it.

    Attributes
    ----------
    batch_id
        The batch.
    plan
        Its events as a :class:`~bioworkbench.twin.feeds.FeedPlan`.
    events
        The plan as the solver's arrays.
    observations
        Readings after the initial window (all of them; cut with :meth:`until`).
    y0
        Initial state (``_kernels.STATE_NAMES`` order, canonical units).
    end_h
        Time of the harvest (or of the last event or reading when there is none).
    dropped
        Readings left out (zero titers).
    imputed
        Initial readings missing for this batch and taken from the campaign's median at inoculation.
    """

    batch_id: str
    plan: FeedPlan
    events: SolverEvents
    observations: Observations
    y0: np.ndarray
    end_h: float
    dropped: int
    imputed: list[str]

    def until(self, known_h: float) -> Observations:
        """The observations at or before ``known_h``.

        Parameters
        ----------
        known_h
            Last time (h) whose readings are known.

        Returns
        -------
        Observations
        """
        o = self.observations
        keep = o.time_h <= known_h
        return Observations(*(np.ascontiguousarray(getattr(o, f)[keep]) for f in Observations.__slots__))


def initial_state(readings: dict[str, float], volume_ml: float, *, lod: dict[str, float], batch_id: str) -> np.ndarray:
    """The initial state from the inoculation readings.

    Parameters
    ----------
    readings
        Variable -> value of the readings in the initial window.
    volume_ml
        Initial working volume (mL).
    lod
        Variable -> LOD of the readings that were below it (they enter as half the LOD).
    batch_id
        For the error message.

    Returns
    -------
    numpy.ndarray
        Shape ``(NY,)``.

    Raises
    ------
    ConfigError
        A reading the state needs is missing (vcd, glucose, glutamine, lactate, ammonium).
    """
    missing = [v for v in _NEEDED if v not in readings]
    if missing:
        raise ConfigError(
            f"twin: batch {batch_id} has no offline reading of {', '.join(missing)} before "
            f"{INITIAL_WINDOW_H:g} h; the twin starts from the inoculation sample's readings "
            "(vcd, glucose, glutamine, lactate, ammonium)."
        )
    val = {k: (lod[k] / 2 if k in lod else v) for k, v in readings.items()}
    xv = val["vcd"]
    if "tcd" in val:
        xd = max(val["tcd"] - xv, 0.0)
    elif "viability" in val and val["viability"] > 0:
        xd = xv * (100.0 / val["viability"] - 1.0)
    else:
        xd = 0.0
    # the lumped amino acids' initial value is a parameter (the kernels replace this entry); age 0
    return np.array(
        [xv, xd, val["glucose"], val["glutamine"], val["lactate"], val["ammonium"], val.get("titer", 0.0), 0.0, 0.0,
         volume_ml],
        dtype=np.float64,
    )  # fmt: skip


def _lod_values(rows: pl.DataFrame, batch_id: str) -> np.ndarray:
    reasons = rows["flag_reason"].to_list()
    out = np.empty(len(reasons))
    bad = []
    for i, (r, t, v) in enumerate(zip(reasons, rows["time_h"].to_list(), rows["variable"].to_list(), strict=True)):
        m = _LOD_REASON.search(r or "")
        if m is None:
            bad.append(f"{v} at {t:g} h (reason {r!r})")
            out[i] = np.nan
        else:
            out[i] = float(m.group(1))
    if bad:
        raise ConfigError(
            f"twin: batch {batch_id}: {len(bad)} reading(s) flagged '<LOD' do not state the limit of detection: "
            + "; ".join(bad[:20])
            + ". Expected a flag_reason like 'below the limit of detection (0.1 mmol/L)'."
        )
    return out


def batch_data(
    campaign, batch_id: str, *, sigma: dict[str, float] | None = None, variables: Sequence[str] = OBSERVED
) -> BatchData:
    """The twin's arrays of one batch of a campaign.

    Parameters
    ----------
    campaign
        A :class:`~bioworkbench.campaign.Campaign` (frames ``batches, events, observations, media``).
    batch_id
        The batch.
    sigma
        SD of the log of each observed variable (placeholders; the fit estimates them). Default 0.1.
    variables
        The observed variables whose readings (after the initial window) are the data; a subset of
        :data:`OBSERVED`.

    Returns
    -------
    BatchData

    Raises
    ------
    ConfigError
        An unknown batch or variable, missing initial readings, or an LOD that is not stated.
    """
    bad = [v for v in variables if v not in OBSERVED]
    if bad or not variables:
        raise ConfigError(
            f"twin: variables {bad or list(variables)} cannot be observed; choose from {', '.join(OBSERVED)}."
        )
    ids = campaign.batches["batch_id"].to_list()
    if batch_id not in ids:
        raise ConfigError(f"twin: no batch {batch_id!r} in the campaign. " + suggest(batch_id, ids, what="Batches"))
    sigma = sigma or {}
    ev = campaign.events.filter(pl.col("batch_id") == batch_id)
    plan = FeedPlan.from_events(ev, batch_id=batch_id) if ev.height else FeedPlan(ev, batch_id=batch_id)
    obs = campaign.observations.filter(
        (pl.col("batch_id") == batch_id) & (pl.col("source") == "offline") & pl.col("variable").is_in(OBSERVED)
    ).drop_nulls("value")
    censored = (pl.col("flag") == "<LOD").fill_null(False)
    obs = obs.with_columns(censored.alias("_censored")).sort("time_h", "variable")
    start = obs.filter(pl.col("time_h") < INITIAL_WINDOW_H)
    lod_start = start.filter(pl.col("_censored"))
    lod = dict(zip(lod_start["variable"].to_list(), _lod_values(lod_start, batch_id).tolist(), strict=True))
    row = campaign.batches.filter(pl.col("batch_id") == batch_id)
    volume0 = row["initial_volume_ml"][0] if "initial_volume_ml" in row.columns else None
    if volume0 is None:
        raise ConfigError(f"twin: batch {batch_id} has no initial_volume_ml in the batches frame.")
    readings = {v: val for v, val in start.group_by("variable").agg(pl.col("value").mean()).rows()}
    imputed = [v for v in _NEEDED if v not in readings]
    if imputed:  # an analyte missed at inoculation: the campaign's median inoculation reading (same medium)
        every = campaign.observations.filter(
            (pl.col("source") == "offline")
            & pl.col("variable").is_in(imputed)
            & (pl.col("time_h") < INITIAL_WINDOW_H)
            & (pl.col("flag") != "<LOD").fill_null(True)
        )
        readings |= {v: val for v, val in every.group_by("variable").agg(pl.col("value").median()).rows()}
    y0 = initial_state(readings, float(volume0), lod=lod, batch_id=batch_id)

    later = obs.filter((pl.col("time_h") >= INITIAL_WINDOW_H) & pl.col("variable").is_in(list(variables)))
    zero_titer = (pl.col("variable") == "titer") & (pl.col("value") <= 0)
    dropped = later.filter(zero_titer).height
    later = later.filter(~zero_titer)
    cens = later["_censored"].to_numpy()
    value = later["value"].to_numpy().astype(np.float64).copy()
    if cens.any():
        value[cens] = _lod_values(later.filter(pl.col("_censored")), batch_id)
    observations = Observations.from_arrays(
        later["time_h"].to_numpy(),
        later["variable"].to_numpy(),
        value,
        later["variable"].replace_strict(sigma, default=0.1, return_dtype=pl.Float64).to_numpy(),
        censored=cens,
    )
    harvest = ev.filter(pl.col("event") == "harvest")["time_h"]
    if harvest.len():
        end_h = float(harvest.min())
    else:
        times = [x for x in (ev["time_h"].max(), obs["time_h"].max()) if x is not None]
        end_h = float(max(times)) if times else 0.0
    imputed = [v for v in imputed if v in readings]
    return BatchData(batch_id, plan, plan.to_solver(campaign.media), observations, y0, end_h, dropped, imputed)


def observable_index(name: str) -> int:
    """The index of an observable in ``_kernels.OBSERVABLE_NAMES``.

    Parameters
    ----------
    name
        An observable name.

    Returns
    -------
    int
    """
    return K.OBSERVABLE_NAMES.index(name)


def readiness(campaign, *, batch_ids: Sequence[str] | None = None) -> pl.DataFrame:
    """What the twin needs of each batch, and whether the campaign records it.

    Parameters
    ----------
    campaign
        A :class:`~bioworkbench.campaign.Campaign`.
    batch_ids
        The batches to check (default: every batch).

    Returns
    -------
    polars.DataFrame
        ``batch_id, requirement, ok, detail``; one row per batch and requirement:

        * ``viable cell density`` — offline VCD readings (the twin models mammalian cells as viable
          and dead densities; a culture whose biomass is dry weight or OD600 is not one);
        * ``inoculation readings`` — VCD before :data:`INITIAL_WINDOW_H` h, and glucose, glutamine,
          lactate and ammonium then (or, for a batch that missed one, any batch's at inoculation);
        * ``initial volume`` — ``initial_volume_ml`` in the batches frame (the mass balances of feeds
          and samples need the working volume);
        * ``feed records`` — a fed-batch process has feeds in the events frame, with media whose
          concentrations the media frame gives;
        * ``substrate readings`` — glucose or glutamine readings after inoculation (to calibrate the
          substrate balances).
    """
    ids = campaign.batches["batch_id"].to_list() if batch_ids is None else list(batch_ids)
    offline = campaign.observations.filter(pl.col("source") == "offline").drop_nulls("value")
    start = offline.filter(pl.col("time_h") < INITIAL_WINDOW_H)
    at_start = set(start.filter((pl.col("flag") != "<LOD").fill_null(True))["variable"].to_list())
    process = (
        dict(campaign.batches.select("batch_id", "process").rows()) if "process" in campaign.batches.columns else {}
    )
    volume = (
        dict(campaign.batches.select("batch_id", "initial_volume_ml").rows())
        if "initial_volume_ml" in campaign.batches.columns
        else {}
    )
    rows = []
    for b in ids:
        mine = offline.filter(pl.col("batch_id") == b)
        have = set(mine["variable"].to_list())
        first = set(start.filter(pl.col("batch_id") == b)["variable"].to_list())
        later = set(mine.filter(pl.col("time_h") >= INITIAL_WINDOW_H)["variable"].to_list())
        microbial = sorted(have & set(_MICROBIAL))
        vcd = "vcd" in have
        why_vcd = (
            ""
            if vcd
            else "no offline VCD readings"
            + (
                f"; biomass is recorded as {', '.join(microbial)} (a microbial culture?): the twin models mammalian "
                "cells as viable and dead cell densities"
                if microbial
                else ""
            )
        )
        lacking = [v for v in _NEEDED if v != "vcd" and v not in first and v not in at_start]
        parts = [f"no VCD before {INITIAL_WINDOW_H:g} h"] if "vcd" not in first else []
        if lacking:
            parts.append(f"no {', '.join(lacking)} before {INITIAL_WINDOW_H:g} h in this batch or any other")
        why_start = "; ".join(parts) + " (the initial state)" if parts else ""
        v0 = volume.get(b)
        why_volume = (
            ""
            if v0 is not None and v0 > 0
            else (
                "initial_volume_ml is missing from the batches frame" if v0 is None else f"initial_volume_ml is {v0!r}"
            )
        )
        why_feed = _feed_problem(campaign, b, process.get(b))
        why_substrate = (
            ""
            if later & {"glucose", "glutamine"}
            else ("no glucose or glutamine readings after inoculation (the substrate balances cannot be calibrated)")
        )
        for requirement, why in (
            ("viable cell density", why_vcd),
            ("inoculation readings", why_start),
            ("initial volume", why_volume),
            ("feed records", why_feed),
            ("substrate readings", why_substrate),
        ):
            rows.append((b, requirement, not why, why or "recorded"))
    return pl.DataFrame(rows, schema=["batch_id", "requirement", "ok", "detail"], orient="row")


def _feed_problem(campaign, batch_id: str, process: str | None) -> str:
    ev = campaign.events.filter(pl.col("batch_id") == batch_id)
    fed = ev.filter(pl.col("event").is_in(["feed", "bolus"]) & (pl.col("volume_ml") > 0))
    if fed.height == 0:
        if process is not None and "fed" in process.lower():
            return f"a {process} process with no feed in the events frame (the twin would simulate it unfed)"
        return ""
    try:
        plan = FeedPlan.from_events(ev, batch_id=batch_id)
        plan.to_solver(campaign.media)
    except ConfigError as err:
        return str(err)
    return ""


def gaps(table: pl.DataFrame) -> pl.DataFrame:
    """The requirements of a :func:`readiness` table that some batch fails, one row each.

    Parameters
    ----------
    table
        From :func:`readiness`.

    Returns
    -------
    polars.DataFrame
        ``requirement, batches, batch_ids, detail``: the number of batches failing it, their ids (in
        the table's order) and the first one's reason; in the order of the requirements; empty when
        every requirement holds.
    """
    return (
        table.filter(~pl.col("ok"))
        .group_by("requirement", maintain_order=True)
        .agg(pl.len().alias("batches"), pl.col("batch_id").alias("batch_ids"), pl.col("detail").first())
    )


def require_ready(campaign, batch_ids: Sequence[str], *, who: str = "FedBatchTwin.fit") -> None:
    """Raise one error listing every requirement of :func:`readiness` that batches fail.

    Parameters
    ----------
    campaign
        The campaign.
    batch_ids
        The batches the twin is to use.
    who
        Named at the start of the message.

    Raises
    ------
    ConfigError
        A requirement fails for some batch: one line per requirement with the number of batches,
        the first of them and the reason.
    """
    failed = gaps(readiness(campaign, batch_ids=batch_ids))
    if failed.is_empty():
        return
    lines = []
    for requirement, n, ids, detail in failed.iter_rows():
        shown = ", ".join(ids[:5]) + (f" and {n - 5} more" if n > 5 else "")
        lines.append(f"{requirement}: {n} of {len(batch_ids)} batches ({shown}): {detail}")
    raise ConfigError(f"{who}: the campaign lacks what the twin needs. " + "; ".join(lines) + ".")

"""What the operator dashboard shows, computed without any web library: the running batches of a
campaign folder against the golden batch, their MSPC charts, open exceptions and harvest forecasts.

:func:`snapshot` reads nothing itself; :class:`FolderWatch` re-reads a campaign folder when its
files change, and :class:`ForecastService` computes forecasts in a separate process so that the
dashboard paints at once and says "forecast being computed" until they are ready.
:class:`~bioworkbench.interactive.store_watch.StoreWatch` does for a campaign store what
:class:`FolderWatch` does for a folder; the dashboard takes either.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from bioworkbench.campaign import Campaign
from bioworkbench.errors import BioWorkbenchError, BioWorkbenchWarning, DataReadError, SchemaError

__all__ = [
    "RUNNING",
    "BatchStatus",
    "FolderWatch",
    "ForecastService",
    "LiveSnapshot",
    "snapshot",
]

#: statuses of a batch that is still in the bioreactor
RUNNING = ("running",)
#: online variables compared with the golden batch, where the campaign measures them
ONLINE_VARIABLES = ("ph", "do", "temperature", "pco2")
#: offline variables shown on the cards and against the envelope, in this order, where measured
OFFLINE_VARIABLES = ("vcd", "viability", "glucose", "lactate", "ammonium", "titer")
#: the golden-batch grid, hours
GRID_H = 6.0
#: an excursion from the golden batch within this many hours of the latest point counts as "now"
RECENT_H = 12.0


@dataclass
class BatchStatus:
    """One running batch in plain words: where it is and how it compares with the golden batch.

    Attributes
    ----------
    batch_id
        The batch.
    day
        Culture day of its latest observation (``time_h / 24``).
    latest
        ``variable, description, unit, day, value`` of the latest unflagged offline value of each
        of :data:`OFFLINE_VARIABLES` it has.
    level
        ``"ok"``, ``"watch"`` or ``"alarm"``.
    status
        The level in words ("On track", "Watch", "Act now") and why.
    reasons
        The reasons of the level, one sentence each (empty when on track).
    open_exceptions
        Number of open exceptions.
    by_severity
        The open exceptions counted by severity (``{"major": 2}``).
    """

    batch_id: str
    day: float
    latest: pl.DataFrame
    level: str
    status: str
    reasons: list[str]
    open_exceptions: int
    by_severity: dict[str, int]


@dataclass
class LiveSnapshot:
    """The running batches of a campaign and what the dashboard draws of them.

    Attributes
    ----------
    campaign
        The campaign as read.
    running, completed
        Batch ids by status (running: :data:`RUNNING`).
    known_h
        Latest observation time (h) of each running batch.
    end_h
        Typical harvest time (h): the median duration of the completed batches.
    aligned, golden
        Online variables on a :data:`GRID_H` grid (:func:`bioworkbench.monitoring.align_by_time`)
        and their golden-batch envelope from the completed batches
        (:func:`bioworkbench.monitoring.golden_batch`, mean ± 3 SD).
    envelope
        The campaign envelope of the completed batches' offline values by culture day
        (:func:`bioworkbench.monitoring.envelope`, 90 % band).
    monitor
        On-line T² and SPE of the running batches (:meth:`BatchPCA.monitor`); empty when too few
        completed batches.
    exceptions
        Open exceptions of the running batches (:func:`bioworkbench.monitoring.exceptions`).
    batches
        One :class:`BatchStatus` per running batch.
    notes
        What could not be computed and why, in words.
    seconds
        Time taken to compute it.
    """

    campaign: Campaign
    running: list[str]
    completed: list[str]
    known_h: dict[str, float]
    end_h: float | None
    aligned: pl.DataFrame
    golden: pl.DataFrame
    envelope: pl.DataFrame
    monitor: pl.DataFrame
    exceptions: pl.DataFrame
    batches: dict[str, BatchStatus]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def snapshot(campaign: Campaign, *, running: list[str] | None = None) -> LiveSnapshot:
    """Compute what the dashboard shows of the running batches of ``campaign``.

    Parameters
    ----------
    campaign
        The campaign; batches with status ``running`` are the running ones.
    running
        Treat these batches as running instead.

    Returns
    -------
    LiveSnapshot

    Raises
    ------
    ArgumentError
        ``campaign`` is not a Campaign.
    SchemaError
        A batch of ``running`` is not in the campaign.

    Notes
    -----
    The golden batch is mean ± 3 SD of the completed batches at each 6-hour maturity of the
    online variables (Western-Electric-style run rules then flag points beyond it; Montgomery,
    *Introduction to Statistical Quality Control*, ch. 6). The MSPC model is a 2-component
    batch-wise unfolded PCA of the same aligned data (Nomikos & MacGregor 1995), used for on-line
    T² and SPE. A batch is *Act now* when a point within the last :data:`RECENT_H` hours is
    outside the golden batch or an exception is critical; *Watch* when it left the golden batch
    earlier, its latest T² or SPE is above the 99 % limit, or it has a major exception; *On
    track* otherwise.
    """
    from bioworkbench import monitoring
    from bioworkbench.checks import require_campaign

    t0 = time.monotonic()
    campaign = require_campaign(campaign, function="snapshot")
    b = campaign.batches
    if running is None:
        running = b.filter(pl.col("status").is_in(list(RUNNING)))["batch_id"].to_list()
    else:
        unknown = sorted(set(running) - set(campaign.batch_ids))
        if unknown:
            raise SchemaError(f"snapshot: batch(es) {', '.join(unknown)} are not in campaign {campaign.name!r}.")
    completed = b.filter(pl.col("status") == "completed")["batch_id"].to_list()
    obs = campaign.observations
    known_h = dict(
        obs.filter(pl.col("batch_id").is_in(running)).group_by("batch_id").agg(pl.col("time_h").max()).iter_rows()
    )
    durations = obs.filter(pl.col("batch_id").is_in(completed)).group_by("batch_id").agg(pl.col("time_h").max())
    end_h = float(durations["time_h"].median()) if durations.height else None
    notes: list[str] = []
    online = obs.filter(pl.col("source") == "online")["variable"].unique().to_list()
    variables = [v for v in ONLINE_VARIABLES if v in online]
    aligned = golden = monitor = pl.DataFrame()
    pca = None
    with warnings.catch_warnings():
        # the notes of alignment and screening are for a statistician's report, not the shop floor
        warnings.simplefilter("ignore", BioWorkbenchWarning)
        if variables and len(completed) >= 3:
            try:
                have = _batches_with(obs, variables, source="online")
                ids = [x for x in completed + running if x in have]
                aligned = monitoring.align_by_time(
                    campaign,
                    variables=variables,
                    grid_h=GRID_H,
                    source="online",
                    end_h=end_h,
                    batch_ids=ids,
                    warn=False,
                )
                ref = [x for x in completed if x in have]
                golden = monitoring.golden_batch(aligned, reference_batches=ref)
                pca = monitoring.BatchPCA(2).fit(aligned.filter(pl.col("batch_id").is_in(ref)))
                now = [x for x in running if x in have]
                if now:
                    monitor = pca.monitor(aligned.filter(pl.col("batch_id").is_in(now)))
            except BioWorkbenchError as exc:
                notes.append(f"No golden batch or MSPC chart: {exc}")
                pca = None
        else:
            notes.append(
                "No golden batch: it needs online data and at least 3 completed batches "
                f"(this campaign has {len(completed)} completed)."
            )
        envelope = (
            monitoring.envelope(obs.filter(pl.col("batch_id").is_in(completed)), prob=0.9)
            if len(completed) >= 3
            else pl.DataFrame()
        )
        exc = (
            monitoring.exceptions(
                campaign,
                batch_ids=running,
                golden=(aligned, golden) if golden.height else None,
                mspc=pca,
            )
            if running
            else pl.DataFrame()
        )
    statuses = {
        r: _status(campaign, r, known_h.get(r, 0.0), aligned=aligned, golden=golden, monitor=monitor, exceptions=exc)
        for r in running
    }
    return LiveSnapshot(
        campaign=campaign,
        running=running,
        completed=completed,
        known_h=known_h,
        end_h=end_h,
        aligned=aligned,
        golden=golden,
        envelope=envelope,
        monitor=monitor,
        exceptions=exc,
        batches=statuses,
        notes=notes,
        seconds=time.monotonic() - t0,
    )


def _batches_with(obs: pl.DataFrame, variables: list[str], *, source: str) -> set[str]:
    """Batches with ``source`` observations of every one of ``variables``."""
    have = (
        obs.filter((pl.col("source") == source) & pl.col("variable").is_in(variables))
        .group_by("batch_id")
        .agg(pl.col("variable").n_unique().alias("n"))
        .filter(pl.col("n") == len(variables))
    )
    return set(have["batch_id"].to_list())


def _status(
    campaign: Campaign,
    batch_id: str,
    known_h: float,
    *,
    aligned: pl.DataFrame,
    golden: pl.DataFrame,
    monitor: pl.DataFrame,
    exceptions: pl.DataFrame,
) -> BatchStatus:
    from bioworkbench import monitoring
    from bioworkbench.variables import registry

    reg = registry()
    latest = (
        campaign.observations.filter(
            (pl.col("batch_id") == batch_id)
            & (pl.col("source") == "offline")
            & pl.col("flag").is_null()
            & pl.col("variable").is_in(list(OFFLINE_VARIABLES))
        )
        .sort("time_h")
        .group_by("variable", maintain_order=True)
        .last()
        .select("variable", "unit", (pl.col("time_h") / 24).alias("day"), "value")
    )
    order = {v: i for i, v in enumerate(OFFLINE_VARIABLES)}
    latest = latest.with_columns(
        description=pl.col("variable").replace_strict(
            {v: reg[v].description if v in reg else v for v in latest["variable"].to_list()}, return_dtype=pl.String
        ),
        _order=pl.col("variable").replace_strict(order, return_dtype=pl.Int32),
    ).sort("_order")
    latest = latest.select("variable", "description", "unit", "day", "value")
    reasons_alarm: list[str] = []
    reasons_watch: list[str] = []
    if golden.height and aligned.height and batch_id in aligned["batch_id"].to_list():
        dev = monitoring.deviations(aligned, golden, batch_ids=[batch_id]).filter(pl.col("excess") != 0)
        if dev.height:
            now = dev.filter(pl.col("maturity") >= known_h - RECENT_H)
            names = ", ".join(_word(v) for v in now["variable"].unique(maintain_order=True).to_list())
            if now.height:
                reasons_alarm.append(f"{names} outside the golden batch now")
            else:
                earlier = ", ".join(_word(v) for v in dev["variable"].unique(maintain_order=True).to_list())
                reasons_watch.append(f"{earlier} left the golden batch earlier (back inside now)")
    if monitor.height:
        m = monitor.filter(pl.col("batch_id") == batch_id).sort("maturity")
        if m.height and (m["t2_flag"][-1] or m["spe_flag"][-1]):
            reasons_watch.append("the overall pattern is unusual (MSPC above its 99 % limit)")
    mine = exceptions.filter(pl.col("batch_id") == batch_id) if exceptions.height else exceptions
    counts = dict(mine.group_by("severity").len().iter_rows()) if mine.height else {}
    if counts.get("critical"):
        reasons_alarm.append(f"{counts['critical']} critical exception(s)")
    if counts.get("major"):
        reasons_watch.append(f"{counts['major']} major exception(s)")
    if reasons_alarm:
        level, words = "alarm", "Act now"
    elif reasons_watch:
        level, words = "watch", "Watch"
    else:
        level, words = "ok", "On track"
    reasons = reasons_alarm + reasons_watch
    status = words + (": " + "; ".join(reasons) if reasons else ": inside the golden batch")
    return BatchStatus(
        batch_id=batch_id,
        day=known_h / 24,
        latest=latest,
        level=level,
        status=status,
        reasons=reasons,
        open_exceptions=mine.height,
        by_severity={k: int(v) for k, v in counts.items()},
    )


def _word(variable: str) -> str:
    """A variable as an operator says it (``do`` -> ``DO``, ``ph`` -> ``pH``)."""
    return {"ph": "pH", "do": "DO", "pco2": "pCO2", "vcd": "VCD"}.get(variable, variable)


# ---------------------------------------------------------------------------------------------
# a campaign folder that changes
# ---------------------------------------------------------------------------------------------
class FolderWatch:
    """A campaign folder, re-read (and its :func:`snapshot` recomputed) only when its files change.

    Parameters
    ----------
    folder
        The campaign folder.

    Raises
    ------
    DataReadError
        The folder does not exist.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise DataReadError(
                f"campaign folder {self.folder} does not exist (or is not a folder); "
                "write one with `bioworkbench demo --out FOLDER`."
            )
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self.snapshot: LiveSnapshot | None = None
        self.error: str | None = None
        self.read_at: float | None = None

    @property
    def name(self) -> str:
        """The folder's name (the page title says it)."""
        return self.folder.name

    @property
    def label(self) -> str:
        """What is watched, in words: ``campaign folder data/demo``."""
        return f"campaign folder {self.folder}"

    def forecast(self, service: ForecastService) -> dict[str, Any] | None:
        """Ask ``service`` for the forecast of the running batches of the current snapshot.

        Parameters
        ----------
        service
            The forecast service; its worker process reads the folder again.

        Returns
        -------
        dict or None
            :meth:`ForecastService.get`'s result (``None`` while being computed, or before the
            first snapshot).
        """
        snap = self.snapshot
        return None if snap is None else service.get(self.folder, snap.known_h)

    def stamp(self) -> tuple:
        """Name, size and modification time of every file of the folder (what tells it changed).

        Returns
        -------
        tuple
            ``(name, size in bytes, modification time in ns)`` per file, sorted by name.
        """
        return tuple(
            sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in self.folder.iterdir() if p.is_file())
        )

    def refresh(self) -> bool:
        """Re-read the folder if it changed since the last read.

        Returns
        -------
        bool
            Whether a new snapshot (or a new error) was made.

        Notes
        -----
        A folder caught while being written (a file changed but not yet ``campaign.yaml``) reads
        as an integrity error; the previous snapshot is kept, the error is in :attr:`error`, and
        the next refresh tries again.
        """
        from bioworkbench.io import read_campaign

        with self._lock:
            stamp = self.stamp()
            if stamp == self._stamp:
                return False
            try:
                snap = snapshot(read_campaign(self.folder))
            except BioWorkbenchError as exc:
                self.error = f"{type(exc).__name__}: {exc}"
                return True
            self._stamp, self.snapshot, self.error, self.read_at = stamp, snap, None, time.time()
            return True


def _forecast_job(source: str | Campaign, running: list[str], known_h: dict[str, float], draws: int, seed: int) -> dict:
    """Run in a worker process: the harvest forecast of ``running`` as plain rows (picklable).

    ``source`` is a campaign folder (read here) or the campaign itself (sent pickled: a store is
    not opened from a second process, which a DuckDB file would refuse while another one writes).
    """
    from bioworkbench.io import read_campaign
    from bioworkbench.models.forecast import forecast

    campaign = source if isinstance(source, Campaign) else read_campaign(source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = forecast(
            campaign,
            running,
            known_h=known_h,
            draws=draws,
            tune=max(draws // 2, 200),
            chains=2,
            random_seed=seed,
        )
    return {
        "endpoints": f.endpoints.to_dicts(),
        "prob": f.prob,
        "spec_lower": f.spec_lower,
        "end_h": f.end_h,
        "sentences": {b: f.sentence(b) for b in f.batch_ids},
    }


class ForecastService:
    """Harvest forecasts of running batches, computed one at a time in a separate process.

    The dashboard asks with :meth:`get`; the first ask starts the computation and returns
    ``None`` ("being computed"); later asks return the result (or the reason it failed). A
    forecast is kept for the data it was asked for (the folder or store and how far each running
    batch is known): new data start a new one.

    Parameters
    ----------
    draws
        Posterior draws per chain (2 chains; tuning steps ``max(draws // 2, 200)``).
    random_seed
        Seed of the sampler.
    """

    def __init__(self, *, draws: int = 1000, random_seed: int = 0) -> None:
        self.draws, self.random_seed = int(draws), int(random_seed)
        self._pool: cf.ProcessPoolExecutor | None = None
        self._jobs: dict[tuple, cf.Future] = {}
        self._results: dict[tuple, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(
        self, folder: str | os.PathLike, known_h: dict[str, float], *, campaign: Campaign | None = None
    ) -> dict[str, Any] | None:
        """The forecast of the batches of ``known_h`` (known up to those hours), or ``None`` while computing.

        Parameters
        ----------
        folder
            The campaign folder (read again in the worker process), or, with ``campaign``, the
            name of where it came from (a store's URL).
        known_h
            ``{batch_id: hours}``: the running batches and their latest observation time.
        campaign
            The campaign itself, sent to the worker process instead of a folder to read (it is
            sent only when a new forecast starts).

        Returns
        -------
        dict or None
            ``{"endpoints": [...], "prob", "spec_lower", "end_h", "sentences"}``, or
            ``{"error": "..."}`` when the forecast could not be made.
        """
        if not known_h:
            return {"error": "no running batch"}
        where = str(folder) if campaign is not None else str(Path(folder).resolve())
        key = (where, tuple(sorted((b, round(h, 3)) for b, h in known_h.items())))
        with self._lock:
            job = self._jobs.get(key)
            if job is None:
                if self._pool is None:
                    self._pool = cf.ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
                job = self._pool.submit(
                    _forecast_job,
                    campaign if campaign is not None else where,
                    sorted(known_h),
                    dict(known_h),
                    self.draws,
                    self.random_seed,
                )
                self._jobs = {k: v for k, v in self._jobs.items() if not v.done()} | {key: job}
                self._results = {}
        if not job.done():
            return None
        with self._lock:
            if key not in self._results:  # one object per forecast: the dashboard redraws when it changes
                exc = job.exception()
                self._results[key] = {"error": f"{type(exc).__name__}: {exc}"} if exc is not None else job.result()
            return self._results[key]

    def close(self) -> None:
        """Stop the worker process (a forecast being computed is abandoned)."""
        with self._lock:
            pool, self._pool = self._pool, None
            self._jobs = {}
        if pool is not None:
            workers = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in workers:  # a forecast being sampled is not waited for
                proc.terminate()

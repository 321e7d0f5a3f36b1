"""Alignment of batches onto a common maturity axis: by an indicator variable, linearly per phase,
or by dynamic time warping against a reference batch.

Every function returns the tidy aligned frame of :mod:`bioworkbench.monitoring.grid`
(``batch_id, maturity, time_h, variable, value``): ``maturity`` is the common axis and ``time_h``
keeps the culture time each aligned value came from. Culture-time alignment itself is
:func:`bioworkbench.monitoring.align_by_time`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import polars as pl

from bioworkbench.checks import require_campaign, require_number
from bioworkbench.errors import ConfigError, Issue, SchemaError
from bioworkbench.monitoring.grid import _names
from bioworkbench.monitoring.observations import unflagged
from bioworkbench.schema import suggest

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = ["DTWAlignment", "Warping", "align_by_indicator", "align_by_phases", "align_dtw", "dtw"]


def _series(
    obs: pl.DataFrame, variables: Sequence[str], ids: Sequence[str]
) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """(batch, variable) -> (times, values), sorted, duplicates at one time averaged, flagged left out."""
    d = (
        obs.filter(pl.col("variable").is_in(list(variables)) & pl.col("batch_id").is_in(list(ids)) & unflagged())
        .filter(pl.col("value").is_not_null())
        .group_by("batch_id", "variable", "time_h")
        .agg(pl.col("value").mean())
        .sort("batch_id", "variable", "time_h")
    )
    out = {}
    for (b, v), part in d.group_by(["batch_id", "variable"], maintain_order=True):
        out[(b, v)] = (part["time_h"].to_numpy(), part["value"].to_numpy())
    return out


def _check_present(series, variables, ids, what: str = "") -> None:
    issues = [
        Issue(
            f"no {what}observations of {v!r} in batch {b}; every aligned batch needs every variable.", batch=b, column=v
        )
        for b in ids
        for v in variables
        if (b, v) not in series
    ]
    if issues:
        raise SchemaError(issues)


def _frame(rows: list[pl.DataFrame]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(
            schema={
                "batch_id": pl.String,
                "maturity": pl.Float64,
                "time_h": pl.Float64,
                "variable": pl.String,
                "value": pl.Float64,
            }
        )
    return pl.concat(rows).sort("batch_id", "maturity", "variable")


def _values_at(series, b: str, variables: Sequence[str], times: np.ndarray) -> list[pl.DataFrame]:
    out = []
    for v in variables:
        t, y = series[(b, v)]
        val = np.interp(times, t, y, left=np.nan, right=np.nan)
        out.append(pl.DataFrame({"variable": v, "value": val}))
    return out


def align_by_indicator(
    campaign: Campaign,
    *,
    indicator: str,
    variables: Sequence[str],
    n_points: int = 100,
    normalize: bool = True,
    source: str | None = None,
    indicator_frame: pl.DataFrame | None = None,
    batch_ids: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Align on a variable that increases monotonically with batch progress (cumulative feed, IVCD…).

    Parameters
    ----------
    campaign
        The campaign whose observations are aligned.
    indicator
        The indicator variable (an observation variable, or a column of ``indicator_frame``'s
        ``variable`` such as ``"ivcd"`` from :func:`bioworkbench.kinetics.compute`).
    variables
        Variables to align.
    n_points
        Points of the maturity grid (≥ 2).
    normalize
        Maturity = indicator / its final value of each batch (0–1, so batches that end at different
        levels share one axis); otherwise the raw indicator on ``[0, smallest final value]``.
    source
        Keep only observations of this source (default: all).
    indicator_frame
        A tidy frame holding the indicator (``batch_id, time_h, variable, value``), when it is not an
        observation.
    batch_ids
        Batches to align (default: all).

    Returns
    -------
    polars.DataFrame
        The aligned frame ``batch_id, maturity, time_h, variable, value`` (maturity dimensionless
        with ``normalize``, else in the indicator's unit; ``time_h`` the culture time, hours).

    Raises
    ------
    ArgumentError
        ``campaign`` is not a Campaign, ``variables`` given as one string, or ``n_points`` < 2.
    ConfigError
        No observations of the indicator (the closest names are suggested).
    SchemaError
        The indicator decreases within a batch (naming batch, times and values), or a batch lacks
        the indicator or a variable.

    Notes
    -----
    For each maturity ``m`` the culture time ``t(m)`` is found by linear interpolation of the
    indicator's inverse; every variable is then linearly interpolated at ``t(m)``.
    """
    fn = "align_by_indicator"
    campaign = require_campaign(campaign, function=fn)
    variables = _names(variables, function=fn, argument="variables")
    n_points = require_number(n_points, function=fn, argument="n_points", minimum=2, integer=True)
    if batch_ids is not None:
        batch_ids = _names(batch_ids, function=fn, argument="batch_ids")
    obs = campaign.observations if source is None else campaign.observations.filter(pl.col("source") == source)
    ids = list(batch_ids or campaign.batch_ids)
    ind_obs = (
        indicator_frame.filter(pl.col("variable") == indicator)
        if indicator_frame is not None
        else obs.filter(pl.col("variable") == indicator)
    )
    if ind_obs.is_empty():
        known = (indicator_frame if indicator_frame is not None else obs)["variable"].unique().to_list()
        raise ConfigError(f"no observations of the indicator {indicator!r}. " + suggest(indicator, known))
    if "flag" not in ind_obs.columns:
        ind_obs = ind_obs.with_columns(flag=pl.lit(None, dtype=pl.String))
    ind = _series(ind_obs, [indicator], ids)
    _check_present(ind, [indicator], ids, "indicator ")
    issues = []
    for b in ids:
        t, y = ind[(b, indicator)]
        drops = np.flatnonzero(np.diff(y) < 0)
        if drops.size:
            i = drops[0]
            issues.append(
                Issue(
                    f"the indicator {indicator!r} is not monotonic: {y[i]:g} at {t[i]:g} h, then {y[i + 1]:g} at "
                    f"{t[i + 1]:g} h ({drops.size} decrease(s)); alignment needs a non-decreasing indicator.",
                    batch=b,
                    column=indicator,
                )
            )
    if issues:
        raise SchemaError(issues)
    series = _series(obs, variables, ids)
    _check_present(series, variables, ids)
    finals = {b: ind[(b, indicator)][1][-1] for b in ids}
    top = 1.0 if normalize else min(finals.values())
    grid = np.linspace(0.0, top, n_points)
    rows = []
    for b in ids:
        t, y = ind[(b, indicator)]
        y_m = y / finals[b] if normalize else y
        # strictly increasing support for the inverse: keep the first time of each indicator value
        keep = np.concatenate([[True], np.diff(y_m) > 0])
        times = np.interp(grid, y_m[keep], t[keep], left=np.nan, right=np.nan)
        parts = _values_at(series, b, variables, times)
        for part in parts:
            rows.append(part.with_columns(batch_id=pl.lit(b), maturity=pl.Series(grid), time_h=pl.Series(times)))
    return _frame([r.select("batch_id", "maturity", "time_h", "variable", "value") for r in rows])


def align_by_phases(
    campaign: Campaign,
    *,
    phases: Sequence[str],
    variables: Sequence[str],
    points_per_phase: int = 50,
    source: str | None = None,
    batch_ids: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Align linearly within each phase between phase events (e.g. inoculation → shift → harvest).

    Parameters
    ----------
    campaign
        The campaign whose observations are aligned.
    phases
        Event kinds (or event notes) in order; each batch's boundary times are the first such event.
    variables
        Variables to align.
    points_per_phase
        Grid points per phase (≥ 1).
    source
        Keep only observations of this source (default: all).
    batch_ids
        Batches to align (default: all).

    Returns
    -------
    polars.DataFrame
        The aligned frame ``batch_id, maturity, time_h, variable, value``: phase ``k`` maps to maturity
        ``[k, k + 1)`` linearly in time (dimensionless), so every batch has ``points_per_phase`` points
        per phase whatever its phase lengths; ``time_h`` is the culture time, hours.

    Raises
    ------
    ArgumentError
        ``campaign`` is not a Campaign; ``phases``/``variables`` given as one string.
    ConfigError
        Fewer than two phase events.
    SchemaError
        A batch without one of the phase events, or with them out of order (naming batch and event).
    """
    fn = "align_by_phases"
    campaign = require_campaign(campaign, function=fn)
    phases = _names(phases, function=fn, argument="phases")
    variables = _names(variables, function=fn, argument="variables")
    points_per_phase = require_number(
        points_per_phase, function=fn, argument="points_per_phase", minimum=1, integer=True
    )
    if batch_ids is not None:
        batch_ids = _names(batch_ids, function=fn, argument="batch_ids")
    if len(phases) < 2:
        raise ConfigError("phases needs at least two events (a start and an end).")
    ids = list(batch_ids or campaign.batch_ids)
    ev = campaign.events.filter(pl.col("batch_id").is_in(ids))
    key = pl.when(pl.col("event").is_in(list(phases))).then(pl.col("event")).otherwise(pl.col("note"))
    marks = (
        ev.with_columns(_key=key)
        .filter(pl.col("_key").is_in(list(phases)))
        .group_by("batch_id", "_key")
        .agg(pl.col("time_h").min())
    )
    got = {(b, k): t for b, k, t in marks.iter_rows()}
    issues = []
    for b in ids:
        for p in phases:
            if (b, p) not in got:
                issues.append(
                    Issue(
                        f"batch {b} has no {p!r} event to mark a phase boundary.",
                        batch=b,
                        column="event",
                        hint=suggest(p, ev["event"].unique().to_list(), what="Events present"),
                    )
                )
        times = [got.get((b, p)) for p in phases]
        if None not in times and any(t1 <= t0 for t0, t1 in itertools.pairwise(times)):
            issues.append(
                Issue(
                    f"batch {b}: phase events {', '.join(phases)} are not in increasing time order ({times}).", batch=b
                )
            )
    if issues:
        raise SchemaError(issues)
    obs = campaign.observations if source is None else campaign.observations.filter(pl.col("source") == source)
    series = _series(obs, variables, ids)
    _check_present(series, variables, ids)
    frac = np.arange(points_per_phase) / points_per_phase
    rows = []
    for b in ids:
        bounds = [got[(b, p)] for p in phases]
        mat = np.concatenate([k + frac for k in range(len(phases) - 1)] + [[len(phases) - 1.0]])
        times = np.concatenate([t0 + frac * (t1 - t0) for t0, t1 in itertools.pairwise(bounds)] + [[bounds[-1]]])
        for part in _values_at(series, b, variables, times):
            rows.append(part.with_columns(batch_id=pl.lit(b), maturity=pl.Series(mat), time_h=pl.Series(times)))
    return _frame([r.select("batch_id", "maturity", "time_h", "variable", "value") for r in rows])


def _accumulate(cost: np.ndarray, band: int) -> np.ndarray:
    """Accumulated-cost matrix of DTW with a Sakoe–Chiba band (cells outside are infinite)."""
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        centre = int(round(i * m / n))  # noqa: RUF046 - numba needs an explicit int
        lo, hi = max(1, centre - band), min(m, centre + band)
        for j in range(lo, hi + 1):
            acc[i, j] = cost[i - 1, j - 1] + min(acc[i - 1, j], acc[i - 1, j - 1], acc[i, j - 1])
    return acc


_FAST: dict[str, object] = {}


def _accumulate_fast(cost: np.ndarray, band: int) -> np.ndarray:
    """:func:`_accumulate` compiled with numba on first use (numba ships with nutpie); plain Python
    otherwise. Imported lazily so that ``import bioworkbench.monitoring`` stays light."""
    if "f" not in _FAST:
        try:
            import numba

            _FAST["f"] = numba.njit(cache=True)(_accumulate)
        except Exception:  # pragma: no cover
            _FAST["f"] = _accumulate
    return _FAST["f"](cost, band)


def _traceback(acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    i, j = acc.shape[0] - 1, acc.shape[1] - 1
    path_i, path_j = [i - 1], [j - 1]
    while i > 1 or j > 1:
        diag, up, left = acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1]
        if diag <= up and diag <= left:
            i, j = i - 1, j - 1
        elif up <= left:
            i -= 1
        else:
            j -= 1
        path_i.append(i - 1)
        path_j.append(j - 1)
    return np.array(path_i[::-1]), np.array(path_j[::-1])


class Warping(NamedTuple):
    """The result of :func:`dtw`: the accumulated cost and the warping path (it unpacks as a tuple)."""

    distance: float
    """Accumulated squared Euclidean cost along the path."""
    reference_index: np.ndarray
    """Indices into the reference series, along the path."""
    query_index: np.ndarray
    """Indices into the query series, along the path."""


def dtw(reference: np.ndarray, query: np.ndarray, *, band: float = 0.1) -> Warping:
    """Dynamic time warping of ``query`` (m × p) onto ``reference`` (n × p).

    Parameters
    ----------
    reference
        The reference series, ``n`` points × ``p`` variables (or a 1-D series).
    query
        The series warped onto it, ``m × p`` (or 1-D).
    band
        Half-width of the Sakoe–Chiba band as a fraction of ``max(n, m)``, in ``[0, 1]``.

    Returns
    -------
    Warping
        ``distance`` (the accumulated cost) and the path ``reference_index``, ``query_index``.

    Raises
    ------
    ConfigError
        ``band`` outside ``[0, 1]``, or no warping path within the band.

    Notes
    -----
    Squared Euclidean local cost, steps (1,0), (0,1), (1,1) with equal weight, and a Sakoe–Chiba
    band of half-width ``max(1, ⌈band · max(n, m)⌉, |n − m|)`` around the diagonal (Sakoe & Chiba 1978).
    """
    if not 0 <= band <= 1:
        raise ConfigError(f"band must be between 0 and 1 (a fraction of the series length); got {band}.")
    ref, q = np.atleast_2d(np.asarray(reference, float)), np.atleast_2d(np.asarray(query, float))
    if ref.shape[0] == 1 and ref.shape[1] > 1 and reference.ndim == 1:
        ref, q = ref.T, q.T
    cost = ((ref[:, None, :] - q[None, :, :]) ** 2).sum(axis=2)
    w = max(1, int(np.ceil(band * max(cost.shape))), abs(cost.shape[0] - cost.shape[1]))
    acc = _accumulate_fast(cost, w)
    if not np.isfinite(acc[-1, -1]):
        raise ConfigError(f"no warping path within the band ({band}); widen it.")
    pi, pj = _traceback(acc)
    return Warping(float(acc[-1, -1]), pi, pj)


@dataclass
class DTWAlignment:
    """The result of :func:`align_dtw`: the aligned frame and each batch's warping distance.

    Attributes
    ----------
    aligned
        The aligned frame ``batch_id, maturity, time_h, variable, value``.
    distances
        ``batch_id, distance, path_length, robust_z, badly_aligned``, largest distance first.
    reference
        The reference batch.
    """

    aligned: pl.DataFrame
    distances: pl.DataFrame
    reference: str


def align_dtw(
    campaign: Campaign,
    *,
    reference: str,
    variables: Sequence[str],
    grid_h: float = 6.0,
    band: float = 0.1,
    source: str | None = None,
    batch_ids: Sequence[str] | None = None,
) -> DTWAlignment:
    """Align every batch onto a reference batch by multivariate dynamic time warping.

    Parameters
    ----------
    campaign
        The campaign whose observations are aligned.
    reference
        The reference batch.
    variables
        Variables to align and to warp on.
    grid_h
        Step of the culture-time grid each batch is first put on, hours.
    band
        Sakoe–Chiba band of :func:`dtw` (fraction of the series length).
    source
        Keep only observations of this source (default: all).
    batch_ids
        Batches to align (default: all).

    Returns
    -------
    DTWAlignment
        The aligned frame (maturity = the reference batch's culture time, hours) and ``distances``:
        ``batch_id, distance`` (accumulated cost / path length), ``path_length``, ``robust_z`` against
        the campaign and ``badly_aligned`` (robust z > 3), so badly aligned batches are visible.

    Raises
    ------
    ArgumentError
        ``campaign`` is not a Campaign, ``variables`` given as one string, or ``grid_h`` ≤ 0.
    ConfigError
        The reference is not among the batches; no warping path within the band.
    SchemaError
        A batch without observations of a variable.

    Notes
    -----
    Each batch is put on a ``grid_h`` culture-time grid (linear interpolation between its samples,
    within its own time range); variables are scaled by their campaign mean and standard deviation;
    :func:`dtw` finds the warping path. A reference point matched by several query points takes their
    mean (value and ``time_h``). ``robust_z = (d − median d) / (1.4826 · MAD)``.
    """
    fn = "align_dtw"
    campaign = require_campaign(campaign, function=fn)
    variables = _names(variables, function=fn, argument="variables")
    grid_h = require_number(grid_h, function=fn, argument="grid_h", minimum=0, min_inclusive=False, unit="hours")
    if batch_ids is not None:
        batch_ids = _names(batch_ids, function=fn, argument="batch_ids")
    ids = list(batch_ids or campaign.batch_ids)
    if reference not in ids:
        raise ConfigError(
            f"reference batch {reference!r} is not among the batches to align. "
            + suggest(reference, ids, what="Batches")
        )
    obs = campaign.observations if source is None else campaign.observations.filter(pl.col("source") == source)
    series = _series(obs, variables, ids)
    _check_present(series, variables, ids)
    allv = obs.filter(pl.col("variable").is_in(list(variables)) & unflagged())
    stats = {
        v: (allv.filter(pl.col("variable") == v)["value"].mean(), allv.filter(pl.col("variable") == v)["value"].std())
        for v in variables
    }

    def grid_of(b: str) -> tuple[np.ndarray, np.ndarray]:
        start = max(series[(b, v)][0][0] for v in variables)
        end = min(series[(b, v)][0][-1] for v in variables)
        t = np.arange(start, end + 1e-9, grid_h)
        x = np.column_stack([(np.interp(t, *series[(b, v)]) - stats[v][0]) / (stats[v][1] or 1.0) for v in variables])
        return t, x

    t_ref, x_ref = grid_of(reference)
    rows, dist = [], []
    for b in ids:
        t_q, x_q = grid_of(b)
        d, pi, pj = dtw(x_ref, x_q, band=band)
        dist.append({"batch_id": b, "distance": d / len(pi), "path_length": len(pi)})
        raw = np.column_stack([np.interp(t_q, *series[(b, v)]) for v in variables])
        sums = np.zeros((len(t_ref), len(variables)))
        tsum = np.zeros(len(t_ref))
        cnt = np.zeros(len(t_ref))
        np.add.at(sums, pi, raw[pj])
        np.add.at(tsum, pi, t_q[pj])
        np.add.at(cnt, pi, 1)
        vals = sums / cnt[:, None]
        for k, v in enumerate(variables):
            rows.append(
                pl.DataFrame(
                    {"batch_id": b, "maturity": t_ref, "time_h": tsum / cnt, "variable": v, "value": vals[:, k]}
                )
            )
    d = pl.DataFrame(dist)
    med = d["distance"].median()
    mad = (d["distance"] - med).abs().median()
    d = d.with_columns(robust_z=(pl.col("distance") - med) / (1.4826 * mad if mad else 1.0)).with_columns(
        badly_aligned=pl.col("robust_z") > 3
    )
    return DTWAlignment(aligned=_frame(rows), distances=d.sort("distance", descending=True), reference=reference)

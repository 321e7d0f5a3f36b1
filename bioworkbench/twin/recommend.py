"""The next feeds of a running batch chosen by the twin: the feed volume that best serves an objective, constrained.

:func:`recommend_feed` is what :meth:`FedBatchTwin.recommend_feed
<bioworkbench.twin.model.FedBatchTwin.recommend_feed>` calls.

Notes
-----
**Candidates.** The batch runs as recorded up to ``known_h``. From then on it is fed on the batch's
own rhythm (the times of its remaining feeds in the campaign; for a running batch with none recorded
yet, every 24 h after its last feed until the end, the median harvest time of the fitted batches)
with its main feed medium (the one with the most volume fed so far); everything else the batch's
events hold after ``known_h`` (the temperature shift, glucose boluses, base, samples, other media)
stays as planned. Every remaining main feed gets the same volume :math:`v`; the
candidates are ``n_candidates`` volumes evenly spaced over ``bounds`` (mL per feed), plus the batch's
last feed volume (continuing as is). By default ``bounds`` is the range of volumes per feed of that
medium in the calibration batches (``campaign_range_ml``): the volumes the twin has seen the process
answer to. Only when the calibration batches were all fed about the same (a range narrower than
:data:`MIN_RANGE_FRACTION` of its top) or never with this medium does the default widen to 0.5-2 times
the batch's last feed volume, and the recommendation is then flagged an extrapolation; a wider
search is asked for explicitly with ``bounds``. All candidates are simulated with the same posterior draws of
the batch (common random numbers, :func:`bioworkbench.twin.scenarios.forecast`), so that their
differences are not sampling noise.

**Constraints.** ``{variable: (lower, upper)}`` (``None`` for an open side) on a modelled variable
(``vcd, tcd, viability, glucose, glutamine, lactate, ammonium, titer, volume``), required at every
time from ``known_h`` to the end on the trajectory's grid (every 2 h, and every event and reading
time with the state before the event, so the trough before each feed is checked). For each candidate,
:math:`P(\\text{all}) = \\frac1S\\sum_s \\mathbb 1[\\text{every constraint holds along draw } s]`.

**Choice.** Among the candidates with :math:`P(\\text{all}) \\ge` ``prob``, the one with the largest
posterior mean of ``objective`` (an endpoint of :data:`~bioworkbench.twin.scenarios.ENDPOINTS`);
when none reaches ``prob``, the one with the largest :math:`P(\\text{all})`, and the sentence says
that no candidate met the constraints at that probability.

The probabilities are the twin's: they hold if the model's structure is right for the process and
the batch behaves like the campaign it was calibrated on (state estimation from ``known_h`` uses only
the batch's own readings).

**What the data support.** The volumes per feed of the medium that the calibration batches received
(``campaign_range_ml``) are the only evidence the twin has of how the process answers to feeding; a
batch fed at another rhythm (a continuous pump's hourly volumes) counts by its rate, as the volume
per feed at this batch's interval.
A recommended volume outside that range (beyond its ends by more than :data:`RANGE_TOLERANCE`) is
flagged ``extrapolation`` and the sentence says so with the range, and that the twin does not model
osmolality (which rises with feed); a choice at the end of the searched ``bounds`` is flagged
``at_bound`` (the objective might improve further out, but further from the data).

A grid over one volume is a deliberately simple search: it is exact about what it compares and
cannot return a plan the operator could not run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from bioworkbench.errors import ArgumentError, ConfigError, suggest
from bioworkbench.schema.frames import schema_of
from bioworkbench.twin import _kernels as K
from bioworkbench.twin.feeds import FeedPlan
from bioworkbench.twin.scenarios import ENDPOINTS, forecast

__all__ = ["FeedRecommendation", "recommend_feed"]

_CONSTRAINED = tuple(v for v in K.OBSERVABLE_NAMES)
_AS_IS = "as is"
#: a volume more than this fraction outside the calibration batches' range is an extrapolation
RANGE_TOLERANCE = 0.05
#: a calibration range narrower than this fraction of its top is no range to search (the default widens)
MIN_RANGE_FRACTION = 0.1


@dataclass(frozen=True)
class FeedRecommendation:
    """The twin's recommendation for a running batch's next feeds.

    Attributes
    ----------
    batch_id
        The batch.
    known_h
        Time (h) up to which the batch ran as recorded and its readings were used.
    volume_ml
        The recommended volume of each remaining feed (mL).
    medium
        The feed medium.
    feeds
        ``time_h, volume_ml, medium``: the recommended feeds.
    outcome
        The endpoints under the recommendation (``quantity, mean, lower, upper, prob, unit``).
    p_constraints
        Probability that every constraint holds from ``known_h`` to the end.
    feasible
        Whether ``p_constraints`` reaches ``prob``.
    candidates
        One row per candidate: ``scenario, volume_ml, objective_mean, objective_lower, objective_upper,
        p_constraints, feasible`` (the first row continues the last feed volume).
    plan
        The recommended plan from ``known_h`` on.
    sentence
        The recommendation in words, with its probability and caveats.
    method
        How the batch's parameters were obtained.
    campaign_range_ml
        ``(smallest, largest)`` volume per feed of ``medium`` in the calibration batches (mL); None
        when they were never fed with it.
    extrapolation
        Whether ``volume_ml`` lies outside ``campaign_range_ml`` (see the module's Notes).
    at_bound
        Whether ``volume_ml`` is the smallest or largest volume searched (and not the batch's own).
    """

    batch_id: str
    known_h: float
    volume_ml: float
    medium: str
    feeds: pl.DataFrame
    outcome: pl.DataFrame
    p_constraints: float
    feasible: bool
    candidates: pl.DataFrame
    plan: FeedPlan
    sentence: str
    method: str
    campaign_range_ml: tuple[float, float] | None
    extrapolation: bool
    at_bound: bool


def _feed_times(plan: FeedPlan, known_h: float, end_h: float) -> tuple[np.ndarray, float, str]:
    """The remaining times of the batch's main feed, its last volume before ``known_h`` and its medium.

    The main feed is the medium of ``feed`` events with the largest volume fed before ``known_h`` (a
    bolus of glucose or base is another event and is left as planned)."""
    feeds = plan.events.filter(pl.col("event") == "feed").drop_nulls("volume_ml")
    past = feeds.filter(pl.col("time_h") < known_h)
    if past.height == 0:
        raise ConfigError(
            f"recommend_feed: batch {plan.batch_id} has no feed before {known_h:g} h; the twin recommends the "
            "volume of a feed the batch already receives (its medium and rhythm). Pass a later known_h."
        )
    totals = past.group_by("medium", maintain_order=True).agg(pl.col("volume_ml").sum()).sort("volume_ml")
    medium = totals["medium"][-1]
    main = feeds.filter(pl.col("medium").eq_missing(medium))
    last_t, last_v = main.filter(pl.col("time_h") < known_h).select("time_h", "volume_ml").row(-1)
    future = main.filter((pl.col("time_h") >= known_h) & (pl.col("time_h") < end_h))["time_h"].to_numpy()
    if future.size == 0:
        step = np.arange(last_t + 24.0, end_h - 1.0, 24.0)
        future = step[step >= known_h]
    if future.size == 0:
        raise ConfigError(
            f"recommend_feed: batch {plan.batch_id} has no feed left between {known_h:g} h and its end ({end_h:g} h)."
        )
    return future.astype(np.float64), float(last_v), str(medium)


def _plan(base: FeedPlan, known_h: float, times: np.ndarray, volume: float, medium: str) -> FeedPlan:
    """The batch's own plan with its main feed from ``known_h`` on at ``times``, ``volume`` mL each.

    Everything else the plan holds after ``known_h`` stays: the temperature shift, glucose boluses,
    base, samples, other media and continuous feeds (a running batch cut at ``known_h`` has none)."""
    events = base.events
    replaced = (pl.col("event") == "feed") & pl.col("medium").eq_missing(medium) & (pl.col("time_h") >= known_h)
    kept = events.filter(~replaced)
    n = times.size if volume > 0 else 0
    new = pl.DataFrame(
        {
            "batch_id": [base.batch_id] * n,
            "time_h": times[:n].tolist(),
            "event": ["feed"] * n,
            "volume_ml": [float(volume)] * n,
            "medium": [medium] * n,
            "note": [None] * n,
        },
        schema=schema_of("events"),
    )
    merged = pl.concat([kept, new.select(kept.columns).cast(kept.schema)]).sort("time_h", maintain_order=True)
    return FeedPlan(merged, continuous_feeds=base.continuous_feeds, batch_id=base.batch_id)


#: feed intervals within this factor of the batch's own count as the same rhythm (jittered daily feeds)
SAME_RHYTHM = 1.25


def _feed_interval(times: np.ndarray) -> float | None:
    """The median time (h) between consecutive feeds, or None with fewer than two feed times."""
    gaps = np.diff(np.unique(times))
    return float(np.median(gaps)) if gaps.size else None


def _campaign_range(twin, campaign, medium: str, interval_h: float | None = None) -> tuple[float, float] | None:
    """Smallest and largest volume per feed of ``medium`` in the twin's calibration batches.

    Volumes of a batch fed at the rhythm of the recommended batch (median feed interval within a factor
    :data:`SAME_RHYTHM` of ``interval_h``) count as recorded. A batch fed at another rhythm, such as a
    pump whose totaliser logs hourly volumes against daily boluses, counts by its rate: its volumes times
    ``interval_h`` over its own median interval (2.5 mL an hour is 60 mL per daily feed, not 2.5 mL).
    """
    fed = campaign.events.filter(
        pl.col("batch_id").is_in(list(twin.data["batch_ids"]))
        & (pl.col("event") == "feed")
        & pl.col("medium").eq_missing(medium)
        & (pl.col("volume_ml") > 0)
    )
    if not fed.height:
        return None
    volumes = []
    for (_,), rows in fed.group_by("batch_id"):
        v = rows["volume_ml"].to_numpy()
        own = _feed_interval(rows["time_h"].to_numpy())
        if interval_h is not None and own is not None and not 1 / SAME_RHYTHM <= own / interval_h <= SAME_RHYTHM:
            v = v * (interval_h / own)
        volumes.append(v)
    v = np.concatenate(volumes)
    return float(v.min()), float(v.max())


def _support_text(volume: float, medium: str, span: tuple[float, float] | None, extrapolation: bool) -> str:
    if span is None:
        return (
            f" The calibration batches were never fed {medium}: the twin has no evidence of how the process answers "
            "to it, and the prediction is an extrapolation of its kinetics (osmolality, which rises with feed, is "
            "not modelled)."
        )
    where = f"the {span[0]:.0f}-{span[1]:.0f} mL per feed of {medium} that the calibration batches received"
    if extrapolation:
        return (
            f" {volume:.0f} mL per feed lies outside {where}: the twin has not seen the process there, so the "
            "prediction is an extrapolation of its kinetics (osmolality, which rises with feed, is not modelled); "
            "confirm it with a smaller step first."
        )
    return f" {volume:.0f} mL per feed lies within {where}."


def _check(objective: str, constraints: dict[str, Any], prob: float, bounds: Any) -> dict[str, tuple]:
    if objective not in ENDPOINTS:
        raise ArgumentError(
            f"recommend_feed: objective {objective!r} is not an endpoint. " + suggest(objective, list(ENDPOINTS))
        )
    if not 0 < prob < 1:
        raise ArgumentError(f"recommend_feed: prob must lie in (0, 1), got {prob!r}.")
    if bounds is not None:
        lo, hi = bounds
        if not 0 <= lo < hi:
            raise ArgumentError(f"recommend_feed: bounds must be (low, high) mL with 0 <= low < high, got {bounds!r}.")
    out = {}
    problems = []
    for var, lim in constraints.items():
        if var not in _CONSTRAINED:
            problems.append(
                f"{var!r} is not a variable the twin models (osmolality and pH are not among its states); "
                f"constrain one of {', '.join(_CONSTRAINED)}"
            )
            continue
        try:
            lo, hi = lim
        except (TypeError, ValueError):
            problems.append(f"{var!r}: expected (lower, upper) with None for an open side, got {lim!r}")
            continue
        if lo is None and hi is None:
            problems.append(f"{var!r}: both sides are None")
            continue
        out[var] = (-np.inf if lo is None else float(lo), np.inf if hi is None else float(hi))
    if problems:
        raise ConfigError("recommend_feed: " + "; ".join(problems) + ".")
    return out


def _constraint_text(limits: dict[str, tuple[float, float]]) -> str:
    units = {"vcd": "1e6 cells/mL", "tcd": "1e6 cells/mL", "viability": "%", "titer": "mg/L", "volume": "mL"}
    parts = []
    for var, (lo, hi) in limits.items():
        unit = units.get(var, "mmol/L")
        if np.isfinite(lo) and np.isfinite(hi):
            parts.append(f"{var} between {lo:g} and {hi:g} {unit}")
        elif np.isfinite(lo):
            parts.append(f"{var} at or above {lo:g} {unit}")
        else:
            parts.append(f"{var} at or below {hi:g} {unit}")
    return " and ".join(parts)


def recommend_feed(
    twin,
    campaign,
    *,
    batch_id: str,
    known_h: float,
    objective: str = "final_titer",
    constraints: dict[str, Any] | None = None,
    prob: float = 0.9,
    bounds: tuple[float, float] | None = None,
    n_candidates: int = 9,
    draws: int = 400,
    random_seed: int | None = None,
) -> FeedRecommendation:
    """Recommend the volume of a running batch's remaining feeds (see the module's Notes).

    Parameters
    ----------
    twin
        A fitted :class:`~bioworkbench.twin.model.FedBatchTwin`.
    campaign
        The campaign holding the batch (its events and readings up to ``known_h`` are used).
    batch_id
        The batch.
    known_h
        Time (h) up to which the batch ran as recorded; the recommendation covers the feeds from it on.
    objective
        The endpoint to maximise (posterior mean), e.g. ``"final_titer"``.
    constraints
        ``{variable: (lower, upper)}`` required from ``known_h`` to the end (default glucose >= 5 mmol/L
        and viability >= 70 %, the demo's alarm limits).
    prob
        Required probability that every constraint holds.
    bounds
        ``(low, high)`` mL per feed searched; default: the calibration batches' range of volumes per
        feed of the medium (see the module's Notes).
    n_candidates
        Volumes evenly spaced over ``bounds`` (the last feed volume is always a candidate too).
    draws
        Posterior draws simulated per candidate.
    random_seed
        Seed of the draws.

    Returns
    -------
    FeedRecommendation

    Raises
    ------
    ModelNotFittedError
        The twin has not been fitted.
    ArgumentError
        An unknown objective, ``prob`` outside (0, 1), bad bounds or counts.
    ConfigError
        A constraint on a variable the twin does not model, or a batch without a feed before ``known_h``.
    """
    from bioworkbench.twin.data import batch_data
    from bioworkbench.twin.scenarios import _end_h

    twin._require_fit()
    if constraints is None:
        constraints = {"glucose": (5.0, None), "viability": (70.0, None)}
    limits = _check(objective, constraints, prob, bounds)
    if n_candidates < 2 or draws < 10:
        raise ArgumentError(f"recommend_feed: n_candidates >= 2 and draws >= 10; got {n_candidates}, {draws}.")
    bd = batch_data(campaign, batch_id, variables=twin.data["observed"])
    end_h = _end_h(bd.plan, bd, twin, known_h)
    times, last_v, medium = _feed_times(bd.plan, known_h, end_h)
    own = bd.plan.events.filter((pl.col("event") == "feed") & pl.col("medium").eq_missing(medium))["time_h"]
    span = _campaign_range(twin, campaign, medium, _feed_interval(np.concatenate([own.to_numpy(), times])))
    if bounds is not None:
        lo, hi = bounds
    elif span is not None and span[1] - span[0] >= MIN_RANGE_FRACTION * span[1]:
        lo, hi = span
    else:
        lo, hi = 0.5 * last_v, 2.0 * last_v
    volumes = [last_v, *np.linspace(lo, hi, n_candidates).tolist()]
    names = [_AS_IS] + [f"{v:.1f} mL" for v in volumes[1:]]
    plans = {n: _plan(bd.plan, known_h, times, v, medium) for n, v in zip(names, volumes, strict=True)}
    pred = forecast(
        twin, campaign, batch_id=batch_id, known_h=known_h, plans=plans, prob=prob, draws=draws,
        random_seed=random_seed,
    )  # fmt: skip
    rows = []
    for name, v in zip(names, volumes, strict=True):
        grid, out = pred.paths[name]
        after = grid >= known_h
        ok = np.ones(out.shape[0], dtype=bool)
        for var, (a, b) in limits.items():
            x = out[:, after, K.OBSERVABLE_NAMES.index(var)]
            ok &= (x.min(axis=1) >= a) & (x.max(axis=1) <= b)
        y = pred.draws[name][objective]
        q_lo, q_hi = np.quantile(y, [(1 - prob) / 2, (1 + prob) / 2])
        rows.append((name, v, float(y.mean()), float(q_lo), float(q_hi), float(ok.mean())))
    cand = pl.DataFrame(
        rows,
        schema=["scenario", "volume_ml", "objective_mean", "objective_lower", "objective_upper", "p_constraints"],
        orient="row",
    ).with_columns(feasible=pl.col("p_constraints") >= prob)
    feasible = cand.filter(pl.col("feasible"))
    best = (
        feasible.sort("objective_mean", descending=True)
        if feasible.height
        else cand.sort("p_constraints", descending=True)
    ).row(0, named=True)
    name = best["scenario"]
    outcome = pred.endpoints.filter(pl.col("scenario") == name).drop("batch_id", "scenario")
    feeds = (
        plans[name]
        .events.filter(
            (pl.col("event") == "feed") & pl.col("medium").eq_missing(medium) & (pl.col("time_h") >= known_h)
        )
        .select("time_h", "volume_ml", "medium")
    )
    as_is = cand.row(0, named=True)
    unit = ENDPOINTS[objective][2]
    diff = pred.draws[name][objective] - pred.draws[_AS_IS][objective]
    v = float(best["volume_ml"])
    extrapolation = span is None or not (span[0] * (1 - RANGE_TOLERANCE) <= v <= span[1] * (1 + RANGE_TOLERANCE))
    at_bound = name != _AS_IS and v in (volumes[1], volumes[-1])
    sentence = _sentence(best, as_is, times, medium, objective, unit, limits, prob, float(diff.mean()), known_h)
    sentence += _support_text(v, medium, span, extrapolation)
    if at_bound:
        side = "largest" if v == volumes[-1] else "smallest"
        sentence += (
            f" It is the {side} volume searched ({volumes[1]:.0f}-{volumes[-1]:.0f} mL): the objective might improve "
            "further out, but further from the data."
        )
    return FeedRecommendation(
        batch_id=batch_id,
        known_h=float(known_h),
        volume_ml=float(best["volume_ml"]),
        medium=medium,
        feeds=feeds,
        outcome=outcome,
        p_constraints=float(best["p_constraints"]),
        feasible=bool(best["feasible"]),
        candidates=cand,
        plan=plans[name],
        sentence=sentence,
        method=pred.method,
        campaign_range_ml=span,
        extrapolation=extrapolation,
        at_bound=at_bound,
    )


def _sentence(best, as_is, times, medium, objective, unit, limits, prob, diff, known_h) -> str:
    days = f"day {times[0] / 24:.0f}" if times.size == 1 else f"days {times[0] / 24:.0f}-{times[-1] / 24:.0f}"
    what = objective.replace("_", " ")
    head = (
        f"Feed {best['volume_ml']:.0f} mL of {medium} at each of the remaining {times.size} feed(s) ({days}): "
        f"the twin predicts a {what} of {best['objective_mean']:,.0f} {unit} "
        f"({prob:.0%} interval {best['objective_lower']:,.0f}-{best['objective_upper']:,.0f}), "
        f"{diff:+,.0f} {unit} against continuing at {as_is['volume_ml']:.0f} mL"
    )
    if limits:
        cons = _constraint_text(limits)
        if best["feasible"]:
            head += f", with a {best['p_constraints']:.0%} probability of keeping {cons} until harvest."
        else:
            head += (
                f". No candidate keeps {cons} with {prob:.0%} probability; this one comes closest "
                f"({best['p_constraints']:.0%}): act on the constraint first (e.g. a glucose bolus)."
            )
    else:
        head += "."
    caveat = (
        f" Caveats: the batch's state is estimated from its own readings up to {known_h:g} h and the campaign "
        "it was calibrated on; the probabilities assume the twin's kinetics describe this process."
    )
    return head + caveat

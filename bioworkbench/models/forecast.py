"""Forecast the harvest of running batches from their first days and the campaign's history.

The running batches join the hierarchical :class:`GrowthModel` (and, when the campaign has titer,
the :class:`TiterModel`) with only what was known at ``known_h``: :meth:`Campaign.as_of` cuts
their later observations *and events*, so nothing from a batch's future is read. Partial pooling
lets the history fill in what a batch's own few points cannot say (peak, decline, productivity
after the shift); the numeric CPP setpoints (covariates) make a batch at a high feed rate grow
and produce like the high-feed batches of the history.

**Planned process changes.** A temperature shift that has not happened by ``known_h`` is taken
from the batch's plan: ``plan=`` if given, else its ``cpp_temp_shift_day`` setpoint (day × 24 h).
The assumption is listed in :attr:`Forecast.plan` and said in :meth:`Forecast.sentence`; a shift
already in the events table up to ``known_h`` is used as recorded. A plan that moves the shift
also moves the batch's ``cpp_temp_shift_day`` covariate.

**What is forecast** (for every posterior draw ``s``; all intervals are equal-tailed, central
``prob``, and *predictive*: they are for what will be measured, sampling schedule and assay noise
included, so that they can be compared with the measured values):

* VCD ``f_s(t)``: the batch's growth curve; a sample at ``t`` is ``f_s(t)·exp(σ_s ε)``, ``ε`` from
  the Student-t (ν_s) of the growth model's counting error.
* ``peak_vcd``: the highest VCD *sample* of the batch: the samples known so far and predictive
  samples on the remaining sample days (``sample_days``: by default the culture days sampled in at
  least half of the history batches, up to ``end_h``).
* ``time_of_peak``: the culture day (sample time rounded to whole days) of the first sample whose
  VCD is within 5 % of the highest sample. The day of the single highest sample is ill-posed on a
  plateau (the noise decides it); "the first day within 5 % of the peak" is not.
* IVCD ``I_s(t) = I_obs(t_k) + ∫_{t_k}^{t} f_s(u) du`` (trapezoid on an hourly grid) from the IVCD
  measured up to the last known sample ``t_k``; ``final_ivcd`` is ``I_s(end_h)``.
* titer ``= a_s + qp_s · I_s(min(t, t_shift)) + qp'_s · ∫_{t_shift}^{t} f_s(u) e^{−γ_s (u − t_shift)} du``
  (0 before the shift; the integral over the measured IVCD up to ``t_k`` and the curve after it,
  each IVCD segment weighted at its midpoint) plus the titer assay error (``cv``, ``floor`` of the
  titer model): ``qp'`` is the productivity just after the shift and ``γ`` the campaign's decline
  of qp after it (:class:`TiterModel`), so that a running batch's first post-shift days, where qp
  is highest, are extrapolated with the decline seen in the completed batches. ``final_titer`` is
  that at ``end_h``, i.e. an interval for the titer measured at harvest.

The growth and titer posteriors are sampled separately and combined draw by draw (independence is
assumed between the two models' parameters). A campaign without titer (e.g. NISTCHO, VCD only) is
forecast by the growth model alone: VCD endpoints, no titer.

Size: this module is over 600 lines (about 750, of them about 170 docstring lines) and
:func:`forecast` is about 170 lines of code: one orchestration that checks its arguments, cuts the
campaign at the known times, fits the growth and titer models and assembles trajectories and end
points on the same local state. Splitting it (argument checks and plan, fitting, assembling) is left
to a later change (issue 15 item 2).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from bioworkbench.errors import ArgumentError, BioWorkbenchWarning, ConfigError, SchemaError
from bioworkbench.models.growth import GrowthModel
from bioworkbench.models.sampling import sampler_defaults
from bioworkbench.models.titer import TiterModel

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = ["DEFAULT_CHAINS", "DEFAULT_DRAWS", "DEFAULT_TUNE", "PEAK_WITHIN", "Forecast", "forecast"]

#: sampler defaults of :func:`forecast` (defined, with the reason, in
#: :data:`bioworkbench.models.sampling.SAMPLER_DEFAULTS`: what passes the diagnostics on the demo campaign)
DEFAULT_DRAWS = sampler_defaults("forecast").draws
DEFAULT_TUNE = sampler_defaults("forecast").tune
DEFAULT_CHAINS = sampler_defaults("forecast").chains
#: the day of peak is the first sample day within this fraction of the highest sample
PEAK_WITHIN = 0.05
#: keys of a batch's entry in ``plan=``
PLAN_KEYS = ("temp_shift_day", "temp_shift_h")
#: the CPP column that holds the planned temperature-shift day
SHIFT_CPP = "cpp_temp_shift_day"

_DEFINITIONS = {
    "final_titer": "titer measured at end_h (predictive: assay error included)",
    "peak_vcd": "highest VCD sample (known samples and predictive samples on the remaining sample days)",
    "time_of_peak": f"culture day of the first sample within {PEAK_WITHIN:.0%} of the highest VCD sample",
    "final_ivcd": "IVCD at end_h (from the growth curve)",
    "p_below_spec": "probability that the measured final titer is below the lower specification",
}


@dataclass
class Forecast:
    """What running batches will end at: trajectories, end points, probability of missing spec.

    Attributes
    ----------
    batch_ids, known_h
        The running batches and the culture time (h) up to which each was known.
    end_h
        The harvest time forecast (h).
    trajectory
        ``batch_id, time_h, variable, mean, median, lower, upper, prob, known`` (predictive VCD;
        titer from the last known sample on). ``median``, ``lower`` and ``upper`` are those of what
        will be measured; ``mean`` is that of the VCD curve for ``vcd`` (a count with a
        log-Student-t error has no mean) and of the predictive titer for ``titer``.
    endpoints
        ``batch_id, quantity, mean, median, lower, upper, prob, unit, definition`` (``final_titer``,
        ``peak_vcd``, ``time_of_peak``, ``final_ivcd``, ``p_below_spec``; the titer ones only
        when the campaign has titer). The point forecast is the ``median``; ``mean`` is null for
        ``peak_vcd`` (the highest of samples with log-Student-t errors has no mean: its sample
        mean is ruled by a few extreme draws, 1e158 on NISTCHO).
    plan
        ``batch_id, change, time_h, day, status, source``: the process changes the forecast assumed
        (``status`` "done" for a shift recorded up to ``known_h``, "planned" for one to come,
        "none" when no shift is known or planned).
    sample_days
        The culture days on which VCD is sampled (the schedule of the predictive peak).
    prob
        Mass of the intervals.
    spec_lower
        The lower titer spec of ``p_below_spec`` (``None``: none).
    history
        The completed batches the models were fitted on besides the running ones.
    diagnostics
        The sampler diagnostics of both models.
    growth, titer
        The fitted models.
    """

    batch_ids: list[str]
    known_h: dict[str, float]
    end_h: float
    prob: float
    trajectory: pl.DataFrame
    endpoints: pl.DataFrame
    spec_lower: float | None
    history: list[str]
    diagnostics: dict[str, Any] = field(default_factory=dict)
    growth: GrowthModel | None = None
    titer: TiterModel | None = None
    plan: pl.DataFrame = field(default_factory=pl.DataFrame)
    sample_days: list[int] = field(default_factory=list)

    def _row(self, batch_id: str, quantity: str) -> dict[str, Any] | None:
        e = self.endpoints.filter((pl.col("batch_id") == batch_id) & (pl.col("quantity") == quantity))
        return e.row(0, named=True) if e.height else None

    def assumption(self, batch_id: str) -> str:
        """The planned process change assumed for ``batch_id``, in words ("" when none applies).

        Parameters
        ----------
        batch_id
            A forecast batch.

        Returns
        -------
        str
            A phrase to put after the forecast ("assuming the planned temperature shift on day 6 ...").
        """
        p = self.plan.filter(pl.col("batch_id") == batch_id) if self.plan.height else self.plan
        if not p.height:
            return ""
        r = p.row(0, named=True)
        if r["status"] == "planned":
            return f"assuming the planned temperature shift on day {r['day']:g} ({r['source']})"
        if r["status"] == "done":
            return f"with the temperature shift made on day {r['day']:g}"
        return "assuming no temperature shift (none recorded or planned)"

    def sentence(self, batch_id: str | None = None) -> str:
        """One plain sentence per batch with the forecast, the assumed plan and the chance of missing spec.

        Parameters
        ----------
        batch_id
            One batch (default: every forecast batch).

        Returns
        -------
        str
            The sentences, one per batch, joined by spaces.
        """
        from bioworkbench.checks import require_choice

        ids = self.batch_ids
        if batch_id is not None:
            ids = [require_choice(batch_id, self.batch_ids, function="Forecast.sentence", argument="batch_id")]
        out = []
        for b in ids:
            ft, pk, tp = self._row(b, "final_titer"), self._row(b, "peak_vcd"), self._row(b, "time_of_peak")
            peak = (
                f"a peak VCD of {pk['median']:.1f} ×10⁶ cells/mL ({pk['lower']:.1f}–{pk['upper']:.1f}) "
                f"on day {tp['median']:.0f} ({tp['lower']:.0f}–{tp['upper']:.0f})"
            )
            head = f"From the first {self.known_h[b] / 24:.1f} days, batch {b} is forecast to "
            if ft is not None:
                text = (
                    head + f"end on day {self.end_h / 24:.1f} at {ft['median']:.0f} mg/L ({self.prob:.0%} interval "
                    f"{ft['lower']:.0f}–{ft['upper']:.0f}), after {peak}"
                )
            else:
                text = head + f"reach {peak} ({self.prob:.0%} intervals; no titer forecast: no titer data)"
            plan = self.assumption(b)
            text += (f", {plan}" if plan else "") + "."
            if ft is not None and self.spec_lower is not None:
                p = self._row(b, "p_below_spec")["mean"]
                text += (
                    f" The probability that the final titer falls below the {self.spec_lower:g} mg/L "
                    f"specification is {p:.0%}."
                )
            out.append(text)
        return " ".join(out)


def forecast(
    campaign: Campaign,
    batch_ids: str | Sequence[str],
    *,
    known_h: float | Mapping[str, float] | None = None,
    known_days: float | Mapping[str, float] | None = None,
    plan: Mapping[str, Mapping[str, float | None]] | None = None,
    history: Sequence[str] | None = None,
    end_h: float | None = None,
    spec_lower: float | None = None,
    prob: float = 0.9,
    draws: int = DEFAULT_DRAWS,
    tune: int = DEFAULT_TUNE,
    chains: int = DEFAULT_CHAINS,
    random_seed: int | None = None,
    growth_priors: Mapping[str, Any] | None = None,
    titer_priors: Mapping[str, Any] | None = None,
    sampler: Mapping[str, Any] | None = None,
    covariates: str | Sequence[str] | None = "auto",
    growth_covariates: str | Sequence[str] | None = None,
    group: str | None = "auto",
    sample_days: Sequence[int] | None = None,
) -> Forecast:
    """Forecast running batches from what was known ``known_h`` hours (or ``known_days`` days) in.

    Parameters
    ----------
    campaign
        Holds the running batches and the history. The running batches are cut at their known
        time (:meth:`Campaign.as_of`: later observations and events removed), whatever their status.
    batch_ids
        The running batch(es). Several are forecast from one fit (each cut at its own time).
    known_h, known_days
        Culture time up to which each running batch is known, in hours or in days (give exactly
        one): one value, or ``{batch_id: value}``.
    plan
        Planned process changes that override the batches' setpoints: ``{batch_id:
        {"temp_shift_day": 7}}`` or ``{"temp_shift_h": 168.0}`` (``None``: no shift planned).
        Default: each batch's ``cpp_temp_shift_day``. A shift already recorded up to the known
        time cannot be planned again.
    history
        Batches to learn from (default: every other batch with status ``completed`` (or none) and
        at least 4 VCD points (and 3 titer points when the campaign has titer); those without are
        listed in ``diagnostics["history_left_out"]``).
    end_h
        Harvest time to forecast (h; default: the median last VCD sample time of the history).
    spec_lower
        Lower titer specification (mg/L; default: the ``titer`` spec of ``campaign.specs``).
    prob
        Central probability of the intervals.
    draws, tune, chains, random_seed
        Sampler settings of both models (defaults :data:`DEFAULT_DRAWS`, :data:`DEFAULT_TUNE`,
        :data:`DEFAULT_CHAINS`: what passes the diagnostics on the demo campaign; ``random_seed``
        seeds the growth model, ``+ 1`` the titer model, and the predictive draws).
    growth_priors, titer_priors, sampler
        Prior overrides and sampler settings (see :class:`BayesModel`).
    covariates
        Batch columns that shift the campaign-level productivity (titer model) and growth:
        ``"auto"`` (default) the numeric CPP setpoints that vary across the batches; a list; or
        ``None``. ``growth_covariates`` overrides it for the growth model.
    group
        Grouping of the growth model (see :meth:`GrowthModel.fit`; ``"auto"`` by default).
    sample_days
        Culture days on which VCD is sampled (default: those sampled in at least half the
        history batches).
    growth_covariates
        Batch columns for the growth model instead of ``covariates`` (same choices).

    Returns
    -------
    Forecast
        See :class:`Forecast` and the module docstring for the definitions of the end points.

    Raises
    ------
    ArgumentError
        Not a Campaign; ``known_h`` and ``known_days`` both or neither given; a value of the wrong kind.
    SchemaError
        Unknown batches; a running batch with fewer than 2 VCD samples up to its known time (the
        count is given, with a hint when the time looks like days); no usable history.
    ConfigError
        A ``plan`` for a batch that is not forecast, an unknown key, or a shift already made.
    """
    from bioworkbench.checks import require_campaign, require_number, require_prob
    from bioworkbench.models.inputs import batch_list, resolve_covariates

    fn = "forecast"
    campaign = require_campaign(campaign, function=fn)
    running = batch_list(batch_ids, campaign, function=fn)
    known = _known_hours(known_h, known_days, running)
    prob = require_prob(prob, function=fn)
    if spec_lower is not None:
        spec_lower = float(require_number(spec_lower, function=fn, argument="spec_lower", unit="mg/L"))
    if end_h is not None:
        end_h = float(require_number(end_h, function=fn, argument="end_h", minimum=0, min_inclusive=False, unit="h"))
    for name, v in (("draws", draws), ("tune", tune), ("chains", chains)):
        require_number(v, function=fn, argument=name, minimum=0 if name == "tune" else 1, integer=True)
    cut = campaign.as_of(known, batch_ids=running)
    vcd = _offline(cut, "vcd").filter(pl.col("value") > 0)
    _check_known_points(vcd, known, running)
    shifts = _resolve_plan(cut, running, known, plan)
    cut = _with_planned_setpoints(cut, shifts)

    titer_obs = _offline(cut, "titer")
    with_titer = titer_obs.height > 0
    left_out: dict[str, str] = {}
    if history is None:
        cand = cut.batches.filter(
            ~pl.col("batch_id").is_in(running) & (pl.col("status").is_null() | (pl.col("status") == "completed"))
        )["batch_id"].to_list()
        n_vcd = dict(vcd.group_by("batch_id").len().iter_rows())
        n_tit = dict(titer_obs.group_by("batch_id").len().iter_rows())
        history = []
        for b in cand:
            if n_vcd.get(b, 0) < GrowthModel.min_points or (with_titer and n_tit.get(b, 0) < TiterModel.min_points):
                left_out[b] = (
                    f"{n_vcd.get(b, 0)} VCD" + (f" and {n_tit.get(b, 0)} titer" if with_titer else "") + " points"
                )
            else:
                history.append(b)
    else:
        history = batch_list(history, campaign, function=fn, argument="history")
        both = sorted(set(history) & set(running))
        if both:
            raise SchemaError(f"{fn}: batch(es) {', '.join(both)} are both running and in the history.")
    if not history:
        raise SchemaError(
            f"{fn} needs at least one history batch with enough VCD"
            + (" and titer" if with_titer else "")
            + " data; none was found"
            + (f" (left out: {'; '.join(f'{b}: {r}' for b, r in left_out.items())})." if left_out else ".")
        )
    ids = list(history) + running
    hist_vcd = vcd.filter(pl.col("batch_id").is_in(history))
    if end_h is None:
        end_h = float(hist_vcd.group_by("batch_id").agg(pl.col("time_h").max())["time_h"].median())
    if spec_lower is None and with_titer and not cut.specs.is_empty():
        s = cut.specs.filter((pl.col("name") == "titer") & (pl.col("kind") == "spec") & pl.col("lower").is_not_null())
        spec_lower = float(s["lower"][0]) if s.height else None
    cov = resolve_covariates(covariates, cut, ids, function=fn)
    gcov = cov if growth_covariates is None else resolve_covariates(growth_covariates, cut, ids, function=fn)
    days = _sample_days(hist_vcd, end_h, sample_days)

    # the forecast's own step size (bioworkbench.models.sampling, "forecast") unless the caller sets one
    model_sampler = {"nutpie_target_accept": sampler_defaults("forecast").nutpie_target_accept} | dict(sampler or {})
    with warnings.catch_warnings():
        # the models' notes on the data (left-out samples, suspected outliers) are kept in the diagnostics
        warnings.simplefilter("ignore", BioWorkbenchWarning)
        g = GrowthModel(priors=growth_priors, sampler=model_sampler).fit(
            cut,
            batch_ids=ids,
            known_until_h=known,
            covariates=gcov,
            group=group,
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=random_seed,
        )
    _warn_not_converged(g, "growth")
    t = None
    if with_titer:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BioWorkbenchWarning)
            t = TiterModel(priors=titer_priors, sampler=model_sampler).fit(
                cut,
                batch_ids=ids,
                known_until_h=known,
                shift_h={b: s["time_h"] for b, s in shifts.items() if s["status"] != "done"},
                covariates=cov,
                draws=draws,
                tune=tune,
                chains=chains,
                random_seed=None if random_seed is None else random_seed + 1,
            )
        _warn_not_converged(t, "titer")

    traj, ends = _draws_to_frames(cut, g, t, running, known, shifts, days, end_h, spec_lower, prob, random_seed)
    trajectory = pl.concat(traj).with_columns(
        prob=pl.lit(prob), known=pl.col("time_h") <= pl.col("batch_id").replace_strict(known, return_dtype=pl.Float64)
    )
    endpoints = (
        pl.DataFrame(
            ends, schema_overrides={"mean": pl.Float64, "median": pl.Float64, "lower": pl.Float64, "upper": pl.Float64}
        )
        .with_columns(prob=pl.lit(prob), definition=pl.col("quantity").replace_strict(_DEFINITIONS))
        .select("batch_id", "quantity", "mean", "median", "lower", "upper", "prob", "unit", "definition")
    )
    plan_frame = pl.DataFrame(
        [
            {
                "batch_id": b,
                "change": "temperature shift",
                "time_h": s["time_h"],
                "day": None if s["time_h"] is None else s["time_h"] / 24,
                "status": s["status"],
                "source": s["source"],
            }
            for b, s in shifts.items()
        ],
        schema={
            "batch_id": pl.String,
            "change": pl.String,
            "time_h": pl.Float64,
            "day": pl.Float64,
            "status": pl.String,
            "source": pl.String,
        },
    )
    diag = {
        "growth": g.diagnostics(),
        "titer": t.diagnostics() if t is not None else None,
        "history_left_out": left_out,
        "plan": plan_frame.to_dicts(),
    }
    return Forecast(
        batch_ids=running,
        known_h=known,
        end_h=end_h,
        prob=prob,
        trajectory=trajectory,
        endpoints=endpoints,
        spec_lower=spec_lower if with_titer else None,
        history=list(history),
        diagnostics=diag,
        growth=g,
        titer=t,
        plan=plan_frame,
        sample_days=days,
    )


# -- arguments ------------------------------------------------------------------------------------
def _known_hours(known_h: Any, known_days: Any, running: list[str]) -> dict[str, float]:
    """``{batch: hours}`` from exactly one of ``known_h`` (hours) and ``known_days`` (days)."""
    from bioworkbench.checks import require_number

    if (known_h is None) == (known_days is None):
        raise ArgumentError(
            "forecast: give exactly one of known_h (hours) and known_days (days); "
            + ("got both." if known_h is not None else "got neither.")
        )
    arg, value, scale, unit = (
        ("known_h", known_h, 1.0, "h") if known_h is not None else ("known_days", known_days, 24.0, "d")
    )
    if isinstance(value, Mapping):
        extra = sorted(set(value) - set(running))
        missing = [b for b in running if b not in value]
        if extra or missing:
            raise ArgumentError(
                f"forecast: {arg} must give a time for each running batch ({', '.join(running)})"
                + (f"; missing: {', '.join(missing)}" if missing else "")
                + (f"; not forecast: {', '.join(extra)}" if extra else "")
                + "."
            )
        vals = {b: value[b] for b in running}
    else:
        vals = dict.fromkeys(running, value)
    return {
        b: scale * float(require_number(v, function="forecast", argument=arg, minimum=0, unit=unit))
        for b, v in vals.items()
    }


def _offline(campaign: Campaign, variable: str) -> pl.DataFrame:
    return campaign.observations.filter(
        (pl.col("variable") == variable)
        & (pl.col("source") != "online")
        & pl.col("flag").is_null()
        & pl.col("value").is_not_null()
    ).select("batch_id", "time_h", "value")


def _check_known_points(vcd: pl.DataFrame, known: dict[str, float], running: list[str]) -> None:
    """Every running batch has at least 2 VCD samples up to its known time (else a located error)."""
    n = {b: 0 for b in running} | dict(
        vcd.filter(pl.col("batch_id").is_in(running)).group_by("batch_id").len().iter_rows()
    )
    few = [b for b in running if n[b] < 2]
    if not few:
        return
    parts = []
    for b in few:
        h = known[b]
        text = (
            f"batch {b} has {n[b]} VCD sample{'s' if n[b] != 1 else ''} up to {h:g} h (day {h / 24:.1f}); "
            "a forecast needs at least 2"
        )
        if h < 24:
            text += f". Hint: known_h is in hours; did you mean known_h={h * 24:g} ({h:g} days)? (or known_days={h:g})"
        parts.append(text)
    raise SchemaError("; ".join(parts) + ".")


def _resolve_plan(cut, running: list[str], known: dict[str, float], plan: Any) -> dict[str, dict[str, Any]]:
    """Per running batch the temperature shift assumed: ``{"time_h", "status", "source"}``.

    A ``shift`` event up to the known time: "done". Else ``plan[batch]``, else the batch's
    ``cpp_temp_shift_day``: "planned". Else "none".
    """
    from bioworkbench.checks import describe_type, require_number

    if plan is not None and not isinstance(plan, Mapping):
        raise ArgumentError(
            "forecast: plan must map batch ids to their planned changes, e.g. "
            f"{{'B14': {{'temp_shift_day': 7}}}}; got {describe_type(plan)}."
        )
    plan = dict(plan or {})
    unknown = sorted(set(plan) - set(running))
    if unknown:
        raise ConfigError(
            f"forecast: plan names batch(es) {', '.join(map(repr, unknown))} that are not forecast "
            f"(running: {', '.join(running)})."
        )
    done = dict(
        cut.events.filter((pl.col("event") == "shift") & pl.col("batch_id").is_in(running))
        .group_by("batch_id")
        .agg(pl.col("time_h").min())
        .iter_rows()
    )
    setpoint = (
        dict(cut.batches.select("batch_id", pl.col(SHIFT_CPP).cast(pl.Float64, strict=False)).iter_rows())
        if SHIFT_CPP in cut.batches.columns
        else {}
    )
    out = {}
    for b in running:
        entry = plan.get(b)
        if b in done:
            if entry is not None:
                raise ConfigError(
                    f"forecast: plan for batch {b}: its temperature shift was already made at {done[b]:g} h "
                    f"(a shift event up to the known {known[b]:g} h); a plan cannot move it."
                )
            out[b] = {"time_h": float(done[b]), "status": "done", "source": "shift event"}
            continue
        if entry is not None:
            if not isinstance(entry, Mapping):
                raise ArgumentError(
                    f"forecast: plan[{b!r}] must be a mapping such as {{'temp_shift_day': 7}}; "
                    f"got {describe_type(entry)}."
                )
            keys = list(entry)
            bad = [k for k in keys if k not in PLAN_KEYS]
            if bad or len(keys) != 1:
                from bioworkbench.schema import suggest

                raise ConfigError(
                    f"forecast: plan[{b!r}] must have exactly one of {', '.join(PLAN_KEYS)}; got "
                    f"{', '.join(map(repr, keys)) or 'none'}. "
                    + (suggest(bad[0], PLAN_KEYS, what="Keys") if bad else "")
                )
            k = keys[0]
            v = entry[k]
            if v is None:
                out[b] = {"time_h": None, "status": "none", "source": f"plan ({k}=None)"}
                continue
            unit = "d" if k == "temp_shift_day" else "h"
            v = float(require_number(v, function="forecast", argument=f"plan[{b!r}][{k!r}]", minimum=0, unit=unit))
            out[b] = {"time_h": v * 24 if unit == "d" else v, "status": "planned", "source": f"plan ({k}={v:g})"}
            continue
        sp = setpoint.get(b)
        if sp is not None and math.isfinite(sp):
            out[b] = {"time_h": sp * 24.0, "status": "planned", "source": SHIFT_CPP}
        else:
            out[b] = {"time_h": None, "status": "none", "source": "no shift event, setpoint or plan"}
    return out


def _with_planned_setpoints(cut, shifts: dict[str, dict[str, Any]]):
    """``cut`` with each running batch's ``cpp_temp_shift_day`` set to the shift assumed (a covariate)."""
    from bioworkbench.campaign import Campaign

    if SHIFT_CPP not in cut.batches.columns:
        return cut
    new = {b: s["time_h"] / 24 for b, s in shifts.items() if s["status"] == "planned" and s["source"] != SHIFT_CPP}
    if not new:
        return cut
    batches = cut.batches.with_columns(
        pl.when(pl.col("batch_id").is_in(list(new)))
        .then(pl.col("batch_id").replace_strict(new, default=None, return_dtype=pl.Float64))
        .otherwise(pl.col(SHIFT_CPP))
        .alias(SHIFT_CPP)
    )
    return Campaign(
        **{**cut.frames(), "batches": batches}, name=cut.name, description=cut.description, sources=cut.sources
    )


def _sample_days(hist_vcd: pl.DataFrame, end_h: float, given: Sequence[int] | None) -> list[int]:
    """Culture days with a VCD sample: ``given``, or those sampled in at least half of the history batches."""
    end_day = round(end_h / 24)
    if given is not None:
        if not isinstance(given, Sequence) or not all(
            isinstance(d, int | float) and not isinstance(d, bool) for d in given
        ):
            raise ArgumentError(f"forecast: sample_days must be a list of culture days; got {given!r}.")
        return sorted({round(d) for d in given if round(d) <= end_day})
    n_hist = hist_vcd["batch_id"].n_unique()
    per_day = (
        hist_vcd.with_columns(day=(pl.col("time_h") / 24).round().cast(pl.Int64))
        .unique(["batch_id", "day"])
        .group_by("day")
        .len()
        .filter(pl.col("len") * 2 >= n_hist)
    )
    return sorted(d for d in per_day["day"].to_list() if d <= end_day)


def _warn_not_converged(model, what: str) -> None:
    d = model.diagnostics()
    if d["divergences"] or (d["max_rhat"] == d["max_rhat"] and d["max_rhat"] > 1.01):
        warnings.warn(
            f"forecast: the {what} model did not converge: " + " ".join(d["issues"]),
            BioWorkbenchWarning,
            stacklevel=3,
        )


# -- draws ----------------------------------------------------------------------------------------
def _quantiles(x: np.ndarray, prob: float, *, discrete: bool = False) -> tuple[float, float]:
    lo, hi = (1 - prob) / 2, (1 + prob) / 2
    method = "inverted_cdf" if discrete else "linear"
    return float(np.quantile(x, lo, method=method)), float(np.quantile(x, hi, method=method))


def _draws_to_frames(
    cut,
    g: GrowthModel,
    t: TiterModel | None,
    running: list[str],
    known: dict[str, float],
    shifts: dict[str, dict[str, Any]],
    days: list[int],
    end_h: float,
    spec_lower: float | None,
    prob: float,
    random_seed: int | None,
) -> tuple[list[pl.DataFrame], list[dict[str, Any]]]:
    """Predictive draws of every running batch turned into the trajectory and end-point rows."""
    from bioworkbench import kinetics

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kin = kinetics.compute(cut, variables=[])
    ivcd_obs = kin.filter((pl.col("variable") == "ivcd") & pl.col("batch_id").is_in(running))
    vcd_obs = _offline(cut, "vcd").filter(pl.col("value") > 0)
    rng = np.random.default_rng(random_seed)
    report_t = np.unique(np.concatenate([np.arange(0.0, end_h, 6.0), [end_h]]))
    sigma, nu = g.posterior_draws("sigma"), g.posterior_draws("nu")
    n = sigma.shape[0] if t is None else min(sigma.shape[0], t.posterior_draws("qp_b").shape[0])
    sigma, nu = sigma[:n, None], nu[:n, None]
    theta = g._theta()[:n]
    traj, ends = [], []
    for b in running:
        th_b = theta[:, g.data["batch_ids"].index(b), :]
        obs_b = ivcd_obs.filter(pl.col("time_h") <= known[b]).sort("time_h")
        meas = vcd_obs.filter((pl.col("batch_id") == b) & (pl.col("time_h") <= known[b])).sort("time_h")
        t_k = float(meas["time_h"][-1])
        # VCD as it would be measured, at the report times
        f_rep = GrowthModel.curve(th_b, report_t / 24)
        # (a VCD with a log-Student-t counting error has no mean: the trajectory's mean is the curve's)
        out_vars = [("vcd", f_rep * np.exp(sigma * rng.standard_t(nu, size=f_rep.shape)), report_t, f_rep)]
        # the measured peak: known samples, then predictive samples on the remaining sample days
        k_days = np.rint(meas["time_h"].to_numpy() / 24).astype(int)
        fut_days = np.array([d for d in days if d > k_days.max()], int)
        f_fut = GrowthModel.curve(th_b, np.minimum(fut_days * 24.0, end_h) / 24)
        fut = f_fut * np.exp(sigma * rng.standard_t(nu, size=f_fut.shape))
        samples = np.concatenate([np.broadcast_to(meas["value"].to_numpy(), (n, k_days.size)), fut], axis=1)
        s_days = np.concatenate([k_days, fut_days])
        peak = samples.max(axis=1)
        first = np.argmax(samples >= (1 - PEAK_WITHIN) * peak[:, None], axis=1)
        rows = [
            ("peak_vcd", peak, "1e6 cells/mL", False, False),
            ("time_of_peak", s_days[first].astype(float), "d", True, True),
        ]
        # IVCD from the last measured IVCD on: trapezoid of the curve on an hourly grid that holds the
        # report times, the shift and end_h
        t_a = float(obs_b["time_h"][-1]) if obs_b.height else t_k
        i_k = float(obs_b["value"][-1]) if obs_b.height else 0.0
        t_s = shifts[b]["time_h"]
        marks = [t_a, end_h] + ([t_s] if t_s is not None and t_a < t_s < end_h else [])
        grid = np.unique(np.concatenate([np.arange(np.ceil(t_a), end_h, 1.0), report_t, marks]))
        grid = grid[(grid >= t_a) & (grid <= end_h)]
        f = GrowthModel.curve(th_b, grid / 24)
        steps = np.diff(grid) / 24 * (f[:, 1:] + f[:, :-1]) / 2
        ivcd = i_k + np.concatenate([np.zeros((n, 1)), np.cumsum(steps, axis=1)], axis=1)
        rows.append(("final_ivcd", ivcd[:, -1], "1e6 cells*d/mL", False, True))
        if t is not None:
            # the measured IVCD before t_a, then the grid: the post-shift IVCD from the shift on, whose
            # increments the titer model weights by its decline of qp after the shift
            t_m, i_m = obs_b["time_h"].to_numpy(), obs_b["value"].to_numpy()
            full_t = np.concatenate([t_m[t_m < t_a], grid])
            full = np.concatenate([np.broadcast_to(i_m[t_m < t_a], (n, int((t_m < t_a).sum()))), ivcd], axis=1)
            if t_s is None or t_s >= end_h:
                pre = full
            elif t_s <= t_a:
                pre = np.where(full_t[None, :] <= t_s, full, float(np.interp(t_s, t_m, i_m)))
            else:
                pre = np.where(full_t[None, :] <= t_s, full, ivcd[:, [int(np.flatnonzero(grid == t_s)[0])]])
            tit = t.titer_draws(
                b, pre, full - pre, time_h=full_t, kind="predictive", random_seed=int(rng.integers(2**31))
            )
            keep_t = np.isin(full_t, report_t) & (full_t >= max(t_k, t_a))  # titer from the last known sample on
            out_vars.append(("titer", tit[:, keep_t], full_t[keep_t], tit[:, keep_t]))
            rows.insert(0, ("final_titer", tit[:, -1], "mg/L", False, True))
        for var, arr, times, of_mean in out_vars:
            lo, med, hi = np.quantile(arr, [(1 - prob) / 2, 0.5, (1 + prob) / 2], axis=0)
            traj.append(
                pl.DataFrame(
                    {
                        "batch_id": b,
                        "time_h": times,
                        "variable": var,
                        "mean": of_mean.mean(axis=0),
                        "median": med,
                        "lower": lo,
                        "upper": hi,
                    }
                )
            )
        for q, x, unit, discrete, has_mean in rows:
            a, z = _quantiles(x, prob, discrete=discrete)
            ends.append(
                {
                    "batch_id": b,
                    "quantity": q,
                    "mean": float(x.mean()) if has_mean else None,
                    "median": float(np.quantile(x, 0.5, method="inverted_cdf" if discrete else "linear")),
                    "lower": a,
                    "upper": z,
                    "unit": unit,
                }
            )
        if t is not None and spec_lower is not None:
            p = float((tit[:, -1] < spec_lower).mean())
            ends.append(
                {
                    "batch_id": b,
                    "quantity": "p_below_spec",
                    "mean": p,
                    "median": None,
                    "lower": None,
                    "upper": None,
                    "unit": "",
                }
            )
    return traj, ends

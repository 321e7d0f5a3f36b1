"""A mechanistic CHO fed-batch simulator that produces demo campaigns with known truth.

:func:`simulate_campaign` integrates an unstructured kinetic model for all batches at once (numpy
arrays over batches, an RK4 loop over time) and turns the trajectories into the frames
of a :class:`~bioworkbench.campaign.Campaign`: daily offline samples with analyser noise, online
pH/DO/temperature/pCO2 with sensor noise, every feed, glucose bolus, base addition, sample and
harvest as events, the media compositions, harvest CQAs and specifications.

Modules: :mod:`~bioworkbench.simulate.reactor` (the kinetic model and its integration) and
:mod:`~bioworkbench.simulate.frames` (the campaign frames built from the integrated run); this
module draws the design, the batch parameters and the sampling schedule, and assembles them.

Exception to the 120-line rule: :func:`simulate_campaign` is about 190 lines, of which about 165
are its docstring: the model's equations, parameters, events and noise (the style guide asks for
every computed quantity's formula and units in Notes); its code is about 25 lines.
"""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from bioworkbench.campaign import Campaign
from bioworkbench.errors import ArgumentError, ConfigError
from bioworkbench.simulate.frames import (
    CPP_LEVELS,
    N_CENTRE_POINTS,
    _batches_frame,
    _events_frame,
    _media_frame,
    _observations_frame,
    _offline,
    _online,
    _quality_frame,
    _specs_frame,
)
from bioworkbench.simulate.reactor import (
    _AA,  # noqa: F401  (read from this module by tests/test_models_slow.py)
    _K,
    _MAY_BE_MISSING,
    _MEDIUM_NAMES,
    _NOISE,
    _P_MISSING_ANALYTE,
    _STEPS_PER_H,
    _TITER,
    _XV,
    _integrate,
    _Schedule,
)

__all__ = ["CONTINUOUS_FEED_MIN_BATCHES", "CPP_LEVELS", "N_CENTRE_POINTS", "SimulatedCampaign", "simulate_campaign"]

#: from this many batches on (a whole block of the design: 4 centre points, at most 3 of them special), one
#: centre-point batch is fed by a continuous pump instead of daily boluses
CONTINUOUS_FEED_MIN_BATCHES = 12

# _integrate is looked up in this module when a campaign is simulated, so that a test can replace it
# (tests/test_models_slow.py records the hourly states and reads _AA, _TITER, _XV and _K from here)


class SimulatedCampaign(NamedTuple):
    """A simulated campaign and the truth it was simulated from (``simulate_campaign(..., return_truth=True)``)."""

    #: the campaign
    campaign: Campaign
    #: one row per batch: the true parameters and outcomes (see :func:`simulate_campaign`)
    truth: pl.DataFrame


def simulate_campaign(
    n_batches: int = 24,
    random_seed: int = 0,
    *,
    days: float = 14.0,
    online_interval_min: float = 5.0,
    return_truth: bool = False,
    seed: int | None = None,
) -> Campaign | SimulatedCampaign:
    r"""Simulate a CHO fed-batch campaign (mAb, 2 L scale) with a small designed experiment.

    Parameters
    ----------
    n_batches
        Number of batches (ids ``B01`` … zero-padded to the width of ``n_batches``).
    random_seed
        Seed of :func:`numpy.random.default_rng`; the same seed gives an identical campaign.
    days
        Culture duration, days; the last daily sample is the harvest.
    online_interval_min
        Interval of the online pH, DO, temperature and pCO2 records, minutes.
    return_truth
        Also return a frame with the true per-batch parameters (see Returns).
    seed
        Deprecated name of ``random_seed``.

    Returns
    -------
    Campaign or SimulatedCampaign
        The campaign; with ``return_truth`` a :class:`SimulatedCampaign` ``(campaign, truth)``
        whose ``truth`` is a frame with one row per batch:
        ``batch_id``, ``mu_max_per_day`` (1/d), ``qp_pg_per_cell_day`` (pg/cell/d at 36.5 °C),
        ``kd_per_day`` (basal death rate, 1/d), ``initial_vcd`` (1e6 cells/mL), ``peak_vcd``
        (1e6 cells/mL, hourly model state), ``peak_vcd_time_h``, ``final_titer_mg_l``
        (noise-free titer at the harvest sample), ``harvest_time_h``, ``missing_sample_day``
        (nominal day of a missed sample, or null), ``probe_drift``, ``aborted`` and
        ``continuous_feed`` (Boolean).

    Raises
    ------
    ConfigError
        If ``n_batches < 1``, ``days < 4`` or ``online_interval_min <= 0``.
    ArgumentError
        ``seed`` and ``random_seed`` both given, with different values.

    Warns
    -----
    DeprecationWarning
        When called with ``seed=``; use ``random_seed=``.

    Notes
    -----
    **State** (per batch): viable and dead cells :math:`X_v, X_d` (1e6 cells/mL); glucose
    :math:`G`, glutamine :math:`Q`, glutamate :math:`E`, lactate :math:`L`, ammonium :math:`A`
    and a hidden lumped amino-acid pool :math:`N` (mmol/L); titer :math:`P` (mg/L); a hidden
    pool of other osmolytes :math:`S` (mOsm/kg); working volume :math:`V` (mL). Time :math:`t`
    in days; specific rates in pmol/cell/d (= mmol/L/d per 1e6 cells/mL). Initial state:
    :math:`X_v` 0.4 (random effect), viability 97 %, :math:`G` 35, :math:`Q` 4, :math:`E` 1,
    :math:`L` 1, :math:`A` 0.5, :math:`N` 12 mmol/L, :math:`S` 240 mOsm/kg, :math:`V`
    1,500 ± 10 mL.

    **Temperature**: :math:`T = 36.5` °C until the shift day :math:`t_s`, then
    :math:`T = 33 + 3.5\,e^{-(t-t_s)/\tau}` with :math:`\tau = 2` h;
    :math:`\theta = (36.5-T)/3.5` goes from 0 to 1.

    **Kinetics** (between events the reactor is a closed batch):

    .. math::

        \mu &= \mu_{max}\,e^{-((pH_{sp}-7)/0.35)^2}(1-0.3\theta)\,
               \frac{1}{1+(t/7.5)^6}\,\frac{G}{0.5+G}\Big(0.4+0.6\frac{Q}{0.3+Q}\Big)
               \frac{N}{1+N}\,\frac{10}{10+A}\,\frac{60}{60+L}\\
        k_d &= k_{d0}(1-0.4\theta)\big(1+(t/11.5)^4\big)
               + \frac{0.15}{1+N^2} + \frac{0.6}{1+(G/0.5)^2}\\
        \dot X_v &= (\mu-k_d)X_v, \qquad \dot X_d = k_d X_v - 0.08\,X_d\\
        q_G &= \Big(\frac{\mu}{0.5} + 0.55(1-0.3\theta)\Big)\frac{G}{0.5+G},
              \qquad \dot G = -q_G X_v\\
        s &= \max\big(\theta,\; 2/(2+G)\big) \quad\text{(metabolic shift)}\\
        \dot L &= \Big(0.65\big(1+2(pH_{sp}-7)\big)\,q_G\,(1-s)
                  - 0.45\frac{L}{2+L}\,s\Big)X_v\\
        q_Q &= \Big(\frac{\mu}{3.5}+0.03\Big)\frac{Q}{0.2+Q}, \qquad \dot Q = -q_Q X_v,
              \qquad \dot A = (0.8\,q_Q + 0.012)X_v, \qquad
              \dot E = -0.03\frac{E}{1+E}X_v\\
        \dot N &= -\Big(\frac{\mu}{1.2}+0.5\Big)\frac{N}{0.5+N}X_v, \qquad
              \dot P = q_p(1+0.6\theta)\Big(0.4+0.6\frac{N}{1+N}\Big)X_v

    (:math:`q_p` in pg/cell/d times 1e6 cells/mL gives mg/L/d.) Osmolality (mOsm/kg) is
    :math:`S + G + Q + E + L + A + N`. Integration: classic RK4 for all batches at once, with
    steps of 0.5 h shortened so that every event time (on a 0.1 h grid) is a step boundary
    (final titers agree with 0.1 h steps to better than 1e-5, relative).

    **Events**, at each daily sample time (nominal day ± 1 h on the 0.1 h grid; day 0 at
    0.1–0.5 h, the harvest day in its last hour), in this order: the sample (4 mL); from day 3
    until the day before harvest a bolus of *FeedA* of ``cpp_feed_rate_pct`` % of the initial
    volume; when the *measured* glucose is below 15 mmol/L a *Glc* bolus (2,220 mmol/L),
    computed from the measurement to bring glucose to 30 mmol/L; *Base* (1 M NaHCO3) of
    0.25 mL/mmol × (1 + 3(pH_sp − 7)) for the lactate produced since the previous sample, when
    at least 0.5 mL. Adding volume :math:`v` of a medium of concentration :math:`c` mixes as
    :math:`C \leftarrow (CV + cv)/(V+v)`, :math:`V \leftarrow V+v`, so each addition brings
    exactly ``volume_ml × concentration`` of the ``media`` frame. A continuously fed batch (below)
    gets no FeedA bolus: a pump delivers the same daily volume at a constant rate from the day-3
    sample to the harvest, added at every whole hour in between (each a ``feed`` event of the
    hourly volume, as a pump's totaliser logs it; whole hours are steps of the integration, so no
    other batch's integration changes). FeedA holds glucose 300,
    glutamine 20 and glutamate 15 mmol/L (plus hidden amino acids 250 mmol/L and osmolytes
    500 mOsm/kg). *Base* brings no tracked analyte; ``media`` lists it with glucose 0 mmol/L so
    that every medium used in ``events`` is known.

    **Design**: a 2³ full factorial on ``cpp_temp_shift_day`` (4, 6 d), ``cpp_ph_setpoint``
    (6.9, 7.1) and ``cpp_feed_rate_pct`` (3, 5 % of the initial volume per day) plus 4 centre
    points (5 d, 7.0, 4 %): a 12-run block, cycled to ``n_batches`` (24 gives two replicates),
    in random run order. A higher feed rate delays amino-acid exhaustion (higher peak VCD,
    viability and titer); a higher pH set point makes more lactate and base; a later shift
    prolongs the lactate-producing phase.

    **Batch-to-batch variation**: lognormal random effects (SD of log) on :math:`\mu_{max}`
    (median 1.2 1/d, 0.06), :math:`q_p` (20 pg/cell/d, 0.12), :math:`k_{d0}` (0.02 1/d, 0.25)
    and the initial VCD (0.4 1e6 cells/mL, 0.08).

    **Observations**: offline, daily: ``vcd`` and dead cells counted with CV 6 % and 10 %,
    ``tcd`` and ``viability`` computed from those counts; ``glucose``, ``lactate`` (CV 4 %),
    ``glutamine``, ``glutamate``, ``ammonium`` (5 %), ``titer`` from day 3 (4 %),
    ``osmolality`` (1.5 %), ``ph`` (SD 0.02), ``volume`` (just before the sample, exact).
    The noise is multiplicative (lognormal), so no value is negative; readings below a limit
    of detection (glucose, glutamine, glutamate 0.1, lactate 0.3, ammonium 0.2 mmol/L) are kept
    and flagged ``"<LOD"``. Online every ``online_interval_min``: ``temperature`` following the
    shift, ``ph`` in the controller dead band (set point − 0.03 while lactate is made, + 0.03
    after the shift), ``do`` falling from ~85 % to its 40 % set point as cells grow, ``pco2``
    rising with VCD; sensor noise is autocorrelated (AR(1)) plus white.

    **Special batches** (when ``n_batches >= 3``; see the truth frame): one batch whose online pH
    probe drifts upwards over the last 30 % of the run (+0.3 at harvest) while its offline pH
    stays at set point; one batch contaminated at 45–55 % of the run (growth stops, death
    +2.5 1/d, DO falls, pH drops) and harvested at the first sample at least 12 h later, with
    status ``"aborted"`` and only a titer in ``quality``. With ``n_batches >= 4``,
    ``max(1, round(n_batches / 16))`` other batches miss a whole sample day (no observations
    and no sample event, a ``note`` event instead; the feed is still given). Each analyser value
    (glucose, lactate, glutamine, glutamate, ammonium, titer, osmolality) is missing on its own
    with probability 0.4 %. With ``n_batches >= 12`` (:data:`CONTINUOUS_FEED_MIN_BATCHES`), the last
    centre-point batch that is none of these is fed continuously (see *Events*; a ``note`` event
    at the pump's start gives its rate). It is chosen without a random draw, so every other batch
    is the same as without it.

    **Quality** (harvest): ``titer`` (Protein A HPLC, the model titer with CV 3 %),
    ``aggregates`` (SEC, % = 2.8 + 0.45 Δshift + 0.35 ΔpH + 0.15 (titer/(g/L) − 4) + N(0, 0.25)),
    ``acidic_variants`` (CEX, % = 24 + 2.5 Δshift + 2 ΔpH + N(0, 1.5)) and ``galactosylation``
    (glycan mapping, % = 34 − (ammonium/(mmol/L) − 6) − 2 ΔpH + N(0, 2)), with Δshift the shift
    day − 5 and ΔpH the set point − 7.0 in units of 0.1. ``specs`` holds the CQA
    specifications titer ≥ 3,000 mg/L, aggregates ≤ 4 %, acidic variants 15–30 % and
    galactosylation 25–45 % (a few demo batches fail), the PARs of the three CPPs (their low and
    high levels) and alarm limits: viability ≥ 70 %, pH 6.8–7.3, glucose ≥ 5 mmol/L.

    **Typical outcome** (24 batches, ``random_seed=0``, completed batches): peak VCD 17–25 1e6 cells/mL,
    mostly on day 7–9; viability > 90 % through day 6, declining after the peak to 64–91 % at
    harvest; lactate peaking at 10–40 mmol/L around the shift and consumed to < 1 mmol/L;
    ammonium 8–10 mmol/L; osmolality up to 330–390 mOsm/kg; glucose mostly 12–31 mmol/L;
    harvest titer 3.1–5.8 g/L.

    Examples
    --------
    >>> from bioworkbench.simulate import simulate_campaign
    >>> campaign, truth = simulate_campaign(6, random_seed=1, return_truth=True)  # doctest: +SKIP
    """
    if seed is not None:
        warnings.warn(
            "simulate_campaign(seed=...) is deprecated; use random_seed=...", DeprecationWarning, stacklevel=2
        )
        if random_seed not in (0, seed):
            raise ArgumentError(
                f"simulate_campaign: seed={seed!r} and random_seed={random_seed!r} both given; pass random_seed only."
            )
        random_seed = seed
    frames, truth = _simulate_frames(n_batches, random_seed, days=days, online_interval_min=online_interval_min)
    del frames["_additions"]
    description = (
        f"Simulated CHO fed-batch campaign (mAb-A, 2 L): {n_batches} batches over {days:g} days "
        "in a 2^3 factorial with centre points on the temperature-shift day, pH set point and "
        "feed rate, with batch-to-batch variation, an aborted batch, a drifting online pH probe"
        + (", a batch fed by a continuous pump" if truth["continuous_feed"].any() else "")
        + f" and occasional missing samples. Generated by simulate_campaign(random_seed={random_seed})."
    )
    campaign = Campaign(**frames, name=f"demo (seed={random_seed})", description=description)
    return SimulatedCampaign(campaign, truth) if return_truth else campaign


# ---------------------------------------------------------------------------------------------
# design and arguments
# ---------------------------------------------------------------------------------------------
def _design(n_batches: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """2^3 factorial + centre points, cycled to ``n_batches``, in random run order."""
    names = list(CPP_LEVELS)
    corners = list(itertools.product(*[(CPP_LEVELS[n][0], CPP_LEVELS[n][2]) for n in names]))
    block = np.array(corners + [tuple(CPP_LEVELS[n][1] for n in names)] * N_CENTRE_POINTS)
    runs = block[np.arange(n_batches) % len(block)][rng.permutation(n_batches)]
    return {n: runs[:, i].astype(np.float64) for i, n in enumerate(names)}


def _continuous_batch(design: dict[str, np.ndarray], special: list[int]) -> np.ndarray:
    """Which batch a pump feeds (a Boolean per batch): from :data:`CONTINUOUS_FEED_MIN_BATCHES` batches on,
    the last centre-point batch that is not ``special``. No random draw, so the other batches do not change."""
    n = design["cpp_feed_rate_pct"].size
    out = np.zeros(n, dtype=bool)
    if n >= CONTINUOUS_FEED_MIN_BATCHES:
        centre = np.flatnonzero(design["cpp_feed_rate_pct"] == CPP_LEVELS["cpp_feed_rate_pct"][1])
        plain = np.setdiff1d(centre, special)
        if plain.size:
            out[plain[-1]] = True
    return out


def _batch_ids(n_batches: int) -> list[str]:
    width = max(2, len(str(n_batches)))
    return [f"B{i:0{width}d}" for i in range(1, n_batches + 1)]


def _check_arguments(n_batches: Any, days: Any, online_interval_min: Any) -> None:
    problems = []
    if isinstance(n_batches, bool) or not isinstance(n_batches, int | np.integer) or n_batches < 1:
        problems.append(f"n_batches must be a positive integer; found {n_batches!r}.")
    if not (isinstance(days, int | float) and math.isfinite(days) and days >= 4):
        problems.append(f"days must be a number >= 4 (feeding starts on day 3); found {days!r}.")
    if not (
        isinstance(online_interval_min, int | float) and math.isfinite(online_interval_min) and online_interval_min > 0
    ):
        problems.append(f"online_interval_min must be a number of minutes > 0; found {online_interval_min!r}.")
    if problems:
        raise ConfigError("simulate_campaign: " + " ".join(problems))


# ---------------------------------------------------------------------------------------------
# the whole simulation, as frames
# ---------------------------------------------------------------------------------------------
def _simulate_frames(
    n_batches: int = 24,
    random_seed: int = 0,
    *,
    days: float = 14.0,
    online_interval_min: float = 5.0,
) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    """The six campaign frames plus ``"_additions"`` (the amounts each addition really added to
    the simulated reactor), and the truth frame."""
    _check_arguments(n_batches, days, online_interval_min)
    n_batches, days = int(n_batches), float(days)
    rng = np.random.default_rng(random_seed)
    ids = _batch_ids(n_batches)
    design = _design(n_batches, rng)

    # per-batch parameters
    re = rng.standard_normal((4, n_batches))
    sp = design["cpp_ph_setpoint"]
    mu_max = _K.mu_max * np.exp(_K.sd_mu_max * re[0])
    p = {
        "mu_max": mu_max,
        "mu_ref": mu_max * np.exp(-(((sp - 7.0) / _K.ph_width) ** 2)),
        "qp": _K.qp * np.exp(_K.sd_qp * re[1]),
        "kd": _K.kd * np.exp(_K.sd_kd * re[2]),
        "x0": _K.initial_vcd * np.exp(_K.sd_initial_vcd * re[3]),
        "v0": np.round(_K.initial_volume_ml + _K.sd_initial_volume_ml * rng.standard_normal(n_batches)),
        "ph_sp": sp,
        "shift_d": design["cpp_temp_shift_day"],
        "feed_pct": design["cpp_feed_rate_pct"],
        "y_lac": _K.y_lac_glc * (1.0 + _K.lac_ph_slope * (sp - 7.0)),
        "base_gain": 1.0 + _K.base_ph_slope * (sp - 7.0),
        "contam_d": np.full(n_batches, np.inf),
    }

    # the sampling schedule and the special batches
    last = math.floor(days + 1e-9)
    day = np.arange(last + 1, dtype=np.float64)
    if days - last > 1e-9:
        day = np.append(day, days)
    n_d = day.size
    n_steps = round(days * 24 * _STEPS_PER_H)
    jitter = rng.uniform(-1.0, 1.0, (n_batches, n_d))
    jitter[:, 0] = rng.uniform(0.1, 0.5, n_batches)
    jitter[:, -1] = rng.uniform(-1.0, 0.0, n_batches)
    step = np.clip(np.round((day * 24.0 + jitter) * _STEPS_PER_H).astype(np.int64), 1, n_steps)
    harvest_day = np.full(n_batches, n_d - 1)
    drift_b = aborted_b = -1
    if n_batches >= 3:
        drift_b, aborted_b = (int(i) for i in rng.choice(n_batches, 2, replace=False))
        onset = days * rng.uniform(0.45, 0.55)
        p["contam_d"][aborted_b] = onset
        later = np.nonzero(step[aborted_b] >= (onset + 0.5) * 24 * _STEPS_PER_H)[0]
        harvest_day[aborted_b] = later[0]
    n_missing = max(1, round(n_batches / 16)) if n_batches >= 4 else 0
    others = np.setdiff1d(np.arange(n_batches), [drift_b, aborted_b])
    miss_b = np.sort(rng.choice(others, n_missing, replace=False))
    miss_d = rng.integers(1, n_d - 1, miss_b.size)
    missing = np.zeros((n_batches, n_d), dtype=bool)
    missing[miss_b, miss_d] = True
    p["continuous"] = _continuous_batch(design, [drift_b, aborted_b, *miss_b.tolist()])
    after_harvest = np.arange(n_d)[None, :] > harvest_day[:, None]
    sched = _Schedule(
        step=np.where(after_harvest, -1, step),
        missing=missing,
        harvest_day=harvest_day,
        day=day,
        noise=rng.standard_normal((n_batches, n_d, len(_NOISE))),
        missing_analyte=rng.random((n_batches, n_d, len(_MAY_BE_MISSING))) < _P_MISSING_ANALYTE,
    )

    run = _integrate(p, sched, n_steps)

    t_sample_h = step / _STEPS_PER_H
    t_harvest_h = t_sample_h[np.arange(n_batches), harvest_day]
    offline = _offline(run, sched, t_sample_h, ~after_harvest, p)
    online = _online(run, p, t_harvest_h, rng, interval_min=online_interval_min, days=days, drift_b=drift_b)
    harvest_state = run.at_sample[np.arange(n_batches), harvest_day]
    frames = {
        "batches": _batches_frame(ids, design, p, aborted_b),
        "observations": _observations_frame(offline, online, ids, f"simulate_campaign(random_seed={random_seed})"),
        "events": _events_frame(run, sched, t_sample_h, t_harvest_h, p, ids, aborted_b),
        "media": _media_frame(),
        "quality": _quality_frame(ids, design, harvest_state, rng, aborted_b),
        "specs": _specs_frame(),
        "_additions": pl.DataFrame(
            {
                "batch_id": pl.Series(ids).gather(run.additions["b"]),
                "time_h": np.where(
                    np.isnan(run.additions["t"]), t_sample_h[run.additions["b"], run.additions["d"]], run.additions["t"]
                ),
                "medium": pl.Series(_MEDIUM_NAMES, dtype=pl.String).gather(run.additions["medium"]),
                "volume_ml": run.additions["vol"],
                "glucose_mmol": run.additions["glc"],
                "glutamine_mmol": run.additions["gln"],
            }
        ),
    }

    hours = np.arange(run.hourly.shape[0])[:, None]
    xv = np.where(hours <= t_harvest_h[None, :], run.hourly[:, _XV, :], -np.inf)
    peak = np.argmax(xv, axis=0)
    miss_day = np.full(n_batches, np.nan)
    miss_day[miss_b] = day[miss_d]
    truth = pl.DataFrame(
        {
            "batch_id": ids,
            "mu_max_per_day": p["mu_max"],
            "qp_pg_per_cell_day": p["qp"],
            "kd_per_day": p["kd"],
            "initial_vcd": p["x0"],
            "peak_vcd": xv[peak, np.arange(n_batches)],
            "peak_vcd_time_h": peak.astype(np.float64),
            "final_titer_mg_l": harvest_state[:, _TITER],
            "harvest_time_h": t_harvest_h,
            "missing_sample_day": miss_day,
            "probe_drift": np.arange(n_batches) == drift_b,
            "aborted": np.arange(n_batches) == aborted_b,
            "continuous_feed": p["continuous"],
        }
    ).with_columns(pl.col("missing_sample_day").fill_nan(None))
    return frames, truth

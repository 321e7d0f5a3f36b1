"""A mechanistic CHO fed-batch simulator that produces demo campaigns with known truth.

:func:`simulate_campaign` integrates an unstructured kinetic model for all batches at once (numpy
arrays over batches, an RK4 loop over time) and turns the trajectories into the frames
of a :class:`~bioworkbench.campaign.Campaign`: daily offline samples with analyser noise, online
pH/DO/temperature/pCO2 with sensor noise, every feed, glucose bolus, base addition, sample and
harvest as events, the media compositions, harvest CQAs and specifications.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from bioworkbench.errors import ConfigError

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = ["CPP_LEVELS", "N_CENTRE_POINTS", "simulate_campaign"]

#: the designed process parameters: (low, centre, high) levels
CPP_LEVELS: dict[str, tuple[float, float, float]] = {
    "cpp_temp_shift_day": (4.0, 5.0, 6.0),
    "cpp_ph_setpoint": (6.9, 7.0, 7.1),
    "cpp_feed_rate_pct": (3.0, 4.0, 5.0),
}
#: centre points appended to the 2^3 factorial in each design block
N_CENTRE_POINTS = 4

_STEPS_PER_H = 10  # event times are on a 0.1 h grid
_MAX_STEP = 5  # grid ticks: the RK4 step is 0.5 h, shortened to land on every event time
_START = np.datetime64("2026-01-05T08:00", "us")
_VESSELS = 6  # bioreactors run in parallel; a new group of batches starts every 21 days


@dataclass(frozen=True, slots=True)
class _Kinetics:
    """Population (median) parameters of the kinetic model; units in the comments."""

    # growth
    mu_max: float = 1.2  # 1/d, at 36.5 degC and pH 7.0, before all limitations
    mu_cold: float = 0.3  # fraction of mu lost at 33 degC
    ph_width: float = 0.35  # pH; growth factor exp(-((pH_sp - 7.0) / ph_width)^2)
    k_glc: float = 0.5  # mmol/L, Monod constant of glucose
    k_gln: float = 0.3  # mmol/L, Monod constant of glutamine
    gln_free: float = 0.4  # fraction of growth that needs no glutamine (GS cell line)
    k_aa: float = 1.0  # mmol/L, Monod constant of the lumped amino-acid pool
    ki_nh4: float = 10.0  # mmol/L, ammonium inhibition
    ki_lac: float = 60.0  # mmol/L, lactate inhibition
    arrest_d: float = 7.5  # d, culture age at which growth is halved (lumped growth arrest)
    arrest_power: float = 6.0
    # death and lysis
    kd: float = 0.02  # 1/d, basal death rate at 36.5 degC
    kd_cold: float = 0.4  # fraction of basal death avoided at 33 degC
    age_d: float = 11.5  # d, culture age at which the ageing term equals the basal death
    age_power: float = 4.0
    kd_starve: float = 0.15  # 1/d, extra death when amino acids are exhausted
    kd_glc: float = 0.6  # 1/d, extra death when glucose is exhausted
    k_lysis: float = 0.08  # 1/d
    kd_contamination: float = 2.5  # 1/d, extra death after a contamination
    # metabolism (specific rates in pmol/cell/d == mmol/L/d per 1e6 cells/mL)
    y_x_glc: float = 0.5  # (1e6 cells/mL) / (mmol/L) glucose
    m_glc: float = 0.55  # pmol/cell/d
    glc_cold: float = 0.3  # fraction of glucose maintenance saved at 33 degC
    y_lac_glc: float = 0.65  # mol lactate / mol glucose before the metabolic shift, pH 7.0
    lac_ph_slope: float = 2.0  # relative change of the lactate yield per pH unit
    q_lac_max: float = 0.45  # pmol/cell/d, lactate uptake after the shift
    k_lac: float = 2.0  # mmol/L
    k_glc_shift: float = 2.0  # mmol/L; low glucose also switches cells to lactate uptake
    y_x_gln: float = 3.5  # (1e6 cells/mL) / (mmol/L) glutamine
    m_gln: float = 0.03  # pmol/cell/d
    k_gln_uptake: float = 0.2  # mmol/L
    y_nh4_gln: float = 0.8  # mol ammonium / mol glutamine
    m_nh4: float = 0.012  # pmol/cell/d, ammonium from other amino acids
    q_glu: float = 0.03  # pmol/cell/d, glutamate uptake
    y_x_aa: float = 1.2  # (1e6 cells/mL) / (mmol/L) lumped amino acids
    m_aa: float = 0.5  # pmol/cell/d
    k_aa_uptake: float = 0.5  # mmol/L
    # product
    qp: float = 20.0  # pg/cell/d at 36.5 degC
    qp_cold: float = 0.6  # relative increase of qp at 33 degC
    qp_aa_free: float = 0.4  # fraction of qp kept when amino acids are exhausted
    # process
    temp_high: float = 36.5  # degC
    temp_low: float = 33.0  # degC
    temp_tau_h: float = 2.0  # h, time constant of the temperature shift
    initial_vcd: float = 0.4  # 1e6 cells/mL
    initial_viability: float = 0.97
    initial_volume_ml: float = 1500.0
    sample_ml: float = 4.0
    glc_threshold: float = 15.0  # mmol/L, a glucose bolus is given below this
    glc_target: float = 30.0  # mmol/L, the bolus tops up to this
    base_ml_per_mmol: float = 0.25  # mL 1 M base per mmol lactate produced, pH 7.0
    base_ph_slope: float = 3.0  # relative change of the base demand per pH unit
    first_feed_day: int = 3
    first_titer_day: int = 3
    # batch-to-batch variation: SD of log
    sd_mu_max: float = 0.06
    sd_qp: float = 0.12
    sd_kd: float = 0.25
    sd_initial_vcd: float = 0.08
    sd_initial_volume_ml: float = 10.0  # mL (normal)


_K = _Kinetics()

# state rows: viable and dead cells, glucose, glutamine, glutamate, lactate, ammonium, titer,
# hidden lumped amino acids, hidden other osmolytes, lactate produced since the last sample
_XV, _XD, _GLC, _GLN, _GLU, _LAC, _NH4, _TITER, _AA, _OSM, _LPROD = range(11)
_NS = 11
_INITIAL = {_GLC: 35.0, _GLN: 4.0, _GLU: 1.0, _LAC: 1.0, _NH4: 0.5, _AA: 12.0, _OSM: 240.0}
_OSMOLYTES = [_OSM, _GLC, _GLN, _GLU, _LAC, _NH4, _AA]

#: media compositions, mmol/L; the tracked variables go into the ``media`` frame, the names with
#: a leading underscore are hidden model states (lumped amino acids, other osmolytes in mOsm/kg)
_MEDIA: dict[str, dict[str, float]] = {
    "FeedA": {"glucose": 300.0, "glutamine": 20.0, "glutamate": 15.0, "_aa": 250.0, "_osm": 500.0},
    "Glc": {"glucose": 2220.0},
    "Base": {"glucose": 0.0, "_osm": 1000.0},
}
_MEDIUM_ROW = {"glucose": _GLC, "glutamine": _GLN, "glutamate": _GLU, "_aa": _AA, "_osm": _OSM}
_MEDIUM_NAMES = (None, "FeedA", "Glc", "Base")

# the Monod / inhibition terms evaluated together: state rows and their constants
_SAT_ROWS = [_GLC, _GLN, _AA, _LAC, _GLU, _NH4, _LAC, _GLN, _AA]
_SAT_K = np.array(
    [
        _K.k_glc,
        _K.k_gln,
        _K.k_aa,
        _K.k_lac,
        1.0,
        _K.ki_nh4,
        _K.ki_lac,
        _K.k_gln_uptake,
        _K.k_aa_uptake,
    ]
)[:, None]

_UNITS = {
    "ammonium": "mmol/L",
    "do": "%",
    "glucose": "mmol/L",
    "glutamate": "mmol/L",
    "glutamine": "mmol/L",
    "lactate": "mmol/L",
    "osmolality": "mOsm/kg",
    "pco2": "mmHg",
    "ph": "pH",
    "tcd": "1e6 cells/mL",
    "temperature": "degC",
    "titer": "mg/L",
    "vcd": "1e6 cells/mL",
    "viability": "%",
    "volume": "mL",
}
_VARIABLES = sorted(_UNITS)  # codes in this order sort like the names
_CODE = {v: i for i, v in enumerate(_VARIABLES)}

#: offline analyser noise: CV of the multiplicative lognormal error (pH: SD, pH units)
_NOISE = {
    "vcd": 0.06,
    "dead": 0.10,
    "glucose": 0.04,
    "lactate": 0.04,
    "glutamine": 0.05,
    "glutamate": 0.05,
    "ammonium": 0.05,
    "titer": 0.04,
    "osmolality": 0.015,
    "ph": 0.02,
}
_NOISE_COL = {name: i for i, name in enumerate(_NOISE)}
_DECIMALS = {
    "vcd": 2,
    "tcd": 2,
    "viability": 1,
    "glucose": 2,
    "lactate": 2,
    "glutamine": 2,
    "glutamate": 2,
    "ammonium": 2,
    "titer": 0,
    "osmolality": 0,
    "volume": 1,
    "ph": 2,
}
#: limits of detection (canonical units); readings below are kept and flagged "<LOD"
_LOD = {"glucose": 0.1, "lactate": 0.3, "glutamine": 0.1, "glutamate": 0.1, "ammonium": 0.2}
#: analytes that may be missing on their own (an analyser failure), and how often
_MAY_BE_MISSING = (
    "glucose",
    "lactate",
    "glutamine",
    "glutamate",
    "ammonium",
    "titer",
    "osmolality",
)
_P_MISSING_ANALYTE = 0.004

_FRAME_HEAD = ("batch_id", "time_h", "variable", "value", "unit", "source")
_EVENT_ORDER = ("inoculation", "sample", "feed", "bolus", "base", "shift", "note", "harvest")
_EV = {e: i for i, e in enumerate(_EVENT_ORDER)}


def simulate_campaign(
    n_batches: int = 24,
    seed: int = 0,
    *,
    days: float = 14.0,
    online_interval_min: float = 5.0,
    return_truth: bool = False,
) -> Campaign | tuple[Campaign, pl.DataFrame]:
    r"""Simulate a CHO fed-batch campaign (mAb, 2 L scale) with a small designed experiment.

    Parameters
    ----------
    n_batches
        Number of batches (ids ``B01`` … zero-padded to the width of ``n_batches``).
    seed
        Seed of :func:`numpy.random.default_rng`; the same seed gives an identical campaign.
    days
        Culture duration, days; the last daily sample is the harvest.
    online_interval_min
        Interval of the online pH, DO, temperature and pCO2 records, minutes.
    return_truth
        Also return a frame with the true per-batch parameters (see Returns).

    Returns
    -------
    Campaign or (Campaign, polars.DataFrame)
        The campaign; with ``return_truth`` also a frame with one row per batch:
        ``batch_id``, ``mu_max_per_day`` (1/d), ``qp_pg_per_cell_day`` (pg/cell/d at 36.5 °C),
        ``kd_per_day`` (basal death rate, 1/d), ``initial_vcd`` (1e6 cells/mL), ``peak_vcd``
        (1e6 cells/mL, hourly model state), ``peak_vcd_time_h``, ``final_titer_mg_l``
        (noise-free titer at the harvest sample), ``harvest_time_h``, ``missing_sample_day``
        (nominal day of a missed sample, or null), ``probe_drift`` and ``aborted`` (Boolean).

    Raises
    ------
    ConfigError
        If ``n_batches < 1``, ``days < 4`` or ``online_interval_min <= 0``.

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
    exactly ``volume_ml × concentration`` of the ``media`` frame. FeedA holds glucose 300,
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
    with probability 0.4 %.

    **Quality** (harvest): ``titer`` (Protein A HPLC, the model titer with CV 3 %),
    ``aggregates`` (SEC, % = 2.8 + 0.45 Δshift + 0.35 ΔpH + 0.15 (titer/(g/L) − 4) + N(0, 0.25)),
    ``acidic_variants`` (CEX, % = 24 + 2.5 Δshift + 2 ΔpH + N(0, 1.5)) and ``galactosylation``
    (glycan mapping, % = 34 − (ammonium/(mmol/L) − 6) − 2 ΔpH + N(0, 2)), with Δshift the shift
    day − 5 and ΔpH the set point − 7.0 in units of 0.1. ``specs`` holds the CQA
    specifications titer ≥ 3,000 mg/L, aggregates ≤ 4 %, acidic variants 15–30 % and
    galactosylation 25–45 % (a few demo batches fail), the PARs of the three CPPs (their low and
    high levels) and alarm limits: viability ≥ 70 %, pH 6.8–7.3, glucose ≥ 5 mmol/L.

    **Typical outcome** (24 batches, seed 0, completed batches): peak VCD 17–25 1e6 cells/mL,
    mostly on day 7–9; viability > 90 % through day 6, declining after the peak to 64–91 % at
    harvest; lactate peaking at 10–40 mmol/L around the shift and consumed to < 1 mmol/L;
    ammonium 8–10 mmol/L; osmolality up to 330–390 mOsm/kg; glucose mostly 12–31 mmol/L;
    harvest titer 3.1–5.8 g/L.

    Examples
    --------
    >>> from bioworkbench.simulate import simulate_campaign
    >>> campaign, truth = simulate_campaign(6, seed=1, return_truth=True)  # doctest: +SKIP
    """
    from bioworkbench.campaign import Campaign

    frames, truth = _simulate_frames(n_batches, seed, days=days, online_interval_min=online_interval_min)
    del frames["_additions"]
    description = (
        f"Simulated CHO fed-batch campaign (mAb-A, 2 L): {n_batches} batches over {days:g} days "
        "in a 2^3 factorial with centre points on the temperature-shift day, pH set point and "
        "feed rate, with batch-to-batch variation, an aborted batch, a drifting online pH probe "
        f"and occasional missing samples. Generated by simulate_campaign(seed={seed})."
    )
    campaign = Campaign(**frames, name=f"demo (seed={seed})", description=description)
    return (campaign, truth) if return_truth else campaign


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
# the kinetic model
# ---------------------------------------------------------------------------------------------
def _theta(t_d: np.ndarray | float, shift_d: np.ndarray) -> np.ndarray:
    """0 before the temperature shift, rising to 1 at 33 degC (first order, tau 2 h)."""
    return -np.expm1(-np.maximum(t_d - shift_d, 0.0) * (24.0 / _K.temp_tau_h))


def _contamination(t_d: np.ndarray | float, onset_d: np.ndarray, tau_d: float) -> np.ndarray:
    """0 before the onset of a contamination (``inf``: never), rising to 1."""
    return -np.expm1(-np.maximum(t_d - onset_d, 0.0) / tau_d)


def _time_factors(t: float, p: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """The parts of the rates that depend only on time and the batch parameters."""
    th = _theta(t, p["shift_d"])
    cont = _contamination(t, p["contam_d"], 0.2)
    arrest = 1.0 / (1.0 + (t / _K.arrest_d) ** _K.arrest_power)
    age = 1.0 + (t / _K.age_d) ** _K.age_power
    alive = 1.0 - cont
    mu = p["mu_ref"] * (1.0 - _K.mu_cold * th) * alive * arrest
    kd = p["kd"] * (1.0 - _K.kd_cold * th) * age + _K.kd_contamination * cont
    qp = p["qp"] * (1.0 + _K.qp_cold * th) * alive
    m_glc = _K.m_glc * (1.0 - _K.glc_cold * th)
    return th, mu, kd, qp, m_glc


def _rates(y: np.ndarray, tf: tuple[np.ndarray, ...], p: dict[str, np.ndarray]) -> np.ndarray:
    """d(state)/dt, per day, for all batches; ``y`` has shape (n_states, n_batches)."""
    th, mu_t, kd_t, qp_t, m_glc = tf
    xv = y[_XV]
    g, aa = y[_GLC], y[_AA]
    s = y[_SAT_ROWS]
    f = s / (_SAT_K + s)  # saturation terms x / (K + x), one row per entry of _SAT_ROWS
    f_g, f_q, f_aa, f_lac, f_glu, f_nh4, f_lac_i, f_q_up, f_aa_up = f
    mu = mu_t * f_g * f_aa * (_K.gln_free + (1.0 - _K.gln_free) * f_q) * (1.0 - f_nh4)
    mu *= 1.0 - f_lac_i
    kd = kd_t + _K.kd_starve / (1.0 + np.square(aa / _K.k_aa))
    kd += _K.kd_glc / (1.0 + np.square(g / _K.k_glc))
    q_g = (mu / _K.y_x_glc + m_glc) * f_g
    shift = np.maximum(th, _K.k_glc_shift / (_K.k_glc_shift + g))
    q_l = p["y_lac"] * q_g * (1.0 - shift) - _K.q_lac_max * f_lac * shift
    q_q = (mu / _K.y_x_gln + _K.m_gln) * f_q_up
    dy = np.empty_like(y)  # specific rates first, multiplied by X_v below
    dy[_XV] = mu - kd
    dy[_XD] = kd
    dy[_GLC] = -q_g
    dy[_GLN] = -q_q
    dy[_GLU] = -_K.q_glu * f_glu
    dy[_LAC] = q_l
    dy[_NH4] = _K.y_nh4_gln * q_q + _K.m_nh4
    dy[_TITER] = qp_t * (_K.qp_aa_free + (1.0 - _K.qp_aa_free) * f_aa)
    dy[_AA] = -(mu / _K.y_x_aa + _K.m_aa) * f_aa_up
    dy[_OSM] = 0.0
    dy[_LPROD] = np.maximum(q_l, 0.0)
    dy *= xv
    dy[_XD] -= _K.k_lysis * y[_XD]
    return dy


def _measure(true: np.ndarray, z: np.ndarray, analyte: str) -> np.ndarray:
    """An analyser reading: multiplicative lognormal noise, rounded like the instrument."""
    return np.round(true * np.exp(_NOISE[analyte] * z), _DECIMALS[analyte])


@dataclass(slots=True)
class _Schedule:
    """When each batch is sampled (arrays of shape (n_batches, n_days) unless noted)."""

    step: np.ndarray  # int, integration step of the sample (-1: after harvest, never)
    missing: np.ndarray  # bool, the whole sample is missing
    harvest_day: np.ndarray  # (n_batches,) int, index of the harvest sample
    day: np.ndarray  # (n_days,) nominal day of each sample
    noise: np.ndarray  # (n_batches, n_days, len(_NOISE)) standard normal analyser errors
    missing_analyte: np.ndarray  # (n_batches, n_days, len(_MAY_BE_MISSING)) bool


@dataclass(slots=True)
class _Run:
    """What the integration produced."""

    hourly: np.ndarray  # (n_hours + 1, n_states, n_batches) state before the events
    at_sample: np.ndarray  # (n_batches, n_days, n_states) state at each sample, before it
    vol_at_sample: np.ndarray  # (n_batches, n_days) mL, before the sample
    events: dict[str, np.ndarray]  # b, d, kind, vol, medium of sample/feed/bolus/base/harvest
    additions: dict[str, np.ndarray]  # b, d, medium, vol, glucose/glutamine mmol really added


def _integrate(p: dict[str, np.ndarray], sched: _Schedule, n_steps: int) -> _Run:
    """RK4 over the whole campaign, with the events applied at their steps."""
    n_b, n_d = sched.step.shape
    y = np.zeros((_NS, n_b))
    y[_XV] = p["x0"]
    y[_XD] = p["x0"] * (1.0 - _K.initial_viability) / _K.initial_viability
    for row, value in _INITIAL.items():
        y[row] = value
    vol = p["v0"].copy()
    rows = sorted(_MEDIUM_ROW.values())
    medium_vec = {
        name: np.array([next((c for k, c in comp.items() if _MEDIUM_ROW[k] == r), 0.0) for r in rows])
        for name, comp in _MEDIA.items()
    }
    hourly = np.empty((n_steps // _STEPS_PER_H + 1, _NS, n_b))
    hourly[0] = y
    at_sample = np.full((n_b, n_d, _NS), np.nan)
    vol_at_sample = np.full((n_b, n_d), np.nan)
    ev: dict[str, list[np.ndarray]] = {k: [] for k in ("b", "d", "kind", "vol", "medium")}
    adds: dict[str, list[np.ndarray]] = {k: [] for k in ("b", "d", "medium", "vol", "glc", "gln")}

    flat = sched.step.ravel()
    order = np.argsort(flat, kind="stable")
    order = order[flat[order] >= 0]
    steps, first = np.unique(flat[order], return_index=True)
    bounds = dict(zip(steps.tolist(), zip(first, [*first[1:], order.size], strict=True), strict=True))

    def record(kind: str, b: np.ndarray, d: np.ndarray, v: np.ndarray | None, medium: int) -> None:
        ev["b"].append(b)
        ev["d"].append(d)
        ev["kind"].append(np.full(b.size, _EV[kind]))
        ev["vol"].append(np.full(b.size, np.nan) if v is None else v)
        ev["medium"].append(np.full(b.size, medium))

    def add(name: str, b: np.ndarray, d: np.ndarray, v: np.ndarray, kind: str) -> None:
        glc0, gln0 = y[_GLC, b] * vol[b], y[_GLN, b] * vol[b]
        y[:, b] *= vol[b] / (vol[b] + v)
        y[np.ix_(rows, b)] += medium_vec[name][:, None] * (v / (vol[b] + v))
        vol[b] += v
        code = _MEDIUM_NAMES.index(name)
        adds["b"].append(b)
        adds["d"].append(d)
        adds["medium"].append(np.full(b.size, code))
        adds["vol"].append(v)
        adds["glc"].append((y[_GLC, b] * vol[b] - glc0) / 1000.0)  # mL * mmol/L -> mmol
        adds["gln"].append((y[_GLN, b] * vol[b] - gln0) / 1000.0)
        record(kind, b, d, v, code)

    glc_col = _NOISE_COL["glucose"]
    glc_missing_col = _MAY_BE_MISSING.index("glucose")
    tf_next = _time_factors(0.0, p)
    # RK4 from knot to knot: every _MAX_STEP grid ticks, and at every event time
    knots = np.union1d(np.arange(0, n_steps + 1, _MAX_STEP), steps).tolist()
    if knots[-1] != n_steps:
        knots.append(n_steps)
    tick = 1.0 / (24.0 * _STEPS_PER_H)  # d
    for k, k_next in zip(knots, [*knots[1:], None], strict=True):
        if k in bounds:
            lo, hi = bounds[k]
            cell = order[lo:hi]
            b, d = cell // n_d, cell % n_d
            at_sample[b, d] = y[:, b].T
            vol_at_sample[b, d] = vol[b]
            gain = _K.base_ml_per_mmol * p["base_gain"][b]
            base_ml = np.round(gain * y[_LPROD, b] * vol[b] / 1000.0, 1)
            y[_LPROD, b] = 0.0
            taken = ~sched.missing[b, d]
            record("sample", b[taken], d[taken], np.full(taken.sum(), _K.sample_ml), 0)
            vol[b[taken]] -= _K.sample_ml
            harvest = d == sched.harvest_day[b]
            record("harvest", b[harvest], d[harvest], vol[b[harvest]].copy(), 0)
            live = ~harvest
            feed = live & (sched.day[d] >= _K.first_feed_day)
            v_feed = np.where(feed, p["feed_pct"][b] * p["v0"][b] / 100.0, 0.0)
            v_pre = vol[b].copy()
            if feed.any():
                add("FeedA", b[feed], d[feed], v_feed[feed], "feed")
            # the operator decides on a glucose bolus from the measured glucose
            g_meas = _measure(at_sample[b, d, _GLC], sched.noise[b, d, glc_col], "glucose")
            known = taken & live & ~sched.missing_analyte[b, d, glc_missing_col]
            low = known & (sched.day[d] >= 1) & (g_meas < _K.glc_threshold)
            g_est = (g_meas * v_pre + _MEDIA["FeedA"]["glucose"] * v_feed) / (v_pre + v_feed)
            c_glc = _MEDIA["Glc"]["glucose"]
            v_glc = np.round((_K.glc_target - g_est) * (v_pre + v_feed) / (c_glc - _K.glc_target), 1)
            bolus = low & (v_glc > 0)
            if bolus.any():
                add("Glc", b[bolus], d[bolus], v_glc[bolus], "bolus")
            base = live & (base_ml >= 0.5)
            if base.any():
                add("Base", b[base], d[base], base_ml[base], "base")
        if k_next is None:
            break
        t, h = k * tick, (k_next - k) * tick
        tf0, tf_mid, tf_next = tf_next, _time_factors(t + h / 2, p), _time_factors(t + h, p)
        k1 = _rates(y, tf0, p)
        k2 = _rates(y + (h / 2) * k1, tf_mid, p)
        k3 = _rates(y + (h / 2) * k2, tf_mid, p)
        k4 = _rates(y + h * k3, tf_next, p)
        y += (h / 6.0) * (k1 + 2.0 * (k2 + k3) + k4)
        np.maximum(y, 0.0, out=y)
        if k_next % _STEPS_PER_H == 0:
            hourly[k_next // _STEPS_PER_H] = y
    return _Run(
        hourly=hourly,
        at_sample=at_sample,
        vol_at_sample=vol_at_sample,
        events={key: np.concatenate(val) for key, val in ev.items()},
        additions={key: np.concatenate(val) for key, val in adds.items()},
    )


# ---------------------------------------------------------------------------------------------
# the whole simulation, as frames
# ---------------------------------------------------------------------------------------------
def _simulate_frames(
    n_batches: int = 24,
    seed: int = 0,
    *,
    days: float = 14.0,
    online_interval_min: float = 5.0,
) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    """The six campaign frames plus ``"_additions"`` (the amounts each addition really added to
    the simulated reactor), and the truth frame."""
    _check_arguments(n_batches, days, online_interval_min)
    n_batches, days = int(n_batches), float(days)
    rng = np.random.default_rng(seed)
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
        "observations": _observations_frame(offline, online, ids, f"simulate_campaign(seed={seed})"),
        "events": _events_frame(run, sched, t_sample_h, t_harvest_h, p, ids, aborted_b),
        "media": _media_frame(),
        "quality": _quality_frame(ids, design, harvest_state, rng, aborted_b),
        "specs": _specs_frame(),
        "_additions": pl.DataFrame(
            {
                "batch_id": pl.Series(ids).gather(run.additions["b"]),
                "time_h": t_sample_h[run.additions["b"], run.additions["d"]],
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
        }
    ).with_columns(pl.col("missing_sample_day").fill_nan(None))
    return frames, truth


def _ph_true(t_d: np.ndarray, th: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
    """Culture pH (batches x times): the dead band below set point while lactate is made,
    above it after the shift, and the drop of a contamination."""
    cont = _contamination(t_d, p["contam_d"][:, None], 0.5)
    return p["ph_sp"][:, None] - 0.03 + 0.06 * th - 0.25 * cont


def _offline(run: _Run, sched: _Schedule, t_sample_h: np.ndarray, valid: np.ndarray, p: dict) -> dict[str, np.ndarray]:
    """Offline readings as rows ordered by (batch, time, variable); see :func:`_rows`."""
    st = run.at_sample
    taken = valid & ~sched.missing

    def z(name: str) -> np.ndarray:
        return sched.noise[:, :, _NOISE_COL[name]]

    viable = st[..., _XV] * np.exp(_NOISE["vcd"] * z("vcd"))
    dead = st[..., _XD] * np.exp(_NOISE["dead"] * z("dead"))
    t_d = t_sample_h / 24.0
    ph = _ph_true(t_d, _theta(t_d, p["shift_d"][:, None]), p) + _NOISE["ph"] * z("ph")
    values = {
        "vcd": np.round(viable, 2),
        "tcd": np.round(viable + dead, 2),
        "viability": np.round(100.0 * viable / (viable + dead), 1),
        "glucose": _measure(st[..., _GLC], z("glucose"), "glucose"),
        "lactate": _measure(st[..., _LAC], z("lactate"), "lactate"),
        "glutamine": _measure(st[..., _GLN], z("glutamine"), "glutamine"),
        "glutamate": _measure(st[..., _GLU], z("glutamate"), "glutamate"),
        "ammonium": _measure(st[..., _NH4], z("ammonium"), "ammonium"),
        "titer": _measure(st[..., _TITER], z("titer"), "titer"),
        "osmolality": _measure(st[..., _OSMOLYTES].sum(axis=-1), z("osmolality"), "osmolality"),
        "ph": np.round(ph, 2),
        "volume": np.round(run.vol_at_sample, 1),
    }
    names = sorted(values)  # sorted like the variable codes
    keep = np.repeat(taken[:, :, None], len(names), axis=2)
    for j, name in enumerate(names):
        if name in _MAY_BE_MISSING:
            keep[:, :, j] &= ~sched.missing_analyte[:, :, _MAY_BE_MISSING.index(name)]
        if name == "titer":
            keep[:, :, j] &= sched.day[None, :] >= _K.first_titer_day
    stacked = np.stack([values[name] for name in names], axis=2)
    lod = np.array([_LOD.get(name, -np.inf) for name in names])
    return _rows(stacked, keep, t_sample_h, names, flag=stacked < lod)


def _ar1(rng: np.random.Generator, shape: tuple[int, int], sd: float, tau: float) -> np.ndarray:
    """Stationary AR(1) noise along the last axis with SD ``sd`` and correlation time ``tau``
    (in samples)."""
    phi = math.exp(-1.0 / tau)
    e = rng.standard_normal((shape[1], shape[0])) * (sd * math.sqrt(1.0 - phi * phi))
    e[0] *= 1.0 / math.sqrt(1.0 - phi * phi)
    for m in range(1, shape[1]):
        e[m] += phi * e[m - 1]
    return e.T


def _online(
    run: _Run,
    p: dict[str, np.ndarray],
    t_harvest_h: np.ndarray,
    rng: np.random.Generator,
    *,
    interval_min: float,
    days: float,
    drift_b: int,
) -> dict[str, np.ndarray]:
    """Online records (pH, DO, temperature, pCO2) up to each batch's harvest; see :func:`_rows`."""
    n_b = t_harvest_h.size
    n_m = math.floor(days * 24 * 60 / interval_min + 1e-9) + 1
    shape = (n_b, n_m)
    t_h = np.arange(n_m) * (interval_min / 60.0)
    per_h = 60.0 / interval_min
    i0 = np.minimum(np.floor(t_h).astype(np.int64), run.hourly.shape[0] - 2)
    w = t_h - i0
    xv = ((1.0 - w)[:, None] * run.hourly[i0, _XV] + w[:, None] * run.hourly[i0 + 1, _XV]).T
    t_d = t_h[None, :] / 24.0
    th = _theta(t_d, p["shift_d"][:, None])
    cont = _contamination(t_d, p["contam_d"][:, None], 0.5)

    def white(sd: float) -> np.ndarray:
        return sd * rng.standard_normal(shape)

    temp = _K.temp_high - (_K.temp_high - _K.temp_low) * th
    temp += _ar1(rng, shape, 0.03, 1.0 * per_h) + white(0.02)
    ph = _ph_true(t_d, th, p) + _ar1(rng, shape, 0.01, 3.0 * per_h) + white(0.004)
    if drift_b >= 0:
        start = 0.7 * days
        ph[drift_b] += 0.3 * np.clip((t_d[0] - start) / (days - start), 0.0, 1.0)
    do = 40.0 + 45.0 * np.clip(1.0 - xv / 1.5, 0.0, 1.0) - 32.0 * cont
    do *= np.exp(_ar1(rng, shape, 0.03, 0.5 * per_h) + white(0.02))
    pco2 = 32.0 + 1.8 * xv * (1.0 - 0.3 * th) + 40.0 * cont
    pco2 *= np.exp(_ar1(rng, shape, 0.04, 2.0 * per_h) + white(0.015))
    names = ["do", "pco2", "ph", "temperature"]  # sorted like the variable codes
    stacked = np.stack([np.round(do, 1), np.round(pco2, 1), np.round(ph, 3), np.round(temp, 2)], axis=2)
    running = t_h[None, :] <= t_harvest_h[:, None] + 1e-9
    keep = np.repeat(running[:, :, None], len(names), axis=2)
    return {**_rows(stacked, keep, np.broadcast_to(t_h, shape), names), "grid": t_h}


def _rows(
    values: np.ndarray,
    keep: np.ndarray,
    times: np.ndarray,
    names: list[str],
    *,
    flag: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Rows of the kept cells of (batch, time, variable) arrays, in that order (``times`` has
    shape (batch, time); ``names`` are sorted like the variable codes)."""
    n_m, n_v = values.shape[1:]
    idx = np.flatnonzero(keep)
    bm = idx // n_v
    code = np.array([_CODE[n] for n in names], dtype=np.uint32)
    return {
        "b": (bm // n_m).astype(np.uint32),
        "t": times.ravel()[bm],
        "var": code[idx - bm * n_v],
        "value": values.ravel()[idx],
        "flag": np.zeros(idx.size, bool) if flag is None else flag.ravel()[idx],
        "codes": code,
    }


def _merge_positions(offline: dict[str, np.ndarray], online: dict[str, np.ndarray]) -> np.ndarray:
    """Where each offline row goes when merged into the online rows, both sorted by
    (batch, time, variable) with offline before online on a tie."""
    n_b = int(max(offline["b"].max(initial=0), online["b"].max(initial=0))) + 1
    per_batch = np.bincount(online["b"], minlength=n_b)
    n_codes = online["codes"].size
    start = np.concatenate([[0], np.cumsum(per_batch)[:-1]])
    grid = online["grid"]  # the same for every batch, cut at its harvest
    b = offline["b"]
    m = np.searchsorted(grid, offline["t"], side="left")
    n_times = per_batch[b] // n_codes
    tie = (m < n_times) & (grid[np.minimum(m, grid.size - 1)] == offline["t"])
    before = np.minimum(m, n_times) * n_codes + tie * np.searchsorted(online["codes"], offline["var"], side="left")
    return start[b] + before + np.arange(b.size)


def _observations_frame(
    offline: dict[str, np.ndarray], online: dict[str, np.ndarray], ids: list[str], source_file: str
) -> pl.DataFrame:
    """Merge the two sorted row sets; strings are gathered from small tables."""
    n = offline["b"].size + online["b"].size
    dest = _merge_positions(offline, online)
    is_on = np.ones(n, dtype=bool)
    is_on[dest] = False

    def merged(col: str) -> np.ndarray:
        out = np.empty(n, dtype=offline[col].dtype)
        out[dest] = offline[col]
        out[is_on] = online[col]
        return out

    var = merged("var")
    reason_code = np.zeros(n, dtype=np.uint32)
    reason_code[dest] = np.where(offline["flag"], offline["var"] + 1, 0)
    reasons = [None] + [
        f"below the limit of detection ({_LOD[v]:g} {_UNITS[v]})" if v in _LOD else None for v in _VARIABLES
    ]
    return pl.DataFrame(
        {
            "batch_id": pl.Series(ids, dtype=pl.String).gather(merged("b")),
            "time_h": merged("t"),
            "variable": pl.Series(_VARIABLES, dtype=pl.String).gather(var),
            "value": merged("value"),
            "unit": pl.Series([_UNITS[v] for v in _VARIABLES], dtype=pl.String).gather(var),
            "source": pl.Series(["offline", "online"], dtype=pl.String).gather(is_on.astype(np.uint32)),
            "_reason": reason_code,
        }
    ).select(
        *_FRAME_HEAD,
        pl.when(pl.col("_reason") > 0).then(pl.lit("<LOD")).alias("flag"),
        pl.col("_reason").replace_strict(range(len(reasons)), reasons, return_dtype=pl.String).alias("flag_reason"),
        pl.lit(source_file, dtype=pl.String).alias("source_file"),
        pl.lit(None, dtype=pl.Int64).alias("source_line"),
    )


def _events_frame(
    run: _Run,
    sched: _Schedule,
    t_sample_h: np.ndarray,
    t_harvest_h: np.ndarray,
    p: dict[str, np.ndarray],
    ids: list[str],
    aborted_b: int,
) -> pl.DataFrame:
    ev = run.events
    n_b = len(ids)
    notes: list[str | None] = [None]
    parts = [
        (ev["b"], t_sample_h[ev["b"], ev["d"]], ev["kind"], ev["vol"], ev["medium"], 0),
        (np.arange(n_b), np.zeros(n_b), _EV["inoculation"], np.nan, 0, 0),
    ]

    def extra(b: np.ndarray, t: np.ndarray, kind: str, note: str) -> None:
        notes.append(note)
        parts.append((b, t, _EV[kind], np.nan, 0, len(notes) - 1))

    shifted = p["shift_d"] * 24.0 < t_harvest_h
    extra(
        np.nonzero(shifted)[0],
        p["shift_d"][shifted] * 24.0,
        "shift",
        f"temperature {_K.temp_high:g} -> {_K.temp_low:g} degC",
    )
    mb, md = np.nonzero(sched.missing)
    extra(mb, t_sample_h[mb, md], "note", "sample missed (cell counter and analyser down)")
    if aborted_b >= 0:
        extra(
            np.array([aborted_b]),
            t_harvest_h[[aborted_b]],
            "note",
            "viability crash and DO below set point: contamination suspected, batch aborted",
        )
    b, t, kind, vol, medium, note = (
        np.concatenate([np.broadcast_to(part[i], part[0].shape) for part in parts]) for i in range(6)
    )
    order = np.lexsort((kind, t, b))
    return pl.DataFrame(
        {
            "batch_id": pl.Series(ids, dtype=pl.String).gather(b[order]),
            "time_h": t[order].astype(np.float64),
            "event": pl.Series(_EVENT_ORDER, dtype=pl.String).gather(kind[order].astype(np.int64)),
            "volume_ml": vol[order].astype(np.float64),
            "medium": pl.Series(_MEDIUM_NAMES, dtype=pl.String).gather(medium[order].astype(np.int64)),
            "note": pl.Series(notes, dtype=pl.String).gather(note[order].astype(np.int64)),
        }
    ).with_columns(pl.col("volume_ml").fill_nan(None))


def _batches_frame(
    ids: list[str], design: dict[str, np.ndarray], p: dict[str, np.ndarray], aborted_b: int
) -> pl.DataFrame:
    n = len(ids)
    i = np.arange(n)
    start = _START + ((i // _VESSELS) * 21 + i % _VESSELS).astype("timedelta64[D]")
    return pl.DataFrame(
        {
            "batch_id": ids,
            "product": ["mAb-A"] * n,
            "cell_line": ["CHO-K1 GS"] * n,
            "scale_l": np.full(n, 2.0),
            "process": ["fed-batch"] * n,
            "status": np.where(i == aborted_b, "aborted", "completed").tolist(),
            "start": pl.Series(start.astype("datetime64[us]")).dt.replace_time_zone("UTC"),
            "initial_volume_ml": p["v0"],
            **{name: design[name] for name in CPP_LEVELS},
        }
    )


def _media_frame() -> pl.DataFrame:
    rows = [
        (medium, var, conc, _UNITS[var])
        for medium, comp in _MEDIA.items()
        for var, conc in comp.items()
        if not var.startswith("_")
    ]
    schema = {
        "medium": pl.String,
        "variable": pl.String,
        "concentration": pl.Float64,
        "unit": pl.String,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def _quality_frame(
    ids: list[str],
    design: dict[str, np.ndarray],
    harvest: np.ndarray,
    rng: np.random.Generator,
    aborted_b: int,
) -> pl.DataFrame:
    n = len(ids)
    shift = design["cpp_temp_shift_day"] - 5.0
    ph = (design["cpp_ph_setpoint"] - 7.0) / 0.1
    e = rng.standard_normal((4, n))
    titer = harvest[:, _TITER]
    values = {
        "titer": np.round(titer * np.exp(0.03 * e[0])),
        "aggregates": np.round(2.8 + 0.45 * shift + 0.35 * ph + 0.15 * (titer / 1000.0 - 4.0) + 0.25 * e[1], 2),
        "acidic_variants": np.round(24.0 + 2.5 * shift + 2.0 * ph + 1.5 * e[2], 1),
        "galactosylation": np.round(34.0 - (harvest[:, _NH4] - 6.0) - 2.0 * ph + 2.0 * e[3], 1),
    }
    meta = {
        "titer": ("mg/L", "Protein A HPLC"),
        "aggregates": ("%", "SEC-HPLC"),
        "acidic_variants": ("%", "CEX-HPLC"),
        "galactosylation": ("%", "glycan mapping (HILIC-FLD)"),
    }
    parts = []
    for attr, val in values.items():
        keep = np.arange(n) != aborted_b if attr != "titer" else np.ones(n, bool)
        parts.append(
            pl.DataFrame(
                {
                    "batch_id": pl.Series(ids, dtype=pl.String).filter(pl.Series(keep)),
                    "attribute": attr,
                    "value": val[keep],
                    "unit": meta[attr][0],
                    "method": meta[attr][1],
                }
            )
        )
    return pl.concat(parts).sort("batch_id", maintain_order=True)


def _specs_frame() -> pl.DataFrame:
    cpp_units = {"cpp_temp_shift_day": "d", "cpp_ph_setpoint": "pH", "cpp_feed_rate_pct": "%"}
    rows = [
        ("titer", 3000.0, None, "spec", "mg/L"),
        ("aggregates", None, 4.0, "spec", "%"),
        ("acidic_variants", 15.0, 30.0, "spec", "%"),
        ("galactosylation", 25.0, 45.0, "spec", "%"),
        *((name, lv[0], lv[2], "PAR", cpp_units[name]) for name, lv in CPP_LEVELS.items()),
        ("viability", 70.0, None, "alarm", "%"),
        ("ph", 6.8, 7.3, "alarm", "pH"),
        ("glucose", 5.0, None, "alarm", "mmol/L"),
    ]
    schema = {
        "name": pl.String,
        "lower": pl.Float64,
        "upper": pl.Float64,
        "kind": pl.String,
        "unit": pl.String,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")

"""The kinetic model of the simulated CHO fed-batch reactor, integrated for all batches at once.

The equations, parameters and events are documented in :func:`bioworkbench.simulate_campaign`
(Notes). This module holds the population parameters (:data:`_K`), the state layout, the media, the
rates, the analyser model the operator reads glucose from, and :func:`_integrate`: classic RK4 over
numpy arrays of shape (state, batch), with steps shortened to land on every event time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_STEPS_PER_H = 10  # event times are on a 0.1 h grid
_MAX_STEP = 5  # grid ticks: the RK4 step is 0.5 h, shortened to land on every event time


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

_EVENT_ORDER = ("inoculation", "sample", "feed", "bolus", "base", "shift", "note", "harvest")
_EV = {e: i for i, e in enumerate(_EVENT_ORDER)}


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
    events: dict[str, np.ndarray]  # b, d, t (h; NaN: at sample d), kind, vol, medium of every volume event
    additions: dict[str, np.ndarray]  # b, d, t, medium, vol, glucose/glutamine mmol really added


def _pump_schedule(p: dict[str, np.ndarray], sched: _Schedule) -> tuple[np.ndarray, ...]:
    """The continuously fed batches (indices), the steps their pump runs between and its hourly volume (mL).

    FeedA is pumped at the daily bolus volume / 24 per hour, added at each whole hour (a knot of the
    integration grid: ``_STEPS_PER_H`` is a multiple of ``_MAX_STEP``) after the first feeding sample and
    before the harvest."""
    pumped = np.flatnonzero(p["continuous"])
    first_feed = int(np.argmax(sched.day >= _K.first_feed_day))
    pump_ml = p["feed_pct"][pumped] * p["v0"][pumped] / 100.0 / 24.0
    return pumped, sched.step[pumped, first_feed], sched.step[pumped, sched.harvest_day[pumped]], pump_ml


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
    ev: dict[str, list[np.ndarray]] = {k: [] for k in ("b", "d", "t", "kind", "vol", "medium")}
    adds: dict[str, list[np.ndarray]] = {k: [] for k in ("b", "d", "t", "medium", "vol", "glc", "gln")}
    pumped, pump_from, pump_to, pump_ml = _pump_schedule(p, sched)

    flat = sched.step.ravel()
    order = np.argsort(flat, kind="stable")
    order = order[flat[order] >= 0]
    steps, first = np.unique(flat[order], return_index=True)
    bounds = dict(zip(steps.tolist(), zip(first, [*first[1:], order.size], strict=True), strict=True))

    def record(kind: str, b: np.ndarray, d: np.ndarray, v: np.ndarray | None, medium: int, t: float = np.nan) -> None:
        ev["b"].append(b)
        ev["d"].append(d)
        ev["t"].append(np.full(b.size, t))
        ev["kind"].append(np.full(b.size, _EV[kind]))
        ev["vol"].append(np.full(b.size, np.nan) if v is None else v)
        ev["medium"].append(np.full(b.size, medium))

    def add(name: str, b: np.ndarray, d: np.ndarray, v: np.ndarray, kind: str, t: float = np.nan) -> None:
        glc0, gln0 = y[_GLC, b] * vol[b], y[_GLN, b] * vol[b]
        y[:, b] *= vol[b] / (vol[b] + v)
        y[np.ix_(rows, b)] += medium_vec[name][:, None] * (v / (vol[b] + v))
        vol[b] += v
        code = _MEDIUM_NAMES.index(name)
        adds["b"].append(b)
        adds["d"].append(d)
        adds["t"].append(np.full(b.size, t))
        adds["medium"].append(np.full(b.size, code))
        adds["vol"].append(v)
        adds["glc"].append((y[_GLC, b] * vol[b] - glc0) / 1000.0)  # mL * mmol/L -> mmol
        adds["gln"].append((y[_GLN, b] * vol[b] - gln0) / 1000.0)
        record(kind, b, d, v, code, t)

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
            feed = live & (sched.day[d] >= _K.first_feed_day) & ~p["continuous"][b]
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
        if pumped.size and k % _STEPS_PER_H == 0:
            on = (pump_from < k) & (k < pump_to)
            if on.any():
                add("FeedA", pumped[on], np.full(on.sum(), -1), pump_ml[on], "feed", k / _STEPS_PER_H)
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

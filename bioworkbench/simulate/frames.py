"""The campaign frames of a simulation: offline and online observations, events, batches, media,
quality results and specifications, built from the integrated reactor (:mod:`.reactor`).

Numpy arrays over (batch, time, variable) become frames with one vectorised gather per column:
strings are taken from small tables, never built per row.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from bioworkbench.simulate.reactor import (
    _EV,
    _EVENT_ORDER,
    _GLC,
    _GLN,
    _GLU,
    _K,
    _LAC,
    _LOD,
    _MAY_BE_MISSING,
    _MEDIA,
    _MEDIUM_NAMES,
    _NH4,
    _NOISE,
    _NOISE_COL,
    _OSMOLYTES,
    _STEPS_PER_H,
    _TITER,
    _XD,
    _XV,
    _contamination,
    _measure,
    _pump_schedule,
    _Run,
    _Schedule,
    _theta,
)

__all__ = ["CPP_LEVELS", "N_CENTRE_POINTS"]

#: the designed process parameters: (low, centre, high) levels
CPP_LEVELS: dict[str, tuple[float, float, float]] = {
    "cpp_temp_shift_day": (4.0, 5.0, 6.0),
    "cpp_ph_setpoint": (6.9, 7.0, 7.1),
    "cpp_feed_rate_pct": (3.0, 4.0, 5.0),
}
#: centre points appended to the 2^3 factorial in each design block
N_CENTRE_POINTS = 4

_START = np.datetime64("2026-01-05T08:00", "us")
_VESSELS = 6  # bioreactors run in parallel; a new group of batches starts every 21 days

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

_FRAME_HEAD = ("batch_id", "time_h", "variable", "value", "unit", "source")


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
    t_event = np.where(np.isnan(ev["t"]), t_sample_h[ev["b"], ev["d"]], ev["t"])  # NaN: at the sample
    parts = [
        (ev["b"], t_event, ev["kind"], ev["vol"], ev["medium"], 0),
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
    for pb, start, _, rate in zip(*_pump_schedule(p, sched), strict=True):
        extra(
            np.array([pb]),
            np.array([start / _STEPS_PER_H]),
            "note",
            f"FeedA by continuous pump at {rate:.3g} mL/h until harvest; "
            "feed rows are the pump totaliser's hourly volumes",
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

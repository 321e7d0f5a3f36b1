"""The study as :class:`~bioworkbench.models.StabilityModel` learns from it: the usable results of one
attribute (checked and located), the temperature histories of some series, the time each observation spent
at each temperature, the direction of change, the data scales of the default priors and where the data
fix the lots' rates best.

NumPy and polars only (no PyMC): split out of :mod:`bioworkbench.models.stability` so that the model
module holds the model. The kinetics are :mod:`bioworkbench.stability.degradation`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from bioworkbench.errors import BioWorkbenchWarning, ConfigError, Issue, SchemaError
from bioworkbench.schema import suggest
from bioworkbench.stability.degradation import extent_to_reduced_time
from bioworkbench.stability.history import TemperatureHistory
from bioworkbench.stability.temperature import KELVIN, R_KJ

#: the columns the model needs (the others of the study frame are used when present)
_STUDY_CORE = ("batch_id", "condition", "temperature_c", "time", "attribute", "value")
#: reference extent of the Šesták–Berggren reparameterisation (see StabilityModel._build)
_SB_ALPHA_STAR = 0.1


def _usable_rows(
    study: Any, *, attribute: str | None, batch_ids: Sequence[str] | None, conditions: Sequence[str] | None
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """The rows of ``attribute`` the model learns from (unflagged, selected), checked; and metadata
    (``unit``, ``time_unit``, ``n_flagged``, ``source_files``)."""
    from bioworkbench.stability.frame import require_study, unflagged, validate_study

    study = validate_study(require_study(study, "StabilityModel.fit", _STUDY_CORE))  # every column typed
    attrs = sorted(str(a) for a in study["attribute"].drop_nulls().unique().to_list())
    if attribute is None or attribute not in attrs:
        head = "no attribute given" if attribute is None else f"attribute {attribute!r} is not in the study"
        raise ConfigError(f"StabilityModel.fit: {head}. " + suggest(attribute or "", attrs, what="Attributes"))
    rows = study.filter(pl.col("attribute") == attribute)
    for what, sel, col in (("lot", batch_ids, "batch_id"), ("condition", conditions, "condition")):
        if sel is not None:
            known = set(rows[col].cast(pl.String).to_list())
            unknown = [s for s in sel if s not in known]
            if unknown:
                raise ConfigError(
                    f"{what}(s) {', '.join(map(repr, unknown))} have no {attribute} data. "
                    + suggest(unknown[0], known, what=f"{what.capitalize()}s")
                )
            rows = rows.filter(pl.col(col).is_in(list(sel)))
    flagged = rows.filter(~unflagged())
    rows = rows.filter(unflagged())
    if flagged.height:
        warnings.warn(
            f"StabilityModel: {flagged.height} flagged {attribute} row(s) excluded "
            f"({', '.join(sorted(set(flagged['flag'].cast(pl.String).to_list())))}).",
            BioWorkbenchWarning,
            stacklevel=4,
        )
    _check_values(rows, attribute)
    rows = rows.with_columns(
        pl.col("temperature_c", "time", "value").cast(pl.Float64), pl.col("batch_id").cast(pl.String)
    )
    if rows.height == 0:
        raise SchemaError(f"no usable {attribute} rows (all {flagged.height} are flagged).")
    units = _one_unit(rows, attribute)
    tunits = sorted({str(u) for u in rows["time_unit"].to_list() if u is not None})
    if len(tunits) > 1:
        raise SchemaError(f"{attribute}: times are in several units ({', '.join(tunits)}); expected one (e.g. month).")
    _check_two_times(rows, attribute)
    files = sorted({str(f) for f in rows["source_file"].to_list() if f is not None})
    meta = {
        "unit": units[0] if units else None,
        "time_unit": tunits[0] if tunits else "month",
        "n_flagged": flagged.height,
        "source_files": files,
    }
    return rows.sort("batch_id", "condition", "time"), meta


def _one_unit(rows: pl.DataFrame, attribute: str) -> list[str]:
    """The attribute's unit (a list of at most one); several units are an error naming each lot's."""
    units = sorted({str(u) for u in rows["unit"].to_list() if u is not None})
    if len(units) > 1:
        raise SchemaError(
            [
                Issue(
                    f"{attribute} is reported in {len(units)} units ({', '.join(units)}); expected one. "
                    f"Lot {b} uses {u!r}.",
                    column="unit",
                    batch=b,
                    hint="convert to one unit when reading the study (bw.read_study converts known units).",
                )
                for b, u in rows.group_by("batch_id", "unit")
                .agg()
                .sort("batch_id")
                .select("batch_id", "unit")
                .iter_rows()
            ]
        )
    return units


def _check_two_times(rows: pl.DataFrame, attribute: str) -> None:
    """Every lot measured at two or more times (a rate needs a slope)."""
    single = (
        rows.group_by("batch_id")
        .agg(
            n=pl.col("time").n_unique(),
            t=pl.col("time").first(),
            f=pl.col("source_file").first(),
            line=pl.col("source_line").first(),
        )
        .filter(pl.col("n") < 2)
        .sort("batch_id")
    )
    if single.height:
        raise SchemaError(
            [
                Issue(
                    f"lot {b} has {attribute} measured at a single time ({t:g}); its degradation rate cannot be "
                    "estimated from one time point.",
                    file=f,
                    line=line,
                    column="time",
                    batch=b,
                    hint="leave the lot out with batch_ids=[...] or add later time points.",
                )
                for b, _, t, f, line in single.iter_rows()
            ]
        )


def _check_values(rows: pl.DataFrame, attribute: str) -> None:
    """Every usable row has a storage temperature, a time ≥ 0 and a finite value (each bad row located)."""
    issues = []
    for col, expect in (
        ("temperature_c", "a storage temperature in °C"),
        ("time", "a time ≥ 0"),
        ("value", "a number"),
    ):
        x = rows[col].cast(pl.Float64, strict=False)
        bad = (x.is_null() | ~x.is_finite()).fill_null(True)
        if col == "time":
            bad = bad | (x < 0).fill_null(False)
        for r in rows.filter(bad).iter_rows(named=True):
            issues.append(
                Issue(
                    f"{attribute} at condition {r['condition']!r}, time {r['time']}: expected {expect}, "
                    f"found {r[col]!r}.",
                    file=r["source_file"],
                    line=r["source_line"],
                    column=col,
                    batch=str(r["batch_id"]),
                    hint="fill it in, or flag the row (flag, flag_reason) to leave it out." if col != "time" else None,
                )
            )
    if issues:
        raise SchemaError(issues)


def _resolve_histories(
    histories: Mapping[Any, TemperatureHistory] | None, rows: pl.DataFrame
) -> dict[tuple[str, str], TemperatureHistory]:
    out: dict[tuple[str, str], TemperatureHistory] = {}
    if not histories:
        return out
    series = {(b, c) for b, c in rows.select("batch_id", "condition").unique().iter_rows()}
    for key, h in histories.items():
        if not isinstance(h, TemperatureHistory):
            raise ConfigError(f"histories[{key!r}] must be a TemperatureHistory; got {type(h).__name__}.")
        if isinstance(key, tuple):
            if tuple(key) not in series:
                raise ConfigError(
                    f"histories: no series {key!r} (batch_id, condition) in the data. Series: "
                    + ", ".join(map(str, sorted(series)))
                    + "."
                )
            out[(str(key[0]), str(key[1]))] = h
        else:
            conds = sorted(c for b, c in series if b == key)
            if len(conds) != 1:
                raise ConfigError(
                    f"histories[{key!r}]: lot {key!r} has {len(conds)} conditions ({', '.join(conds)}); "
                    "key the history by (batch_id, condition)."
                )
            out[(str(key), conds[0])] = h
    return out


def _exposure(rows: pl.DataFrame, hist: dict[tuple[str, str], TemperatureHistory]) -> tuple[np.ndarray, list[float]]:
    """Time each observation spent at each distinct temperature up to its time: ``(N, K)`` and the temperatures."""
    temp_obs = rows["temperature_c"].to_numpy()
    time = rows["time"].to_numpy()
    keys = list(zip(rows["batch_id"].to_list(), rows["condition"].to_list(), strict=True))
    per_hist = {
        k: h.exposure(np.asarray([t for kk, t in zip(keys, time, strict=True) if kk == k])) for k, h in hist.items()
    }
    temps = sorted(
        {round(float(t), 9) for i, t in enumerate(temp_obs) if keys[i] not in hist}
        | {round(float(t), 9) for ts, _ in per_hist.values() for t in ts}
    )
    col = {t: j for j, t in enumerate(temps)}
    expo = np.zeros((rows.height, len(temps)))
    counters = dict.fromkeys(hist, 0)
    for i, k in enumerate(keys):
        if k in hist:
            ts, dur = per_hist[k]
            for t, dt in zip(ts, dur[counters[k]], strict=True):
                expo[i, col[round(float(t), 9)]] += dt
            counters[k] += 1
        else:
            expo[i, col[round(float(temp_obs[i]), 9)]] = time[i]
    return expo, temps


def _centre_and_precision(
    rows: pl.DataFrame,
    lots: list[str],
    exposure: np.ndarray,
    temps: list[float],
    asymptote: float,
    scales: dict[str, float],
    reference_temperature: float,
    sb_guess: tuple[float, float] | None,
) -> tuple[float, list[float], float]:
    """Where and how precisely the data fix the lots' rates: ``T_c`` (°C), ``s_b`` per lot and ``c_0``.

    With a first-order guess of each observation's reduced time ``θ_i`` (rate ``k_scale`` and the
    prior median ``E_a``), an observation's Fisher information about ``log k`` is
    ``(|y0 − y_∞| θ_i e^{−θ_i} / s_0)²``. ``1/T_c`` is the information-weighted mean of the
    observations' (rate-weighted) ``1/T``; ``s_b = 1/sqrt(Σ information)`` over lot ``b``'s
    observations (at most 10: no information); ``c_0`` is the guessed ``log k`` at ``T_c`` (minus
    ``log g(α*)`` at the prior medians of ``m, n`` for Šesták–Berggren). They only steer the
    sampler's parameterisation: rough values suffice, and the model does not depend on them.
    """
    t_k = np.asarray(temps, float) + KELVIN
    inv_ref = 1.0 / (reference_temperature + KELVIN)
    f = np.exp(-scales["ea_guess"] / R_KJ * (1.0 / t_k - inv_ref))
    rate = exposure * f  # (N, K) equivalent time at each temperature
    t_eq = rate.sum(axis=1)
    theta = np.exp(scales["log_k_scale"]) * t_eq
    noise = scales["y0_spread"] / 2.0
    info = (abs(scales["y0_guess"] - asymptote) * theta * np.exp(-theta) / noise) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        inv_t = (rate / t_k).sum(axis=1) / t_eq
    ok = info > 0
    centre = float(1.0 / np.average(inv_t[ok], weights=info[ok]) - KELVIN) if ok.any() else reference_temperature
    lot_of = np.asarray([lots.index(b) for b in rows["batch_id"].to_list()])
    per_lot = np.bincount(lot_of, weights=info, minlength=len(lots))
    with np.errstate(divide="ignore"):
        sd = np.minimum(1.0 / np.sqrt(per_lot), 10.0)
    c0 = scales["log_k_scale"] - scales["ea_guess"] / R_KJ * (1.0 / (centre + KELVIN) - inv_ref)
    if sb_guess is not None:
        c0 -= float(np.log(extent_to_reduced_time(np.asarray(_SB_ALPHA_STAR), "sestak_berggren", *sb_guess)))
    return centre, sd.tolist(), float(c0)


def _direction(rows: pl.DataFrame, given: str | None) -> tuple[str, bool]:
    """``given``, or the sign of the mean within-series slope at the hottest condition with a slope."""
    if given is not None:
        return given, False
    slopes = (
        rows.group_by("batch_id", "condition")
        .agg(
            temperature_c=pl.col("temperature_c").first(),
            slope=pl.cov("time", "value") / pl.col("time").var(),
            n=pl.col("time").n_unique(),
        )
        .filter((pl.col("n") >= 2) & pl.col("slope").is_finite())
    )
    if slopes.height == 0:
        raise ConfigError(
            "cannot tell whether the attribute decreases or increases; give direction='decrease' or 'increase'."
        )
    hottest = slopes.filter(pl.col("temperature_c") == pl.col("temperature_c").max())
    s = float(hottest["slope"].mean())
    if s == 0 or not np.isfinite(s):
        raise ConfigError(
            "the attribute does not change at the hottest condition; give direction='decrease' or 'increase'."
        )
    return ("decrease" if s < 0 else "increase"), True


def _scales(rows: pl.DataFrame, asymptote: float, ea_kj: float, reference_temperature: float) -> dict[str, float]:
    """Data scales of the default priors (see :class:`StabilityModel` Notes)."""
    from bioworkbench.stability.temperature import arrhenius_factor

    first = rows.filter(pl.col("time") == pl.col("time").min().over("batch_id"))
    y0g = float(first.group_by("batch_id").agg(pl.col("value").mean())["value"].median())
    values = rows["value"].to_numpy()
    sd = float(np.std(values, ddof=1)) if values.size > 1 else 0.0
    y_scale = sd if sd > 0 else max(abs(y0g) * 0.01, 1e-6)
    # spread of the initial results (lot-to-lot and assay): the scale of sd_y0. The sd of all values is
    # dominated by degradation at the hot conditions and would let sd_y0 wander (a funnel with 5 lots).
    v0 = first["value"].to_numpy()
    s0 = float(np.std(v0, ddof=1)) if v0.size > 1 else 0.0
    s0 = s0 if s0 > 0 else max(abs(y0g) * 0.01, 1e-6)
    span = abs(y0g - asymptote)
    per_cond = (
        rows.with_columns(
            tc=pl.col("time") - pl.col("time").mean().over("batch_id", "condition"),
            vc=pl.col("value") - pl.col("value").mean().over("batch_id", "condition"),
        )
        .group_by("condition")
        .agg(
            temperature_c=pl.col("temperature_c").first(),
            sxy=(pl.col("tc") * pl.col("vc")).sum(),
            sxx=(pl.col("tc") ** 2).sum(),
        )
        .filter(pl.col("sxx") > 0)
    )
    t_max = float(rows["time"].max())
    logs = []
    for _, temp, sxy, sxx in per_cond.iter_rows():
        r = abs(sxy / sxx) / span if span > 0 else 0.0
        if r > 0 and np.isfinite(r):
            # the fraction of the total change per time unit at temp, brought to T_ref with the prior's Ea
            logs.append(np.log(r) - np.log(float(arrhenius_factor(temp, ea_kj, reference_temperature))))
    # no visible change: a rate that would give a 1 % change over the study
    log_k = float(np.mean(logs)) if logs else float(np.log(0.01 / max(t_max, 1e-12)))
    return {
        "y0_guess": y0g,
        "y0_sigma": 2.5 * y_scale,
        "y_scale": y_scale,
        "y0_spread": 2.0 * s0,
        "log_k_scale": log_k,
        "ea_guess": ea_kj,
    }

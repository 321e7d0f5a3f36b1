"""Stability studies simulated from a known Arrhenius degradation model (demos, tests, benchmarks).

The model is the one :class:`bioworkbench.models.StabilityModel` fits (see its module docstring for
the conventions): lot ``b`` at storage temperature ``T`` and time ``t``::

    θ_b(t)  = k_ref,b · t · exp(−E_a,b/R · (1/T − 1/T_ref))
    α       = extent(θ; kinetics)                     zero order, first order or Šesták–Berggren
    y_true  = y_∞ + (y0_b − y_∞) · (1 − α)
    value   = y_true + ε,   ε ~ Normal(0, noise_sd)

    y0_b       ~ Normal(y0, lot_sd["y0"])
    log k_ref,b ~ Normal(log k_ref, lot_sd["log_k_ref"])
    E_a,b      ~ Normal(ea_kj, lot_sd["activation_energy"])     (0: shared)

Every condition's series starts with its own time-0 result (an independent assay of the lot's
initial value, as stability tables usually list it under each condition). Values are never clipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from bioworkbench.errors import ConfigError

__all__ = ["ICH_LABELS", "simulate_stability"]

#: ICH Q1A(R2) storage conditions: temperature (°C) → (label, % RH or None)
ICH_LABELS: dict[float, tuple[str, float | None]] = {
    -20.0: ("-20 °C", None),
    5.0: ("5 °C", None),
    25.0: ("25 °C/60 % RH", 60.0),
    30.0: ("30 °C/65 % RH", 65.0),
    40.0: ("40 °C/75 % RH", 75.0),
}
#: default time points (months): real-time to 36, intermediate/accelerated to 6, stress to 3
_DEFAULT_TIMES = {
    "real_time": (0.0, 3.0, 6.0, 9.0, 12.0, 18.0, 24.0, 36.0),
    "accelerated": (0.0, 1.0, 2.0, 3.0, 6.0),
    "stress": (0.0, 0.5, 1.0, 2.0, 3.0),
}
_DEFAULT_K_REF = {"zero_order": 0.0015, "first_order": 0.0015, "sestak_berggren": 0.004}
_DEFAULT_LOT_SD = {"y0": 1.0, "log_k_ref": 0.15, "activation_energy": 0.0}


def _default_times(temperature_c: float) -> tuple[float, ...]:
    if temperature_c <= 8.0:
        return _DEFAULT_TIMES["real_time"]
    if temperature_c < 37.0:
        return _DEFAULT_TIMES["accelerated"]
    return _DEFAULT_TIMES["stress"]


def simulate_stability(
    *,
    kinetics: str = "first_order",
    n_lots: int = 5,
    conditions: Sequence[float] | Mapping[str, float] = (5.0, 25.0, 40.0),
    times: Sequence[float] | Mapping[Any, Sequence[float]] | None = None,
    attribute: str = "potency",
    unit: str = "%",
    y0: float = 100.0,
    ea_kj: float = 90.0,
    k_ref: float | None = None,
    reference_temperature: float = 5.0,
    lot_sd: Mapping[str, float] | None = None,
    noise_sd: float = 1.0,
    sb_m: float = 0.2,
    sb_n: float = 1.5,
    direction: str = "decrease",
    asymptote: float | None = None,
    time_unit: str = "month",
    histories: Mapping[Any, Any] | None = None,
    random_seed: int | None = 0,
    return_truth: bool = False,
) -> pl.DataFrame | tuple[pl.DataFrame, dict[str, Any]]:
    """A stability study simulated from a known model, as a study frame.

    Parameters
    ----------
    kinetics
        ``"zero_order"``, ``"first_order"`` (default) or ``"sestak_berggren"``.
    n_lots
        Number of lots (``L01``, ``L02``, …).
    conditions
        Storage temperatures in °C (labelled as ICH conditions: 5 → ``"5 °C"``, 25 →
        ``"25 °C/60 % RH"``, 30, 40, −20; others ``"<T> °C"``), or a mapping label → temperature.
    times
        Time points (``time_unit``) of every condition, or a mapping condition (label or
        temperature) → time points. Default: 0–36 months at ≤ 8 °C, 0–6 months below 37 °C,
        0–3 months from 37 °C.
    attribute, unit
        Name and unit of the attribute (default potency in % of label claim).
    y0
        Population mean initial value.
    ea_kj
        Activation energy, kJ/mol (default 90, typical of protein degradation).
    k_ref
        Population median rate at ``reference_temperature`` (1/``time_unit``). Default: 0.0015 per
        month for zero and first order (a refrigerated mAb losing ~3.5 % in 24 months at 5 °C, ~10 %
        in 6 months at 25 °C, ~25 % in 3 months at 40 °C), 0.004 for Šesták–Berggren.
    reference_temperature
        ``T_ref``, °C.
    lot_sd
        Lot-to-lot standard deviations: ``y0`` (attribute unit, default 1), ``log_k_ref`` (default
        0.15) and ``activation_energy`` (kJ/mol, default 0: one shared E_a).
    noise_sd
        Standard deviation of the measurement error (attribute unit, default 1).
    sb_m, sb_n
        Šesták–Berggren exponents (``0 ≤ m < 1``, ``n > 0``).
    direction, asymptote
        ``"decrease"`` (default; ``asymptote`` 0) or ``"increase"`` (``asymptote`` 100 for a "%"
        unit); ``asymptote`` is the value at complete degradation (see :class:`StabilityModel`).
    time_unit
        Unit of the times (``"month"`` default).
    histories
        Temperature histories (:class:`~bioworkbench.stability.TemperatureHistory`) of some series,
        keyed by ``(batch_id, condition label)``: those samples age along the history (e.g. a
        cold-chain excursion) instead of at the condition's temperature, through the exact
        equivalent time; ``temperature_c`` still holds the condition's nominal temperature.
    random_seed
        Seed: the same seed gives the same study.
    return_truth
        Also return the true parameters.

    Returns
    -------
    polars.DataFrame or (polars.DataFrame, dict)
        The study frame (columns of :data:`bioworkbench.stability.STUDY_COLUMNS`; lineage
        ``source_file="simulate_stability"`` and ``source_line`` = row number + 1, as if written to
        a CSV with a header), sorted by lot, temperature and time. With ``return_truth``, a dict:
        ``kinetics, activation_energy, k_ref, y0, reference_temperature, lot_sd, noise_sd, sb_m,
        sb_n, direction, asymptote, time_unit`` and ``lots`` (a frame ``batch_id, y0, k_ref,
        activation_energy``: each lot's true values).

    Raises
    ------
    ConfigError
        An unknown kinetics, direction or ``lot_sd`` key; no conditions; negative times or sds;
        an increasing attribute without a default asymptote; a history for a series not simulated.
    """
    from bioworkbench.schema import suggest
    from bioworkbench.stability.degradation import degradation_extent, require_kinetics
    from bioworkbench.stability.temperature import arrhenius_factor

    require_kinetics(kinetics, function="simulate_stability")
    if direction not in ("decrease", "increase"):
        raise ConfigError(f"direction must be 'decrease' or 'increase'; got {direction!r}.")
    if int(n_lots) < 1:
        raise ConfigError(f"n_lots must be at least 1; got {n_lots!r}.")
    sds = dict(_DEFAULT_LOT_SD)
    if lot_sd is not None:
        bad = [k for k in lot_sd if k not in sds]
        if bad:
            raise ConfigError(f"lot_sd: unknown key {bad[0]!r}. " + suggest(bad[0], sds, what="Keys"))
        sds |= {k: float(v) for k, v in lot_sd.items()}
    if any(v < 0 for v in sds.values()) or noise_sd < 0:
        raise ConfigError("lot_sd and noise_sd must be ≥ 0.")
    if kinetics == "sestak_berggren" and not (0 <= sb_m < 1 and sb_n > 0):
        raise ConfigError(f"Šesták–Berggren exponents need 0 ≤ sb_m < 1 and sb_n > 0; got {sb_m!r}, {sb_n!r}.")
    if asymptote is None:
        if direction == "decrease":
            asymptote = 0.0
        elif unit.strip().startswith("%"):
            asymptote = 100.0
        else:
            raise ConfigError(
                f"an increasing attribute in {unit!r} needs asymptote= (its value at complete degradation)."
            )
    k_ref = _DEFAULT_K_REF[kinetics] if k_ref is None else float(k_ref)

    if isinstance(conditions, Mapping):
        conds = [(str(lab), float(t), None) for lab, t in conditions.items()]
    else:
        conds = []
        for t in conditions:
            lab, rh = ICH_LABELS.get(float(t), (f"{float(t):g} °C", None))
            conds.append((lab, float(t), rh))
    if not conds:
        raise ConfigError("simulate_stability: no conditions given.")

    def times_of(label: str, temp: float) -> np.ndarray:
        if times is None:
            ts = _default_times(temp)
        elif isinstance(times, Mapping):
            key = label if label in times else temp if temp in times else None
            if key is None:
                raise ConfigError(
                    f"times has no entry for condition {label!r} ({temp:g} °C); keys: {', '.join(map(str, times))}."
                )
            ts = times[key]
        else:
            ts = times
        arr = np.asarray(ts, dtype=float)
        if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ConfigError(f"times of condition {label!r}: expected finite times ≥ 0; got {list(ts)!r}.")
        return arr

    rng = np.random.default_rng(random_seed)
    nl = int(n_lots)
    lots = [f"L{i + 1:02d}" for i in range(nl)]
    lot_y0 = y0 + sds["y0"] * rng.standard_normal(nl)
    lot_k = k_ref * np.exp(sds["log_k_ref"] * rng.standard_normal(nl))
    lot_ea = ea_kj + sds["activation_energy"] * rng.standard_normal(nl)

    hist = dict(histories or {})
    known = {(lot, lab) for lot in lots for lab, _, _ in conds}
    bad_keys = [k for k in hist if k not in known]
    if bad_keys:
        raise ConfigError(
            f"histories: no series {bad_keys[0]!r}; keys are (batch_id, condition), e.g. {(lots[0], conds[0][0])!r}."
        )
    rows_lot, rows_cond, rows_temp, rows_rh, rows_time, rows_true = [], [], [], [], [], []
    for b in range(nl):
        for lab, temp, rh in conds:
            ts = times_of(lab, temp)
            h = hist.get((lots[b], lab))
            if h is None:
                t_eq = ts * arrhenius_factor(temp, lot_ea[b], reference_temperature)
            else:
                t_eq = h.equivalent_time(
                    ts, activation_energy_kj=lot_ea[b], reference_temperature_c=reference_temperature
                )
            theta = lot_k[b] * t_eq
            alpha = degradation_extent(theta, kinetics, sb_m, sb_n)
            rows_true.append(asymptote + (lot_y0[b] - asymptote) * (1.0 - alpha))
            rows_lot += [lots[b]] * ts.size
            rows_cond += [lab] * ts.size
            rows_temp += [temp] * ts.size
            rows_rh += [rh] * ts.size
            rows_time.append(ts)
    true = np.concatenate(rows_true)
    value = true + noise_sd * rng.standard_normal(true.size)
    n = true.size
    study = (
        pl.DataFrame(
            {
                "batch_id": rows_lot,
                "condition": rows_cond,
                "temperature_c": rows_temp,
                "rh": pl.Series(rows_rh, dtype=pl.Float64),
                "time": np.concatenate(rows_time),
                "time_unit": [time_unit] * n,
                "attribute": [attribute] * n,
                "value": value,
                "unit": [unit] * n,
                "flag": pl.Series([None] * n, dtype=pl.String),
                "flag_reason": pl.Series([None] * n, dtype=pl.String),
                "source_file": ["simulate_stability"] * n,
            }
        )
        .sort("batch_id", "temperature_c", "time", maintain_order=True)
        .with_columns(source_line=pl.int_range(2, n + 2, dtype=pl.Int64))
    )
    if not return_truth:
        return study
    truth = {
        "kinetics": kinetics,
        "activation_energy": float(ea_kj),
        "k_ref": float(k_ref),
        "y0": float(y0),
        "reference_temperature": float(reference_temperature),
        "lot_sd": sds,
        "noise_sd": float(noise_sd),
        "sb_m": float(sb_m),
        "sb_n": float(sb_n),
        "direction": direction,
        "asymptote": float(asymptote),
        "time_unit": time_unit,
        "lots": pl.DataFrame({"batch_id": lots, "y0": lot_y0, "k_ref": lot_k, "activation_energy": lot_ea}),
    }
    return study, truth

"""Stability studies simulated from a known Arrhenius degradation model (demos, tests, benchmarks).

The model is the one :class:`bioworkbench.models.StabilityModel` fits, with the kinetics of
:mod:`bioworkbench.stability.degradation` and the Arrhenius factor of
:mod:`bioworkbench.stability.temperature`: lot ``b`` at storage temperature ``T`` and time ``t``::

    θ_b(t)  = k_ref,b · t · exp(−E_a,b/R · (1/T − 1/T_ref))
    α       = extent(θ; kinetics)                     zero order, first order or Šesták–Berggren
    y_true  = y_∞ + (y0_b − y_∞) · (1 − α)
    value   = y_true + ε,   ε ~ Normal(0, noise_sd)

    y0_b       ~ Normal(y0, lot_sd["y0"])
    log k_ref,b ~ Normal(log k_ref, lot_sd["log_k_ref"])
    E_a,b      ~ Normal(ea_kj, lot_sd["activation_energy"])     (0: shared)

Every condition's series starts with its own time-0 result (an independent assay of the lot's
initial value, as stability tables usually list it under each condition). Values are never clipped.

Length: :func:`simulate_stability` documents twenty settings, so its docstring is about 90 lines; its
code is under 90.
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
    from bioworkbench.stability.degradation import require_kinetics

    require_kinetics(kinetics, function="simulate_stability")
    sds, asymptote = _check_model(direction, n_lots, lot_sd, noise_sd, kinetics, sb_m, sb_n, asymptote, unit)
    k_ref = _DEFAULT_K_REF[kinetics] if k_ref is None else float(k_ref)
    conds = _conditions(conditions)
    rng = np.random.default_rng(random_seed)
    nl = int(n_lots)
    lots = pl.DataFrame(
        {
            "batch_id": [f"L{i + 1:02d}" for i in range(nl)],
            "y0": y0 + sds["y0"] * rng.standard_normal(nl),
            "k_ref": k_ref * np.exp(sds["log_k_ref"] * rng.standard_normal(nl)),
            "activation_energy": ea_kj + sds["activation_energy"] * rng.standard_normal(nl),
        }
    )
    series, true = _series(
        lots,
        conds,
        times,
        dict(histories or {}),
        kinetics=kinetics,
        reference_temperature=reference_temperature,
        asymptote=asymptote,
        sb_m=sb_m,
        sb_n=sb_n,
    )
    value = true + noise_sd * rng.standard_normal(true.size)
    n = true.size
    study = (
        series.with_columns(
            time_unit=pl.lit(time_unit),
            attribute=pl.lit(attribute),
            value=pl.Series(value),
            unit=pl.lit(unit),
            flag=pl.lit(None, dtype=pl.String),
            flag_reason=pl.lit(None, dtype=pl.String),
            source_file=pl.lit("simulate_stability"),
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
        "lots": lots,
    }
    return study, truth


def _check_model(
    direction: str,
    n_lots: int,
    lot_sd: Mapping[str, float] | None,
    noise_sd: float,
    kinetics: str,
    sb_m: float,
    sb_n: float,
    asymptote: float | None,
    unit: str,
) -> tuple[dict[str, float], float]:
    """The lot-to-lot standard deviations (defaults filled) and the asymptote, every setting checked."""
    from bioworkbench.schema import suggest

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
    return sds, float(asymptote)


def _conditions(conditions: Sequence[float] | Mapping[str, float]) -> list[tuple[str, float, float | None]]:
    """``(label, temperature °C, % RH or None)`` of each storage condition (ICH labels for bare temperatures)."""
    if isinstance(conditions, Mapping):
        conds = [(str(lab), float(t), None) for lab, t in conditions.items()]
    else:
        conds = []
        for t in conditions:
            lab, rh = ICH_LABELS.get(float(t), (f"{float(t):g} °C", None))
            conds.append((lab, float(t), rh))
    if not conds:
        raise ConfigError("simulate_stability: no conditions given.")
    return conds


def _times_of(times: Sequence[float] | Mapping[Any, Sequence[float]] | None, label: str, temp: float) -> np.ndarray:
    """The time points of one condition (``times`` keyed by label or temperature, or the defaults)."""
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


def _series(
    lots: pl.DataFrame,
    conds: list[tuple[str, float, float | None]],
    times: Sequence[float] | Mapping[Any, Sequence[float]] | None,
    hist: dict[Any, Any],
    *,
    kinetics: str,
    reference_temperature: float,
    asymptote: float,
    sb_m: float,
    sb_n: float,
) -> tuple[pl.DataFrame, np.ndarray]:
    """Every (lot, condition) series: ``batch_id, condition, temperature_c, rh, time`` and the true values.

    A series with a temperature history ages along it (exact equivalent time); the others at their
    condition's temperature (Arrhenius factor). ``y = y_∞ + (y0 − y_∞)(1 − α(k_ref · t_eq))``.
    """
    from bioworkbench.stability.degradation import attribute_at
    from bioworkbench.stability.temperature import arrhenius_factor

    ids = lots["batch_id"].to_list()
    known = {(lot, lab) for lot in ids for lab, _, _ in conds}
    bad_keys = [k for k in hist if k not in known]
    if bad_keys:
        raise ConfigError(
            f"histories: no series {bad_keys[0]!r}; keys are (batch_id, condition), e.g. {(ids[0], conds[0][0])!r}."
        )
    parts, true = [], []
    for lot, lot_y0, lot_k, lot_ea in lots.iter_rows():
        for lab, temp, rh in conds:
            ts = _times_of(times, lab, temp)
            h = hist.get((lot, lab))
            if h is None:
                t_eq = ts * arrhenius_factor(temp, lot_ea, reference_temperature)
            else:
                t_eq = h.equivalent_time(ts, activation_energy_kj=lot_ea, reference_temperature_c=reference_temperature)
            true.append(attribute_at(lot_k * t_eq, y0=lot_y0, asymptote=asymptote, kinetics=kinetics, m=sb_m, n=sb_n))
            parts.append(
                pl.DataFrame(
                    {
                        "batch_id": [lot] * ts.size,
                        "condition": [lab] * ts.size,
                        "temperature_c": [temp] * ts.size,
                        "rh": pl.Series([rh] * ts.size, dtype=pl.Float64),
                        "time": ts,
                    }
                )
            )
    return pl.concat(parts), np.concatenate(true)

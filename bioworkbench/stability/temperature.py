"""Temperatures of stability lots: Arrhenius factors and the mean kinetic temperature.

Conventions: temperatures in °C at the interface and in kelvin inside (``T = T_°C + 273.15``);
activation energies in kJ/mol; ``R = 8.314462618e-3`` kJ/(mol·K) (CODATA 2018, exact since the 2019
SI). Times are in the time unit of the stability study (months by default); nothing here converts
them. A lot whose temperature changes over time is a
:class:`~bioworkbench.stability.TemperatureHistory` (:mod:`bioworkbench.stability.history`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bioworkbench.errors import ConfigError

__all__ = [
    "KELVIN",
    "MKT_ACTIVATION_ENERGY_KJ",
    "R_KJ",
    "arrhenius_factor",
    "mean_kinetic_temperature",
]

#: gas constant, kJ/(mol·K) (CODATA 2018; exact since the 2019 SI redefinition)
R_KJ = 8.314462618e-3
#: 0 °C in kelvin
KELVIN = 273.15
#: the customary activation energy of the mean kinetic temperature (USP <1160>, <1079.2>), kJ/mol
MKT_ACTIVATION_ENERGY_KJ = 83.144


def _kelvin(temperature_c: Any, *, what: str = "temperature_c") -> np.ndarray:
    from bioworkbench.checks import describe_type
    from bioworkbench.errors import ArgumentError

    if isinstance(temperature_c, str | bytes) or (
        isinstance(temperature_c, Sequence) and any(isinstance(x, str | bytes) for x in temperature_c)
    ):
        raise ArgumentError(
            f"{what}: expected temperatures in °C as numbers (e.g. 25 or [25, 30]); got "
            f"{describe_type(temperature_c)}. Give the number itself, without the unit."
        )
    if isinstance(temperature_c, np.ndarray) and temperature_c.dtype.kind in "USO":
        raise ArgumentError(
            f"{what}: expected temperatures in °C as numbers; got an array of {temperature_c.dtype} (text)."
        )
    try:
        t = np.asarray(temperature_c, dtype=float)
    except (TypeError, ValueError):
        raise ArgumentError(
            f"{what}: expected temperatures in °C as numbers; got {describe_type(temperature_c)}."
        ) from None
    bad = ~np.isfinite(t) | (t <= -KELVIN)
    if np.any(bad):
        i = int(np.flatnonzero(bad.ravel())[0])
        raise ConfigError(
            f"{what}: entry {i} is {float(t.ravel()[i])!r}; expected a finite temperature in °C above absolute "
            "zero (-273.15)."
        )
    return t + KELVIN


def arrhenius_factor(
    temperature_c: float | np.ndarray,
    activation_energy_kj: float | np.ndarray,
    reference_temperature_c: float,
) -> np.ndarray:
    """Rate at ``temperature_c`` relative to the rate at ``reference_temperature_c`` (Arrhenius).

    Parameters
    ----------
    temperature_c
        Temperature(s), °C.
    activation_energy_kj
        Activation energy ``E_a``, kJ/mol (broadcast against ``temperature_c``).
    reference_temperature_c
        Reference temperature ``T_ref``, °C.

    Returns
    -------
    numpy.ndarray
        ``k(T) / k(T_ref) = exp(-E_a/R · (1/T - 1/T_ref))`` (dimensionless, > 1 above ``T_ref``).

    Notes
    -----
    Arrhenius (1889) in the reference-temperature form used by accelerated stability modelling
    (e.g. Waterman & Adami 2005, Int J Pharm 293:101); temperatures in kelvin inside,
    ``R = 8.314462618e-3`` kJ/(mol·K).
    """
    t = _kelvin(temperature_c)
    tr = float(_kelvin(reference_temperature_c, what="reference_temperature_c"))
    ea = np.asarray(activation_energy_kj, dtype=float)
    return np.exp(-ea / R_KJ * (1.0 / t - 1.0 / tr))


def mean_kinetic_temperature(
    temperatures_c: Sequence[float] | np.ndarray,
    durations: Sequence[float] | np.ndarray | None = None,
    *,
    activation_energy_kj: float = MKT_ACTIVATION_ENERGY_KJ,
) -> float:
    """Mean kinetic temperature (Haynes 1971; USP <1160>, <1079.2>) of a temperature record, in °C.

    Parameters
    ----------
    temperatures_c
        Temperatures ``T_i``, °C: readings at equal intervals, or the temperatures of periods whose
        lengths are given in ``durations``.
    durations
        Length ``t_i`` of each period (any time unit, ≥ 0, not all 0). ``None``: equal intervals.
    activation_energy_kj
        ``ΔH``, kJ/mol; 83.144 kJ/mol by convention (USP), which makes ``ΔH/R`` ≈ 10,000 K.

    Returns
    -------
    float
        The mean kinetic temperature, °C.

    Raises
    ------
    ConfigError
        No temperatures, a temperature that is not finite or not above absolute zero, durations of a
        different length, negative or all zero, or a non-positive activation energy.

    Notes
    -----
    Haynes, J. D. (1971) "Worldwide virtual temperatures for product stability testing",
    J Pharm Sci 60:927–929; USP general chapters <1160> and <1079.2>:

    .. math::

        T_{mk} = \\frac{\\Delta H / R}{-\\ln\\left(\\sum_i t_i e^{-\\Delta H/(R T_i)} \\big/ \\sum_i t_i\\right)}

    with ``T_i`` in kelvin (``°C + 273.15``) and the result converted back to °C. It is the constant
    temperature at which a reaction of activation energy ``ΔH`` proceeds as far as it does over the
    record: ``arrhenius_factor(T_mk, ΔH, T_ref) · Σ t_i = Σ t_i · arrhenius_factor(T_i, ΔH, T_ref)``
    for any ``T_ref``. The sum is evaluated as a log-sum-exp (no underflow whatever ``ΔH``).
    ``R = 8.314462618e-3`` kJ/(mol·K); USP's rounded ``8.3144e-3`` moves the result by < 0.001 K.
    """
    t_k = _kelvin(temperatures_c, what="temperatures_c").ravel()
    if t_k.size == 0:
        raise ConfigError("mean_kinetic_temperature: no temperatures given.")
    if durations is None:
        w = np.ones_like(t_k)
    else:
        w = np.asarray(durations, dtype=float).ravel()
        if w.shape != t_k.shape:
            raise ConfigError(
                f"mean_kinetic_temperature: {t_k.size} temperatures but {w.size} durations; "
                "give one duration per temperature."
            )
        bad = ~np.isfinite(w) | (w < 0)
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise ConfigError(f"durations: entry {i} is {float(w[i])!r}; expected a finite duration ≥ 0.")
        if not w.sum() > 0:
            raise ConfigError("durations: all are zero; expected at least one period of positive length.")
    if not (np.isfinite(activation_energy_kj) and activation_energy_kj > 0):
        raise ConfigError(f"activation_energy_kj must be a positive number (kJ/mol); got {activation_energy_kj!r}.")
    h = activation_energy_kj / R_KJ  # ΔH/R, K
    x = -h / t_k
    keep = w > 0
    xm = x[keep].max()
    log_mean = xm + np.log(np.sum(w[keep] * np.exp(x[keep] - xm))) - np.log(w.sum())
    return float(h / -log_mean - KELVIN)
